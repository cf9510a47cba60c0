"""The graph view's model (nodes a signature reaches, calls, scopes, edge types, engine support),
its static SVG, its Python API, `%savedmodel graph` and the model browser's graph tab."""
import json
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from IPython.core.error import UsageError
from IPython.utils.capture import capture_output

import sm_notebook
from notebook_fixtures import copy_model, fixture_model, ip  # noqa: F401 (fixtures)
from sm_notebook.graphview.layout import layered_layout
from sm_notebook.graphview.model import CAPTURED_SCOPE, MAIN
from sm_notebook.graphview.svg import collapsed_units, open_scope
from sm_notebook.notebook import graph_view

SAVER_OPS = {"SaveV2", "RestoreV2", "MergeV2Checkpoints", "ShardedFilename", "StringJoin", "Assign",
             "AssignVariableOp", "VarIsInitializedOp", "IsVariableInitialized"}
SVG = "{http://www.w3.org/2000/svg}"


def graph(name, signature="serving_default", tags=None):
    return sm_notebook.inspect(fixture_model(name)).graph(signature, tags=tags)


def every_node(view):
    return [(body.id, node) for body in view.model.bodies.values() for node in body.nodes.values()]


# ---------------------------------------------------------------- which nodes

def test_tf1_signature_graph_has_no_saver_restore_or_init_nodes():
    view = graph("tf1_multi_tags", tags=["serve"])
    names = set(view.model.main.nodes)
    assert names == {"x", "weights", "weights/read", "bias", "bias/read", "MatMul", "logits",
                     "probabilities", "output:probabilities"}
    proto = view.info.meta_graph(["serve"]).proto
    assert any(n.op in SAVER_OPS for n in proto.graph_def.node)   # present in the file, not shown
    assert not {n.op for _, n in every_node(view)} & SAVER_OPS


def test_tf2_signature_graph_leaves_out_saver_functions_and_initialisers():
    view = graph("keras3_mlp")
    main = view.model.main
    assert {n.op for n in main.nodes.values()} == {"VarHandleOp", "Placeholder", "StatefulPartitionedCall", "Output"}
    assert "saver_filename" not in main.nodes
    assert not [b for b in view.model.bodies if "traced_save" in b or "traced_restore" in b]
    assert not {n.op for _, n in every_node(view)} & SAVER_OPS


def test_graph_runs_from_the_signature_inputs_to_its_outputs():
    view = graph("keras3_mlp")
    main = view.model.main
    assert main.args == ["serving_default_features"]
    assert main.rets == ["output:output_0"]
    assert main.nodes["serving_default_features"].kind == "input"
    reaches_output = {"output:output_0"}
    for _ in range(len(main.nodes)):  # every node feeds the output
        reaches_output |= {e.source for e in main.edges if e.target in reaches_output}
    assert reaches_output == set(main.nodes)


def test_signature_input_that_is_not_a_placeholder_stops_the_walk(copy_model):
    # tf1 'lookup' feeds a tensor in the middle of the graph: nothing above it is shown
    view = sm_notebook.inspect(copy_model()).graph("lookup", tags=["serve"])
    sig = view.info.signature("lookup", ["serve"])
    inputs = {spec.name.partition(":")[0] for spec in sig.inputs.values()}
    for name in inputs:
        assert view.model.main.nodes[name].kind == "input"
        assert not [e for e in view.model.main.edges if e.target == name]


def test_signature_naming_tensors_the_graph_lacks_still_draws():
    info = sm_notebook.inspect(fixture_model("tf1_multi_tags"))
    sig = info.meta_graph(["serve"]).proto.signature_def["serving_default"]
    sig.inputs["x"].name = "no_such_input:0"          # in memory only; diagnose() reports these
    sig.outputs["probabilities"].name = "no_such_output:0"
    view = info.graph(tags=["serve"])
    assert list(view.model.main.nodes) == ["output:probabilities"]
    ET.fromstring(view.to_svg())


