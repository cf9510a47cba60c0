"""Counting kernels (Bincount family, Bucketize) against tf.raw_ops, refusals included."""
from __future__ import annotations

import numpy as np
import pytest

from harness import BACKENDS
from raw_oracle import conform

I32, I64, F32, F64 = np.int32, np.int64, np.float32, np.float64
EMPTY = {dtype: np.zeros(0, dtype) for dtype in (I32, I64, F32, F64)}


@pytest.fixture(params=BACKENDS)
def backend(request):
    return request.param


@pytest.mark.parametrize("arr,size", [
    ([1, 5, 2, 1, 0], 3), ([[1, 2], [2, 2]], 4), ([], 3), ([3], 1), ([2, 2], 0), ([1, -1], 3),
])
@pytest.mark.parametrize("weight_dtype", [I32, F32, F64, I64])
@pytest.mark.parametrize("weighted", [False, True])
def test_bincount(backend, arr, size, weight_dtype, weighted):
    arr = np.asarray(arr, I32)
    weights = (np.arange(arr.size, dtype=weight_dtype).reshape(arr.shape) + 1) if weighted \
        else EMPTY[weight_dtype]
    conform("Bincount", {"arr": arr, "size": np.int32(size), "weights": weights}, backend=backend)


@pytest.mark.parametrize("values,size", [
    ([1, 5, 2, 1, 0], 3), ([[1, 5], [2, 1], [0, 0]], 3), ([[3]], 4), (np.zeros((0, 2)), 2),
    (np.zeros((2, 0)), 2), ([], 1), ([1, -1], 3), ([1], -1), (np.zeros((1, 1, 1)), 2), (4, 5),
])
@pytest.mark.parametrize("index_dtype", [I32, I64])
@pytest.mark.parametrize("weighted,binary", [(False, False), (True, False), (False, True),
                                             (True, True)])
def test_dense_bincount(backend, values, size, index_dtype, weighted, binary):
    values = np.asarray(values, index_dtype)
    for weight_dtype in (F32, I64):
        weights = (np.arange(values.size, dtype=weight_dtype).reshape(values.shape) + 2) \
            if weighted else EMPTY[weight_dtype]
        conform("DenseBincount", {"input": values, "size": index_dtype(size), "weights": weights},
                {"binary_output": binary}, backend=backend)


def test_dense_bincount_refuses_mismatched_weights(backend):
    conform("DenseBincount", {"input": np.asarray([1, 2], I32), "size": I32(3),
                              "weights": np.ones(3, F32)}, backend=backend)


@pytest.mark.parametrize("indices,values,shape", [
    ([[0], [3]], [1, 2], [5]),
    ([[0, 0], [2, 3], [2, 4]], [1, 2, 2], [4, 5]),
    ([[0, 0], [2, 3], [2, 4]], [1, -2, 7], [4, 5]),     # out-of-range values are dropped
    (np.zeros((0, 2)), [], [3, 2]),
    ([[0, 0]], [0], [1, 1]),
])
@pytest.mark.parametrize("weighted,binary", [(False, False), (True, False), (True, True)])
def test_sparse_bincount(backend, indices, values, shape, weighted, binary):
    values = np.asarray(values, I64)
    weights = np.arange(values.size, dtype=F32) + 1 if weighted else EMPTY[F32]
    conform("SparseBincount", {"indices": np.asarray(indices, I64).reshape(-1, len(shape)),
                               "values": values, "dense_shape": np.asarray(shape, I64),
                               "size": I64(3), "weights": weights},
            {"binary_output": binary}, backend=backend)


@pytest.mark.parametrize("splits,values", [
    ([0, 2, 2, 5], [1, 2, 2, 0, 4]), ([0], []), ([0, 1], [0]), ([], []),
    ([0, 2, 2, 5], [1, -2, 2, 0, 4]), ([0, 3, 2], [1, 1, 1]), ([1, 3], [1, 1]),
])
@pytest.mark.parametrize("weighted,binary", [(False, False), (True, False), (False, True)])
def test_ragged_bincount(backend, splits, values, weighted, binary):
    values = np.asarray(values, I32)
    weights = np.arange(values.size, dtype=F64) * 0.5 + 1 if weighted else EMPTY[F64]
    conform("RaggedBincount", {"splits": np.asarray(splits, I64), "values": values,
                               "size": I32(3), "weights": weights},
            {"binary_output": binary}, backend=backend)


