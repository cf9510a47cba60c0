"""The engine's numpy fast paths agree with its general code: elementwise kernels inside
a plan run, convolution / pooling fast paths, float32 erf/erfc, einsum as a matmul,
short-row softmax, slice caches, epilogue fusion and loop-invariant hoisting in While."""
from __future__ import annotations

import math

import numpy as np
import pytest

from engine_graphs import (Func, const, function, install_test_op, meta_graph, node, placeholder, save,
                           signature)

import sm_notebook.engine.ops  # noqa: F401
from sm_notebook.engine.context import KernelContext
from sm_notebook.engine.loader import load_model
from sm_notebook.engine.ops import registry
from sm_notebook.engine.ops._special import erf_float32, erfc_float32

F32 = np.float32


def _run(op, inputs, attrs=None, backend="numpy", in_plan=False):
    """Our kernel's outputs as numpy; ``in_plan``: prepared as in an optimised plan (numpy
    fast paths), else as in an unoptimised one (the general code)."""
    ctx = KernelContext(backend, optimize=in_plan)
    args = [ctx.asarray(x) if isinstance(x, np.ndarray) else x for x in inputs]
    outputs = registry.get_kernel(op).fn(ctx, args, dict(attrs or {}))
    return [ctx.to_numpy(o) for o in outputs]


def _same(a, b):
    assert a.dtype == b.dtype and a.shape == b.shape
    np.testing.assert_array_equal(a, b)


EPS32 = float(np.finfo(np.float32).eps)
EPS64 = float(np.finfo(np.float64).eps)


def _gamma(n, eps):
    """gamma_n = n eps / (1 - n eps): the forward error bound of an n-term dot product."""
    return n * eps / (1 - n * eps)


def assert_within_dot_bound(got, reference, magnitude, terms, what=""):
    """``got`` (float32) is within gamma_{terms+1} * magnitude of the float64 ``reference``
    elementwise, where ``magnitude`` is the same computation on |operands|: the standard
    bound for sums of ``terms`` products in any order, with or without FMA (so on any BLAS),
    plus the final rounding to float32; the float64 reference's own error is added."""
    assert got.shape == reference.shape, what
    bound = (_gamma(terms + 1, EPS32) + _gamma(terms + 1, EPS64)) * magnitude
    error = np.abs(got.astype(np.float64) - reference)
    worst = np.unravel_index(np.argmax(error - bound), error.shape) if error.size else None
    assert np.all(error <= bound), \
        f"{what}: error {error[worst]:.3g} over the bound {bound[worst]:.3g} at {worst}"


def _in_float64(op, inputs, attrs):
    """(result, magnitude): ``op`` on the float64 inputs and on their absolute values."""
    wide = [x.astype(np.float64) if x.dtype == F32 else x for x in inputs]
    (result,) = _run(op, wide, attrs)
    (magnitude,) = _run(op, [np.abs(x) if x.dtype == np.float64 else x for x in wide], attrs)
    return result, magnitude


def _check_fast_and_general(op, inputs, attrs, terms):
    """The numpy fast path and the array API general path both meet the float32 bound."""
    reference, magnitude = _in_float64(op, inputs, attrs)
    (fast,) = _run(op, inputs, attrs)
    (general,) = _run(op, inputs, attrs, "array_api_strict")
    assert fast.dtype == general.dtype == F32
    assert_within_dot_bound(fast, reference, magnitude, terms, f"{op} fast path")
    assert_within_dot_bound(general, reference, magnitude, terms, f"{op} general path")
    return fast


# --------------------------------------------------------------------------- elementwise

BINARY = ["Add", "AddV2", "Sub", "Mul", "Maximum", "Minimum", "Equal", "NotEqual", "Less",
          "LessEqual", "Greater", "GreaterEqual", "RealDiv", "SquaredDifference"]


@pytest.mark.parametrize("op", BINARY)
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32, np.int64])
def test_binary_kernels_in_a_plan_match_the_general_path(op, dtype):
    rng = np.random.default_rng(1)
    x = (rng.standard_normal((3, 4)) * 5).astype(dtype)
    pairs = [(x, x[::-1].copy()), (x, x[0]), (x[0], x), (x, np.asarray(3, dtype)),
             (np.asarray(2, dtype), np.asarray(7, dtype)), (np.asarray(7, dtype), np.asarray(2, dtype)),
             (x[:, :1].copy(), x[0])]
    for a, b in pairs:
        if op == "RealDiv" and np.dtype(dtype).kind == "i":
            b = np.where(b == 0, 1, b).astype(dtype)
        (fast,), (general,) = _run(op, [a, b], in_plan=True), _run(op, [a, b])
        _same(fast, general)