def test_unknown_signature_and_tags_are_refused_with_what_exists():
    info = sm_notebook.inspect(fixture_model("keras3_mlp"))
    with pytest.raises(sm_notebook.SavedModelError, match="serving_default"):
        info.graph("no_such_signature")
    with pytest.raises(sm_notebook.TagSetNotFoundError):
        info.graph(tags=["train"])


# ---------------------------------------------------------------- calls

def test_calls_are_single_nodes_whose_bodies_are_listed_once():
    view = graph("keras3_mlp")
    call = view.model.main.nodes["StatefulPartitionedCall_1"]
    assert call.kind == "call"
    [target] = call.calls
    assert (target.role, target.input_offset, target.returns) == ("f", 0, True)
    wrapper = view.model.bodies[target.function]
    assert len(wrapper.args) == len(call.inputs) == 5       # call input i feeds argument i
    assert len(wrapper.rets) == len(call.outputs) == 1
    [inner_call] = [n for n in wrapper.nodes.values() if n.kind == "call"]
    body = view.model.bodies[inner_call.calls[0].function]
    assert "mlp_1/hidden_1/MatMul" in body.nodes
    data = json.loads(view.to_json())
    assert set(data["bodies"]) == set(view.model.bodies)
    assert data["bodies"][MAIN]["nodes"][0]["name"] in view.model.main.nodes
    assert {"role": "f", "function": target.function, "offset": 0, "returns": True} in [
        c for n in data["bodies"][MAIN]["nodes"] for c in n.get("calls", [])]


def test_if_and_while_bodies_are_wired_to_their_call_inputs_and_outputs():
    view = graph("tf2_module", "control_flow")
    calls = {n.op: n.calls for _, n in every_node(view) if n.calls}
    if_op = next(op for op in calls if op in ("If", "StatelessIf"))
    assert [(c.role, c.input_offset, c.returns) for c in calls[if_op]] == [
        ("then_branch", 1, True), ("else_branch", 1, True)]            # input 0 is the condition
    while_op = next(op for op in calls if op in ("While", "StatelessWhile"))
    assert [(c.role, c.input_offset, c.returns) for c in calls[while_op]] == [
        ("cond", 0, False), ("body", 0, True)]                         # only the body's results flow out
    case_op = next(op for op in calls if op in ("Case", "StatelessCase"))
    assert [c.role for c in calls[case_op]] == ["branches[0]", "branches[1]", "branches[2]"]
    for target in (c for targets in calls.values() for c in targets):
        assert target.function in view.model.bodies


# ---------------------------------------------------------------- scopes

def test_keras_layers_are_grouped_by_name_scope():
    view = graph("keras3_mlp")
    body = next(b for b in view.model.bodies.values() if "mlp_1/hidden_1/MatMul" in b.nodes)
    assert body.nodes["mlp_1/hidden_1/MatMul"].scope == "mlp_1/hidden_1"
    assert open_scope(body) == ["mlp_1"]                   # the model's own scope is opened
    units, _ = collapsed_units(view.model, body)
    assert {"scope:mlp_1/hidden_1", "scope:mlp_1/probabilities_1"} <= set(units)
    assert units["scope:mlp_1/hidden_1"].kind == "group"


def test_variables_join_their_layer_scope_and_captured_variables_fold_together():
    tf1 = graph("tf1_multi_tags", tags=["serve"])
    units, edges = collapsed_units(tf1.model, tf1.model.main)
    assert sorted(units["scope:weights"].members) == ["weights", "weights/read"]
    assert ("scope:weights", "MatMul", "float32 (3, 4)", 1, False) in edges
    tf2 = graph("keras3_mlp")
    captured = [n for n in tf2.model.main.nodes.values() if n.scope == CAPTURED_SCOPE]
    assert len(captured) == 4 and all(n.op == "VarHandleOp" for n in captured)
    units, edges = collapsed_units(tf2.model, tf2.model.main)
    assert set(units) == {"scope:(captured)", "serving_default_features", "StatefulPartitionedCall_1",
                          "output:output_0"}
    assert ("scope:(captured)", "StatefulPartitionedCall_1", "resource", 4, False) in edges


