"""Max pooling that also returns where each maximum came from (MaxPoolWithArgmax, NHWC).

The argmax is the flat index of the input element, ``(y * width + x) * channels + c``, plus
``batch * height * width * channels`` with ``include_batch_in_index``. The window is scanned
in row-major order and a later element replaces the current maximum only when it is
strictly greater (so ties keep the first, and a NaN is kept only when it comes first), as
TensorFlow's CPU kernel scans it. Padding positions are never candidates.
"""
from __future__ import annotations

import numpy as np

from ._numeric import astype, fail, lowest, namespace, np_dtype, op_kernel
from .nn_ops import window_geometry


def _window_taps(in_size, out_size, k, stride, before):
    """Per window offset: the input coordinate each output position reads (clipped) and
    whether it is inside the input."""
    taps = []
    for offset in range(k):
        coordinate = np.arange(out_size) * stride + offset - before
        taps.append((np.clip(coordinate, 0, max(in_size - 1, 0)),
                     (coordinate >= 0) & (coordinate < in_size)))
    return taps


@op_kernel("MaxPoolWithArgmax")
def max_pool_with_argmax(ctx, inputs, attrs):
    op = "MaxPoolWithArgmax"
    xp, (x,) = namespace(ctx, inputs[0])
    if x.ndim != 4:
        fail(op, f"input must be 4-dimensional (NHWC), got shape {tuple(x.shape)}")
    ksize, strides = list(attrs.get("ksize", [])), list(attrs.get("strides", []))
    if len(ksize) != 4 or len(strides) != 4 or ksize[0] != 1 or ksize[3] != 1 \
            or strides[0] != 1 or strides[3] != 1:
        fail(op, f"ksize and strides must be [1, h, w, 1], got {ksize} and {strides}")
    if x.size == 0:
        fail(op, f"tensor_in must not be empty, got shape {tuple(x.shape)}")
    batch, height, width, channels = (int(d) for d in x.shape)
    outs, pads = window_geometry(op, [height, width], ksize[1:3], strides[1:3], [1, 1],
                                 attrs.get("padding", "VALID"))
    out_h, out_w = outs
    index_dtype = np.dtype(attrs.get("Targmax", np.int64))
    ctx.check_alloc([batch, out_h, out_w, channels], np_dtype(x.dtype), op)
    flat = xp.reshape(x, (batch, height * width, channels))
    best = xp.full((batch, out_h * out_w, channels), lowest(x), dtype=x.dtype)
    best_pixel = xp.full((1, out_h * out_w, 1), -1, dtype=xp.int64)
    rows = _window_taps(height, out_h, ksize[1], strides[1], pads[0][0])
    cols = _window_taps(width, out_w, ksize[2], strides[2], pads[1][0])
    for row, row_inside in rows:
        for col, col_inside in cols:
            pixel = (row[:, None] * width + col[None, :]).reshape(-1)
            inside = (row_inside[:, None] & col_inside[None, :]).reshape(1, -1, 1)
            candidate = xp.take(flat, xp.asarray(pixel), axis=1)
            take = xp.asarray(inside) & ((candidate > best) | (best_pixel < 0))
            best = xp.where(take, candidate, best)
            best_pixel = xp.where(take, xp.reshape(xp.asarray(pixel.astype(np.int64)), (1, -1, 1)),
                                  best_pixel)
    argmax = best_pixel * channels + xp.reshape(xp.arange(channels, dtype=xp.int64), (1, 1, channels))
    if attrs.get("include_batch_in_index", False):
        argmax = argmax + xp.reshape(xp.arange(batch, dtype=xp.int64), (batch, 1, 1)) * (height * width * channels)
    shape = (batch, out_h, out_w, channels)
    return [xp.reshape(best, shape), astype(xp, xp.reshape(argmax, shape), index_dtype)]
