"""Dtype and shape inference for graph tensors, following TensorFlow's shape functions.

Output dtypes come from the op's OpDef (``sm_notebook.opdefs``) and the node's type
attrs, or, for ops TensorFlow does not register, from the attrs TensorFlow names
outputs by (``Tout``, ``output_types``, ``out_type``, ``dtype``, ``T`` ...). Shapes
come from the shape functions below (the rules of tensorflow/core/ops/*.cc for these
ops), from the ``_output_shapes`` attr TensorFlow writes into SavedModel graphs, or,
when every input shape is known, from the engine's kernel run on probe inputs.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import SavedModelError
from ..format.tensors import REF_OFFSET, DataType, short_dtype_name
from .. import opdefs
from .attrs import decode_attr

DT_INVALID = 0
DT_RESOURCE = DataType.Value("DT_RESOURCE")
DT_STRING = DataType.Value("DT_STRING")


@dataclass(frozen=True)
class TensorType:
    """A tensor's dtype (DataType enum; 0 when unknown) and shape (None: unknown rank)."""
    dtype: int
    shape: tuple | None

    def __str__(self):
        name = short_dtype_name(self.dtype) if self.dtype else "unknown dtype"
        return f"{name} {shape_text(self.shape)}"


def shape_text(shape) -> str:
    """``(None, 3)`` style; ``<unknown rank>``."""
    if shape is None:
        return "<unknown rank>"
    inner = ", ".join("None" if d is None else str(d) for d in shape)
    return f"({inner}{',' if len(shape) == 1 else ''})"


def fully_known(shape) -> bool:
    return shape is not None and all(d is not None for d in shape)


# --- output counts and dtypes of existing nodes ------------------------------------------

_DTYPE_ATTRS = ("output_type", "out_type", "DstT", "Tparams", "dtype", "T")
_DTYPE_LIST_ATTRS = ("Tout", "output_types", "dtypes", "Toutputs", "out_types")


def with_defaults(info, attrs: dict) -> dict:
    """``attrs`` (decoded) with the OpDef defaults of the attrs it lacks."""
    merged = dict(attrs)
    for name, attr in info.attrs.items():
        if name not in merged and attr.has_default:
            merged[name] = decode_attr(attr.default)
    return merged


def opdef_output_dtypes(info, attrs: dict) -> list[int]:
    """Every output's DataType by the OpDef: fixed types, type attrs, list attrs; refs
    (TF1 variables) as ``*_REF`` types. ``attrs`` are decoded; 0 where unresolved."""
    merged = with_defaults(info, attrs)
    result = []
    for arg in info.outputs:
        if arg.type_list_attr:
            types = [int(t) for t in merged.get(arg.type_list_attr) or []]
        else:
            dtype = arg.type or merged.get(arg.type_attr, DT_INVALID)
            count = int(merged.get(arg.number_attr, 0)) if arg.number_attr else 1
            types = [dtype] * count
        result.extend(t + REF_OFFSET if arg.is_ref and t else t for t in types)
    return result


def node_output_dtypes(node) -> list[int] | None:
    """Every output's DataType for a NodeDef, or None when neither the op table nor attrs tell."""
    attrs = {k: decode_attr(v) for k, v in node.attr.items() if not k.startswith("_")}
    info = opdefs.get(node.op)
    if info is not None:
        return opdef_output_dtypes(info, attrs)
    for name in _DTYPE_LIST_ATTRS:
        if isinstance(attrs.get(name), list):
            return list(attrs[name])
    for name in _DTYPE_ATTRS:
        if isinstance(attrs.get(name), int) and name in node.attr and \
                node.attr[name].WhichOneof("value") == "type":
            count = len(node.attr["_output_shapes"].list.shape) if "_output_shapes" in node.attr else 1
            return [attrs[name]] * max(count, 1)
    return None


def recorded_output_shapes(node) -> list | None:
    """The ``_output_shapes`` TensorFlow recorded on a node, if any."""
    if "_output_shapes" not in node.attr:
        return None
    return decode_attr(node.attr["_output_shapes"]) or None