@pytest.mark.parametrize("op", ["LogicalAnd", "LogicalOr"])
def test_logical_kernels_in_a_plan(op):
    for a, b in [(np.asarray(True), np.asarray(False)), (np.array([True, False]), np.asarray(True))]:
        _same(_run(op, [a, b], in_plan=True)[0], _run(op, [a, b])[0])


def test_scalar_int_arithmetic_wraps_like_numpy_at_the_limits():
    big = np.asarray(np.iinfo(np.int32).max, np.int32)
    one = np.asarray(1, np.int32)
    (fast,) = _run("AddV2", [big, one], in_plan=True)
    _same(fast, _run("AddV2", [big, one])[0])
    assert fast == np.iinfo(np.int32).min


@pytest.mark.parametrize("op", ["Neg", "Exp", "Tanh", "Sqrt", "Log", "Abs", "Floor", "Ceil",
                                "Square", "Sigmoid", "Rsqrt", "IsNan", "LogicalNot"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_unary_kernels_in_a_plan_match_the_general_path(op, dtype):
    x = np.array([[-3.5, -1.0, 0.0, 0.5, 2.0, 90.0]], dtype)
    if op == "LogicalNot":
        x = x > 0
    for value in (x, x[0, 3]):
        value = np.asarray(value)
        (fast,), (general,) = _run(op, [value], in_plan=True), _run(op, [value])
        assert fast.dtype == general.dtype and fast.shape == general.shape
        np.testing.assert_allclose(fast.astype(np.float64), general.astype(np.float64),
                                   rtol=2e-7 if np.dtype(dtype) != np.float16 else 1e-3)


def test_sigmoid_is_accurate_in_both_tails():
    x = np.array([-100.0, -80.0, -20.0, -1e-3, 0.0, 1e-3, 20.0, 100.0], F32)
    (y,) = _run("Sigmoid", [x], in_plan=True)
    expected = np.array([1 / (1 + math.exp(-float(v))) for v in x])
    np.testing.assert_allclose(y, expected, rtol=1e-6, atol=1e-38)


# --------------------------------------------------------------------------- erf / erfc

def test_float32_erf_and_erfc_are_accurate_to_float32():
    x = np.concatenate([np.linspace(-10.5, 10.5, 20001), np.geomspace(1e-30, 1, 300),
                        -np.geomspace(1e-30, 1, 300)]).astype(F32)
    for fn, exact in ((erf_float32, math.erf), (erfc_float32, math.erfc)):
        got = fn(x).astype(np.float64)
        expected = np.array([exact(float(v)) for v in x])
        tiny = np.abs(expected) < 1e-37
        np.testing.assert_allclose(got[~tiny], expected[~tiny], rtol=1e-6)
        assert np.all(np.abs(got[tiny]) < 1e-37)
    special = np.array([np.inf, -np.inf, np.nan, 0.0, -0.0], F32)
    np.testing.assert_array_equal(erfc_float32(special)[:2], [0.0, 2.0])
    np.testing.assert_array_equal(erf_float32(special)[:2], [1.0, -1.0])
    assert np.isnan(erfc_float32(special)[2]) and np.isnan(erf_float32(special)[2])
    assert erf_float32(special)[3] == 0 and erfc_float32(special)[3] == 1


# --------------------------------------------------------------------------- einsum, softmax

@pytest.mark.parametrize("equation, shapes", [
    ("BTNH,BSNH->BNTS", [(2, 5, 3, 4), (2, 6, 3, 4)]),
    ("BNTS,BSNH->BTNH", [(2, 3, 5, 6), (2, 6, 3, 4)]),
    ("ij,jk->ik", [(3, 4), (4, 5)]),
    ("bij,bjk->bki", [(2, 3, 4), (2, 4, 5)]),
    ("ab,cd->abcd", [(2, 3), (4, 5)]),
    ("abc,abc->ab", [(2, 3, 4), (2, 3, 4)]),
    ("...ij,...jk->...ik", [(2, 3, 4), (2, 4, 5)]),
    ("iij,jk->ik", [(3, 3, 4), (4, 2)]),   # a repeated label: the general path
    ("ij,jk->i", [(3, 4), (4, 2)]),        # a label summed in one operand only
])
def test_einsum_as_a_matmul_matches_numpy(equation, shapes):
    rng = np.random.default_rng(2)
    operands = [rng.standard_normal(s).astype(F32) for s in shapes]
    wide = [x.astype(np.float64) for x in operands]
    reference = np.einsum(equation, *wide)
    magnitude = np.einsum(equation, *(np.abs(x) for x in wide))
    inputs, output = equation.split("->")
    sizes = {}
    for term, shape in zip(inputs.split(","), shapes):  # labels from the right ('...' first)
        sizes.update(zip(reversed(term.replace("...", "")), reversed(shape)))
    terms = math.prod(sizes[label] for label in set(sizes) - set(output))
    for _ in range(2):  # the second call takes the cached plan
        (got,) = _run("Einsum", operands, {"equation": equation})
        assert_within_dot_bound(got, reference, magnitude, max(terms, 1), equation)


def test_softmax_over_short_rows_matches_the_general_path():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 4, 7)).astype(F32) * 30
    x[0, 0, 0] = -np.inf
    for op in ("Softmax", "LogSoftmax"):
        (fast,) = _run(op, [x])
        (general,) = _run(op, [x], backend="array_api_strict")
        np.testing.assert_allclose(fast, general, rtol=1e-6, atol=1e-6)


