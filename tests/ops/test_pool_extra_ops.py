"""MaxPoolWithArgmax against TensorFlow: values and the flat argmax, with and without the
batch in the index; ties (the first in row-major window order wins) and padding."""
from __future__ import annotations

import numpy as np
import pytest

from harness import BACKENDS
from tf_call import BFLOAT16, compare, compare_error, random, tf_supports

GEOMETRIES = [([1, 2, 2, 1], [1, 2, 2, 1]), ([1, 3, 3, 1], [1, 2, 2, 1]),
              ([1, 3, 2, 1], [1, 1, 3, 1]), ([1, 1, 1, 1], [1, 1, 1, 1])]
SHAPES = [(1, 5, 6, 2), (3, 4, 4, 1), (2, 1, 1, 3)]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("include_batch", [False, True])
@pytest.mark.parametrize("padding", ["VALID", "SAME"])
def test_max_pool_with_argmax(padding, include_batch, backend):
    rng = np.random.default_rng(50)
    for dtype in [np.float32, np.float64, np.float16, BFLOAT16, np.int32, np.uint8, np.int64]:
        probe = [np.zeros((1, 2, 2, 1), dtype)]
        attrs = {"ksize": [1, 2, 2, 1], "strides": [1, 1, 1, 1], "padding": padding,
                 "include_batch_in_index": include_batch}
        if not tf_supports("MaxPoolWithArgmax", probe, attrs):
            continue
        for shape in SHAPES:
            # few distinct values: many ties inside windows
            x = random(rng, shape, np.int32, -2, 2).astype(dtype)
            for ksize, strides in GEOMETRIES:
                for index_type in (np.int64, np.int32) if dtype == np.float32 else (np.int64,):
                    case = dict(attrs, ksize=ksize, strides=strides, Targmax=index_type)
                    negative = padding == "VALID" and any(  # C++ division truncates
                        n - k + st <= -st for n, k, st in zip(shape[1:3], ksize[1:3], strides[1:3]))
                    if negative:
                        compare_error("MaxPoolWithArgmax", [x], case, backend=backend)
                    else:
                        compare("MaxPoolWithArgmax", [x], case, backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_max_pool_with_argmax_special_values(backend):
    """NaN first in a window is kept; NaN later is not; -inf windows still point at an input."""
    x = np.array([np.nan, 1, 2, np.nan, -np.inf, -np.inf, -np.inf, -np.inf],
                 np.float32).reshape(1, 2, 4, 1)
    for padding in ("VALID", "SAME"):
        compare("MaxPoolWithArgmax", [x], {"ksize": [1, 2, 2, 1], "strides": [1, 1, 1, 1],
                                           "padding": padding}, backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_max_pool_with_argmax_refusals_and_empty_outputs(backend):
    x = np.ones((1, 2, 2, 1), np.float32)
    # a window one larger than the input: an empty output, not an error
    compare("MaxPoolWithArgmax", [x], {"ksize": [1, 3, 3, 1], "strides": [1, 1, 1, 1],
                                       "padding": "VALID"}, backend=backend)
    compare_error("MaxPoolWithArgmax", [x], {"ksize": [2, 1, 1, 1], "strides": [1, 1, 1, 1],
                                             "padding": "VALID"}, backend=backend)
    for empty in [(0, 4, 4, 2), (1, 4, 4, 0)]:  # TensorFlow refuses an empty input
        compare_error("MaxPoolWithArgmax", [np.ones(empty, np.float32)],
                      {"ksize": [1, 2, 2, 1], "strides": [1, 1, 1, 1], "padding": "SAME"},
                      backend=backend)
