"""Every optimisation agrees with the plain interpreter running the unoptimised plan.

Kernel fast paths (prepared with ``ctx.optimize``) are compared with the same kernels'
general array-API code; plan rewrites (constant folding, scale folding, pad absorption,
epilogue fusion, identity elision, While hoisting, straight-line compiled steps) with
``load(..., optimize=False)``.
Shapes are drawn by hypothesis, size-0 and size-1 dimensions included; every input is
read-only, so an in-place write into it raises, and inputs are checked unchanged after.

Float tolerances are derived, not picked: both paths compute the same sums in different
orders, so each is within ``gamma_k * M`` of the exact result (Higham's bound for a
length-``k`` sum, ``gamma_k = k u / (1 - k u)``, ``u`` the unit roundoff), where ``M`` is
the same computation on absolute values in float64; their difference is within twice that.
"""
from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import winograd_magnitude
from engine_graphs import Func, const, function, meta_graph, node, placeholder, save, signature

import sm_notebook.engine.ops  # noqa: F401
from sm_notebook.engine.context import KernelContext
from sm_notebook.engine.loader import load_model
from sm_notebook.engine.ops import registry

SETTINGS = settings(max_examples=25, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
FLOATS = [np.float16, np.float32, np.float64]
BFLOAT16 = ml_dtypes.bfloat16


def _readonly(*arrays):
    out = []
    for a in arrays:
        a = np.array(a)  # our own copy, then frozen
        a.flags.writeable = False
        out.append(a)
    return out


def _kernel(op, inputs, attrs, optimize):
    ctx = KernelContext("numpy", optimize=optimize)
    return [np.asarray(o) for o in registry.get_kernel(op).fn(ctx, list(inputs), dict(attrs))]


def _both(op, inputs, attrs):
    """(fast, general) outputs of one kernel; inputs verified unchanged afterwards."""
    before = [np.array(x, copy=True) for x in inputs]
    fast = _kernel(op, inputs, attrs, True)
    general = _kernel(op, inputs, attrs, False)
    for x, b in zip(inputs, before):
        np.testing.assert_array_equal(x, b)
    return fast, general


def _unit_roundoff(dtype) -> float:
    return float(np.finfo(dtype).eps) / 2


def _gamma(k: int, dtype) -> float:
    u = _unit_roundoff(dtype)
    return k * u / (1 - k * u) if k * u < 1 else np.inf


def _within(fast, general, bound):
    """|fast - general| <= bound elementwise, NaN where both are NaN, infs equal."""
    assert fast.shape == general.shape and fast.dtype == general.dtype
    f, g = fast.astype(np.float64), general.astype(np.float64)
    np.testing.assert_array_equal(np.isnan(f), np.isnan(g))
    finite = np.isfinite(f) & np.isfinite(g)
    np.testing.assert_array_equal(f[~finite & ~np.isnan(f)], g[~finite & ~np.isnan(g)])
    excess = np.abs(f - g)[finite] - np.broadcast_to(bound, f.shape)[finite]
    assert excess.size == 0 or excess.max() <= 0, f"exceeds the derived bound by {excess.max()}"


def _rounding(dtype, values):
    """Half an ulp of the final rounding to ``dtype`` (half floats compute in float32)."""
    return _unit_roundoff(dtype) * np.abs(values)


dims = st.integers(0, 3)
small = st.integers(1, 4)


# --------------------------------------------------------------------------- kernels

@SETTINGS
@given(data=st.data(), dtype=st.sampled_from(FLOATS + [BFLOAT16, np.int32, np.int64, np.uint8]),
       op=st.sampled_from(["AddV2", "Sub", "Mul", "Maximum", "Minimum", "Less", "Equal"]))
def test_binary_fast_path_is_the_general_path(data, dtype, op):
    shape = tuple(data.draw(st.lists(dims, max_size=3)))
    other = tuple(data.draw(st.sampled_from([shape, shape[1:], (), tuple(1 for _ in shape)])))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    x, y = _readonly(*(rng.integers(-20, 20, s).astype(dtype) for s in (shape, other)))
    fast, general = _both(op, [x, y], {"T": np.dtype(dtype)})
    np.testing.assert_array_equal(fast[0], general[0])


@SETTINGS
@given(data=st.data(), op=st.sampled_from(["AddV2", "Sub", "Mul", "BiasAdd"]))
def test_half_binary_in_float32_is_the_float16_kernel(monkeypatch, data, op):
    """float16 sums, differences and products computed in float32 and rounded once (the
    fast path for large arrays, here taken at every size, broadcasting or not) equal the
    float16 kernels."""
    from sm_notebook.engine.ops import math_ops, nn_ops
    monkeypatch.setattr(math_ops, "HALF_WIDE_MIN", 0)
    monkeypatch.setattr(nn_ops, "HALF_WIDE_MIN", 0)
    shape = tuple(data.draw(st.lists(dims, min_size=2 if op == "BiasAdd" else 1, max_size=4)))
    choices = [shape[-1:]] if op == "BiasAdd" else [shape, shape[-1:], (), shape[-2:], (1,) + shape[1:]]
    other = tuple(data.draw(st.sampled_from(choices)))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    x, y = _readonly(_half_specials(rng, shape), _half_specials(rng, other))
    fast, general = _both(op, [x, y], {"T": np.dtype(np.float16)})
    assert fast[0].dtype == general[0].dtype == np.float16
    np.testing.assert_array_equal(fast[0], general[0])


@SETTINGS
@given(data=st.data(), op=st.sampled_from(["MatMul", "BatchMatMulV2", "BatchMatMulV3", "Einsum"]))
def test_half_products_fast_path_is_the_general_path(data, op):
    """float16 MatMul / BatchMatMul (times a matrix) / two-operand Einsum on the fast path
    (the read-only operand widened once and kept, the einsum plan reused) equal the general
    path's float32 product rounded once, bit for bit; a new weight array is not confused
    with the kept one. Size-0 and size-1 dimensions, special values."""
    m, k, n = data.draw(dims), data.draw(dims), data.draw(dims)
    batch = tuple(data.draw(st.lists(dims, max_size=2))) if op != "MatMul" else ()
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    half = np.dtype(np.float16)
    attrs = {"T": half}
    if op == "BatchMatMulV3":
        attrs.update(Ta=half, Tb=half, Tout=half)
    if op == "Einsum":
        attrs["equation"] = "...mk,kn->...mn"
    kernel = registry.get_kernel(op)
    runs = {opt: kernel.prepare(_Node(op, attrs), KernelContext("numpy", optimize=opt))
            for opt in (True, False)}
    for _ in range(3):  # the kept float32 weights, then a new weight array
        x, w = _readonly(_half_specials(rng, batch + (m, k)), _half_specials(rng, (k, n)))
        for _ in range(2):
            fast, general = (np.asarray(runs[opt]([x, w])[0]) for opt in (True, False))
            assert fast.dtype == general.dtype == half and fast.shape == batch + (m, n)
            np.testing.assert_array_equal(fast.view(np.uint16), general.view(np.uint16))


@pytest.mark.parametrize("vectorised", [True, False])
def test_half_conversions_are_astype_bit_for_bit(monkeypatch, vectorised):
    """`half.to_half` / `half.to_float32` (the bit and table forms, or astype below their
    sizes) give astype's bits: every 4099th float32 bit pattern, every pattern near the
    float16 subnormal, normal and overflow boundaries and the NaNs, every float16 value;
    non-contiguous, size-0 and 0-d arrays keep their shapes."""
    from sm_notebook.engine import half
    monkeypatch.setattr(half, "NARROW_MIN", 0 if vectorised else 1 << 40)
    monkeypatch.setattr(half, "WIDEN_MIN", 0 if vectorised else 1 << 40)
    patterns = [np.arange(0, 2**32, 4099, dtype=np.uint64)]
    for edge in (0x33000000, 0x38800000, 0x477FF000, 0x7F800000):  # 2**-25, 2**-14, 65520, inf
        patterns.append(np.arange(edge - 2**14, min(edge + 2**14, 2**31), dtype=np.uint64))
    patterns.append(np.arange(0x7F800000, 2**31, 97, dtype=np.uint64))  # NaN payloads
    bits = np.concatenate(patterns)
    bits = np.concatenate([bits, bits + 2**31]).astype(np.uint32)  # both signs
    x = bits.view(np.float32)
    with np.errstate(all="ignore"):  # astype warns of overflow (plans run with warnings off)
        want, got = x.astype(np.float16), half.to_half(x)
    np.testing.assert_array_equal(got.view(np.uint16), want.view(np.uint16))
    every = np.arange(65536, dtype=np.uint32).astype(np.uint16).view(np.float16)
    np.testing.assert_array_equal(half.to_float32(every).view(np.uint32),
                                  every.astype(np.float32).view(np.uint32))
    rng = np.random.default_rng(0)
    for shape in [(5, 0, 3), (), (1,), (3, 8, 5)]:
        (y,) = _readonly(rng.standard_normal(shape).astype(np.float32))
        y = y.T if y.ndim else y
        assert half.to_half(y).shape == y.shape and half.to_float32(y.astype(np.float16)).shape == y.shape
        np.testing.assert_array_equal(half.to_half(y), y.astype(np.float16))
        np.testing.assert_array_equal(half.to_float32(y.astype(np.float16)), y.astype(np.float16).astype(np.float32))


def _tabulated_unary_ops():
    from sm_notebook.engine.ops import math_ops
    return sorted(op for op in math_ops._UNARY if op not in math_ops._NOT_TABULATED)


@pytest.mark.parametrize("op", _tabulated_unary_ops())
def test_half_unary_tables_are_the_computed_values(op):
    """A unary float16 op looked up in its table of all 65536 values (the fast path) equals the general path's computed values bit for bit, on arrays of every
    float16 value, random ones (contiguous or not, size 0) and scalars."""
    rng = np.random.default_rng(len(op))
    every = np.arange(65536, dtype=np.uint32).astype(np.uint16).view(np.float16)
    cases = [every, rng.permutation(every)[:1000].reshape(10, 100).T, every[:0].reshape(0, 7),
             (rng.standard_normal((3, 70)) * 4).astype(np.float16), np.float16(0.5)]
    for x in cases:
        (x,) = _readonly(x)
        fast, general = _both(op, [x], {"T": np.dtype(np.float16)})
        assert fast[0].dtype == general[0].dtype == np.float16 and fast[0].shape == x.shape
        np.testing.assert_array_equal(fast[0].view(np.uint16), general[0].view(np.uint16))


@pytest.mark.parametrize("shape", [(65536,), (0, 3), (1, 256, 256)])
def test_half_relu_on_bits_is_the_float32_relu_bit_for_bit(shape):
    """Relu of float16 on the int16 bits equals the general path (max(x, 0) in float32,
    rounded back) bit for bit over every float16 value: NaN payloads, -0, -inf."""
    every = np.arange(65536, dtype=np.uint32).astype(np.uint16).view(np.float16)
    (x,) = _readonly(np.resize(every, shape))
    fast, general = _both("Relu", [x], {"T": np.dtype(np.float16)})
    assert fast[0].dtype == np.float16 and fast[0].shape == x.shape
    np.testing.assert_array_equal(fast[0].view(np.uint16), general[0].view(np.uint16))


@SETTINGS
@given(data=st.data(), dtype=st.sampled_from(FLOATS + [BFLOAT16]),
       op=st.sampled_from(["Exp", "Tanh", "Neg", "Abs", "Square", "Sqrt", "Log", "Floor"]))
def test_unary_fast_path_is_the_general_path(data, dtype, op):
    shape = tuple(data.draw(st.lists(dims, max_size=3)))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    (x,) = _readonly((rng.standard_normal(shape) * 3).astype(dtype))
    fast, general = _both(op, [x], {"T": np.dtype(dtype)})
    np.testing.assert_array_equal(fast[0], general[0])


def _conv_case(data, depthwise=False):
    n, h, w = data.draw(dims), data.draw(small), data.draw(small)
    cin, cout = data.draw(small), data.draw(small)
    kh, kw = data.draw(st.integers(1, min(h, 3))), data.draw(st.integers(1, min(w, 3)))
    stride = data.draw(st.integers(1, 2))
    dilation = 1 if stride > 1 else data.draw(st.integers(1, 2))
    padding = data.draw(st.sampled_from(["SAME", "VALID"]))
    if padding == "VALID" and ((kh - 1) * dilation + 1 > h or (kw - 1) * dilation + 1 > w):
        padding = "SAME"
    shape_w = (kh, kw, cin, cout)
    attrs = {"strides": [1, stride, stride, 1], "dilations": [1, dilation, dilation, 1],
             "padding": padding, "data_format": "NHWC"}
    return (n, h, w, cin), shape_w, attrs


@SETTINGS
@given(data=st.data(), dtype=st.sampled_from(FLOATS),
       op=st.sampled_from(["Conv2D", "DepthwiseConv2dNative"]))
def test_conv_fast_paths_are_the_general_path_within_rounding(data, dtype, op):
    _check_conv_fast_path(data, dtype, op)


@SETTINGS
@given(data=st.data(), dtype=st.sampled_from(FLOATS))
def test_grouped_conv_fast_path_is_the_general_path_within_rounding(data, dtype):
    """Conv2D with 2 to 3 groups of 1 to 3 input channels (the stacked-matmul path; one
    input channel per group goes the depthwise way) against the per-group general path."""
    x_shape, w_shape, attrs = _conv_case(data)
    groups, depth = data.draw(st.integers(2, 3)), data.draw(st.integers(1, 3))
    per_group = data.draw(st.integers(1, 3))
    x_shape, w_shape = (*x_shape[:3], groups * depth), (*w_shape[:2], depth, groups * per_group)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    x, w = _readonly(rng.standard_normal(x_shape).astype(dtype), rng.standard_normal(w_shape).astype(dtype))
    fast, general = _both("Conv2D", [x, w], attrs)
    (magnitude,) = _kernel("Conv2D", [np.abs(x).astype(np.float64), np.abs(w).astype(np.float64)], attrs, False)
    compute = np.float32 if dtype == np.float16 else dtype
    bound = 2 * (_gamma(w_shape[0] * w_shape[1] * depth, compute) * magnitude + _rounding(dtype, magnitude))
    _within(fast[0], general[0], bound)


def _check_conv_fast_path(data, dtype, op):
    """A random convolution: the fast path equals the general one within the rounding
    bound of its summed terms. Returns (rng, x shape, w shape, compute dtype) for more checks."""
    x_shape, w_shape, attrs = _conv_case(data)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    x, w = _readonly(rng.standard_normal(x_shape).astype(dtype), rng.standard_normal(w_shape).astype(dtype))
    fast, general = _both(op, [x, w], attrs)
    # magnitude of every summed term, exactly enough in float64 on the general path
    (magnitude,) = _kernel(op, [np.abs(x).astype(np.float64), np.abs(w).astype(np.float64)], attrs, False)
    compute = np.float32 if dtype == np.float16 else dtype
    terms = w_shape[0] * w_shape[1] * (1 if op.startswith("Depthwise") else w_shape[2])
    bound = 2 * (_gamma(terms, compute) * magnitude + _rounding(dtype, magnitude))
    _within(fast[0], general[0], bound)
    return rng, x_shape, w_shape, compute


@pytest.fixture
def split_everything(monkeypatch):
    """Every product cut into parts over 3 threads, im2col patches of a few hundred bytes
    (so the image and output-row blocks of `_conv_numpy` are all taken), every depthwise
    image a block of its own."""
    from sm_notebook.engine import blas
    from sm_notebook.engine.ops import nn_ops
    monkeypatch.setattr(blas, "THREADED_MNK", 1)
    monkeypatch.setattr(blas, "PART_MNK", 1)
    monkeypatch.setattr(blas, "OPENBLAS_SINGLE_THREAD_MNK", 0)
    monkeypatch.setattr(blas.BLAS, "cap", 3)
    monkeypatch.setattr(nn_ops, "_PATCH_CHUNK_BYTES", 300)
    monkeypatch.setattr(nn_ops, "_TAP_CHUNK_BYTES", 1)      # one image per depthwise block
    monkeypatch.setattr(nn_ops, "_THREADED_TAPS", 0)
    yield
    blas.BLAS.restore()


@SETTINGS
@given(data=st.data(), dtype=st.sampled_from([np.float32, np.float64, np.float16]))
def test_flat_depthwise_is_the_general_path_within_rounding(monkeypatch, data, dtype):
    """The one-filter-per-channel depthwise form (`_FlatDepthwise`: one einsum per column
    phase, strides 1 and 2, dilations), images in one block or two (threads), with padding
    or without, its padded copies kept or not; each filter called twice on different inputs
    (the second call reuses the kept padded copy, whose inside must be all new); a call with
    another filter array of the same shape (or a writable one, changed in between) uses
    that filter. float16 runs it on float32 copies (a read-only filter widened once) and
    rounds once."""
    from sm_notebook.engine.ops import nn_ops
    monkeypatch.setattr(nn_ops, "_THREADED_TAPS", data.draw(st.sampled_from([0, 1 << 20])))
    monkeypatch.setattr(nn_ops, "_KEPT_PADDING_BYTES", data.draw(st.sampled_from([0, 4 * 2**20])))
    x_shape, (kh, kw, cin, _), attrs = _conv_case(data)  # strides 1 or 2
    if data.draw(st.booleans()):  # explicit, uneven pads (as a Pad absorbed into the conv gives)
        pads = [data.draw(st.integers(0, 2)) for _ in range(4)]
        attrs = {**attrs, "padding": "EXPLICIT", "explicit_paddings": [0, 0, *pads, 0, 0]}
        reach = [(k - 1) * attrs["dilations"][1] + 1 for k in (kh, kw)]
        if x_shape[1] + pads[0] + pads[1] < reach[0] or x_shape[2] + pads[2] + pads[3] < reach[1]:
            attrs["explicit_paddings"] = [0, 0, reach[0], 0, 0, reach[1], 0, 0]
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    xs = _readonly(*(rng.standard_normal(x_shape).astype(dtype) for _ in range(2)))
    compute = np.float32 if dtype == np.float16 else dtype
    ctx = KernelContext("numpy", optimize=True)
    node = type("Node", (), {"name": "dw", "op": "DepthwiseConv2dNative", "attrs": attrs, "function": None})
    run = registry.get_kernel("DepthwiseConv2dNative").prepare(node, ctx)
    writable = rng.standard_normal((kh, kw, cin, 1)).astype(dtype)
    filters = _readonly(*(rng.standard_normal((kh, kw, cin, 1)).astype(dtype) for _ in range(2))) + [writable]
    for w in filters + [writable]:
        for x in xs:
            before = np.array(x, copy=True)
            with np.errstate(all="ignore"):
                (fast,) = run([x, w])
            np.testing.assert_array_equal(x, before)
            (general,) = _kernel("DepthwiseConv2dNative", [x, w], attrs, False)
            (magnitude,) = _kernel("DepthwiseConv2dNative", [np.abs(x).astype(np.float64),
                                                             np.abs(w).astype(np.float64)], attrs, False)
            _within(np.asarray(fast), general, 2 * (_gamma(kh * kw, compute) * magnitude + _rounding(dtype, magnitude)))
        writable *= -2  # changed in place: the next call must see it
    if xs[0].size:
        assert nn_ops._FlatDepthwise.build(ctx, xs[0].astype(compute), filters[0].astype(compute), nn_ops.ConvGeometry(
            "DepthwiseConv2dNative", attrs, 4, "NHWC")) is not None  # the form was taken


@SETTINGS
@given(data=st.data(), dtype=st.sampled_from(FLOATS),
       op=st.sampled_from(["Conv2D", "DepthwiseConv2dNative"]))
def test_split_conv_and_matmul_are_the_general_path_within_rounding(split_everything, data, dtype, op):
    rng, x_shape, w_shape, compute = _check_conv_fast_path(data, dtype, op)
    a, b = _readonly(rng.standard_normal((data.draw(dims) * 5, x_shape[-1])).astype(dtype),
                     rng.standard_normal((x_shape[-1], w_shape[-1])).astype(dtype))
    (split,) = _kernel("MatMul", [a, b], {}, True)  # (MatMul's BLAS path is not optional)
    exact = (a.astype(np.float64) @ b.astype(np.float64)).astype(dtype)
    magnitude = np.abs(a.astype(np.float64)) @ np.abs(b.astype(np.float64))
    _within(split, exact, _gamma(a.shape[1], compute) * magnitude + 2 * _rounding(dtype, magnitude))


# Winograd F(2x2, 3x3): within gamma_(C + 7) * M_w of the exact value (conftest's
# winograd_magnitude), the general path within gamma_(9 C) * M_w.


@pytest.fixture
def winograd_everywhere(monkeypatch):
    """Every 3x3 stride-1 float32 conv takes the Winograd path, whatever its channels."""
    from sm_notebook.engine.ops import _winograd
    monkeypatch.setattr(_winograd, "MIN_CHANNEL_PRODUCT", 0)
    monkeypatch.setattr(_winograd, "MIN_TILES", 0)
    yield


def _check_winograd(data, dtype):
    """A random 3x3 stride-1 conv on the Winograd path (odd, size-1 and size-0 dims, batch
    0 to 3, SAME/VALID/EXPLICIT padding) is within its derived bound of the general path."""
    from sm_notebook.engine.ops.nn_ops import window_geometry
    n, h, w, cin, cout = (data.draw(st.integers(0, 3)), data.draw(st.integers(1, 9)),
                          data.draw(st.integers(1, 9)), data.draw(st.integers(1, 5)), data.draw(small))
    padding = data.draw(st.sampled_from(["SAME", "VALID", "EXPLICIT"] if h >= 3 and w >= 3 else
                                         ["SAME", "EXPLICIT"]))
    attrs = {"strides": [1, 1, 1, 1], "dilations": [1, 1, 1, 1], "padding": padding, "data_format": "NHWC"}
    explicit = None
    if padding == "EXPLICIT":
        explicit = [(data.draw(st.integers(0, 2)), data.draw(st.integers(0, 2))) for _ in range(2)]
        explicit = [(max(b, 3 - size - a), a) for (b, a), size in zip(explicit, (h, w))]  # window fits
        attrs["explicit_paddings"] = [0, 0, *explicit[0], *explicit[1], 0, 0]
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    x, f = _readonly(rng.standard_normal((n, h, w, cin)).astype(dtype),
                     rng.standard_normal((3, 3, cin, cout)).astype(dtype))
    fast, general = _both("Conv2D", [x, f], attrs)
    outs, pads = window_geometry("Conv2D", [h, w], [3, 3], [1, 1], [1, 1], padding, explicit)
    magnitude = winograd_magnitude(x, f, pads, outs)
    compute = np.float32 if dtype == np.float16 else dtype
    # the Winograd path within gamma_(C+7) M_w, the general one within gamma_(9C) M_w
    bound = 2 * (_gamma(9 * cin + 7, compute) * magnitude + _rounding(dtype, magnitude))
    _within(fast[0], general[0], bound)
    return fast[0], magnitude


@SETTINGS
@given(data=st.data(), dtype=st.sampled_from([np.float16, np.float32]))
def test_winograd_conv_is_the_general_path_within_its_rounding(winograd_everywhere, data, dtype):
    _check_winograd(data, dtype)


@SETTINGS
@given(data=st.data())
def test_split_winograd_conv_is_the_general_path_within_its_rounding(
        winograd_everywhere, split_everything, monkeypatch, data):
    """Blocks of one tile row each, and single blocks with their 16 products in parallel."""
    from sm_notebook.engine.ops import nn_ops
    monkeypatch.setattr(nn_ops, "_WINOGRAD_BLOCK_TILES", data.draw(st.sampled_from([1, 10**9])))
    _check_winograd(data, np.float32)


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_winograd_filter_transform_is_kept_per_filter_array(monkeypatch, dtype):
    """The prepared Conv2D step transforms a filter once (half floats: widened once too),
    and again for a new filter array."""
    from types import SimpleNamespace

    from sm_notebook.engine.ops.nn_ops import _winograd
    calls = []
    original = _winograd.filters

    def counting(w):
        calls.append(w.shape)
        return original(w)
    monkeypatch.setattr(_winograd, "filters", counting)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 6, 5, 48)).astype(dtype)
    filters = [rng.standard_normal((3, 3, 48, 48)).astype(dtype) for _ in range(2)]
    attrs = {"strides": [1, 1, 1, 1], "padding": "SAME", "data_format": "NHWC"}
    ctx = KernelContext("numpy", optimize=True)
    node = SimpleNamespace(name="conv", op="Conv2D", attrs=attrs, function=None)
    run = registry.get_kernel("Conv2D").prepare(node, ctx)
    results = [np.asarray(run([x, f])[0]) for f in (filters[0], filters[0], filters[1])]
    assert len(calls) == 2
    for f, got in zip((filters[0], filters[0], filters[1]), results):
        (general,) = _kernel("Conv2D", [x, f], attrs, False)
        magnitude = winograd_magnitude(x, f, [(1, 1), (1, 1)], [6, 5])
        _within(got, general, 2 * (_gamma(9 * 48 + 7, np.float32) * magnitude + _rounding(dtype, magnitude)))


