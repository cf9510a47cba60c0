"""TF1 TensorArray kernels (TensorArrayV3 and friends; the V2 ops share them).

TensorFlow keeps a TensorArray as a per-step resource: ``TensorArrayV3`` creates it and
returns its handle and a ``flow`` float scalar; writes change the resource in place and
return a new flow, and every read takes a flow, so the data dependencies through the flow
order each read after the writes it must see. Here the handle is a `TensorArray` object
made by each run of ``TensorArrayV3`` (so nothing is shared between calls or threads),
written in place like TensorFlow's, and the flow is a real float32 zero.

Like TensorFlow's, an element is written once, and with ``clear_after_read`` (the
default) reading it (Read, Gather, Concat) clears it.
"""
from __future__ import annotations

import numpy as np

from ...errors import SavedModelError
from ._arrays import ints, move_to, np_dtype, scalar, xp_of
from .list_ops import _label, _merge, _zeros
from .registry import kernel


class TensorArray:
    """The state behind one TensorArray handle, for one call.

    ``items`` holds an array per written element, None for unwritten ones and
    `CLEARED` for elements read with ``clear_after_read``.
    """

    def __init__(self, name, dtype, element_shape, size, dynamic_size, clear_after_read,
                 identical_element_shapes):
        self.name = name
        self.dtype = np.dtype(dtype)
        self.element_shape = element_shape
        self.items = [None] * size
        self.dynamic_size = dynamic_size
        self.clear_after_read = clear_after_read
        self.identical_element_shapes = identical_element_shapes
        self.closed = False

    def __repr__(self):
        return (f"TensorArray({self.name!r}, {self.dtype.name}{_label(self.element_shape)}, "
                f"size={len(self.items)})")

    def error(self, op, message):
        return SavedModelError(f"{op}: TensorArray {self.name}: {message}")


CLEARED = object()


def _array(handle, op) -> TensorArray:
    if not isinstance(handle, TensorArray):
        raise SavedModelError(f"{op}: handle must be a TensorArray made by TensorArrayV3 in the "
                              f"same call, got {type(handle).__name__}.")
    if handle.closed:
        raise handle.error(op, "it has already been closed.")
    return handle


def _flow(ctx):
    return ctx.asarray(np.asarray(0, np.float32))


def _create(ctx, inputs, attrs, op):
    size = scalar(ctx, inputs[0], op, "size")
    if size < 0:
        raise SavedModelError(f"{op}: size must be non-negative, got {size}.")
    ctx.check_alloc((size,), np.int64, op)
    shape = attrs.get("element_shape")
    name = attrs.get("tensor_array_name") or op
    return TensorArray(name, attrs["dtype"], None if shape is None else tuple(shape), size,
                       bool(attrs.get("dynamic_size", False)),
                       bool(attrs.get("clear_after_read", True)),
                       bool(attrs.get("identical_element_shapes", False)))


@kernel("TensorArrayV3")
def tensor_array_v3(ctx, inputs, attrs):
    return [_create(ctx, inputs, attrs, "TensorArrayV3"), _flow(ctx)]


@kernel("TensorArrayV2")
def tensor_array_v2(ctx, inputs, attrs):
    return [_create(ctx, inputs, attrs, "TensorArrayV2")]


def _write(ta, index, value, op):
    """Write one element (TensorFlow's TensorArray::WriteOrAggregate without aggregation)."""
    if np_dtype(value) != ta.dtype:
        raise ta.error(op, f"could not write to TensorArray index {index} because the value "
                           f"dtype is {np_dtype(value).name} but TensorArray dtype is "
                           f"{ta.dtype.name}.")
    if index < 0:
        raise ta.error(op, f"tried to write to index {index} but array size is "
                           f"{len(ta.items)}.")
    if index >= len(ta.items):
        if not ta.dynamic_size:
            raise ta.error(op, f"tried to write to index {index} but array is not resizeable "
                               f"and size is: {len(ta.items)}.")
        ta.items.extend([None] * (index + 1 - len(ta.items)))
    shape = tuple(value.shape)
    try:
        merged = _merge(ta.element_shape, shape, op)
    except SavedModelError:
        raise ta.error(op, f"could not write to TensorArray index {index} because the value "
                           f"shape is {_label(shape)} which is incompatible with the "
                           f"TensorArray's inferred element shape: "
                           f"{_label(ta.element_shape)}.") from None
    if ta.identical_element_shapes:
        ta.element_shape = merged
    if ta.items[index] is not None:
        raise ta.error(op, f"could not write to TensorArray index {index} because it has "
                           "already been written to.")
    ta.items[index] = value


