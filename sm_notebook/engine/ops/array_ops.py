"""Shape, concatenation, slicing, tiling, padding and reversal kernels."""
from __future__ import annotations

import math

import numpy as np

from ...errors import SavedModelError
from ._arrays import (canonical_axis, fresh_copy, host_result, ints, move_to, np_dtype,
                      num_elements, scalar, xp_of)
from .registry import kernel, prepared_kernel

# --- shapes ---------------------------------------------------------------------------------


def _shape_tensor(ctx, dims, dtype, op):
    dtype = np.dtype(dtype)
    if dtype == np.int32 and any(d > np.iinfo(np.int32).max for d in dims):
        raise SavedModelError(f"{op}: a dimension does not fit out_type int32; use int64.")
    return ctx.asarray(np.asarray(dims, dtype=dtype).reshape(len(dims)))


@kernel("Shape")
def shape(ctx, inputs, attrs):
    dims = inputs[0].shape
    out_type = attrs.get("out_type", np.int32)
    if ctx.is_numpy and (out_type == np.int64 or max(dims, default=0) <= 2**31 - 1):
        return [np.array(dims, out_type).reshape(len(dims))]
    return [_shape_tensor(ctx, tuple(dims), attrs.get("out_type", np.int32), "Shape")]


@kernel("ShapeN")
def shape_n(ctx, inputs, attrs):
    out_type = attrs.get("out_type", np.int32)
    return [_shape_tensor(ctx, tuple(x.shape), out_type, "ShapeN") for x in inputs]


@kernel("Size")
def size(ctx, inputs, attrs):
    count = num_elements(inputs[0].shape)
    return [ctx.asarray(np.asarray(count, dtype=attrs.get("out_type", np.int32)))]


@kernel("Rank")
def rank(ctx, inputs, attrs):
    return [ctx.asarray(np.asarray(len(inputs[0].shape), dtype=np.int32))]


@kernel("Reshape")
def reshape(ctx, inputs, attrs):
    x, shape_t = inputs
    if type(x) is np.ndarray and type(shape_t) is np.ndarray and shape_t.ndim == 1:
        dims = shape_t.tolist()  # the common valid cases straight to numpy (same -1 rule)
        if dims.count(-1) <= 1 and min(dims, default=0) >= -1:
            known = math.prod(d for d in dims if d != -1)
            if (known == x.size) if -1 not in dims else (known > 0 and x.size % known == 0):
                return [x.reshape(dims)]
    xp = xp_of(ctx, x)
    dims = ints(ctx, shape_t)
    if ctx.to_numpy(shape_t).ndim > 1:
        raise SavedModelError(f"Reshape: shape must be a vector, got shape {tuple(shape_t.shape)}.")
    total = num_elements(x.shape)
    unknown = [i for i, d in enumerate(dims) if d == -1]
    if len(unknown) > 1 or any(d < -1 for d in dims):
        raise SavedModelError(f"Reshape: invalid target shape {dims}: only one size may be -1 "
                              "and no size may be below -1.")
    known = num_elements(d for d in dims if d != -1)
    if unknown:
        # TensorFlow infers -1 from the non-zero sizes of both shapes
        # (rounding down), when both shapes hold a zero.
        known_nonzero = num_elements(d for d in dims if d > 0)
        if known == 0 and total == 0:
            dims[unknown[0]] = num_elements(d for d in x.shape if d != 0) // known_nonzero
        elif known == 0 or total % known:
            raise SavedModelError(f"Reshape: cannot reshape a tensor with {total} values to "
                                  f"{dims}.")
        else:
            dims[unknown[0]] = total // known
    elif known != total:
        raise SavedModelError(f"Reshape: input to reshape is a tensor with {total} values, "
                              f"but the requested shape {dims} has {known}.")
    return [xp.reshape(x, tuple(dims))]


@kernel("ExpandDims")
def expand_dims(ctx, inputs, attrs):
    x, dim_t = inputs
    xp = xp_of(ctx, x)
    axis = canonical_axis(scalar(ctx, dim_t, "ExpandDims", "dim"), x.ndim + 1, "ExpandDims", "dim")
    return [xp.reshape(x, tuple(x.shape[:axis]) + (1,) + tuple(x.shape[axis:]))]


@kernel("Squeeze")
def squeeze(ctx, inputs, attrs):
    x = inputs[0]
    xp = xp_of(ctx, x)
    axes = {canonical_axis(int(a), x.ndim, "Squeeze", "squeeze_dims")
            for a in attrs.get("squeeze_dims", [])}
    for a in axes:
        if x.shape[a] != 1:
            raise SavedModelError(f"Squeeze: can not squeeze dim[{a}], expected a dimension "
                                  f"of 1, got {x.shape[a]}.")
    keep = [d for i, d in enumerate(x.shape) if (i not in axes if axes else d != 1)]
    return [xp.reshape(x, tuple(keep))]


# --- joining and splitting ------------------------------------------------------------------


