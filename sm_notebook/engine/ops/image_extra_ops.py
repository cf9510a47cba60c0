"""Image kernels beyond resizing: crops, scale-and-translate resampling, non-max suppression,
colour space conversions and adjustments, patch extraction (all NHWC).

Sampling positions and weights depend on sizes and boxes only; they are computed on the
host in float32, as TensorFlow's CPU kernels compute them, and the pixels are gathered and
weighted on the backend. Non-max suppression is a greedy, sequential selection: it runs on
the host (its inputs are a few thousand boxes at most), as a loop over candidates.
"""
from __future__ import annotations

import heapq
import math

import numpy as np

from ._arrays import scalar
from ._numeric import astype, fail, host_ints, namespace, np_dtype, op_kernel, pad, wide
from .image_ops import resample_axis
from .nn_ops import _window_slices, window_geometry

_F = np.float32


def _host_floats(ctx, x):
    return np.asarray(ctx.to_numpy(x)).astype(_F)


# --- CropAndResize ---------------------------------------------------------------------------

def _crop_positions(start, end, in_size, out_size):
    """Where each crop row samples the image (float32, as TensorFlow), per box: (boxes, out)."""
    last = _F(in_size - 1)
    if out_size > 1:
        scale = ((end - start) * last / _F(out_size - 1)).astype(_F)
        return (start[:, None] * last + np.arange(out_size, dtype=_F)[None, :] * scale[:, None]).astype(_F)
    return np.broadcast_to((_F(0.5) * (start + end) * last)[:, None], (start.shape[0], 1)).astype(_F)


@op_kernel("CropAndResize")
def crop_and_resize(ctx, inputs, attrs):
    """Bilinear or nearest samples of each box, resized to crop_size; samples outside the
    image take extrapolation_value. Output float32 (num_boxes, crop_h, crop_w, depth)."""
    op = "CropAndResize"
    xp, (image,) = namespace(ctx, inputs[0])
    boxes = _host_floats(ctx, inputs[1])
    box_index = np.asarray(ctx.to_numpy(inputs[2])).astype(np.int64)
    crop = host_ints(ctx, inputs[3])
    method = attrs.get("method", "bilinear")
    extrapolation = _F(attrs.get("extrapolation_value", 0.0))
    if image.ndim != 4:
        fail(op, f"input image must be 4-D, got shape {tuple(image.shape)}")
    batch, height, width, depth = (int(d) for d in image.shape)
    if height <= 0 or width <= 0:
        fail(op, "image dimensions must be positive")
    if len(crop) != 2 or min(crop) <= 0:
        fail(op, f"crop dimensions must be positive, got {crop}")
    if boxes.ndim != 2 or boxes.shape[1] != 4 or box_index.shape != (boxes.shape[0],):
        fail(op, f"boxes must be [num_boxes, 4] and box_index [num_boxes], got "
                 f"{boxes.shape} and {box_index.shape}")
    if method not in ("bilinear", "nearest"):
        fail(op, f"method must be 'bilinear' or 'nearest', got {method!r}")
    if box_index.size and (box_index.min() < 0 or box_index.max() >= batch):
        fail(op, "box_index has values outside [0, batch_size)")
    crop_h, crop_w = crop
    ctx.check_alloc([boxes.shape[0], crop_h, crop_w, depth], _F, op)
    ys = _crop_positions(boxes[:, 0], boxes[:, 2], height, crop_h)
    xs = _crop_positions(boxes[:, 1], boxes[:, 3], width, crop_w)
    inside = ((ys >= 0) & (ys <= height - 1))[:, :, None] & ((xs >= 0) & (xs <= width - 1))[:, None, :]
    flat = xp.reshape(astype(xp, image, _F), (batch * height * width, depth))
    base = box_index[:, None, None] * height

    def gather(rows, cols):
        rows = np.clip(rows, 0, height - 1)[:, :, None]
        cols = np.clip(cols, 0, width - 1)[:, None, :]
        index = ((base + rows) * width + cols).reshape(-1)
        taken = xp.take(flat, xp.asarray(index), axis=0)
        return xp.reshape(taken, (boxes.shape[0], crop_h, crop_w, depth))

    if method == "nearest":  # roundf: halves away from zero
        out = gather(np.floor(ys + _F(0.5)).astype(np.int64), np.floor(xs + _F(0.5)).astype(np.int64))
    else:
        top, left = np.floor(ys), np.floor(xs)
        y_lerp = xp.asarray((ys - top).astype(_F)[:, :, None, None])
        x_lerp = xp.asarray((xs - left).astype(_F)[:, None, :, None])
        top_i, bottom_i = top.astype(np.int64), np.ceil(ys).astype(np.int64)
        left_i, right_i = left.astype(np.int64), np.ceil(xs).astype(np.int64)
        top_left, top_right = gather(top_i, left_i), gather(top_i, right_i)
        bottom_left, bottom_right = gather(bottom_i, left_i), gather(bottom_i, right_i)
        upper = top_left + (top_right - top_left) * x_lerp
        lower = bottom_left + (bottom_right - bottom_left) * x_lerp
        out = upper + (lower - upper) * y_lerp
    mask = xp.asarray(inside[:, :, :, None])
    return [xp.where(mask, out, xp.asarray(extrapolation))]


