"""Segment reductions: Segment*, UnsortedSegment* and SparseSegment* (ragged reductions
lower to UnsortedSegment*).

The array API has no scatter-reduce, so the rows are combined on the host with numpy's
``ufunc.at`` (rows in index order, as TensorFlow's CPU kernels add them) and the result
is moved back to the backend. Empty segments hold TensorFlow's values: 0 for the sorted
ops (every reduction) and for sums and means, 1 for products, the dtype's lowest
(``-FLT_MAX``, not ``-inf``) and highest values for the unsorted max and min. Bad segment
ids and indices are SavedModelErrors worded like TensorFlow's InvalidArgument errors.
"""
from __future__ import annotations

import numpy as np

from ._numeric import fail, host_ints, op_kernel

_UFUNCS = {"Sum": np.add, "Prod": np.multiply, "Max": np.maximum, "Min": np.minimum,
           "Mean": np.add}


def _extreme(dtype: np.dtype, which: str):
    """The lowest ("Max": ``-FLT_MAX`` for float32, not ``-inf``) or highest ("Min") value
    of ``dtype``: what TensorFlow's unsorted max and min start from."""
    if dtype.kind == "f":
        info = np.finfo(dtype)
    elif dtype.kind == "V":  # bfloat16 and other ml_dtypes floats: imported only when met
        import ml_dtypes
        info = ml_dtypes.finfo(dtype)
    else:
        info = np.iinfo(dtype)
    return info.min if which == "Max" else info.max


def _neutral(dtype: np.dtype, reduction: str):
    """A value ``reduction`` leaves unchanged (the start of a sorted segment's reduction)."""
    if reduction == "Prod":
        return 1
    if reduction in ("Max", "Min"):
        if dtype.kind in "fV":
            return -np.inf if reduction == "Max" else np.inf
        return _extreme(dtype, reduction)
    return 0


def _nan_rows(out, ids, rows, reduction):
    """Max/min with NaNs as TensorFlow's CPU loop computes them: ``acc = x < acc ? acc : x``
    (max; min alike) keeps a NaN only until the next row replaces it, so a segment's result
    is the extreme of its rows after its last NaN, or NaN when its last row is NaN. Returns
    (rows to combine, segments whose last row is NaN); resets ``out`` where a NaN restarts."""
    n = ids.shape[0]
    flat = rows.reshape(n, -1)
    positions = np.broadcast_to(np.arange(n)[:, None], flat.shape)
    last_nan = np.full((out.shape[0], flat.shape[1]), -1, np.int64)
    np.maximum.at(last_nan, ids, np.where(np.isnan(flat), positions, -1))
    last_row = np.full(out.shape[0], -1, np.int64)
    np.maximum.at(last_row, ids, np.arange(n))
    out.reshape(last_nan.shape)[last_nan >= 0] = _neutral(out.dtype, reduction)
    kept = np.where(positions > last_nan[ids], flat, _neutral(out.dtype, reduction))
    ends_in_nan = (last_nan == last_row[:, None]) & (last_nan >= 0)
    return kept.reshape(rows.shape), ends_in_nan.reshape(out.shape)


