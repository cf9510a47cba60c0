"""StructuredValue protos decoded into Python values that print like TensorFlow's.

TF2 SavedModels record each concrete function's input signature as a
StructuredValue tree (nested tuples, dicts, TensorSpecs, Python constants).
`decode` turns such a tree into plain Python containers holding the small
spec classes below, whose repr/str match TensorFlow's, so that
``repr(decode(value))`` reads exactly as in TensorFlow. `describe_concrete_functions`
lists the functions of a SavedObjectGraph in the order saved_model_cli prints them.
No TensorFlow and, unless a value embeds a tensor, no numpy.
"""
from __future__ import annotations

import collections
import re
from typing import NamedTuple

from ..errors import SavedModelError
from .._proto import struct_pb2, tensor_pb2

__all__ = [
    "DType", "TensorShape", "TensorSpec", "BoundedTensorSpec", "TypeSpec", "VariableSpec",
    "ConstantTensor", "LazyNumpyValue", "UndecodableValueError", "decode", "ConcreteFunctionOption",
    "FunctionDescription", "describe_concrete_functions", "function_load_order",
    "loaded_function_names",
]


class UndecodableValueError(SavedModelError):
    """A StructuredValue holds nothing, or a kind TensorFlow itself cannot decode."""


# -- dtypes -----------------------------------------------------------------

_DTYPE_NAME_EXCEPTIONS = {"DT_FLOAT": "float32", "DT_DOUBLE": "float64", "DT_HALF": "float16"}


def dtype_python_name(enum_value: int) -> str:
    """TensorFlow's Python name of a DataType enum value: 1 -> 'float32', 101 -> 'float32_ref'."""
    try:
        proto_name = tensor_pb2.DataType.Name(enum_value)
    except ValueError:
        return f"<unknown dtype {enum_value}>"
    is_ref = proto_name.endswith("_REF")
    if is_ref:
        proto_name = proto_name[:-len("_REF")]
    name = _DTYPE_NAME_EXCEPTIONS.get(proto_name, proto_name[len("DT_"):].lower())
    return name + "_ref" if is_ref else name


class DType:
    """A tf.DType stand-in: repr 'tf.float32', str "<dtype: 'float32'>"."""

    __slots__ = ("enum",)

    def __init__(self, enum: int):
        self.enum = int(enum)

    @property
    def name(self) -> str:
        return dtype_python_name(self.enum)

    def __repr__(self):
        return "tf." + self.name

    def __str__(self):
        return f"<dtype: {self.name!r}>"

    def __eq__(self, other):
        return isinstance(other, DType) and other.enum == self.enum

    def __hash__(self):
        return hash(("DType", self.enum))


# -- shapes and specs -------------------------------------------------------

class TensorShape:
    """A tf.TensorShape stand-in; dims is None (unknown rank) or a tuple of int/None."""

    __slots__ = ("dims",)

    def __init__(self, dims):
        self.dims = None if dims is None else tuple(dims)

    @classmethod
    def from_proto(cls, shape_proto) -> "TensorShape":
        """From a TensorShapeProto; size -1 is an unknown dimension."""
        if shape_proto.unknown_rank:
            return cls(None)
        return cls(None if d.size == -1 else int(d.size) for d in shape_proto.dim)

    @property
    def rank(self):
        return None if self.dims is None else len(self.dims)

    def as_list(self) -> list:
        if self.dims is None:
            raise ValueError("as_list() is not defined on an unknown TensorShape.")
        return list(self.dims)

    def __iter__(self):
        if self.dims is None:
            raise ValueError("Cannot iterate over a shape with unknown rank.")
        return iter(self.dims)

    def __len__(self):
        if self.dims is None:
            raise ValueError("Cannot take the length of shape with unknown rank.")
        return len(self.dims)

    def __str__(self):
        if self.dims is None:
            return "<unknown>"
        if len(self.dims) == 1:
            return f"({self.dims[0]},)"
        return "(" + ", ".join(str(d) for d in self.dims) + ")"

    def __repr__(self):
        return "TensorShape(None)" if self.dims is None else f"TensorShape({list(self.dims)})"

    def __eq__(self, other):
        return isinstance(other, TensorShape) and other.dims == self.dims

    def __hash__(self):
        return hash(("TensorShape", self.dims))