# --- ScaleAndTranslate -----------------------------------------------------------------------

def _lanczos(radius):
    def weight(x):
        pi_x = _F(math.pi) * x
        safe = np.where(x > _F(1e-3), pi_x, _F(1))
        value = _F(radius) * np.sin(safe) * np.sin(safe / _F(radius)) / (safe * safe)
        return np.where(x > radius, _F(0), np.where(x <= _F(1e-3), _F(1), value))
    return radius, weight


def _gaussian():
    sigma = _F(0.5)
    radius = _F(1.5)
    return radius, lambda x: np.where(x >= radius, _F(0), np.exp(-x * x / (_F(2) * sigma * sigma)))


def _cubic(near, far):
    return 2.0, lambda x: np.where(x >= 2, _F(0), np.where(x >= 1, far(x), near(x)))


_SAMPLING_KERNELS = {
    "lanczos1": lambda: _lanczos(1.0),
    "lanczos3": lambda: _lanczos(3.0),
    "lanczos5": lambda: _lanczos(5.0),
    "gaussian": _gaussian,
    "box": lambda: (1.0, lambda x: np.where(x < 0.5, _F(1), np.where(x == 0.5, _F(0.5), _F(0)))),
    "triangle": lambda: (1.0, lambda x: np.where(x >= 1, _F(0), _F(1) - x)),
    "keyscubic": lambda: _cubic(lambda x: (_F(1.5) * x - _F(2.5)) * x * x + _F(1),
                                lambda x: ((_F(-0.5) * x + _F(2.5)) * x - _F(4)) * x + _F(2)),
    "mitchellcubic": lambda: _cubic(
        lambda x: ((_F(7 / 6) * x - _F(2)) * x) * x + _F(8 / 9),
        lambda x: (((_F(-7 / 18) * x + _F(2)) * x - _F(10 / 3)) * x) + _F(16 / 9)),
}


