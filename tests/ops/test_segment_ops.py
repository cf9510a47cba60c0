"""Segment reductions against tf.raw_ops: sorted, unsorted and sparse; empty segments,
empty data, size-1 dims, NaN rows, and every refusal TensorFlow makes."""
from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest

from harness import BACKENDS
from raw_oracle import conform

F32, F64, I32, I64 = (np.dtype(t) for t in (np.float32, np.float64, np.int32, np.int64))
SORTED = ("Sum", "Mean", "Max", "Min", "Prod")
UNSORTED = ("Sum", "Max", "Min", "Prod")
SPARSE = ("Sum", "Mean", "SqrtN")


@pytest.fixture(params=BACKENDS)
def backend(request):
    return request.param


def _data(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    if np.dtype(dtype).kind in "iu":
        return rng.integers(-9, 10, shape).astype(dtype)
    return rng.uniform(-3, 3, shape).astype(dtype)


SORTED_CASES = {  # name: (data shape, segment ids)
    "gaps": ((6, 2), [0, 0, 2, 2, 2, 5]),
    "starts-late": ((3,), [1, 1, 3]),
    "one-row": ((1, 1), [0]),
    "empty": ((0, 3), []),
    "size-1-inner": ((4, 1, 2), [0, 1, 1, 1]),
}


@pytest.mark.parametrize("reduction", SORTED)
@pytest.mark.parametrize("case", SORTED_CASES)
@pytest.mark.parametrize("dtype", [F32, I32])
def test_sorted_segment(reduction, case, dtype, backend):
    shape, ids = SORTED_CASES[case]
    conform(f"Segment{reduction}", {"data": _data(shape, dtype),
                                    "segment_ids": np.asarray(ids, I32)}, backend=backend)


UNSORTED_CASES = {  # name: (data shape, segment ids, num_segments)
    "shuffled": ((6, 2), [3, 0, 3, 1, 0, 3], 5),
    "negative-ids-dropped": ((4,), [-1, 2, -5, 2], 3),
    "2d-ids": ((2, 3, 2), [[0, 1, 1], [2, 0, -1]], 4),
    "no-segments": ((0, 2), [], 0),
    "empty-data-some-segments": ((0,), [], 3),
    "one": ((1,), [0], 1),
}


@pytest.mark.parametrize("reduction", UNSORTED)
@pytest.mark.parametrize("case", UNSORTED_CASES)
@pytest.mark.parametrize("dtype", [F32, I32])
def test_unsorted_segment(reduction, case, dtype, backend):
    shape, ids, n = UNSORTED_CASES[case]
    conform(f"UnsortedSegment{reduction}",
            {"data": _data(shape, dtype), "segment_ids": np.asarray(ids, I64).reshape(
                np.shape(ids) if ids else (0,)), "num_segments": np.int32(n)}, backend=backend)


@pytest.mark.parametrize("op", [f"Segment{r}" for r in SORTED] + [f"UnsortedSegment{r}" for r in UNSORTED])
@pytest.mark.parametrize("dtype", [F64, I64])
def test_wide_dtypes(op, dtype, backend):
    named = {"data": _data((5, 2), dtype), "segment_ids": np.asarray([0, 0, 1, 3, 3], I64)}
    if op.startswith("Unsorted"):
        named["num_segments"] = np.int64(5)
    conform(op, named, backend=backend)


SPARSE_CASES = {  # name: (data shape, indices, segment ids, num_segments or None)
    "repeats": ((5, 2), [4, 0, 0, 3], [0, 0, 2, 2], None),
    "with-num": ((3,), [2, 1, 0], [0, 1, 1], 4),
    "no-rows": ((3, 2), [], [], None),
    "no-rows-num": ((3, 2), [], [], 2),
    "one": ((1, 1), [0], [0], None),
}


@pytest.mark.parametrize("reduction", SPARSE)
@pytest.mark.parametrize("case", SPARSE_CASES)
@pytest.mark.parametrize("dtype", [F32, F64])
def test_sparse_segment(reduction, case, dtype, backend):
    shape, indices, ids, n = SPARSE_CASES[case]
    named = {"data": _data(shape, dtype), "indices": np.asarray(indices, I32),
             "segment_ids": np.asarray(ids, I64)}
    op = f"SparseSegment{reduction}"
    if n is not None:
        op += "WithNumSegments"
        named["num_segments"] = np.int64(n)
    conform(op, named, backend=backend)


def test_sparse_segment_sum_of_ints(backend):
    conform("SparseSegmentSum", {"data": _data((4, 2), I32), "indices": np.asarray([1, 3, 1], I64),
                                 "segment_ids": np.asarray([0, 1, 1], I32)}, backend=backend)


NAN_ROWS = [[1.0, np.nan, 4.0], [np.nan, 2.0, np.nan], [3.0, -np.inf, 5.0], [0.5, 7.0, np.nan]]


@pytest.mark.parametrize("reduction", ["Max", "Min"])
def test_nan_rows_follow_tensorflows_loop(reduction, backend):
    data = np.asarray(NAN_ROWS, F32)
    conform(f"Segment{reduction}", {"data": data, "segment_ids": np.asarray([0, 0, 0, 1], I32)},
            backend=backend)
    conform(f"UnsortedSegment{reduction}",
            {"data": data, "segment_ids": np.asarray([1, 1, 0, 1], I32),
             "num_segments": np.int32(3)}, backend=backend)


def test_all_minus_inf_segment(backend):
    data = np.asarray([-np.inf, -np.inf, 1.0], F32)
    for op, extra in (("SegmentMax", {}), ("UnsortedSegmentMax", {"num_segments": np.int32(2)})):
        conform(op, {"data": data, "segment_ids": np.asarray([0, 0, 1], I32), **extra},
                backend=backend)


REFUSED = {
    "not-increasing": ("SegmentSum", {"data": _data((3, 2), F32),
                                      "segment_ids": np.asarray([1, 0, 2], I32)}),
    "negative-sorted": ("SegmentMax", {"data": _data((3,), F32),
                                       "segment_ids": np.asarray([-1, 0, 2], I32)}),
    "ids-size": ("SegmentMean", {"data": _data((3,), F32), "segment_ids": np.asarray([0, 0], I32)}),
    "scalar-data": ("SegmentSum", {"data": np.float32(5), "segment_ids": np.asarray([0], I32)}),
    "unsorted-too-big": ("UnsortedSegmentSum", {"data": _data((3,), F32),
                                                "segment_ids": np.asarray([0, 5, 1], I32),
                                                "num_segments": np.int32(3)}),
    "unsorted-prefix": ("UnsortedSegmentProd", {"data": _data((3, 2), F32),
                                                "segment_ids": np.asarray([0, 0], I32),
                                                "num_segments": np.int32(3)}),
    "sparse-index": ("SparseSegmentSum", {"data": _data((3, 2), F32),
                                          "indices": np.asarray([0, 3], I32),
                                          "segment_ids": np.asarray([0, 0], I32)}),
    "sparse-negative-index": ("SparseSegmentMean", {"data": _data((3,), F32),
                                                    "indices": np.asarray([0, -1], I32),
                                                    "segment_ids": np.asarray([0, 0], I32)}),
    "sparse-not-increasing": ("SparseSegmentSqrtN", {"data": _data((3,), F32),
                                                     "indices": np.asarray([0, 1], I32),
                                                     "segment_ids": np.asarray([1, 0], I32)}),
    "sparse-over-num": ("SparseSegmentSumWithNumSegments", {
        "data": _data((3,), F32), "indices": np.asarray([0, 1], I32),
        "segment_ids": np.asarray([0, 3], I32), "num_segments": np.int32(2)}),
    "sparse-sizes": ("SparseSegmentSum", {"data": _data((3,), F32),
                                          "indices": np.asarray([0, 1], I32),
                                          "segment_ids": np.asarray([0, 0, 0], I32)}),
    "sparse-2d-indices": ("SparseSegmentSum", {"data": _data((1, 2), F32),
                                               "indices": np.asarray([[0]], I32),
                                               "segment_ids": np.asarray([0], I32)}),
}


@pytest.mark.parametrize("case", REFUSED)
def test_refusals_match_tensorflow(case, backend):
    op, named = REFUSED[case]
    error = conform(op, named, backend=backend)
    assert isinstance(error, Exception), f"TensorFlow accepted {case}"


HALF = [np.dtype(np.float16), np.dtype(ml_dtypes.bfloat16)]


@pytest.mark.parametrize("op", ["SegmentSum", "SegmentMean", "SegmentMax", "SegmentProd",
                                "UnsortedSegmentSum", "UnsortedSegmentMin", "UnsortedSegmentProd",
                                "SparseSegmentSum", "SparseSegmentMean", "SparseSegmentSqrtN"])
@pytest.mark.parametrize("dtype", HALF, ids=lambda d: d.name)
def test_half_floats_round_where_tensorflow_does(op, dtype, backend):
    """Long segments: the segment kernels add half floats in half precision, the sparse
    ones in float32; either way ours is bit-identical."""
    rng = np.random.default_rng(3)
    data = rng.uniform(-1.5, 1.5, (120, 2)).astype(dtype)
    ids = np.sort(rng.integers(0, 3, 120)).astype(I32)
    named = {"data": data}
    if op.startswith("Sparse"):
        named["indices"] = np.arange(120, dtype=I32)
    named["segment_ids"] = ids
    if op.startswith("Unsorted"):
        named["num_segments"] = np.int32(4)
    conform(op, named, backend=backend, tolerance=dict(rtol=0, atol=0))
