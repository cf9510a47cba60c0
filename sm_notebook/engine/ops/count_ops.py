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


# --- counts as SparseTensors (tf.sparse.bincount, Keras CategoryEncoding(sparse=True)) -----


def _sparse_counts(ctx, rows, values, nrows, weights_t, attrs, op):
    """The (indices, values, dense_shape) SparseTensor of per-row value counts, each row's
    values in increasing order; ``rows`` None for a 1-D input (no row dimension)."""
    _non_negative(values, op)
    weights_host = ctx.to_numpy(weights_t)
    dtype = np.dtype(weights_host.dtype)
    weights = None
    if weights_host.size:
        if weights_host.size != values.size:
            raise SavedModelError(f"{op}: weights and data must have the same shape, got "
                                  f"{weights_host.shape} and {values.shape}.")
        weights = weights_host.reshape(-1)
    minlength, maxlength = int(attrs.get("minlength", -1)), int(attrs.get("maxlength", -1))
    one_row = rows is None
    rows = np.zeros(values.size, np.int64) if one_row else rows
    keep = values < maxlength if maxlength >= 0 else np.ones(values.size, bool)
    rows, values = rows[keep], values[keep]
    seen = int(values.max()) if values.size else 0
    size = maxlength if maxlength >= 0 else max(seen + 1, minlength)
    keys, inverse = np.unique(rows * (seen + 1) + values, return_inverse=True)
    ctx.check_alloc((keys.size, 2), np.int64, op)
    if attrs.get("binary_output", False):
        sums = np.ones(keys.size, dtype)
    else:
        sums = np.zeros(keys.size, dtype)
        np.add.at(sums, inverse.reshape(-1),
                  dtype.type(1) if weights is None else weights[keep].astype(dtype, copy=False))
    key_rows, key_values = keys // (seen + 1), keys % (seen + 1)
    if one_row:
        indices, shape = key_values.reshape(-1, 1), [size]
    else:
        indices, shape = np.stack([key_rows, key_values], axis=1), [nrows, size]
    return [ctx.asarray(indices.astype(np.int64).reshape(-1, len(shape))), ctx.asarray(sums),
            ctx.asarray(np.asarray(shape, np.int64))]


@kernel("DenseCountSparseOutput")
def dense_count_sparse_output(ctx, inputs, attrs):
    op = "DenseCountSparseOutput"
    values = ctx.to_numpy(inputs[0])
    if values.ndim not in (1, 2):
        raise SavedModelError(f"{op}: input must be a 1 or 2-dimensional tensor, got shape "
                              f"{values.shape}.")
    weights = ctx.to_numpy(inputs[1])
    if weights.size and weights.shape != values.shape:
        raise SavedModelError(f"{op}: weights and data must have the same shape, got "
                              f"{weights.shape} and {values.shape}.")
    rows = None if values.ndim == 1 else np.repeat(np.arange(values.shape[0]), values.shape[1])
    return _sparse_counts(ctx, rows, values.reshape(-1).astype(np.int64),
                          values.shape[0] if values.ndim == 2 else 1, inputs[1], attrs, op)


@kernel("SparseCountSparseOutput")
def sparse_count_sparse_output(ctx, inputs, attrs):
    op = "SparseCountSparseOutput"
    indices, values = ctx.to_numpy(inputs[0]).astype(np.int64), ctx.to_numpy(inputs[1])
    shape = ctx.to_numpy(inputs[2]).astype(np.int64).reshape(-1)
    if indices.ndim != 2 or values.ndim != 1 or indices.shape[0] != values.shape[0] \
            or indices.shape[1] != shape.size or shape.size not in (1, 2):
        raise SavedModelError(f"{op}: expected [N, rank] indices, [N] values and a rank 1 or 2 "
                              f"dense_shape, got shapes {indices.shape}, {values.shape} and "
                              f"{shape.tolist()}.")
    bad = np.flatnonzero(np.any((indices < 0) | (indices >= shape), axis=1))
    if bad.size:
        raise SavedModelError(f"{op}: invalid index value at {int(bad[0])}: "
                              f"{indices[bad[0]].tolist()} is not within the dense shape "
                              f"{shape.tolist()}.")
    rows = indices[:, 0] if shape.size == 2 else None
    return _sparse_counts(ctx, rows, values.astype(np.int64),
                          int(shape[0]) if shape.size == 2 else 1, inputs[3], attrs, op)


@kernel("RaggedCountSparseOutput")
def ragged_count_sparse_output(ctx, inputs, attrs):
    op = "RaggedCountSparseOutput"
    splits, values = ctx.to_numpy(inputs[0]).astype(np.int64), ctx.to_numpy(inputs[1])
    if splits.size < 2:
        raise SavedModelError(f"{op}: must provide at least 2 elements for the splits argument, "
                              f"got {splits.size}.")
    rows = row_ids(splits, values.size, op)
    return _sparse_counts(ctx, rows, values.reshape(-1).astype(np.int64), splits.size - 1,
                          inputs[2], attrs, op)
