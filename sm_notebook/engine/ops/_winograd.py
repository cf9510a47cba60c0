"""Winograd F(2x2, 3x3) convolution on numpy (Lavin and Gray, "Fast Algorithms for
Convolutional Neural Networks", 2015): a 3x3 stride-1 cross-correlation computed per 4x4
input tile (stride 2) as 16 matrix products of (tiles, C) by (C, K), 2.25 times fewer
multiply-adds than im2col (scheduled over blocks of tiles by `nn_ops._winograd_numpy`).
Float32 only; the rounding error is larger than a plain dot product's by the transforms'
growth (bounded in tests/unit/test_optimized_equals_reference.py
from the same algorithm run on absolute values).

``y = A^T [(G g G^T) * (B^T d B)] A`` for a 4x4 tile ``d`` and a 3x3 filter ``g``.
"""
from __future__ import annotations

import numpy as np

#: filter transform (4x3); B^T and A^T are written out as adds in `input_transform`
#: and `output_transform`
G = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]])
#: C * K / (C + K) from which the products' saving outweighs the transforms' passes
MIN_CHANNEL_PRODUCT = 24
#: output tiles (2x2 pixels, all images) below which the direct product wins: with few rows
#: each of the 16 small products is bound by reading its transformed filters (16/9 of the
#: filters) and by its call; measured on ResNet50 and VGG16 at 32x32 (1x1 to 8x8 maps)
MIN_TILES = 16


def applies(w, strides, dilations, x, outs) -> bool:
    """Whether this convolution is taken this way: 3x3 float32 filters, stride and
    dilation 1, channels wide enough and enough output tiles (``outs``: output height and
    width) for the transforms to pay off."""
    if w.ndim != 4 or tuple(w.shape[:2]) != (3, 3) or tuple(strides) != (1, 1) \
            or tuple(dilations) != (1, 1) or x.dtype != np.float32 or w.dtype != np.float32:
        return False
    c, k = int(w.shape[2]), int(w.shape[3])
    tiles = int(x.shape[0]) * -(-int(outs[0]) // 2) * -(-int(outs[1]) // 2)
    return c * k >= MIN_CHANNEL_PRODUCT * (c + k) and tiles >= MIN_TILES


def filters(w):
    """``G g G^T`` of every (input, output) channel pair: (16, C, K), rounded once from float64."""
    u = np.einsum("ai,ijck,bj->abck", G, w.astype(np.float64), G)
    return np.ascontiguousarray(u.reshape(16, *w.shape[2:]), dtype=w.dtype)


def input_transform(x, b, e, r, f, tile_cols, pads):
    """``B^T d B`` of the tiles of images [b, e), tile rows [r, f): (16, tiles, C)."""
    (top, _), (left, _) = pads
    height, width = int(x.shape[1]), int(x.shape[2])
    rows, cols = 2 * (f - r) + 2, 2 * tile_cols + 2
    d = np.empty((e - b, rows, cols, x.shape[-1]), dtype=x.dtype)  # padded input rows of the block
    first = 2 * r - top                                          # input row of d's row 0
    lo, hi = max(0, first), min(height, first + rows)
    lo, hi = lo - first, max(lo, hi) - first                     # d's rows that hold input rows
    d[:, :lo] = 0
    d[:, hi:] = 0
    d[:, lo:hi, :left] = 0
    d[:, lo:hi, left + width:] = 0
    d[:, lo:hi, left:left + width] = x[b:e, lo + first:hi + first]
    span = 2 * (f - r)
    d0, d1, d2, d3 = (d[:, a:a + span:2] for a in range(4))
    t = np.empty((4, *d0.shape), dtype=x.dtype)
    np.subtract(d0, d2, out=t[0])
    np.add(d1, d2, out=t[1])
    np.subtract(d2, d1, out=t[2])
    np.subtract(d1, d3, out=t[3])
    span = 2 * tile_cols
    c0, c1, c2, c3 = (t[:, :, :, a:a + span:2] for a in range(4))
    v = np.empty((4, 4, *c0.shape[1:]), dtype=x.dtype)
    np.subtract(c0, c2, out=v[:, 0])
    np.add(c1, c2, out=v[:, 1])
    np.subtract(c2, c1, out=v[:, 2])
    np.subtract(c1, c3, out=v[:, 3])
    return v.reshape(16, -1, x.shape[-1])


def output_transform(m, y=None):
    """``A^T m A`` of products m (4, 4, N, rows, cols, K) into ``y`` (N, 2 rows, 2 cols, K;
    a new array when None), which is returned."""
    s = np.empty((2, *m.shape[1:]), dtype=m.dtype)
    np.add(m[0], m[1], out=s[0])
    s[0] += m[2]
    np.subtract(m[1], m[2], out=s[1])
    s[1] -= m[3]
    n, rows, cols, k = m.shape[2:]
    target = y
    y = np.empty((n, rows, 2, cols, 2, k), dtype=m.dtype) if y is None else y.reshape(n, rows, 2, cols, 2, k)
    for i in range(2):
        left, right = y[:, :, i, :, 0], y[:, :, i, :, 1]
        np.add(s[i, 0], s[i, 1], out=left)
        left += s[i, 2]
        np.subtract(s[i, 1], s[i, 2], out=right)
        right -= s[i, 3]
    return y.reshape(n, 2 * rows, 2 * cols, k) if target is None else target
