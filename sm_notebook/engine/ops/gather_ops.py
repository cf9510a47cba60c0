"""Indexing kernels: gathers, scatters, one-hot, top-k, where and unique."""
from __future__ import annotations

import numpy as np

from ...errors import SavedModelError
from ._arrays import (canonical_axis, host_result, is_numpy_namespace, move_to, np_dtype,
                      num_elements, scalar, xp_dtype, xp_of)
from .registry import kernel


def _first_bad(host_indices, limit):
    bad = np.argwhere((host_indices < 0) | (host_indices >= limit))
    return tuple(int(i) for i in bad[0]) if len(bad) else None


def _check_indices(ctx, xp, indices, limit, op):
    if not num_elements(indices.shape) or not bool(xp.any((indices < 0) | (indices >= limit))):
        return
    host = ctx.to_numpy(indices)
    where = _first_bad(host, limit)
    raise SavedModelError(f"{op}: indices{list(where)} = {host[where]} is not in [0, {limit}).")


def gather(ctx, op, params, indices, axis, batch_dims):
    """TensorFlow's GatherV2 on any namespace (out-of-range indices are an error)."""
    xp = xp_of(ctx, params)
    indices = move_to(ctx, xp, indices)
    prank, irank = params.ndim, indices.ndim
    if batch_dims < 0:
        batch_dims += irank
    if not 0 <= batch_dims <= irank:
        raise SavedModelError(f"{op}: batch_dims {batch_dims} must be in [0, rank(indices) = "
                              f"{irank}].")
    axis = canonical_axis(axis, prank, op)
    if batch_dims > axis:
        raise SavedModelError(f"{op}: batch_dims ({batch_dims}) must be less than or equal to "
                              f"axis ({axis}).")
    ps, ishape = tuple(params.shape), tuple(indices.shape)
    if ps[:batch_dims] != ishape[:batch_dims]:
        raise SavedModelError(f"{op}: params.shape {ps} and indices.shape {ishape} must agree on "
                              f"the first {batch_dims} (batch) dimensions.")
    limit = ps[axis]
    _check_indices(ctx, xp, indices, limit, op)
    out_shape = ps[:axis] + ishape[batch_dims:] + ps[axis + 1:]
    ctx.check_alloc(out_shape, np_dtype(params), op)
    if batch_dims == 0 and is_numpy_namespace(xp):
        return np.take(params, indices, axis=axis)
    batch = num_elements(ps[:batch_dims])
    pre, post = num_elements(ps[batch_dims:axis]), num_elements(ps[axis + 1:])
    count = num_elements(ishape[batch_dims:])
    flat_idx = xp.reshape(xp.astype(indices, xp_dtype(xp, np.int64)), (batch, count))
    if batch > 1:
        offsets = xp.arange(batch, dtype=xp_dtype(xp, np.int64)) * limit
        flat_idx = flat_idx + xp.reshape(offsets, (batch, 1))
    p = xp.permute_dims(xp.reshape(params, (batch, pre, limit, post)), (0, 2, 1, 3))
    p = xp.reshape(p, (batch * limit, pre, post))
    g = xp.take(p, xp.reshape(flat_idx, (batch * count,)), axis=0)
    g = xp.permute_dims(xp.reshape(g, (batch, count, pre, post)), (0, 2, 1, 3))
    return xp.reshape(g, out_shape)


@kernel("Gather")
def gather_v1(ctx, inputs, attrs):
    return [gather(ctx, "Gather", inputs[0], inputs[1], 0, 0)]


@kernel("GatherV2")
def gather_v2(ctx, inputs, attrs):
    axis = scalar(ctx, inputs[2], "GatherV2", "axis")
    return [gather(ctx, "GatherV2", inputs[0], inputs[1], axis, int(attrs.get("batch_dims", 0)))]