def _concat(ctx, op, values, axis_t):
    xp = xp_of(ctx, *values)
    values = [move_to(ctx, xp, v) for v in values]
    first = values[0]
    if first.ndim == 0:
        raise SavedModelError(f"{op}: can't concatenate scalars (use tf.stack instead).")
    axis = canonical_axis(scalar(ctx, axis_t, op, "axis"), first.ndim, op)
    for i, v in enumerate(values[1:], 1):
        if v.ndim != first.ndim or any(a != b for j, (a, b) in enumerate(zip(v.shape, first.shape))
                                       if j != axis):
            raise SavedModelError(f"{op}: input {i} has shape {tuple(v.shape)}, which does not "
                                  f"match shape {tuple(first.shape)} of input 0 outside axis "
                                  f"{axis}.")
    out_shape = list(first.shape)
    out_shape[axis] = sum(int(v.shape[axis]) for v in values)
    ctx.check_alloc(out_shape, np_dtype(first), op)
    return [xp.concat(values, axis=axis)]


@kernel("ConcatV2")
def concat_v2(ctx, inputs, attrs):
    return _concat(ctx, "ConcatV2", inputs[:-1], inputs[-1])


@kernel("Concat")
def concat(ctx, inputs, attrs):
    return _concat(ctx, "Concat", inputs[1:], inputs[0])


@kernel("Pack")
def pack(ctx, inputs, attrs):
    if ctx.is_numpy and inputs and attrs.get("axis", 0) == 0:
        first = inputs[0].shape
        if all(type(v) is np.ndarray and v.shape == first for v in inputs):
            ctx.check_alloc((len(inputs),) + first, inputs[0].dtype, "Pack")
            return [np.stack(inputs)]
    xp = xp_of(ctx, *inputs)
    values = [move_to(ctx, xp, v) for v in inputs]
    axis = canonical_axis(int(attrs.get("axis", 0)), values[0].ndim + 1, "Pack")
    for i, v in enumerate(values[1:], 1):
        if tuple(v.shape) != tuple(values[0].shape):
            raise SavedModelError(f"Pack: shapes of all inputs must match: values[0].shape = "
                                  f"{tuple(values[0].shape)} != values[{i}].shape = "
                                  f"{tuple(v.shape)}.")
    ctx.check_alloc((len(values),) + tuple(values[0].shape), np_dtype(values[0]), "Pack")
    return [xp.stack(values, axis=axis)]


def _index_along(x, axis, index):
    return x[(slice(None),) * axis + (index, ...)]


def _slice_along(x, axis, start, stop):
    return x[(slice(None),) * axis + (slice(start, stop), ...)]


@kernel("Unpack")
def unpack(ctx, inputs, attrs):
    x = inputs[0]
    axis = canonical_axis(int(attrs.get("axis", 0)), x.ndim, "Unpack")
    num = int(attrs.get("num", x.shape[axis]))
    ctx.check_outputs(num, "Unpack")
    if x.shape[axis] != num:
        raise SavedModelError(f"Unpack: input.shape[{axis}] = {x.shape[axis]} does not match num "
                              f"= {num}.")
    return [_index_along(x, axis, i) for i in range(num)]


@prepared_kernel("Split")
def prepare_split(node, ctx):
    attrs = node.attrs
    last = None  # (axis tensor, shape, indices) of the previous call, for a constant axis

    def split(inputs):
        nonlocal last
        axis_t, x = inputs
        known = last
        if known is not None and known[0] is axis_t and known[1] == x.shape:
            return [x[index] for index in known[2]]
        indices = _split_indices(ctx, axis_t, x, attrs)
        if type(axis_t) is np.ndarray and not axis_t.flags.writeable:  # a plan constant
            last = (axis_t, x.shape, indices)
        return [x[index] for index in indices]
    return split


def _split_indices(ctx, axis_t, x, attrs) -> list:
    num = int(attrs["num_split"])
    ctx.check_outputs(num, "Split")
    axis = canonical_axis(scalar(ctx, axis_t, "Split", "split_dim"), x.ndim, "Split", "split_dim")
    if num <= 0 or x.shape[axis] % num:
        raise SavedModelError(f"Split: number of ways to split ({num}) should evenly divide the "
                              f"split dimension, but got split_dim {axis} (size = "
                              f"{x.shape[axis]}).")
    step = x.shape[axis] // num
    return [(slice(None),) * axis + (slice(i * step, (i + 1) * step), Ellipsis) for i in range(num)]


