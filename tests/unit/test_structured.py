"""StructuredValue decoding (TF-like reprs) and the 'Concrete Functions' listing."""
import pytest

from sm_notebook import showtext
from sm_notebook._proto import saved_model_pb2, struct_pb2, tensor_pb2
from sm_notebook.format import structured
from sm_notebook.format.structured import DType, TensorShape, decode


def _shape(dims):
    proto = tensor_pb2.TensorShapeProto()
    if dims is None:
        proto.unknown_rank = True
    else:
        for size in dims:
            proto.dim.add(size=-1 if size is None else size)
    return proto


def spec(dims, dtype=tensor_pb2.DT_FLOAT, name=""):
    return struct_pb2.StructuredValue(tensor_spec_value=struct_pb2.TensorSpecProto(
        shape=_shape(dims), dtype=dtype, name=name))


def tup(*values):
    value = struct_pb2.StructuredValue()
    value.tuple_value.SetInParent()
    value.tuple_value.values.extend(values)
    return value


def lst(*values):
    value = struct_pb2.StructuredValue()
    value.list_value.SetInParent()
    value.list_value.values.extend(values)
    return value


def dct(**fields):
    value = struct_pb2.StructuredValue()
    value.dict_value.SetInParent()
    for key, field in fields.items():
        value.dict_value.fields[key].CopyFrom(field)
    return value


def none():
    value = struct_pb2.StructuredValue()
    value.none_value.SetInParent()
    return value


def test_tensor_spec_reprs_match_tensorflow():
    assert repr(decode(spec([None, 8], name="x"))) == \
        "TensorSpec(shape=(None, 8), dtype=tf.float32, name='x')"
    assert repr(decode(spec([], tensor_pb2.DT_STRING))) == \
        "TensorSpec(shape=(), dtype=tf.string, name=None)"
    assert repr(decode(spec([3], tensor_pb2.DT_INT64, "ids"))) == \
        "TensorSpec(shape=(3,), dtype=tf.int64, name='ids')"
    assert repr(decode(spec(None, tensor_pb2.DT_HALF))) == \
        "TensorSpec(shape=<unknown>, dtype=tf.float16, name=None)"


@pytest.mark.parametrize("enum, name", [
    (tensor_pb2.DT_FLOAT, "float32"), (tensor_pb2.DT_DOUBLE, "float64"), (tensor_pb2.DT_HALF, "float16"),
    (tensor_pb2.DT_BFLOAT16, "bfloat16"), (tensor_pb2.DT_FLOAT8_E4M3FN, "float8_e4m3fn"),
    (tensor_pb2.DT_RESOURCE, "resource"), (tensor_pb2.DT_FLOAT_REF, "float32_ref"),
    (tensor_pb2.DT_QUINT8, "quint8"), (tensor_pb2.DT_COMPLEX128, "complex128")])
def test_dtype_names(enum, name):
    assert repr(DType(enum)) == "tf." + name
    assert str(DType(enum)) == f"<dtype: '{name}'>"


def test_shapes_print_like_tensorshape():
    assert repr(TensorShape([1, None])) == "TensorShape([1, None])"
    assert repr(TensorShape(None)) == "TensorShape(None)"
    assert str(TensorShape([None])) == "(None,)"
    assert list(TensorShape([2, None])) == [2, None]
    with pytest.raises(ValueError):
        iter(TensorShape(None))


def test_python_values_and_containers():
    value = tup(
        struct_pb2.StructuredValue(bool_value=True), struct_pb2.StructuredValue(int64_value=-3),
        struct_pb2.StructuredValue(float64_value=0.5), struct_pb2.StructuredValue(string_value="a"),
        none(), lst(spec([2])), dct(b=none(), a=struct_pb2.StructuredValue(int64_value=1)))
    assert decode(value) == (True, -3, 0.5, "a", None, [decode(spec([2]))], {"a": 1, "b": None})
    assert list(decode(value)[-1]) == ["a", "b"]  # keys sorted: the proto map order is arbitrary


def test_named_tuple():
    value = struct_pb2.StructuredValue()
    value.named_tuple_value.name = "Point"
    for key in ("x", "y"):
        value.named_tuple_value.values.add(key=key, value=struct_pb2.StructuredValue(int64_value=1))
    point = decode(value)
    assert type(point).__name__ == "Point" and point._fields == ("x", "y") and point == (1, 1)


