"""UniqueV2, UniqueWithCountsV2, ListDiff and CumulativeLogsumexp against tf.raw_ops."""
from __future__ import annotations

import numpy as np
import pytest

from harness import BACKENDS
from raw_oracle import conform

I32, I64 = np.int32, np.int64


@pytest.fixture(params=BACKENDS)
def backend(request):
    return request.param


CASES = [
    (np.int32([[1, 2], [3, 4], [1, 2]]), [0]), (np.int32([[1, 2], [3, 4], [1, 2]]), [1]),
    (np.int32([[1, 2], [3, 4], [1, 2]]), [-1]), (np.int32([[1, 2], [3, 4]]), []),
    (np.int64([3, 1, 3, 3]), []), (np.int64([3, 1, 3, 3]), [0]), (np.int32([[1]]), [0, 1]),
    (np.int32([[1]]), [2]), (np.zeros((0, 2), np.float32), [0]),
    (np.zeros((2, 0), np.float32), [0]), (np.float32([[0.0], [-0.0], [np.nan], [np.nan]]), [0]),
    (np.float32([0.0, -0.0, np.nan, 1.0, np.nan]), []), (np.float32(1), []),
    (np.array([[b"a"], [b"b"], [b"a"]], object), [0]), (np.array([b"x", b"", b"x"], object), []),
    (np.arange(24, dtype=np.float64).reshape(2, 3, 4) % 3, [2]),
]


@pytest.mark.parametrize("x,axis", CASES)
@pytest.mark.parametrize("out_idx", [I32, I64])
def test_unique_v2(backend, x, axis, out_idx):
    for axis_dtype in (I32, I64):
        named = {"x": x, "axis": np.asarray(axis, axis_dtype)}
        conform("UniqueV2", named, {"out_idx": out_idx}, backend=backend)
        conform("UniqueWithCountsV2", named, {"out_idx": out_idx}, backend=backend)


@pytest.mark.parametrize("x,y", [
    ([1, 2, 3, 2, 5], [2, 7]), ([], [1]), ([1, 1], []), ([4], [4]), ([[1, 2]], [2]),
])
@pytest.mark.parametrize("dtype", [I32, np.float32, object], ids=str)
def test_list_diff(backend, x, y, dtype):
    def cast(v):
        v = np.asarray(v)
        if dtype is object:
            return np.asarray([str(e).encode() for e in v.reshape(-1)], object).reshape(v.shape)
        return v.astype(dtype)
    for out_idx in (I32, I64):
        conform("ListDiff", {"x": cast(x), "y": cast(y)}, {"out_idx": out_idx}, backend=backend)


def test_list_diff_nan_and_signed_zero(backend):
    conform("ListDiff", {"x": np.float32([np.nan, -0.0, 1.0]), "y": np.float32([np.nan, 0.0])},
            backend=backend)


@pytest.mark.parametrize("x", [
    np.float32([-1000, 0, 1, -np.inf]), np.float32([np.inf, 0, np.nan, 1]),
    np.float32([np.inf, np.inf, -np.inf]), np.float32([-np.inf, -np.inf, 2]),
    np.float32([np.nan, 1, 2]),
    np.random.default_rng(1).standard_normal((3, 4)).astype(np.float64) * 30,
    np.random.default_rng(2).standard_normal((2, 0, 3)).astype(np.float32),
    np.random.default_rng(3).standard_normal((1, 5)).astype(np.float16),
])
@pytest.mark.parametrize("exclusive", [False, True])
@pytest.mark.parametrize("reverse", [False, True])
def test_cumulative_logsumexp(backend, x, exclusive, reverse):
    for axis in range(-x.ndim, x.ndim):
        conform("CumulativeLogsumexp", {"x": x, "axis": np.int32(axis)},
                {"exclusive": exclusive, "reverse": reverse}, backend=backend)