@kernel("SplitV")
def split_v(ctx, inputs, attrs):
    x, sizes_t, axis_t = inputs
    ctx.check_outputs(int(np.prod(sizes_t.shape)), "SplitV")
    sizes = ints(ctx, sizes_t)
    axis = canonical_axis(scalar(ctx, axis_t, "SplitV", "split_dim"), x.ndim, "SplitV", "split_dim")
    dim = x.shape[axis]
    unknown = [i for i, s in enumerate(sizes) if s == -1]
    if len(unknown) > 1 or any(s < -1 for s in sizes):
        raise SavedModelError(f"SplitV: invalid size_splits {sizes}: at most one -1, no other "
                              "negative.")
    if unknown:
        sizes[unknown[0]] = dim - sum(s for s in sizes if s != -1)
    if sum(sizes) != dim or any(s < 0 for s in sizes):
        raise SavedModelError(f"SplitV: size_splits {sizes} must sum to the dimension {dim} of "
                              f"split_dim {axis}.")
    starts = np.cumsum([0] + sizes)
    return [_slice_along(x, axis, int(starts[i]), int(starts[i + 1])) for i in range(len(sizes))]


# --- slicing --------------------------------------------------------------------------------


@kernel("Slice")
def slice_(ctx, inputs, attrs):
    x, begin_t, size_t = inputs
    begin, sizes = ints(ctx, begin_t), ints(ctx, size_t)
    if len(begin) != x.ndim or len(sizes) != x.ndim:
        raise SavedModelError(f"Slice: begin {begin} and size {sizes} must each have one entry per "
                              f"dimension of the input of shape {tuple(x.shape)}.")
    index = []
    for i, (b, s, dim) in enumerate(zip(begin, sizes, x.shape)):
        if s == -1:
            s = dim - b
        if not (0 <= b <= dim and 0 <= s and b + s <= dim):
            raise SavedModelError(f"Slice: expected begin[{i}] in [0, {dim}] and size[{i}] in "
                                  f"[0, {dim - b}], but got begin {b} and size {sizes[i]}.")
        index.append(slice(b, b + s))
    return [x[tuple(index)]]


_NEW_AXIS, _SHRINK_AXIS = -1, -2


def strided_slice_spec(shape, begin, end, strides, attrs, op="StridedSlice"):
    """TensorFlow's strided-slice rules: (basic index tuple, shape before, final shape)."""
    begin_mask = int(attrs.get("begin_mask", 0))
    end_mask = int(attrs.get("end_mask", 0))
    ellipsis_mask = int(attrs.get("ellipsis_mask", 0))
    new_axis_mask = int(attrs.get("new_axis_mask", 0))
    shrink_mask = int(attrs.get("shrink_axis_mask", 0))
    count = len(begin)
    if len(end) != count or len(strides) != count:
        raise SavedModelError(f"{op}: expected begin, end and strides to be 1-D tensors of equal "
                              f"size, got {len(begin)}, {len(end)} and {len(strides)} entries.")
    if ellipsis_mask & (ellipsis_mask - 1):
        raise SavedModelError(f"{op}: multiple ellipses in slice spec not allowed.")
    ellipsis_seen, new_axes_after_ellipsis = False, 0
    for i in range(count):
        if ellipsis_seen and new_axis_mask >> i & 1:
            new_axes_after_ellipsis += 1
        if ellipsis_mask >> i & 1:
            ellipsis_seen = True
    sparse_count = count
    if not ellipsis_seen:
        ellipsis_mask |= 1 << count
        sparse_count += 1
    rank = len(shape)
    # dense spec: per input dim (begin, end, stride, begin masked, end masked, shrink)
    dense: list[tuple] = [None] * rank
    gather: list[int] = []
    full = 0
    for i in range(sparse_count):
        bit = 1 << i
        if ellipsis_mask & bit:
            stop = min(rank - (sparse_count - i) + 1 + new_axes_after_ellipsis, rank)
            while full < stop:
                dense[full] = (0, 0, 1, True, True, False)
                gather.append(full)
                full += 1
        elif new_axis_mask & bit:
            gather.append(_NEW_AXIS)
        else:
            if full == rank:
                raise SavedModelError(f"{op}: index out of range using input dim {full}; input "
                                      f"has only {rank} dims.")
            shrink = bool(shrink_mask & bit)
            dense[full] = (begin[i], end[i], strides[i], bool(begin_mask & bit),
                           bool(end_mask & bit), shrink)
            gather.append(_SHRINK_AXIS if shrink else full)
            full += 1
    index, sizes = [], []
    for i, (b, e, s, b_masked, e_masked, shrink) in enumerate(dense):
        dim = int(shape[i])
        if s == 0:
            raise SavedModelError(f"{op}: strides[{i}] must be non-zero.")
        if shrink and s <= 0:
            raise SavedModelError(f"{op}: only stride 1 allowed on non-range indexing.")
        lo, hi = (0, dim) if s > 0 else (-1, dim - 1)
        if shrink:
            b = b + dim if b < 0 else b
            if not 0 <= b < dim:
                raise SavedModelError(f"{op}: slice index {begin[i] if i < count else b} of "
                                      f"dimension {i} out of bounds.")
            e = b + 1
        else:
            if b_masked:
                b = lo if s > 0 else hi
            else:
                b = min(max(b + dim if b < 0 else b, lo), hi)
            if e_masked:
                e = hi if s > 0 else lo
            else:
                e = min(max(e + dim if e < 0 else e, lo), hi)
        interval = e - b
        if interval == 0 or (interval < 0) != (s < 0):
            count_i = 0
        else:
            count_i = (abs(interval) + abs(s) - 1) // abs(s)
        sizes.append(count_i)
        if count_i == 0:
            index.append(slice(0, 0))
        elif s > 0:
            index.append(slice(b, e, s))
        else:
            index.append(slice(b, None if e < 0 else e, s))
    final = tuple(1 if g == _NEW_AXIS else sizes[g] for g in gather if g != _SHRINK_AXIS)
    return tuple(index), tuple(sizes), final