def test_type_specs():
    ragged = struct_pb2.StructuredValue()
    ragged.type_spec_value.type_spec_class = struct_pb2.TypeSpecProto.RAGGED_TENSOR_SPEC
    ragged.type_spec_value.type_spec_class_name = "RaggedTensorSpec"
    ragged.type_spec_value.type_state.CopyFrom(tup(
        struct_pb2.StructuredValue(tensor_shape_value=_shape([None, None])),
        struct_pb2.StructuredValue(tensor_dtype_value=tensor_pb2.DT_FLOAT),
        struct_pb2.StructuredValue(int64_value=1),
        struct_pb2.StructuredValue(tensor_dtype_value=tensor_pb2.DT_INT64)))
    assert repr(decode(ragged)) == "RaggedTensorSpec(TensorShape([None, None]), tf.float32, 1, tf.int64)"
    variable = struct_pb2.StructuredValue()
    variable.type_spec_value.type_spec_class = struct_pb2.TypeSpecProto.VARIABLE_SPEC
    variable.type_spec_value.type_state.CopyFrom(tup(
        struct_pb2.StructuredValue(tensor_shape_value=_shape([2])),
        struct_pb2.StructuredValue(tensor_dtype_value=tensor_pb2.DT_FLOAT),
        struct_pb2.StructuredValue(bool_value=True), none()))
    assert repr(decode(variable)) == \
        "VariableSpec(shape=(2,), dtype=tf.float32, trainable=True, alias_id=None)"


def test_empty_value_is_an_error():
    with pytest.raises(structured.UndecodableValueError):
        decode(struct_pb2.StructuredValue())


# -- the concrete functions of an object graph ------------------------------------

def _tf2_model(with_cycle=False):
    """A TF2-style SavedModel: root children serve (2 traces), bare, untraced, signatures."""
    model = saved_model_pb2.SavedModel()
    meta_graph = model.meta_graphs.add()
    meta_graph.meta_info_def.tags.append("serve")
    library = meta_graph.graph_def.library
    for name in ("__inference_serve_10", "__inference_serve_20", "__inference_bare_5", "__inference_inner_7"):
        library.function.add().signature.name = name
    call = library.function[0].node_def.add(name="call", op="StatefulPartitionedCall")
    call.attr["f"].func.name = "__inference_inner_7"
    if with_cycle:
        back = library.function[3].node_def.add(name="back", op="PartitionedCall")
        back.attr["f"].func.name = "__inference_serve_10"
    graph = meta_graph.object_graph_def
    root = graph.nodes.add()
    root.user_object.identifier = "_generic_user_object"
    children = [("serve", "function"), ("signatures", "user_object"), ("bare", "bare_concrete_function"),
                ("untraced", "function")]
    for index, (name, kind) in enumerate(children, 1):
        root.children.add(node_id=index, local_name=name)
        getattr(graph.nodes.add(), kind).SetInParent()
    graph.nodes[1].function.concrete_functions.extend(["__inference_serve_10", "__inference_serve_20"])
    graph.nodes[3].bare_concrete_function.concrete_function_name = "__inference_bare_5"
    graph.nodes[3].bare_concrete_function.argument_keywords.extend(["ids", "mask"])
    graph.concrete_functions["__inference_serve_10"].canonicalized_input_signature.CopyFrom(
        tup(tup(spec([None, 8], name="x"), struct_pb2.StructuredValue(bool_value=False)), dct()))
    pair = tup(spec([], name="p_0"), spec([2], name="p_1"))
    mapping = dct(b=spec([1], name="d_b"), a=struct_pb2.StructuredValue(string_value="s"))
    graph.concrete_functions["__inference_serve_20"].canonicalized_input_signature.CopyFrom(
        tup(tup(pair, mapping), dct(flag=none())))
    return model