@SETTINGS
@given(data=st.data(), dtype=st.sampled_from([np.float32, np.float64]))
def test_split_matmul_by_columns_is_the_plain_product_within_rounding(split_everything, data, dtype):
    """`BLAS.matmul` cuts a product with fewer rows than columns into column blocks (odd
    widths too); the 1x1 convolutions and MatMul steps take it."""
    from sm_notebook.engine.blas import BLAS
    m, k, n = data.draw(st.integers(0, 3)), data.draw(st.integers(0, 5)), data.draw(st.integers(4, 70))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    a, b = _readonly(rng.standard_normal((m, k)).astype(dtype), rng.standard_normal((k, n)).astype(dtype))
    split = BLAS.matmul(a, b)
    exact = (a.astype(np.float64) @ b.astype(np.float64)).astype(dtype)
    magnitude = np.abs(a.astype(np.float64)) @ np.abs(b.astype(np.float64))
    compute = np.float32 if dtype == np.float16 else dtype
    _within(split, exact, _gamma(k, compute) * magnitude + 2 * _rounding(dtype, magnitude))


@SETTINGS
@given(data=st.data(), dtype=st.sampled_from(FLOATS), op=st.sampled_from(["MaxPool", "AvgPool"]))
def test_pool_fast_paths_are_the_general_path_within_rounding(data, dtype, op):
    n, h, w, c = data.draw(dims), data.draw(small), data.draw(small), data.draw(small)
    kh, kw = data.draw(st.integers(1, h)), data.draw(st.integers(1, w))
    stride = data.draw(st.integers(1, 2))
    attrs = {"ksize": [1, kh, kw, 1], "strides": [1, stride, stride, 1],
             "padding": data.draw(st.sampled_from(["SAME", "VALID"])), "data_format": "NHWC"}
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    (x,) = _readonly(rng.standard_normal((n, h, w, c)).astype(dtype))
    fast, general = _both(op, [x], attrs)
    if op == "MaxPool":
        np.testing.assert_array_equal(fast[0], general[0])
        return
    (magnitude,) = _kernel(op, [np.abs(x).astype(np.float64)], attrs, False)
    compute = np.float32 if dtype == np.float16 else dtype
    bound = 2 * ((_gamma(kh * kw + 1, compute)) * magnitude + _rounding(dtype, magnitude))
    _within(fast[0], general[0], bound)