def _read(ctx, ta, index, op):
    """Read one element: unwritten ones are zeros when the element shape is known."""
    if not 0 <= index < len(ta.items):
        raise ta.error(op, f"tried to read from index {index} but array size is: "
                           f"{len(ta.items)}.")
    value = ta.items[index]
    if value is CLEARED:
        raise ta.error(op, f"could not read index {index} twice because it was cleared after "
                           "a previous read (perhaps try setting clear_after_read = false?).")
    if value is None:
        if ta.dtype == object:
            raise ta.error(op, f"could not read from TensorArray index {index}: it was never "
                               "written, and TensorFlow has no zeros of type string.")
        shape = ta.element_shape
        if shape is None or None in shape:
            raise ta.error(op, f"could not read from TensorArray index {index}: it was never "
                               f"written and the element shape {_label(shape)} is not fully "
                               "defined.")
        return _zeros(ctx, shape, ta.dtype)
    return value


def _read_many(ctx, ta, indices, op):
    values = [_read(ctx, ta, i, op) for i in indices]
    if ta.clear_after_read:
        for i in indices:
            ta.items[i] = CLEARED
    return values


def _check_dtype(ta, attrs, op):
    dtype = attrs.get("dtype")
    if dtype is not None and np.dtype(dtype) != ta.dtype:
        raise ta.error(op, f"the op asks for {np.dtype(dtype).name} elements but the "
                           f"TensorArray holds {ta.dtype.name}.")


@kernel("TensorArrayWriteV2", "TensorArrayWriteV3")
def tensor_array_write(ctx, inputs, attrs):
    op = "TensorArrayWrite"
    ta = _array(inputs[0], op)
    _write(ta, scalar(ctx, inputs[1], op, "index"), inputs[2], op)
    return [_flow(ctx)]


@kernel("TensorArrayReadV2", "TensorArrayReadV3")
def tensor_array_read(ctx, inputs, attrs):
    op = "TensorArrayRead"
    ta = _array(inputs[0], op)
    _check_dtype(ta, attrs, op)
    return _read_many(ctx, ta, [scalar(ctx, inputs[1], op, "index")], op)


def _stackable(ctx, ta, values, requested, op):
    """``values`` as one namespace's arrays of one shape (the shape, for an empty list)."""
    if not values:
        shape = _merge(ta.element_shape, requested, op)
        if shape is None or None in shape:
            raise ta.error(op, f"reading zero elements, but the element shape "
                               f"{_label(shape)} is not fully defined.")
        return None, shape
    xp = xp_of(ctx, *values)
    values = [move_to(ctx, xp, v) for v in values]
    first = tuple(values[0].shape)
    for i, value in enumerate(values[1:], 1):
        if tuple(value.shape) != first:
            raise ta.error(op, f"could not stack elements: element {i} has shape "
                               f"{_label(tuple(value.shape))} but element 0 has shape "
                               f"{_label(first)}.")
    return (xp, values), first


@kernel("TensorArrayGatherV2", "TensorArrayGatherV3")
def tensor_array_gather(ctx, inputs, attrs):
    op = "TensorArrayGather"
    ta = _array(inputs[0], op)
    _check_dtype(ta, attrs, op)
    indices = ints(ctx, inputs[1])
    requested = attrs.get("element_shape")
    values = _read_many(ctx, ta, indices, op)
    stack, shape = _stackable(ctx, ta, values, requested, op)
    ctx.check_alloc((len(indices),) + tuple(shape), ta.dtype, op)
    if stack is None:
        return [_zeros(ctx, (0,) + tuple(shape), ta.dtype)]
    xp, values = stack
    return [xp.stack(values, axis=0)]