def _linear_indices(ctx, xp, indices, shape, op):
    """Row-major offsets of the index tuples (last axis of ``indices``) into ``shape``.

    Out-of-range tuples raise SavedModelError, as on TensorFlow's CPU.
    """
    depth = indices.shape[-1] if indices.ndim else 0
    if indices.ndim < 1 or depth > len(shape):
        raise SavedModelError(f"{op}: indices of shape {tuple(indices.shape)} cannot index into a "
                              f"tensor of shape {tuple(shape)}.")
    host = ctx.to_numpy(indices).astype(np.int64)
    host = host.reshape(num_elements(host.shape[:-1]), depth)
    limits = np.asarray(shape[:depth], np.int64)
    bad = np.flatnonzero(np.any((host < 0) | (host >= limits), axis=1))
    if bad.size:
        raise SavedModelError(f"{op}: indices[{int(bad[0])}] = {host[bad[0]].tolist()} does not "
                              f"index into shape {list(shape)}.")
    strides = np.ones(depth, np.int64)
    for j in range(depth - 2, -1, -1):
        strides[j] = strides[j + 1] * limits[j + 1]
    return host @ strides if depth else np.zeros(host.shape[0], np.int64), depth


@kernel("GatherNd")
def gather_nd(ctx, inputs, attrs):
    params, indices = inputs
    xp = xp_of(ctx, params)
    linear, depth = _linear_indices(ctx, xp, indices, tuple(params.shape), "GatherNd")
    outer, inner = tuple(indices.shape[:-1]), tuple(params.shape[depth:])
    ctx.check_alloc(outer + inner, np_dtype(params), "GatherNd")
    flat = xp.reshape(params, (num_elements(params.shape[:depth]), num_elements(inner)))
    taken = xp.take(flat, move_to(ctx, xp, linear), axis=0)
    return [xp.reshape(taken, outer + inner)]


_SCATTER_UFUNCS = {"add": np.add, "sub": np.subtract, "max": np.maximum, "min": np.minimum}


def _scatter(ctx, op, base, indices, updates, mode):
    """Apply ``updates`` at ``indices`` of a copy of ``base`` (a numpy array), on the host."""
    xp = xp_of(ctx, base, updates)
    out = np.array(ctx.to_numpy(base), copy=True)
    upd = ctx.to_numpy(updates)
    linear, depth = _linear_indices(ctx, xp, indices, out.shape, op)
    expected = tuple(indices.shape[:-1]) + out.shape[depth:]
    if upd.shape != expected:
        raise SavedModelError(f"{op}: updates must have shape {expected} (indices.shape[:-1] + "
                              f"shape[{depth}:]), got {upd.shape}.")
    flat = out.reshape(num_elements(out.shape[:depth]), -1)
    rows = upd.reshape(linear.size, -1)
    if mode == "update":
        flat[linear] = rows
    else:
        _SCATTER_UFUNCS[mode].at(flat, linear, rows)
    return [host_result(ctx, xp, out)]


@kernel("ScatterNd")
def scatter_nd(ctx, inputs, attrs):
    indices, updates, shape_t = inputs
    shape = tuple(int(d) for d in ctx.to_numpy(shape_t).reshape(-1))
    if any(d < 0 for d in shape):
        raise SavedModelError(f"ScatterNd: shape {list(shape)} must be non-negative.")
    dtype = np_dtype(updates)
    ctx.check_alloc(shape, dtype, "ScatterNd")
    return _scatter(ctx, "ScatterNd", np.zeros(shape, dtype), indices, updates, "add")


def _tensor_scatter(op, mode):
    @kernel(op)
    def tensor_scatter(ctx, inputs, attrs):
        tensor, indices, updates = inputs
        return _scatter(ctx, op, tensor, indices, updates, mode)
    return tensor_scatter


for _op, _mode in (("TensorScatterUpdate", "update"), ("TensorScatterAdd", "add"),
                   ("TensorScatterSub", "sub"), ("TensorScatterMax", "max"),
                   ("TensorScatterMin", "min")):
    _tensor_scatter(_op, _mode)


