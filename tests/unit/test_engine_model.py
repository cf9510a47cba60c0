"""Loading and calling models built by hand: inputs, backends, variables (TF1 and TF2),
init ops and assets, variable-read folding, scan_model and sm_notebook.ops."""
from __future__ import annotations

import numpy as np
import pytest

from engine_graphs import (Counter, Func, const, function, install_test_kernels, meta_graph, node,
                           placeholder, save, signature)

import sm_notebook
from sm_notebook._proto import trackable_object_graph_pb2
from sm_notebook.engine.context import KernelContext
from sm_notebook.engine.loader import load_model
from sm_notebook.engine.ops.resource_ops import restore_v2
from sm_notebook.engine.scan import scan_model
from sm_notebook.errors import SavedModelError

F32 = np.float32


@pytest.fixture(autouse=True)
def kernels(monkeypatch):
    install_test_kernels(monkeypatch)


def _model(tmp_path, inputs, backend="numpy"):
    """y = x + x for every input spec given as key -> (dtype, shape)."""
    nodes, outs, sig_in = [], {}, {}
    for k, (dtype, shape) in inputs.items():
        nodes += [placeholder(k, dtype, shape), node(f"{k}_out", "Identity", [k])]
        sig_in[k] = (f"{k}:0", dtype, shape)
        outs[k] = (f"{k}_out:0", dtype, shape)
    mg = meta_graph(nodes, {"serving_default": signature(sig_in, outs)})
    return load_model(save(tmp_path / "m", mg), backend=backend).signatures["serving_default"]


# --------------------------------------------------------------------------- inputs

def test_inputs_accept_lists_scalars_and_safe_casts(tmp_path):
    fn = _model(tmp_path, {"f": (F32, (None, 2)), "i": (np.int32, ()), "s": (object, (None,))})
    out = fn(f=[[1, 2], [3, 4]], i=7, s=["a", b"b"])
    assert out["f"].dtype == F32 and out["f"].shape == (2, 2)
    assert out["i"].dtype == np.int32 and out["i"] == 7
    assert out["s"].tolist() == [b"a", b"b"]
    assert fn(f=np.ones((1, 2), np.float64), i=np.int64(1), s=np.array(["x"]))["f"].dtype == F32


def test_arrays_of_an_equal_but_distinct_dtype_are_taken_like_the_spec_dtype(tmp_path):
    """The pass-through of ready numpy inputs tests the dtype by identity; an equal dtype
    object that is not numpy's own (metadata) and a byte-swapped one take the general
    path: same values, native float32 out, the caller's array unchanged."""
    fn = _model(tmp_path, {"f": (F32, (None, 2))})
    for dtype in (np.dtype(F32, metadata={"unit": "m"}), np.dtype(">f4")):
        x = np.array([[1.5, -2.0]], dtype)
        x.flags.writeable = False
        out = fn(f=x)["f"]
        assert out.dtype == F32 and out is not x and not np.shares_memory(out, x)
        np.testing.assert_array_equal(out, [[1.5, -2.0]])
    for wrong in (np.ones((1, 3), F32), np.ones((2,), F32), np.ones((1, 2, 1), F32)):
        with pytest.raises(SavedModelError, match=r"'f'.*float32\[\?,2\]"):
            fn(f=wrong)


def test_input_errors_name_the_input_and_what_it_expects(tmp_path):
    fn = _model(tmp_path, {"f": (F32, (None, 2)), "i": (np.int32, ())})
    with pytest.raises(SavedModelError, match=r"'i'.*int32\[\].*float64"):
        fn(f=[[1.0, 2.0]], i=1.5)
    with pytest.raises(SavedModelError, match=r"'f'.*float32\[\?,2\].*\(3,\)"):
        fn(f=[1.0, 2.0, 3.0], i=1)
    with pytest.raises(SavedModelError, match=r"'i'.*int32.*fit"):
        fn(f=[[1.0, 2.0]], i=np.int64(2**40))
    with pytest.raises(SavedModelError, match=r"unknown input\(s\) 'g'.*missing input\(s\) 'i'.*f: float32"):
        fn(f=[[1.0, 2.0]], g=1)
    with pytest.raises(SavedModelError, match="expects float32"):
        fn(f=[["a", "b"]], i=1)


def test_signature_repr_is_short(tmp_path):
    fn = _model(tmp_path, {"f": (F32, (None, 2))})
    assert repr(fn) == "<SignatureFunction serving_default(f: float32[?,2]) -> {f: float32[?,2]}>"


# --------------------------------------------------------------------------- backends