@SETTINGS
@given(data=st.data(), dtype=st.sampled_from(FLOATS), op=st.sampled_from(["Softmax", "LogSoftmax"]))
def test_softmax_fast_path_is_the_general_path_within_rounding(data, dtype, op):
    """Rows of 1 to 70 (the short-row path ends at 64), one row included."""
    rows = data.draw(st.integers(0, 4))
    width = data.draw(st.integers(1, 70))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    (x,) = _readonly((rng.standard_normal((rows, width)) * 4).astype(dtype))
    fast, general = _both(op, [x], {})
    compute = np.float32 if dtype == np.float16 else dtype
    exact = np.asarray(_kernel(op, [x.astype(np.float64)], {}, False)[0])
    # shift, exp and a sum of `width` terms (relative), then the division or log
    scale = np.abs(exact) + (np.log(width) + np.abs(x.astype(np.float64)) + 1 if op == "LogSoftmax" else 0)
    bound = 2 * (_gamma(width + 4, compute) * scale + _rounding(dtype, exact))
    _within(fast[0], general[0], bound)


@SETTINGS
@given(data=st.data())
def test_split_and_strided_slice_remembered_indices_follow_their_inputs(data):
    """The prepared Split/StridedSlice steps remember indices per node: they must follow
    new shapes and new index values, never a stale one."""
    ctx = KernelContext("numpy")
    split = registry.get_kernel("Split").prepare(_Node("Split", {"num_split": 2}), ctx)
    sliced = registry.get_kernel("StridedSlice").prepare(_Node("StridedSlice", {}), ctx)
    (axis,) = _readonly(np.int32(0))
    for _ in range(3):
        rows = 2 * data.draw(st.integers(0, 3))
        (x,) = _readonly(np.arange(rows * 3, dtype=np.float32).reshape(rows, 3))
        np.testing.assert_array_equal(np.concatenate(split([axis, x])), x)
        begin, end = data.draw(st.integers(0, 3)), data.draw(st.integers(0, 4))
        b, e, s = _readonly(np.array([begin], np.int32), np.array([end], np.int32), np.array([1], np.int32))
        np.testing.assert_array_equal(sliced([x, b, e, s])[0], x[begin:end])


