"""NaN/Inf, signed-zero and integer edge semantics of TensorFlow's CPU kernels.

Every case runs our kernel and ``tf.raw_ops`` on the same special values (NaN, +-inf,
+-0, halves for rounding, INT_MIN/INT_MAX, zero divisors) on both backends. NaN, inf
and the sign of zero must agree exactly; finite values within the usual tolerance.
TensorFlow's CPU executor flushes subnormal results to zero (FTZ): where TensorFlow gives
+-0 and ours is subnormal, the values count as equal (see tests/ops/EXCLUSIONS.md).
"""
from __future__ import annotations

import numpy as np
import pytest

from harness import BACKENDS, FLOAT_TOLERANCE, run_kernel
from raw_oracle import run_program
from tf_call import BFLOAT16, compare_error, skip_unless_tf_supports, tf_outputs

#: Cases we do not run, with the reason (also listed in tests/ops/EXCLUSIONS.md).
EXCLUDED = {
    "softmax-nan-rows": "Softmax of a row holding NaN or +inf: TensorFlow's oneDNN kernel (float32 "
                        "and half floats, on by default on x86) gives NaN only where x - max(x) "
                        "is NaN and 0 elsewhere; its Eigen kernel (float64, or "
                        "TF_ENABLE_ONEDNN_OPTS=0) and ours give NaN for the whole row",
}

FLOATS = [np.float32, np.float64, np.float16]
# No subnormals: TensorFlow's CPU kernels run with denormals flushed to zero (FTZ/DAZ).
FLOAT_SPECIALS = [np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, -1.0, 0.5, -0.5, 1.5, -1.5, 2.5, -2.5,
                  3.0, -3.0, 88.8, -104.0, 100.0, -100.0, 1e10, -1e10, 1e30, -1e30]


def _specials(dtype):
    with np.errstate(over="ignore"):
        return np.array(FLOAT_SPECIALS, dtype)


def _int_specials(dtype):
    info = np.iinfo(dtype)
    values = {info.min, info.min + 1, -7, -2, -1, 0, 1, 2, 7, info.max - 1, info.max}
    return np.array(sorted(v for v in values if info.min <= v <= info.max), dtype)


def assert_same_specials(ours, expected, what):
    """Same shape and dtype; NaN, inf and zero signs exact; finite values within tolerance."""
    assert ours.shape == expected.shape and ours.dtype == expected.dtype, what
    if expected.dtype.kind != "f" and expected.dtype != BFLOAT16:
        np.testing.assert_array_equal(ours, expected, err_msg=what)
        return
    ours64, expected64 = ours.astype(np.float64), expected.astype(np.float64)
    tiny = float(np.finfo(np.float32 if expected.dtype == BFLOAT16 else expected.dtype).tiny)
    flushed = (expected64 == 0) & (np.abs(ours64) < tiny)   # TensorFlow's FTZ
    ours64 = np.where(flushed, expected64, ours64)
    np.testing.assert_array_equal(np.isnan(ours64), np.isnan(expected64), err_msg=f"{what}: NaN")
    np.testing.assert_array_equal(np.where(np.isinf(ours64), ours64, 0),
                                  np.where(np.isinf(expected64), expected64, 0), err_msg=f"{what}: inf")
    zeros = (expected64 == 0) & (ours64 == 0)
    np.testing.assert_array_equal(np.signbit(ours64[zeros]), np.signbit(expected64[zeros]),
                                  err_msg=f"{what}: sign of zero")
    finite = np.isfinite(expected64) & np.isfinite(ours64)
    tolerance = FLOAT_TOLERANCE.get(expected.dtype, dict(rtol=1e-2, atol=1e-2))
    np.testing.assert_allclose(ours64[finite], expected64[finite], err_msg=what, **tolerance)


def check(op, inputs, attrs=None, backend="numpy"):
    """Our kernel gives TensorFlow's special values for ``op`` on ``inputs``."""
    expected = tf_outputs(op, inputs, attrs)
    ours = run_kernel(op, inputs, attrs, backend=backend)
    assert len(ours) == len(expected), op
    for i, (a, b) in enumerate(zip(ours, expected)):
        assert_same_specials(a, b, f"{op} output {i} on {backend} for {[np.asarray(x).dtype.name for x in inputs]}")


# --------------------------------------------------------------------------- float elementwise

UNARY = ["Abs", "Neg", "Sign", "Floor", "Ceil", "Rint", "Round", "Reciprocal", "Square", "Sqrt",
         "Rsqrt", "Exp", "Expm1", "Log", "Log1p", "Sin", "Cos", "Tan", "Asin", "Acos", "Atan",
         "Sinh", "Cosh", "Tanh", "Asinh", "Acosh", "Atanh", "Sigmoid", "Erf", "Erfc", "Lgamma",
         "Digamma", "IsNan", "IsInf", "IsFinite", "Softplus", "Softsign", "Relu", "Relu6", "Elu",
         "Selu", "LeakyRelu"]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", FLOATS + [BFLOAT16], ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("op", UNARY)
