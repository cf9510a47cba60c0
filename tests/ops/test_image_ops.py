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


# --- crops, scale-and-translate, non-max suppression, colour, patches (image_extra_ops) -------

F32_EPS = float(np.finfo(np.float32).eps)


def _bounded(op, inputs, attrs, backend, roundings):
    """Ours and TensorFlow's float32 results agree within ``roundings`` float32 roundings of
    the largest magnitude involved (each side is within half of it of the exact value)."""
    from harness import run_kernel
    from tf_call import tf_outputs

    expected = tf_outputs(op, inputs, attrs)
    ours = run_kernel(op, inputs, attrs, backend=backend)
    for a, b in zip(ours, expected):
        assert a.shape == b.shape and a.dtype == b.dtype, (op, a.shape, b.shape, a.dtype, b.dtype)
        scale = max(float(np.max(np.abs(np.asarray(x, np.float64)), initial=0.0))
                    for x in list(inputs[:1]) + [b])
        eps = float(np.finfo(b.dtype).eps) if b.dtype.kind == "f" else 0.0
        np.testing.assert_allclose(a.astype(np.float64), b.astype(np.float64), rtol=0,
                                   atol=roundings * eps * max(scale, 1.0), err_msg=f"{op} {attrs}")
    return ours


CROP_BOXES = np.array([[0, 0, 1, 1], [0.1, 0.2, 0.7, 0.9], [-0.2, -0.1, 1.3, 0.8],
                       [0.8, 0.9, 0.1, 0.2], [0.5, 0.5, 0.5, 0.5], [1.2, 1.1, 1.5, 1.9]], np.float32)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("method", ["bilinear", "nearest"])
def test_crop_and_resize(method, backend):
    """Boxes inside, flipped, degenerate and partly or wholly outside the image; the 3 lerps
    of bilinear sampling are 6 roundings."""
    rng = np.random.default_rng(42)
    for dtype in [np.float32, np.float64, np.uint8, np.int32, np.float16]:
        images = random(rng, (2, 5, 6, 3), dtype, 0, 10)
        for crop in [(3, 4), (1, 1), (7, 2)]:
            for extrapolation in (0.0, -1.5):
                box_index = np.array([0, 1, 1, 0, 1, 0], np.int32)
                _bounded("CropAndResize", [images, CROP_BOXES, box_index, np.array(crop, np.int32)],
                         {"method": method, "extrapolation_value": extrapolation}, backend, 6)
    images = random(rng, (1, 1, 1, 2), np.float32)
    _bounded("CropAndResize", [images, CROP_BOXES, np.zeros(6, np.int32), np.array([2, 2], np.int32)],
             {"method": method}, backend, 6)
    no_boxes = [random(rng, (1, 3, 3, 1), np.float32), np.zeros((0, 4), np.float32),
                np.zeros(0, np.int32), np.array([2, 2], np.int32)]
    _bounded("CropAndResize", no_boxes, {"method": method}, backend, 0)
    compare_error("CropAndResize", [images, CROP_BOXES[:1], np.array([3], np.int32),
                                    np.array([2, 2], np.int32)], backend=backend)


SAMPLING_KERNELS = ["lanczos1", "lanczos3", "lanczos5", "gaussian", "box", "triangle",
                    "keyscubic", "mitchellcubic"]
KERNEL_RADIUS = {"lanczos1": 1, "lanczos3": 3, "lanczos5": 5, "gaussian": 1.5, "box": 1,
                 "triangle": 1, "keyscubic": 2, "mitchellcubic": 2}


def _resample_roundings(kernel_type, scale, antialias):
    """Roundings in a separable resampling: each output sums at most 2 ceil(radius *
    max(1/scale, 1)) + 1 inputs per axis, one rounding per term and two per weight, plus 4."""
    reach = [2 * int(np.ceil(KERNEL_RADIUS[kernel_type] * (max(1 / s, 1) if antialias else 1))) + 1
             for s in scale]
    return 2 * (reach[0] + reach[1]) + 4


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("antialias", [True, False])
@pytest.mark.parametrize("kernel_type", SAMPLING_KERNELS)
def test_scale_and_translate(kernel_type, antialias, backend):
    """Down- and upscaling with and without translation, within _resample_roundings."""
    rng = np.random.default_rng(43)
    for dtype in [np.float32, np.uint8, np.float64]:
        images = random(rng, (2, 6, 7, 2), dtype, 0, 5)
        for size, scale, translation in [((3, 4), (0.5, 0.6), (0.0, 0.0)),
                                         ((11, 13), (2.2, 2.1), (0.3, -0.5)),
                                         ((1, 1), (0.1, 0.2), (0.0, 0.0)),
                                         ((6, 7), (1.0, 1.0), (2.5, -9.0))]:
            roundings = _resample_roundings(kernel_type, scale, antialias)
            _bounded("ScaleAndTranslate", [images, np.array(size, np.int32),
                                           np.array(scale, np.float32), np.array(translation, np.float32)],
                     {"kernel_type": kernel_type, "antialias": antialias}, backend, roundings)


