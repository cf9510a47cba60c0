"""Image resize kernels (NHWC): nearest neighbor, bilinear, bicubic.

Source coordinates and weights depend only on the sizes, so they are computed
on the host in float32 arithmetic, as TensorFlow's CPU kernels compute them,
then the pixels are gathered with ``xp.take`` on the backend.
"""
from __future__ import annotations

import numpy as np

from ._numeric import astype, fail, host_ints, namespace, np_dtype, op_kernel

_F = np.float32


def _resize_setup(ctx, op, inputs, attrs):
    xp, (images,) = namespace(ctx, inputs[0])
    size = host_ints(ctx, inputs[1])
    if images.ndim != 4:
        fail(op, f"images must have rank 4 (NHWC), got shape {tuple(images.shape)}")
    if len(size) != 2 or min(size) <= 0:
        fail(op, f"size must be 2 positive integers, got {size}")
    align_corners = bool(attrs.get("align_corners", False))
    half_pixel_centers = bool(attrs.get("half_pixel_centers", False))
    if align_corners and half_pixel_centers:
        fail(op, "If half_pixel_centers is True, align_corners must be False.")
    return xp, images, size, align_corners, half_pixel_centers


def _scale(in_size: int, out_size: int, align_corners: bool):
    """The float32 ratio of input to output coordinates."""
    if align_corners and out_size > 1:
        return _F(in_size - 1) / _F(out_size - 1)
    return _F(in_size) / _F(out_size)


def _source_coordinates(out_size, scale, half_pixel_centers, shift):
    """Where each output index samples the input: (i + 0.5) * scale - shift, or i * scale."""
    index = np.arange(out_size, dtype=_F)
    if half_pixel_centers:
        return ((index + _F(0.5)) * scale - _F(shift)).astype(_F)
    return (index * scale).astype(_F)


def _take(xp, x, index, axis):
    return xp.take(x, xp.asarray(index.astype(np.int64)), axis=axis)


@op_kernel("ResizeNearestNeighbor")
def resize_nearest_neighbor(ctx, inputs, attrs):
    xp, images, (height, width), align_corners, half_pixel_centers = _resize_setup(
        ctx, "ResizeNearestNeighbor", inputs, attrs)
    ctx.check_alloc([images.shape[0], height, width, images.shape[3]], np_dtype(images.dtype),
                    "ResizeNearestNeighbor")

    def indices(in_size, out_size):
        source = _source_coordinates(out_size, _scale(in_size, out_size, align_corners),
                                     half_pixel_centers, shift=0.0)
        if align_corners:  # roundf: halves away from zero (sources are >= 0)
            floor = np.floor(source)
            picked = np.where(source - floor >= _F(0.5), floor + 1, floor)
        else:
            picked = np.floor(source)
        picked = np.minimum(picked.astype(np.int64), in_size - 1)
        return np.maximum(picked, 0)

    rows = indices(int(images.shape[1]), height)
    cols = indices(int(images.shape[2]), width)
    return [_take(xp, _take(xp, images, rows, 1), cols, 2)]


def _linear_weights(in_size, out_size, align_corners, half_pixel_centers):
    source = _source_coordinates(out_size, _scale(in_size, out_size, align_corners),
                                 half_pixel_centers, shift=0.5)
    floor = np.floor(source)
    lower = np.maximum(floor.astype(np.int64), 0)
    upper = np.minimum(np.ceil(source).astype(np.int64), in_size - 1)
    return lower, upper, (source - floor).astype(_F)


@op_kernel("ResizeBilinear")
def resize_bilinear(ctx, inputs, attrs):
    """Bilinear interpolation; the output is float32 whatever the input type."""
    xp, images, (height, width), align_corners, half_pixel_centers = _resize_setup(
        ctx, "ResizeBilinear", inputs, attrs)
    ctx.check_alloc([images.shape[0], height, width, images.shape[3]], _F, "ResizeBilinear")
    images = astype(xp, images, _F)
    top, bottom, y_lerp = _linear_weights(int(images.shape[1]), height, align_corners,
                                          half_pixel_centers)
    left, right, x_lerp = _linear_weights(int(images.shape[2]), width, align_corners,
                                          half_pixel_centers)
    y_lerp = xp.asarray(y_lerp.reshape(1, height, 1, 1))
    x_lerp = xp.asarray(x_lerp.reshape(1, 1, width, 1))
    top_rows, bottom_rows = _take(xp, images, top, 1), _take(xp, images, bottom, 1)
    top_left, top_right = _take(xp, top_rows, left, 2), _take(xp, top_rows, right, 2)
    bottom_left, bottom_right = _take(xp, bottom_rows, left, 2), _take(xp, bottom_rows, right, 2)
    upper = top_left + (top_right - top_left) * x_lerp
    lower = bottom_left + (bottom_right - bottom_left) * x_lerp
    return [upper + (lower - upper) * y_lerp]


_CUBIC_TABLE_SIZE = 1024


def _cubic_table(a: float) -> np.ndarray:
    """Keys cubic kernel sampled at 1/1024 steps: [w(x), w(x + 1)] per row, as TensorFlow tables it."""
    x = np.arange(_CUBIC_TABLE_SIZE + 1, dtype=np.float64) / _CUBIC_TABLE_SIZE
    near = ((a + 2) * x - (a + 3)) * x * x + 1
    far_x = x + 1
    far = ((a * far_x - 5 * a) * far_x + 8 * a) * far_x - 4 * a
    return np.stack([near, far], axis=1).astype(_F)