@pytest.mark.parametrize("dtype", [F32, F64, I32, I64])
@pytest.mark.parametrize("boundaries", [[0.0, 1.0], [], [-2.5, 0.0, 0.0, 3.0], [1.0, 0.0]])
@pytest.mark.parametrize("shape", [(), (0,), (1,), (2, 3)])
def test_bucketize(backend, dtype, boundaries, shape):
    rng = np.random.default_rng(len(boundaries) + len(shape))
    x = (rng.standard_normal(shape) * 3).astype(dtype)
    if dtype in (F32, F64) and x.size:
        x.reshape(-1)[0] = 0.0  # exactly on a boundary
        x.reshape(-1)[-1] = np.nan
    conform("Bucketize", {"input": x}, {"boundaries": boundaries}, backend=backend)


def test_bucketize_compares_integers_as_float32(backend):
    x = np.asarray([16777217, 16777216, 16777215, 2**40 + 1], I64)
    conform("Bucketize", {"input": x}, {"boundaries": [16777217.0, 2.0**40]}, backend=backend)


COUNT_LIMITS = [(-1, -1), (-1, 6), (-1, 3), (8, 6), (8, -1), (0, -1), (-1, 0)]


@pytest.mark.parametrize("values", [[3, 1, 3, 0], [[3, 1, 3], [0, 0, 5]], [[1, 1, 2]],
                                    np.zeros((2, 0)), [], [[3, -1]], np.zeros((1, 1, 1)), [7]])
@pytest.mark.parametrize("minlength,maxlength", COUNT_LIMITS)
@pytest.mark.parametrize("weighted,binary", [(False, False), (True, False), (False, True)])
def test_dense_count_sparse_output(backend, values, minlength, maxlength, weighted, binary):
    values = np.asarray(values, I64)
    for index_dtype, weight_dtype in ((I64, F32), (I32, I64)):
        weights = np.arange(values.size, dtype=weight_dtype).reshape(values.shape) + 1 \
            if weighted else EMPTY[weight_dtype]
        conform("DenseCountSparseOutput", {"values": values.astype(index_dtype),
                                           "weights": weights},
                {"binary_output": binary, "minlength": minlength, "maxlength": maxlength},
                backend=backend)


@pytest.mark.parametrize("indices,values,shape", [
    ([[0, 0], [2, 1], [2, 3]], [3, 1, 1], [4, 5]), ([[0], [3]], [3, 1], [5]),
    (np.zeros((0, 2)), [], [3, 2]), ([[0, 0], [5, 1]], [3, 1], [4, 5]),
    ([[0, 0], [2, 1]], [3, -1], [4, 5]),
])
@pytest.mark.parametrize("minlength,maxlength", COUNT_LIMITS[:4])
@pytest.mark.parametrize("weighted", [False, True])
def test_sparse_count_sparse_output(backend, indices, values, shape, minlength, maxlength,
                                    weighted):
    values = np.asarray(values, I64)
    weights = np.arange(values.size, dtype=F64) + 0.5 if weighted else EMPTY[F64]
    conform("SparseCountSparseOutput", {"indices": np.asarray(indices, I64).reshape(-1, len(shape)),
                                        "values": values, "dense_shape": np.asarray(shape, I64),
                                        "weights": weights},
            {"binary_output": False, "minlength": minlength, "maxlength": maxlength},
            backend=backend)


@pytest.mark.parametrize("splits,values", [([0, 2, 2, 3], [3, 1, 1]), ([0], []), ([0, 2], [3, -1]),
                                           ([1, 2], [3, 1]), ([0, 1], [0])])
@pytest.mark.parametrize("minlength,maxlength", COUNT_LIMITS[:4])
@pytest.mark.parametrize("binary", [False, True])
def test_ragged_count_sparse_output(backend, splits, values, minlength, maxlength, binary):
    conform("RaggedCountSparseOutput", {"splits": np.asarray(splits, I64),
                                        "values": np.asarray(values, I32),
                                        "weights": EMPTY[F32]},
            {"binary_output": binary, "minlength": minlength, "maxlength": maxlength},
            backend=backend)