class TensorSpec:
    """A tf.TensorSpec stand-in: TensorSpec(shape=(None, 8), dtype=tf.float32, name='x')."""

    __slots__ = ("shape", "dtype", "name")

    def __init__(self, shape: TensorShape, dtype: DType, name=None):
        self.shape = shape
        self.dtype = dtype
        self.name = name

    def __repr__(self):
        return f"{type(self).__name__}(shape={self.shape}, dtype={self.dtype!r}, name={self.name!r})"

    def __eq__(self, other):
        return (type(other) is type(self) and other.shape == self.shape
                and other.dtype == self.dtype and other.name == self.name)

    def __hash__(self):
        return hash((type(self).__name__, self.shape, self.dtype))


class BoundedTensorSpec(TensorSpec):
    """A tf.BoundedTensorSpec stand-in; minimum and maximum are numpy arrays."""

    __slots__ = ("minimum", "maximum")

    def __init__(self, shape, dtype, name, minimum, maximum):
        super().__init__(shape, dtype, name)
        self.minimum = minimum
        self.maximum = maximum

    def __repr__(self):
        return (f"BoundedTensorSpec(shape={self.shape}, dtype={self.dtype!r}, name={self.name!r}, "
                f"minimum={self.minimum!r}, maximum={self.maximum!r})")

    def __eq__(self, other):
        return super().__eq__(other) and repr(other) == repr(self)

    __hash__ = TensorSpec.__hash__


#: TypeSpecProto.type_spec_class -> the TensorFlow class it names.
TYPE_SPEC_CLASS_NAMES = {
    1: "SparseTensorSpec", 2: "IndexedSlicesSpec", 3: "RaggedTensorSpec",
    4: "TensorArraySpec", 5: "DatasetSpec", 6: "IteratorSpec", 7: "OptionalSpec",
    8: "PerReplicaSpec", 9: "VariableSpec", 10: "RowPartitionSpec",
}


class TypeSpec:
    """A composite tf.TypeSpec (RaggedTensorSpec, SparseTensorSpec, ...).

    Holds the class name and the decoded serialization state; the repr is
    TensorFlow's default ``ClassName(state...)``.
    """

    __slots__ = ("class_name", "state")

    def __init__(self, class_name: str, state):
        self.class_name = class_name
        self.state = state

    def __repr__(self):
        return f"{self.class_name}{self.state!r}"

    def __eq__(self, other):
        return isinstance(other, TypeSpec) and (other.class_name, repr(other)) == (
            self.class_name, repr(self))

    def __hash__(self):
        return hash((self.class_name, repr(self)))


class VariableSpec(TypeSpec):
    """A tf VariableSpec; its state is (shape, dtype, trainable, alias_id)."""

    __slots__ = ()

    def __repr__(self):
        state = tuple(self.state) + (None,) * (4 - len(self.state))
        shape, dtype, trainable, alias_id = state[:4]
        return (f"VariableSpec(shape={shape}, dtype={dtype!r}, "
                f"trainable={trainable!r}, alias_id={alias_id!r})")


class ConstantTensor:
    """A constant tensor embedded in a signature (StructuredValue.tensor_value).

    TensorFlow rebuilds it as a graph constant; its str names the graph node,
    which TensorFlow numbers at load time, so ours always says Const:0.
    """

    __slots__ = ("proto",)

    def __init__(self, proto):
        self.proto = proto

    def __repr__(self):
        shape = TensorShape.from_proto(self.proto.tensor_shape)
        return f'Tensor("Const:0", shape={shape}, dtype={dtype_python_name(self.proto.dtype)})'

    def __eq__(self, other):
        return isinstance(other, ConstantTensor) and other.proto == self.proto

    def __hash__(self):
        return hash(self.proto.SerializeToString(deterministic=True))


