"""TF2 edits keep SignatureDefs, root.signatures, functions and call nodes consistent."""
from conftest import MODELS

from sm_notebook.builder import Builder, objectgraph


def parts(builder, key):
    meta_graph = builder._select(None)
    return objectgraph.SignatureFunction(meta_graph.proto, meta_graph.graph, key)


def kwonlyargs(bare):
    for item in bare.function_spec.fullargspec.named_tuple_value.values:
        if item.key == "kwonlyargs":
            return [v.string_value for v in item.value.list_value.values]
    return None


def test_rename_signature_renames_the_root_signatures_child():
    b = Builder.from_saved_model(MODELS / "tf2_module")
    b.rename_signature("half_precision", "half")
    children = objectgraph.signature_children(b._select(None).proto.object_graph_def)
    assert "half" in children and "half_precision" not in children
    b.remove_signature("control_flow")
    assert "control_flow" not in objectgraph.signature_children(
        b._select(None).proto.object_graph_def)


def test_input_rename_reorders_arguments_to_sorted_key_order():
    b = Builder.from_saved_model(MODELS / "tf2_module")
    before = parts(b, "int_and_bool")
    old_args = [a.name for a in before.function_def.signature.input_arg]
    old_inputs = list(before.call_node.input)
    old_function = before.function_name
    assert before.input_keys == ["ids", "mask"]

    b.rename_input("int_and_bool", "ids", "z_ids")
    after = parts(b, "int_and_bool")
    assert after.input_keys == ["mask", "z_ids"]
    assert kwonlyargs(after.bare) == ["mask", "z_ids"]
    assert sorted(after.input_specs) == ["mask", "z_ids"]
    new_args = [a.name for a in after.function_def.signature.input_arg]
    assert new_args[:2] == [old_args[1], old_args[0]] and new_args[2:] == old_args[2:]
    assert list(after.call_node.input)[:2] == [old_inputs[1], old_inputs[0]]
    assert after.function_name != old_function
    library = {f.signature.name for f in b._select(None).graph.graph_def.library.function}
    assert old_function not in library          # the replaced function is dropped
    signature_def = b.signatures()["int_and_bool"]
    assert sorted(signature_def.inputs) == ["mask", "z_ids"]


def test_output_rename_reorders_results_and_signature_def_names():
    b = Builder.from_saved_model(MODELS / "tf2_module")
    before = parts(b, "int_and_bool")
    tensors = {k: v.name for k, v in b.signatures()["int_and_bool"].outputs.items()}
    out_args = [a.name for a in before.function_def.signature.output_arg]
    order = dict(zip(before.output_keys, out_args))

    b.rename_output("int_and_bool", "any_even", "zz_even")
    after = parts(b, "int_and_bool")
    assert after.output_keys == ["count", "inverted", "selected", "zz_even"]
    new_args = [a.name for a in after.function_def.signature.output_arg]
    assert new_args == [order["count"], order["inverted"], order["selected"], order["any_even"]]
    signature_def = b.signatures()["int_and_bool"]
    for index, key in enumerate(after.output_keys):
        assert signature_def.outputs[key].name == f"{after.call_node.name}:{index}"
    tout = list(after.call_node.attr["Tout"].list.type)
    assert [signature_def.outputs[k].dtype for k in after.output_keys] == tout
    assert tensors["count"] != signature_def.outputs["count"].name   # moved from :1 to :0


def test_derived_signature_gets_its_own_function_node_and_call():
    b = Builder.from_saved_model(MODELS / "keras3_mlp")
    sig = b.signatures()["serving_default"]
    b.add_signature("probs", {"x": sig.inputs["features"].name}, {"p": sig.outputs["output_0"].name})
    derived = parts(b, "probs")
    source = parts(b, "serving_default")
    assert derived.node_id != source.node_id
    assert derived.call_node.name != source.call_node.name
    assert derived.function_name != source.function_name
    assert derived.input_keys == ["x"] and derived.output_keys == ["p"]
