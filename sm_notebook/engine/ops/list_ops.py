"""TensorList kernels (the DT_VARIANT lists of tf.TensorArray and Keras RNN loops).

A list is an immutable `TensorList`; every kernel that changes one returns a
new object sharing the untouched items (copy-on-write), so a list captured by
a loop iteration never changes behind its back.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ...errors import SavedModelError
from ._arrays import ints, move_to, np_dtype, scalar, xp_dtype, xp_of
from .registry import kernel


@dataclass(frozen=True, eq=False)
class TensorList:
    """A TensorFlow TensorList value.

    ``element_shape`` is a tuple with None for unknown dims, or None for an
    unknown rank; ``items`` holds arrays, or None for slots reserved but not set.
    """
    element_dtype: np.dtype
    element_shape: tuple | None
    items: tuple = ()
    max_num_elements: int = -1

    def __len__(self):
        return len(self.items)

    def __repr__(self):
        shape = "?" if self.element_shape is None else \
            "[" + ",".join("?" if d is None else str(d) for d in self.element_shape) + "]"
        return f"TensorList({np.dtype(self.element_dtype).name}{shape}, length={len(self.items)})"


def _shape_from_tensor(ctx, t, op):
    """A shape tensor (-1 scalar = unknown rank, -1 dims = unknown) as a partial shape."""
    host = ctx.to_numpy(t)
    if host.ndim == 0:
        if int(host) != -1:
            raise SavedModelError(f"{op}: a scalar element_shape must be -1 (unknown rank), got "
                                  f"{int(host)}.")
        return None
    return tuple(None if int(d) < 0 else int(d) for d in host.reshape(-1))


def _merge(a, b, op):
    """The most specific shape compatible with both partial shapes."""
    if a is None:
        return b
    if b is None:
        return a
    if len(a) != len(b) or any(x is not None and y is not None and x != y for x, y in zip(a, b)):
        raise SavedModelError(f"{op}: incompatible element shapes {_label(a)} and {_label(b)}.")
    return tuple(x if x is not None else y for x, y in zip(a, b))


def _label(shape):
    if shape is None:
        return "<unknown>"
    return "[" + ",".join("?" if d is None else str(d) for d in shape) + "]"


def _get_list(value, op) -> TensorList:
    if not isinstance(value, TensorList):
        raise SavedModelError(f"{op}: input_handle must be a TensorList, got "
                              f"{type(value).__name__}.")
    return value


def _check_dtype(lst, dtype, op):
    if dtype is not None and np.dtype(dtype) != np.dtype(lst.element_dtype):
        raise SavedModelError(f"{op}: invalid data types; op elements {np.dtype(dtype).name} but "
                              f"list elements {np.dtype(lst.element_dtype).name}.")


_FITTING_SHAPES: set = set()  # (element shape, item shape) pairs already checked


def _check_item(lst, item, op):
    if item.dtype is not lst.element_dtype:
        _check_dtype(lst, np_dtype(item), op)
    shapes = (lst.element_shape, item.shape)
    if shapes[0] != shapes[1] and shapes not in _FITTING_SHAPES:
        _merge(lst.element_shape, tuple(item.shape), op)
        if len(_FITTING_SHAPES) < 4096:
            _FITTING_SHAPES.add(shapes)


def _fill_shape(lst, requested, op):
    """The full shape to use for unset items: list shape, requested shape, then set items."""
    shape = _merge(lst.element_shape, requested, op)
    if shape is None or None in shape:
        for item in lst.items:
            if item is not None:
                shape = _merge(shape, tuple(item.shape), op)
                break
    if shape is None or None in shape:
        raise SavedModelError(f"{op}: trying to read an uninitialized list element, but the "
                              f"element shape {_label(shape)} is not fully defined.")
    return shape


def _zeros(ctx, shape, dtype):
    ctx.check_alloc(shape, dtype, "TensorList")
    xp = ctx.xp if ctx.backend.supports(dtype) else xp_of(ctx, np.zeros(0))
    if np.dtype(dtype).kind == "O":
        return np.full(shape, b"", dtype=object)
    return xp.zeros(shape, dtype=xp_dtype(xp, dtype))


def _items_or_zeros(ctx, lst, items, requested, op):
    if any(item is None for item in items):
        shape = _fill_shape(lst, requested, op)
        ctx.check_alloc((len(items),) + tuple(shape), np.dtype(lst.element_dtype), op)
        zeros = _zeros(ctx, shape, lst.element_dtype)
        items = [zeros if item is None else item for item in items]
    return list(items)


def _stack(ctx, lst, items, requested, op):
    """Stack ``items`` (some maybe unset) of ``lst`` into one tensor."""
    if not items:
        shape = _merge(lst.element_shape, requested, op)
        if shape is None or None in shape:
            raise SavedModelError(f"{op}: tried to stack elements of an empty list with a "
                                  f"non-fully-defined element shape {_label(shape)}.")
        return _zeros(ctx, (0,) + shape, lst.element_dtype)
    if ctx.is_numpy and all(type(item) is np.ndarray for item in items):
        first = items[0].shape
        if all(item.shape == first for item in items):
            ctx.check_alloc((len(items),) + first, items[0].dtype, op)
            return np.stack(items)
    items = _items_or_zeros(ctx, lst, items, requested, op)
    first = tuple(items[0].shape)
    for item in items[1:]:
        if tuple(item.shape) != first:
            raise SavedModelError(f"{op}: list elements have different shapes {first} and "
                                  f"{tuple(item.shape)}; cannot stack them.")
    ctx.check_alloc((len(items),) + first, np_dtype(items[0]), op)
    xp = xp_of(ctx, *items)
    return xp.stack([move_to(ctx, xp, i) for i in items], axis=0)


def _index(ctx, t, length, op):
    index = scalar(ctx, t, op, "index")
    if not 0 <= index < length:
        raise SavedModelError(f"{op}: trying to access element {index} in a list with {length} "
                              "elements.")
    return index


def _new_list(ctx, attrs, shape_t, op, items=(), max_num=-1):
    dtype = np.dtype(attrs["element_dtype"])
    return TensorList(dtype, _shape_from_tensor(ctx, shape_t, op), tuple(items), max_num)


@kernel("EmptyTensorList")
def empty_tensor_list(ctx, inputs, attrs):
    shape_t, max_t = inputs
    max_num = scalar(ctx, max_t, "EmptyTensorList", "max_num_elements")
    return [_new_list(ctx, attrs, shape_t, "EmptyTensorList", (), max_num)]


@kernel("TensorListReserve")
def tensor_list_reserve(ctx, inputs, attrs):
    shape_t, num_t = inputs
    num = scalar(ctx, num_t, "TensorListReserve", "num_elements")
    if num < 0:
        raise SavedModelError(f"TensorListReserve: the num_elements to reserve must be a non "
                              f"negative number, but got {num}.")
    ctx.check_alloc((num,), np.int64, "TensorListReserve")
    return [_new_list(ctx, attrs, shape_t, "TensorListReserve", (None,) * num)]


@kernel("TensorListFromTensor")
def tensor_list_from_tensor(ctx, inputs, attrs):
    tensor, shape_t = inputs
    op = "TensorListFromTensor"
    if tensor.ndim < 1:
        raise SavedModelError(f"{op}: tensor must be at least a vector, got shape "
                              f"{tuple(tensor.shape)}.")
    shape = _shape_from_tensor(ctx, shape_t, op)
    _merge(shape, tuple(tensor.shape[1:]), op)
    items = tuple(tensor) if type(tensor) is np.ndarray and tensor.ndim > 1 else \
        tuple(tensor[i, ...] for i in range(tensor.shape[0]))
    return [TensorList(np_dtype(tensor), shape, items)]


@kernel("TensorListLength")
def tensor_list_length(ctx, inputs, attrs):
    lst = _get_list(inputs[0], "TensorListLength")
    return [ctx.asarray(np.asarray(len(lst), np.int32))]


@kernel("TensorListElementShape")
def tensor_list_element_shape(ctx, inputs, attrs):
    lst = _get_list(inputs[0], "TensorListElementShape")
    dtype = np.dtype(attrs.get("shape_type", np.int32))
    if lst.element_shape is None:
        return [ctx.asarray(np.asarray(-1, dtype))]
    dims = [-1 if d is None else d for d in lst.element_shape]
    return [ctx.asarray(np.asarray(dims, dtype).reshape(len(dims)))]


@kernel("TensorListGetItem")
def tensor_list_get_item(ctx, inputs, attrs):
    op = "TensorListGetItem"
    lst = _get_list(inputs[0], op)
    _check_dtype(lst, attrs.get("element_dtype"), op)
    index = _index(ctx, inputs[1], len(lst), op)
    item = lst.items[index]
    if item is None:
        requested = _shape_from_tensor(ctx, inputs[2], op)
        return [_zeros(ctx, _fill_shape(lst, requested, op), lst.element_dtype)]
    return [item]


@kernel("TensorListSetItem")
def tensor_list_set_item(ctx, inputs, attrs):
    op = "TensorListSetItem"
    lst, index_t, item = _get_list(inputs[0], op), inputs[1], inputs[2]
    _check_item(lst, item, op)
    index = scalar(ctx, index_t, op, "index")
    items = list(lst.items)
    if attrs.get("resize_if_index_out_of_bounds", False) and index >= len(items):
        items += [None] * (index + 1 - len(items))
    if not 0 <= index < len(items):
        _index(ctx, index_t, len(items), op)  # raises TensorFlow's error
    items[index] = item
    return [TensorList(lst.element_dtype, lst.element_shape, tuple(items), lst.max_num_elements)]


@kernel("TensorListPushBack")
def tensor_list_push_back(ctx, inputs, attrs):
    op = "TensorListPushBack"
    lst, item = _get_list(inputs[0], op), inputs[1]
    _check_item(lst, item, op)
    if 0 <= lst.max_num_elements <= len(lst):
        raise SavedModelError(f"{op}: tried to push item into a full list (max "
                              f"{lst.max_num_elements}).")
    return [replace(lst, items=lst.items + (item,))]


@kernel("TensorListPopBack")
def tensor_list_pop_back(ctx, inputs, attrs):
    op = "TensorListPopBack"
    lst = _get_list(inputs[0], op)
    _check_dtype(lst, attrs.get("element_dtype"), op)
    if not lst.items:
        raise SavedModelError(f"{op}: trying to pop from an empty list.")
    item = lst.items[-1]
    if item is None:  # unlike GetItem, TensorFlow does not look at the other items here
        shape = _merge(lst.element_shape, _shape_from_tensor(ctx, inputs[1], op), op)
        if shape is None or None in shape:
            raise SavedModelError(f"{op}: trying to read an uninitialized tensor but the element "
                                  f"shape {_label(shape)} is not fully defined.")
        item = _zeros(ctx, shape, lst.element_dtype)
    return [replace(lst, items=lst.items[:-1]), item]


@kernel("TensorListResize")
def tensor_list_resize(ctx, inputs, attrs):
    op = "TensorListResize"
    lst = _get_list(inputs[0], op)
    size = scalar(ctx, inputs[1], op, "size")
    if size < 0:
        raise SavedModelError(f"{op}: size must be non-negative, got {size}.")
    ctx.check_alloc((size,), np.int64, op)
    items = lst.items[:size] + (None,) * max(0, size - len(lst))
    return [replace(lst, items=items)]


@kernel("TensorListStack")
def tensor_list_stack(ctx, inputs, attrs):
    op = "TensorListStack"
    lst = _get_list(inputs[0], op)
    _check_dtype(lst, attrs.get("element_dtype"), op)
    num = int(attrs.get("num_elements", -1))
    if num != -1 and num != len(lst):
        raise SavedModelError(f"{op}: operation expected a list with {num} elements but got a list "
                              f"with {len(lst)} elements.")
    return [_stack(ctx, lst, lst.items, _shape_from_tensor(ctx, inputs[1], op), op)]


@kernel("TensorListGather")
def tensor_list_gather(ctx, inputs, attrs):
    op = "TensorListGather"
    lst = _get_list(inputs[0], op)
    _check_dtype(lst, attrs.get("element_dtype"), op)
    indices = ints(ctx, inputs[1])
    for i in indices:
        if not 0 <= i < len(lst):
            raise SavedModelError(f"{op}: trying to access element {i} in a list with {len(lst)} "
                                  "elements.")
    requested = _shape_from_tensor(ctx, inputs[2], op)
    return [_stack(ctx, lst, [lst.items[i] for i in indices], requested, op)]


def _scatter_items(ctx, lst, tensor, indices_t, op, min_length=0):
    indices = ints(ctx, indices_t)
    if tensor.ndim < 1 or len(indices) != tensor.shape[0]:
        raise SavedModelError(f"{op}: expected len(indices) == tensor.shape[0], but saw "
                              f"{len(indices)} vs. "
                              f"{tensor.shape[0] if tensor.ndim else 'a scalar'}.")
    _check_dtype(lst, np_dtype(tensor), op)
    _merge(lst.element_shape, tuple(tensor.shape[1:]), op)
    items = list(lst.items)
    length = max([len(items), min_length] + [i + 1 for i in indices])
    ctx.check_alloc((length,), np.int64, op)
    items += [None] * (length - len(items))
    for row, i in enumerate(indices):
        if i < 0:
            raise SavedModelError(f"{op}: indices may not be negative, got {i}.")
        items[i] = tensor[row, ...]
    return replace(lst, items=tuple(items))


@kernel("TensorListScatterIntoExistingList")
def tensor_list_scatter_into_existing(ctx, inputs, attrs):
    op = "TensorListScatterIntoExistingList"
    lst, tensor, indices_t = _get_list(inputs[0], op), inputs[1], inputs[2]
    return [_scatter_items(ctx, lst, tensor, indices_t, op)]


@kernel("TensorListScatterV2")
def tensor_list_scatter_v2(ctx, inputs, attrs):
    op = "TensorListScatterV2"
    tensor, indices_t, shape_t, num_t = inputs
    lst = TensorList(np_dtype(tensor), _shape_from_tensor(ctx, shape_t, op))
    return [_scatter_items(ctx, lst, tensor, indices_t, op, scalar(ctx, num_t, op, "num_elements"))]


@kernel("TensorListScatter")
def tensor_list_scatter(ctx, inputs, attrs):
    op = "TensorListScatter"
    tensor, indices_t, shape_t = inputs
    lst = TensorList(np_dtype(tensor), _shape_from_tensor(ctx, shape_t, op))
    return [_scatter_items(ctx, lst, tensor, indices_t, op)]


@kernel("TensorListSplit")
def tensor_list_split(ctx, inputs, attrs):
    op = "TensorListSplit"
    tensor, shape_t, lengths_t = inputs
    lengths = ints(ctx, lengths_t)
    if tensor.ndim < 1 or sum(lengths) != tensor.shape[0] or any(n < 0 for n in lengths):
        raise SavedModelError(f"{op}: lengths {lengths} must be non-negative and sum to the "
                              f"leading dimension of the tensor of shape {tuple(tensor.shape)}.")
    shape = _shape_from_tensor(ctx, shape_t, op)
    _merge(shape, (None,) + tuple(tensor.shape[1:]), op)
    starts = np.cumsum([0] + lengths)
    items = tuple(tensor[int(a):int(b), ...] for a, b in zip(starts[:-1], starts[1:]))
    return [TensorList(np_dtype(tensor), shape, items)]


@kernel("TensorListConcatV2")
def tensor_list_concat_v2(ctx, inputs, attrs):
    op = "TensorListConcatV2"
    lst = _get_list(inputs[0], op)
    _check_dtype(lst, attrs.get("element_dtype"), op)
    requested = _shape_from_tensor(ctx, inputs[1], op)
    shape = _merge(lst.element_shape, requested, op)
    if shape is None or len(shape) < 1:
        raise SavedModelError(f"{op}: concat requires elements of rank at least 1, got "
                              f"{_label(shape)}.")
    items = list(lst.items)
    if any(item is None for item in items):
        leading = ints(ctx, inputs[2])
        rows = (None,) + shape[1:]
        inner = _fill_shape(replace(lst, element_shape=rows), rows, op)
        items = [item if item is not None else
                 _zeros(ctx, (leading[i] if i < len(leading) else inner[0],) + tuple(inner[1:]),
                        lst.element_dtype)
                 for i, item in enumerate(items)]
    lengths = np.asarray([item.shape[0] for item in items], np.int64)
    if not items:
        if None in shape[1:]:
            raise SavedModelError(f"{op}: all except the first dimension must be fully defined "
                                  f"when concatenating an empty list, got {_label(shape)}.")
        return [_zeros(ctx, (0,) + tuple(shape[1:]), lst.element_dtype), ctx.asarray(lengths)]
    xp = xp_of(ctx, *items)
    items = [move_to(ctx, xp, i) for i in items]
    for item in items[1:]:
        if tuple(item.shape[1:]) != tuple(items[0].shape[1:]):
            raise SavedModelError(f"{op}: list elements have incompatible shapes "
                                  f"{tuple(items[0].shape)} and {tuple(item.shape)}.")
    ctx.check_alloc((int(lengths.sum()),) + tuple(items[0].shape[1:]), np_dtype(items[0]), op)
    return [xp.concat(items, axis=0), ctx.asarray(lengths)]
