"""UniqueV2, UniqueWithCountsV2 (unique slices along an axis) and ListDiff (setdiff1d).

Computed on the host with a dict of slices in order of first appearance, with
TensorFlow's equality: 0.0 and -0.0 are equal, a NaN equals nothing (each slice holding
one is unique).
"""
from __future__ import annotations

import numpy as np

from ...errors import SavedModelError
from ._arrays import host_result, xp_of
from .registry import kernel


def _slice_keys(rows: np.ndarray) -> list:
    """A hashable key per row of a 2-D host array (None for a row holding a NaN)."""
    if rows.dtype == object:
        return [tuple(r) for r in rows.tolist()]
    if rows.dtype.kind in "fc":
        nan = np.isnan(rows).any(axis=1) if rows.shape[1] else np.zeros(rows.shape[0], bool)
        rows = rows + rows.dtype.type(0)  # -0.0 + 0.0 is 0.0
        return [None if n else r.tobytes() for n, r in zip(nan, rows)]
    return [r.tobytes() for r in rows]


def unique_slices(rows: np.ndarray):
    """(first row index of each unique row, index of each row's unique, counts)."""
    seen, firsts, inverse = {}, [], np.empty(rows.shape[0], np.int64)
    for i, key in enumerate(_slice_keys(rows)):
        if key is None or key not in seen:
            if key is not None:
                seen[key] = len(firsts)
            inverse[i] = len(firsts)
            firsts.append(i)
        else:
            inverse[i] = seen[key]
    counts = np.bincount(inverse, minlength=len(firsts))
    return np.asarray(firsts, np.int64), inverse, counts


def _unique_v2(ctx, inputs, attrs, op):
    x = inputs[0]
    xp = xp_of(ctx, x)
    host = ctx.to_numpy(x) if not isinstance(x, np.ndarray) else x
    axes = [int(a) for a in ctx.to_numpy(inputs[1]).reshape(-1)]
    if len(axes) > 1:
        raise SavedModelError(f"{op}: axis does not support input tensors larger than 1 "
                              f"element, got {axes}.")
    if not axes:
        if host.ndim != 1:
            raise SavedModelError(f"{op}: unique expects a 1D vector when axis is empty, got "
                                  f"shape {host.shape}.")
        axis = 0
    else:
        axis = axes[0]
        if not -host.ndim <= axis < host.ndim:
            raise SavedModelError(f"{op}: axis has to be between [0, {host.ndim}), got {axis}.")
        axis %= host.ndim
    moved = np.moveaxis(host, axis, 0)
    firsts, inverse, counts = unique_slices(
        moved.reshape(moved.shape[0], int(np.prod(moved.shape[1:], dtype=np.int64))))
    y = np.moveaxis(moved[firsts], 0, axis)
    index_dtype = np.dtype(attrs.get("out_idx", np.int32))
    return [host_result(ctx, xp, np.ascontiguousarray(y)),
            ctx.asarray(inverse.astype(index_dtype)), ctx.asarray(counts.astype(index_dtype))]


@kernel("UniqueV2")
def unique_v2(ctx, inputs, attrs):
    return _unique_v2(ctx, inputs, attrs, "UniqueV2")[:2]


@kernel("UniqueWithCountsV2")
def unique_with_counts_v2(ctx, inputs, attrs):
    return _unique_v2(ctx, inputs, attrs, "UniqueWithCountsV2")


@kernel("ListDiff")
def list_diff(ctx, inputs, attrs):
    """The elements of x not in y, in order, with their positions in x."""
    x, y = inputs
    xp = xp_of(ctx, x, y)
    hx = x if isinstance(x, np.ndarray) else ctx.to_numpy(x)
    hy = y if isinstance(y, np.ndarray) else ctx.to_numpy(y)
    if hx.ndim != 1 or hy.ndim != 1:
        raise SavedModelError(f"ListDiff: x and y should be 1D vectors, got shapes {hx.shape} "
                              f"and {hy.shape}.")
    drop = set(hy.tolist())
    keep = np.asarray([v not in drop for v in hx.tolist()], bool).reshape(-1)
    index_dtype = np.dtype(attrs.get("out_idx", np.int32))
    return [host_result(ctx, xp, hx[keep]), ctx.asarray(np.flatnonzero(keep).astype(index_dtype))]