def _strided_args(ctx, inputs):
    return [ints(ctx, t) for t in inputs]


_MASKS = ("begin_mask", "end_mask", "ellipsis_mask", "new_axis_mask", "shrink_axis_mask")
@prepared_kernel("StridedSlice")
def prepare_strided_slice(node, ctx):
    """Per node: the index of each (shape, begin, end, strides) seen (bounded), and the
    last one by identity when the index tensors are plan constants (read-only)."""
    attrs = node.attrs
    masks = tuple(attrs.get(m, 0) for m in _MASKS)
    specs: dict = {}
    last = None

    def strided_slice(inputs):
        nonlocal last
        x, begin_t, end_t, strides_t = inputs
        known = last
        if (known is not None and known[0] is begin_t and known[1] is end_t
                and known[2] is strides_t and known[3] == x.shape and type(x) is np.ndarray):
            return [x[known[4]].reshape(known[5])]
        if type(x) is np.ndarray and all(type(t) is np.ndarray for t in inputs[1:4]):
            key = (x.shape, begin_t.dtype.char, begin_t.tobytes(), end_t.tobytes(),
                   strides_t.tobytes(), masks)
            spec = specs.get(key)
            if spec is None:
                if len(specs) > 64:
                    specs.clear()
                begin, end, strides = _strided_args(ctx, inputs[1:4])
                index, _, final = strided_slice_spec(tuple(x.shape), begin, end, strides, attrs)
                spec = specs[key] = (index, final)
            if not (begin_t.flags.writeable or end_t.flags.writeable or strides_t.flags.writeable):
                last = (begin_t, end_t, strides_t, x.shape) + spec
            return [x[spec[0]].reshape(spec[1])]
        xp = xp_of(ctx, x)
        begin, end, strides = _strided_args(ctx, inputs[1:4])
        index, _, final = strided_slice_spec(tuple(x.shape), begin, end, strides, attrs)
        return [xp.reshape(x[index], final)]
    return strided_slice


@kernel("TensorStridedSliceUpdate")
def tensor_strided_slice_update(ctx, inputs, attrs):
    x, value = inputs[0], inputs[4]
    xp = xp_of(ctx, x, value)
    x, value = move_to(ctx, xp, x), move_to(ctx, xp, value)
    begin, end, strides = _strided_args(ctx, inputs[1:4])
    op = "TensorStridedSliceUpdate"
    index, sizes, final = strided_slice_spec(tuple(x.shape), begin, end, strides, attrs, op)
    try:
        value = xp.broadcast_to(value, final)
    except (ValueError, TypeError):
        raise SavedModelError(f"{op}: value of shape {tuple(value.shape)} cannot be assigned to a "
                              f"slice of shape {final}.") from None
    out = fresh_copy(xp, x)
    if num_elements(sizes):
        out[index] = xp.reshape(value, sizes)
    return [out]


# --- rearranging ----------------------------------------------------------------------------


def _permutation(ctx, perm_t, rank, op):
    perm = ints(ctx, perm_t)
    perm = [p + rank if p < 0 else p for p in perm]
    if len(perm) != rank or sorted(perm) != list(range(rank)):
        raise SavedModelError(f"{op}: {ints(ctx, perm_t)} is not a valid permutation of the "
                              f"{rank} dimensions of the input.")
    return tuple(perm)


@kernel("Transpose")
def transpose(ctx, inputs, attrs):
    x, perm_t = inputs
    xp = xp_of(ctx, x)
    return [xp.permute_dims(x, _permutation(ctx, perm_t, x.ndim, "Transpose"))]


@kernel("ConjugateTranspose")
def conjugate_transpose(ctx, inputs, attrs):
    x, perm_t = inputs
    xp = xp_of(ctx, x)
    out = xp.permute_dims(x, _permutation(ctx, perm_t, x.ndim, "ConjugateTranspose"))
    return [xp.conj(out) if np_dtype(x).kind == "c" else out]


@kernel("Tile")
def tile(ctx, inputs, attrs):
    x, multiples_t = inputs
    xp = xp_of(ctx, x)
    multiples = ints(ctx, multiples_t)
    if len(multiples) != x.ndim or any(m < 0 for m in multiples):
        raise SavedModelError(f"Tile: multiples {multiples} must have one non-negative entry per "
                              f"dimension of the input of shape {tuple(x.shape)}.")
    out_shape = tuple(d * m for d, m in zip(x.shape, multiples))
    ctx.check_alloc(out_shape, np_dtype(x), "Tile")
    if x.ndim == 0:
        return [fresh_copy(xp, x)]
    return [xp.tile(x, tuple(multiples))]


