"""Graph: composing nodes, dtype/shape inference, names, and reading existing graphs."""
import numpy as np
import pytest

from conftest import MODELS

import sm_notebook as sm
from sm_notebook import SavedModelError
from sm_notebook.builder import Graph, Operation, Variable
from sm_notebook.builder.attrs import decode_attr
from sm_notebook.builder.shapes import broadcast_shapes
from sm_notebook.format.savedmodel import read_saved_model


def node(g, name):
    return g.node(name)


def test_public_names_come_from_the_package():
    assert sm.Graph is Graph
    assert callable(sm.signature) and sm.Builder.__name__ == "Builder"


def test_placeholder_records_dtype_and_shape_attrs():
    g = Graph()
    x = g.placeholder("x", "float32", (None, 3))
    assert (x.name, x.dtype, x.shape) == ("x:0", "float32", (None, 3))
    assert decode_attr(node(g, "x").attr["shape"]) == (None, 3)
    assert g.placeholder("any", np.int64).shape is None


def test_constants_follow_tf_constant_dtype_rules():
    g = Graph()
    assert g.constant(1.5).dtype == "float32"
    assert g.constant([1, 2]).dtype == "int32"
    assert g.constant(np.float64(2.0)).dtype == "float64"
    assert g.constant(b"text").dtype == "string"
    assert g.constant(3, dtype="int64").dtype == "int64"


def test_table_ops_infer_type_attrs_and_shapes():
    g = Graph()
    x = g.placeholder("x", "float32", (None, 3))
    w = g.constant(np.ones((3, 4), np.float32))
    y = g.op("MatMul", x, w)
    assert (y.dtype, y.shape) == ("float32", (None, 4))
    assert node(g, "MatMul").attr["T"].type == 1
    assert "transpose_a" not in node(g, "MatMul").attr   # an OpDef default: loaders fill it in
    t = g.op("MatMul", w, w, transpose_a=True)
    assert t.shape == (4, 4)
    assert g.op("ArgMax", y, 1).dtype == "int64"
    assert g.op("Cast", y, DstT="int32").dtype == "int32"
    assert g.op("Equal", y, y).dtype == "bool"
    assert g.op("Mean", y, [1], keep_dims=True).shape == (None, 1)
    assert g.op("Reshape", y, [-1, 2, 2]).shape == (None, 2, 2)
    assert g.op("ConcatV2", [y, y], 1).shape == (None, 8)
    assert g.op("Add", y, 1.0).shape == (None, 4)           # the constant takes T from y


def test_conv_and_pool_shapes_match_tensorflow():
    g = Graph()
    images = g.placeholder("images", "float32", (None, 28, 28, 3))
    kernel = g.constant(np.zeros((5, 5, 3, 8), np.float32))
    same = g.op("Conv2D", images, kernel, strides=[1, 2, 2, 1], padding="SAME")
    valid = g.op("Conv2D", images, kernel, strides=[1, 1, 1, 1], padding="VALID")
    assert same.shape == (None, 14, 14, 8)
    assert valid.shape == (None, 24, 24, 8)
    pooled = g.op("MaxPool", valid, ksize=[1, 3, 3, 1], strides=[1, 2, 2, 1], padding="VALID")
    assert pooled.shape == (None, 11, 11, 8)


def test_multi_output_ops_give_several_handles():
    g = Graph()
    x = g.placeholder("x", "float32", (2, 4, 4, 3))
    c = g.constant(np.ones(3, np.float32))
    outputs = g.op("FusedBatchNormV3", x, c, c, c, c, is_training=False)
    assert len(outputs) == 6
    assert outputs[0].shape == (2, 4, 4, 3) and outputs[1].name.endswith(":1")
    parts = g.op("Split", 1, x, num_split=2)
    assert [p.shape for p in parts] == [(2, 2, 4, 3)] * 2


def test_noop_returns_an_operation_usable_as_control_input():
    g = Graph()
    x = g.placeholder("x", "float32", ())
    op = g.op("NoOp", name="group")
    assert isinstance(op, Operation)
    y = g.op("Identity", x, control_inputs=[op])
    assert list(node(g, y.node).input) == ["x:0", "^group"]


def test_every_registered_op_gets_its_type_attrs_from_the_inputs():
    g = Graph()
    x = g.placeholder("x", "float32", (4, 3))
    cum = g.op("Cumsum", x, 0)                     # T and Tidx inferred, no attrs given
    assert node(g, cum.node).attr["T"].type == 1 and node(g, cum.node).attr["Tidx"].type == 3
    a, b = g.op("IdentityN", [x, g.constant([1, 2])])
    assert (a.dtype, b.dtype) == ("float32", "int32") and (a.shape, b.shape) == ((4, 3), (2,))
    assert g.op("OnesLike", x).shape == (4, 3)


def test_attrs_are_encoded_as_the_opdef_types_them():
    g = Graph()
    x = g.placeholder("x", "float32", (2,))
    g.op("LeakyRelu", x, alpha=1, name="leaky")
    assert node(g, "leaky").attr["alpha"].WhichOneof("value") == "f"
    with pytest.raises(SavedModelError, match="'int'"):
        g.op("Unpack", x, num="two")