# ---------------------------------------------------------------- edges

def test_edges_carry_dtype_and_shape():
    view = graph("keras3_mlp")
    labels = {(e.source, e.target): e.label for e in view.model.main.edges}
    assert labels[("serving_default_features", "StatefulPartitionedCall_1")] == "float32 (?, 8)"
    assert labels[("StatefulPartitionedCall_1", "output:output_0")] == "float32 (?, 4)"
    body = next(b for b in view.model.bodies.values() if "mlp_1/hidden_1/MatMul" in b.nodes)
    inner = {(e.source, e.target): e.label for e in body.edges}
    assert inner[("mlp_1/hidden_1/MatMul", "mlp_1/hidden_1/BiasAdd")] == "float32 (?, 16)"
    assert inner[("mlp_1/hidden_1/Cast/ReadVariableOp", "mlp_1/hidden_1/MatMul")] == "float32 (8, 16)"
    assert body.nodes["mlp_1/hidden_1/MatMul"].outputs == ["float32 (?, 16)"]


def test_multi_output_call_edges_use_the_output_index():
    view = graph("tf2_module", "control_flow")
    sig = view.info.signature("control_flow")
    outputs = {e.target: e for e in view.model.main.edges if e.target.startswith("output:")}
    for key, spec in sig.outputs.items():
        edge = outputs[f"output:{key}"]
        assert edge.output == int(spec.name.rpartition(":")[2])
        assert edge.label.split()[0] == spec.dtype_short


# ---------------------------------------------------------------- engine support

def unsupported_copy(copy_model, name, op_from, op_to):
    """A copy of a fixture whose ``op_from`` nodes claim to be ``op_to`` (in memory only)."""
    info = sm_notebook.inspect(copy_model(name))
    for mg in info.meta_graphs:
        nodes = list(mg.proto.graph_def.node) + [n for f in mg.proto.graph_def.library.function
                                                 for n in f.node_def]
        for node in nodes:
            if node.op == op_from:
                node.op = op_to
    return info


def test_ops_the_engine_cannot_run_are_marked_in_the_model_and_the_svg(copy_model):
    info = unsupported_copy(copy_model, "tf1_multi_tags", "MatMul", "SparseMatMul")
    view = info.graph(tags=["serve"])
    assert view.model.main.nodes["MatMul"].status == "unsupported"
    assert view.model.unsupported() == [(MAIN, "MatMul", "SparseMatMul", "unsupported")]
    root = ET.fromstring(view.to_svg())
    marked = [g.get("data-name") for g in root.iter(f"{SVG}g")
              if g.get("class") == "node" and g.find(f"{SVG}rect").get("class") == "unsupported"]
    assert marked == ["MatMul"]
    assert "1 op type(s) the engine cannot run" in repr(view)


def test_a_call_whose_body_holds_an_unsupported_op_is_marked(copy_model):
    info = unsupported_copy(copy_model, "keras3_mlp", "MatMul", "SparseMatMul")
    view = info.graph()
    call = view.model.main.nodes["StatefulPartitionedCall_1"]
    assert call.status is None and view.model.problems_inside(call) == 2   # two Dense layers
    root = ET.fromstring(view.to_svg())
    [rect] = [g.find(f"{SVG}rect") for g in root.iter(f"{SVG}g") if g.get("data-name") == call.name]
    assert rect.get("class") == "unsupported" and rect.get("stroke-dasharray")


# ---------------------------------------------------------------- SVG and layout

@pytest.mark.parametrize("name, signature", [("tf1_multi_tags", "serving_default"), ("keras3_mlp", "serving_default"),
                                             ("tf2_module", "control_flow"),
                                             ("tf1_v1_control_flow", "serving_default"),
                                             ("keras3_transformer", "serving_default")])