@kernel("ReverseV2")
def reverse_v2(ctx, inputs, attrs):
    x, axis_t = inputs
    xp = xp_of(ctx, x)
    axes = [canonical_axis(a, x.ndim, "ReverseV2") for a in ints(ctx, axis_t)]
    if len(set(axes)) != len(axes):
        raise SavedModelError(f"ReverseV2: axis {ints(ctx, axis_t)} names a dimension twice.")
    return [xp.flip(x, axis=tuple(axes)) if axes else x]


@kernel("Reverse")
def reverse(ctx, inputs, attrs):
    x, dims_t = inputs
    xp = xp_of(ctx, x)
    flags = ctx.to_numpy(dims_t).reshape(-1)
    if flags.size != x.ndim:
        raise SavedModelError(f"Reverse: dims has {flags.size} entries for an input of rank "
                              f"{x.ndim}.")
    axes = tuple(int(i) for i in np.flatnonzero(flags))
    return [xp.flip(x, axis=axes) if axes else x]


# --- creating -------------------------------------------------------------------------------


def _filled(ctx, xp, shape, value, dtype, op):
    """A new array of ``shape`` holding ``value`` (a scalar array or Python value)."""
    ctx.check_alloc(shape, dtype, op)
    if ctx.is_numpy and type(value) is np.ndarray and not is_host_dtype(dtype):
        return np.full(shape, value.reshape(()), dtype=dtype)
    if is_host_dtype(dtype) or not hasattr(value, "shape"):
        host = np.full(shape, value.item() if hasattr(value, "item") else value, dtype=dtype)
        return host_result(ctx, xp, host)
    value = xp.reshape(move_to(ctx, xp, value), ())
    return fresh_copy(xp, xp.broadcast_to(value, tuple(shape)))


def is_host_dtype(dtype):
    return np.dtype(dtype).kind in "OSUV"


@kernel("Fill")
def fill(ctx, inputs, attrs):
    dims_t, value = inputs
    dims = ints(ctx, dims_t)
    if any(d < 0 for d in dims):
        raise SavedModelError(f"Fill: dims {dims} must be non-negative.")
    if num_elements(value.shape) != 1 or value.ndim:
        raise SavedModelError(f"Fill: value must be a scalar, got shape {tuple(value.shape)}.")
    return [_filled(ctx, xp_of(ctx, value), tuple(dims), value, np_dtype(value), "Fill")]


@kernel("Empty")
def empty(ctx, inputs, attrs):
    dims = ints(ctx, inputs[0])
    dtype = np.dtype(attrs["dtype"])
    xp = ctx.xp if ctx.backend.supports(dtype) else xp_of(ctx, np.zeros(0))
    zero = b"" if dtype.kind == "O" else 0
    return [_filled(ctx, xp, tuple(dims), zero, dtype, "Empty")]


@kernel("ZerosLike")
def zeros_like(ctx, inputs, attrs):
    x = inputs[0]
    xp = xp_of(ctx, x)
    if np_dtype(x).kind == "O":
        return [np.full(x.shape, b"", dtype=object)]
    return [xp.zeros_like(x)]


@kernel("OnesLike")
def ones_like(ctx, inputs, attrs):
    x = inputs[0]
    return [xp_of(ctx, x).ones_like(x)]


@kernel("Range")
def range_(ctx, inputs, attrs):
    start, limit, delta = (scalar(ctx, t, "Range", name)
                           for t, name in zip(inputs, ("start", "limit", "delta")))
    dtype = np.dtype(attrs.get("Tidx", np_dtype(inputs[0])))
    if delta == 0:
        raise SavedModelError("Range: requires delta != 0.")
    if delta > 0 and start > limit:
        raise SavedModelError(f"Range: requires start <= limit when delta > 0: {start}/{limit}.")
    if delta < 0 and start < limit:
        raise SavedModelError(f"Range: requires start >= limit when delta < 0: {start}/{limit}.")
    if dtype.kind in "iu":
        count = (abs(limit - start) + abs(delta) - 1) // abs(delta)
    else:
        count = int(np.ceil(abs((limit - start) / delta)))
    ctx.check_alloc((count,), dtype, "Range")
    host = (np.asarray(start, dtype) + np.arange(count, dtype=dtype) * np.asarray(delta, dtype))
    return [ctx.asarray(host.astype(dtype, copy=False))]