class _Node:
    def __init__(self, op, attrs):
        self.name, self.op, self.attrs, self.function = f"<{op}>", op, attrs, None


# --------------------------------------------------------------------------- plan rewrites

def _load_pair(tmp_path, nodes, outputs, inputs, functions=()):
    mg = meta_graph(nodes, {"serving_default": signature(inputs, outputs)}, functions)
    path = save(tmp_path / f"m{len(list(tmp_path.iterdir()))}", mg)
    return (load_model(path, optimize=True).signatures["serving_default"],
            load_model(path, optimize=False).signatures["serving_default"])


def _conv_block(dtype, rng, cin, cout, k, magnitudes=False, op="Conv2D", stride=1, activation="Relu"):
    """Pad -> Conv2D (or DepthwiseConv2dNative, cout = cin) -> Mul(scale) -> BiasAdd ->
    AddV2(residual input) -> Relu: pad absorption, scale folding and epilogue fusion all apply."""
    def value(shape):
        v = rng.standard_normal(shape)
        return (np.abs(v) if magnitudes else v).astype(dtype)
    filters = (k, k, cin, 1) if op == "DepthwiseConv2dNative" else (k, k, cin, cout)
    return [placeholder("x", dtype, (None, None, None, cin)),
            placeholder("r", dtype, (None, None, None, cout)),
            const("pads", np.array([[0, 0], [1, 1], [1, 0], [0, 0]], np.int32)),
            const("w", value(filters)), const("s", value((cout,))),
            const("b", value((cout,))),
            node("pad", "Pad", ["x", "pads"], T=np.dtype(dtype)),
            node("conv", op, ["pad", "w"], strides=[1, stride, stride, 1], padding="VALID",
                 T=np.dtype(dtype)),
            node("scaled", "Mul", ["conv", "s"], T=np.dtype(dtype)),
            node("bias", "BiasAdd", ["scaled", "b"], T=np.dtype(dtype)),
            node("res", "AddV2", ["bias", "r"], T=np.dtype(dtype)),
            node("out", "Identity" if magnitudes else activation, ["res"], T=np.dtype(dtype))]


@SETTINGS
@given(data=st.data(), dtype=st.sampled_from([np.float32, np.float64]))
def test_fused_conv_block_equals_the_unoptimised_plan(tmp_path, data, dtype):
    n, h, w = data.draw(dims), data.draw(small), data.draw(small)
    cin, cout, k = data.draw(small), data.draw(small), data.draw(st.integers(1, 2))
    seed = data.draw(st.integers(0, 2**16))
    out_shape = (n, h + 2 - k + 1, w + 1 - k + 1, cout)
    inputs = {"x": ("x:0", dtype, (None, None, None, cin)), "r": ("r:0", dtype, (None, None, None, cout))}
    outputs = {"y": ("out:0", dtype, None)}
    optimised, plain = _load_pair(tmp_path, _conv_block(dtype, np.random.default_rng(seed), cin, cout, k),
                                  outputs, inputs)
    assert len(optimised.plan) < len(plain.plan)  # the rewrites did happen
    rng = np.random.default_rng(seed + 1)
    x, r = _readonly(rng.standard_normal((n, h, w, cin)).astype(dtype),
                     rng.standard_normal(out_shape).astype(dtype))
    before = (x.copy(), r.copy())
    got, want = optimised(x=x, r=r).numpy()["y"], plain(x=x, r=r).numpy()["y"]
    np.testing.assert_array_equal(optimised(x=x, r=r).numpy()["y"], got)  # compiled from run 2
    np.testing.assert_array_equal(x, before[0])
    np.testing.assert_array_equal(r, before[1])
    _, magnitude_fn = _load_pair(tmp_path, _conv_block(np.float64, np.random.default_rng(seed), cin, cout,
                                                       k, magnitudes=True), outputs,
                                 {"x": ("x:0", np.float64, None), "r": ("r:0", np.float64, None)})
    magnitude = magnitude_fn(x=np.abs(x).astype(np.float64), r=np.abs(r).astype(np.float64)).numpy()["y"]
    # conv sum (k*k*cin terms) + folded scale + bias + residual: k*k*cin + 3 roundings each way
    bound = 2 * _gamma(k * k * cin + 3, dtype) * magnitude
    _within(got, want, bound)