# --- shape functions -------------------------------------------------------------

def broadcast_shapes(a, b, op="op"):
    """NumPy-style broadcasting of two shapes with unknown dims (BroadcastBinaryOpShapeFn)."""
    if a is None or b is None:
        return None
    result = []
    for i in range(1, max(len(a), len(b)) + 1):
        x = a[-i] if i <= len(a) else 1
        y = b[-i] if i <= len(b) else 1
        if x == 1:
            result.append(y)
        elif y == 1:
            result.append(x)
        elif x is None:
            result.append(y)
        elif y is None or x == y:
            result.append(x)
        else:
            raise SavedModelError(f"{op}: shapes {shape_text(a)} and {shape_text(b)} are not "
                                  "broadcast-compatible.")
    return tuple(reversed(result))


def _dim_mul(a, b):
    return None if a is None or b is None else a * b


def _matmul(shapes, attrs, consts):
    a, b = shapes
    if a is None or b is None:
        return [None]
    if len(a) != 2 or len(b) != 2:
        raise SavedModelError(f"MatMul needs rank-2 inputs; got {shape_text(a)} and {shape_text(b)}.")
    m, k1 = (a[1], a[0]) if attrs.get("transpose_a") else a
    k2, n = (b[1], b[0]) if attrs.get("transpose_b") else b
    if k1 is not None and k2 is not None and k1 != k2:
        raise SavedModelError(f"MatMul: inner dimensions differ ({shape_text(a)} x {shape_text(b)}"
                              f", transpose_a={bool(attrs.get('transpose_a'))}, "
                              f"transpose_b={bool(attrs.get('transpose_b'))}).")
    return [(m, n)]


def _batch_matmul(shapes, attrs, consts):
    a, b = shapes
    if a is None or b is None or len(a) < 2 or len(b) < 2:
        return [None]
    m = a[-1] if attrs.get("adj_x") else a[-2]
    n = b[-2] if attrs.get("adj_y") else b[-1]
    return [broadcast_shapes(a[:-2], b[:-2], "BatchMatMulV2") + (m, n)]


def _bias_add(shapes, attrs, consts):
    value, bias = shapes
    if value is not None and bias is not None and len(bias) == 1 and value:
        channel = 1 if attrs.get("data_format", "NHWC") == "NCHW" and len(value) > 2 else -1
        if value[channel] is not None and bias[0] is not None and value[channel] != bias[0]:
            raise SavedModelError(f"BiasAdd: bias {shape_text(bias)} does not match the channel "
                                  f"dimension of {shape_text(value)}.")
    return [value]