def test_svg_is_well_formed_complete_and_deterministic(name, signature):
    info = sm_notebook.inspect(fixture_model(name))
    tags = ["serve"] if len(info.meta_graphs) > 1 else None
    view = info.graph(signature, tags=tags)
    svg = view.to_svg()
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    units, edges = collapsed_units(view.model, view.model.main)
    shown = {g.get("data-name") for g in root.iter(f"{SVG}g") if g.get("class") == "node"}
    assert shown == set(units)
    assert len([p for p in root.iter(f"{SVG}path") if p.get("marker-end")]) == len(edges)
    assert info.graph(signature, tags=tags).to_svg() == svg   # same picture every time
    assert view._repr_mimebundle_()["image/svg+xml"] == svg


def test_layout_points_edges_down_and_keeps_boxes_apart():
    sizes = {v: (40.0, 20.0) for v in "abcdef"}
    edges = [("a", "b"), ("a", "c"), ("b", "d"), ("c", "d"), ("d", "e"), ("e", "b"), ("a", "f")]  # e->b: a cycle
    layout = layered_layout(sizes, edges)
    boxes = layout.boxes
    for s, t in edges:
        if (s, t) != ("e", "b"):
            assert boxes[s].y < boxes[t].y
    for layer in layout.layers:
        xs = sorted(boxes[v].x for v in layer)
        assert all(b - a >= 40.0 for a, b in zip(xs, xs[1:]))
    assert [p for s, t, p in layout.edges if (s, t) == ("e", "b")][0][0][1] > boxes["b"].y  # drawn from e


# ---------------------------------------------------------------- Python API

def test_variable_details_include_value_statistics():
    view = graph("keras3_mlp")
    found = view.details("hidden/kernel_1")
    value = view.info.bundle.read(found["variable"]["key"]).astype(np.float64)
    assert found["variable"]["shape"] == "(8, 16)" and found["op"] == "VarHandleOp"
    # statistics are printed with 6 significant digits: relative rounding error at most 5e-6
    assert float(found["variable"]["mean"]) == pytest.approx(value.mean(), rel=5e-6)
    assert float(found["variable"]["min"]) == pytest.approx(value.min(), rel=5e-6)
    assert found["variable"]["elements"] == "128"


def test_weights_inside_function_bodies_know_their_checkpoint_values():
    view = graph("keras3_mlp")
    body = next(b for b in view.model.bodies.values() if "mlp_1/hidden_1/MatMul" in b.nodes)
    weight = body.nodes["mlp_1_hidden_1_cast_readvariableop_resource"]
    assert weight.scope == "mlp_1/hidden_1/Cast"             # inside the layer that reads it
    found = view.details(weight.name, body.id)["variable"]
    assert found["key"] == view.details("hidden/kernel_1")["variable"]["key"]   # passed down two calls
    assert found["shape"] == "(8, 16)" and "mean" in found


def test_details_of_a_body_node_and_refusals():
    view = graph("keras3_mlp")
    body = next(b.id for b in view.model.bodies.values() if "mlp_1/hidden_1/MatMul" in b.nodes)
    found = view.details("mlp_1/hidden_1/MatMul", body)
    assert found["attrs"]["T"] == "float32" and found["attrs"]["transpose_a"] == "false (default)"
    assert found["inputs"] == ["features", "mlp_1/hidden_1/Cast/ReadVariableOp:value:0"]
    with pytest.raises(sm_notebook.SavedModelError, match="did you mean 'mlp_1/hidden_1/MatMul'"):
        view.details("mlp_1/hidden_1/MatMull", body)
    with pytest.raises(sm_notebook.SavedModelError, match="no function body 'nope'"):
        view.details("x", "nope")


def test_find_by_name_or_op_type():
    view = graph("keras3_mlp")
    found = view.find("softmax")
    assert [(name, op) for _, name, op in found] == [("mlp_1/probabilities_1/Softmax", "Softmax")]
    assert {op for _, _, op in view.find("VarHandle")} == {"VarHandleOp"}