class LazyNumpyValue:
    """A numpy value embedded in a signature (StructuredValue.numpy_value) too large to
    decode just to describe it: its repr gives shape and dtype; ``numpy()`` decodes it."""

    __slots__ = ("proto",)

    def __init__(self, proto):
        self.proto = proto

    def numpy(self, **limits):
        """The array (see tensors.tensor_proto_to_numpy for ``limits``)."""
        from .tensors import tensor_proto_to_numpy
        return tensor_proto_to_numpy(self.proto, **limits)

    def __repr__(self):
        shape = TensorShape.from_proto(self.proto.tensor_shape)
        return f"<numpy array, shape={shape}, dtype={dtype_python_name(self.proto.dtype)}>"

    def __eq__(self, other):
        return isinstance(other, LazyNumpyValue) and other.proto == self.proto

    def __hash__(self):
        return hash(self.proto.SerializeToString(deterministic=True))


#: numpy_value tensors up to this many elements are decoded (numpy's print threshold);
#: larger ones, and any that repeat a short field into more than _EAGER_FILL elements,
#: stay LazyNumpyValue, so describing a model never allocates what its numbers claim.
_EAGER_ELEMENTS = 1000
_EAGER_FILL = 16


def _tensor_proto_to_numpy(proto):
    from .tensors import stored_element_count, tensor_proto_to_numpy  # numpy only when needed
    dims = [d.size for d in proto.tensor_shape.dim]
    count = 1
    for size in dims:
        count *= max(size, 0)
    if len(dims) > 64 or count > _EAGER_ELEMENTS or (
            count > _EAGER_FILL and not proto.tensor_content
            and stored_element_count(proto) < count):
        return LazyNumpyValue(proto)
    return tensor_proto_to_numpy(proto)


# -- decoding ---------------------------------------------------------------

def _make_named_tuple(name: str, items: list):
    try:
        cls = collections.namedtuple(name, [key for key, _ in items])
    except ValueError:
        cls = collections.namedtuple(name if name.isidentifier() else "NamedTuple",
                                     [key for key, _ in items], rename=True)
    return cls(*[value for _, value in items])


def decode(value: struct_pb2.StructuredValue):
    """The Python value a StructuredValue encodes, built as TensorFlow's decoder builds it.

    Tuples, lists, dicts (keys sorted: the proto map's order is arbitrary,
    TensorFlow's differs from run to run), namedtuples, None, bool,
    int, float, str; shapes, dtypes and specs become the classes of this module;
    numpy_value becomes a numpy array (a LazyNumpyValue when large, or when decoding
    it would repeat a short field: describing never allocates what a model claims). Raises UndecodableValueError on an empty
    value or an unknown kind.
    """
    kind = value.WhichOneof("kind")
    if kind == "tuple_value":
        return tuple(decode(v) for v in value.tuple_value.values)
    if kind == "list_value":
        return [decode(v) for v in value.list_value.values]
    if kind == "dict_value":
        fields = value.dict_value.fields
        return {key: decode(fields[key]) for key in sorted(fields)}
    if kind == "named_tuple_value":
        items = [(pair.key, decode(pair.value)) for pair in value.named_tuple_value.values]
        return _make_named_tuple(value.named_tuple_value.name, items)
    if kind == "none_value":
        return None
    if kind == "bool_value":
        return value.bool_value
    if kind == "int64_value":
        return int(value.int64_value)
    if kind == "float64_value":
        return value.float64_value
    if kind == "string_value":
        return value.string_value
    if kind == "tensor_shape_value":
        return TensorShape.from_proto(value.tensor_shape_value)
    if kind == "tensor_dtype_value":
        return DType(value.tensor_dtype_value)
    if kind == "tensor_spec_value":
        spec = value.tensor_spec_value
        return TensorSpec(TensorShape.from_proto(spec.shape), DType(spec.dtype), spec.name or None)
    if kind == "bounded_tensor_spec_value":
        spec = value.bounded_tensor_spec_value
        return BoundedTensorSpec(TensorShape.from_proto(spec.shape), DType(spec.dtype),
                                 spec.name or None, _tensor_proto_to_numpy(spec.minimum),
                                 _tensor_proto_to_numpy(spec.maximum))
    if kind == "type_spec_value":
        return _decode_type_spec(value.type_spec_value)
    if kind == "tensor_value":
        return ConstantTensor(value.tensor_value)
    if kind == "numpy_value":
        return _tensor_proto_to_numpy(value.numpy_value)
    if kind is None:
        raise UndecodableValueError("An empty StructuredValue cannot be decoded; "
                                    "the SavedObjectGraph is incomplete.")
    raise UndecodableValueError(f"Unknown StructuredValue kind {kind!r}.")