SOFTMAX_SHAPES = [(1, 2), (1, 4), (1, 63), (1, 64), (1, 65), (0, 4), (0, 1), (1, 1), (3, 1),
                  (5, 7), (2, 1, 7), (1, 1, 5), (4, 0), (1, 3, 2)]


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("shape", SOFTMAX_SHAPES, ids=str)
def test_softmax_never_writes_into_its_input(shape, dtype):
    """Regression: for one row the short-row path transposed a view of the input, in place."""
    rng = np.random.default_rng(11)
    x = (rng.standard_normal(shape) * 4).astype(dtype)
    x.flags.writeable = False
    before = x.copy()
    wide64 = x.astype(np.float64)
    shifted = wide64 - (wide64.max(axis=-1, keepdims=True) if shape[-1] else 0)
    with np.errstate(divide="ignore"):  # an empty row: log(0)
        log_total = np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    eps = np.finfo(np.float32 if dtype == np.float16 else dtype).eps
    for op, reference in (("Softmax", np.exp(shifted - log_total)), ("LogSoftmax", shifted - log_total)):
        (got,) = _run(op, [x])
        _same(x, before)
        assert got.dtype == x.dtype and got.shape == x.shape
        # exp, sum over the row and log/divide in the compute precision, then rounding to dtype
        bound = (shape[-1] + 4) * eps * (np.abs(reference) + np.abs(log_total) + 1)
        bound = bound + np.abs(reference) * np.finfo(dtype).eps
        assert np.all(np.abs(got.astype(np.float64) - reference) <= bound), op


