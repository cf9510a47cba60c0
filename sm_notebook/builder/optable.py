"""What TensorFlow's OpDefs say about the ops a composed graph commonly uses.

Each entry is written like REGISTER_OP (tensorflow/core/ops/*.cc): input and output
arguments with their types (a type attr such as ``T``, a fixed type such as
``int32``, ``N * T`` for a list sized by an int attr, or a list-of-types attr),
the defaults of type attrs, and the attr defaults the builder writes explicitly.
Attrs TensorFlow added late (``grad_a``, ``explicit_paddings``, ...) are left for
the loader to default, so older TensorFlows accept the graph too.
``tests/interop/test_builder_tf.py`` checks this table against TensorFlow's registry.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .._proto import tensor_pb2

DataType = tensor_pb2.DataType

#: Fixed argument types by the names REGISTER_OP uses.
FIXED_TYPES = {
    "float": DataType.Value("DT_FLOAT"), "double": DataType.Value("DT_DOUBLE"),
    "int32": DataType.Value("DT_INT32"), "int64": DataType.Value("DT_INT64"),
    "bool": DataType.Value("DT_BOOL"), "string": DataType.Value("DT_STRING"),
    "resource": DataType.Value("DT_RESOURCE"),
}


@dataclass(frozen=True)
class Arg:
    """One input or output argument: a fixed type, a type attr, or a list of either."""
    name: str
    type_attr: str = ""          # e.g. "T"
    fixed_type: int = 0          # a DataType, when the type is fixed
    number_attr: str = ""        # "N" in "N * T"
    type_list_attr: str = ""     # "dtypes" in "tensors: dtypes"


@dataclass(frozen=True)
class OpSpec:
    """The parts of an OpDef the builder needs."""
    op: str
    inputs: tuple[Arg, ...]
    outputs: tuple[Arg, ...]
    type_defaults: dict = field(default_factory=dict)   # type attr -> DataType
    attr_defaults: dict = field(default_factory=dict)   # attr -> Python value
    required_attrs: tuple[str, ...] = ()                 # attrs without defaults (besides types)
    stateful: bool = False

    def type_attrs(self) -> set[str]:
        return {a.type_attr for a in self.inputs + self.outputs if a.type_attr}

    def list_attrs(self) -> set[str]:
        return {a.type_list_attr for a in self.inputs + self.outputs if a.type_list_attr}


def _parse_arg(text: str) -> Arg:
    name, _, kind = (part.strip() for part in text.partition(":"))
    number = ""
    if "*" in kind:
        number, _, kind = (part.strip() for part in kind.partition("*"))
    if kind in FIXED_TYPES:
        return Arg(name, fixed_type=FIXED_TYPES[kind], number_attr=number)
    if kind.endswith("[]"):
        return Arg(name, type_list_attr=kind[:-2])
    return Arg(name, type_attr=kind, number_attr=number)


def _args(text: str) -> tuple[Arg, ...]:
    return tuple(_parse_arg(part) for part in text.split(",") if part.strip())


SPECS: dict[str, OpSpec] = {}


def _op(names, signature: str, *, types=None, required=(), stateful=False, **defaults):
    """Register ``names`` with ``"in: T, in2: int32 -> out: T"`` (``dtypes[]``: type list)."""
    inputs, _, outputs = signature.partition("->")
    type_defaults = {k: DataType.Value(v) for k, v in (types or {}).items()}
    for name in names.split():
        SPECS[name] = OpSpec(name, _args(inputs), _args(outputs), type_defaults, dict(defaults),
                             tuple(required), stateful)


# --- element-wise --------------------------------------------------------------
_op("Identity StopGradient Neg Abs Exp Log Log1p Sqrt Rsqrt Square Reciprocal Floor Ceil "
    "Round Rint Sign Erf Sin Cos Tanh Sigmoid Softplus Softsign ZerosLike OnesLike Expm1",
    "x: T -> y: T")
_op("Relu Relu6 Elu Selu", "features: T -> activations: T")
_op("LeakyRelu", "features: T -> activations: T", alpha=0.2)
_op("Softmax LogSoftmax", "logits: T -> softmax: T")
_op("Add AddV2 Sub Mul RealDiv Div DivNoNan Maximum Minimum Pow SquaredDifference FloorDiv "
    "FloorMod TruncateDiv Atan2", "x: T, y: T -> z: T")
_op("Less LessEqual Greater GreaterEqual", "x: T, y: T -> z: bool")
_op("Equal NotEqual", "x: T, y: T -> z: bool", incompatible_shape_error=True)
_op("LogicalAnd LogicalOr", "x: bool, y: bool -> z: bool")
_op("LogicalNot", "x: bool -> y: bool")
_op("AddN", "inputs: N * T -> sum: T")
_op("Select SelectV2", "condition: bool, t: T, e: T -> output: T")
_op("ClipByValue", "t: T, clip_value_min: T, clip_value_max: T -> output: T")

# --- linear algebra and nn -------------------------------------------------------
_op("MatMul", "a: T, b: T -> product: T", transpose_a=False, transpose_b=False)
_op("BatchMatMulV2", "x: T, y: T -> output: T", adj_x=False, adj_y=False)
_op("BiasAdd", "value: T, bias: T -> output: T", data_format="NHWC")
_op("Conv2D", "input: T, filter: T -> output: T", required=("strides", "padding"),
    use_cudnn_on_gpu=True, data_format="NHWC", dilations=[1, 1, 1, 1])
_op("DepthwiseConv2dNative", "input: T, filter: T -> output: T",
    required=("strides", "padding"), data_format="NHWC", dilations=[1, 1, 1, 1])
_op("MaxPool AvgPool", "input: T -> output: T", required=("ksize", "strides", "padding"),
    data_format="NHWC")
_op("FusedBatchNormV3", "x: T, scale: U, offset: U, mean: U, variance: U -> y: T, "
    "batch_mean: U, batch_variance: U, reserve_space_1: U, reserve_space_2: U, "
    "reserve_space_3: U", epsilon=0.0001, exponential_avg_factor=1.0, data_format="NHWC", is_training=True)

# --- shapes and layout ----------------------------------------------------------
_op("Reshape", "tensor: T, shape: Tshape -> output: T", types={"Tshape": "DT_INT32"})
_op("Cast", "x: SrcT -> y: DstT", required=("DstT",), Truncate=False)
_op("Shape", "input: T -> output: out_type", types={"out_type": "DT_INT32"})
_op("Size", "input: T -> output: out_type", types={"out_type": "DT_INT32"})
_op("Rank", "input: T -> output: int32")
_op("ExpandDims", "input: T, dim: Tdim -> output: T", types={"Tdim": "DT_INT32"})
_op("Squeeze", "input: T -> output: T", squeeze_dims=[])
_op("Transpose", "x: T, perm: Tperm -> y: T", types={"Tperm": "DT_INT32"})
_op("ConcatV2", "values: N * T, axis: Tidx -> output: T", types={"Tidx": "DT_INT32"})
_op("Pack", "values: N * T -> output: T", axis=0)
_op("Unpack", "value: T -> output: num * T", required=("num",), axis=0)
_op("Split", "split_dim: int32, value: T -> output: num_split * T", required=("num_split",))
_op("Tile", "input: T, multiples: Tmultiples -> output: T", types={"Tmultiples": "DT_INT32"})
_op("Pad", "input: T, paddings: Tpaddings -> output: T", types={"Tpaddings": "DT_INT32"})
_op("Fill", "dims: index_type, value: T -> output: T", types={"index_type": "DT_INT32"})
_op("GatherV2", "params: Tparams, indices: Tindices, axis: Taxis -> output: Tparams",
    batch_dims=0)
_op("StridedSlice", "input: T, begin: Index, end: Index, strides: Index -> output: T",
    begin_mask=0, end_mask=0, ellipsis_mask=0, new_axis_mask=0, shrink_axis_mask=0)
_op("OneHot", "indices: TI, depth: int32, on_value: T, off_value: T -> output: T",
    types={"TI": "DT_INT64"}, axis=-1)

# --- reductions -----------------------------------------------------------------
_op("Mean Sum Max Min Prod", "input: T, reduction_indices: Tidx -> output: T",
    types={"Tidx": "DT_INT32"}, keep_dims=False)
_op("All Any", "input: bool, reduction_indices: Tidx -> output: bool",
    types={"Tidx": "DT_INT32"}, keep_dims=False)
_op("ArgMax ArgMin", "input: T, dimension: Tidx -> output: output_type",
    types={"Tidx": "DT_INT32", "output_type": "DT_INT64"})

# --- sources, variables and checkpoints -------------------------------------------
_op("Placeholder", " -> output: dtype", required=("dtype",))
_op("PlaceholderWithDefault", "input: dtype -> output: dtype", required=("shape",))
_op("Const", " -> output: dtype", required=("value", "dtype"))
_op("NoOp", " -> ", stateful=False)
_op("VarHandleOp", " -> resource: resource", required=("dtype", "shape"), stateful=True,
    container="", shared_name="")
_op("ReadVariableOp", "resource: resource -> value: dtype", required=("dtype",), stateful=True)
_op("AssignVariableOp", "resource: resource, value: dtype -> ", required=("dtype",),
    stateful=True)
_op("VarIsInitializedOp", "resource: resource -> is_initialized: bool", stateful=True)
_op("VariableV2", " -> ref: dtype", required=("shape", "dtype"), stateful=True,
    container="", shared_name="")
_op("SaveV2", "prefix: string, tensor_names: string, shape_and_slices: string, "
    "tensors: dtypes[] -> ", stateful=True)
_op("RestoreV2", "prefix: string, tensor_names: string, shape_and_slices: string "
    "-> tensors: dtypes[]", stateful=True)
_op("MergeV2Checkpoints", "checkpoint_prefixes: string, destination_prefix: string -> ",
    stateful=True, delete_old_dirs=True)
_op("ShardedFilename", "basename: string, shard: int32, num_shards: int32 -> filename: string")
_op("StringJoin", "inputs: N * string -> output: string", separator="")
_op("StaticRegexFullMatch", "input: string -> output: bool", required=("pattern",))

#: TF1 variable ops, whose output is a reference type (DT_FLOAT_REF = DT_FLOAT + 100).
REFERENCE_OUTPUT_OPS = frozenset({"VariableV2", "Variable"})


def spec_for(op: str) -> OpSpec | None:
    """The table entry of ``op``, or None when the op is not in the table."""
    return SPECS.get(op)