def _decode_type_spec(proto):
    state = decode(proto.type_state)
    class_name = proto.type_spec_class_name or TYPE_SPEC_CLASS_NAMES.get(proto.type_spec_class)
    if not class_name:
        raise UndecodableValueError(
            f"TypeSpecProto with class enum {proto.type_spec_class} and no class name.")
    if class_name == "VariableSpec" or proto.type_spec_class == 9:
        return VariableSpec("VariableSpec", state)
    return TypeSpec(class_name, state)


# -- concrete functions -----------------------------------------------------

class ConcreteFunctionOption(NamedTuple):
    """One traced signature of a function.

    name: the FunctionDef name in the graph's library (e.g. __inference_serve_42).
    args: the positional argument structure (a tuple of specs and values), or
        None when the SavedObjectGraph records no input signature.
    kwargs: the keyword argument structure (a dict), or None.
    arg_keywords: a bare concrete function's flat argument names.
    """

    name: str
    args: tuple | list | None
    kwargs: dict | None
    arg_keywords: tuple = ()

    def callable_with(self):
        """(positional, keyword) as saved_model_cli lists them; keyword names only."""
        if self.args is not None or self.kwargs is not None:
            return self.args, self.kwargs
        return (self.arg_keywords or None), None


class FunctionDescription(NamedTuple):
    """A function attached to the root object of a TF2 SavedModel.

    name: the attribute name (e.g. 'serve', '__call__').
    kind: 'function' (a tf.function, polymorphic) or 'bare_concrete_function'.
    options: its concrete functions, in saved_model_cli's order.
    """

    name: str
    kind: str
    options: list


_INFERENCE_NAME = re.compile(r"^__inference_(.*)_\d+$")

#: ops.uid() values saved_model_cli consumes before loading the first function:
#: its tf.Graph() and the loader's shared-name suffix.
UIDS_BEFORE_FUNCTIONS = 2


def _base_name(library_name: str) -> str:
    match = _INFERENCE_NAME.search(library_name)
    return match.group(1) if match else library_name


class _OpShape:
    """What the loader needs from an OpDef: its output arity rule and its non-function attrs."""

    __slots__ = ("fixed_outputs", "counted_outputs", "plain_attrs")

    def __init__(self, op_def):
        defaults = {a.name: a.default_value for a in getattr(op_def, "attr", ())
                    if a.HasField("default_value")}
        self.fixed_outputs = 0
        self.counted_outputs = []  # (attr name, is a type list, default count)
        for arg in op_def.output_arg:
            name = arg.number_attr or arg.type_list_attr
            if not name:
                self.fixed_outputs += 1
                continue
            default = defaults.get(name)
            if default is None:
                default_count = 1
            else:
                default_count = default.i if arg.number_attr else len(default.list.type)
            self.counted_outputs.append((name, not arg.number_attr, default_count))
        self.plain_attrs = frozenset(a.name for a in getattr(op_def, "attr", ())
                                     if a.type not in ("func", "list(func)"))

    def outputs(self, node) -> int:
        count = self.fixed_outputs
        for name, is_type_list, default in self.counted_outputs:
            attr = node.attr.get(name)
            if attr is None:
                count += default
            else:
                count += len(attr.list.type) if is_type_list else attr.i
        return count


