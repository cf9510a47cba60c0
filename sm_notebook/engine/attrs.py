"""AttrValue protos -> the Python values kernels receive, OpDef defaults filled in.

The decoded forms are those of the kernel contract (see ``ops/registry.py``).
Defaults come from the metagraph's ``stripped_op_list`` (TensorFlow strips
default-valued attrs from nodes when ``stripped_default_attrs`` is set), then
from `DEFAULTS`, a small table for the ops the engine runs, for graphs that
carry no op list.
"""
from __future__ import annotations

from ..errors import SavedModelError
from ..format.tensors import dtype_to_numpy, shape_from_proto, tensor_proto_to_numpy
from .context import check_output_count
from .ops.registry import KERNELS, FuncAttr, OutputArg

_NHWC = "NHWC"

#: Defaults of attrs TensorFlow may strip from nodes, for graphs without an op list.
DEFAULTS: dict[str, dict] = {
    "MatMul": {"transpose_a": False, "transpose_b": False},
    "BatchMatMul": {"adj_x": False, "adj_y": False},
    "BatchMatMulV2": {"adj_x": False, "adj_y": False},
    "BatchMatMulV3": {"adj_x": False, "adj_y": False},
    "BiasAdd": {"data_format": _NHWC},
    "Conv2D": {"data_format": _NHWC, "dilations": [1, 1, 1, 1], "explicit_paddings": [],
               "use_cudnn_on_gpu": True},
    "Conv3D": {"data_format": "NDHWC", "dilations": [1, 1, 1, 1, 1]},
    "DepthwiseConv2dNative": {"data_format": _NHWC, "dilations": [1, 1, 1, 1],
                              "explicit_paddings": []},
    "MaxPool": {"data_format": _NHWC, "explicit_paddings": []},
    "AvgPool": {"data_format": _NHWC},
    "FusedBatchNorm": {"epsilon": 0.0001, "data_format": _NHWC, "is_training": True,
                       "exponential_avg_factor": 1.0},
    "FusedBatchNormV3": {"epsilon": 0.0001, "data_format": _NHWC, "is_training": True,
                         "exponential_avg_factor": 1.0},
    "Cast": {"Truncate": False},
    "Sum": {"keep_dims": False}, "Mean": {"keep_dims": False}, "Max": {"keep_dims": False},
    "Min": {"keep_dims": False}, "Prod": {"keep_dims": False}, "All": {"keep_dims": False},
    "Any": {"keep_dims": False},
    "ArgMax": {"output_type": dtype_to_numpy(9)}, "ArgMin": {"output_type": dtype_to_numpy(9)},
    "Shape": {"out_type": dtype_to_numpy(3)}, "ShapeN": {"out_type": dtype_to_numpy(3)},
    "Size": {"out_type": dtype_to_numpy(3)},
    "Squeeze": {"squeeze_dims": []},
    "Pack": {"axis": 0}, "Unpack": {"axis": 0},
    "GatherV2": {"batch_dims": 0},
    "OneHot": {"axis": -1},
    "TopKV2": {"sorted": True},
    "LeakyRelu": {"alpha": 0.2},
    "CumSum": {"exclusive": False, "reverse": False},
    "CumProd": {"exclusive": False, "reverse": False},
    "StridedSlice": {"begin_mask": 0, "end_mask": 0, "ellipsis_mask": 0, "new_axis_mask": 0,
                     "shrink_axis_mask": 0},
    "ResizeBilinear": {"align_corners": False, "half_pixel_centers": False},
    "ResizeNearestNeighbor": {"align_corners": False, "half_pixel_centers": False},
    "Unique": {"out_idx": dtype_to_numpy(3)},
    "Equal": {"incompatible_shape_error": True}, "NotEqual": {"incompatible_shape_error": True},
    "VarHandleOp": {"container": "", "shared_name": "", "allowed_devices": []},
    "VariableV2": {"container": "", "shared_name": ""},
    "Assign": {"validate_shape": True, "use_locking": True},
    "AssignAdd": {"use_locking": False}, "AssignSub": {"use_locking": False},
    "Placeholder": {"shape": None},
    "PartitionedCall": {"config": "", "config_proto": "", "executor_type": ""},
    "StatefulPartitionedCall": {"config": "", "config_proto": "", "executor_type": ""},
    "If": {"output_shapes": []}, "StatelessIf": {"output_shapes": []},
    "While": {"output_shapes": [], "parallel_iterations": 10},
    "StatelessWhile": {"output_shapes": [], "parallel_iterations": 10},
    "Case": {"output_shapes": []}, "StatelessCase": {"output_shapes": []},
    "Enter": {"is_constant": False, "parallel_iterations": 10},
    "RefEnter": {"is_constant": False, "parallel_iterations": 10},
    "Assert": {"summarize": 3},
    "HashTableV2": {"container": "", "shared_name": "", "use_node_name_sharing": False},
    "MutableHashTableV2": {"container": "", "shared_name": "", "use_node_name_sharing": False},
}


def decode_attr(value, func_attrs: dict | None = None, *, where: str = ""):
    """One AttrValue as the kernel contract's Python value.

    ``func_attrs``: the decoded attrs of the function instantiation, which
    ``placeholder`` attrs of a FunctionDef body refer to.
    """
    kind = value.WhichOneof("value")
    if kind == "s":
        return _text(value.s)
    if kind == "i":
        return int(value.i)
    if kind == "f":
        return float(value.f)
    if kind == "b":
        return bool(value.b)
    if kind == "type":
        return dtype_to_numpy(value.type)
    if kind == "shape":
        return shape_from_proto(value.shape)
    if kind == "tensor":
        return tensor_proto_to_numpy(value.tensor)
    if kind == "func":
        return decode_func(value.func, func_attrs)
    if kind == "list":
        return _decode_list(value.list, func_attrs)
    if kind == "placeholder":
        if func_attrs is None or value.placeholder not in func_attrs:
            raise SavedModelError(
                f"Attr placeholder ${value.placeholder}{where} has no value: the function "
                "was called without that attr.")
        return func_attrs[value.placeholder]
    return None