def test_array_api_strict_backend_and_to(tmp_path):
    pytest.importorskip("array_api_strict")
    nodes = [placeholder("x"), const("k", [1.0, 2.0], F32), node("y", "_TAdd", ["x", "k"]),
             placeholder("s", object, (None,)), node("t", "Identity", ["s"])]
    sig = signature({"x": ("x:0", F32, (2,)), "s": ("s:0", object, (None,))},
                    {"y": ("y:0", F32, (2,)), "t": ("t:0", object, (None,))})
    export = save(tmp_path / "m", meta_graph(nodes, {"serving_default": sig}))
    model = load_model(export, backend="array_api_strict")
    out = model.signatures["serving_default"](x=[1.0, 1.0], s=["a"])
    assert type(out["y"]).__module__.startswith("array_api_strict")
    assert isinstance(out["t"], np.ndarray) and out["t"].dtype == object  # strings stay on the host
    np.testing.assert_array_equal(out.numpy()["y"], [2.0, 3.0])
    back = model.to("numpy")
    assert back.backend == "numpy"
    np.testing.assert_array_equal(back.signatures["serving_default"](x=[0.0, 0.0], s=["a"])["y"], [1.0, 2.0])


# --------------------------------------------------------------------------- variables

def _tf1_variable_graph(with_saver: bool):
    nodes = [placeholder("x"), node("v", "VariableV2", dtype=np.dtype(F32), shape=(2,)),
             node("y", "_TAdd", ["x", "v"])]
    if with_saver:
        nodes += [const("save/filename/input", np.array(b"model", dtype=object)),
                  node("save/Const", "PlaceholderWithDefault", ["save/filename/input"],
                       dtype=np.dtype(object), shape=()),
                  const("save/RestoreV2/tensor_names", np.array([b"weights"], dtype=object)),
                  const("save/RestoreV2/shape_and_slices", np.array([b""], dtype=object)),
                  node("save/RestoreV2", "RestoreV2", ["save/Const", "save/RestoreV2/tensor_names",
                                                       "save/RestoreV2/shape_and_slices"],
                       dtypes=[np.dtype(F32)]),
                  node("save/Assign", "Assign", ["v", "save/RestoreV2"]),
                  node("save/restore_all", "NoOp", ["^save/Assign"])]
    mg = meta_graph(nodes, {"serving_default": signature({"x": ("x:0", F32, (2,))},
                                                          {"y": ("y:0", F32, (2,))})})
    if with_saver:
        mg.saver_def.filename_tensor_name = "save/Const:0"
        mg.saver_def.restore_op_name = "save/restore_all"
    return mg


@pytest.mark.parametrize("with_saver", [False, True])
def test_tf1_variables_restore_by_saver_or_by_name(tmp_path, with_saver):
    key = "weights" if with_saver else "v"  # the saver maps key 'weights' to node v
    export = save(tmp_path / "m", _tf1_variable_graph(with_saver),
                  variables={key: np.array([10.0, 20.0], F32)})
    fn = load_model(export).signatures["serving_default"]
    np.testing.assert_array_equal(fn(x=[1.0, 2.0])["y"], [11.0, 22.0])
    assert len(fn.plan) == 1  # the variable read is folded: no signature writes variables


@pytest.mark.parametrize("with_saver", [False, True])
def test_variables_over_the_memory_cap_are_refused(tmp_path, with_saver):
    key = "weights" if with_saver else "v"
    export = save(tmp_path / "m", _tf1_variable_graph(with_saver),
                  variables={key: np.zeros(2, F32)})
    with pytest.raises(SavedModelError, match="memory cap"):
        load_model(export, memory_cap=4)


def test_restore_v2_reads_only_the_models_own_checkpoint(tmp_path):
    ctx = KernelContext(export_dir=str(tmp_path))
    prefix = np.array(str(tmp_path / "elsewhere" / "ckpt").encode(), dtype=object)
    with pytest.raises(SavedModelError, match="not the model's own"):
        restore_v2(ctx, [prefix, np.array([b"v"], dtype=object), np.array([b""], dtype=object)],
                   {"dtypes": [np.dtype(F32)]})