def segment_reduce(data: np.ndarray, ids: np.ndarray, num_segments: int, reduction: str,
                   unsorted: bool, compute=None) -> np.ndarray:
    """``out[s] = reduce(data[i] for i with ids[i] == s)`` over host arrays, rows in index
    order; ``ids`` are int64 in [0, num_segments) (rows with a negative id are left out
    beforehand). Empty segments hold 0 (sorted ops, sums, means), 1 (products) or the
    dtype's lowest/highest value (unsorted max/min), as TensorFlow gives them. Rows are
    combined in ``compute`` (default: data's dtype; half floats too, as TensorFlow's segment
    kernels add them) and the result is of that dtype."""
    dtype = data.dtype
    inner = data.shape[1:]
    compute = dtype if compute is None else np.dtype(compute)
    extreme = reduction in ("Max", "Min")
    start = _extreme(dtype, reduction) if unsorted and extreme else _neutral(compute, reduction)
    out = np.full((num_segments,) + inner, start, compute)
    rows = data.astype(compute, copy=False)
    ending_in_nan = None
    if extreme and compute.kind in "fV" and ids.size and np.isnan(rows).any():
        rows, ending_in_nan = _nan_rows(out, ids, rows, reduction)
    if ids.size:
        _UFUNCS[reduction].at(out, ids, rows)
    if ending_in_nan is not None:
        out[ending_in_nan] = np.nan
    if extreme and not unsorted:
        out[np.bincount(ids, minlength=num_segments) == 0] = 0
    if reduction == "Mean":  # SegmentMean divides (the sparse ops multiply: _sparse_scale)
        counts = _segment_counts(ids, num_segments, len(inner))
        if compute.kind in "iu":  # C++ integer division truncates toward zero
            out = (np.sign(out) * (np.abs(out) // counts)).astype(compute)
        else:
            out = out / counts.astype(compute)
    return out


def _segment_counts(ids, num_segments: int, inner_rank: int) -> np.ndarray:
    """Rows per segment (1 for empty ones), shaped to broadcast against the output."""
    counts = np.maximum(np.bincount(ids, minlength=num_segments), 1)
    return counts.reshape((num_segments,) + (1,) * inner_rank)


def _sparse_scale(sums: np.ndarray, ids, reduction: str) -> np.ndarray:
    """SparseSegmentMean/SqrtN: the sums times 1/n or 1/sqrt(n), a reciprocal computed in
    the sums' precision (TensorFlow multiplies; dividing differs in the last bit)."""
    if reduction == "Sum":
        return sums
    base = _segment_counts(ids, sums.shape[0], sums.ndim - 1).astype(sums.dtype)
    return sums * (np.asarray(1, sums.dtype) / (np.sqrt(base) if reduction == "SqrtN" else base))


def _host(ctx, x) -> np.ndarray:
    return np.asarray(ctx.to_numpy(x))


def _check_sorted(op, ids: np.ndarray, limit: int | None):
    """TensorFlow's checks of sorted segment ids: non-negative, non-decreasing, below
    ``limit`` when the op takes num_segments."""
    if not ids.size:
        return
    if ids[0] < 0:
        bound = f"[0, {limit})" if limit is not None else "[0, ...)"
        fail(op, f"segment id {int(ids[0])} is out of range {bound}; segment_ids must be "
                 "sorted non-negative ids.")
    steps = np.flatnonzero(np.diff(ids) < 0)
    if steps.size:
        i = int(steps[0]) + 1
        fail(op, f"segment ids are not increasing: segment_ids[{i}] = {int(ids[i])} follows "
                 f"{int(ids[i - 1])}.")
    if limit is not None and ids[-1] >= limit:
        fail(op, f"segment ids must be < num_segments: segment id {int(ids[-1])} is not in "
                 f"[0, {limit}).")


def _num_segments(ctx, op, value) -> int:
    (count,) = host_ints(ctx, value)
    if count < 0:
        fail(op, f"num_segments must be non-negative, got {count}.")
    return count


def sorted_segment(ctx, op, inputs, reduction):
    """Segment{Sum,Mean,Max,Min,Prod}: ``segment_ids`` sorted, one per row of ``data``."""
    data, ids = _host(ctx, inputs[0]), _host(ctx, inputs[1]).astype(np.int64)
    if data.ndim < 1:
        fail(op, f"data must be at least rank 1, got shape {data.shape}.")
    if ids.ndim != 1 or ids.shape[0] != data.shape[0]:
        fail(op, f"segment_ids should be a vector the size of data's dimension 0 "
                 f"({data.shape[0]}), got shape {ids.shape}.")
    _check_sorted(op, ids, None)
    rows = int(ids[-1]) + 1 if ids.size else 0
    ctx.check_alloc((rows,) + data.shape[1:], data.dtype, op)
    return [segment_reduce(data, ids, rows, reduction, unsorted=False)]


def unsorted_segment(ctx, op, inputs, reduction):
    """UnsortedSegment{Sum,Max,Min,Prod}: ids of any order and shape (a prefix of
    data's), rows with a negative id dropped."""
    data, ids = _host(ctx, inputs[0]), _host(ctx, inputs[1]).astype(np.int64)
    rows = _num_segments(ctx, op, inputs[2])
    if data.shape[:ids.ndim] != ids.shape:
        fail(op, f"data.shape = {list(data.shape)} does not start with segment_ids.shape = "
                 f"{list(ids.shape)}.")
    inner = data.shape[ids.ndim:]
    flat_ids = ids.reshape(-1)
    bad = np.flatnonzero(flat_ids >= rows)
    if bad.size:
        i = int(bad[0])
        fail(op, f"segment_ids[{i}] = {int(flat_ids[i])} is out of range [0, {rows}).")
    keep = flat_ids >= 0  # TensorFlow drops rows with a negative id
    flat = data.reshape((flat_ids.shape[0],) + inner)
    ctx.check_alloc((rows,) + inner, data.dtype, op)
    if not keep.all():
        flat, flat_ids = flat[keep], flat_ids[keep]
    return [segment_reduce(flat, flat_ids, rows, reduction, unsorted=True)]


def sparse_segment(ctx, op, inputs, reduction, with_num_segments):
    """SparseSegment{Sum,Mean,SqrtN}[WithNumSegments]: rows ``data[indices]``, sorted ids."""
    data = _host(ctx, inputs[0])
    indices = _host(ctx, inputs[1]).astype(np.int64)
    ids = _host(ctx, inputs[2]).astype(np.int64)
    limit = _num_segments(ctx, op, inputs[3]) if with_num_segments else None
    if data.ndim < 1:
        fail(op, f"data must be at least rank 1, got shape {data.shape}.")
    if indices.ndim != 1 or ids.ndim != 1:
        fail(op, f"indices and segment_ids should be vectors, got shapes {indices.shape} "
                 f"and {ids.shape}.")
    if indices.shape != ids.shape:
        fail(op, f"segment_ids and indices should have same size, got {ids.shape[0]} and "
                 f"{indices.shape[0]}.")
    bad = np.flatnonzero((indices < 0) | (indices >= data.shape[0]))
    if bad.size:
        i = int(bad[0])
        fail(op, f"indices[{i}] == {int(indices[i])} is out of range [0, {data.shape[0]}).")
    _check_sorted(op, ids, limit)
    rows = limit if limit is not None else (int(ids[-1]) + 1 if ids.size else 0)
    ctx.check_alloc((max(rows, indices.shape[0]),) + data.shape[1:], data.dtype, op)
    half = data.dtype.kind in "fV" and data.dtype.itemsize < 4  # summed in float32 there
    sums = segment_reduce(data[indices], ids, rows, "Sum", unsorted=False,
                          compute=np.float32 if half else None)
    return [_sparse_scale(sums, ids, reduction).astype(data.dtype, copy=False)]


def _register(op, compute, *args):
    op_kernel(op)(lambda ctx, inputs, attrs: compute(ctx, op, inputs, *args))


for _reduction in ("Sum", "Mean", "Max", "Min", "Prod"):
    _register(f"Segment{_reduction}", sorted_segment, _reduction)
for _reduction in ("Sum", "Max", "Min", "Prod"):
    _register(f"UnsortedSegment{_reduction}", unsorted_segment, _reduction)
for _reduction in ("Sum", "Mean", "SqrtN"):
    _register(f"SparseSegment{_reduction}", sparse_segment, _reduction, False)
    _register(f"SparseSegment{_reduction}WithNumSegments", sparse_segment, _reduction, True)