def _keras3_conv_block(dtype, rng, cin, cout, k, magnitudes=False):
    """Conv2D -> BiasAdd -> Mul(scale) -> AddV2(shift) -> AddV2(residual input) -> Relu, as
    Keras 3 exports a conv with bias and an inference batch norm: scale and shift fold
    through the bias (into filter and bias), the rest fuses."""
    def value(shape):
        v = rng.standard_normal(shape)
        return (np.abs(v) if magnitudes else v).astype(dtype)
    t = np.dtype(dtype)
    return [placeholder("x", dtype, (None, None, None, cin)),
            placeholder("r", dtype, (None, None, None, cout)),
            const("w", value((k, k, cin, cout))), const("b", value((cout,))),
            const("s", value((1, 1, 1, cout))), const("t", value((cout,))),
            node("conv", "Conv2D", ["x", "w"], strides=[1, 1, 1, 1], padding="SAME", T=t),
            node("bias", "BiasAdd", ["conv", "b"], T=t),
            node("scaled", "Mul", ["bias", "s"], T=t),
            node("shifted", "AddV2", ["scaled", "t"], T=t),
            node("res", "AddV2", ["r", "shifted"], T=t),
            node("out", "Identity" if magnitudes else "Relu", ["res"], T=t)]


@SETTINGS
@given(data=st.data(), dtype=st.sampled_from([np.float32, np.float64]))
def test_batch_norm_folded_through_the_bias_equals_the_unoptimised_plan(tmp_path, data, dtype):
    n, h, w = data.draw(dims), data.draw(small), data.draw(small)
    cin, cout, k = data.draw(small), data.draw(small), data.draw(st.integers(1, 3))
    seed = data.draw(st.integers(0, 2**16))
    inputs = {"x": ("x:0", dtype, (None, None, None, cin)), "r": ("r:0", dtype, (None, None, None, cout))}
    outputs = {"y": ("out:0", dtype, None)}
    optimised, plain = _load_pair(tmp_path, _keras3_conv_block(dtype, np.random.default_rng(seed), cin, cout, k),
                                  outputs, inputs)
    assert "conv (Conv2D + BiasAdd + AddV2 + Relu)" in optimised.plan.describe()
    rng = np.random.default_rng(seed + 1)
    x, r = _readonly(rng.standard_normal((n, h, w, cin)).astype(dtype),
                     rng.standard_normal((n, h, w, cout)).astype(dtype))
    got, want = optimised(x=x, r=r).numpy()["y"], plain(x=x, r=r).numpy()["y"]
    _, magnitude_fn = _load_pair(tmp_path, _keras3_conv_block(np.float64, np.random.default_rng(seed), cin, cout,
                                                              k, magnitudes=True), outputs,
                                 {"x": ("x:0", np.float64, None), "r": ("r:0", np.float64, None)})
    magnitude = magnitude_fn(x=np.abs(x).astype(np.float64), r=np.abs(r).astype(np.float64)).numpy()["y"]
    # conv sum (k*k*cin terms), then bias, scale, shift, residual: k*k*cin + 4 roundings
    # unfolded; folded, the scale rounds into each filter value and into the bias (also
    # within k*k*cin + 4)
    _within(got, want, 2 * _gamma(k * k * cin + 4, dtype) * magnitude)


BLOCKED_CONVS = [  # (image, filter, strides, padding): products the BLAS threads cut into blocks
    ((1, 14, 14, 256), (1, 1, 256, 1024), 1, "VALID"),  # 1x1, fewer rows than columns: column blocks
    ((4, 30, 30, 64), (1, 1, 64, 128), 1, "SAME"),       # 1x1: row blocks of whole image rows
    ((2, 30, 30, 64), (3, 3, 64, 96), 1, "SAME"),        # Winograd: blocks of tile rows
    ((1, 61, 70, 16), (5, 5, 16, 64), 1, "SAME"),        # im2col: output rows of one image
    ((3, 41, 37, 24), (3, 3, 24, 40), 2, "SAME"),        # im2col, strided: whole images
    ((4, 30, 30, 64), (1, 1, 64, 128), 2, "VALID"),      # strided 1x1: one product
]