def test_scale_and_translate_lowering_of_tf_image_resize():
    """tf.image.resize(antialias=True) and method='lanczos3' lower to ScaleAndTranslate:
    our kernel on the same arguments gives TensorFlow's resize."""
    from harness import run_kernel
    from tf_call import tf

    rng = np.random.default_rng(44)
    images = rng.uniform(0, 1, (1, 9, 10, 3)).astype(np.float32)
    for method, antialias, kernel_type in [("bilinear", True, "triangle"), ("lanczos3", False, "lanczos3"),
                                           ("bicubic", True, "keyscubic"), ("gaussian", False, "gaussian"),
                                           ("mitchellcubic", True, "mitchellcubic"), ("area", True, None)]:
        expected = tf.image.resize(images, [4, 6], method=method, antialias=antialias).numpy()
        if kernel_type is None:
            continue  # area is ResizeArea
        scale = np.array([4 / 9, 6 / 10], np.float32)
        ours = run_kernel("ScaleAndTranslate", [images, np.array([4, 6], np.int32), scale,
                                                np.zeros(2, np.float32)],
                          {"kernel_type": kernel_type, "antialias": antialias})[0]
        roundings = _resample_roundings(kernel_type, scale, antialias)
        np.testing.assert_allclose(ours, expected, rtol=0, atol=roundings * F32_EPS)  # |x| < 1


def _boxes(rng, n):
    corners = rng.uniform(0, 1, (n, 2, 2)).astype(np.float32)
    return np.concatenate([corners[:, 0], corners[:, 0] + 0.4 * corners[:, 1]], axis=1)