@kernel("LinSpace")
def lin_space(ctx, inputs, attrs):
    start, stop = (scalar(ctx, t, "LinSpace", n) for t, n in zip(inputs[:2], ("start", "stop")))
    num = scalar(ctx, inputs[2], "LinSpace", "num")
    dtype = np_dtype(inputs[0])
    if num <= 0:
        raise SavedModelError(f"LinSpace: requires num > 0, got {num}.")
    ctx.check_alloc((num,), dtype, "LinSpace")
    host = np.empty(num, dtype)
    host[0] = start
    if num > 1:
        step = dtype.type((dtype.type(stop) - dtype.type(start)) / dtype.type(num - 1))
        host[:] = dtype.type(start) + step * np.arange(num, dtype=dtype)
        host[-1] = stop
    return [ctx.asarray(host)]


# --- padding --------------------------------------------------------------------------------


def _paddings(ctx, pad_t, rank, op):
    pads = ctx.to_numpy(pad_t)
    if pads.shape != (rank, 2):
        raise SavedModelError(f"{op}: paddings must be a matrix of shape [{rank}, 2], got "
                              f"{tuple(pads.shape)}.")
    pads = [(int(a), int(b)) for a, b in pads]
    if any(a < 0 or b < 0 for a, b in pads):
        raise SavedModelError(f"{op}: paddings must be non-negative, got {pads}.")
    return pads


def _pad_constant(ctx, op, x, pad_t, value):
    xp = xp_of(ctx, x)
    pads = _paddings(ctx, pad_t, x.ndim, op)
    out_shape = tuple(d + a + b for d, (a, b) in zip(x.shape, pads))
    out = _filled(ctx, xp, out_shape, value, np_dtype(x), op)
    if num_elements(x.shape):
        out[tuple(slice(a, a + d) for d, (a, _) in zip(x.shape, pads))] = x
    return [out]


@kernel("Pad")
def pad(ctx, inputs, attrs):
    x = inputs[0]
    zero = b"" if np_dtype(x).kind == "O" else np.zeros((), np_dtype(x))
    return _pad_constant(ctx, "Pad", x, inputs[1], zero)


@kernel("PadV2")
def pad_v2(ctx, inputs, attrs):
    value = inputs[2]
    if num_elements(value.shape) != 1:
        raise SavedModelError("PadV2: constant_values must be a scalar, got shape "
                              f"{tuple(value.shape)}.")
    return _pad_constant(ctx, "PadV2", inputs[0], inputs[1], ctx.to_numpy(value).reshape(()))


@kernel("MirrorPad")
def mirror_pad(ctx, inputs, attrs):
    x, pad_t = inputs
    xp = xp_of(ctx, x)
    mode = attrs.get("mode", "REFLECT")
    if mode not in ("REFLECT", "SYMMETRIC"):
        raise SavedModelError(f"MirrorPad: mode must be REFLECT or SYMMETRIC, got {mode!r}.")
    pads = _paddings(ctx, pad_t, x.ndim, "MirrorPad")
    shift = 1 if mode == "REFLECT" else 0
    ctx.check_alloc(tuple(d + a + b for d, (a, b) in zip(x.shape, pads)), np_dtype(x), "MirrorPad")
    out = x
    for axis, ((before, after), dim) in enumerate(zip(pads, x.shape)):
        if before > dim - shift or after > dim - shift:
            raise SavedModelError(f"MirrorPad: paddings ({before}, {after}) of dimension {axis} "
                                  f"must be no greater than {dim - shift} in {mode} mode.")
        if not before and not after:
            continue
        head = xp.flip(_slice_along(out, axis, shift, shift + before), axis=axis)
        tail = xp.flip(_slice_along(out, axis, dim - shift - after, dim - shift), axis=axis)
        out = xp.concat([head, out, tail], axis=axis)
    return [out]


# --- broadcasting ---------------------------------------------------------------------------


def _broadcast_shapes(s0, s1, op):
    rank = max(len(s0), len(s1))
    a = [1] * (rank - len(s0)) + list(s0)
    b = [1] * (rank - len(s1)) + list(s1)
    out = []
    for x, y in zip(a, b):
        if x != y and x != 1 and y != 1:
            raise SavedModelError(f"{op}: incompatible shapes: {list(s0)} vs. {list(s1)}.")
        out.append(y if x == 1 else x)
    return out, a, b


@kernel("BroadcastTo")
def broadcast_to(ctx, inputs, attrs):
    x, shape_t = inputs
    xp = xp_of(ctx, x)
    target = ints(ctx, shape_t)
    if len(target) < x.ndim or any(d < 0 for d in target):
        raise SavedModelError(f"BroadcastTo: cannot broadcast shape {tuple(x.shape)} to {target}.")
    out, _, _ = _broadcast_shapes(tuple(x.shape), target, "BroadcastTo")
    if out != target:
        raise SavedModelError(f"BroadcastTo: unable to broadcast tensor of shape {tuple(x.shape)} "
                              f"to tensor of shape {target}.")
    ctx.check_alloc(target, np_dtype(x), "BroadcastTo")
    return [fresh_copy(xp, xp.broadcast_to(x, tuple(target)))]


