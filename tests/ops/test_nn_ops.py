"""NN kernels against TensorFlow: activations, softmax, bias, convolutions, pooling, batch norm, LRN."""
from __future__ import annotations

import numpy as np
import pytest

from harness import BACKENDS, check_op
from tf_call import (BFLOAT16, compare, compare_error, random, skip_unless_tf_supports, tf,
                     tf_outputs, tf_supports)

# Cases we do not run, with the reason (also listed in tests/ops/EXCLUSIONS.md).
EXCLUDED = {
    ("Conv2D", "float32/float16", "empty batch"):
        "TensorFlow's oneDNN Conv2D (float32; float16 too on CPUs with AVX512-FP16) returns the "
        "input's channel count for an empty batch (shape (0, 4, 4, 2) for 3 output channels); "
        "the oracle there is TensorFlow's float64 (Eigen) kernel",
    ("FusedBatchNorm*", "reserve spaces"):
        "reserve_space outputs are implementation scratch: with is_training=False TensorFlow's "
        "Eigen kernel (half floats, 5-D) leaves uninitialized memory in reserve_space_1/2, its "
        "oneDNN float32 4-D kernel the mean and variance (ours, always); reserve_space_3 is () "
        "on the Eigen kernel, (0,) on oneDNN (ours); only their dtype is compared there",
}

# Where TensorFlow's CPU kernels refuse a layout or dilation (NCHW for most dtypes, dilated
# Conv3D/depthwise/backprop-input) or ignore it (DepthwiseConv2dNativeBackpropInput drops its
# dilations), the oracle is TensorFlow on the NHWC transpose with a zero-dilated filter.

ACTIVATIONS = {"Relu": (-3, 3), "Relu6": (-3, 9), "Elu": (-4, 3), "Selu": (-4, 3),
               "LeakyRelu": (-3, 3), "Softplus": (-20, 20), "Softsign": (-5, 5)}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16, BFLOAT16],
                         ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("op", sorted(ACTIVATIONS))