#: one row each: whether exp(x) / sum(exp(x)) (no row maximum) may be used, per dtype
UNSHIFTED_ROWS = {
    "sum above 1": ([2.0, -1.0, 0.5, 0.0], True, True),
    "zeros of both signs": ([0.0, -0.0, 0.0, 0.0], True, True),
    "-inf logit": ([-np.inf, 1.0, 2.0, 0.0], True, True),
    "exps subnormal where p is": ([0.0, -95.0, -103.0, -745.0], True, True),
    "large finite sum": ([85.0, 80.0, 0.0, -3.0], True, True),
    "sum below 1": ([-30.0, -31.0, -29.5, -40.0], False, False),
    "exps subnormal in float32": ([-100.0, -103.0, -95.0, -110.0], False, False),
    "sum beyond float32": ([88.5, 88.5, 88.5, 88.5], False, True),
    "sum beyond float64": ([709.0, 709.0, 709.0, 88.5], False, False),
    "exp overflows": ([800.0, 0.0, 1.0, 2.0], False, False),
    "all -inf": ([-np.inf] * 4, False, False),
    "NaN": ([np.nan, 1.0, 2.0, 0.0], False, False),
    "+inf": ([np.inf, 1.0, 2.0, 0.0], False, False),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", list(UNSHIFTED_ROWS))
def test_softmax_without_the_row_maximum_only_where_its_rounding_holds(case, dtype):
    """Softmax of a few rows skips the row maximum when every row's sum of exps lies in
    [1, the dtype's largest value]; elsewhere the shifted form runs. At batch 1 and among
    other rows, on read-only inputs, both forms are within the rounding of exp, a sum of
    `width` terms and the division of the float64 result (subnormal results: within the
    smallest normal, as TensorFlow flushes them to zero); NaN/+inf/all -inf rows are NaN."""
    from sm_notebook.engine.ops import nn_ops

    values, fits32, fits64 = UNSHIFTED_ROWS[case]
    with np.errstate(over="ignore"):
        row = np.array(values, dtype)
    other = np.array([1.0, 3.0, -2.0, 0.5], dtype)
    eps, tiny = np.finfo(dtype).eps, np.finfo(dtype).tiny
    for x in (row[None, :], np.stack([other, row, other[::-1]]), row[None, None, :]):
        x.flags.writeable = False
        before = x.copy()
        fits = fits32 if dtype == np.float32 else fits64
        with np.errstate(all="ignore"):  # as in a plan run
            assert (nn_ops._softmax_unshifted(x) is not None) == fits, case
        (got,) = _run("Softmax", [x], in_plan=True)
        _same(x, before)
        assert got.dtype == x.dtype and got.shape == x.shape
        wide = x.astype(np.float64)
        if case in ("NaN", "+inf", "all -inf"):
            assert np.isnan(got[..., 1 if x.shape[0] == 3 else 0, :] if x.ndim == 2 else got).all()
            continue
        with np.errstate(invalid="ignore"):
            shifted = wide - wide.max(axis=-1, keepdims=True)
        p = np.exp(shifted) / np.exp(shifted).sum(axis=-1, keepdims=True)
        bound = (x.shape[-1] + 4) * eps * p + tiny
        assert np.all(np.abs(got.astype(np.float64) - p) <= bound), case


def _example_with_logits(tmp_path):
    """The bundled TF1 example with a signature that returns the logits and probabilities."""
    from sm_notebook.builder import Builder
    from sm_notebook.examples import example_model_path

    builder = Builder.from_saved_model(example_model_path())
    builder.add_signature("both", {"x": "x:0"},
                          {"logits": "logits:0", "probabilities": "probabilities:0"}, tags="serve")
    return load_model(builder.save(tmp_path / "example"), tags=["serve"])


def test_the_bundled_example_at_batch_1_keeps_logits_apart_from_probabilities(tmp_path):
    from pathlib import Path
    fixtures = Path(__file__).resolve().parents[1] / "fixtures" / "expected"
    stored = np.load(fixtures / "tf1_multi_tags.npz", allow_pickle=True)
    variables = np.load(fixtures / "tf1_multi_tags.variables.npz")
    weights, bias = variables["weights"].astype(np.float64), variables["bias"].astype(np.float64)
    xs = stored["serve|serving_default|inputs|x"]
    tf_probabilities = stored["serve|serving_default|outputs|probabilities"]  # TensorFlow's, batch 3
    both = _example_with_logits(tmp_path).signatures["both"]
    eps = float(np.finfo(F32).eps)
    for row, tf_row in zip(xs, tf_probabilities):
        x = row[None, :].copy()
        x.flags.writeable = False
        out = both(x=x).numpy()
        logits64 = x.astype(np.float64) @ weights + bias
        # a dot product of n terms plus a bias: gamma_{n+1} * (sum |x||w| + |b|)
        n = weights.shape[0] + 1
        logit_bound = n * eps / (1 - n * eps) * (np.abs(x) @ np.abs(weights) + np.abs(bias))
        assert np.all(np.abs(out["logits"] - logits64) <= logit_bound)
        assert not np.allclose(out["logits"], out["probabilities"])
        # softmax: a logit error E moves p by at most ~2E relatively; plus its own rounding
        p64 = np.exp(logits64 - logits64.max()) / np.exp(logits64 - logits64.max()).sum()
        p_bound = p64 * (2 * logit_bound.max() + 8 * eps) * 1.01
        assert np.all(np.abs(out["probabilities"] - p64) <= p_bound)
        assert np.all(np.abs(out["probabilities"] - tf_row) <= 2 * p_bound)  # TensorFlow's own error too


def test_softmax_of_a_signature_input_leaves_the_callers_array_unchanged(tmp_path):
    nodes = [placeholder("x", F32, (None, 4)),
             node("p", "Softmax", ["x"], T=F32), node("lp", "LogSoftmax", ["x"], T=F32)]
    outputs = {"p": ("p:0", F32, (None, 4)), "lp": ("lp:0", F32, (None, 4))}
    fn = _load(tmp_path, nodes, outputs, {"x": ("x:0", F32, (None, 4))})
    for writeable in (True, False):
        x = np.array([[1.0, 2.0, 3.0, 4.0]], F32)
        x.flags.writeable = writeable
        out = fn(x=x).numpy()
        np.testing.assert_array_equal(x, [[1.0, 2.0, 3.0, 4.0]])
        np.testing.assert_allclose(out["p"].sum(), 1.0, rtol=4 * np.finfo(F32).eps)
        np.testing.assert_allclose(np.exp(out["lp"]), out["p"], rtol=8 * np.finfo(F32).eps)


# --------------------------------------------------------------------------- slicing caches

def test_strided_slice_and_split_caches_follow_their_inputs():
    begin, end, strides = (np.array(v, np.int32) for v in ([0, 1], [0, 3], [1, 1]))
    for arr in (begin, end, strides):
        arr.flags.writeable = False  # as plan constants are
    attrs = {"begin_mask": 1, "end_mask": 1}
    for shape in [(4, 5), (6, 5), (4, 8)]:
        x = np.arange(math.prod(shape), dtype=F32).reshape(shape)
        for _ in range(2):
            (got,) = _run("StridedSlice", [x, begin, end, strides], attrs)
            _same(got, x[:, 1:3])
    axis = np.asarray(1, np.int32)
    axis.flags.writeable = False
    attrs = {"num_split": 2}
    for shape in [(3, 4), (3, 6)]:
        x = np.arange(math.prod(shape), dtype=F32).reshape(shape)
        for _ in range(2):
            left, right = _run("Split", [axis, x], attrs)
            _same(left, x[:, :shape[1] // 2])
            _same(right, x[:, shape[1] // 2:])


# --------------------------------------------------------------------------- convolution

CONV_CASES = [  # (input NHWC, filter, strides, dilations, padding, explicit pads)
    ((5, 21, 19, 16), (3, 3, 16, 6), (1, 1), (1, 1), "SAME", None),
    ((3, 64, 64, 16), (3, 3, 16, 4), (1, 1), (1, 1), "SAME", None),   # im2col in chunks
    ((1, 70, 66, 40), (3, 3, 40, 2), (1, 1), (1, 1), "SAME", None),   # rows of one image
    ((2, 9, 11, 3), (1, 1, 3, 5), (2, 3), (1, 1), "VALID", None),     # strided 1x1
    ((2, 9, 11, 3), (1, 1, 3, 5), (1, 1), (1, 1), "SAME", None),      # 1x1: one matmul
    ((2, 12, 10, 4), (3, 2, 4, 3), (3, 2), (2, 1), "SAME", None),
    ((2, 7, 8, 2), (4, 3, 2, 3), (2, 1), (1, 2), "EXPLICIT", [(3, 0), (1, 4)]),
    ((1, 3, 3, 2), (5, 5, 2, 2), (1, 1), (1, 1), "SAME", None),       # window past the input
]


def _geometry_attrs(strides, dilations, padding, pads):
    attrs = {"strides": [1, *strides, 1], "dilations": [1, *dilations, 1], "padding": padding}
    if pads:
        attrs["explicit_paddings"] = [0, 0, *pads[0], *pads[1], 0, 0]
    return attrs


@pytest.mark.parametrize("case", CONV_CASES)
def test_conv_fast_paths_match_the_general_path(case):
    pytest.importorskip("array_api_strict")
    x_shape, w_shape, strides, dilations, padding, pads = case
    rng = np.random.default_rng(4)
    x = rng.standard_normal(x_shape).astype(F32)
    attrs = _geometry_attrs(strides, dilations, padding, pads)
    w = rng.standard_normal(w_shape).astype(F32)
    window = w_shape[0] * w_shape[1]
    out = _check_fast_and_general("Conv2D", [x, w], attrs, terms=window * w_shape[2])
    for multiplier in (1, 2):
        dw = rng.standard_normal((*w_shape[:2], x_shape[-1], multiplier)).astype(F32)
        fast = _check_fast_and_general("DepthwiseConv2dNative", [x, dw], attrs, terms=window)
        sizes = np.array(x_shape, np.int32)
        dy = rng.standard_normal(fast.shape).astype(F32)
        _check_fast_and_general("DepthwiseConv2dNativeBackpropInput", [sizes, dw, dy], attrs,
                                terms=window * multiplier)
    sizes = np.array(x_shape, np.int32)
    dy = rng.standard_normal(out.shape).astype(F32)
    _check_fast_and_general("Conv2DBackpropInput", [sizes, w, dy], attrs, terms=window * w_shape[3])


@pytest.mark.parametrize("op", ["MaxPool", "AvgPool"])
def test_pool_fast_paths_match_the_general_path(op):
    pytest.importorskip("array_api_strict")
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 13, 11, 5)).astype(F32)
    for window, strides, padding in [((2, 2), (2, 2), "VALID"), ((3, 3), (2, 2), "SAME"),
                                     ((3, 2), (1, 3), "SAME"), ((4, 4), (3, 3), "SAME")]:
        attrs = {"ksize": [1, *window, 1], "strides": [1, *strides, 1], "padding": padding}
        if op == "MaxPool":  # no rounding at all
            _same(_run(op, [x], attrs)[0], _run(op, [x], attrs, "array_api_strict")[0])
        else:  # a sum of the window, then a division: one more rounding
            _check_fast_and_general(op, [x], attrs, terms=window[0] * window[1] + 1)


def test_avg_pool_with_a_one_by_one_window_leaves_its_input_alone():
    """The general path's window sum of a 1x1 window is a view of the input: the division
    by the counts must not write into it (a read-only input raised, a writable one changed)."""
    x = np.arange(2 * 3 * 3 * 2, dtype=F32).reshape(2, 3, 3, 2)
    before = x.copy()
    attrs = {"ksize": [1, 1, 1, 1], "strides": [1, 2, 2, 1], "padding": "VALID"}
    (got,) = _run("AvgPool", [x], attrs)
    np.testing.assert_array_equal(x, before)
    np.testing.assert_array_equal(got, x[:, ::2, ::2])
    x.flags.writeable = False
    np.testing.assert_array_equal(_run("AvgPool", [x], attrs)[0], before[:, ::2, ::2])


# --------------------------------------------------------------------------- fusion

def _load(tmp_path, nodes, outputs, inputs, functions=(), backend="numpy"):
    mg = meta_graph(nodes, {"serving_default": signature(inputs, outputs)}, functions)
    return load_model(save(tmp_path / backend, mg), backend=backend).signatures["serving_default"]


def _conv_net(rng):
    w = rng.standard_normal((3, 3, 4, 6)).astype(F32)
    dw = rng.standard_normal((3, 3, 6, 1)).astype(F32)
    return [placeholder("x", F32, (None, 9, 9, 4)),
            const("w", w), const("b", rng.standard_normal(6).astype(F32)),
            const("s", rng.standard_normal(6).astype(F32)),
            const("pads", np.array([[0, 0], [1, 1], [1, 1], [0, 0]], np.int32)),
            const("dw", dw), const("db", rng.standard_normal(6).astype(F32)),
            node("conv", "Conv2D", ["x", "w"], strides=[1, 1, 1, 1], padding="SAME"),
            node("bias", "BiasAdd", ["conv", "b"]),
            node("scale", "Mul", ["bias", "s"]),
            node("relu6", "Relu6", ["scale"]),
            node("pad", "Pad", ["relu6", "pads"]),
            node("depthwise", "DepthwiseConv2dNative", ["pad", "dw"], strides=[1, 2, 2, 1],
                 padding="VALID"),
            node("dbias", "AddV2", ["db", "depthwise"]),
            node("relu", "Relu", ["dbias"]),
            node("conv2", "Conv2D", ["relu", "w2"], strides=[1, 1, 1, 1], padding="SAME"),
            const("w2", rng.standard_normal((1, 1, 6, 6)).astype(F32)),
            node("residual", "AddV2", ["conv2", "relu"])]


def test_epilogues_fuse_into_their_producer_and_give_the_same_results(tmp_path):
    pytest.importorskip("array_api_strict")
    rng = np.random.default_rng(6)
    nodes = _conv_net(rng)
    inputs = {"x": ("x:0", F32, (None, 9, 9, 4))}
    outputs = {"y": ("residual:0", F32, (None, 5, 5, 6))}
    fused = _load(tmp_path, nodes, outputs, inputs)
    general = _load(tmp_path, nodes, outputs, inputs, backend="array_api_strict")
    x = rng.standard_normal((2, 9, 9, 4)).astype(F32)
    np.testing.assert_allclose(fused(x=x).numpy()["y"], general(x=x).numpy()["y"], rtol=1e-5, atol=1e-5)
    described = fused.plan.describe()
    assert "(Conv2D + BiasAdd + Relu6)" in described  # the Mul folded into filter and bias
    assert "(DepthwiseConv2dNative + AddV2 + Relu)" in described
    assert "(Conv2D + AddV2)" in described and "Pad" not in described
    assert len(fused.plan) == 3
    np.testing.assert_allclose(fused(x=x).numpy()["y"], general(x=x).numpy()["y"], rtol=1e-5, atol=1e-5)


def _batch_norm_net(rng):
    """Keras 3's conv / dense with bias then an inference batch norm (Mul, AddV2 of constants),
    and a (1, 1, 3) shift that widens the dense output: it folds into an AddV2's constant
    (broadcast with it), never into a BiasAdd's (whose output keeps its input's shape)."""
    return [placeholder("x", F32, (None, 6, 7, 4)), placeholder("m", F32, (None, 4)),
            const("w", rng.standard_normal((3, 3, 4, 5)).astype(F32)),
            const("b", rng.standard_normal(5).astype(F32)),
            const("s", rng.standard_normal((1, 1, 1, 5)).astype(F32)),
            const("t", rng.standard_normal(5).astype(F32)),
            node("conv", "Conv2D", ["x", "w"], strides=[1, 1, 1, 1], padding="SAME"),
            node("bias", "BiasAdd", ["conv", "b"]),
            node("scale", "Mul", ["s", "bias"]),
            node("shift", "AddV2", ["t", "scale"]),
            node("relu", "Relu", ["shift"]),
            const("wm", rng.standard_normal((4, 3)).astype(F32)),
            const("bm", rng.standard_normal(3).astype(F32)),
            const("bm2", rng.standard_normal((1, 3)).astype(F32)),
            const("sm", np.array(-1.5, F32)),
            const("tm", rng.standard_normal((1, 1, 3)).astype(F32)),
            node("dense", "MatMul", ["m", "wm"]),
            node("dbias", "BiasAdd", ["dense", "bm"]),
            node("dscale", "Mul", ["dbias", "sm"]),
            node("dshift", "AddV2", ["dscale", "tm"]),
            node("dense2", "MatMul", ["m", "wm"]),
            node("dbias2", "AddV2", ["dense2", "bm2"]),
            node("dshift2", "AddV2", ["tm", "dbias2"])]


def test_batch_norm_constants_fold_through_the_bias_within_the_float32_bound(tmp_path):
    rng = np.random.default_rng(8)
    nodes = _batch_norm_net(rng)
    inputs = {"x": ("x:0", F32, (None, 6, 7, 4)), "m": ("m:0", F32, (None, 4))}
    outputs = {"y": ("relu:0", F32, None), "d": ("dshift:0", F32, None), "e": ("dshift2:0", F32, None)}
    fn = _load(tmp_path, nodes, outputs, inputs)
    described = fn.plan.describe()
    assert "conv (Conv2D + BiasAdd + Relu)" in described       # Mul and AddV2 folded
    assert "dense (MatMul + BiasAdd + AddV2)" in described     # the Mul folded, tm not
    assert "dense2 (MatMul + AddV2)" in described              # tm folded into bm2
    c = {name: _const(nodes, name).astype(np.float64) for name in ("w", "b", "s", "t", "wm", "bm", "sm", "tm", "bm2")}
    for batch in (1, 3, 0):
        x = rng.standard_normal((batch, 6, 7, 4)).astype(F32)
        m = rng.standard_normal((batch, 4)).astype(F32)
        x.flags.writeable = m.flags.writeable = False
        out = fn(x=x, m=m).numpy()
        attrs = {"strides": [1, 1, 1, 1], "padding": "SAME"}
        (conv,) = _run("Conv2D", [x.astype(np.float64), c["w"]], attrs)
        (size,) = _run("Conv2D", [np.abs(x.astype(np.float64)), np.abs(c["w"])], attrs)
        reference = np.maximum((conv + c["b"]) * c["s"] + c["t"], 0)
        magnitude = (size + np.abs(c["b"])) * np.abs(c["s"]) + np.abs(c["t"])
        assert_within_dot_bound(out["y"], reference, magnitude, 9 * 4 + 3, "conv with batch norm")
        dense = m.astype(np.float64) @ c["wm"]
        reference = (dense + c["bm"]) * c["sm"] + c["tm"]
        magnitude = (np.abs(m.astype(np.float64)) @ np.abs(c["wm"]) + np.abs(c["bm"])) * abs(c["sm"]) + np.abs(c["tm"])
        assert_within_dot_bound(out["d"], reference, magnitude, 4 + 3, "dense with batch norm")
        reference = dense + c["bm2"] + c["tm"]
        magnitude = np.abs(m.astype(np.float64)) @ np.abs(c["wm"]) + np.abs(c["bm2"]) + np.abs(c["tm"])
        assert_within_dot_bound(out["e"], reference, magnitude, 4 + 2, "dense with two shifts")


def test_fused_step_writes_only_what_its_producer_allocated():
    """`fusion._fused` with a bias and a Relu link: a producer that returns its input or a
    view of it gets a copy written (the input is never changed); one whose run says
    ``fresh`` has its own output written in place; outputs of a new dtype at the same shape
    rebind the in-place forms; integer outputs take the links' own kernels."""
    from sm_notebook.engine import fusion

    bias = np.array([0.5, -1.0, 2.0], F32)

    def add_kernel(inputs):
        return [np.add(*inputs)]

    def relu_kernel(inputs):
        return [np.maximum(inputs[0], 0)]

    def links():
        return [fusion._channel_step(add_kernel, bias, True, np.add), fusion._clip_step(relu_kernel, 0.0, None)]

    def expected(x):
        return np.maximum(x + bias, 0)

    x = np.array([[1.0, -2.0, -3.0], [0.0, 0.25, -0.5]], F32)
    x.flags.writeable = False
    before = x.copy()
    for produce in (lambda inputs: [inputs[0]], lambda inputs: [inputs[0][:, :]],
                    lambda inputs: [np.ascontiguousarray(inputs[0].T).T]):
        run = fusion._fused(produce, 1, links())
        for _ in range(2):
            (y,) = run([x])
            _same(y, expected(x))
            _same(x, before)
    writable = x.copy()
    run = fusion._fused(lambda inputs: [inputs[0]], 1, links())
    (y,) = run([writable])
    assert y is not writable
    _same(writable, before)

    made = []

    def fresh(inputs):
        made.append(inputs[0] * 1)
        return [made[-1]]
    fresh.fresh = True
    run = fusion._fused(fresh, 1, links())
    for value in (x, x.astype(np.float64), x, x[:1], x.astype(np.int32)):
        (y,) = run([value])
        np.testing.assert_array_equal(y, expected(value))
        assert y.dtype == expected(value).dtype
        if value.dtype == F32:
            assert y is made[-1]  # written in place
    _same(x, before)


def test_a_fetched_link_ends_the_chain(tmp_path):
    rng = np.random.default_rng(7)
    nodes = _conv_net(rng)
    inputs = {"x": ("x:0", F32, (None, 9, 9, 4))}
    fn = _load(tmp_path, nodes, {"y": ("residual:0", F32, None), "b": ("bias:0", F32, None)}, inputs)
    described = fn.plan.describe()
    assert "conv (Conv2D + BiasAdd)" in described
    assert "scale (Mul)" in described and "relu6 (Relu6)" in described
    x = rng.standard_normal((1, 9, 9, 4)).astype(F32)
    out = fn(x=x).numpy()
    (conv,) = _run("Conv2D", [x, _const(nodes, "w")], {"strides": [1, 1, 1, 1], "padding": "SAME"})
    np.testing.assert_allclose(out["b"], conv + _const(nodes, "b"), rtol=1e-5, atol=1e-5)


def _const(nodes, name):
    from sm_notebook.format.tensors import tensor_proto_to_numpy
    (found,) = [n for n in nodes if n.name == name]
    return tensor_proto_to_numpy(found.attr["value"].tensor)


# --------------------------------------------------------------------------- While hoisting

class _Calls:
    n = 0


def _counting_mul(ctx, inputs, attrs):
    _Calls.n += 1
    return [inputs[0] * inputs[1]]


def test_loop_invariant_steps_of_a_while_body_run_once_per_loop(tmp_path, monkeypatch):
    install_test_op(monkeypatch, "_TCountMul", _counting_mul)
    _Calls.n = 0
    cond = function("cond_f", [("i", F32), ("v", F32), ("k", F32)], {"out": "lt:z:0"},
                    [const("lim", 4.0, F32), node("lt", "Less", ["i", "lim:output:0"], T=F32)])
    body = function("body_f", [("i", F32), ("v", F32), ("k", F32)],
                    {"i2": "inc:z:0", "v2": "acc:z:0", "k2": "k"},
                    [const("one", 1.0, F32), node("inc", "AddV2", ["i", "one:output:0"], T=F32),
                     node("kk", "_TCountMul", ["k", "k"]),             # invariant: hoisted
                     node("acc", "AddV2", ["v", "kk:z:0"], T=F32)])
    nodes = [placeholder("x"), placeholder("k", F32, ()), const("zero", 0.0, F32),
             node("loop", "While", ["zero", "x", "k"], cond=Func("cond_f"), body=Func("body_f"),
                  T=[F32, F32, F32])]
    inputs = {"x": ("x:0", F32, (None,)), "k": ("k:0", F32, ())}
    fn = _load(tmp_path, nodes, {"w": ("loop:1", F32, (None,))}, inputs, [cond, body])
    out = fn(x=np.array([1.0, 2.0], F32), k=np.float32(3.0)).numpy()["w"]
    np.testing.assert_array_equal(out, [37.0, 38.0])
    assert _Calls.n == 1
    out = fn(x=np.array([0.0], F32), k=np.float32(2.0)).numpy()["w"]   # a new loop: recomputed
    np.testing.assert_array_equal(out, [16.0])
    assert _Calls.n == 2


# --------------------------------------------------------------------------- straight-line plans

def test_repeated_runs_agree_and_failures_name_the_node(tmp_path):
    I32 = np.int32
    nodes = [placeholder("x"), placeholder("d", I32, ()), const("axis", np.int32(0)),
             const("k", np.float32(2.5)), const("ten", np.int32(10)),
             node("split", "Split", ["axis", "x"], num_split=2, T=F32),
             node("prod", "Mul", ["split", "split:1"], T=F32),
             node("scaled", "Mul", ["prod", "k"], T=F32),
             node("quot", "FloorDiv", ["ten", "d"], T=np.dtype(I32))]
    inputs = {"x": ("x:0", F32, (None,)), "d": ("d:0", I32, ())}
    outputs = {"y": ("scaled:0", F32, (None,)), "x": ("x:0", F32, (None,)), "k": ("k:0", F32, ()),
               "q": ("quot:0", I32, ())}
    fn = _load(tmp_path, nodes, outputs, inputs)
    x = np.array([1.0, 2.0, 3.0, 4.0], F32)
    first = fn(x=x, d=np.int32(3)).numpy()
    for _ in range(3):  # later runs reuse the prepared steps' remembered split indices
        out = fn(x=x, d=np.int32(3)).numpy()
        for key in first:
            _same(out[key], first[key])
    np.testing.assert_array_equal(first["y"], [7.5, 20.0])
    with pytest.raises(Exception, match="quot"):
        fn(x=x, d=np.int32(0))