def _op_shapes(function_library, op_list) -> dict:
    shapes = {op.name: _OpShape(op) for op in op_list.op} if op_list is not None else {}
    shapes.update((f.signature.name, _OpShape(f.signature)) for f in function_library.function)
    return shapes


def _tensors_created(function_def, op_shapes) -> int:
    """Tensors TensorFlow creates importing a function body: one per input, one per op output."""
    count = len(function_def.signature.input_arg)
    for node in function_def.node_def:
        shape = op_shapes.get(node.op)
        count += 1 if shape is None else shape.outputs(node)  # unknown op: assume one output
    return count


def loaded_function_names(function_library, op_list=None) -> dict:
    """Library function name -> the name saved_model_cli's load gives it.

    TensorFlow renames each function '__inference_<name>_<uid>' as it loads
    it (callees first), where uid is a process-wide counter that every graph
    and every tensor created while importing the function body also advances.
    This replays that count (op output arities come from `op_list`, the
    MetaGraphDef's stripped_op_list), so the names, and hence the order in
    which saved_model_cli lists concrete functions, are TensorFlow's.
    Raises UndecodableValueError where TensorFlow's loader would fail.
    """
    op_shapes = _op_shapes(function_library, op_list)
    by_name = {f.signature.name: f for f in function_library.function}
    uid = UIDS_BEFORE_FUNCTIONS + sum(1 for g in function_library.registered_gradients
                                      if g.registered_op_type)
    names = {}
    for library_name in function_load_order(function_library, op_shapes):
        function_def = by_name[library_name]
        uid += sum(1 for node in function_def.node_def if node.op == "HashTableV2"
                   and not node.attr["use_node_name_sharing"].b)  # noqa: E501 (renamed tables)
        uid += 1 + _tensors_created(function_def, op_shapes)  # its graph, its tensors
        names[library_name] = f"__inference_{_base_name(library_name)}_{uid}"
        uid += 1
    return names


#: Attributes TensorFlow adds to nodes that never hold a function (skipped for speed).
_NON_FUNCTION_PRIVATE_ATTRS = frozenset([
    "_output_shapes", "_has_manual_control_dependencies", "_class", "_read_only_resource_inputs",
    "_user_specified_name", "_gradient_op_type", "_input_shapes", "_XlaMustCompile", "_noinline",
    "_collective_manager_ids", "_acd_function_control_output", "_lower_using_switch_merge",
    "_num_original_outputs", "_stateful_parallelism"])


def _function_dependencies(function_def, library_names, gradient_functions, op_shapes) -> set:
    deps = set()
    for node in function_def.node_def:
        attrs = node.attr
        if node.op in library_names:
            deps.add(node.op)
            continue
        if "_gradient_op_type" in attrs and node.op not in ("StatefulPartitionedCall", "PartitionedCall"):
            gradient_function = gradient_functions.get(attrs["_gradient_op_type"].s)
            if gradient_function:
                deps.add(gradient_function)
                continue
        shape = op_shapes.get(node.op)
        plain = shape.plain_attrs if shape is not None else ()
        for key in attrs:
            if key in plain or key in _NON_FUNCTION_PRIVATE_ATTRS:
                continue  # typed as neither func nor list(func)
            attr = attrs[key]
            which = attr.WhichOneof("value")
            if which == "func":
                deps.add(attr.func.name)
            elif which == "list":
                deps.update(f.name for f in attr.list.func)
    return deps