def scale_translate_weights(kernel_type, in_size, out_size, scale, translate, antialias):
    """(out_size, in_size) float32 matrix: each output sample's normalized kernel weights over
    the input (TensorFlow's ComputeSpans: samples outside [0, in_size] get none)."""
    radius, weight = _SAMPLING_KERNELS[kernel_type]()
    inv_scale = _F(1) / _F(scale)
    inv_translate = -inv_scale * _F(translate)
    kernel_scale = max(inv_scale, _F(1)) if antialias else _F(1)
    reach = _F(radius) * kernel_scale
    weights = np.zeros((out_size, in_size), _F)
    for x in range(out_size):
        sample = (_F(x) + _F(0.5)) * inv_scale + inv_translate
        if sample < 0 or sample > in_size:
            continue
        start = min(max(int(math.ceil(sample - reach - _F(0.5))), 0), in_size - 1)
        end = min(max(int(math.floor(sample + reach - _F(0.5))), 0), in_size - 1) + 1
        sources = np.arange(start, end, dtype=_F)
        values = weight(np.abs((sources + _F(0.5) - sample) * (_F(1) / kernel_scale))).astype(_F)
        total = _F(0)
        for v in values:  # summed in order, in float32
            total = _F(total + v)
        if abs(total) >= _F(1000) * np.finfo(_F).tiny:
            weights[x, start:end] = values * (_F(1) / total)
    return weights


@op_kernel("ScaleAndTranslate")
def scale_and_translate(ctx, inputs, attrs):
    """Resample with a separable kernel at scale and translation (what tf.image.resize with
    antialias=True or a lanczos/gaussian/mitchell method lowers to). Output float32."""
    op = "ScaleAndTranslate"
    xp, (images,) = namespace(ctx, inputs[0])
    size = host_ints(ctx, inputs[1])
    scale = _host_floats(ctx, inputs[2]).reshape(-1)
    translation = _host_floats(ctx, inputs[3]).reshape(-1)
    kernel_type = attrs.get("kernel_type", "lanczos3")
    antialias = bool(attrs.get("antialias", True))
    if images.ndim != 4:
        fail(op, f"input must be 4-dimensional, got shape {tuple(images.shape)}")
    if len(size) != 2 or min(size) <= 0:
        fail(op, f"output dimensions must be positive, got {size}")
    if scale.shape != (2,) or translation.shape != (2,):
        fail(op, "scale and translation must be 2 floats each")
    if kernel_type not in _SAMPLING_KERNELS:
        fail(op, f"Unrecognized kernel type: {kernel_type!r}; known: {sorted(_SAMPLING_KERNELS)}")
    if min(scale) <= 0:
        fail(op, f"scale must be positive, got {scale.tolist()}")
    batch, in_h, in_w, depth = (int(d) for d in images.shape)
    height, width = size
    ctx.check_alloc([batch, height, width, depth], _F, op)
    if in_h == 0 or in_w == 0:
        fail(op, "input images must have positive height and width")
    rows = scale_translate_weights(kernel_type, in_h, height, scale[0], translation[0], antialias)
    cols = scale_translate_weights(kernel_type, in_w, width, scale[1], translation[1], antialias)
    return [resample_axis(xp, resample_axis(xp, astype(xp, images, _F), 1, rows), 2, cols)]


# --- Non-max suppression ---------------------------------------------------------------------

def _corners(boxes):
    """(ymin, xmin, ymax, xmax, area) of boxes given by either pair of opposite corners."""
    ymin = np.minimum(boxes[:, 0], boxes[:, 2])
    ymax = np.maximum(boxes[:, 0], boxes[:, 2])
    xmin = np.minimum(boxes[:, 1], boxes[:, 3])
    xmax = np.maximum(boxes[:, 1], boxes[:, 3])
    return ymin, xmin, ymax, xmax, (ymax - ymin) * (xmax - xmin)


def _iou_with(corners, i, others):
    """Intersection over union of box i with boxes ``others`` (0 where an area is <= 0)."""
    ymin, xmin, ymax, xmax, area = corners
    inter_h = np.maximum(np.minimum(ymax[i], ymax[others]) - np.maximum(ymin[i], ymin[others]), 0)
    inter_w = np.maximum(np.minimum(xmax[i], xmax[others]) - np.maximum(xmin[i], xmin[others]), 0)
    inter = inter_h * inter_w
    union = area[i] + area[others] - inter
    with np.errstate(all="ignore"):
        iou = inter / union
    return np.where((area[i] <= 0) | (area[others] <= 0), area.dtype.type(0), iou)