def decode_func(name_attr_list, func_attrs=None) -> FuncAttr:
    attrs = {k: decode_attr(v, func_attrs) for k, v in name_attr_list.attr.items()}
    return FuncAttr(name_attr_list.name, attrs)


def _text(raw: bytes):
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return bytes(raw)


def _decode_list(lst, func_attrs):
    if lst.s:
        return [_text(s) for s in lst.s]
    if lst.i:
        return [int(i) for i in lst.i]
    if lst.f:
        return [float(f) for f in lst.f]
    if lst.b:
        return [bool(b) for b in lst.b]
    if lst.type:
        return [dtype_to_numpy(t) for t in lst.type]
    if lst.shape:
        return [shape_from_proto(s) for s in lst.shape]
    if lst.tensor:
        return [tensor_proto_to_numpy(t) for t in lst.tensor]
    if lst.func:
        return [decode_func(f, func_attrs) for f in lst.func]
    return []


class OpDefaults:
    """Per op, from the metagraph's op list (then `DEFAULTS`): default attr values
    and the output arguments that ``node:out_arg:index`` names refer to. ``memory_cap``
    (set by the loader) bounds the number of outputs a node may have (see
    `decode_node_attrs`)."""

    def __init__(self, op_list=None, memory_cap: int | None = None):
        self._protos = {}
        self._outputs: dict[str, tuple] = {}
        self.memory_cap = memory_cap
        if op_list is not None:
            for op_def in op_list.op:
                defaults = {a.name: a.default_value for a in op_def.attr if a.HasField("default_value")}
                if defaults:
                    self._protos[op_def.name] = defaults
                self._outputs[op_def.name] = tuple(
                    OutputArg(a.name, a.number_attr, a.type_list_attr) for a in op_def.output_arg)
        self._decoded: dict[str, dict] = {}

    def output_args(self, op: str):
        """The op's OpDef output arguments as the model declares them, or None."""
        return self._outputs.get(op)

    def for_op(self, op: str) -> dict:
        """The decoded defaults of ``op`` (a shared dict: copy before changing)."""
        found = self._decoded.get(op)
        if found is None:
            found = dict(DEFAULTS.get(op, {}))
            found.update({k: decode_attr(v) for k, v in self._protos.get(op, {}).items()})
            self._decoded[op] = found
        return found


class NodeAttrs(dict):
    """A node's decoded attrs; looking up one the node lacks raises a SavedModelError
    naming the node and the attr (a kernel's ``attrs["num"]``), not a KeyError."""
    __slots__ = ("op", "where")

    def __missing__(self, key):
        raise SavedModelError(
            f"Op {self.op}{self.where} lacks attribute {key!r}, which it needs and which has "
            "no default (TensorFlow refuses such a node: NodeDef missing attr). The model is "
            "malformed; add the attribute to the node.")


def decode_node_attrs(attr_map, op: str, defaults: OpDefaults | None = None,
                      func_attrs: dict | None = None, where: str = "") -> dict:
    """A node's attrs decoded (a `NodeAttrs`), missing ones taken from the op's defaults.

    Attrs whose names start with ``_`` (TensorFlow's bookkeeping) are left out. With
    ``defaults`` (a model's node), refused with a SavedModelError: a node lacking an
    attr that sizes its kernel's outputs, or with more outputs than the engine allows
    (`check_output_count`, against ``defaults.memory_cap``), before anything is built
    per output. Other attrs are checked when a kernel reads them (`NodeAttrs`): the
    engine's own nodes (function returns) carry none.
    """
    decoded = NodeAttrs(defaults.for_op(op) if defaults is not None else DEFAULTS.get(op, {}))
    decoded.op, decoded.where = op, where
    for key, value in attr_map.items():
        if not key.startswith("_"):  # _class, _output_shapes, ...: TensorFlow internals
            decoded[key] = decode_attr(value, func_attrs, where=where)
    kernel = KERNELS.get(op)
    if kernel is not None and defaults is not None:  # a model's node, about to be planned
        _check_outputs(kernel.outputs, decoded, op, where, defaults.memory_cap)
    return decoded


def _check_outputs(outputs, decoded: NodeAttrs, op: str, where: str, memory_cap) -> None:
    """The attrs that size a kernel's list outputs: present, of the right kind, bounded."""
    total = 0
    for arg in outputs:
        if arg.number_attr:
            value = decoded[arg.number_attr]
            if isinstance(value, bool) or not isinstance(value, int):
                raise SavedModelError(f"Op {op}{where}: attribute {arg.number_attr!r} must be an "
                                      f"integer, got {value!r}.")
            total += value
            check_output_count(value, f"Op {op}{where}", memory_cap,
                               f"outputs ({arg.number_attr}={value:,})")
        elif arg.type_list_attr:
            value = decoded[arg.type_list_attr]
            if not isinstance(value, list):
                raise SavedModelError(f"Op {op}{where}: attribute {arg.type_list_attr!r} must be "
                                      f"a list of types, got {value!r}.")
            total += len(value)
        else:
            total += 1
    check_output_count(total, f"Op {op}{where}", memory_cap)