@kernel("OneHot")
def one_hot(ctx, inputs, attrs):
    indices, depth_t, on, off = inputs
    xp = xp_of(ctx, indices, on)
    indices, on, off = (move_to(ctx, xp, t) for t in (indices, on, off))
    depth = scalar(ctx, depth_t, "OneHot", "depth")
    if depth < 0:
        raise SavedModelError(f"OneHot: depth must be non-negative, got {depth}.")
    axis = int(attrs.get("axis", -1))
    rank = indices.ndim
    if not -1 <= axis <= rank:
        raise SavedModelError(f"OneHot: expected axis to be -1 or between [0, {rank}], got {axis}.")
    out_shape = tuple(indices.shape) + (depth,)
    ctx.check_alloc(out_shape, np_dtype(on), "OneHot")
    int64 = xp_dtype(xp, np.int64)
    column = xp.reshape(xp.astype(indices, int64), tuple(indices.shape) + (1,))
    hot = column == xp.arange(depth, dtype=int64)
    out = xp.where(hot, xp.reshape(on, ()), xp.reshape(off, ()))
    if axis not in (-1, rank):
        perm = list(range(rank))
        perm.insert(axis, rank)
        out = xp.permute_dims(out, tuple(perm))
    return [out]


@kernel("TopKV2")
def top_k_v2(ctx, inputs, attrs):
    x, k_t = inputs
    xp = xp_of(ctx, x)
    k = scalar(ctx, k_t, "TopKV2", "k")
    if x.ndim < 1 or not 0 <= k <= x.shape[-1]:
        raise SavedModelError(f"TopKV2: input must have at least {k} columns and k must be "
                              f"non-negative, got shape {tuple(x.shape)} and k = {k}.")
    if is_numpy_namespace(xp):  # numpy's argsort has no descending=: flip, sort stably, flip back
        last = x.shape[-1] - 1
        order = (last - np.argsort(x[..., ::-1], axis=-1, kind="stable")[..., ::-1])[..., :k]
    else:
        order = xp.argsort(x, axis=-1, descending=True, stable=True)[..., :k]
    values = xp.take_along_axis(x, order, axis=-1)
    index_type = np.dtype(attrs.get("index_type", np.int32))
    return [values, xp.astype(order, xp_dtype(xp, index_type))]


@kernel("Where")
def where(ctx, inputs, attrs):
    x = inputs[0]
    xp = xp_of(ctx, x)
    int64 = xp_dtype(xp, np.int64)
    if x.ndim == 0:
        raise SavedModelError("Where: the input must have at least one dimension (TensorFlow's "
                              "WhereOp does not handle scalars).")
    coords = xp.nonzero(x)
    return [xp.stack([xp.astype(c, int64) for c in coords], axis=1)]


def _unique(ctx, op, x, idx_dtype):
    xp = xp_of(ctx, x)
    if x.ndim != 1:
        raise SavedModelError(f"{op}: x must be a vector, got shape {tuple(x.shape)}.")
    idx_dtype = xp_dtype(xp, idx_dtype)
    if x.shape[0] == 0:
        return x, xp.zeros((0,), dtype=idx_dtype), xp.zeros((0,), dtype=idx_dtype)
    found = xp.unique_all(x)
    order = xp.argsort(found.indices)            # unique values in order of first appearance
    values = xp.take(found.values, order)
    rank = xp.argsort(order)
    idx = xp.take(rank, xp.reshape(found.inverse_indices, (-1,)))
    counts = xp.take(found.counts, order)
    return values, xp.astype(idx, idx_dtype), xp.astype(counts, idx_dtype)


@kernel("Unique")
def unique(ctx, inputs, attrs):
    return list(_unique(ctx, "Unique", inputs[0], attrs.get("out_idx", np.int32))[:2])


@kernel("UniqueWithCounts")
def unique_with_counts(ctx, inputs, attrs):
    return list(_unique(ctx, "UniqueWithCounts", inputs[0], attrs.get("out_idx", np.int32)))