def function_load_order(function_library, op_shapes=None) -> list:
    """Library function names in the order TensorFlow's loader imports them.

    Callees first: a depth-first topological sort that starts from the
    caller-free functions in library order, most recent first. Raises
    UndecodableValueError on a dependency cycle or a call to a missing
    function, where TensorFlow's loader fails too.
    """
    library_names = {f.signature.name for f in function_library.function}
    gradient_functions = {g.registered_op_type.encode(): g.gradient_func
                          for g in function_library.registered_gradients if g.registered_op_type}
    dependents = collections.defaultdict(list)
    pending_deps = collections.Counter()
    for function_def in function_library.function:
        name = function_def.signature.name
        for dep in _function_dependencies(function_def, library_names, gradient_functions,
                                          op_shapes or {}):
            dependents[dep].append(name)
            pending_deps[name] += 1
    ready = [f.signature.name for f in function_library.function
             if pending_deps[f.signature.name] == 0]
    order = []
    while ready:
        name = ready.pop()
        order.append(name)
        for dependent in dependents[name]:
            pending_deps[dependent] -= 1
            if not pending_deps[dependent]:
                ready.append(dependent)
    if len(order) != len(function_library.function):
        stuck = sorted(library_names - set(order))
        raise UndecodableValueError(
            f"The function library has a dependency cycle or calls a missing function: {stuck[:5]}.")
    return order


def _describe_option(object_graph, library_name, loaded_names, arg_keywords=()):
    args = kwargs = None
    if loaded_names is not None and library_name not in loaded_names:
        raise UndecodableValueError(
            f"Concrete function {library_name!r} is missing from the function library.")
    saved = object_graph.concrete_functions.get(library_name)
    if saved is not None:
        signature = decode(saved.canonicalized_input_signature)
        if signature:
            if not (isinstance(signature, tuple) and len(signature) == 2):
                raise UndecodableValueError(
                    f"Concrete function {library_name!r} has an input signature that is "
                    "not an (args, kwargs) pair.")
            args, kwargs = signature
    sort_key = loaded_names[library_name] if loaded_names is not None else ""
    return sort_key, ConcreteFunctionOption(library_name, args, kwargs, tuple(arg_keywords))


def describe_concrete_functions(saved_object_graph, function_library=None, op_list=None) -> list:
    """The functions attached to the root object, as saved_model_cli --all lists them.

    Returns FunctionDescriptions sorted by attribute name. Each one's options
    are in saved_model_cli's order when `function_library` (the MetaGraphDef's
    graph_def.library) and `op_list` (its meta_info_def.stripped_op_list) are
    given: sorted by the names TensorFlow gives the functions when it loads
    them (see loaded_function_names); otherwise in the SavedObjectGraph's order.
    Only the root's direct children are listed, as saved_model_cli does.
    Raises UndecodableValueError where TensorFlow's loader would fail.
    """
    if not saved_object_graph.nodes:
        return []
    loaded_names = (loaded_function_names(function_library, op_list)
                    if function_library is not None else None)
    nodes = saved_object_graph.nodes
    described = []
    for child in nodes[0].children:
        if not 0 <= child.node_id < len(nodes):
            continue
        node = nodes[child.node_id]
        kind = node.WhichOneof("kind")
        if kind == "function":
            options = [_describe_option(saved_object_graph, name, loaded_names)
                       for name in node.function.concrete_functions]
        elif kind == "bare_concrete_function":
            bare = node.bare_concrete_function
            options = [_describe_option(saved_object_graph, bare.concrete_function_name,
                                        loaded_names, bare.argument_keywords)]
        else:
            continue
        options.sort(key=lambda keyed: keyed[0])
        described.append(FunctionDescription(child.local_name, kind, [o for _, o in options]))
    described.sort(key=lambda f: f.name)
    return described