def test_unary_specials(op, dtype, backend):
    """NaN/inf/+-0 in unary ops: Sqrt/Log of negatives, Softplus at large inputs, Round halves."""
    with np.errstate(over="ignore"):
        x = _specials(np.float32).astype(dtype)
    skip_unless_tf_supports(op, [x])
    check(op, [x], backend=backend)


BINARY = ["Add", "Sub", "Mul", "Div", "RealDiv", "DivNoNan", "MulNoNan", "FloorDiv", "FloorMod",
          "TruncateDiv", "TruncateMod", "Mod", "Pow", "Maximum", "Minimum", "SquaredDifference",
          "Atan2", "Xlogy", "Xlog1py", "Xdivy"]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", FLOATS, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("op", BINARY)
def test_binary_specials(op, dtype, backend):
    """Every pair of special values: atan2 of +-0/+-inf, NaN in Minimum/Maximum, Pow(NaN, 0),
    FloorMod's sign, x/0, inf - inf."""
    values = _specials(dtype)
    x, y = (np.ascontiguousarray(a) for a in np.meshgrid(values, values, indexing="ij"))
    skip_unless_tf_supports(op, [x, y])
    check(op, [x, y], backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", FLOATS, ids=lambda d: np.dtype(d).name)
def test_round_is_half_to_even(dtype, backend):
    x = np.array([-3.5, -2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 3.5, 4.5, -0.0, 0.49999997, 1e30, np.nan,
                  np.inf, -np.inf], np.float64)
    with np.errstate(over="ignore"):
        x = x.astype(dtype)
    for op in ("Round", "Rint"):
        if op == "Rint" and dtype == np.float16:
            continue  # TensorFlow's CPU build has no float16 Rint kernel
        check(op, [x], backend=backend)


# --------------------------------------------------------------------------- integers

INTS = [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", INTS, ids=lambda d: np.dtype(d).name)
def test_integer_overflow_wraps(dtype, backend):
    """Add/Sub/Mul/Neg/Abs/Square at INT_MIN and INT_MAX wrap as TensorFlow's kernels do."""
    values = _int_specials(dtype)
    x, y = (np.ascontiguousarray(a) for a in np.meshgrid(values, values, indexing="ij"))
    for op in ("Add", "AddV2", "Sub", "Mul", "Maximum", "Minimum", "SquaredDifference"):
        if op == "SquaredDifference" and np.dtype(dtype).kind == "u":
            continue  # no unsigned kernel in TensorFlow
        skip_unless_tf_supports(op, [x, y])
        check(op, [x, y], backend=backend)
    for op in ("Neg", "Abs", "Square", "Sign"):
        if op in ("Neg", "Abs", "Sign") and np.dtype(dtype).kind == "u":
            continue
        skip_unless_tf_supports(op, [values])
        check(op, [values], backend=backend)


DIVISIONS = ["Div", "FloorDiv", "TruncateDiv", "FloorMod", "TruncateMod", "Mod", "DivNoNan"]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", INTS, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("op", DIVISIONS)
def test_integer_division_edges(op, dtype, backend):
    """Non-zero divisors including INT_MIN / -1; a zero divisor is an error (DivNoNan: 0)."""
    values = _int_specials(dtype)
    x, y = (np.ascontiguousarray(a) for a in np.meshgrid(values, values, indexing="ij"))
    nonzero = y != 0
    x, y = x[nonzero], y[nonzero]
    skip_unless_tf_supports(op, [x, y])
    check(op, [x, y], backend=backend)
    zeros = np.zeros_like(values)
    if op == "DivNoNan":
        check(op, [values, zeros], backend=backend)
    else:
        compare_error(op, [values, zeros], backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [np.int32, np.int64], ids=lambda d: np.dtype(d).name)
def test_integer_reciprocal_and_pow_edges(dtype, backend):
    values = _int_specials(dtype)
    nonzero = values[values != 0]
    for op in ("Reciprocal", "Inv"):
        skip_unless_tf_supports(op, [nonzero])
        check(op, [nonzero], backend=backend)
    exponents = np.array([0, 1, 2, 3, 31, 63], dtype)
    x, y = (np.ascontiguousarray(a) for a in np.meshgrid(values, exponents, indexing="ij"))
    check("Pow", [x, y], backend=backend)


# --------------------------------------------------------------------------- reductions

ROWS = [[np.nan, 1.0, 2.0], [1.0, np.nan, -np.inf], [np.inf, -np.inf, 0.0], [np.inf, np.inf, 1.0],
        [-np.inf, -np.inf, -np.inf], [0.0, -0.0, 0.0], [-0.0, -0.0, -0.0], [1.0, 2.0, 3.0],
        [np.nan, np.nan, np.nan], [2.0, np.nan, 2.0]]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", FLOATS, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("op", ["Sum", "Prod", "Max", "Min", "Mean", "EuclideanNorm", "ArgMax",
                                "ArgMin", "Cumsum", "Cumprod"])