def test_encode_attr_follows_opdef_attr_types():
    from sm_notebook._proto import graph_pb2
    from sm_notebook.builder.attrs import encode_attr
    assert encode_attr(2, "float").f == 2.0
    assert list(encode_attr([1, 2], "list(float)").list.f) == [1.0, 2.0]
    assert encode_attr("SAME", "string").s == b"SAME"
    assert encode_attr("fn", "func").func.name == "fn"
    assert encode_attr(graph_pb2.NameAttrList(name="g"), "func").func.name == "g"
    with pytest.raises(SavedModelError, match="list\\(int\\)"):
        encode_attr(3, "list(int)")


def test_kernel_fallback_infers_ops_outside_the_table():
    g = Graph()
    x = g.placeholder("x", "float32", (4, 3))
    cum = g.op("Cumsum", x, 0, T=np.float32, Tidx=np.int32)
    assert (cum.dtype, cum.shape) == ("float32", (4, 3))
    flat = g.op("Reshape", x, [-1])
    unique, index = g.op("Unique", flat, T=np.float32, out_idx=np.int32)
    assert unique.shape == (None,)          # data-dependent: the two probes disagree
    assert index.shape == (12,)


def test_mismatched_input_types_are_refused_with_a_cast_hint():
    g = Graph()
    x = g.placeholder("x", "float32", (2,))
    i = g.placeholder("i", "int32", (2,))
    with pytest.raises(SavedModelError, match="Cast"):
        g.op("Add", x, i)
    assert "Add" not in g


def test_missing_required_attrs_are_named():
    g = Graph()
    x = g.placeholder("x", "float32", (1, 4, 4, 1))
    k = g.constant(np.ones((2, 2, 1, 1), np.float32))
    with pytest.raises(SavedModelError, match="padding, strides"):
        g.op("Conv2D", x, k)


def test_failed_op_leaves_no_nodes_behind():
    g = Graph()
    x = g.placeholder("x", "float32", (2, 3))
    before = len(g)
    with pytest.raises(SavedModelError, match="inner dimensions"):
        g.op("MatMul", x, [[1.0, 2.0]])
    assert len(g) == before


def test_shape_errors_are_reported():
    with pytest.raises(SavedModelError, match="broadcast"):
        broadcast_shapes((2, 3), (4,))
    g = Graph()
    x = g.placeholder("x", "float32", (2, 3))
    with pytest.raises(SavedModelError, match="Reshape"):
        g.op("Reshape", x, [4, 2])


def test_node_names_are_validated_and_made_unique():
    g = Graph()
    g.placeholder("x", "float32", ())
    with pytest.raises(SavedModelError, match="already has a node named 'x'"):
        g.placeholder("x", "float32", ())
    with pytest.raises(SavedModelError, match="not a valid TensorFlow node name"):
        g.placeholder("bad name:0", "float32", ())
    assert g.op("Identity", "x:0").node == "Identity"
    assert g.op("Identity", "x:0").node == "Identity_1"


def test_variable_builds_resource_variable_nodes():
    g = Graph()
    w = g.variable("w", np.arange(6, dtype=np.float32).reshape(2, 3))
    assert isinstance(w, Variable)
    assert (w.name, w.dtype, w.shape) == ("w/Read/ReadVariableOp:0", "float32", (2, 3))
    assert node(g, "w").op == "VarHandleOp"
    assert node(g, "w/Assign").op == "AssignVariableOp"
    assert w.handle.dtype == "resource"
    assert g.variables["w"].value is not None
    big = g.variable("big", np.zeros((100, 100), np.float32))
    assert node(g, "big/Initializer/zeros").op == "Fill"   # large values live in the checkpoint only
    assert big.shape == (100, 100)


def test_unknown_tensor_names_suggest_close_ones():
    g = Graph()
    g.placeholder("logits", "float32", ())
    with pytest.raises(SavedModelError, match="logits:0"):
        g.tensor("logit:0")
    with pytest.raises(SavedModelError, match="1 output"):
        g.tensor("logits:3")


def test_existing_graph_types_come_from_attrs_and_output_shapes():
    model = read_saved_model(MODELS / "tf1_multi_tags")
    g = Graph(model.meta_graphs[0].graph_def)
    probabilities = g.tensor("probabilities:0")
    assert (probabilities.dtype, probabilities.shape) == ("float32", (None, 4))
    assert g.tensor("token_ids:0").dtype == "int64"
    assert g.tensor("weights:0").dtype == "float32_ref"
    assert g.tensor("SparseSoftmaxCrossEntropyWithLogits/Shape:0").dtype == "int32"
    extra = g.op("ArgMax", probabilities, 1, name="predicted")
    assert (extra.dtype, extra.shape) == ("int64", (None,))


def test_graph_shapes_are_inferred_when_output_shapes_are_missing():
    g = Graph()
    x = g.placeholder("x", "float32", (None, 3))
    g.op("Relu", g.op("MatMul", x, np.ones((3, 5), np.float32)), name="r")
    for n in g.graph_def.node:
        del n.attr["_output_shapes"]
    fresh = Graph(g.graph_def)
    assert fresh.tensor("r:0").shape == (None, 5)
