"""Math kernels against TensorFlow: elementwise, comparisons, reductions, scans, matmul, einsum."""
from __future__ import annotations

import zlib

import numpy as np
import pytest

from harness import BACKENDS
from tf_call import BFLOAT16, compare, compare_error, random, skip_unless_tf_supports

# float16 contractions: TensorFlow's Einsum rounds partial results to float16 (ours accumulate
# in float32 and round once), so results may differ by 2 float16 ulps.
HALF_CONTRACTION_TOLERANCE = dict(rtol=4e-3, atol=4e-3)

# Cases we do not run, with the reason (also listed in tests/ops/EXCLUSIONS.md).
EXCLUDED = {
    ("Round", "int32"): "TensorFlow's CPU Round kernel returns 0 for every integer (tf.math.round "
                        "never emits it for integers); ours returns the input unchanged",
    ("Round", "int64"): "TensorFlow's CPU Round kernel returns 0 for every integer (tf.math.round "
                        "never emits it for integers); ours returns the input unchanged",
}

FLOATS = [np.float32, np.float64, np.float16]
SHAPES = [(), (0,), (3, 4), (2, 1, 3)]

# op -> (low, high) of the sampled domain
UNARY_FLOAT = {
    "Abs": (-3, 3), "Neg": (-3, 3), "Sign": (-3, 3), "Floor": (-3, 3), "Ceil": (-3, 3),
    "Rint": (-3, 3), "Round": (-3, 3), "Reciprocal": (0.5, 3), "Inv": (-3, -0.5),
    "Square": (-3, 3), "Sqrt": (0, 4), "Rsqrt": (0.1, 4), "Exp": (-5, 5), "Expm1": (-2, 2),
    "Log": (0.1, 5), "Log1p": (-0.9, 3), "Sin": (-4, 4), "Cos": (-4, 4), "Tan": (-1.4, 1.4),
    "Asin": (-0.99, 0.99), "Acos": (-0.99, 0.99), "Atan": (-5, 5), "Sinh": (-3, 3),
    "Cosh": (-3, 3), "Tanh": (-4, 4), "Asinh": (-5, 5), "Acosh": (1.01, 5),
    "Atanh": (-0.95, 0.95), "Sigmoid": (-8, 8), "Erf": (-4, 4), "Erfc": (-3, 9),
    "Lgamma": (-4.5, 8), "Digamma": (-3.5, 8), "IsNan": (-3, 3), "IsInf": (-3, 3),
    "IsFinite": (-3, 3),
}


def _skip_excluded(*key):
    reason = EXCLUDED.get(tuple(key))
    if reason:
        pytest.skip(f"excluded: {reason}")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", FLOATS, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("op", sorted(UNARY_FLOAT))