def test_outside_a_kernel_the_view_is_its_svg_and_text():
    bundle = graph("keras3_mlp")._repr_mimebundle_()
    assert set(bundle) == {"text/plain", "image/svg+xml"}


def test_without_the_built_front_end_the_view_shows_the_svg_and_how_to_build(monkeypatch, tmp_path):
    monkeypatch.setattr(graph_view, "BUNDLE", tmp_path / "missing.js")
    monkeypatch.setattr(graph_view, "_in_kernel", lambda: True)
    view = graph("keras3_mlp")
    bundle = view._repr_mimebundle_()
    assert graph_view.WIDGET_MIME not in bundle
    assert graph_view.BUILD_COMMAND in bundle["text/html"] and view.to_svg() in bundle["text/html"]
    with pytest.raises(sm_notebook.SavedModelError, match="tools/build_frontend.sh"):
        view.widget


def test_in_a_kernel_the_view_is_also_the_widget(monkeypatch):
    if not graph_view.BUNDLE.exists():
        pytest.skip(f"front end not built ({graph_view.BUILD_COMMAND})")
    monkeypatch.setattr(graph_view, "_in_kernel", lambda: True)
    view = graph("keras3_mlp")
    bundle = view._repr_mimebundle_()
    assert bundle[graph_view.WIDGET_MIME]["model_id"] == view.widget.model_id
    assert "image/svg+xml" in bundle
    assert json.loads(view.widget.graph) == json.loads(view.to_json())
    sent = []
    monkeypatch.setattr(view.widget, "send", sent.append)
    view.widget._answer(view.widget, {"type": "details", "body": "", "name": "hidden/bias_1"}, [])
    assert sent[0]["details"]["variable"]["shape"] == "(16,)" and "mean" in sent[0]["details"]["variable"]
    view.widget._answer(view.widget, {"type": "details", "body": "", "name": "nope"}, [])
    assert "No node 'nope'" in sent[1]["details"]["error"]


# ---------------------------------------------------------------- magic and browser tab

def test_graph_magic_shows_and_stores_the_view(ip):
    path = fixture_model("tf1_multi_tags")
    with capture_output() as captured:
        ip.run_line_magic("savedmodel", f"graph {path} --tags serve --signature lookup -o shown_graph")
    view = ip.user_ns["shown_graph"]
    assert view.signature == "lookup"
    assert any("image/svg+xml" in o.data for o in captured.outputs)
    with pytest.raises(UsageError, match="pass --tags"):
        ip.run_line_magic("savedmodel", f"graph {path}")
    with pytest.raises(UsageError, match="No signature 'nope'"):
        ip.run_line_magic("savedmodel", f"graph {path} --tags serve --signature nope")
    with capture_output():
        ip.run_line_magic("savedmodel", f"graph {fixture_model('keras3_mlp')} -o default_graph")
    assert ip.user_ns["default_graph"].signature == "serving_default"


def test_model_browser_has_a_graph_tab_that_follows_the_selection():
    from sm_notebook.notebook.widgets import ModelBrowser
    browser = ModelBrowser(fixture_model("keras3_mlp"), signature="serving_default")
    assert browser.graph_view is None                    # built only when the tab opens
    view = browser.show_graph()
    assert browser.tabs.get_title(4) == "graph"
    assert view.signature == "serving_default" and browser.graph_box.children
    browser.select(signature="serve")
    assert browser.graph_view.signature == "serve"


def test_the_tutorial_keeps_its_pictures_but_not_the_bundled_front_end():
    tutorial = json.loads((fixture_model("keras3_mlp").parents[3] / "notebooks" / "09_graph_view.ipynb").read_text())
    assert "widgets" not in tutorial["metadata"]          # anywidget state would hold dagre's code
    outputs = [o for cell in tutorial["cells"] for o in cell.get("outputs", [])]
    assert not [o for o in outputs if graph_view.WIDGET_MIME in o.get("data", {})]
    assert sum("image/svg+xml" in o.get("data", {}) for o in outputs) >= 4