def greedy_suppression(scores, similarity, max_output, threshold, score_threshold, sigma=0.0):
    """TensorFlow's DoNonMaxSuppressionOp: candidates above score_threshold by descending
    score (ties: lower index first); a candidate is dropped when its similarity with a
    selected box exceeds ``threshold``; with soft-NMS (sigma > 0) its score is instead
    multiplied by exp(-0.5 sim^2 / sigma) and it is re-queued. Returns (indices, scores)."""
    dtype = scores.dtype.type
    soft = sigma > 0
    scale = dtype(-0.5 / sigma) if soft else dtype(0)
    order = [int(i) for i in np.argsort(-scores, kind="stable") if scores[i] > score_threshold]
    selected: list[int] = []
    selected_scores: list = []
    if not soft:
        for i in order:
            if len(selected) >= max_output:
                break
            if selected and np.any(similarity(i, np.asarray(selected)) > threshold):
                continue
            selected.append(i)
            selected_scores.append(scores[i])
        return selected, selected_scores
    queue = [(-scores[i], i, 0) for i in order]  # (−score, index, first selected not yet seen)
    heapq.heapify(queue)
    while queue and len(selected) < max_output:
        negative, i, begin = heapq.heappop(queue)
        score = original = dtype(-negative)
        if len(selected) > begin:
            sims = similarity(i, np.asarray(selected[begin:]))
            for sim in sims[::-1]:
                score = dtype(score * np.exp(scale * sim * sim))
                if score <= score_threshold:
                    break
        if score == original:
            selected.append(i)
            selected_scores.append(score)
        elif score > score_threshold:
            heapq.heappush(queue, (-score, i, len(selected)))
    return selected, selected_scores


def _nms_inputs(ctx, op, inputs, with_thresholds=True):
    boxes = np.asarray(ctx.to_numpy(inputs[0]))
    scores = np.asarray(ctx.to_numpy(inputs[1]))
    max_output = int(scalar(ctx, inputs[2], op, "max_output_size"))
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        fail(op, f"boxes must be 2-D [num_boxes, 4], got shape {boxes.shape}")
    if scores.shape != (boxes.shape[0],):
        fail(op, f"scores must be 1-D [num_boxes] ({boxes.shape[0]}), got shape {scores.shape}")
    if max_output < 0:
        fail(op, f"max_output_size must be non-negative, got {max_output}")
    compute = _F if np_dtype(boxes.dtype).itemsize <= 4 else np.float64
    return boxes.astype(compute), scores.astype(compute), max_output


def _threshold(ctx, x, dtype, op="NonMaxSuppression", what="threshold"):
    return dtype(scalar(ctx, x, op, what))


def _nms(op, ctx, inputs, iou_threshold, score_threshold, sigma=0.0):
    boxes, scores, max_output = _nms_inputs(ctx, op, inputs)
    dtype = scores.dtype.type
    iou_threshold = dtype(iou_threshold)
    if not 0 <= iou_threshold <= 1:
        fail(op, "iou_threshold must be in [0, 1]")
    corners = _corners(boxes)
    return greedy_suppression(scores, lambda i, others: _iou_with(corners, i, others), max_output,
                              iou_threshold, dtype(score_threshold), dtype(sigma))


def _indices(selected, pad_to=None):
    if pad_to is not None:
        selected = list(selected) + [0] * (pad_to - len(selected))
    return np.asarray(selected, np.int32)


@op_kernel("NonMaxSuppression")
def non_max_suppression_v1(ctx, inputs, attrs):
    selected, _ = _nms("NonMaxSuppression", ctx, inputs, attrs.get("iou_threshold", 0.5),
                       np.finfo(_F).min)
    return [_indices(selected)]


@op_kernel("NonMaxSuppressionV2")
def non_max_suppression_v2(ctx, inputs, attrs):
    selected, _ = _nms("NonMaxSuppressionV2", ctx, inputs, _threshold(ctx, inputs[3], _F),
                       np.finfo(_F).min)
    return [_indices(selected)]


