"""Ragged tensor kernels: RaggedRange, RaggedGather, RaggedTensorToTensor,
RaggedTensorToSparse and the variant encoding map_fn uses (RaggedTensorToVariant /
RaggedTensorFromVariant).

A ragged tensor reaches these ops as its components: ``nested_splits`` (one int32/int64
vector per ragged dimension, outermost first) and the dense ``values``. Row bookkeeping
(splits, row ids, positions) is integer work done on the host with numpy; the values
themselves are only gathered (``xp.take``), so they stay on the backend.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._arrays import host_result, move_to, np_dtype, num_elements, xp_dtype, xp_of
from ._numeric import fail
from .registry import kernel


def _host_ints(ctx, tensor) -> np.ndarray:
    return np.asarray(ctx.to_numpy(tensor)).astype(np.int64, copy=False)


def ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """``concat([arange(s, s + n) for s, n in zip(starts, lengths)])`` without a loop."""
    total = int(lengths.sum()) if lengths.size else 0
    if not total:
        return np.zeros(0, np.int64)
    offsets = np.cumsum(lengths) - lengths
    return np.arange(total, dtype=np.int64) + np.repeat(starts - offsets, lengths)


def splits_from_lengths(lengths: np.ndarray) -> np.ndarray:
    out = np.zeros(lengths.shape[0] + 1, np.int64)
    np.cumsum(lengths, out=out[1:])
    return out


def check_splits(op: str, splits: np.ndarray, size: int | None, what: str = "row_splits",
                 exact: bool = True) -> None:
    """TensorFlow's checks of one row_splits vector: non-empty, starts at 0, never
    decreases, ends at ``size`` (at most ``size`` when not ``exact``)."""
    if splits.ndim != 1 or splits.shape[0] == 0:
        fail(op, f"{what} must be a non-empty vector, got shape {splits.shape}.")
    if splits[0] != 0:
        fail(op, f"{what}[0] must be 0, got {int(splits[0])}.")
    drops = np.flatnonzero(np.diff(splits) < 0)
    if drops.size:
        i = int(drops[0]) + 1
        fail(op, f"{what} must never decrease: {what}[{i}] = {int(splits[i])} follows "
                 f"{int(splits[i - 1])}.")
    if size is not None and (splits[-1] > size or (exact and splits[-1] != size)):
        fail(op, f"the last value of {what} ({int(splits[-1])}) must equal the number of "
                 f"rows it splits ({size}).")


# --------------------------------------------------------------------------- RaggedRange

@kernel("RaggedRange")
def ragged_range(ctx, inputs, attrs):
    op = "RaggedRange"
    host = [np.asarray(ctx.to_numpy(t)) for t in inputs]
    if any(t.ndim > 1 for t in host):
        fail(op, "starts, limits and deltas must be scalars or vectors, got shapes "
                 f"{[t.shape for t in host]}.")
    sizes = {t.shape[0] for t in host if t.ndim == 1}
    if len(sizes) > 1:
        fail(op, f"starts, limits, and deltas must have the same shape, got "
                 f"{[t.shape for t in host]}.")
    nrows = sizes.pop() if sizes else 1
    starts, limits, deltas = (np.broadcast_to(t.reshape(-1), (nrows,)) for t in host)
    if (deltas == 0).any():
        fail(op, "Requires delta != 0.")
    dtype = host[0].dtype
    if dtype.kind in "fV":
        lengths = np.ceil(np.abs((limits - starts) / deltas)).astype(np.int64)
    else:
        span, step = limits.astype(np.int64) - starts, deltas.astype(np.int64)
        lengths = (np.abs(span) + np.abs(step) - 1) // np.abs(step)
    lengths = np.where((deltas > 0) & (limits < starts) | (deltas < 0) & (limits > starts),
                       0, lengths)
    splits = splits_from_lengths(lengths)
    ctx.check_alloc((int(splits[-1]),), dtype, op)
    if dtype.kind in "fV":  # TensorFlow adds delta to a running value, rounding to T each time
        values = np.repeat(deltas, lengths)
        for row in np.flatnonzero(lengths):
            first = splits[row]
            values[first] = starts[row]
            np.add.accumulate(values[first:splits[row + 1]], out=values[first:splits[row + 1]])
    else:
        steps = ranges(np.zeros(nrows, np.int64), lengths)
        values = (np.repeat(starts, lengths) + steps * np.repeat(deltas, lengths)).astype(dtype)
    tsplits = np.dtype(attrs.get("Tsplits", np.int64))
    return [host_result(ctx, ctx.xp, splits.astype(tsplits)), host_result(ctx, ctx.xp, values)]


# --------------------------------------------------------------------------- RaggedGather

@kernel("RaggedGather")
def ragged_gather(ctx, inputs, attrs):
    op = "RaggedGather"
    nested = [_host_ints(ctx, s) for s in inputs[:-2]]
    values, indices = inputs[-2], _host_ints(ctx, inputs[-1])
    if not nested:
        fail(op, "params must be ragged (PARAMS_RAGGED_RANK >= 1).")
    for level, splits in enumerate(nested):
        size = nested[level + 1].shape[0] - 1 if level + 1 < len(nested) else values.shape[0]
        check_splits(op, splits, size, f"params_nested_splits[{level}]")
    nrows = nested[0].shape[0] - 1
    flat = indices.reshape(-1)
    bad = np.flatnonzero((flat < 0) | (flat >= nrows))
    if bad.size:
        i = int(bad[0])
        fail(op, f"indices[{i}] = {int(flat[i])} is not in [0, {nrows}).")
    shape = indices.shape
    out_splits = [np.arange(num_elements(shape[:d + 1]) + 1, dtype=np.int64) * shape[d + 1]
                  for d in range(len(shape) - 1)]
    selected = flat
    for splits in nested:
        starts = splits[selected]
        lengths = splits[selected + 1] - starts
        out_splits.append(splits_from_lengths(lengths))
        selected = ranges(starts, lengths)
    xp = xp_of(ctx, values)
    gathered = xp.take(values, move_to(ctx, xp, selected), axis=0) if values.ndim else values
    tsplits = np.dtype(attrs.get("Tsplits", np_dtype(inputs[0])))
    return [host_result(ctx, ctx.xp, s.astype(tsplits)) for s in out_splits] + [gathered]


# ------------------------------------------------------------ coordinates of ragged values

@dataclass
class _Level:
    """One ragged dimension: for each of its children (the next level's rows, or values),
    the parent row and the position within it (-1 where the child belongs to no row)."""
    parent: np.ndarray
    position: np.ndarray
    width: int  # the longest row


def _level_from_splits(op, splits, children: int, what: str, exact: bool) -> _Level:
    check_splits(op, splits, children, what, exact=exact)
    lengths = np.diff(splits)
    used = int(splits[-1])
    parent = np.full(children, -1, np.int64)
    parent[:used] = np.repeat(np.arange(lengths.shape[0], dtype=np.int64), lengths)
    position = np.full(children, -1, np.int64)
    position[:used] = np.arange(used) - np.repeat(splits[:-1], lengths)
    return _Level(parent, position, int(lengths.max()) if lengths.size else 0)


def _level_from_rowids(op, rowids, nrows: int, what: str) -> _Level:
    if rowids.ndim != 1:
        fail(op, f"{what} must be a vector, got shape {rowids.shape}.")
    if rowids.size:
        if rowids[0] < 0 or (np.diff(rowids) < 0).any():
            fail(op, f"{what} must be sorted non-negative row ids.")
        if rowids[-1] >= nrows:
            fail(op, f"{what} has row id {int(rowids[-1])}, but there are only {nrows} rows.")
    first = np.searchsorted(rowids, rowids, side="left")
    position = np.arange(rowids.shape[0], dtype=np.int64) - first
    return _Level(rowids, position, int(position.max()) + 1 if position.size else 0)


def value_coordinates(levels: list[_Level], count: int) -> tuple[np.ndarray, np.ndarray]:
    """(coordinates of each of ``count`` values in the ragged dims, shape [count, 1 +
    len(levels)]; which values belong to a row at every level)."""
    coords = np.zeros((count, len(levels) + 1), np.int64)
    kept = np.ones(count, bool)
    child = np.arange(count, dtype=np.int64)
    for depth in range(len(levels) - 1, -1, -1):
        level = levels[depth]
        safe = np.where(kept, child, 0)
        if level.parent.shape[0] == 0:
            kept[:] = False
            break
        coords[:, depth + 1] = level.position[safe]
        child = level.parent[safe]
        kept &= child >= 0
    coords[:, 0] = child
    return coords, kept


def _nested_levels(op, nested: list[np.ndarray], values_rows: int) -> list[_Level]:
    levels = []
    for depth, splits in enumerate(nested):
        children = nested[depth + 1].shape[0] - 1 if depth + 1 < len(nested) else values_rows
        levels.append(_level_from_splits(op, splits, children, f"rt_nested_splits[{depth}]", True))
    return levels


# ------------------------------------------------------------------- RaggedTensorToTensor

def _partitions(op, ctx, types, tensors, values_rows) -> tuple[int, list[_Level]]:
    """(number of rows, one `_Level` per ragged dimension) from RaggedTensorToTensor's
    row_partition_types and tensors."""
    types = [t.decode() if isinstance(t, bytes) else str(t) for t in types]
    hosts = [_host_ints(ctx, t) for t in tensors]
    if len(types) != len(hosts) or not types:
        fail(op, f"row_partition_types {types} must name each of the {len(hosts)} partition tensors.")
    if types[0] == "FIRST_DIM_SIZE" and all(t == "VALUE_ROWIDS" for t in types[1:]) and len(types) > 1:
        nrows = int(hosts[0].reshape(-1)[0])
        levels, parents = [], nrows
        for depth, rowids in enumerate(hosts[1:]):
            level = _level_from_rowids(op, rowids, parents, f"row_partition_tensors[{depth + 1}]")
            levels.append(level)
            parents = rowids.shape[0]
        if parents != values_rows:
            fail(op, f"the last value_rowids have {parents} entries, but values has "
                     f"{values_rows} rows.")
        return nrows, levels
    if all(t == "ROW_SPLITS" for t in types):
        levels = []
        for depth, splits in enumerate(hosts):
            children = hosts[depth + 1].shape[0] - 1 if depth + 1 < len(hosts) else values_rows
            levels.append(_level_from_splits(op, splits, children,
                                             f"row_partition_tensors[{depth}]", exact=False))
        return hosts[0].shape[0] - 1, levels
    fail(op, f"row_partition_types {types} are not supported: use ROW_SPLITS for every "
             "dimension, or FIRST_DIM_SIZE followed by VALUE_ROWIDS.")


def _output_shape(op, ctx, shape_t, natural: tuple) -> tuple:
    asked = _host_ints(ctx, shape_t)
    if asked.ndim == 0:
        if int(asked) != -1:
            fail(op, f"a scalar shape must be -1 (unknown), got {int(asked)}.")
        return natural
    if asked.shape[0] != len(natural):
        fail(op, f"rt_input.shape and shape={asked.tolist()} are incompatible: the ragged "
                 f"tensor has rank {len(natural)}.")
    return tuple(n if a < 0 else int(a) for a, n in zip(asked.tolist(), natural))


@kernel("RaggedTensorToTensor")
def ragged_tensor_to_tensor(ctx, inputs, attrs):
    op = "RaggedTensorToTensor"
    shape_t, values, default = inputs[:3]
    if values.ndim < 1:
        fail(op, f"values must be at least a vector, got shape {tuple(values.shape)}.")
    nrows, levels = _partitions(op, ctx, attrs.get("row_partition_types", []), inputs[3:],
                                values.shape[0])
    inner = tuple(values.shape[1:])
    natural = (nrows,) + tuple(level.width for level in levels) + inner
    shape = _output_shape(op, ctx, shape_t, natural)
    if shape[len(levels) + 1:] != inner:
        fail(op, f"rt_input.shape and shape={list(shape)} are incompatible: the values' "
                 f"inner dimensions are {list(inner)}.")
    default_shape = tuple(default.shape)
    if len(default_shape) > len(inner) or any(
            d not in (1, n) for d, n in zip(default_shape[::-1], inner[::-1])):
        fail(op, f"default_value.shape={list(default_shape)} and rt_input.flat_values.shape="
                 f"{list(values.shape)} are incompatible: default_value must broadcast to "
                 f"{list(inner)}.")
    ctx.check_alloc(shape, np_dtype(values), op)
    coords, kept = value_coordinates(levels, values.shape[0])
    outer = shape[:len(levels) + 1]
    kept &= np.all(coords < np.asarray(outer, np.int64), axis=1)
    slots = num_elements(outer)
    source = np.full(slots, values.shape[0], np.int64)  # index of the default row
    where = np.flatnonzero(kept)
    if where.size:
        source[np.ravel_multi_index(coords[where].T, outer)] = where
    xp = xp_of(ctx, values, default)
    values, default = move_to(ctx, xp, values), move_to(ctx, xp, default)
    rows = xp.reshape(values, (values.shape[0], num_elements(inner)))
    fill = xp.reshape(xp.broadcast_to(default, inner), (1, num_elements(inner)))
    table = xp.concat([rows, fill], axis=0)
    out = xp.take(table, move_to(ctx, xp, source), axis=0)
    return [xp.reshape(out, shape)]


# ------------------------------------------------------------------- RaggedTensorToSparse

@kernel("RaggedTensorToSparse")
def ragged_tensor_to_sparse(ctx, inputs, attrs):
    op = "RaggedTensorToSparse"
    nested = [_host_ints(ctx, s) for s in inputs[:-1]]
    values = inputs[-1]
    if values.ndim < 1:
        fail(op, f"rt_dense_values must be at least a vector, got shape {tuple(values.shape)}.")
    levels = _nested_levels(op, nested, values.shape[0])
    inner = tuple(values.shape[1:])
    coords, _ = value_coordinates(levels, values.shape[0])
    per_value = num_elements(inner)
    inner_coords = np.indices(inner).reshape(len(inner), per_value).T if inner else \
        np.zeros((1, 0), np.int64)
    indices = np.concatenate([np.repeat(coords, per_value, axis=0),
                              np.tile(inner_coords, (coords.shape[0], 1))], axis=1)
    dense_shape = np.asarray((nested[0].shape[0] - 1,) + tuple(level.width for level in levels)
                             + inner, np.int64)
    xp = xp_of(ctx, values)
    flat = xp.reshape(values, (values.shape[0] * per_value,))
    return [host_result(ctx, ctx.xp, indices.astype(np.int64)), flat,
            host_result(ctx, ctx.xp, dense_shape)]


# ------------------------------------------------------------------------ variant encoding

@dataclass(frozen=True, eq=False)
class RaggedVariant:
    """One ragged tensor held in a DT_VARIANT scalar (RaggedTensorToVariant's encoding):
    its nested row splits (host int arrays, outermost first; none for a dense tensor) and
    its values."""
    nested_splits: tuple
    values: object

    @property
    def ragged_rank(self) -> int:
        return len(self.nested_splits)

    def __repr__(self):
        return f"RaggedVariant(ragged_rank={self.ragged_rank}, values={tuple(self.values.shape)})"


def _variant_array(items: list, shape: tuple) -> np.ndarray:
    out = np.empty(len(items), dtype=object)
    out[:] = items
    return out.reshape(shape)


@kernel("RaggedTensorToVariant")
def ragged_tensor_to_variant(ctx, inputs, attrs):
    op = "RaggedTensorToVariant"
    nested = [_host_ints(ctx, s) for s in inputs[:-1]]
    values = inputs[-1]
    splits_dtype = np_dtype(inputs[0]) if nested else np.dtype(np.int64)
    for depth, splits in enumerate(nested):
        size = nested[depth + 1].shape[0] - 1 if depth + 1 < len(nested) else values.shape[0]
        check_splits(op, splits, size, f"rt_nested_splits[{depth}]")
    if not attrs.get("batched_input", False):
        item = RaggedVariant(tuple(s.astype(splits_dtype) for s in nested), values)
        return [_variant_array([item], ())]
    if not nested:
        fail(op, "batched_input requires a ragged input (RAGGED_RANK >= 1).")
    items = []
    for row in range(nested[0].shape[0] - 1):
        start, stop = int(nested[0][row]), int(nested[0][row + 1])
        inner_splits = []
        for splits in nested[1:]:
            inner_splits.append((splits[start:stop + 1] - splits[start]).astype(splits_dtype))
            start, stop = int(splits[start]), int(splits[stop])
        items.append(RaggedVariant(tuple(inner_splits), values[start:stop, ...]))
    ctx.check_outputs(len(items), op)
    return [_variant_array(items, (len(items),))]


@kernel("RaggedTensorFromVariant")
def ragged_tensor_from_variant(ctx, inputs, attrs):
    op = "RaggedTensorFromVariant"
    encoded = np.asarray(inputs[0], dtype=object)
    output_rank = int(attrs.get("output_ragged_rank", 1))
    input_rank = int(attrs.get("input_ragged_rank", -1))
    if input_rank == -1:
        input_rank = output_rank - encoded.ndim
    if input_rank + encoded.ndim != output_rank:
        fail(op, f"output_ragged_rank ({output_rank}) must be input_ragged_rank "
                 f"({input_rank}) plus the encoded tensor's rank ({encoded.ndim}).")
    items = list(encoded.reshape(-1))
    for item in items:
        if not isinstance(item, RaggedVariant):
            fail(op, f"encoded_ragged holds {type(item).__name__}, not a ragged tensor "
                     "encoded by RaggedTensorToVariant.")
        if item.ragged_rank != input_rank:
            fail(op, f"an encoded ragged tensor has ragged rank {item.ragged_rank}, expected "
                     f"{input_rank}.")
    tsplits = np.dtype(attrs.get("Tsplits", np.int64))
    tvalues = np.dtype(attrs.get("Tvalues", np.float32))
    xp = ctx.xp if tvalues.kind not in "OSU" and ctx.backend.supports(tvalues) else np
    shape = encoded.shape
    out_splits = [np.arange(num_elements(shape[:d + 1]) + 1, dtype=np.int64) * shape[d + 1]
                  for d in range(len(shape) - 1)]
    if encoded.ndim == 0:
        item = items[0]
        return [host_result(ctx, ctx.xp, s.astype(tsplits)) for s in item.nested_splits] + \
            [item.values]
    rows = [item.nested_splits[0].shape[0] - 1 if input_rank else item.values.shape[0]
            for item in items]
    out_splits.append(splits_from_lengths(np.asarray(rows, np.int64)))
    for depth in range(input_rank):
        offset, parts = 0, [np.zeros(1, np.int64)]
        for item in items:
            splits = item.nested_splits[depth].astype(np.int64)
            parts.append(splits[1:] + offset)
            offset += int(splits[-1])
        out_splits.append(np.concatenate(parts))
    values = [move_to(ctx, xp, item.values) for item in items]
    if values:
        if any(v.ndim == 0 for v in values):
            fail(op, "an encoded tensor is a scalar; it cannot be a row of a ragged tensor.")
        flat = xp.concat(values, axis=0)
    else:
        flat = xp.zeros((0,), dtype=xp_dtype(xp, tvalues))
    return [host_result(ctx, ctx.xp, s.astype(tsplits)) for s in out_splits] + [flat]