def test_reductions_of_specials(op, dtype, backend):
    """NaN propagation in Max/Min, ArgMax/ArgMin never picking NaN, Mean/Sum of inf - inf."""
    x = np.array(ROWS, dtype)
    for axis in (np.int32(1), np.int32(0), np.int64(-1)):
        check(op, [x, axis], backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", INTS, ids=lambda d: np.dtype(d).name)
def test_integer_reductions_at_the_limits(dtype, backend):
    values = _int_specials(dtype)[None, :]
    for op in ("Sum", "Prod", "Max", "Min", "Mean", "ArgMax", "ArgMin", "Cumsum"):
        skip_unless_tf_supports(op, [values, np.int32(1)])
        check(op, [values, np.int32(1)], backend=backend)


# --------------------------------------------------------------------------- compositions

def _logsumexp_steps(x, dtype):
    """tf.reduce_logsumexp(x, axis=1) as TensorFlow 2 emits it (Max, IsFinite, SelectV2,
    StopGradient, Sub, Exp, Sum, Log, Shape, Reshape, AddV2)."""
    axis = np.array([1], np.int32)
    return [
        (["max"], "Max", {"input": x, "axis": axis}, {"keep_dims": True}),
        (["finite"], "IsFinite", {"x": "$max"}, None),
        (["shift"], "SelectV2", {"condition": "$finite", "t": "$max", "e": np.zeros((), dtype)}, None),
        (["stopped"], "StopGradient", {"input": "$shift"}, None),
        (["centered"], "Sub", {"x": x, "y": "$stopped"}, None),
        (["exp"], "Exp", {"x": "$centered"}, None),
        (["total"], "Sum", {"input": "$exp", "axis": axis}, {"keep_dims": False}),
        (["log"], "Log", {"x": "$total"}, None),
        (["shape"], "Shape", {"input": "$log"}, None),
        (["reshaped"], "Reshape", {"tensor": "$stopped", "shape": "$shape"}, None),
        (["lse"], "AddV2", {"x": "$log", "y": "$reshaped"}, None),
    ]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", FLOATS, ids=lambda d: np.dtype(d).name)
def test_logsumexp_composition_of_specials(dtype, backend):
    """+inf rows give +inf, all -inf rows -inf, NaN rows NaN, large finite rows no overflow."""
    rows = ROWS + [[100.0, 200.0, 300.0], [-100.0, -200.0, -300.0], [80.0, 80.0, -np.inf]]
    x = np.array(rows, dtype)
    ours, error = run_program(_logsumexp_steps(x, dtype), backend=backend)
    assert error is None
    from tf_call import tf
    expected = tf.reduce_logsumexp(tf.constant(x), axis=1).numpy()
    from sm_notebook.engine.context import KernelContext
    assert_same_specials(np.asarray(KernelContext(backend).to_numpy(ours["lse"])), expected,
                         f"logsumexp on {backend}")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", FLOATS, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax"])
def test_softmax_of_specials(op, dtype, backend):
    """Rows with -inf (probability 0, log-probability -inf) and huge logits (no overflow);
    rows holding NaN or +inf are NaN throughout."""
    finite_rows = [[-np.inf, 1.0, 2.0], [3e4, 1.0, 0.0], [-np.inf, 0.0, -np.inf], [0.0, -0.0, 0.0],
                   [100.0, 200.0, 300.0], [-3e4, 3e4, -np.inf]]
    x = np.array(finite_rows, dtype)
    check(op, [x], backend=backend)
    nan_rows = np.array([[np.nan, 1.0, 2.0], [np.inf, 1.0, 2.0], [-np.inf, -np.inf, -np.inf],
                         [np.inf, -np.inf, 0.0]], dtype)
    (ours,) = run_kernel(op, [nan_rows], backend=backend)
    assert np.isnan(ours.astype(np.float64)).all()
    for row in nan_rows:  # batch 1 (a one-row fast path)
        (ours,) = run_kernel(op, [row[None, :]], backend=backend)
        assert np.isnan(ours.astype(np.float64)).all()
    if dtype == np.float64 or op == "LogSoftmax":
        check(op, [nan_rows], backend=backend)  # TensorFlow's Eigen kernel: NaN rows too


@pytest.mark.xfail(reason=EXCLUDED["softmax-nan-rows"], strict=False)
def test_softmax_nan_rows_in_float32_match_onednn():
    check("Softmax", [np.array([[np.nan, 1.0, 2.0], [np.inf, 1.0, 2.0]], np.float32)])


def test_special_value_lists_have_no_subnormals():
    """The cases above avoid FTZ differences by construction."""
    for dtype in FLOATS:
        x = _specials(dtype).astype(np.float64)
        tiny = np.finfo(dtype).tiny
        assert not np.any((x != 0) & (np.abs(x) < tiny))