@kernel("BroadcastArgs")
def broadcast_args(ctx, inputs, attrs):
    s0, s1 = (ints(ctx, t) for t in inputs)
    out, _, _ = _broadcast_shapes(s0, s1, "BroadcastArgs")
    return [ctx.asarray(np.asarray(out, dtype=np_dtype(inputs[0])).reshape(len(out)))]


@kernel("BroadcastGradientArgs")
def broadcast_gradient_args(ctx, inputs, attrs):
    s0, s1 = (ints(ctx, t) for t in inputs)
    out, a, b = _broadcast_shapes(s0, s1, "BroadcastGradientArgs")
    r0 = [i for i, (x, o) in enumerate(zip(a, out)) if x == 1 and (o != 1 or b[i] == 1)]
    r1 = [i for i, (y, o) in enumerate(zip(b, out)) if y == 1 and (o != 1 or a[i] == 1)]
    dtype = np_dtype(inputs[0])
    return [ctx.asarray(np.asarray(r, dtype=dtype).reshape(len(r))) for r in (r0, r1)]


# --- space/depth/batch ----------------------------------------------------------------------


def _nhwc(xp, x, fmt, op):
    if fmt == "NHWC":
        return x
    if fmt == "NCHW":
        return xp.permute_dims(x, (0, 2, 3, 1))
    raise SavedModelError(f"{op}: data_format {fmt!r} is not supported (use NHWC or NCHW).")


def _from_nhwc(xp, x, fmt):
    return x if fmt == "NHWC" else xp.permute_dims(x, (0, 3, 1, 2))


