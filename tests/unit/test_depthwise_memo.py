"""A depthwise or 1x1 conv node remembers what it made from a filter only for the very filter array it saw."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np

import sm_notebook.engine.ops  # noqa: F401
from sm_notebook.engine.context import KernelContext
from sm_notebook.engine.ops import registry


def test_new_filter_values_are_not_served_from_the_memo():
    ctx = KernelContext("numpy", optimize=True)
    node = SimpleNamespace(name="dw", op="DepthwiseConv2dNative", function=None,
                           attrs={"strides": [1, 1, 1, 1], "padding": "SAME", "data_format": "NHWC"})
    run = registry.get_kernel("DepthwiseConv2dNative").prepare(node, ctx)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 5, 5, 3)).astype(np.float32)
    w1 = rng.standard_normal((3, 3, 3, 1)).astype(np.float32)
    first = run([x, w1])[0]
    assert np.array_equal(run([x, w1])[0], first)              # served from the memo
    second = run([x, w1 * 2])[0]                               # another array: recomputed
    np.testing.assert_allclose(second, 2 * first, rtol=1e-6, atol=1e-6)


def test_a_pointwise_conv_follows_its_filter_array_and_changes_made_in_place():
    """The 1x1 Conv2D path keeps a view of the last filter it saw: another array, or the same
    one changed in place, gives the new result (equal to the general path's, same BLAS call)."""
    attrs = {"strides": [1, 1, 1, 1], "padding": "VALID", "data_format": "NHWC"}
    run = registry.get_kernel("Conv2D").prepare(
        SimpleNamespace(name="pw", op="Conv2D", function=None, attrs=attrs), KernelContext("numpy", optimize=True))
    general = registry.get_kernel("Conv2D").prepare(
        SimpleNamespace(name="pw", op="Conv2D", function=None, attrs=attrs), KernelContext("numpy", optimize=False))
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 4, 3, 5)).astype(np.float32)
    x.flags.writeable = False
    w = rng.standard_normal((1, 1, 5, 6)).astype(np.float32)
    def close(image, filters):  # both within the 5-term dot product bound of the float64 result
        exact = image.astype(np.float64) @ filters[0, 0].astype(np.float64)
        bound = 6 * np.finfo(np.float32).eps * (np.abs(image.astype(np.float64)) @ np.abs(filters[0, 0].astype(np.float64)))
        for got in (run([image, filters])[0], general([image, filters])[0]):
            assert got.shape == exact.shape and np.all(np.abs(got - exact) <= bound)
    for filters in (w, w, w * 2, w[:, :, :, ::2], np.zeros((1, 1, 5, 0), np.float32)):
        close(x, filters)
    first = run([x, w])[0]
    w *= -1                                                    # same array, new values
    np.testing.assert_array_equal(run([x, w])[0], -first)
    for image in (x[:, :, ::-1], x[:0], x[:, :1, :1]):         # not contiguous, empty, one pixel
        close(image, w)
