"""The engine's convolution fast paths against TensorFlow's float64 Conv2D on shapes that
take them with their real channel threshold (Winograd F(2x2, 3x3): 3x3 stride-1 float32
filters with wide channels; the tile threshold is lifted so that edge shapes, one pixel or
no image, take the path too), within the rounding bound derived for each path."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import winograd_magnitude

tf = pytest.importorskip("tensorflow")

from sm_notebook.engine.context import KernelContext  # noqa: E402
from sm_notebook.engine.ops import _winograd, registry  # noqa: E402
from sm_notebook.engine.ops.nn_ops import window_geometry  # noqa: E402

CASES = [  # (input NHWC, output channels, padding, explicit pads)
    ((1, 7, 7, 64), 64, "SAME", None),
    ((3, 9, 6, 48), 80, "SAME", None),
    ((1, 14, 13, 96), 64, "VALID", None),
    ((2, 5, 8, 64), 48, "EXPLICIT", [(2, 0), (1, 2)]),
    ((1, 1, 1, 64), 64, "SAME", None),
    ((1, 3, 3, 128), 64, "VALID", None),
    ((0, 6, 6, 64), 64, "SAME", None),
]


@pytest.mark.parametrize("x_shape, out_channels, padding, explicit", CASES)
def test_winograd_conv_matches_tensorflow_float64(x_shape, out_channels, padding, explicit,
                                                  monkeypatch):
    monkeypatch.setattr(_winograd, "MIN_TILES", 0)
    rng = np.random.default_rng(sum(x_shape) + out_channels)
    x = rng.standard_normal(x_shape).astype(np.float32)
    w = rng.standard_normal((3, 3, x_shape[-1], out_channels)).astype(np.float32)
    x.flags.writeable = w.flags.writeable = False
    attrs = {"strides": [1, 1, 1, 1], "padding": padding, "data_format": "NHWC"}
    if explicit:
        attrs["explicit_paddings"] = [0, 0, *explicit[0], *explicit[1], 0, 0]
    outs, pads = window_geometry("Conv2D", x_shape[1:3], [3, 3], [1, 1], [1, 1], padding, explicit)
    assert _winograd.applies(w, [1, 1], [1, 1], x, outs)
    (ours,) = registry.get_kernel("Conv2D").fn(KernelContext("numpy", optimize=True), [x, w], attrs)
    exact = tf.raw_ops.Conv2D(input=x.astype(np.float64), filter=w.astype(np.float64),
                              strides=[1, 1, 1, 1], padding=padding,
                              explicit_paddings=attrs.get("explicit_paddings", [])).numpy()
    magnitude = winograd_magnitude(x, w, pads, outs)
    c = x_shape[-1]
    u = float(np.finfo(np.float32).eps) / 2
    bound = (c + 7) * u / (1 - (c + 7) * u) * magnitude  # every rounding, the last add's included
    ours = np.asarray(ours)
    assert ours.shape == exact.shape and ours.dtype == np.float32
    assert np.all(np.abs(ours - exact) <= bound)


@pytest.mark.parametrize("x_shape, outs, taken", [
    ((1, 1, 1, 512), (1, 1), False),   # one tile: the products only re-read the filters
    ((1, 4, 4, 256), (4, 4), False),   # 4 tiles
    ((3, 4, 4, 128), (4, 4), False),   # 12 tiles
    ((1, 7, 7, 512), (7, 7), True),    # 16 tiles (ResNet50's last stage at batch 1)
    ((4, 2, 2, 256), (4, 4), True),    # 16 tiles over four images
])
def test_winograd_needs_enough_tiles(x_shape, outs, taken):
    x = np.zeros(x_shape, np.float32)
    w = np.zeros((3, 3, x_shape[-1], x_shape[-1]), np.float32)
    assert _winograd.applies(w, [1, 1], [1, 1], x, outs) is taken