def _spatial_out(size, window, stride, dilation, padding):
    if size is None or window is None:
        return None
    effective = (window - 1) * dilation + 1
    if padding == "SAME":
        return -(-size // stride)
    if padding == "VALID":
        return max(0, (size - effective) // stride + 1)
    return None  # EXPLICIT


def _layout(attrs):
    fmt = attrs.get("data_format", "NHWC")
    return (1, 2, 3) if fmt == "NHWC" else (2, 3, 1)   # height, width, channel positions


def _conv2d(shapes, attrs, consts, depthwise=False):
    data, filt = shapes
    if data is None or len(data) != 4:
        return [None]
    h, w, c = _layout(attrs)
    strides = attrs.get("strides", [1, 1, 1, 1])
    dilations = attrs.get("dilations", [1, 1, 1, 1])
    padding = attrs.get("padding", "VALID")
    kh = kw = out_c = None
    if filt is not None and len(filt) == 4:
        kh, kw = filt[0], filt[1]
        out_c = _dim_mul(filt[2], filt[3]) if depthwise else filt[3]
        if not depthwise and filt[2] is not None and data[c] is not None and data[c] % filt[2]:
            raise SavedModelError(f"Conv2D: input depth {data[c]} is not a multiple of the "
                                  f"filter's input depth {filt[2]}.")
    out = list(data)
    out[h] = _spatial_out(data[h], kh, strides[h], dilations[h], padding)
    out[w] = _spatial_out(data[w], kw, strides[w], dilations[w], padding)
    out[c] = out_c
    return [tuple(out)]


def _pool(shapes, attrs, consts):
    (data,) = shapes
    if data is None or len(data) != 4:
        return [None]
    h, w, _ = _layout(attrs)
    ksize, strides = attrs.get("ksize", [1] * 4), attrs.get("strides", [1] * 4)
    out = list(data)
    out[h] = _spatial_out(data[h], ksize[h], strides[h], 1, attrs.get("padding", "VALID"))
    out[w] = _spatial_out(data[w], ksize[w], strides[w], 1, attrs.get("padding", "VALID"))
    return [tuple(out)]


def _reshape(shapes, attrs, consts):
    data, target = shapes[0], consts[1]
    if target is None:
        if shapes[1] is not None and len(shapes[1]) == 1 and shapes[1][0] is not None:
            return [(None,) * shapes[1][0]]
        return [None]
    dims = [int(d) for d in np.asarray(target).reshape(-1)]
    if dims.count(-1) > 1:
        raise SavedModelError(f"Reshape: the target shape {dims} has more than one -1.")
    if -1 in dims:
        known = math.prod(d for d in dims if d != -1)
        if fully_known(data) and known:
            total = math.prod(data)
            if total % known:
                raise SavedModelError(f"Reshape: cannot reshape {shape_text(data)} to {dims}.")
            dims[dims.index(-1)] = total // known
        else:
            dims[dims.index(-1)] = None
    elif fully_known(data) and math.prod(data) != math.prod(dims):
        raise SavedModelError(f"Reshape: {shape_text(data)} has {math.prod(data)} elements; "
                              f"{dims} needs {math.prod(dims)}.")
    return [tuple(dims)]


def _axes(value, rank):
    axes = [int(a) for a in np.asarray(value).reshape(-1)]
    return sorted({a + rank if a < 0 else a for a in axes})


def _reduce(shapes, attrs, consts):
    data, axes = shapes[0], consts[1]
    if data is None or axes is None:
        return [None]
    chosen = _axes(axes, len(data))
    if attrs.get("keep_dims"):
        return [tuple(1 if i in chosen else d for i, d in enumerate(data))]
    return [tuple(d for i, d in enumerate(data) if i not in chosen)]


def _argmax(shapes, attrs, consts):
    data, axis = shapes[0], consts[1]
    if data is None or axis is None:
        return [None]
    (chosen,) = _axes(axis, len(data))
    return [tuple(d for i, d in enumerate(data) if i != chosen)]


def _concat(shapes, attrs, consts):
    values, axis = shapes[:-1], consts[-1]
    if axis is None or any(s is None for s in values):
        rank = next((len(s) for s in values if s is not None), None)
        return [None if rank is None else (None,) * rank]
    (chosen,) = _axes(axis, len(values[0]))
    out = list(values[0])
    sizes = [s[chosen] for s in values]
    out[chosen] = None if None in sizes else sum(sizes)
    for i in range(len(out)):
        if i != chosen and out[i] is None:
            out[i] = next((s[i] for s in values if s[i] is not None), None)
    return [tuple(out)]


def _pack(shapes, attrs, consts):
    first = shapes[0]
    if first is None:
        return [None]
    axis = attrs.get("axis", 0)
    axis = axis + len(first) + 1 if axis < 0 else axis
    return [first[:axis] + (len(shapes),) + first[axis:]]


def _expand_dims(shapes, attrs, consts):
    data, dim = shapes[0], consts[1]
    if data is None or dim is None:
        return [None]
    axis = int(np.asarray(dim).reshape(-1)[0])
    axis = axis + len(data) + 1 if axis < 0 else axis
    return [data[:axis] + (1,) + data[axis:]]


def _squeeze(shapes, attrs, consts):
    (data,) = shapes
    if data is None:
        return [None]
    dims = attrs.get("squeeze_dims") or []
    if dims:
        chosen = _axes(dims, len(data))
        return [tuple(d for i, d in enumerate(data) if i not in chosen)]
    if None in data:
        return [None]
    return [tuple(d for d in data if d != 1)]


def _transpose(shapes, attrs, consts):
    data, perm = shapes[0], consts[1]
    if data is None or perm is None:
        return [None if data is None else (None,) * len(data)]
    return [tuple(data[int(p)] for p in np.asarray(perm).reshape(-1))]


def _same(shapes, attrs, consts):
    return [shapes[0]]


def _broadcast(shapes, attrs, consts, op="op"):
    result = shapes[0]
    for shape in shapes[1:]:
        result = broadcast_shapes(result, shape, op)
    return [result]


def _fused_batch_norm(shapes, attrs, consts):
    x = shapes[0]
    channel = None
    if x is not None and len(x) == 4:
        channel = x[3] if attrs.get("data_format", "NHWC") == "NHWC" else x[1]
    return [x] + [(channel,)] * 4 + [None]


def _tile(shapes, attrs, consts):
    data, multiples = shapes[0], consts[1]
    if data is None:
        return [None]
    if multiples is None:
        return [(None,) * len(data)]
    return [tuple(_dim_mul(d, int(m)) for d, m in zip(data, np.asarray(multiples).reshape(-1)))]


def _pad(shapes, attrs, consts):
    data, paddings = shapes[0], consts[1]
    if data is None:
        return [None]
    if paddings is None:
        return [(None,) * len(data)]
    pairs = np.asarray(paddings).reshape(-1, 2)
    return [tuple(None if d is None else d + int(lo) + int(hi) for d, (lo, hi) in zip(data, pairs))]


def _fill(shapes, attrs, consts):
    dims = consts[0]
    if dims is None:
        return [None if shapes[0] is None or shapes[0][0] is None else (None,) * shapes[0][0]]
    return [tuple(int(d) for d in np.asarray(dims).reshape(-1))]


def _gather(shapes, attrs, consts):
    params, indices, axis = shapes[0], shapes[1], consts[2]
    if params is None or indices is None or axis is None:
        return [None]
    (chosen,) = _axes(axis, len(params))
    batch = attrs.get("batch_dims", 0)
    return [params[:chosen] + indices[batch:] + params[chosen + 1:]]


def _split(shapes, attrs, consts):
    axis, data = consts[0], shapes[1]
    count = int(attrs.get("num_split", 1))
    if data is None or axis is None:
        return [None if data is None else (None,) * len(data)] * count
    (chosen,) = _axes(axis, len(data))
    out = list(data)
    out[chosen] = None if data[chosen] is None else data[chosen] // count
    return [tuple(out)] * count


def _unpack(shapes, attrs, consts):
    data = shapes[0]
    count = int(attrs.get("num", 1))
    if data is None:
        return [None] * count
    (chosen,) = _axes([attrs.get("axis", 0)], len(data))
    return [data[:chosen] + data[chosen + 1:]] * count


def _one_hot(shapes, attrs, consts):
    indices, depth = shapes[0], consts[1]
    if indices is None:
        return [None]
    size = None if depth is None else int(np.asarray(depth).reshape(-1)[0])
    axis = attrs.get("axis", -1)
    axis = len(indices) if axis == -1 else axis
    return [indices[:axis] + (size,) + indices[axis:]]


def _source_shape(shapes, attrs, consts):
    return [attrs.get("shape")]


SHAPE_FUNCTIONS = {
    "MatMul": _matmul, "BatchMatMulV2": _batch_matmul, "BiasAdd": _bias_add,
    "Conv2D": _conv2d, "DepthwiseConv2dNative": lambda s, a, c: _conv2d(s, a, c, True),
    "MaxPool": _pool, "AvgPool": _pool, "Reshape": _reshape,
    "Mean": _reduce, "Sum": _reduce, "Max": _reduce, "Min": _reduce, "Prod": _reduce,
    "All": _reduce, "Any": _reduce, "ArgMax": _argmax, "ArgMin": _argmax,
    "ConcatV2": _concat, "Pack": _pack, "ExpandDims": _expand_dims, "Squeeze": _squeeze,
    "Transpose": _transpose, "FusedBatchNormV3": _fused_batch_norm,
    "Shape": lambda s, a, c: [None if s[0] is None else (len(s[0]),)],
    "Size": lambda s, a, c: [()], "Rank": lambda s, a, c: [()],
    "Placeholder": _source_shape, "PlaceholderWithDefault": lambda s, a, c: [a.get("shape", s[0])],
    "VarHandleOp": lambda s, a, c: [()], "VarIsInitializedOp": lambda s, a, c: [()],
    "Select": lambda s, a, c: [s[1]], "SelectV2": lambda s, a, c: _broadcast(s, a, c, "SelectV2"),
    "ClipByValue": _same, "AddN": _same, "Cast": _same, "Tile": _tile, "Pad": _pad,
    "Fill": _fill, "GatherV2": _gather, "Split": _split, "Unpack": _unpack, "OneHot": _one_hot,
    "IdentityN": lambda s, a, c: list(s), "Cumsum": _same, "Cumprod": _same,
}
for _name in ("Identity Snapshot PreventGradient StopGradient Neg Abs Exp Log Log1p Sqrt Rsqrt Square Reciprocal Floor "
              "Ceil Round Rint Sign Erf Sin Cos Tanh Sigmoid Softplus Softsign ZerosLike OnesLike "
              "Expm1 Relu Relu6 Elu Selu LeakyRelu Softmax LogSoftmax LogicalNot").split():
    SHAPE_FUNCTIONS[_name] = _same
for _name in ("Add AddV2 Sub Mul RealDiv Div DivNoNan Maximum Minimum Pow SquaredDifference "
              "FloorDiv FloorMod TruncateDiv Atan2 Less LessEqual Greater GreaterEqual Equal "
              "NotEqual LogicalAnd LogicalOr").split():
    SHAPE_FUNCTIONS[_name] = (lambda op: lambda s, a, c: _broadcast(s, a, c, op))(_name)


# --- inference for new nodes ---------------------------------------------------------

def output_dtypes(op: str, input_dtypes: list[int], attrs: dict) -> list[int] | None:
    """Output DataTypes of a new node by its OpDef (None when the op table lacks the op)."""
    info = opdefs.get(op)
    return None if info is None else opdef_output_dtypes(info, attrs)


def infer_shapes(op: str, input_types: list[TensorType], attr_map, consts: list,
                 count: int) -> list:
    """Output shapes by the op's shape function, else by running the engine kernel.

    ``attr_map`` is the node's attr map (AttrValue protos); ``consts`` the values of
    inputs that are Const nodes (None for the others).
    """
    function = SHAPE_FUNCTIONS.get(op)
    if function is not None:
        attrs = {k: decode_attr(v) for k, v in attr_map.items() if not k.startswith("_")}
        info = opdefs.get(op)
        attrs = attrs if info is None else with_defaults(info, attrs)
        shapes = function([t.shape for t in input_types], attrs, consts)
        return list(shapes) + [None] * (count - len(shapes))
    probed = probe_with_kernel(op, input_types, attr_map, consts)
    if probed is not None and all(fully_known(t.shape) for t in input_types):
        return [r.shape for r in probed]
    return [None] * count


def probe_with_kernel(op: str, input_types: list[TensorType], attr_map,
                      consts: list) -> list[TensorType] | None:
    """Output types found by running the engine's kernel of ``op`` on probe inputs.

    The builder's one use of the engine, through its public probe function
    (sm_notebook.engine.probe); None when the engine cannot tell.
    """
    from ..engine.probe import probe_output_types
    probed = probe_output_types(op, [(t.dtype, t.shape) for t in input_types], attr_map, consts)
    return None if probed is None else [TensorType(dtype, shape) for dtype, shape in probed]