@kernel("SpaceToDepth")
def space_to_depth(ctx, inputs, attrs):
    xp = xp_of(ctx, inputs[0])
    bs, fmt = int(attrs["block_size"]), attrs.get("data_format", "NHWC")
    x = _nhwc(xp, inputs[0], fmt, "SpaceToDepth")
    if x.ndim != 4 or bs < 2 or x.shape[1] % bs or x.shape[2] % bs:
        raise SavedModelError(f"SpaceToDepth: input of shape {tuple(inputs[0].shape)} must be 4-D "
                              f"with height and width divisible by block_size {bs} (>= 2).")
    n, h, w, c = x.shape
    y = xp.reshape(x, (n, h // bs, bs, w // bs, bs, c))
    y = xp.reshape(xp.permute_dims(y, (0, 1, 3, 2, 4, 5)), (n, h // bs, w // bs, bs * bs * c))
    return [_from_nhwc(xp, y, fmt)]


@kernel("DepthToSpace")
def depth_to_space(ctx, inputs, attrs):
    xp = xp_of(ctx, inputs[0])
    bs, fmt = int(attrs["block_size"]), attrs.get("data_format", "NHWC")
    x = _nhwc(xp, inputs[0], fmt, "DepthToSpace")
    if x.ndim != 4 or bs < 2 or x.shape[3] % (bs * bs):
        raise SavedModelError(f"DepthToSpace: input of shape {tuple(inputs[0].shape)} must be 4-D "
                              f"with depth divisible by block_size * block_size ({bs * bs}).")
    n, h, w, c = x.shape
    y = xp.reshape(x, (n, h, w, bs, bs, c // (bs * bs)))
    y = xp.reshape(xp.permute_dims(y, (0, 1, 3, 2, 4, 5)), (n, h * bs, w * bs, c // (bs * bs)))
    return [_from_nhwc(xp, y, fmt)]


def _space_to_batch(ctx, op, x, block, pads):
    xp = xp_of(ctx, x)
    m = len(block)
    if any(b < 1 for b in block) or x.ndim < m + 1 or len(pads) != m:
        raise SavedModelError(f"{op}: block_shape {block} and paddings {pads} do not fit an input "
                              f"of shape {tuple(x.shape)}.")
    if any(a < 0 or b < 0 for a, b in pads):
        raise SavedModelError(f"{op}: paddings must be non-negative, got {pads}.")
    padded = [x.shape[1 + i] + a + b for i, (a, b) in enumerate(pads)]
    if any(p % b for p, b in zip(padded, block)):
        raise SavedModelError(f"{op}: padded spatial shape {padded} is not divisible by "
                              f"block_shape {block}.")
    full_pads = [(0, 0)] + list(pads) + [(0, 0)] * (x.ndim - m - 1)
    if any(a or b for a, b in pads):
        x = _pad_constant(ctx, op, x, np.asarray(full_pads, np.int64), np.zeros((), np_dtype(x)))[0]
    batch, rest = x.shape[0], tuple(x.shape[m + 1:])
    shape = [batch]
    for p, b in zip(padded, block):
        shape += [p // b, b]
    y = xp.reshape(x, tuple(shape) + rest)
    perm = [2 + 2 * i for i in range(m)] + [0] + [1 + 2 * i for i in range(m)]
    perm += list(range(2 * m + 1, 2 * m + 1 + len(rest)))
    y = xp.permute_dims(y, tuple(perm))
    out = (batch * num_elements(block),) + tuple(p // b for p, b in zip(padded, block)) + rest
    return [xp.reshape(y, out)]


def _batch_to_space(ctx, op, x, block, crops):
    xp = xp_of(ctx, x)
    m = len(block)
    prod = num_elements(block)
    if any(b < 1 for b in block) or x.ndim < m + 1 or len(crops) != m or x.shape[0] % prod:
        raise SavedModelError(f"{op}: block_shape {block} and crops {crops} do not fit an input of "
                              f"shape {tuple(x.shape)} (batch must be divisible by {prod}).")
    if any(a < 0 or b < 0 for a, b in crops):
        raise SavedModelError(f"{op}: crops must be non-negative, got {crops}.")
    batch = x.shape[0] // prod
    spatial, rest = tuple(x.shape[1:m + 1]), tuple(x.shape[m + 1:])
    y = xp.reshape(x, tuple(block) + (batch,) + spatial + rest)
    perm = [m]
    for i in range(m):
        perm += [m + 1 + i, i]
    perm += list(range(2 * m + 1, 2 * m + 1 + len(rest)))
    y = xp.permute_dims(y, tuple(perm))
    full = tuple(d * b for d, b in zip(spatial, block))
    y = xp.reshape(y, (batch,) + full + rest)
    for i, ((a, b), d) in enumerate(zip(crops, full)):
        if a + b > d:
            raise SavedModelError(f"{op}: crops {crops[i]} exceed dimension {i + 1} of size {d}.")
    return [y[(slice(None),) + tuple(slice(a, d - b) for (a, b), d in zip(crops, full)) + (...,)]]


def _pairs(ctx, t, op, what):
    host = ctx.to_numpy(t)
    if host.ndim != 2 or host.shape[1] != 2:
        raise SavedModelError(f"{op}: {what} must have shape [M, 2], got {tuple(host.shape)}.")
    return [(int(a), int(b)) for a, b in host]


@kernel("SpaceToBatchND")
def space_to_batch_nd(ctx, inputs, attrs):
    x, block_t, pad_t = inputs
    return _space_to_batch(ctx, "SpaceToBatchND", x, ints(ctx, block_t),
                           _pairs(ctx, pad_t, "SpaceToBatchND", "paddings"))


@kernel("BatchToSpaceND")
def batch_to_space_nd(ctx, inputs, attrs):
    x, block_t, crops_t = inputs
    return _batch_to_space(ctx, "BatchToSpaceND", x, ints(ctx, block_t),
                           _pairs(ctx, crops_t, "BatchToSpaceND", "crops"))


@kernel("SpaceToBatch")
def space_to_batch(ctx, inputs, attrs):
    x, pad_t = inputs
    bs = int(attrs["block_size"])
    pads = _pairs(ctx, pad_t, "SpaceToBatch", "paddings")
    return _space_to_batch(ctx, "SpaceToBatch", x, [bs, bs], pads)


@kernel("BatchToSpace")
def batch_to_space(ctx, inputs, attrs):
    x, crops_t = inputs
    bs = int(attrs["block_size"])
    crops = _pairs(ctx, crops_t, "BatchToSpace", "crops")
    return _batch_to_space(ctx, "BatchToSpace", x, [bs, bs], crops)


# --- permutations and bands -----------------------------------------------------------------


@kernel("InvertPermutation")
def invert_permutation(ctx, inputs, attrs):
    x = inputs[0]
    xp = xp_of(ctx, x)
    host = ctx.to_numpy(x)
    if host.ndim != 1 or sorted(host.tolist()) != list(range(host.size)):
        raise SavedModelError(f"InvertPermutation: input must be a permutation of 0..n-1, got "
                              f"{host.tolist()[:20]}.")
    return [xp.astype(xp.argsort(x), x.dtype)]


@kernel("MatrixBandPart")
def matrix_band_part(ctx, inputs, attrs):
    x, lower_t, upper_t = inputs
    xp = xp_of(ctx, x)
    lower = scalar(ctx, lower_t, "MatrixBandPart", "num_lower")
    upper = scalar(ctx, upper_t, "MatrixBandPart", "num_upper")
    if x.ndim < 2:
        raise SavedModelError("MatrixBandPart: input must be at least 2-D, got shape "
                              f"{tuple(x.shape)}.")
    rows, cols = x.shape[-2], x.shape[-1]
    if lower > rows or upper > cols:
        raise SavedModelError(f"MatrixBandPart: num_lower ({lower}) must be negative or at most "
                              f"the number of rows ({rows}), num_upper ({upper}) at most the "
                              f"number of columns ({cols}).")
    i = np.arange(rows)[:, None]
    j = np.arange(cols)[None, :]
    keep = ((lower < 0) | (i - j <= lower)) & ((upper < 0) | (j - i <= upper))
    keep = move_to(ctx, xp, keep)
    return [xp.where(keep, x, xp.zeros_like(x))]