def test_activations(op, dtype, backend):
    rng = np.random.default_rng(20)
    low, high = ACTIVATIONS[op]
    for shape in [(), (0, 2), (4, 5), (2, 3, 4)]:
        x = random(rng, shape, dtype, low, high)
        skip_unless_tf_supports(op, [x])
        compare(op, [x], backend=backend)
    if op == "LeakyRelu":
        compare(op, [random(rng, (3, 4), dtype, low, high)], {"alpha": 0.01}, backend=backend)
        compare(op, [random(rng, (3, 4), dtype, low, high)], {"alpha": 1.7}, backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_gelu_graphs(backend):
    """There is no Gelu op: tf.nn.gelu is traced as 0.5 * x * Erfc(-x / sqrt 2), older Keras
    as 0.5 * x * (1 + Erf(x / sqrt 2)); both chains of our kernels match the same TensorFlow ops.
    (Eager tf.nn.gelu's float64 result differs from its own expression by ~4e-7 relative;
    the expression, and ours, agree with scipy's erfc.)"""
    from harness import assert_same, run_kernel

    def kernel(op, *inputs):
        return run_kernel(op, list(inputs), backend=backend)[0]

    for dtype in (np.float32, np.float64):
        x = np.linspace(-8, 8, 2001).astype(dtype)
        half, root_half = np.asarray(0.5, dtype), np.asarray(0.7071067811865476, dtype)
        erfc_form = kernel("Mul", kernel("Mul", half, x),
                           kernel("Erfc", kernel("Mul", kernel("Neg", x), root_half)))
        expected = 0.5 * x * tf.math.erfc(-x * root_half)
        assert_same(erfc_form, expected.numpy(), what=f"gelu {backend}")
        erf_form = kernel("Mul", kernel("Mul", half, x),
                          kernel("AddV2", np.asarray(1, dtype), kernel("Erf", kernel("Mul", x, root_half))))
        expected = 0.5 * x * (1 + tf.math.erf(x * root_half))
        assert_same(erf_form, expected.numpy(), what=f"keras 2 gelu {backend}")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("op", ["Relu", "Relu6"])
def test_integer_relu(op, backend):
    rng = np.random.default_rng(21)
    for dtype in (np.int32, np.int8, np.int64, np.uint8):
        x = random(rng, (3, 4), dtype, -1, 1)
        skip_unless_tf_supports(op, [x])
        compare(op, [x], backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax"])
def test_softmax(op, backend):
    rng = np.random.default_rng(22)
    for dtype in (np.float32, np.float64, np.float16, BFLOAT16):
        for shape in [(5,), (3, 4), (2, 3, 4), (2, 0), (0, 3)]:
            compare(op, [random(rng, shape, dtype, -10, 10)], backend=backend)
    compare(op, [np.array([[1000.0, 0.0, -1000.0]], np.float32)], backend=backend)
    # one row and a few: row sums of exps above 1, below 1 (exps subnormal in float32),
    # huge but finite, beyond float32, overflowing (numpy's exp(x) / sum form and its fallback)
    rows = [[2.0, -1.0, 0.5, 0.0], [-30.0, -31.0, -29.5, -40.0], [-100.0, -103.0, -95.0, -110.0],
            [85.0, 80.0, 0.0, -3.0], [88.5, 88.5, 88.5, 88.5], [800.0, 0.0, 1.0, 2.0],
            [0.0, -95.0, -103.0, -745.0]]
    for dtype in (np.float32, np.float64):
        for row in rows:
            compare(op, [np.array([row], dtype)], backend=backend)
            compare(op, [np.array([rows[0], row, rows[0][::-1]], dtype)], backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("op", ["BiasAdd", "BiasAddV1"])
def test_bias_add(op, backend):
    rng = np.random.default_rng(23)
    formats = ["NHWC", "NCHW"] if op == "BiasAdd" else ["NHWC"]
    for dtype in (np.float32, np.int32, np.float16, np.complex64):
        for shape in [(3, 4), (2, 3, 4), (2, 3, 4, 5), (1, 2, 3, 4, 2), (0, 3)]:
            for data_format in formats:
                channels = shape[1] if data_format == "NCHW" else shape[-1]
                value, bias = random(rng, shape, dtype), random(rng, (channels,), dtype)
                attrs = {"data_format": data_format} if op == "BiasAdd" else {}
                compare(op, [value, bias], attrs, backend=backend)


# --------------------------------------------------------------------------- convolutions

def _nchw(x):
    return np.ascontiguousarray(np.moveaxis(x, -1, 1))


def _nhwc(x):
    return np.ascontiguousarray(np.moveaxis(x, 1, -1))


def _channels_last_list(values):
    values = list(values)
    return [values[0], *values[2:], values[1]]


def _dilate_filter(w, dilations):
    """A filter with zeros between its taps: the same convolution with dilations of 1."""
    shape = [(k - 1) * d + 1 for k, d in zip(w.shape, dilations)] + list(w.shape[len(dilations):])
    out = np.zeros(shape, w.dtype)
    out[tuple(slice(None, None, d) for d in dilations)] = w
    return out


def layout_oracle(op, inputs, attrs, tensors=(0,), vectors=(), filter_index=None, force=False):
    """TensorFlow's outputs; where its CPU kernel refuses, computed channels-last and undilated."""
    if not force:
        try:
            return tf_outputs(op, inputs, attrs)
        except (tf.errors.UnimplementedError, tf.errors.InvalidArgumentError):
            pass
    attrs, inputs = dict(attrs), list(inputs)
    channels_first = attrs.get("data_format", "NHWC").startswith("NC")
    if channels_first:
        attrs["data_format"] = "NHWC" if inputs[tensors[0]].ndim == 4 else "NDHWC"
        for key in ("strides", "dilations", "ksize"):
            if key in attrs:
                attrs[key] = _channels_last_list(attrs[key])
        if "explicit_paddings" in attrs:
            pairs = [attrs["explicit_paddings"][i:i + 2] for i in range(0, len(attrs["explicit_paddings"]), 2)]
            attrs["explicit_paddings"] = [v for pair in _channels_last_list(pairs) for v in pair]
        for i in tensors:
            inputs[i] = _nhwc(inputs[i])
        for i in vectors:
            inputs[i] = np.array(_channels_last_list(inputs[i]), inputs[i].dtype)
    dilations = attrs.get("dilations", [1])[1:-1]
    if filter_index is not None and any(d != 1 for d in dilations):
        inputs[filter_index] = _dilate_filter(inputs[filter_index], dilations)
        attrs["dilations"] = [1] * len(attrs["dilations"])
    outputs = tf_outputs(op, inputs, attrs)
    return [_nchw(o) for o in outputs] if channels_first else outputs


def _layout(values, data_format):
    """A per-dimension NHWC attr list in data_format order."""
    values = list(values)
    return [values[0], values[-1], *values[1:-1]] if data_format.startswith("NC") else values


def _explicit(pads, data_format):
    """Spatial (before, after) pairs as TensorFlow's flat explicit_paddings in data_format order."""
    pairs = [(0, 0), *pads, (0, 0)]
    return [v for pair in _layout(pairs, data_format) for v in pair]


CONV2D_CASES = [  # (input NHWC, filter HWIO, strides, dilations, padding, explicit pads)
    ((2, 7, 6, 3), (3, 3, 3, 4), (1, 1), (1, 1), "VALID", None),
    ((2, 7, 6, 3), (3, 3, 3, 4), (2, 2), (1, 1), "SAME", None),
    ((1, 8, 9, 2), (2, 3, 2, 3), (2, 3), (1, 1), "SAME", None),
    ((1, 8, 9, 2), (3, 2, 2, 3), (1, 1), (2, 3), "SAME", None),
    ((1, 9, 9, 2), (3, 3, 2, 2), (2, 2), (2, 2), "VALID", None),
    ((2, 5, 6, 3), (3, 3, 3, 2), (1, 2), (1, 1), "EXPLICIT", [(1, 2), (0, 3)]),
    ((1, 5, 5, 1), (1, 1, 1, 5), (1, 1), (1, 1), "VALID", None),
    ((1, 4, 4, 4), (2, 2, 2, 6), (1, 1), (1, 1), "SAME", None),   # 2 groups
    ((2, 9, 8, 6), (7, 7, 1, 6), (1, 1), (1, 1), "SAME", None),   # groups = channels (ConvNeXt)
    ((1, 6, 7, 3), (3, 3, 1, 6), (2, 1), (1, 2), "VALID", None),  # groups = channels, 2 outputs each
    ((1, 1, 1, 4), (1, 1, 1, 4), (1, 1), (1, 1), "SAME", None),   # groups = channels, 1x1
    ((0, 4, 4, 2), (2, 2, 2, 3), (1, 1), (1, 1), "SAME", None),   # empty batch
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("data_format", ["NHWC", "NCHW"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16, np.int32],
                         ids=lambda d: np.dtype(d).name)
def test_conv2d(dtype, data_format, backend):
    rng = np.random.default_rng(24)
    for x_shape, w_shape, strides, dilations, padding, pads in CONV2D_CASES:
        x, w = random(rng, x_shape, dtype, -1, 1), random(rng, w_shape, dtype, -1, 1)
        attrs = {"strides": _layout([1, *strides, 1], data_format), "padding": padding,
                 "dilations": _layout([1, *dilations, 1], data_format), "data_format": data_format}
        if pads:
            attrs["explicit_paddings"] = _explicit(pads, data_format)
        if data_format == "NCHW":
            x = _nchw(x)
        if x.shape[0] == 0 and np.dtype(dtype) in (np.float32, np.float16):
            # EXCLUDED[("Conv2D", "float32/float16", "empty batch")]: the float64 kernel's shape
            wide = [x.astype(np.float64), w.astype(np.float64)]
            expected = [o.astype(dtype) for o in layout_oracle("Conv2D", wide, attrs, filter_index=1)]
        else:
            expected = layout_oracle("Conv2D", [x, w], attrs, filter_index=1)
        check_op("Conv2D", [x, w], attrs, expected, backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("data_format", ["NHWC", "NCHW"])
def test_depthwise_conv2d(data_format, backend):
    rng = np.random.default_rng(25)
    for dtype in (np.float32, np.float64, np.float16):
        for x_shape, w_shape, strides, dilations, padding, pads in [
                ((2, 6, 7, 3), (3, 3, 3, 1), (1, 1), (1, 1), "SAME", None),
                ((1, 7, 7, 2), (3, 2, 2, 3), (2, 2), (1, 1), "VALID", None),
                ((1, 8, 8, 2), (3, 3, 2, 2), (1, 1), (2, 2), "SAME", None),
                ((1, 5, 6, 2), (2, 2, 2, 2), (2, 2), (1, 1), "EXPLICIT", [(1, 0), (2, 1)])]:
            x, w = random(rng, x_shape, dtype, -1, 1), random(rng, w_shape, dtype, -1, 1)
            attrs = {"strides": _layout([1, *strides, 1], data_format), "padding": padding,
                     "dilations": _layout([1, *dilations, 1], data_format),
                     "data_format": data_format}
            if pads:
                attrs["explicit_paddings"] = _explicit(pads, data_format)
            if data_format == "NCHW":
                x = _nchw(x)
            expected = layout_oracle("DepthwiseConv2dNative", [x, w], attrs, filter_index=1)
            check_op("DepthwiseConv2dNative", [x, w], attrs, expected, backend=backend)


BACKPROP_CASES = [  # (input NHWC, filter, strides, dilations, padding, explicit pads)
    ((2, 7, 6, 3), (3, 3, 3, 4), (1, 1), (1, 1), "VALID", None),
    ((2, 7, 6, 3), (3, 3, 3, 4), (2, 2), (1, 1), "SAME", None),
    ((1, 8, 9, 2), (2, 3, 2, 3), (3, 3), (1, 1), "VALID", None),   # rows the windows never reach
    ((1, 8, 9, 2), (3, 2, 2, 3), (1, 1), (2, 3), "SAME", None),
    ((1, 6, 5, 2), (3, 3, 2, 2), (2, 2), (1, 1), "EXPLICIT", [(2, 1), (0, 2)]),
]


def _conv_output_shape(x_shape, w_shape, strides, dilations, padding, pads):
    out = []
    for i, (n, k, s, d) in enumerate(zip(x_shape[1:-1], w_shape[:-2], strides, dilations)):
        effective = (k - 1) * d + 1
        if padding == "SAME":
            out.append(-(-n // s))
        elif padding == "VALID":
            out.append((n - effective) // s + 1)
        else:
            out.append((n + sum(pads[i]) - effective) // s + 1)
    return (x_shape[0], *out)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("data_format", ["NHWC", "NCHW"])
@pytest.mark.parametrize("op", ["Conv2DBackpropInput", "DepthwiseConv2dNativeBackpropInput"])
def test_conv2d_backprop_input(op, data_format, backend):
    rng = np.random.default_rng(26)
    for dtype in (np.float32, np.float64):
        for x_shape, w_shape, strides, dilations, padding, pads in BACKPROP_CASES:
            if op.startswith("Depthwise"):
                w_shape = (*w_shape[:2], x_shape[-1], 2)
                out_channels = x_shape[-1] * 2
            else:
                out_channels = w_shape[-1]
            w = random(rng, w_shape, dtype, -1, 1)
            dy = random(rng, (*_conv_output_shape(x_shape, w_shape, strides, dilations, padding, pads),
                              out_channels), dtype, -1, 1)
            sizes = np.array(x_shape, np.int32)
            if data_format == "NCHW":
                dy, sizes = _nchw(dy), np.array(_layout(x_shape, "NCHW"), np.int32)
            attrs = {"strides": _layout([1, *strides, 1], data_format), "padding": padding,
                     "dilations": _layout([1, *dilations, 1], data_format),
                     "data_format": data_format}
            if pads:
                attrs["explicit_paddings"] = _explicit(pads, data_format)
            expected = layout_oracle(op, [sizes, w, dy], attrs, tensors=(2,), vectors=(0,),
                                     filter_index=1, force=dilations != (1, 1))
            check_op(op, [sizes, w, dy], attrs, expected, backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("data_format", ["NDHWC", "NCDHW"])
def test_conv3d_and_backprop(data_format, backend):
    rng = np.random.default_rng(27)
    for dtype in (np.float32, np.float64):
        for x_shape, w_shape, strides, dilations, padding in [
                ((2, 5, 6, 4, 2), (2, 3, 2, 2, 3), (1, 1, 1), (1, 1, 1), "VALID"),
                ((1, 5, 6, 7, 2), (3, 3, 3, 2, 2), (2, 1, 2), (1, 1, 1), "SAME"),
                ((1, 6, 6, 6, 1), (2, 2, 2, 1, 2), (1, 1, 1), (2, 1, 2), "SAME")]:
            x, w = random(rng, x_shape, dtype, -1, 1), random(rng, w_shape, dtype, -1, 1)
            attrs = {"strides": _layout([1, *strides, 1], data_format), "padding": padding,
                     "dilations": _layout([1, *dilations, 1], data_format),
                     "data_format": data_format}
            inputs = [_nchw(x) if data_format == "NCDHW" else x, w]
            check_op("Conv3D", inputs, attrs, layout_oracle("Conv3D", inputs, attrs, filter_index=1),
                     backend=backend)
            dy = random(rng, (*_conv_output_shape(x_shape, w_shape, strides, dilations, padding, None),
                              w_shape[-1]), dtype, -1, 1)
            sizes = np.array(_layout(x_shape, data_format), np.int32)
            inputs = [sizes, w, _nchw(dy) if data_format == "NCDHW" else dy]
            expected = layout_oracle("Conv3DBackpropInputV2", inputs, attrs, tensors=(2,),
                                     vectors=(0,), filter_index=1)
            check_op("Conv3DBackpropInputV2", inputs, attrs, expected, backend=backend)


def test_conv_window_larger_than_input_and_bad_groups():
    x = np.ones((1, 2, 2, 4), np.float64)
    compare("Conv2D", [x, np.ones((3, 3, 4, 1), np.float64)], {"strides": [1, 1, 1, 1], "padding": "VALID"})
    compare_error("Conv2D", [x, np.zeros((1, 1, 3, 2), np.float64)],
                  {"strides": [1, 1, 1, 1], "padding": "VALID"})


# --------------------------------------------------------------------------- pooling

POOL_CASES = [  # (input NHWC, window, strides, padding)
    ((2, 6, 7, 3), (2, 2), (2, 2), "VALID"),
    ((2, 6, 7, 3), (3, 3), (2, 2), "SAME"),
    ((1, 5, 5, 2), (3, 2), (1, 2), "SAME"),
    ((1, 5, 5, 2), (1, 1), (1, 1), "VALID"),
    ((1, 4, 4, 2), (4, 4), (3, 3), "SAME"),
    ((0, 4, 4, 2), (2, 2), (1, 1), "SAME"),
]


def _tf_pools(op, dtype, rank=4) -> bool:
    probe = np.zeros((1,) * rank, dtype)
    ones = [1] * rank
    if op == "MaxPoolV2":
        return tf_supports(op, [probe, np.array(ones, np.int32), np.array(ones, np.int32)],
                           {"padding": "VALID"})
    return tf_supports(op, [probe], {"ksize": ones, "strides": ones, "padding": "VALID"})


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("data_format", ["NHWC", "NCHW"])
@pytest.mark.parametrize("op", ["MaxPool", "AvgPool", "MaxPoolV2"])
def test_pool2d(op, data_format, backend):
    rng = np.random.default_rng(28)
    dtypes = [np.float32, np.float64, np.float16, BFLOAT16]
    if op != "AvgPool":
        dtypes += [np.int32, np.int8, np.uint8]
    for dtype in [d for d in dtypes if _tf_pools(op, d)]:  # TensorFlow's dtypes only
        for x_shape, window, strides, padding in POOL_CASES:
            x = random(rng, x_shape, dtype, -2, 2)
            if data_format == "NCHW":
                x = _nchw(x)
            ksize, steps = _layout([1, *window, 1], data_format), _layout([1, *strides, 1], data_format)
            attrs = {"padding": padding, "data_format": data_format}
            if op == "MaxPoolV2":
                inputs = [x, np.array(ksize, np.int32), np.array(steps, np.int32)]
            else:
                inputs, attrs = [x], {**attrs, "ksize": ksize, "strides": steps}
            expected = layout_oracle(op, inputs, attrs, vectors=(1, 2) if op == "MaxPoolV2" else ())
            check_op(op, inputs, attrs, expected, backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_max_pool_explicit_padding(backend):
    rng = np.random.default_rng(29)
    x = random(rng, (2, 5, 6, 3), np.float32)
    compare("MaxPool", [x], {"ksize": [1, 3, 2, 1], "strides": [1, 2, 1, 1], "padding": "EXPLICIT",
                             "explicit_paddings": [0, 0, 1, 2, 0, 1, 0, 0]}, backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("data_format", ["NDHWC", "NCDHW"])
@pytest.mark.parametrize("op", ["MaxPool3D", "AvgPool3D"])
def test_pool3d(op, data_format, backend):
    rng = np.random.default_rng(30)
    for dtype in [d for d in (np.float32, np.float64, np.float16) if _tf_pools(op, d, rank=5)]:
        for x_shape, window, strides, padding in [
                ((2, 4, 5, 6, 2), (2, 2, 2), (2, 2, 2), "VALID"),
                ((1, 5, 4, 5, 3), (3, 2, 3), (2, 1, 2), "SAME")]:
            x = random(rng, x_shape, dtype)
            attrs = {"ksize": _layout([1, *window, 1], data_format), "padding": padding,
                     "strides": _layout([1, *strides, 1], data_format), "data_format": data_format}
            inputs = [_nchw(x) if data_format == "NCDHW" else x]
            check_op(op, inputs, attrs, layout_oracle(op, inputs, attrs), backend=backend)


# --------------------------------------------------------------------------- normalization

@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("op", ["FusedBatchNorm", "FusedBatchNormV2", "FusedBatchNormV3"])
def test_fused_batch_norm(op, backend):
    rng = np.random.default_rng(31)
    x_dtypes = [np.float32] if op == "FusedBatchNorm" else [np.float32, np.float16, BFLOAT16]
    for x_dtype in x_dtypes:
        for shape, data_format in [((2, 3, 4, 5), "NHWC"), ((2, 5, 3, 4), "NCHW"),
                                   ((2, 3, 2, 2, 4), "NDHWC"), ((2, 4, 3, 2, 2), "NCDHW")]:
            if op != "FusedBatchNormV3" and len(shape) == 5:
                continue
            channels = shape[1] if data_format.startswith("NC") else shape[-1]
            x = random(rng, shape, x_dtype)
            scale, offset, mean = (random(rng, (channels,), np.float32) for _ in range(3))
            variance = random(rng, (channels,), np.float32, 0.5, 2)
            for is_training, factor in [(False, 1.0), (True, 1.0), (True, 0.3)]:
                attrs = {"epsilon": 0.001, "data_format": data_format, "is_training": is_training}
                if op == "FusedBatchNormV3":
                    attrs["exponential_avg_factor"] = factor
                elif factor != 1.0:
                    continue
                # EXCLUDED[("FusedBatchNorm*", "reserve spaces")]
                compare(op, [x, scale, offset, mean, variance], attrs, backend=backend,
                        tolerance=dict(rtol=1e-4, atol=1e-5) if is_training else None,
                        values_of=(0, 1, 2, 3, 4) if is_training else (0, 1, 2))


@pytest.mark.parametrize("backend", BACKENDS)
def test_lrn(backend):
    rng = np.random.default_rng(32)
    for dtype in (np.float32, np.float16):
        x = random(rng, (2, 3, 4, 7), dtype)
        compare("LRN", [x], backend=backend)
        compare("LRN", [x], {"depth_radius": 2, "bias": 2.0, "alpha": 0.1, "beta": 0.75},
                backend=backend)
        compare("LRN", [x], {"depth_radius": 0, "bias": 0.5, "alpha": 1.0, "beta": 1.0},
                backend=backend)


# --------------------------------------------------------------------------- losses

@pytest.mark.parametrize("backend", BACKENDS)
def test_softmax_cross_entropy(backend):
    rng = np.random.default_rng(33)
    for dtype in (np.float32, np.float64, np.float16):
        features = random(rng, (4, 5), dtype, -5, 5)
        labels = rng.dirichlet(np.ones(5), 4).astype(dtype)
        compare("SoftmaxCrossEntropyWithLogits", [features, labels], backend=backend)
        compare("SoftmaxCrossEntropyWithLogits", [features, labels[:1]], backend=backend)
        for label_dtype in (np.int32, np.int64):
            sparse = rng.integers(0, 5, 4).astype(label_dtype)
            compare("SparseSoftmaxCrossEntropyWithLogits", [features, sparse], backend=backend)
    compare_error("SparseSoftmaxCrossEntropyWithLogits",
                  [random(rng, (2, 3), np.float32), np.array([0, 3], np.int32)], backend=backend)


# --------------------------------------------------------------------------- memory cap

def test_shape_driven_allocations_are_refused_before_they_happen():
    from harness import run_kernel
    from sm_notebook.errors import SavedModelError

    cap = {"memory_cap": 2**20}
    w = np.ones((3, 3, 2, 2), np.float32)
    with pytest.raises(SavedModelError, match="memory cap"):
        run_kernel("Conv2DBackpropInput", [np.array([1, 4000, 4000, 2], np.int32), w,
                                           np.ones((1, 1, 1, 2), np.float32)],
                   {"strides": [1, 4000, 4000, 1], "padding": "VALID"}, **cap)
    with pytest.raises(SavedModelError, match="memory cap"):
        run_kernel("Conv2D", [np.ones((1, 600, 600, 2), np.float32), w],
                   {"strides": [1, 1, 1, 1], "padding": "SAME"}, **cap)
    with pytest.raises(SavedModelError, match="memory cap"):
        run_kernel("MaxPool", [np.ones((1, 600, 600, 2), np.float32)],
                   {"ksize": [1, 1, 1, 1], "strides": [1, 1, 1, 1], "padding": "SAME"}, **cap)


def test_outputs_stay_on_the_backend_unless_it_lacks_their_dtype():
    """On array_api_strict, float32 results are backend arrays even when computed via numpy."""
    pytest.importorskip("array_api_strict")
    from sm_notebook.engine.context import KernelContext
    from sm_notebook.engine.ops.registry import get_kernel

    ctx = KernelContext("array_api_strict")
    half = np.ones((1, 2, 2, 3), np.float16)
    stats = [ctx.asarray(np.ones((3,), np.float32)) for _ in range(4)]
    outputs = get_kernel("FusedBatchNormV3").fn(ctx, [half, *stats], {"is_training": False})
    assert isinstance(outputs[0], np.ndarray) and outputs[0].dtype == np.float16
    assert all(not isinstance(o, np.ndarray) for o in outputs[1:])
    (resized,) = get_kernel("ResizeBilinear").fn(ctx, [half, ctx.asarray(np.array([3, 3], np.int32))], {})
    assert not isinstance(resized, np.ndarray)