def test_tf2_captured_variables_come_from_bound_inputs_not_names(tmp_path):
    read = function("sig_fn", [("a", F32), ("res", object)], {"out": "add:z:0"},
                    [node("r", "ReadVariableOp", ["res"], dtype=np.dtype(F32)),
                     node("add", "_TAdd", ["a", "r:value:0"])])
    read.signature.input_arg[1].type = 20  # DT_RESOURCE
    nodes = [placeholder("x"), node("h", "VarHandleOp", shared_name="dense/kernel_1",
                                    dtype=np.dtype(F32), shape=(2,)),
             node("call", "StatefulPartitionedCall", ["x", "h"], f=Func("sig_fn"),
                  Tin=[np.dtype(F32), np.dtype(object)], Tout=[np.dtype(F32)])]
    mg = meta_graph(nodes, {"serving_default": signature({"x": ("x:0", F32, (2,))},
                                                          {"y": ("call:0", F32, (2,))})}, [read])
    objects = mg.object_graph_def
    objects.nodes.add().user_object.identifier = "_generic_user_object"
    objects.nodes[0].children.add(node_id=1, local_name="kernel")
    variable = objects.nodes.add().variable
    variable.dtype = 1
    variable.shape.dim.add(size=2)
    variable.name = "kernel"
    objects.concrete_functions["sig_fn"].bound_inputs.append(1)
    graph = trackable_object_graph_pb2.TrackableObjectGraph()
    graph.nodes.add().children.add(node_id=1, local_name="kernel")
    graph.nodes.add().attributes.add(name="VARIABLE_VALUE", full_name="kernel",
                                     checkpoint_key="kernel/.ATTRIBUTES/VARIABLE_VALUE")
    export = save(tmp_path / "m", mg, variables={
        "_CHECKPOINTABLE_OBJECT_GRAPH": np.array(graph.SerializeToString(), dtype=object),
        "kernel/.ATTRIBUTES/VARIABLE_VALUE": np.array([1.0, 2.0], F32),
        "dense/kernel_1": np.array([999.0, 999.0], F32)})  # a decoy with the handle's name
    model = load_model(export)
    np.testing.assert_array_equal(model.signatures["serving_default"](x=[0.0, 0.0])["y"], [1.0, 2.0])
    assert "kernel" in model.variables


def test_variable_reads_are_not_folded_when_a_signature_writes(tmp_path):
    nodes = [node("v", "VarHandleOp", shared_name="v", dtype=np.dtype(F32), shape=()),
             const("one", 1.0, F32), node("bump", "AssignAddVariableOp", ["v", "one"], dtype=np.dtype(F32)),
             node("after", "ReadVariableOp", ["v", "^bump"], dtype=np.dtype(F32)),
             node("read", "ReadVariableOp", ["v"], dtype=np.dtype(F32)),
             const("zero", 0.0, F32), node("init", "AssignVariableOp", ["v", "zero"], dtype=np.dtype(F32))]
    sigs = {"bump": signature({}, {"v": ("after:0", F32, ())}),
            "read": signature({}, {"v": ("read:0", F32, ())})}
    mg = meta_graph(nodes, sigs)
    mg.collection_def["saved_model_main_op"].node_list.value.append("init")
    model = load_model(save(tmp_path / "m", mg))
    assert model.signatures["read"]()["v"] == 0.0
    assert model.signatures["bump"]()["v"] == 1.0
    assert model.signatures["bump"]()["v"] == 2.0
    assert model.signatures["read"]()["v"] == 2.0


def test_outputs_never_alias_inputs_constants_or_variables(tmp_path):
    """Changing an output changes nothing else: not the caller's input, not a constant,
    not a variable (TensorFlow returns fresh tensors); inputs are never written."""
    nodes = [placeholder("x", F32, (2,)), const("c", np.array([5.0, 6.0], F32)),
             const("shape", np.array([1, 2], np.int32)),
             node("v", "VarHandleOp", shared_name="v", dtype=np.dtype(F32), shape=(2,)),
             const("init_value", np.array([1.0, 2.0], F32)),
             node("init", "AssignVariableOp", ["v", "init_value"], dtype=np.dtype(F32)),
             node("one", "Const", value=np.array([1.0, 1.0], F32), dtype=np.dtype(F32)),
             node("bump", "AssignAddVariableOp", ["v", "one"], dtype=np.dtype(F32)),
             node("read", "ReadVariableOp", ["v"], dtype=np.dtype(F32)),
             node("same", "Identity", ["x"], T=np.dtype(F32)),
             node("view", "Reshape", ["x", "shape"], T=np.dtype(F32))]
    outputs = {"same": ("same:0", F32, (2,)), "view": ("view:0", F32, (1, 2)),
               "c": ("c:0", F32, (2,)), "v": ("read:0", F32, (2,))}
    mg = meta_graph(nodes, {"serving_default": signature({"x": ("x:0", F32, (2,))}, outputs),
                            "bump": signature({}, {"v": ("read:0", F32, (2,))})})
    mg.signature_def["bump"].outputs["v"].name = "read:0"
    mg.collection_def["saved_model_main_op"].node_list.value.append("init")
    model = load_model(save(tmp_path / "m", mg))
    fn = model.signatures["serving_default"]
    x = np.array([3.0, 4.0], F32)
    out = fn(x=x).numpy()
    for value in out.values():
        value[...] = -1.0  # the caller owns its outputs
    np.testing.assert_array_equal(x, [3.0, 4.0])
    again = fn(x=x).numpy()
    np.testing.assert_array_equal(again["c"], [5.0, 6.0])
    np.testing.assert_array_equal(again["v"], [1.0, 2.0])
    np.testing.assert_array_equal(again["view"], [[3.0, 4.0]])
    frozen = np.array([7.0, 8.0], F32)
    frozen.flags.writeable = False  # an in-place write into an input would raise
    np.testing.assert_array_equal(fn(x=frozen).numpy()["same"], frozen)