@op_kernel("NonMaxSuppressionV3")
def non_max_suppression_v3(ctx, inputs, attrs):
    selected, _ = _nms("NonMaxSuppressionV3", ctx, inputs, _threshold(ctx, inputs[3], _F),
                       _threshold(ctx, inputs[4], _F))
    return [_indices(selected)]


@op_kernel("NonMaxSuppressionV4")
def non_max_suppression_v4(ctx, inputs, attrs):
    """V3 plus valid_outputs; with pad_to_max_output_size the indices are zero-padded."""
    selected, _ = _nms("NonMaxSuppressionV4", ctx, inputs, _threshold(ctx, inputs[3], _F),
                       _threshold(ctx, inputs[4], _F))
    pad = _threshold(ctx, inputs[2], int) if attrs.get("pad_to_max_output_size", False) else None
    return [_indices(selected, pad), np.asarray(len(selected), np.int32)]


@op_kernel("NonMaxSuppressionV5")
def non_max_suppression_v5(ctx, inputs, attrs):
    """Soft-NMS when soft_nms_sigma > 0; selected_scores are the (decayed) scores."""
    op = "NonMaxSuppressionV5"
    dtype = _F if np_dtype(ctx.to_numpy(inputs[1]).dtype).itemsize <= 4 else np.float64
    sigma = _threshold(ctx, inputs[5], dtype)
    if sigma < 0:
        fail(op, "soft_nms_sigma must be non-negative")
    selected, scores = _nms(op, ctx, inputs, _threshold(ctx, inputs[3], dtype),
                            _threshold(ctx, inputs[4], dtype), sigma)
    pad = _threshold(ctx, inputs[2], int) if attrs.get("pad_to_max_output_size", False) else None
    out_dtype = np_dtype(ctx.to_numpy(inputs[1]).dtype)
    padded_scores = list(scores) + [0] * ((pad or 0) - len(scores))
    return [_indices(selected, pad), np.asarray(padded_scores, dtype).astype(out_dtype),
            np.asarray(len(selected), np.int32)]


@op_kernel("NonMaxSuppressionWithOverlaps")
def non_max_suppression_with_overlaps(ctx, inputs, attrs):
    """Greedy selection with a given (num_boxes, num_boxes) overlap matrix in place of IoU."""
    op = "NonMaxSuppressionWithOverlaps"
    overlaps = np.asarray(ctx.to_numpy(inputs[0])).astype(_F)
    scores = np.asarray(ctx.to_numpy(inputs[1])).astype(_F)
    max_output = int(scalar(ctx, inputs[2], op, "max_output_size"))
    if overlaps.ndim != 2 or overlaps.shape[0] != overlaps.shape[1]:
        fail(op, f"overlaps must be square, got shape {overlaps.shape}")
    if scores.shape != (overlaps.shape[0],):
        fail(op, f"scores must be 1-D [num_boxes] ({overlaps.shape[0]}), got {scores.shape}")
    if max_output < 0:
        fail(op, f"max_output_size must be non-negative, got {max_output}")
    selected, _ = greedy_suppression(scores, lambda i, others: overlaps[i, others], max_output,
                                     _threshold(ctx, inputs[3], _F), _threshold(ctx, inputs[4], _F))
    return [_indices(selected)]


# --- Colour spaces ---------------------------------------------------------------------------

def _channels(op, xp, images, min_rank=1):
    if images.ndim < min_rank:
        fail(op, f"input must be at least {min_rank}-D, got shape {list(images.shape)}")
    if images.ndim < 1 or images.shape[-1] != 3:
        fail(op, f"input must have 3 channels in its last dimension, got shape {tuple(images.shape)}")
    return images[..., 0], images[..., 1], images[..., 2]


