"""A depthwise node remembers its tiled filters only for the very filter array it saw."""
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