@pytest.mark.parametrize("case", BLOCKED_CONVS)
def test_epilogue_applied_per_block_equals_the_unoptimised_plan(tmp_path, case, monkeypatch):
    """Conv2D -> BiasAdd -> AddV2(residual) -> Relu with the epilogue applied to each block
    of a split product as it is computed: within the rounding bound of the plain plan, the
    same bits at one and two threads, and a residual that is not a contiguous array of the
    output's shape takes the whole-output path (also within the bound)."""
    from sm_notebook.engine import fusion
    from sm_notebook.engine.blas import BLAS
    blocks = []
    bind = fusion._block_epilogue

    def counted(*args):
        apply = bind(*args)
        blocks.append(apply is not None)
        return apply and (lambda *block: (blocks.append(block), apply(*block)))
    monkeypatch.setattr(fusion, "_block_epilogue", counted)
    x_shape, w_shape, stride, padding = case
    rng = np.random.default_rng(sum(x_shape) + sum(w_shape))
    out_hw = [-(-d // stride) if padding == "SAME" else (d - k) // stride + 1
              for d, k in zip(x_shape[1:3], w_shape[:2])]
    y_shape = (x_shape[0], *out_hw, w_shape[3])
    def net(magnitudes):
        def value(shape):
            v = np.random.default_rng(1).standard_normal(shape)
            return (np.abs(v) if magnitudes else v).astype(np.float32 if not magnitudes else np.float64)
        dtype = np.float64 if magnitudes else np.float32
        return [placeholder("x", dtype, (None, None, None, x_shape[3])),
                placeholder("r", dtype, (None, None, None, w_shape[3])),
                const("w", value(w_shape)), const("b", value(w_shape[3:])),
                node("conv", "Conv2D", ["x", "w"], strides=[1, stride, stride, 1], padding=padding,
                     T=np.dtype(dtype)),
                node("bias", "BiasAdd", ["conv", "b"], T=np.dtype(dtype)),
                node("res", "AddV2", ["bias", "r"], T=np.dtype(dtype)),
                node("out", "Identity" if magnitudes else "Relu", ["res"], T=np.dtype(dtype))]
    inputs = {"x": ("x:0", np.float32, None), "r": ("r:0", np.float32, None)}
    outputs = {"y": ("out:0", np.float32, None)}
    optimised, plain = _load_pair(tmp_path, net(False), outputs, inputs)
    assert "conv (Conv2D + BiasAdd + AddV2 + Relu)" in optimised.plan.describe()
    _, magnitude_fn = _load_pair(tmp_path, net(True), {"y": ("out:0", np.float64, None)},
                                 {"x": ("x:0", np.float64, None), "r": ("r:0", np.float64, None)})
    x, r = _readonly(rng.standard_normal(x_shape).astype(np.float32), rng.standard_normal(y_shape).astype(np.float32))
    strided = np.asfortranarray(r)  # same values, not C-contiguous: the whole-output path
    strided.flags.writeable = False
    bound = 2 * _gamma(w_shape[0] * w_shape[1] * w_shape[2] + 2, np.float32) * \
        magnitude_fn(x=np.abs(x).astype(np.float64), r=np.abs(r).astype(np.float64)).numpy()["y"]
    want = plain(x=x, r=r).numpy()["y"]
    results = []
    for threads, residual in ((1, r), (2, r), (2, strided)):
        monkeypatch.setattr(BLAS, "cap", threads)
        blocks.clear()
        results.append(optimised(x=x, r=residual).numpy()["y"])
        _within(results[-1], want, bound)
        assert blocks[0] is (residual is r) and len(blocks) >= (2 if residual is r else 1)
    np.testing.assert_array_equal(results[0], results[1])
    np.testing.assert_array_equal(x, _readonly(x)[0])


@SETTINGS
@given(data=st.data(), dtype=st.sampled_from([np.float32, np.float64]))
def test_fused_step_follows_new_shapes_and_broadcast_residuals(tmp_path, data, dtype):
    """One loaded model called again and again: the fused step's in-place forms, worked
    out per output shape, follow new image sizes, and a residual that only broadcasts
    (or has size 0 dimensions) takes the links' own path; equal to the plain plan."""
    cin, cout, k = data.draw(small), data.draw(small), data.draw(st.integers(1, 2))
    seed = data.draw(st.integers(0, 2**16))
    inputs = {"x": ("x:0", dtype, (None, None, None, cin)), "r": ("r:0", dtype, (None, None, None, cout))}
    optimised, plain = _load_pair(tmp_path, _conv_block(dtype, np.random.default_rng(seed), cin, cout, k),
                                  {"y": ("out:0", dtype, None)}, inputs)
    _, magnitude_fn = _load_pair(tmp_path, _conv_block(np.float64, np.random.default_rng(seed), cin, cout,
                                                       k, magnitudes=True), {"y": ("out:0", np.float64, None)},
                                 {"x": ("x:0", np.float64, None), "r": ("r:0", np.float64, None)})
    rng = np.random.default_rng(seed + 1)
    for _ in range(4):
        n, h, w = data.draw(dims), data.draw(small), data.draw(small)
        out_shape = (n, h + 2 - k + 1, w + 1 - k + 1, cout)
        r_shape = data.draw(st.sampled_from([out_shape, (1, 1, 1, cout), (1,) + out_shape[1:]]))
        x, r = _readonly(rng.standard_normal((n, h, w, cin)).astype(dtype),
                         rng.standard_normal(r_shape).astype(dtype))
        got, want = optimised(x=x, r=r).numpy()["y"], plain(x=x, r=r).numpy()["y"]
        magnitude = magnitude_fn(x=np.abs(x).astype(np.float64), r=np.abs(r).astype(np.float64)).numpy()["y"]
        # conv sum (k*k*cin terms) + folded scale + bias + residual, as in the test above
        _within(got, want, 2 * _gamma(k * k * cin + 3, dtype) * magnitude)


@SETTINGS
@given(data=st.data(), dtype=st.sampled_from([np.float32, np.float64]), stride=st.integers(1, 2),
       activation=st.sampled_from(["Relu", "Relu6"]))
def test_fused_depthwise_blocks_equal_the_unoptimised_plan(tmp_path, monkeypatch, data, dtype, stride,
                                                          activation):
    """The flat depthwise conv with its scale, bias, residual and Relu/Relu6 fused, the
    epilogue applied per block of images as each is written (`fusion._block_epilogue`): in
    one block or one block per image, on the pool threads or not; residuals that only
    broadcast take the links' own path. Several calls of one loaded model, equal to the
    plain plan within the rounding of the sum and the three epilogue operations."""
    from sm_notebook.engine.ops import nn_ops
    monkeypatch.setattr(nn_ops, "_TAP_CHUNK_BYTES", data.draw(st.sampled_from([1, 128 * 2**10])))
    monkeypatch.setattr(nn_ops, "_THREADED_TAPS", data.draw(st.sampled_from([0, 1 << 20])))
    c, k = data.draw(small), data.draw(st.integers(1, 3))
    seed = data.draw(st.integers(0, 2**16))
    inputs = {"x": ("x:0", dtype, (None, None, None, c)), "r": ("r:0", dtype, (None, None, None, c))}
    block = dict(op="DepthwiseConv2dNative", stride=stride, activation=activation)
    optimised, plain = _load_pair(tmp_path, _conv_block(dtype, np.random.default_rng(seed), c, c, k, **block),
                                  {"y": ("out:0", dtype, None)}, inputs)
    assert "(DepthwiseConv2dNative + BiasAdd + AddV2 + " in optimised.plan.describe()  # Mul folded
    _, magnitude_fn = _load_pair(tmp_path, _conv_block(np.float64, np.random.default_rng(seed), c, c, k,
                                                       magnitudes=True, **block),
                                 {"y": ("out:0", np.float64, None)},
                                 {"x": ("x:0", np.float64, None), "r": ("r:0", np.float64, None)})
    rng = np.random.default_rng(seed + 1)
    for _ in range(3):
        n, h, w = data.draw(dims), data.draw(st.integers(k, 9)), data.draw(st.integers(k, 9))
        out_shape = (n, (h + 2 - k) // stride + 1, (w + 1 - k) // stride + 1, c)
        r_shape = data.draw(st.sampled_from([out_shape, out_shape, (1, 1, 1, c)]))
        x, r = _readonly(rng.standard_normal((n, h, w, c)).astype(dtype),
                         rng.standard_normal(r_shape).astype(dtype))
        before = (x.copy(), r.copy())
        got, want = optimised(x=x, r=r).numpy()["y"], plain(x=x, r=r).numpy()["y"]
        np.testing.assert_array_equal(x, before[0])
        np.testing.assert_array_equal(r, before[1])
        magnitude = magnitude_fn(x=np.abs(x).astype(np.float64), r=np.abs(r).astype(np.float64)).numpy()["y"]
        # the sum of k*k products + folded scale + bias + residual, each way
        _within(got, want, 2 * _gamma(k * k + 3, dtype) * magnitude)


@SETTINGS
@given(data=st.data(), dtype=st.sampled_from(FLOATS), padding=st.sampled_from(["SAME", "VALID"]))
def test_pointwise_conv_equals_the_unoptimised_plan(tmp_path, data, dtype, padding):
    """A 1x1 Conv2D run as one matrix product (`nn_ops._pointwise`; half floats and
    non-contiguous inputs take the kernel) with its bias, on images of any size."""
    cin, cout = data.draw(small), data.draw(small)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    w, b = rng.standard_normal((1, 1, cin, cout)).astype(dtype), rng.standard_normal(cout).astype(dtype)
    nodes = [placeholder("x", dtype, (None, None, None, cin)), const("w", w), const("b", b),
             node("conv", "Conv2D", ["x", "w"], strides=[1, 1, 1, 1], padding=padding, T=np.dtype(dtype)),
             node("out", "BiasAdd", ["conv", "b"], T=np.dtype(dtype))]
    optimised, plain = _load_pair(tmp_path, nodes, {"y": ("out:0", dtype, None)},
                                  {"x": ("x:0", dtype, (None, None, None, cin))})
    for _ in range(3):
        n, h, width = data.draw(dims), data.draw(dims), data.draw(dims)
        (x,) = _readonly(rng.standard_normal((n, h, width, cin)).astype(dtype))
        if data.draw(st.booleans()):
            x = x.transpose(0, 2, 1, 3)  # not contiguous
        got, want = optimised(x=x).numpy()["y"], plain(x=x).numpy()["y"]
        magnitude = np.abs(x.astype(np.float64)) @ np.abs(w[0, 0].astype(np.float64)) + np.abs(b)
        compute = np.float32 if dtype == np.float16 else dtype
        _within(got, want, 2 * (_gamma(cin + 1, compute) * magnitude + _rounding(dtype, magnitude)))


@SETTINGS
@given(data=st.data(), dtype=st.sampled_from([np.float32, np.float64]))
def test_blocked_pointwise_epilogue_equals_the_unoptimised_plan(tmp_path, monkeypatch, data, dtype):
    """A 1x1 Conv2D with bias, residual and Relu6 fused, its product cut into blocks of
    image rows (one row each, or as many as fit the block budget), each block's epilogue
    right after its product, on the pool threads or not (or not blocked: filters over the
    limit); residuals that only broadcast take the links' own path. Equal to the plain plan
    within the rounding of the sum and the two additions."""
    from sm_notebook.engine import blas
    from sm_notebook.engine.ops import nn_ops
    monkeypatch.setattr(nn_ops, "_EPILOGUE_BLOCK_BYTES", data.draw(st.sampled_from([1, 256 * 2**10])))
    monkeypatch.setattr(nn_ops, "_BLOCKED_FILTER_BYTES", data.draw(st.sampled_from([0, 256 * 2**10])))
    if data.draw(st.booleans()):  # blocks on the pool's threads
        monkeypatch.setattr(nn_ops, "_POOLED_MNK", 1)
        monkeypatch.setattr(blas.BLAS, "cap", 3)
    cin, cout = data.draw(small), data.draw(small)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    w, b = rng.standard_normal((1, 1, cin, cout)).astype(dtype), rng.standard_normal(cout).astype(dtype)
    nodes = [placeholder("x", dtype, (None, None, None, cin)), placeholder("r", dtype, (None, None, None, cout)),
             const("w", w), const("b", b),
             node("conv", "Conv2D", ["x", "w"], strides=[1, 1, 1, 1], padding="VALID", T=np.dtype(dtype)),
             node("bias", "BiasAdd", ["conv", "b"], T=np.dtype(dtype)),
             node("res", "AddV2", ["r", "bias"], T=np.dtype(dtype)),
             node("out", "Relu6", ["res"], T=np.dtype(dtype))]
    optimised, plain = _load_pair(tmp_path, nodes, {"y": ("out:0", dtype, None)},
                                  {"x": ("x:0", dtype, (None, None, None, cin)),
                                   "r": ("r:0", dtype, (None, None, None, cout))})
    assert "(Conv2D + BiasAdd + AddV2 + Relu6)" in optimised.plan.describe()
    try:
        for _ in range(3):
            n, h, width = data.draw(dims), data.draw(dims), data.draw(dims)
            r_shape = data.draw(st.sampled_from([(n, h, width, cout)] * 2 + [(1, 1, 1, cout)]))
            x, r = _readonly(rng.standard_normal((n, h, width, cin)).astype(dtype) * 3,
                             rng.standard_normal(r_shape).astype(dtype) * 3)
            got, want = optimised(x=x, r=r).numpy()["y"], plain(x=x, r=r).numpy()["y"]
            magnitude = np.abs(x.astype(np.float64)) @ np.abs(w[0, 0].astype(np.float64)) + np.abs(b) + np.abs(r)
            _within(got, want, 2 * _gamma(cin + 2, dtype) * magnitude)
    finally:
        blas.BLAS.restore()


@SETTINGS
@given(data=st.data(), dtype=st.sampled_from([np.float32, np.float64]), transpose=st.booleans())
def test_fused_matmul_and_elided_identities_equal_the_unoptimised_plan(tmp_path, data, dtype, transpose):
    n, k, m = data.draw(dims), data.draw(small), data.draw(small)
    seed = data.draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    weights = rng.standard_normal((m, k) if transpose else (k, m)).astype(dtype)
    bias = rng.standard_normal(m).astype(dtype)
    nodes = [placeholder("x", dtype, (None, k)), const("w", weights), const("b", bias),
             const("two", np.asarray(2, dtype)), const("three", np.asarray(3, dtype)),
             node("c", "Mul", ["two", "three"], T=np.dtype(dtype)),  # folded to a constant
             node("mm", "MatMul", ["x", "w"], transpose_b=transpose, T=np.dtype(dtype)),
             node("id", "Identity", ["mm"], T=np.dtype(dtype)),
             node("bias", "BiasAdd", ["id", "b"], T=np.dtype(dtype)),
             node("act", "Relu6", ["bias"], T=np.dtype(dtype)),
             node("out", "Mul", ["act", "c"], T=np.dtype(dtype))]
    optimised, plain = _load_pair(tmp_path, nodes, {"y": ("out:0", dtype, None)},
                                  {"x": ("x:0", dtype, (None, k))})
    (x,) = _readonly(rng.standard_normal((n, k)).astype(dtype) * 2)
    got, want = optimised(x=x).numpy()["y"], plain(x=x).numpy()["y"]
    np.testing.assert_array_equal(optimised(x=x).numpy()["y"], got)  # compiled from run 2
    w64 = np.abs(weights.astype(np.float64))
    # (x @ w: k terms) + bias, then Relu6 (1-Lipschitz) and * 6
    magnitude = 6 * (np.abs(x.astype(np.float64)) @ (w64.T if transpose else w64) + np.abs(bias))
    _within(got, want, 2 * _gamma(k + 3, dtype) * magnitude)


@pytest.fixture
def half_links_widened(monkeypatch):
    """Every float16 fused step, however small, runs its links in float32 (`fusion._widened_links`)."""
    from sm_notebook.engine import fusion
    monkeypatch.setattr(fusion, "_WIDE_MIN", 0)
    yield


def _half_specials(rng, shape):
    """float16 values with inf, NaN, -0, subnormals, values near the largest float16 and
    ties of float16 sums among ordinary ones."""
    pool = np.array([np.inf, -np.inf, np.nan, -0.0, 0.0, 6e-8, -6e-8, 3e-5, 65504, -65504, 60000,
                     2049, 0.5, 1.0, 6.0, -6.0, 1e-3], np.float16)
    x = (rng.standard_normal(shape) * 8).astype(np.float16)
    return np.where(rng.random(shape) < 0.3, rng.choice(pool, size=shape), x).astype(np.float16)


@SETTINGS
@given(data=st.data(), order=st.sampled_from(["bias,res,relu6,scale", "relu,bias", "bias,scale,relu", "res,relu,scale"]))
def test_widened_half_links_equal_the_float16_kernels(tmp_path, half_links_widened, data, order):
    """MatMul of one column (one exact product each, so both plans produce the same
    float16 values) then bias / residual / scale / Relu links: the fused step's float32
    form (rounded to float16 after each add and scale, once at the end) gives exactly the
    unfused float16 kernels' values, special values and size-0 rows included. (A scale
    right after the product is folded into the weights instead: not this test's subject.)"""
    n, m = data.draw(st.integers(0, 5)), data.draw(small)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    half = np.dtype(np.float16)
    nodes = [placeholder("x", half, (None, 1)), placeholder("r", half, (None, m)),
             const("w", _half_specials(rng, (1, m))), const("b", _half_specials(rng, (m,))),
             const("s", _half_specials(rng, (m,))),
             node("l0", "MatMul", ["x", "w"], T=half)]
    ops = {"bias": ("BiasAdd", "b"), "res": ("AddV2", "r"), "scale": ("Mul", "s"),
           "relu": ("Relu", None), "relu6": ("Relu6", None)}
    for k, link in enumerate(order.split(",")):
        op, other = ops[link]
        nodes.append(node(f"l{k + 1}", op, [f"l{k}"] + ([other] if other else []), T=half))
    last = f"l{len(order.split(','))}"
    optimised, plain = _load_pair(tmp_path, nodes, {"y": (f"{last}:0", half, None)},
                                  {"x": ("x:0", half, (None, 1)), "r": ("r:0", half, (None, m))})
    assert len(optimised.plan) < len(plain.plan)  # fused
    x, r = _readonly(_half_specials(rng, (n, 1)), _half_specials(rng, (n, m)))
    for _ in range(2):  # the compiled plan from the second run on
        got, want = optimised(x=x, r=r).numpy()["y"], plain(x=x, r=r).numpy()["y"]
        assert got.dtype == want.dtype == half
        np.testing.assert_array_equal(got, want)


@SETTINGS
@given(data=st.data(), op=st.sampled_from(["Conv2D", "DepthwiseConv2dNative"]))
def test_half_conv_epilogue_rounds_as_the_float16_kernels(tmp_path, data, op):
    """A float16 convolution of one input channel (one exact product per output, so both
    plans produce the same float16 values) with bias and Relu fused: the conv's float32
    result is rounded to float16 before the bias add, as TensorFlow's half kernels round, so
    the fused step equals the unfused kernels bit for bit, special values included."""
    n, h, m = data.draw(st.integers(0, 3)), data.draw(small), data.draw(small)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    half = np.dtype(np.float16)
    w_shape = (1, 1, 1, m)
    nodes = [placeholder("x", half, (None, None, None, 1)), const("w", _half_specials(rng, w_shape)),
             const("b", _half_specials(rng, (m,))),
             node("conv", op, ["x", "w"], strides=[1, 1, 1, 1], padding="VALID", T=half),
             node("bias", "BiasAdd", ["conv", "b"], T=half), node("out", "Relu", ["bias"], T=half)]
    optimised, plain = _load_pair(tmp_path, nodes, {"y": ("out:0", half, None)},
                                  {"x": ("x:0", half, (None, None, None, 1))})
    assert len(optimised.plan) < len(plain.plan)  # fused
    x = _readonly(_half_specials(rng, (n, h, h, 1)))[0]
    for _ in range(2):
        with np.errstate(all="ignore"):
            got, want = optimised(x=x).numpy()["y"], plain(x=x).numpy()["y"]
        np.testing.assert_array_equal(got, want)


@SETTINGS
@given(data=st.data(), dtype=st.sampled_from([np.float32, np.float64]))
def test_dense_layers_and_softmax_equal_the_unoptimised_plan_across_batches(tmp_path, data, dtype):
    """The Keras MLP's shape: MatMul + BiasAdd + Relu (a fused step with constant links
    only), MatMul + BiasAdd, Softmax (exp(x) / sum where the row sums allow it); one
    loaded model called with batches of 0 to 3 rows, batch 1 included."""
    k, m, classes = data.draw(small), data.draw(small), data.draw(st.integers(2, 5))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    w1, w2 = rng.standard_normal((k, m)).astype(dtype), rng.standard_normal((m, classes)).astype(dtype)
    b1, b2 = rng.standard_normal(m).astype(dtype), rng.standard_normal(classes).astype(dtype)
    T = np.dtype(dtype)
    nodes = [placeholder("x", dtype, (None, k)), const("w1", w1), const("b1", b1), const("w2", w2),
             const("b2", b2), node("mm1", "MatMul", ["x", "w1"], T=T), node("h", "BiasAdd", ["mm1", "b1"], T=T),
             node("relu", "Relu", ["h"], T=T), node("mm2", "MatMul", ["relu", "w2"], T=T),
             node("logits", "BiasAdd", ["mm2", "b2"], T=T), node("p", "Softmax", ["logits"], T=T)]
    optimised, plain = _load_pair(tmp_path, nodes, {"p": ("p:0", dtype, None)}, {"x": ("x:0", dtype, (None, k))})
    assert len(optimised.plan) == 3
    eps = float(np.finfo(dtype).eps)
    for _ in range(4):
        (x,) = _readonly(rng.standard_normal((data.draw(dims), k)).astype(dtype) * data.draw(
            st.sampled_from([0.1, 1.0, 8.0])))
        before = x.copy()
        got, want = optimised(x=x).numpy()["p"], plain(x=x).numpy()["p"]
        np.testing.assert_array_equal(x, before)
        x64 = x.astype(np.float64)
        h64 = np.maximum(x64 @ w1 + b1, 0)
        h_bound = _gamma(k + 1, dtype) * (np.abs(x64) @ np.abs(w1) + np.abs(b1))
        l64 = h64 @ w2 + b2
        l_bound = _gamma(m + 1, dtype) * ((np.abs(h64) + h_bound) @ np.abs(w2) + np.abs(b2)) \
            + h_bound @ np.abs(w2)
        p64 = np.exp(l64 - l64.max(axis=-1, keepdims=True)) if len(x) else l64
        p64 = p64 / p64.sum(axis=-1, keepdims=True) if len(x) else p64
        # logit errors of at most E move log p by at most 2E (p by expm1(2E) relatively);
        # softmax's own rounding: exp, a sum of `classes` terms and the division
        worst = 2 * l_bound.max(axis=-1, keepdims=True) if len(x) else 0
        bound = p64 * (np.expm1(worst) + (classes + 4) * eps) + np.finfo(dtype).tiny
        _within(got, want, 2 * bound)


class _Calls:
    n = 0


def _counting_mul(ctx, inputs, attrs):
    _Calls.n += 1
    return [inputs[0] * inputs[1]]


@SETTINGS
@given(data=st.data())
def test_while_hoisting_equals_the_unoptimised_plan(tmp_path, monkeypatch, data):
    """A While body's loop-invariant product runs once per loop when optimised, every
    iteration when not; the results are identical."""
    from engine_graphs import install_test_op
    install_test_op(monkeypatch, "_TCountMul", _counting_mul)
    F32 = np.float32
    trips = data.draw(st.integers(0, 4))
    width = data.draw(dims)
    body = function("body_f", [("i", np.int32), ("acc", F32), ("k", F32)],
                    {"i_next": "next:z:0", "acc_next": "add:z:0", "k_out": "k"},
                    [const("one", np.int32(1)), const("two", F32(2)),
                     node("next", "AddV2", ["i", "one:output:0"], T=np.dtype(np.int32)),
                     node("kk", "_TCountMul", ["k", "two:output:0"]),
                     node("add", "AddV2", ["acc", "kk:z:0"], T=np.dtype(F32))])
    body.signature.output_arg[0].type = 3
    cond = function("cond_f", [("i", np.int32), ("acc", F32), ("k", F32)], {"go": "less:z:0"},
                    [const("n", np.int32(trips)), node("less", "Less", ["i", "n:output:0"],
                                                       T=np.dtype(np.int32))])
    cond.signature.output_arg[0].type = 10
    nodes = [placeholder("x", F32, (width,)), placeholder("k", F32, (width,)), const("zero", np.int32(0)),
             node("loop", "While", ["zero", "x", "k"], cond=Func("cond_f"), body=Func("body_f"),
                  T=[np.dtype(np.int32), np.dtype(F32), np.dtype(F32)])]
    optimised, plain = _load_pair(tmp_path, nodes, {"y": ("loop:1", F32, None)},
                                  {"x": ("x:0", F32, (width,)), "k": ("k:0", F32, (width,))},
                                  functions=[body, cond])
    rng = np.random.default_rng(trips)
    x, k = _readonly(rng.standard_normal(width).astype(F32), rng.standard_normal(width).astype(F32))
    _Calls.n = 0
    got = optimised(x=x, k=k).numpy()["y"]
    hoisted_calls, _Calls.n = _Calls.n, 0
    want = plain(x=x, k=k).numpy()["y"]
    np.testing.assert_array_equal(got, want)
    assert _Calls.n == trips and hoisted_calls == min(trips, 1)
    _Calls.n = 0
    np.testing.assert_array_equal(optimised(x=x, k=k).numpy()["y"], want)  # compiled body
    assert _Calls.n == min(trips, 1)


def test_load_option_optimize_false_runs_every_node(tmp_path):
    """optimize=False: nothing folded, fused or elided; every node is one step."""
    nodes = _conv_block(np.float32, np.random.default_rng(0), 2, 3, 2)
    inputs = {"x": ("x:0", np.float32, None), "r": ("r:0", np.float32, None)}
    optimised, plain = _load_pair(tmp_path, nodes, {"y": ("out:0", np.float32, None)}, inputs)
    ops = [line.split("(")[1].split(")")[0] for line in plain.plan.describe().splitlines()]
    assert ops.count("Const") == 4 and "Pad" in ops and "Mul" in ops and "Relu" in ops
    assert not plain.plan.optimized and optimised.plan.optimized
    assert "Conv2D + " in optimised.plan.describe()


def test_compiled_steps_name_the_failing_node_and_follow_new_shapes(tmp_path):
    """From the second call the plan runs compiled: failures still name their node, and
    a new batch size runs through the same code."""
    from sm_notebook.errors import SavedModelError
    I32 = np.int32
    nodes = [placeholder("x", np.float32, (None,)), placeholder("d", I32, ()),
             const("ten", np.int32(10)), const("k", np.float32(2.5)),
             node("scaled", "Mul", ["x", "k"], T=np.dtype(np.float32)),
             node("quot", "FloorDiv", ["ten", "d"], T=np.dtype(I32))]
    optimised, plain = _load_pair(tmp_path, nodes, {"y": ("scaled:0", np.float32, None),
                                                    "q": ("quot:0", I32, ())},
                                  {"x": ("x:0", np.float32, (None,)), "d": ("d:0", I32, ())})
    for size in (3, 1, 0, 5):
        (x,) = _readonly(np.arange(size, dtype=np.float32))
        got, want = optimised(x=x, d=np.int32(3)).numpy(), plain(x=x, d=np.int32(3)).numpy()
        for key in want:
            np.testing.assert_array_equal(got[key], want[key])
    assert optimised.plan._compiled
    with pytest.raises(SavedModelError, match="'quot'"):
        optimised(x=np.zeros(2, np.float32), d=np.int32(0))