def test_describe_orders_like_tensorflow():
    model = _tf2_model()
    meta_graph = model.meta_graphs[0]
    functions = structured.describe_concrete_functions(
        meta_graph.object_graph_def, meta_graph.graph_def.library, meta_graph.meta_info_def.stripped_op_list)
    assert [(f.name, f.kind) for f in functions] == [
        ("bare", "bare_concrete_function"), ("serve", "function"), ("untraced", "function")]
    # Loaded as __inference_serve_6 (serve_10) and __inference_serve_10 (serve_20),
    # and TensorFlow sorts the names as strings: '10' < '6'.
    assert [o.name for o in functions[1].options] == ["__inference_serve_20", "__inference_serve_10"]
    assert functions[0].options[0].callable_with() == (("ids", "mask"), None)
    assert functions[2].options == []


def test_load_order_puts_callees_first():
    order = structured.function_load_order(_tf2_model().meta_graphs[0].graph_def.library)
    assert order == ["__inference_inner_7", "__inference_serve_10", "__inference_bare_5",
                     "__inference_serve_20"]


def test_loaded_names_replay_tensorflows_uid_counter():
    meta_graph = _tf2_model().meta_graphs[0]
    op = meta_graph.meta_info_def.stripped_op_list.op.add(name="StatefulPartitionedCall")
    op.output_arg.add(name="output", type_list_attr="Tout")
    meta_graph.graph_def.library.function[0].node_def[0].attr["Tout"].list.type.extend([1, 1])
    names = structured.loaded_function_names(meta_graph.graph_def.library,
                                             meta_graph.meta_info_def.stripped_op_list)
    # uids 0-1 go to saved_model_cli's graph and the loader; then per function, in
    # load order: its graph, one per tensor (none in inner_7; 2 call outputs in serve_10),
    # then its name.
    assert names == {"__inference_inner_7": "__inference_inner_3",
                     "__inference_serve_10": "__inference_serve_7",
                     "__inference_bare_5": "__inference_bare_9",
                     "__inference_serve_20": "__inference_serve_11"}


def test_concrete_functions_text():
    text = showtext.concrete_functions_text(_tf2_model())
    assert text == (
        "\nConcrete Functions:"
        "\n  Function Name: 'bare'\n"
        "    Option #1\n"
        "      Callable with:\n"
        "        Argument #1\n"
        "          ids\n"
        "        Argument #2\n"
        "          mask\n"
        "\n  Function Name: 'serve'\n"
        "    Option #1\n"
        "      Callable with:\n"
        "        Argument #1\n"
        "          DType: tuple\n"
        "          Value: [TensorSpec(shape=(), dtype=tf.float32, name='p_0'), "
        "TensorSpec(shape=(2,), dtype=tf.float32, name='p_1'), \b\b]\n"
        "        Argument #2\n"
        "          DType: dict\n"
        "          Value: {'a': 's', 'b': TensorSpec(shape=(1,), dtype=tf.float32, name='d_b'), \b\b}\n"
        "        Named Argument #1\n"
        "          flag\n"
        "    Option #2\n"
        "      Callable with:\n"
        "        Argument #1\n"
        "          x: TensorSpec(shape=(None, 8), dtype=tf.float32, name='x')\n"
        "        Argument #2\n"
        "          DType: bool\n"
        "          Value: False\n"
        "\n  Function Name: 'untraced'\n")
    clean = showtext.concrete_functions_text(_tf2_model(), backspaces=False)
    assert "\b" not in clean and "name='p_1')]\n" in clean and "name='d_b')}\n" in clean


def test_loader_failures_print_not_available():
    unavailable = "\nConcrete Functions: N/A (could not be listed due to unknown reasons)\n"
    assert showtext.concrete_functions_text(_tf2_model(with_cycle=True)) == unavailable
    two = _tf2_model()
    two.meta_graphs.add().meta_info_def.tags.append("train")
    assert showtext.concrete_functions_text(two) == unavailable
    broken = _tf2_model()
    broken.meta_graphs[0].object_graph_def.concrete_functions["__inference_serve_10"].ClearField(
        "canonicalized_input_signature")
    assert showtext.concrete_functions_text(broken) == unavailable


def test_no_object_graph_no_section():
    model = saved_model_pb2.SavedModel()
    model.meta_graphs.add().meta_info_def.tags.append("serve")
    assert showtext.concrete_functions_text(model) == ""
