"""Counting kernels: Bincount and its dense, sparse and ragged forms, Bucketize.

The bin sums are computed on the host with numpy (``np.add.at`` adds each weight in input
order, as TensorFlow's CPU kernels do; the array API has no scatter-add) and the result
is moved to the backend, like the scatter kernels of gather_ops.
"""
from __future__ import annotations

import numpy as np

from ...errors import SavedModelError
from ._arrays import scalar
from .registry import kernel


def _size(ctx, t, op):
    size = scalar(ctx, t, op, "size")
    if size < 0:
        raise SavedModelError(f"{op}: size ({size}) must be non-negative.")
    return size


def _weights(ctx, weights_t, values, op):
    """The weights as a flat numpy array matching ``values``, or None (count each as 1)."""
    weights = ctx.to_numpy(weights_t)
    if weights.size == 0:
        return None
    if weights.shape != values.shape:
        raise SavedModelError(f"{op}: weights must have the shape of the values "
                              f"{values.shape} or be empty (all weights 1), got "
                              f"{weights.shape}.")
    return weights.reshape(-1)


def _non_negative(values, op):
    if values.size and values.min() < 0:
        raise SavedModelError(f"{op}: input values must be non-negative, got {values.min()}.")


def bin_counts(ctx, rows, values, nrows, size, weights, dtype, binary, op):
    """``[nrows, size]`` sums of ``weights`` (1 when None) of ``values`` in each row; values
    outside [0, size) are dropped. With ``binary`` a bin is 1 when anything fell in it."""
    ctx.check_alloc((nrows, size), dtype, op)
    out = np.zeros((nrows, size), dtype)
    keep = (values >= 0) & (values < size)
    rows, values = rows[keep], values[keep]
    if binary:
        out[rows, values] = 1
    elif weights is None:
        np.add.at(out, (rows, values), dtype.type(1))
    else:
        np.add.at(out, (rows, values), weights[keep].astype(dtype, copy=False))
    return out


def _dense_counts(ctx, values, size, weights_t, binary, op, max_rank=None):
    """Counts of a dense tensor: one row per leading index when ``max_rank`` is 2 and the
    input is a matrix, else one row (returned as a vector)."""
    if max_rank is not None and values.ndim > max_rank:
        raise SavedModelError(f"{op}: the input must be at most rank {max_rank}, got shape "
                              f"{values.shape}.")
    _non_negative(values, op)
    weights = _weights(ctx, weights_t, values, op)
    dtype = np.dtype(ctx.to_numpy(weights_t).dtype)
    flat = values.reshape(-1).astype(np.int64)
    if max_rank == 2 and values.ndim == 2:
        rows = np.repeat(np.arange(values.shape[0]), values.shape[1])
        return bin_counts(ctx, rows, flat, values.shape[0], size, weights, dtype, binary, op)
    return bin_counts(ctx, np.zeros(flat.size, np.int64), flat, 1, size, weights, dtype, binary,
                      op)[0]


@kernel("Bincount")
def bincount(ctx, inputs, attrs):
    out = _dense_counts(ctx, ctx.to_numpy(inputs[0]), _size(ctx, inputs[1], "Bincount"),
                        inputs[2], False, "Bincount")
    return [ctx.asarray(out)]


@kernel("DenseBincount")
def dense_bincount(ctx, inputs, attrs):
    op = "DenseBincount"
    out = _dense_counts(ctx, ctx.to_numpy(inputs[0]), _size(ctx, inputs[1], op), inputs[2],
                        bool(attrs.get("binary_output", False)), op, 2)
    return [ctx.asarray(out)]


@kernel("SparseBincount")
def sparse_bincount(ctx, inputs, attrs):
    op = "SparseBincount"
    indices, values = ctx.to_numpy(inputs[0]), ctx.to_numpy(inputs[1])
    shape = [int(d) for d in ctx.to_numpy(inputs[2]).reshape(-1)]
    size = _size(ctx, inputs[3], op)
    if indices.ndim != 2 or values.ndim != 1 or indices.shape[0] != values.shape[0]:
        raise SavedModelError(f"{op}: indices must be [N, rank] and values [N], got "
                              f"{indices.shape} and {values.shape}.")
    if len(shape) not in (1, 2) or indices.shape[1] != len(shape):
        raise SavedModelError(f"{op}: dense_shape {shape} must have rank 1 or 2, matching "
                              f"indices of shape {indices.shape}.")
    weights = _weights(ctx, inputs[4], values, op)
    dtype = np.dtype(ctx.to_numpy(inputs[4]).dtype)
    binary = bool(attrs.get("binary_output", False))
    values = values.astype(np.int64)
    if len(shape) == 1:
        return [ctx.asarray(bin_counts(ctx, np.zeros(values.size, np.int64), values, 1, size,
                                       weights, dtype, binary, op)[0])]
    rows = indices[:, 0].astype(np.int64)
    if rows.size and (rows.min() < 0 or rows.max() >= shape[0]):
        raise SavedModelError(f"{op}: row indices must lie in [0, {shape[0]}).")
    return [ctx.asarray(bin_counts(ctx, rows, values, shape[0], size, weights, dtype, binary,
                                   op))]


def row_ids(splits, num_values, op):
    """The row of each value of a ragged tensor with these row splits (checked)."""
    if splits.size == 0:
        raise SavedModelError(f"{op}: splits must be non-empty.")
    if splits[0] != 0 or splits[-1] != num_values or np.any(np.diff(splits) < 0):
        raise SavedModelError(f"{op}: splits {splits.tolist()} must start at 0, never decrease "
                              f"and end at the number of values {num_values}.")
    return np.repeat(np.arange(splits.size - 1), np.diff(splits))


@kernel("RaggedBincount")
def ragged_bincount(ctx, inputs, attrs):
    op = "RaggedBincount"
    splits, values = ctx.to_numpy(inputs[0]).astype(np.int64), ctx.to_numpy(inputs[1])
    size = _size(ctx, inputs[2], op)
    rows = row_ids(splits, values.size, op)
    _non_negative(values, op)
    weights = _weights(ctx, inputs[3], values, op)
    dtype = np.dtype(ctx.to_numpy(inputs[3]).dtype)
    return [ctx.asarray(bin_counts(ctx, rows, values.astype(np.int64), splits.size - 1, size,
                                   weights, dtype, bool(attrs.get("binary_output", False)), op))]


@kernel("Bucketize")
def bucketize(ctx, inputs, attrs):
    """The number of boundaries <= x (std::upper_bound); TensorFlow compares an integer
    input as float32, the boundaries' type, and a float64 one in float64."""
    x = inputs[0]
    xp = ctx.xp
    boundaries = np.asarray(attrs.get("boundaries", []), np.float32)
    if np.any(boundaries[1:] < boundaries[:-1]):
        raise SavedModelError(f"Bucketize: expected sorted boundaries, got {boundaries.tolist()}.")
    compare = np.float64 if x.dtype == xp.float64 else np.float32
    keys = xp.astype(x, getattr(xp, np.dtype(compare).name))
    if boundaries.size == 0 or x.ndim == 0:
        host = np.searchsorted(boundaries.astype(compare), ctx.to_numpy(keys), side="right")
        return [ctx.asarray(np.asarray(host, np.int32))]
    found = xp.searchsorted(ctx.asarray(boundaries.astype(compare)), xp.reshape(keys, (-1,)),
                            side="right")
    return [xp.reshape(xp.astype(found, xp.int32), tuple(x.shape))]