@pytest.mark.parametrize("backend", BACKENDS)
def test_non_max_suppression(backend):
    """Selected indices exact; V4's padding and count; V5's soft-NMS decayed scores within
    one rounding per decay step (at most the number of selected boxes)."""
    from harness import run_kernel
    from tf_call import tf_outputs

    rng = np.random.default_rng(45)
    for n in (0, 1, 7, 60):
        boxes = _boxes(rng, n)
        if n > 2:
            boxes[1] = boxes[0][[2, 3, 0, 1]]  # the same box given by its other corners
        scores = rng.uniform(0, 1, n).astype(np.float32)
        if n > 4:
            scores[3] = scores[4]  # a tie: the lower index first
        for max_out in (0, 3, 100):
            for iou, score_threshold in [(0.5, 0.0), (0.2, 0.3), (0.0, -1.0), (1.0, 0.5)]:
                common = [boxes, scores, np.int32(max_out), np.float32(iou)]
                for op, extra, attrs in [("NonMaxSuppressionV2", [], {}),
                                         ("NonMaxSuppressionV3", [np.float32(score_threshold)], {}),
                                         ("NonMaxSuppressionV4", [np.float32(score_threshold)],
                                          {"pad_to_max_output_size": True}),
                                         ("NonMaxSuppressionV4", [np.float32(score_threshold)], {})]:
                    compare(op, common + extra, attrs, backend=backend)
                for sigma in (0.0, 0.5):
                    inputs = common + [np.float32(score_threshold), np.float32(sigma)]
                    for pad in (False, True):
                        expected = tf_outputs("NonMaxSuppressionV5", inputs,
                                              {"pad_to_max_output_size": pad})
                        ours = run_kernel("NonMaxSuppressionV5", inputs,
                                          {"pad_to_max_output_size": pad}, backend=backend)
                        np.testing.assert_array_equal(ours[0], expected[0])
                        np.testing.assert_array_equal(ours[2], expected[2])
                        np.testing.assert_allclose(ours[1], expected[1], rtol=(n + 1) * F32_EPS, atol=0)
                overlaps = rng.uniform(0, 1, (n, n)).astype(np.float32)
                compare("NonMaxSuppressionWithOverlaps",
                        [overlaps, scores, np.int32(max_out), np.float32(iou), np.float32(score_threshold)],
                        backend=backend)
        compare("NonMaxSuppression", [boxes, scores, np.int32(5)], {"iou_threshold": 0.4}, backend=backend)
        # float16 boxes and scores (ours compute IoU in float32): the same selections
        half = [boxes.astype(np.float16), scores.astype(np.float16), np.int32(10), np.float16(0.4),
                np.float16(0.1)]
        compare("NonMaxSuppressionV3", half, backend=backend)
        compare("NonMaxSuppressionV5", half + [np.float16(0.0)], backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_colour_conversions_and_adjustments(backend):
    """Elementwise chains of at most 8 float32 operations on values below max|x|."""
    rng = np.random.default_rng(46)
    for dtype in [np.float32, np.float64, np.float16]:
        for shape in [(2, 4, 5, 3), (1, 1, 3), (0, 3), (3,)]:
            rgb = random(rng, shape, dtype, 0, 1)
            if rgb.size >= 9:
                rgb.reshape(-1, 3)[:3] = [[0.5, 0.5, 0.5], [0.0, 0.0, 0.0], [1.0, 0.2, 1.0]]
            for op, extra in [("RGBToHSV", []), ("HSVToRGB", []),
                              ("AdjustHue", [np.float32(0.2)]), ("AdjustHue", [np.float32(-0.7)]),
                              ("AdjustSaturation", [np.float32(0.3)]),
                              ("AdjustSaturation", [np.float32(1.7)])]:
                if op.startswith("Adjust") and len(shape) < 3:
                    compare_error(op, [rgb] + extra, backend=backend)  # at least 3-D
                elif tf_supports(op, [rgb] + extra):
                    _bounded(op, [rgb] + extra, {}, backend, 8)
            if len(shape) >= 3 and tf_supports("AdjustContrastv2", [rgb, np.float32(1.5)]):
                # the mean of h*w values: one rounding per term
                for factor in (0.3, 1.7):
                    _bounded("AdjustContrastv2", [rgb, np.float32(factor)], {}, backend,
                             4 + shape[-3] * shape[-2])


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("padding", ["VALID", "SAME"])
def test_extract_image_patches(padding, backend):
    rng = np.random.default_rng(47)
    for dtype in [np.float32, np.int32, np.uint8, np.complex64]:
        for shape in [(2, 5, 6, 3), (1, 1, 1, 1), (0, 4, 4, 2), (1, 3, 2, 0)]:
            images = random(rng, shape, dtype, 0, 10)
            for ksizes, strides, rates in [([1, 2, 3, 1], [1, 2, 1, 1], [1, 1, 2, 1]),
                                           ([1, 1, 1, 1], [1, 1, 1, 1], [1, 1, 1, 1]),
                                           ([1, 3, 3, 1], [1, 3, 2, 1], [1, 2, 1, 1])]:
                attrs = {"ksizes": ksizes, "strides": strides, "rates": rates, "padding": padding}
                too_small = padding == "VALID" and any(  # negative, C++ division truncating
                    n - ((k - 1) * r + 1) + st <= -st
                    for n, k, r, st in zip(shape[1:3], ksizes[1:3], rates[1:3], strides[1:3]))
                if too_small:
                    compare_error("ExtractImagePatches", [images], attrs, backend=backend)
                else:
                    compare("ExtractImagePatches", [images], attrs, backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("pad_per_class", [False, True])
@pytest.mark.parametrize("clip_boxes", [False, True])
def test_combined_non_max_suppression(clip_boxes, pad_per_class, backend):
    """Boxes per class (q = classes) or shared (q = 1), some outside [0, 1]; random scores
    (no ties: TensorFlow's unstable sort leaves equal scores in unspecified order)."""
    rng = np.random.default_rng(48)
    attrs = {"pad_per_class": pad_per_class, "clip_boxes": clip_boxes}
    for batch, boxes_n, classes, q in [(2, 20, 3, 3), (1, 20, 3, 1), (3, 1, 1, 1), (1, 0, 2, 1)]:
        corner = rng.uniform(-0.2, 1.0, (batch, boxes_n, q, 2))
        boxes = np.concatenate([corner, corner + rng.uniform(0, 0.5, corner.shape)], -1).astype(np.float32)
        scores = rng.uniform(0, 1, (batch, boxes_n, classes)).astype(np.float32)
        for per_class, total in [(4, 7), (2, 100), (10, 3)]:
            compare("CombinedNonMaxSuppression",
                    [boxes, scores, np.int32(per_class), np.int32(total), np.float32(0.4),
                     np.float32(0.2)], attrs, backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_image_extra_refusals(backend):
    """Requests TensorFlow refuses are refused with a SavedModelError."""
    boxes = np.array([[0, 0, 1, 1], [0, 0, 0.5, 0.5]], np.float32)
    scores = np.array([0.9, 0.8], np.float32)
    compare_error("NonMaxSuppressionV3", [boxes, scores, np.int32(2), np.float32(1.5), np.float32(0)],
                  backend=backend)
    compare_error("NonMaxSuppressionV3", [boxes, scores[:1], np.int32(2), np.float32(0.5), np.float32(0)],
                  backend=backend)
    compare_error("NonMaxSuppressionV3", [boxes, scores, np.array([2, 2], np.int32), np.float32(0.5),
                                          np.float32(0)], backend=backend)
    images = np.ones((1, 4, 4, 3), np.float32)
    compare_error("ScaleAndTranslate", [images, np.array([0, 2], np.int32), np.ones(2, np.float32),
                                        np.zeros(2, np.float32)], backend=backend)
    compare_error("CropAndResize", [images, boxes, np.zeros(2, np.int32), np.array([0, 2], np.int32)],
                  backend=backend)
    compare_error("CropAndResize", [images, boxes, np.zeros(1, np.int32), np.array([2, 2], np.int32)],
                  backend=backend)
    compare_error("AdjustHue", [np.ones((1, 4, 4, 2), np.float32), np.float32(0.1)], backend=backend)
    compare_error("RGBToHSV", [np.ones((4, 2), np.float32)], backend=backend)
    compare_error("ExtractImagePatches", [images], {"ksizes": [2, 1, 1, 1], "strides": [1, 1, 1, 1],
                                                    "rates": [1, 1, 1, 1], "padding": "VALID"},
                  backend=backend)