@kernel("TensorArrayScatterV2", "TensorArrayScatterV3")
def tensor_array_scatter(ctx, inputs, attrs):
    op = "TensorArrayScatter"
    ta = _array(inputs[0], op)
    indices, value = ints(ctx, inputs[1]), inputs[2]
    if value.ndim < 1 or value.shape[0] != len(indices):
        raise ta.error(op, f"expected len(indices) == values.shape[0], but saw "
                           f"{len(indices)} vs. "
                           f"{value.shape[0] if value.ndim else 'a scalar'}.")
    for row, index in enumerate(indices):
        _write(ta, index, value[row, ...], op)
    return [_flow(ctx)]


@kernel("TensorArraySizeV2", "TensorArraySizeV3")
def tensor_array_size(ctx, inputs, attrs):
    op = "TensorArraySize"
    ta = _array(inputs[0], op)
    return [ctx.asarray(np.asarray(len(ta.items), np.int32))]


@kernel("TensorArrayConcatV2", "TensorArrayConcatV3")
def tensor_array_concat(ctx, inputs, attrs):
    op = "TensorArrayConcat"
    ta = _array(inputs[0], op)
    _check_dtype(ta, attrs, op)
    values = _read_many(ctx, ta, range(len(ta.items)), op)
    for i, value in enumerate(values):
        if value.ndim < 1:
            raise ta.error(op, f"concat saw a scalar at index {i}; elements must be at "
                               "least vectors.")
    lengths = np.asarray([v.shape[0] for v in values], np.int64)
    if not values:
        inner = attrs.get("element_shape_except0")
        if inner is None or None in inner:
            raise ta.error(op, f"concatenating zero elements, but the element shape "
                               f"except its first dimension {_label(inner)} is not fully "
                               "defined.")
        return [_zeros(ctx, (0,) + tuple(inner), ta.dtype), ctx.asarray(lengths)]
    xp = xp_of(ctx, *values)
    values = [move_to(ctx, xp, v) for v in values]
    rest = tuple(values[0].shape[1:])
    for i, value in enumerate(values[1:], 1):
        if tuple(value.shape[1:]) != rest:
            raise ta.error(op, f"could not concatenate: element {i} has shape "
                               f"{_label(tuple(value.shape))} but element 0 has shape "
                               f"{_label(tuple(values[0].shape))}.")
    ctx.check_alloc((int(lengths.sum()),) + rest, ta.dtype, op)
    return [xp.concat(values, axis=0), ctx.asarray(lengths)]


@kernel("TensorArraySplitV2", "TensorArraySplitV3")
def tensor_array_split(ctx, inputs, attrs):
    op = "TensorArraySplit"
    ta = _array(inputs[0], op)
    value, lengths = inputs[1], ints(ctx, inputs[2])
    if value.ndim < 1 or any(n < 0 for n in lengths) or sum(lengths) != value.shape[0]:
        raise ta.error(op, f"expected sum of lengths {lengths} to equal the first "
                           f"dimension of the value of shape {tuple(value.shape)}.")
    if len(ta.items) != len(lengths) and not (ta.dynamic_size and
                                              len(ta.items) < len(lengths)):
        raise ta.error(op, f"expected lengths to be a vector of length {len(ta.items)} "
                           f"but got {len(lengths)}.")
    start = 0
    for index, n in enumerate(lengths):
        _write(ta, index, value[start:start + n, ...], op)
        start += n
    return [_flow(ctx)]


@kernel("TensorArrayCloseV2", "TensorArrayCloseV3")
def tensor_array_close(ctx, inputs, attrs):
    op = "TensorArrayClose"
    _array(inputs[0], op).closed = True
    return []