def test_unary_float(op, dtype, backend):
    _skip_excluded(op, np.dtype(dtype).name)
    rng = np.random.default_rng(zlib.crc32(f"{op}-{np.dtype(dtype).name}".encode()))
    low, high = UNARY_FLOAT[op]
    for shape in SHAPES:
        x = random(rng, shape, dtype, low, high)
        if op in ("Round", "Rint") and x.size:
            x.flat[0] = 2.5  # banker's rounding
        if op.startswith("Is") and x.size >= 3:
            x.flat[:3] = [np.nan, np.inf, -np.inf]
        skip_unless_tf_supports(op, [x])
        compare(op, [x], backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("op", ["Abs", "Neg", "Sigmoid", "Exp", "Sqrt", "Tanh", "Floor", "Round",
                                "Erf", "Square", "Sign"])
def test_unary_bfloat16(op, backend):
    rng = np.random.default_rng(7)
    x = random(rng, (3, 5), BFLOAT16, 0.1, 3)
    compare(op, [x], backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [np.int8, np.int32, np.int64, np.uint8], ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("op", ["Abs", "Neg", "Sign", "Square", "Invert", "PopulationCount", "Round"])
def test_unary_int(op, dtype, backend):
    _skip_excluded(op, np.dtype(dtype).name)
    rng = np.random.default_rng(1)
    for shape in SHAPES:
        x = random(rng, shape, dtype)
        skip_unless_tf_supports(op, [x])
        compare(op, [x], backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [np.complex64, np.complex128], ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("op", ["Abs", "ComplexAbs", "Neg", "Sign", "Square", "Reciprocal", "Exp",
                                "Log", "Sqrt", "Tanh", "Sin", "Conj", "Real", "Imag", "Angle",
                                "Sigmoid", "Rsqrt", "Expm1", "Log1p", "IsNan"])
def test_unary_complex(op, dtype, backend):
    if op == "Abs":
        pytest.skip("TensorFlow's Abs has no complex kernel: models use ComplexAbs (not an exclusion)")
    if op == "IsNan":
        pytest.skip("TensorFlow's IsNan has no complex kernel (not an exclusion)")
    rng = np.random.default_rng(2)
    for shape in SHAPES:
        x = random(rng, shape, dtype, -2, 2)
        attrs = {"Tout": np.float64 if np.dtype(dtype) == np.complex128 else np.float32} \
            if op in ("ComplexAbs", "Real", "Imag", "Angle") else {}
        compare(op, [x], attrs, backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_special_functions_wide_range(backend):
    """Erf, Erfc, Lgamma and Digamma over wide ranges, float32 and float64."""
    for dtype in (np.float32, np.float64):
        erf_x = np.concatenate([np.linspace(-7, 7, 1401), [0.0, 1e-30, -1e-8, 27.0, -27.0]])
        compare("Erf", [erf_x.astype(dtype)], backend=backend)
        compare("Erfc", [np.linspace(-6, 26, 3201).astype(dtype)], backend=backend)
        lgamma_x = np.concatenate([np.linspace(-30.3, 40.7, 1401), [1e-5, 1.0, 2.0, 0.0, -3.0, 1e10]])
        compare("Lgamma", [lgamma_x.astype(dtype)], backend=backend)
        digamma_x = np.concatenate([np.linspace(-9.7, 60.3, 1401), [1e-4, 1.0, 0.0, -2.0, 1e6]])
        compare("Digamma", [digamma_x.astype(dtype)], backend=backend)


# --------------------------------------------------------------------------- binary

BROADCAST_SHAPES = [((3, 4), (3, 4)), ((2, 3, 4), (4,)), ((), (2, 3)), ((3, 1), (1, 5)),
                    ((0, 3), (1, 3)), ((), ())]

# op -> (x low, x high, y low, y high)
BINARY_FLOAT = {
    "Add": (-3, 3, -3, 3), "AddV2": (-3, 3, -3, 3), "Sub": (-3, 3, -3, 3), "Mul": (-3, 3, -3, 3),
    "Div": (-3, 3, 0.5, 3), "RealDiv": (-3, 3, -3, -0.5), "FloorDiv": (-9, 9, 0.3, 3),
    "FloorMod": (-9, 9, -3, -0.3), "TruncateDiv": (-9, 9, 0.3, 3), "TruncateMod": (-9, 9, 0.3, 3),
    "Mod": (-9, 9, -3, -0.3), "Pow": (0.1, 3, -2, 2), "Maximum": (-3, 3, -3, 3),
    "Minimum": (-3, 3, -3, 3), "SquaredDifference": (-3, 3, -3, 3), "Atan2": (-3, 3, -3, 3),
    "Xlogy": (-3, 3, 0.1, 3), "Xlog1py": (-3, 3, -0.5, 3), "Xdivy": (-3, 3, 0.5, 3),
    "DivNoNan": (-3, 3, -3, 3), "MulNoNan": (-3, 3, -3, 3), "Equal": (-2, 2, -2, 2),
    "NotEqual": (-2, 2, -2, 2), "Less": (-3, 3, -3, 3), "LessEqual": (-3, 3, -3, 3),
    "Greater": (-3, 3, -3, 3), "GreaterEqual": (-3, 3, -3, 3),
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", FLOATS, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("op", sorted(BINARY_FLOAT))
def test_binary_float(op, dtype, backend):
    _skip_excluded(op, np.dtype(dtype).name)
    rng = np.random.default_rng(zlib.crc32(f"{op}-b-{np.dtype(dtype).name}".encode()))
    xl, xh, yl, yh = BINARY_FLOAT[op]
    for x_shape, y_shape in BROADCAST_SHAPES:
        x = random(rng, x_shape, dtype, xl, xh)
        y = random(rng, y_shape, dtype, yl, yh)
        if op in ("Equal", "NotEqual", "Less", "LessEqual", "GreaterEqual"):
            x, y = np.round(x), np.round(y)  # ties
        if op in ("DivNoNan", "MulNoNan", "Xlogy", "Xdivy", "Xlog1py"):
            if y.size:
                y.flat[0] = 0
            if x.size > 1:
                x.flat[1] = 0
        skip_unless_tf_supports(op, [x, y])
        compare(op, [x, y], backend=backend)


INT_DTYPES = [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64]
BINARY_INT = ["Add", "AddV2", "Sub", "Mul", "Div", "FloorDiv", "FloorMod", "TruncateDiv",
              "TruncateMod", "Mod", "Maximum", "Minimum", "SquaredDifference", "Equal", "NotEqual",
              "Less", "LessEqual", "Greater", "GreaterEqual", "BitwiseAnd", "BitwiseOr",
              "BitwiseXor", "LeftShift", "RightShift", "Pow", "DivNoNan", "MulNoNan", "RealDiv"]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", INT_DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("op", BINARY_INT)
def test_binary_int(op, dtype, backend):
    rng = np.random.default_rng(3)
    signed = np.dtype(dtype).kind == "i"
    for x_shape, y_shape in BROADCAST_SHAPES:
        x = random(rng, x_shape, dtype, -5 if signed else 0, 5)
        y = random(rng, y_shape, dtype, -5 if signed else 0, 5)
        if op in ("Div", "FloorDiv", "FloorMod", "TruncateDiv", "TruncateMod", "Mod", "RealDiv"):
            y = np.where(y == 0, np.ones_like(y), y)
        if op in ("LeftShift", "RightShift"):
            y = (rng.integers(0, 8 * np.dtype(dtype).itemsize, y.shape)).astype(dtype)
        if op == "Pow":
            x = random(rng, x_shape, dtype, -3 if signed else 0, 0.4)
            y = random(rng, y_shape, dtype, 0, 0.7)
        skip_unless_tf_supports(op, [x, y])
        compare(op, [x, y], backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_shifts_clamp_out_of_range_amounts(backend):
    x = np.array([1, -128, 64, 3], np.int8)
    y = np.array([8, 9, -1, 100], np.int8)
    compare("LeftShift", [x, y], backend=backend)
    compare("RightShift", [x, y], backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("op", ["Div", "FloorDiv", "FloorMod", "TruncateMod", "Mod"])
def test_integer_division_by_zero_is_refused(op, backend):
    compare_error(op, [np.array([1, 2], np.int32), np.array([1, 0], np.int32)], backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_integer_pow_negative_exponent_refused(backend):
    compare_error("Pow", [np.array([2], np.int32), np.array([-1], np.int32)], backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [np.complex64, np.complex128], ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("op", ["Add", "Sub", "Mul", "Div", "RealDiv", "Pow", "SquaredDifference",
                                "Equal", "NotEqual", "DivNoNan", "MulNoNan", "Xlogy", "Xdivy"])
def test_binary_complex(op, dtype, backend):
    rng = np.random.default_rng(4)
    for x_shape, y_shape in BROADCAST_SHAPES:
        x, y = random(rng, x_shape, dtype, -2, 2), random(rng, y_shape, dtype, 0.5, 2)
        compare(op, [x, y], backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("op", ["LogicalAnd", "LogicalOr"])
def test_logical(op, backend):
    rng = np.random.default_rng(5)
    for x_shape, y_shape in BROADCAST_SHAPES:
        compare(op, [random(rng, x_shape, bool), random(rng, y_shape, bool)], backend=backend)
    compare("LogicalNot", [random(rng, (3, 4), bool)], backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_float_binary_bfloat16(backend):
    rng = np.random.default_rng(6)
    x, y = random(rng, (3, 4), BFLOAT16, 0.5, 3), random(rng, (4,), BFLOAT16, 0.5, 3)
    for op in ("AddV2", "Sub", "Mul", "RealDiv", "Maximum", "Minimum", "Less", "Pow",
               "SquaredDifference"):
        compare(op, [x, y], backend=backend)


# --------------------------------------------------------------------------- select, clip, add_n

@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [np.float32, np.int32, np.float16, np.complex64],
                         ids=lambda d: np.dtype(d).name)
def test_select_clip_addn(dtype, backend):
    rng = np.random.default_rng(8)
    t, e = random(rng, (3, 4), dtype), random(rng, (3, 4), dtype)
    compare("Select", [random(rng, (3, 4), bool), t, e], backend=backend)
    compare("Select", [random(rng, (3,), bool), t, e], backend=backend)
    compare("Select", [np.array(True), t, e], backend=backend)
    compare("SelectV2", [random(rng, (4,), bool), t, random(rng, (), dtype)], backend=backend)
    compare("SelectV2", [random(rng, (2, 1, 1), bool), t, e], backend=backend)
    compare("AddN", [[t, e, t]], backend=backend)
    compare("AddN", [[t]], backend=backend)
    if np.dtype(dtype).kind != "c":
        compare("ClipByValue", [t, np.asarray(-1, dtype), np.asarray(2, dtype)], backend=backend)
        low = random(rng, (3, 4), dtype)
        compare("ClipByValue", [t, low, np.asarray(2, dtype)], backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_approximate_equal_and_complex(backend):
    rng = np.random.default_rng(9)
    x = random(rng, (3, 4), np.float32)
    y = x + np.float32(1e-6) * rng.integers(0, 30, (3, 4)).astype(np.float32)
    compare("ApproximateEqual", [x, y], backend=backend)
    compare("ApproximateEqual", [x, y], {"tolerance": 1e-2}, backend=backend)
    compare("Complex", [x, y], {"Tout": np.complex64}, backend=backend)
    compare("Complex", [x.astype(np.float64), np.float64(2)], {"Tout": np.complex128}, backend=backend)


# --------------------------------------------------------------------------- reductions

AXES = [np.int32(1), np.array([0, 2], np.int32), np.int64(-1), np.array([], np.int32),
        np.array([-3, 1], np.int64)]
REDUCTION_DTYPES = {
    "Sum": [np.float32, np.float64, np.float16, np.int32, np.int8, np.uint8, np.complex64, np.int64],
    "Prod": [np.float32, np.float64, np.int32, np.int8, np.complex64],
    "Max": [np.float32, np.float64, np.float16, np.int32, np.uint8, np.int64],
    "Min": [np.float32, np.float64, np.int32, np.int8],
    "Mean": [np.float32, np.float64, np.float16, np.int32, np.int8, np.uint8, np.complex64, np.int64],
    "EuclideanNorm": [np.float32, np.float64, np.int32, np.complex64],
    "All": [bool], "Any": [bool],
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("op", sorted(REDUCTION_DTYPES))
def test_reductions(op, backend):
    rng = np.random.default_rng(10)
    for dtype in REDUCTION_DTYPES[op]:
        high = 1.5 if op == "Prod" else 3
        x = random(rng, (2, 3, 4), dtype, -high, high)
        for axis in AXES:
            for keep_dims in (False, True):
                compare(op, [x, axis], {"keep_dims": keep_dims}, backend=backend)
        compare(op, [random(rng, (), dtype), np.array([], np.int32)], backend=backend)
        compare_error(op, [random(rng, (), dtype), np.int32(0)], backend=backend)
        if not (op == "Mean" and np.dtype(dtype).kind in "iu"):
            empty = random(rng, (0, 3), dtype)
            compare(op, [empty, np.int32(0)], {"keep_dims": True}, backend=backend)
            compare(op, [empty, np.int32(1)], backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_integer_mean_truncates_and_does_not_overflow(backend):
    for values, dtype in [([-3, -4], np.int32), ([127, 127, 1], np.int8), ([250, 250, 3], np.uint8),
                          ([2**31 - 1, 2**31 - 1], np.int32), ([-7, 0, 0], np.int64)]:
        compare("Mean", [np.array(values, dtype), np.int32(0)], backend=backend)
    compare("Mean", [np.zeros((0,), np.int32), np.int32(0)], backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_reduction_nan_and_bad_axes(backend):
    x = np.array([[1.0, np.nan, 2.0], [3.0, 4.0, -1.0]], np.float32)
    for op in ("Max", "Min", "Sum", "Mean"):
        compare(op, [x, np.int32(1)], backend=backend)
    compare_error("Sum", [x, np.array([1, -1], np.int32)], backend=backend)
    compare_error("Sum", [x, np.int32(2)], backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("op", ["ArgMax", "ArgMin"])
def test_arg_extremes(op, backend):
    rng = np.random.default_rng(11)
    for dtype in (np.float32, np.float64, np.int32, np.uint8, np.float16):
        x = random(rng, (3, 4, 5), dtype, -2, 2)  # integers in [-20, 20]: ties happen
        for dimension in (np.int32(0), np.int64(-1), np.int32(1)):
            for output_type in (np.int64, np.int32):
                compare(op, [x, dimension], {"output_type": output_type}, backend=backend)
    compare(op, [np.array([1.0, np.nan, 2.0, np.nan], np.float32), np.int32(0)], backend=backend)
    compare(op, [np.array([np.nan, 1.0], np.float32), np.int32(0)], backend=backend)
    compare_error(op, [np.zeros((0, 3), np.float32), np.int32(0)], backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_l2_loss(backend):
    rng = np.random.default_rng(12)
    for dtype in (np.float32, np.float64, np.float16):
        compare("L2Loss", [random(rng, (3, 5), dtype)], backend=backend)
        compare("L2Loss", [random(rng, (0,), dtype)], backend=backend)


# --------------------------------------------------------------------------- scans

@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("op", ["Cumsum", "Cumprod"])
def test_scans(op, backend):
    rng = np.random.default_rng(13)
    for dtype in (np.float32, np.float64, np.int32, np.int64, np.float16, np.complex64):
        x = random(rng, (2, 3, 4), dtype, -1.5, 1.5)
        for axis in (np.int32(0), np.int32(2), np.int64(-2)):
            for exclusive in (False, True):
                for reverse in (False, True):
                    compare(op, [x, axis], {"exclusive": exclusive, "reverse": reverse},
                            backend=backend)
    compare(op, [np.zeros((0, 2), np.float32), np.int32(0)], {"exclusive": True}, backend=backend)


# --------------------------------------------------------------------------- matmul and einsum

@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32, np.complex64, np.float16],
                         ids=lambda d: np.dtype(d).name)
def test_mat_mul(dtype, backend):
    rng = np.random.default_rng(14)
    a, b = random(rng, (3, 4), dtype), random(rng, (4, 5), dtype)
    for transpose_a in (False, True):
        for transpose_b in (False, True):
            x = a.T.copy() if transpose_a else a
            y = b.T.copy() if transpose_b else b
            compare("MatMul", [x, y], {"transpose_a": transpose_a, "transpose_b": transpose_b},
                    backend=backend)
    compare("MatMul", [random(rng, (0, 4), dtype), random(rng, (4, 2), dtype)], backend=backend)
    compare("MatMul", [random(rng, (2, 0), dtype), random(rng, (0, 2), dtype)], backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("op", ["BatchMatMul", "BatchMatMulV2", "BatchMatMulV3"])
def test_batch_mat_mul(op, backend):
    rng = np.random.default_rng(15)
    cases = [((2, 3, 4), (2, 4, 5)), ((3, 4), (4, 2)), ((2, 1, 3, 4), (5, 4, 2)), ((0, 2, 3), (1, 3, 2))]
    for dtype in (np.float32, np.float64, np.complex128):
        for x_shape, y_shape in cases:
            if op == "BatchMatMul" and x_shape[:-2] != y_shape[:-2]:
                continue
            for adj_x in (False, True):
                for adj_y in (False, True):
                    x = random(rng, x_shape, dtype)
                    y = random(rng, y_shape, dtype)
                    if adj_x:
                        x = np.conj(np.swapaxes(x, -1, -2)).copy()
                    if adj_y:
                        y = np.conj(np.swapaxes(y, -1, -2)).copy()
                    attrs = {"adj_x": adj_x, "adj_y": adj_y}
                    if op == "BatchMatMulV3":
                        attrs["Tout"] = dtype
                    compare(op, [x, y], attrs, backend=backend)
    if op == "BatchMatMulV3":
        x, y = random(rng, (2, 3, 4), np.int8), random(rng, (4, 2), np.int8)
        compare(op, [x, y], {"Tout": np.int32}, backend=backend)


EINSUM_CASES = [
    ("ij,jk->ik", [(3, 4), (4, 5)]),
    ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]),
    ("...ij,...jk->...ik", [(2, 1, 3, 4), (5, 4, 2)]),
    ("bhqd,bhkd->bhqk", [(2, 3, 4, 5), (2, 3, 6, 5)]),
    ("abc,cd->abd", [(2, 3, 4), (4, 5)]),
    ("ij->ji", [(3, 4)]),
    ("ij->", [(3, 4)]),
    ("ii->i", [(4, 4)]),
    ("iij->j", [(3, 3, 2)]),
    ("i,i->", [(5,), (5,)]),
    ("i,j->ij", [(3,), (4,)]),
    ("ab...,b->a...", [(2, 3, 4, 5), (3,)]),
    ("bij,jk->bk", [(2, 3, 4), (4, 5)]),
    ("ijk,ijk->ik", [(2, 3, 4), (2, 3, 4)]),
    ("ij,kj->ik", [(0, 3), (2, 3)]),
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32, np.float16],
                         ids=lambda d: np.dtype(d).name)
def test_einsum(dtype, backend):
    rng = np.random.default_rng(16)
    for equation, shapes in EINSUM_CASES:
        operands = [random(rng, s, dtype) for s in shapes]
        tolerance = HALF_CONTRACTION_TOLERANCE if np.dtype(dtype) == np.float16 else None
        compare("Einsum", [operands], {"equation": equation}, backend=backend, tolerance=tolerance)


# --------------------------------------------------------------------------- op definitions

def test_kernels_return_arrays_not_scalars():
    """Numpy reductions give numpy scalars for 0-d results; our kernels hand back arrays."""
    from sm_notebook.engine.context import KernelContext
    from sm_notebook.engine.ops.registry import get_kernel

    ctx = KernelContext("numpy")
    for op in ("Sum", "Max", "Mean", "Prod", "EuclideanNorm", "All"):
        x = np.ones((3,), bool if op == "All" else np.float32)
        (out,) = get_kernel(op).fn(ctx, [x, np.int32(0)], {})
        assert isinstance(out, np.ndarray) and out.shape == (), op


@pytest.mark.parametrize("backend", BACKENDS)
def test_cross(backend):
    rng = np.random.default_rng(17)
    for dtype in (np.float32, np.float64, np.int32):
        compare("Cross", [random(rng, (4, 3), dtype), random(rng, (4, 3), dtype)], backend=backend)
        compare("Cross", [random(rng, (3,), dtype), random(rng, (3,), dtype)], backend=backend)


def test_broadcast_and_contraction_results_respect_the_memory_cap():
    from harness import run_kernel
    from sm_notebook.errors import SavedModelError

    cap = {"memory_cap": 2**20}
    column, row = np.ones((4000, 1), np.float32), np.ones((1, 4000), np.float32)
    for op, inputs, attrs in [("AddV2", [column, row], {}),
                              ("MatMul", [column, row], {}),
                              ("Einsum", [[column[:, 0], row[0]]], {"equation": "i,j->ij"}),
                              ("SelectV2", [np.ones((4000, 1), bool), column, row], {})]:
        flat = inputs[0] if op == "Einsum" else inputs
        with pytest.raises(SavedModelError, match="memory cap"):
            run_kernel(op, flat, attrs, **cap)
    with pytest.raises(SavedModelError, match="Incompatible shapes"):
        run_kernel("AddV2", [np.ones((2, 3), np.float32), np.ones((4,), np.float32)])