@pytest.mark.parametrize("op", ["Identity", "Reshape"])
def test_a_single_output_never_aliases_the_input(tmp_path, op):
    """The one-output path: an output that is the input itself, or a view of it, comes
    back as a copy; changing it leaves the caller's input as it was."""
    nodes = [placeholder("x", F32, (None,)), const("shape", np.array([-1], np.int32)),
             node("y", op, ["x", "shape"] if op == "Reshape" else ["x"], T=np.dtype(F32))]
    mg = meta_graph(nodes, {"serving_default": signature({"x": ("x:0", F32, (None,))},
                                                         {"y": ("y:0", F32, None)})})
    fn = load_model(save(tmp_path / "m", mg)).signatures["serving_default"]
    x = np.array([3.0, 4.0], F32)
    for _ in range(2):  # compiled steps from the second call on
        y = fn(x=x)["y"]
        assert y is not x and not np.shares_memory(y, x)
        y[...] = -1.0
        np.testing.assert_array_equal(x, [3.0, 4.0])


# --------------------------------------------------------------------------- init ops and assets

def _asset_model(tmp_path, filename):
    nodes = [const("asset_path", np.array(b"/export/machine/vocab.txt", dtype=object)),
             node("pv", "VarHandleOp", shared_name="pv", dtype=np.dtype(object), shape=()),
             node("assign", "AssignVariableOp", ["pv", "asset_path"], dtype=np.dtype(object)),
             const("one", 1.0, F32), node("count", "_TCount", ["one"]),
             node("init", "NoOp", ["^assign", "^count"]),
             node("read", "ReadVariableOp", ["pv"], dtype=np.dtype(object))]
    mg = meta_graph(nodes, {"serving_default": signature({}, {"path": ("read:0", object, ())})})
    init = mg.signature_def["__saved_model_init_op"]
    init.outputs["__saved_model_init_op"].name = "init"
    mg.asset_file_def.add(filename=filename).tensor_info.name = "asset_path:0"
    export = save(tmp_path / "m", mg)
    (export / "assets").mkdir()
    (export / "assets" / "vocab.txt").write_text("a\nb\n")
    return export


def test_init_op_runs_once_with_asset_paths_inside_the_export(tmp_path):
    export = _asset_model(tmp_path, "vocab.txt")
    model = load_model(export)
    fn = model.signatures["serving_default"]
    assert list(model.signatures) == ["serving_default"]
    for _ in range(2):
        path = fn()["path"].item().decode()
    assert path == str((export / "assets" / "vocab.txt").resolve())
    assert Counter.calls == 1


def test_asset_paths_escaping_the_export_are_refused(tmp_path):
    with pytest.raises(SavedModelError, match="outside its export directory"):
        load_model(_asset_model(tmp_path, "../../etc/passwd"))


# --------------------------------------------------------------------------- scan and ops

def test_scan_reports_reachable_problems_only_as_blocking(tmp_path):
    nodes = [placeholder("x"), node("y", "NoSuchOp", ["x"]), node("w", "WriteFile", ["x", "x"]),
             node("z", "AlsoMissing", ["x"])]
    mg = meta_graph(nodes, {"serving_default": signature({"x": ("x:0", F32, ())}, {"y": ("y:0", F32, ())})})
    report = scan_model(save(tmp_path / "m", mg))
    assert report.unsupported == ["NoSuchOp"] and report.denied == [] and not report.ok
    unreachable = {(p.op, p.status) for p in report.problems if not p.reachable}
    assert unreachable == {("WriteFile", "denied"), ("AlsoMissing", "unsupported")}
    assert "NoSuchOp (from an unknown library (not core TensorFlow)): node 'y' in main graph" in str(report)


def test_public_op_lists():
    ops = sm_notebook.ops.supported_ops()
    assert ops == sorted(ops) and "Const" in ops and "While" in ops
    assert not any(op.startswith("_Smnb") for op in ops)
    assert sm_notebook.ops.is_supported("MatMul") and not sm_notebook.ops.is_supported("ReadFile")
    assert "ReadFile" in sm_notebook.ops.denied_ops() and "ReadFile" not in ops


def test_load_is_wired_to_the_engine(tmp_path):
    fn_model = sm_notebook.load(save(tmp_path / "m", _tf1_variable_graph(False)),
                                backend="numpy")
    assert "serving_default" in fn_model.signatures
    assert "backend=numpy" in repr(fn_model)
