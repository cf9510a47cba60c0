"""The op table (sm_notebook.opdefs): OpDef facts, list sizes, flags, extras."""
import threading

import pytest

from sm_notebook import SavedModelError, opdefs
from sm_notebook._proto import graph_pb2, tensor_pb2
from sm_notebook.opdefs import flags

DT = tensor_pb2.DataType


def test_output_names_come_from_the_opdef_not_a_guess():
    assert [a.name for a in opdefs.require("OnesLike").outputs] == ["y"]
    assert [a.name for a in opdefs.require("Cast").outputs] == ["y"]
    assert [a.name for a in opdefs.require("Transpose").outputs] == ["y"]
    assert [a.name for a in opdefs.require("Where").outputs] == ["index"]
    assert [a.name for a in opdefs.require("MatMul").inputs] == ["a", "b"]
    assert opdefs.require("OnesLike").output_index({}, "y", 0) == 0


def test_unknown_output_argument_lists_the_real_ones():
    with pytest.raises(SavedModelError, match=r"OnesLike has no output argument 'output' "
                                              r"\(its outputs are: y\)"):
        opdefs.require("OnesLike").output_index({}, "output", 0)


def test_list_outputs_are_sized_by_number_and_type_list_attrs():
    split = opdefs.require("Split")
    assert split.n_outputs({"num_split": 3}) == 3
    assert split.output_index({"num_split": 3}, "output", 2) == 2
    unpack = opdefs.require("Unpack")
    assert unpack.n_outputs({"num": 4}) == 4
    identity_n = opdefs.require("IdentityN")
    assert identity_n.n_outputs({"T": [1, 1, 7]}) == 3
    assert identity_n.outputs[0].type_list_attr == "T"
    concat = opdefs.require("ConcatV2")
    assert concat.input_index({"N": 3}, "axis", 0) == 3
    assert concat.input_index({"N": 3}, "values", 1) == 1
    assert concat.n_inputs({"N": 3}) == 4 and concat.n_outputs({"N": 3}) == 1
    fbn = opdefs.require("FusedBatchNormV3")
    assert fbn.output_index({}, "batch_variance", 0) == 2
    assert fbn.n_outputs({}) == 6


def test_output_index_past_a_lists_end_is_an_error():
    with pytest.raises(SavedModelError, match="has 2 tensor"):
        opdefs.require("Split").output_index({"num_split": 2}, "output", 2)


def test_missing_sizing_attr_is_named():
    with pytest.raises(SavedModelError, match="num_split"):
        opdefs.require("Split").n_outputs({})
    with pytest.raises(SavedModelError, match="'N'"):
        opdefs.require("ConcatV2").inputs[0].size({"T": 1})
    assert opdefs.require("Split").outputs[0].size({"num_split": 5}) == 5
    assert opdefs.require("IdentityN").outputs[0].size({"T": (1, 2)}) == 2


def test_arg_types_fixed_by_type_or_attr_and_refs():
    rank = opdefs.require("Rank")
    assert rank.outputs[0].type == DT.Value("DT_INT32") and rank.outputs[0].type_attr == ""
    cast = opdefs.require("Cast")
    assert (cast.inputs[0].type, cast.inputs[0].type_attr) == (0, "SrcT")
    assert opdefs.require("VariableV2").outputs[0].is_ref
    assert not opdefs.require("VarHandleOp").outputs[0].is_ref
    assert opdefs.require("VarHandleOp").outputs[0].type == DT.Value("DT_RESOURCE")


def test_attrs_defaults_minimums_and_allowed_values():
    matmul = opdefs.require("MatMul")
    assert matmul.attrs["transpose_a"].type == "bool"
    assert matmul.attrs["transpose_a"].has_default
    assert matmul.attrs["transpose_a"].default.b is False
    assert matmul.attrs["T"].default is None and not matmul.attrs["T"].has_default
    assert DT.Value("DT_FLOAT") in matmul.attrs["T"].allowed_values
    conv = opdefs.require("Conv2D")
    assert set(conv.attrs["padding"].allowed_values) == {"SAME", "VALID", "EXPLICIT"}
    assert set(conv.required_attrs()) == {"T", "strides", "padding"}
    assert opdefs.require("ConcatV2").attrs["N"].minimum == 2
    assert opdefs.require("ConcatV2").attrs["Tidx"].default.type == DT.Value("DT_INT32")
    assert opdefs.require("MatMul").attrs["transpose_a"].minimum is None
    with pytest.raises(TypeError):
        matmul.attrs["new"] = None   # read-only


def test_unknown_op_is_none_or_a_named_error():
    assert opdefs.get("NoSuchOpAnywhere") is None
    with pytest.raises(SavedModelError, match="'NoSuchOpAnywhere'.*2\\.21"):
        opdefs.require("NoSuchOpAnywhere")
    assert "NoSuchOpAnywhere" not in opdefs.all_ops()


def test_the_table_covers_tensorflows_registry():
    ops = opdefs.all_ops()
    assert len(ops) > 1500
    assert {"MatMul", "Conv2D", "StatefulPartitionedCall", "While", "Placeholder"} <= ops
    assert opdefs.tensorflow_version().startswith("2.")