def rgb_to_hsv(xp, r, g, b):
    """TensorFlow's RGBToHSV formula, elementwise."""
    value = xp.maximum(xp.maximum(r, g), b)
    chroma = value - xp.minimum(xp.minimum(r, g), b)
    zero = xp.zeros_like(value)
    saturation = xp.where(value > 0, chroma / xp.where(value > 0, value, 1), zero)
    norm = 1 / (6 * chroma)
    hue = xp.where(r == value, norm * (g - b),
                   xp.where(g == value, norm * (b - r) + 2 / 6, norm * (r - g) + 4 / 6))
    hue = xp.where(chroma > 0, hue, zero)
    return xp.where(hue < 0, hue + 1, hue), saturation, value


@op_kernel("RGBToHSV")
def rgb_to_hsv_kernel(ctx, inputs, attrs):
    xp, (images,) = namespace(ctx, inputs[0])
    dtype, images = images.dtype, wide(xp, images)
    h, s, v = rgb_to_hsv(xp, *_channels("RGBToHSV", xp, images))
    return [astype(xp, xp.stack([h, s, v], axis=-1), dtype)]


@op_kernel("HSVToRGB")
def hsv_to_rgb_kernel(ctx, inputs, attrs):
    xp, (images,) = namespace(ctx, inputs[0])
    dtype, images = images.dtype, wide(xp, images)
    h, s, v = _channels("HSVToRGB", xp, images)
    dh = h * 6
    red = xp.clip(xp.abs(dh - 3) - 1, 0, 1)
    green = xp.clip(-xp.abs(dh - 2) + 2, 0, 1)
    blue = xp.clip(-xp.abs(dh - 4) + 2, 0, 1)
    keep = 1 - s
    rgb = [(keep + s * c) * v for c in (red, green, blue)]
    return [astype(xp, xp.stack(rgb, axis=-1), dtype)]


def _sextant_to_rgb(xp, category, low, mid, high, default=None):
    """(r, g, b) of a pixel in hue sextant ``category`` (0..5 as floats) given its smallest,
    middle and largest components; other categories give ``default`` (AdjustHue: sextant 5,
    AdjustSaturation: 0 0 0)."""
    by_category = [(high, mid, low), (mid, high, low), (low, high, mid),
                   (low, mid, high), (mid, low, high), (high, low, mid)]
    out = [xp.zeros_like(low) for _ in range(3)] if default is None else list(by_category[default])
    for c in range(5, -1, -1):
        chosen = category == c
        out = [xp.where(chosen, comp, o) for comp, o in zip(by_category[c], out)]
    return out


@op_kernel("AdjustHue")
def adjust_hue(ctx, inputs, attrs):
    """Rotate hue by delta (a fraction of the full turn), keeping each pixel's min and max
    components (TensorFlow's hue/value-range formulas)."""
    op = "AdjustHue"
    xp, (images,) = namespace(ctx, inputs[0])
    dtype, images = images.dtype, wide(xp, images)
    delta = float(scalar(ctx, inputs[1], op, "delta"))
    r, g, b = _channels(op, xp, images, min_rank=3)
    v_max = xp.maximum(xp.maximum(r, g), b)
    v_min = xp.minimum(xp.minimum(r, g), b)
    # sextant (as TensorFlow branches: ties may fall either side) and the middle component
    def sextant(k):
        return xp.full_like(r, float(k))
    r_lt_g = r < g
    category = xp.where(r_lt_g, xp.where(b < r, sextant(1), xp.where(b > g, sextant(3), sextant(2))),
                        xp.where(b < g, sextant(0), xp.where(b > r, sextant(4), sextant(5))))
    mid = xp.where(r_lt_g, xp.where(b < r, r, xp.where(b > g, g, b)),
                   xp.where(b < g, g, xp.where(b > r, r, b)))
    flat = v_max == v_min
    span = xp.where(flat, xp.ones_like(v_max), v_max - v_min)
    ratio = (mid - v_min) / span
    increasing = (category % 2) == 0
    hue = xp.where(flat, xp.zeros_like(ratio), category + xp.where(increasing, ratio, 1 - ratio))
    hue = hue + float(_F(delta) * _F(6))  # in [-6, 12): one wrap brings it to [0, 6)
    hue = xp.where(hue < 0, hue + 6, hue)
    hue = xp.where(hue >= 6, hue - 6, hue)
    category = xp.floor(hue)
    ratio = hue - category
    ratio = xp.where((category % 2) == 0, ratio, 1 - ratio)
    middle = v_min + ratio * (v_max - v_min)
    rgb = _sextant_to_rgb(xp, category, v_min, middle, v_max, default=5)
    return [astype(xp, xp.stack(rgb, axis=-1), dtype)]


