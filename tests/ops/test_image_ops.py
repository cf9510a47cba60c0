"""Resize kernels against TensorFlow: every size direction and coordinate convention."""
from __future__ import annotations

import numpy as np
import pytest

from harness import BACKENDS
from tf_call import BFLOAT16, compare, compare_error, random, tf_supports

# Cases we do not run, with the reason (also listed in tests/ops/EXCLUSIONS.md). None:
# every dtype TensorFlow's CPU kernels take is checked.
EXCLUDED: dict = {}

IN_SHAPES = [(1, 4, 5, 2), (2, 3, 3, 1), (1, 1, 1, 3), (1, 7, 2, 1)]
OUT_SIZES = [(8, 10), (2, 3), (3, 7), (1, 1), (5, 5), (13, 4)]
CONVENTIONS = [(False, False), (True, False), (False, True)]  # (align_corners, half_pixel_centers)
DTYPES = [np.float32, np.float64, np.uint8, np.int32, np.float16, BFLOAT16, np.int8]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("conventions", CONVENTIONS, ids=["legacy", "align_corners", "half_pixel"])
@pytest.mark.parametrize("op", ["ResizeBilinear", "ResizeNearestNeighbor", "ResizeBicubic"])
def test_resize(op, conventions, backend):
    align_corners, half_pixel_centers = conventions
    rng = np.random.default_rng(40)
    attrs = {"align_corners": align_corners, "half_pixel_centers": half_pixel_centers}
    for dtype in DTYPES:
        probe = [np.zeros((1, 1, 1, 1), dtype), np.array([1, 1], np.int32)]
        if not tf_supports(op, probe, attrs):
            continue  # a dtype TensorFlow's CPU kernel does not take
        for shape in IN_SHAPES:
            images = random(rng, shape, dtype, 0, 10)
            for size in OUT_SIZES:
                compare(op, [images, np.array(size, np.int32)], attrs, backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("align_corners", [False, True])
def test_resize_area(align_corners, backend):
    rng = np.random.default_rng(41)
    for dtype in DTYPES:
        if not tf_supports("ResizeArea", [np.zeros((1, 1, 1, 1), dtype), np.array([1, 1], np.int32)]):
            continue
        for shape in IN_SHAPES:
            images = random(rng, shape, dtype, 0, 10)
            for size in OUT_SIZES:
                compare("ResizeArea", [images, np.array(size, np.int32)],
                        {"align_corners": align_corners}, backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("op", ["ResizeBilinear", "ResizeNearestNeighbor", "ResizeBicubic"])
def test_resize_refuses_bad_requests(op, backend):
    images = np.ones((1, 2, 2, 1), np.float32)
    compare_error(op, [images, np.array([2, 2], np.int32)],
                  {"align_corners": True, "half_pixel_centers": True}, backend=backend)
    compare_error(op, [images, np.array([0, 2], np.int32)], backend=backend)


def test_resize_respects_the_memory_cap():
    from harness import run_kernel
    from sm_notebook.errors import SavedModelError

    for op in ("ResizeBilinear", "ResizeNearestNeighbor", "ResizeBicubic", "ResizeArea"):
        with pytest.raises(SavedModelError, match="memory cap"):
            run_kernel(op, [np.ones((1, 2, 2, 1), np.float32), np.array([100000, 100000], np.int32)],
                       memory_cap=2**20)