def test_flags_come_from_opdefs_and_the_curated_lists():
    assert "stateful" in opdefs.require("VarHandleOp").flags
    assert opdefs.require("VarHandleOp").is_stateful
    assert "stateful" not in opdefs.require("MatMul").flags
    assert {"VarHandleOp", "AssignVariableOp", "RandomUniform"} <= opdefs.ops_with("stateful")
    assert "MatMul" not in opdefs.ops_with("stateful")
    assert {"handle", "variable", "stateful"} <= opdefs.require("VarHandleOp").flags
    assert {"v1_control_flow", "takes_dead"} <= opdefs.require("Merge").flags
    assert "io" in opdefs.require("ReadFile").flags and "io" in opdefs.require("PrintV2").flags
    assert "io" not in opdefs.require("RestoreV2").flags
    assert opdefs.ops_with("placeholder") == {"Placeholder", "PlaceholderV2"}
    assert opdefs.ops_with("function_call") == {"PartitionedCall", "StatefulPartitionedCall"}
    assert {"If", "While", "StatefulPartitionedCall"} <= opdefs.ops_with("call")
    assert opdefs.ops_with("variable_read") >= {"ReadVariableOp"}
    assert "AssignVariableOp" in opdefs.ops_with("variable_write")
    assert "StringJoin" in opdefs.ops_with("host")
    assert opdefs.require("Identity").flags == {"identity"}
    assert opdefs.ops_with("ref_variable") <= opdefs.ops_with("variable")
    with pytest.raises(SavedModelError, match="Unknown op flag 'bogus'.*stateful"):
        opdefs.ops_with("bogus")


def test_every_curated_name_is_a_real_op_or_an_engine_op():
    known = opdefs.all_ops()
    for flag, ops in flags.CURATED.items():
        strays = sorted(op for op in ops if op not in known and not op.startswith("_Smnb"))
        assert not strays, (flag, strays)


def test_every_flag_has_ops():
    for flag in opdefs.ALL_FLAGS:
        assert opdefs.ops_with(flag), flag


def _op_def(name, stateful=False):
    op_def = graph_pb2.OpDef(name=name, is_stateful=stateful)
    op_def.input_arg.add(name="values", type_attr="T", number_attr="N")
    op_def.output_arg.add(name="parts", type_list_attr="Tout")
    op_def.output_arg.add(name="count", type=DT.Value("DT_INT64"))
    attr = op_def.attr.add(name="N", type="int", has_minimum=True, minimum=1)
    op_def.attr.add(name="T", type="type")
    op_def.attr.add(name="Tout", type="list(type)")
    attr.default_value.i = 2
    return op_def


def test_from_op_def_reads_a_models_own_opdef_without_registering_it():
    info = opdefs.from_op_def(_op_def("MyCustomOp", stateful=True))
    assert info.name == "MyCustomOp" and info.is_stateful and info.flags == {"stateful"}
    assert info.output_index({"Tout": [1, 1, 1]}, "count", 0) == 3
    assert info.n_inputs({}) == 2          # N defaults to 2
    assert info.attrs["N"].minimum == 1
    assert opdefs.get("MyCustomOp") is None


def test_from_op_def_takes_curated_flags_by_name():
    identity = graph_pb2.OpDef(name="Identity")
    assert opdefs.from_op_def(identity).flags == {"identity"}


def test_from_op_def_accepts_a_foreign_opdef_message():
    class Foreign:        # e.g. TensorFlow's own OpDef class: anything serializing the same
        def SerializeToString(self):
            return _op_def("ForeignOp").SerializeToString()
    assert opdefs.from_op_def(Foreign()).name == "ForeignOp"
    with pytest.raises(SavedModelError, match="OpDef"):
        opdefs.from_op_def("Identity")


def test_register_extra_adds_engine_ops_once():
    op_def = _op_def("_SmnbTestOnlyOp")
    info = opdefs.register_extra(op_def)
    assert opdefs.get("_SmnbTestOnlyOp") == info
    assert opdefs.register_extra(op_def) == info            # idempotent
    assert "_SmnbTestOnlyOp" in opdefs.all_ops()
    changed = _op_def("_SmnbTestOnlyOp", stateful=True)
    with pytest.raises(SavedModelError, match="already registered"):
        opdefs.register_extra(changed)
    with pytest.raises(SavedModelError, match="TensorFlow's registry"):
        opdefs.register_extra(graph_pb2.OpDef(name="MatMul"))


def test_engine_ops_take_their_curated_flags_and_extras_show_in_ops_with():
    read_ref = graph_pb2.OpDef(name="_SmnbReadRef")   # not registered: the engine owns it
    read_ref.input_arg.add(name="ref", type_attr="dtype", is_ref=True)
    read_ref.output_arg.add(name="value", type_attr="dtype")
    read_ref.attr.add(name="dtype", type="type")
    assert {"variable_read", "ref_consumer"} <= opdefs.from_op_def(read_ref).flags
    stateful = opdefs.register_extra(_op_def("_SmnbTestStateful", stateful=True))
    assert stateful.name in opdefs.ops_with("stateful")


def test_concurrent_first_use_builds_one_info():
    results = []
    threads = [threading.Thread(target=lambda: results.append(opdefs.get("Conv3D")))
               for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({id(r) for r in results}) == 1


def test_the_name_index_and_the_opdefs_agree():
    for name in sorted(opdefs.all_ops()):
        assert opdefs.get(name).name == name