@op_kernel("AdjustSaturation")
def adjust_saturation(ctx, inputs, attrs):
    """Scale saturation (clamped to [0, 1]) in HSV, with TensorFlow's sextant HSV-to-RGB."""
    op = "AdjustSaturation"
    xp, (images,) = namespace(ctx, inputs[0])
    dtype, images = images.dtype, wide(xp, images)
    factor = float(_F(scalar(ctx, inputs[1], op, "scale")))
    h, s, v = rgb_to_hsv(xp, *_channels(op, xp, images, min_rank=3))
    s = xp.clip(s * factor, 0, 1)
    chroma = s * v
    low = v - chroma
    dh = h * 6
    category = xp.floor(dh)  # static_cast<int> (dh >= 0)
    wrapped = dh - 2 * xp.floor(dh / 2)  # dh mod 2, in [0, 2)
    wrapped = xp.where(wrapped >= 2, wrapped - 2, wrapped)
    x = chroma * (1 - xp.abs(wrapped - 1))
    zero = xp.zeros_like(x)
    rgb = _sextant_to_rgb(xp, category, zero, x, chroma)
    return [astype(xp, xp.stack([c + low for c in rgb], axis=-1), dtype)]


@op_kernel("AdjustContrastv2")
def adjust_contrast(ctx, inputs, attrs):
    """(x - mean) * factor + mean, the mean per image and channel over height and width."""
    xp, (images,) = namespace(ctx, inputs[0])
    if images.ndim < 3:
        fail("AdjustContrastv2", f"input must be at least 3-D, got shape {tuple(images.shape)}")
    dtype, images = images.dtype, wide(xp, images)
    factor = float(np_dtype(images.dtype).type(
        scalar(ctx, inputs[1], "AdjustContrastv2", "contrast_factor")))
    mean = xp.mean(images, axis=(-3, -2), keepdims=True) if images.size else images
    return [astype(xp, (images - mean) * factor + mean, dtype)]


# --- ExtractImagePatches ---------------------------------------------------------------------

@op_kernel("ExtractImagePatches")
def extract_image_patches(ctx, inputs, attrs):
    """Each output pixel holds its ksize window (dilated by rates), flattened as (row, col,
    depth); SAME pads with zeros."""
    op = "ExtractImagePatches"
    xp, (images,) = namespace(ctx, inputs[0])
    if images.ndim != 4:
        fail(op, f"input must be 4-dimensional, got shape {tuple(images.shape)}")
    ksizes, strides, rates = (list(attrs.get(k, [1, 1, 1, 1])) for k in ("ksizes", "strides", "rates"))
    for name, values in (("ksizes", ksizes), ("strides", strides), ("rates", rates)):
        if len(values) != 4 or values[0] != 1 or values[3] != 1:
            fail(op, f"{name} must be [1, r, c, 1], got {values}")
    padding = attrs.get("padding", "VALID")
    in_sizes = [int(images.shape[1]), int(images.shape[2])]
    if padding == "VALID":
        # C++ division truncates: a window up to stride - 1 larger than the input gives size 0
        outs = [math.trunc((n - ((k - 1) * r + 1) + s) / s)
                for n, k, r, s in zip(in_sizes, ksizes[1:3], rates[1:3], strides[1:3])]
        pads = [(0, 0), (0, 0)]
        if min(outs) < 0:
            fail(op, f"Computed output size would be negative: {min(outs)} (input {in_sizes}, "
                     f"ksizes {ksizes}, strides {strides}, rates {rates})")
    else:
        outs, pads = window_geometry(op, in_sizes, ksizes[1:3], strides[1:3], rates[1:3], padding)
    batch, depth = int(images.shape[0]), int(images.shape[3])
    ctx.check_alloc([batch, *outs, ksizes[1] * ksizes[2] * depth], np_dtype(images.dtype), op)
    padded = pad(xp, images, [(0, 0), *pads, (0, 0)])
    taps = [padded[_window_slices((i, j), rates[1:3], strides[1:3], outs)]
            for i in range(ksizes[1]) for j in range(ksizes[2])]
    if not taps:
        return [xp.zeros((batch, *outs, 0), dtype=images.dtype)]
    return [xp.concat(taps, axis=-1)]