def _cubic_weights(in_size, out_size, align_corners, half_pixel_centers):
    """Four source indices and weights per output index."""
    source = _source_coordinates(out_size, _scale(in_size, out_size, align_corners),
                                 half_pixel_centers, shift=0.5)
    base = np.floor(source).astype(np.int64)
    delta = (source - np.floor(source)).astype(_F)
    offset = np.rint(delta * _F(_CUBIC_TABLE_SIZE)).astype(np.int64)
    table = _cubic_table(-0.5 if half_pixel_centers else -0.75)
    weights = np.stack([table[offset, 1], table[offset, 0],
                        table[_CUBIC_TABLE_SIZE - offset, 0],
                        table[_CUBIC_TABLE_SIZE - offset, 1]])
    wanted = base[None, :] + np.arange(-1, 3)[:, None]
    indices = np.clip(wanted, 0, in_size - 1)
    if half_pixel_centers:  # samples outside the image get no weight; the rest renormalized
        weights = np.where(indices == wanted, weights, _F(0)).astype(_F)
        total = weights.sum(axis=0, dtype=_F)
        usable = np.abs(total) >= _F(1000) * np.finfo(_F).tiny
        weights = np.where(usable, weights * (_F(1) / np.where(usable, total, _F(1))), weights)
    return indices, weights.astype(_F)


@op_kernel("ResizeBicubic")
def resize_bicubic(ctx, inputs, attrs):
    """Bicubic (Keys) interpolation along x then y; the output is float32."""
    xp, images, (height, width), align_corners, half_pixel_centers = _resize_setup(
        ctx, "ResizeBicubic", inputs, attrs)
    ctx.check_alloc([images.shape[0], height, width, images.shape[3]], _F, "ResizeBicubic")
    images = astype(xp, images, _F)
    x_index, x_weight = _cubic_weights(int(images.shape[2]), width, align_corners, half_pixel_centers)
    y_index, y_weight = _cubic_weights(int(images.shape[1]), height, align_corners, half_pixel_centers)
    across = None
    for k in range(4):
        term = _take(xp, images, x_index[k], 2) * xp.asarray(x_weight[k].reshape(1, 1, width, 1))
        across = term if across is None else across + term
    out = None
    for k in range(4):
        term = _take(xp, across, y_index[k], 1) * xp.asarray(y_weight[k].reshape(1, height, 1, 1))
        out = term if out is None else out + term
    return [out]


def _area_weights(in_size, out_size, align_corners):
    """(out, in) float32 matrix of how much of each input pixel each output box covers, and
    the box size (a zero-size box, from align_corners on one pixel, copies that pixel)."""
    scale = _scale(in_size, out_size, align_corners)
    weights = np.zeros((out_size, in_size), dtype=_F)
    if scale == 0:
        weights[:, 0] = 1
        return weights, _F(1)
    for out in range(out_size):
        start, end = _F(out) * scale, _F(out + 1) * scale
        first, stop = int(np.floor(start)), int(np.ceil(end))
        for index in range(first, stop):
            covered = min(_F(index + 1), end) - max(_F(index), start)
            weights[out, min(max(index, 0), in_size - 1)] += _F(covered)
    return weights, scale


@op_kernel("ResizeArea")
def resize_area(ctx, inputs, attrs):
    """The average of the input pixels under each output pixel's box; the output is float32."""
    xp, images, (height, width), align_corners, _ = _resize_setup(ctx, "ResizeArea", inputs, attrs)
    ctx.check_alloc([images.shape[0], height, width, images.shape[3]], _F, "ResizeArea")
    in_height, in_width = int(images.shape[1]), int(images.shape[2])
    ctx.check_alloc([height, in_height], _F, "ResizeArea")  # the weight matrices
    ctx.check_alloc([width, in_width], _F, "ResizeArea")
    row_weights, row_box = _area_weights(in_height, height, align_corners)
    col_weights, col_box = _area_weights(in_width, width, align_corners)
    out = resample_axis(xp, resample_axis(xp, astype(xp, images, _F), 1, row_weights), 2, col_weights)
    return [out * xp.asarray(_F(1) / (row_box * col_box))]


def resample_axis(xp, x, axis, weights):
    """``x`` resampled along ``axis`` by an (out, in) host weight matrix whose rows are bands
    (each row's nonzero weights lie in one run): the weighted sum of each band's inputs, one
    gather and multiply-add per band offset, in increasing input order."""
    out_size, in_size = weights.shape
    nonzero = weights != 0
    has_any = nonzero.any(axis=1)
    first = np.where(has_any, nonzero.argmax(axis=1), 0)
    last = np.where(has_any, in_size - 1 - nonzero[:, ::-1].argmax(axis=1), -1)
    width = int(np.max(last - first + 1, initial=0))
    shape = [1] * x.ndim
    shape[axis] = out_size
    if width <= 0 or in_size == 0:
        out_shape = list(x.shape)
        out_shape[axis] = out_size
        return xp.zeros(tuple(out_shape), dtype=x.dtype)
    rows = np.arange(out_size)
    total = None
    for offset in range(width):
        source = np.minimum(first + offset, in_size - 1)
        weight = np.where(first + offset <= last, weights[rows, source], 0).astype(weights.dtype)
        term = xp.take(x, xp.asarray(source.astype(np.int64)), axis=axis) * xp.asarray(weight.reshape(shape))
        total = term if total is None else total + term
    return total