@op_kernel("CombinedNonMaxSuppression")
def combined_non_max_suppression(ctx, inputs, attrs):
    """Per image: hard NMS per class (boxes shared across classes when q = 1), then the
    best ``max_total_size`` over all classes by score; boxes clipped to [0, 1] with
    clip_boxes. Outputs are zero-padded. Equal scores are ordered by class then selection
    (TensorFlow's unstable sort leaves their order unspecified)."""
    op = "CombinedNonMaxSuppression"
    boxes = np.asarray(ctx.to_numpy(inputs[0])).astype(_F)
    scores = np.asarray(ctx.to_numpy(inputs[1])).astype(_F)
    per_class = int(scalar(ctx, inputs[2], op, "max_output_size_per_class"))
    total = int(scalar(ctx, inputs[3], op, "max_total_size"))
    iou_threshold = _threshold(ctx, inputs[4], _F)
    score_threshold = _threshold(ctx, inputs[5], _F)
    if boxes.ndim != 4 or boxes.shape[-1] != 4:
        fail(op, f"boxes must be 4-D [batch, num_boxes, q, 4], got shape {boxes.shape}")
    if scores.ndim != 3 or scores.shape[:2] != boxes.shape[:2]:
        fail(op, f"scores must be 3-D [batch, num_boxes, num_classes] matching boxes, got {scores.shape}")
    batch, num_boxes, q, _ = boxes.shape
    classes = scores.shape[2]
    if q != 1 and q != classes:
        fail(op, f"third dimension of boxes must be either 1 or {classes}, got {q}")
    if per_class <= 0 or total <= 0:
        fail(op, "max_size_per_class and max_total_size must be > 0")
    if not 0 <= iou_threshold <= 1:
        fail(op, "iou_threshold must be in [0, 1]")
    detections = min(total, per_class * classes) if attrs.get("pad_per_class", False) else total
    out_boxes = np.zeros((batch, detections, 4), _F)
    out_scores = np.zeros((batch, detections), _F)
    out_classes = np.zeros((batch, detections), _F)
    valid = np.zeros(batch, np.int32)
    for b in range(batch):
        found = []  # (score, class, box)
        for c in range(classes):
            class_boxes = boxes[b, :, c if q > 1 else 0, :]
            corners = _corners(class_boxes)
            selected, _ = greedy_suppression(
                scores[b, :, c], lambda i, others, corners=corners: _iou_with(corners, i, others),
                min(per_class, num_boxes), iou_threshold, score_threshold)
            found.extend((scores[b, i, c], c, class_boxes[i]) for i in selected)
        found.sort(key=lambda item: -item[0])
        found = found[:detections]
        valid[b] = len(found)
        for k, (score, c, box) in enumerate(found):
            out_boxes[b, k] = np.clip(box, 0, 1) if attrs.get("clip_boxes", True) else box
            out_scores[b, k] = score
            out_classes[b, k] = c
    return [out_boxes, out_scores, out_classes, valid]
