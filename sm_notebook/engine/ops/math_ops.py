"""Elementwise math, comparisons, reductions, scans, matmul and einsum kernels.

Written once against the array API (``ctx.xp``); arrays of dtypes the backend
lacks (float16, bfloat16) arrive as numpy arrays and are computed with numpy.
Integer division follows TensorFlow: Div/TruncateDiv/Mod/TruncateMod truncate,
FloorDiv/FloorMod floor, and division by an integer zero is an error.
"""
from __future__ import annotations

import functools
import math
import operator

import numpy as np

from ..blas import BLAS, OPENBLAS_SINGLE_THREAD_MNK
from ..half import to_float32, to_half
from . import _special
from ._numeric import (HALF, HALF_WIDE_MIN, astype, fail, float_attr, highest, host_ints, is_half,
                       is_numpy, kind, lowest, namespace, np_dtype, op_kernel, op_kernel_wrapper,
                       scalar, wide)
from .registry import prepared_kernel

# --------------------------------------------------------------------------- unary


def _unary(op, compute):
    """Register ``compute(xp, x) -> y`` as the kernel of ``op``."""
    def general(ctx, inputs, attrs):
        xp, (x,) = namespace(ctx, inputs[0])
        return [compute(xp, x)]

    slow = op_kernel_wrapper(general)
    ufunc = _UFUNCS.get(op)
    tabulated = op not in _NOT_TABULATED

    def prepare(node, ctx):
        if not (ctx.is_numpy and ctx.optimize):
            attrs = node.attrs
            return lambda inputs: slow(ctx, inputs, attrs)
        xp = ctx.xp

        def numpy_run(inputs):  # numpy straight away
            x = inputs[0]
            if x.dtype is HALF and tabulated and x.size >= _HALF_TABLE_MIN and xp is np:
                return [_half_table(op, functools.partial(compute, np)).take(
                    x.view(np.uint16), mode="clip")]
            y = ufunc(x) if ufunc is not None and xp is np else compute(xp, x)
            return [y if type(y) is np.ndarray else np.asarray(y)]
        return numpy_run

    prepared_kernel(op)(prepare)
    return prepare


_HALF_TABLES: dict = {}  # op -> its float16 result for each float16 bit pattern
_HALF_TABLE_MIN = 1
_NOT_TABULATED = frozenset({"IsNan", "IsInf", "IsFinite", "LogicalNot", "Invert"})


def _half_table(op, compute):
    """The general path's ``compute`` of every float16 value, indexed by bit pattern, built
    on first use (128 KiB): a unary op of float16 is a function of its 65536 values, so a
    lookup gives the computed values without converting each element to float32 and back
    (numpy's conversions are not vectorised) or evaluating the function."""
    table = _HALF_TABLES.get(op)
    if table is None:
        every = np.arange(65536, dtype=np.uint32).astype(np.uint16).view(np.float16)
        with np.errstate(all="ignore"):  # NaN and inf among them
            table = np.asarray(compute(every))
        table.flags.writeable = False
        _HALF_TABLES[op] = table
    return table


#: Ops whose compute function is exactly one numpy ufunc (when ctx.xp is numpy itself).
_UFUNCS = {"Neg": np.negative, "Exp": np.exp, "Tanh": np.tanh, "Sqrt": np.sqrt, "Log": np.log,
           "Abs": np.abs, "Floor": np.floor, "Ceil": np.ceil, "Sin": np.sin, "Cos": np.cos,
           "LogicalNot": np.logical_not, "IsNan": np.isnan, "IsFinite": np.isfinite,
           "Add": np.add, "AddV2": np.add, "Sub": np.subtract, "Mul": np.multiply,
           "Maximum": np.maximum, "Minimum": np.minimum, "Equal": np.equal,
           "NotEqual": np.not_equal, "Less": np.less, "LessEqual": np.less_equal,
           "Greater": np.greater, "GreaterEqual": np.greater_equal,
           "LogicalAnd": np.logical_and, "LogicalOr": np.logical_or,
           "Square": np.square}


def _half_via_float32(compute):
    """Compute half floats in float32 and round back, as TensorFlow's CPU kernels do."""
    def run(xp, x):
        if is_half(x):
            return astype(xp, compute(xp, astype(xp, x, np.float32)), x.dtype)
        return compute(xp, x)
    return run


def _via_float64(function):
    """A float64 special function applied to any real float dtype, rounded back."""
    def run(xp, x):
        return astype(xp, function(xp, astype(xp, x, np.float64)), x.dtype)
    return run


def _float32_fast(numpy_float32, general):
    """``numpy_float32(x)`` for numpy float32 and half floats (via float32), else ``general``."""
    def run(xp, x):
        if is_numpy(xp) and (np_dtype(x.dtype) == np.float32 or is_half(x)):
            if is_half(x):
                return astype(xp, numpy_float32(astype(xp, x, np.float32)), x.dtype)
            return numpy_float32(np.asarray(x))
        return general(xp, x)
    return run


def _identity_for_ints(compute):
    def run(xp, x):
        return x if kind(x) in "iub" else compute(xp, x)
    return run


def _reciprocal(xp, x):
    return scalar(xp, 1, x) / x


def _rsqrt(xp, x):
    return scalar(xp, 1, x) / xp.sqrt(x)


_ONES = {np.dtype(t): np.ones((), t) for t in (np.float16, np.float32, np.float64)}


def _sigmoid(xp, x):
    if is_numpy(xp) and type(x) is np.ndarray and x.dtype in _ONES:
        # 1 / (1 + exp(-x)): no cancellation; exp overflows to inf (result 0) only where
        # the true value is below float32's smallest normal
        if not x.ndim:
            return np.asarray(1 / (1 + np.exp(-x)))
        return _numpy_sigmoid(x)
    if kind(x) == "c":
        return 1 / (1 + xp.exp(-x))
    e = xp.exp(-xp.abs(x))
    one = scalar(xp, 1, x)
    return xp.where(x >= 0, one / (one + e), e / (one + e))


_sigmoid_any = _half_via_float32(_sigmoid)


def _numpy_sigmoid(x):
    """Sigmoid of a numpy array: 1 / (1 + exp(-x)) in three in-place passes for float32/64."""
    if x.dtype in _ONES and x.ndim:
        result = np.exp(np.negative(x))
        np.add(result, _ONES[x.dtype], out=result)
        return np.reciprocal(result, out=result)
    return _sigmoid_any(np, x)


def _sign(xp, x):
    if kind(x) == "c":
        magnitude = xp.abs(x)
        safe = xp.where(magnitude == 0, xp.ones_like(magnitude), magnitude)
        return xp.where(x == 0, xp.zeros_like(x), x / astype(xp, safe, np_dtype(x.dtype)))
    return xp.sign(x)


def _erf_like_tensorflow(xp, x):
    """erf computed in float64; TensorFlow's float64 kernel gives NaN at +-inf (its float32
    and half kernels +-1)."""
    result = _via_float64(_special.erf)(xp, x)
    if np_dtype(x.dtype) == np.float64:
        result = xp.where(xp.isinf(x), scalar(xp, math.nan, result), result)
    return result


_UNARY = {
    "Abs": lambda xp, x: xp.abs(x),
    "Neg": lambda xp, x: -x,
    "Sign": _sign,
    "Floor": lambda xp, x: xp.floor(x),
    "Ceil": lambda xp, x: xp.ceil(x),
    "Rint": lambda xp, x: xp.round(x),
    "Round": _identity_for_ints(lambda xp, x: xp.round(x)),
    "Reciprocal": _reciprocal,
    "Inv": _reciprocal,
    "Square": lambda xp, x: x * x,
    "Sqrt": lambda xp, x: xp.sqrt(x),
    "Rsqrt": _rsqrt,
    "Exp": lambda xp, x: xp.exp(x),
    "Expm1": lambda xp, x: xp.expm1(x),
    "Log": lambda xp, x: xp.log(x),
    "Log1p": lambda xp, x: xp.log1p(x),
    "Sin": lambda xp, x: xp.sin(x),
    "Cos": lambda xp, x: xp.cos(x),
    "Tan": lambda xp, x: xp.tan(x),
    "Asin": lambda xp, x: xp.asin(x),
    "Acos": lambda xp, x: xp.acos(x),
    "Atan": lambda xp, x: xp.atan(x),
    "Sinh": lambda xp, x: xp.sinh(x),
    "Cosh": lambda xp, x: xp.cosh(x),
    "Tanh": lambda xp, x: xp.tanh(x),
    "Asinh": lambda xp, x: xp.asinh(x),
    "Acosh": lambda xp, x: xp.acosh(x),
    "Atanh": lambda xp, x: xp.atanh(x),
    "Sigmoid": _sigmoid_any,
    "Erf": _float32_fast(_special.erf_float32, _erf_like_tensorflow),
    "Erfc": _float32_fast(_special.erfc_float32, _via_float64(_special.erfc)),
    "Lgamma": _via_float64(_special.lgamma),
    "Digamma": _via_float64(_special.digamma),
    "IsNan": lambda xp, x: xp.isnan(x),
    "IsInf": lambda xp, x: xp.isinf(x),
    "IsFinite": lambda xp, x: xp.isfinite(x),
    "LogicalNot": lambda xp, x: xp.logical_not(x),
    "Invert": lambda xp, x: xp.bitwise_invert(x),
}

_UFUNCS["Sigmoid"] = _numpy_sigmoid
for _op, _compute in _UNARY.items():
    _unary(_op, _compute)
_unary("Conj", lambda xp, x: xp.conj(x) if kind(x) == "c" else x)


@op_kernel("PopulationCount")
def population_count(ctx, inputs, attrs):
    """The number of set bits of each element, as uint8."""
    xp, (x,) = namespace(ctx, inputs[0])
    bits = np_dtype(x.dtype).itemsize * 8
    count = xp.zeros(x.shape, dtype=xp.uint8 if not is_numpy(xp) else np.uint8)
    one = scalar(xp, 1, x)
    for shift in range(bits):
        bit = xp.bitwise_and(xp.bitwise_right_shift(x, scalar(xp, shift, x)), one)
        count = count + astype(xp, bit, np.uint8)
    return [count]


# --------------------------------------------------------------------------- complex parts

def _complex_parts_kernel(op, part):
    @op_kernel(op)
    def run(ctx, inputs, attrs):
        xp, (x,) = namespace(ctx, inputs[0])
        if kind(x) != "c":
            fail(op, f"expects a complex input, got {np_dtype(x.dtype).name}")
        return [part(xp, x)]
    return run


_complex_parts_kernel("Real", lambda xp, x: xp.real(x))
_complex_parts_kernel("Imag", lambda xp, x: xp.imag(x))
_complex_parts_kernel("Angle", lambda xp, x: xp.atan2(xp.imag(x), xp.real(x)))
_complex_parts_kernel("ComplexAbs", lambda xp, x: xp.abs(x))


@op_kernel("Complex")
def complex_from_parts(ctx, inputs, attrs):
    """real + 1j*imag, broadcast; Tout complex64 for float32 parts, complex128 for float64."""
    xp, (real, imag) = namespace(ctx, *inputs)
    out_dtype = np.dtype(attrs.get("Tout", np.complex128 if np_dtype(real.dtype) == np.float64
                                   else np.complex64))
    real, imag = xp.broadcast_arrays(real, imag)
    if is_numpy(xp):
        out = np.empty(real.shape, dtype=out_dtype)
        out.real = real
        out.imag = imag
        return [out]
    return [astype(xp, real, out_dtype) + astype(xp, imag, out_dtype) * 1j]


# --------------------------------------------------------------------------- binary

def broadcast_shape(ctx, op, *arrays) -> tuple[int, ...]:
    """The broadcast result shape, refused (before computing) when too large or incompatible."""
    shapes = [tuple(int(d) for d in a.shape) for a in arrays]
    try:
        shape = np.broadcast_shapes(*shapes)
    except ValueError:
        fail(op, "Incompatible shapes: " + " vs. ".join(str(list(s)) for s in shapes))
    if len(set(shapes)) > 1:
        ctx.check_alloc(shape, np_dtype(arrays[-1].dtype), op)
    return shape


def _binary(op, compute):
    """Register ``compute(xp, x, y) -> z`` (broadcasting) as the kernel of ``op``."""
    def general(ctx, inputs, attrs):
        if ctx.is_numpy:
            x, y = inputs
            xp = ctx.xp
        else:
            xp, (x, y) = namespace(ctx, inputs[0], inputs[1])
        if x.shape != y.shape and not _plain_broadcast(x.shape, y.shape):
            broadcast_shape(ctx, op, x, y)
        return [compute(xp, x, y)]

    slow = op_kernel_wrapper(general)
    ufunc = _UFUNCS.get(op)

    python_op = _SCALAR_OPS.get(op)
    rounded_once = ufunc in _ROUNDED_ONCE

    def prepare(node, ctx):
        attrs = node.attrs
        if not (ctx.is_numpy and ctx.optimize):
            return lambda inputs: slow(ctx, inputs, attrs)
        xp = ctx.xp

        def numpy_run(inputs):  # numpy straight away when shapes broadcast plainly
            x, y = inputs
            if rounded_once and x.dtype is HALF and y.dtype is HALF and \
                    max(x.size, y.size) >= HALF_WIDE_MIN:  # numpy's half loops are slow
                if x.shape != y.shape and not _plain_broadcast(x.shape, y.shape):
                    broadcast_shape(ctx, op, x, y)
                return [to_half(ufunc(to_float32(x), to_float32(y)))]
            if x.shape == y.shape or _plain_broadcast(x.shape, y.shape):
                if python_op is not None and not x.ndim and not y.ndim and x.dtype is y.dtype:
                    z = _scalar_op(python_op, x, y)  # loop counters and conditions
                    if z is not None:
                        return [z]
                z = ufunc(x, y) if ufunc is not None and xp is np else compute(xp, x, y)
                return [z if type(z) is np.ndarray else np.asarray(z)]
            return slow(ctx, inputs, attrs)
        return numpy_run

    prepared_kernel(op)(prepare)
    return prepare


_ROUNDED_ONCE = frozenset({np.add, np.subtract, np.multiply})  # in float32 for HALF_WIDE_MIN+
_SCALAR_OPS = {"Less": operator.lt, "LessEqual": operator.le, "Greater": operator.gt,
               "GreaterEqual": operator.ge, "Equal": operator.eq, "NotEqual": operator.ne,
               "LogicalAnd": operator.and_, "LogicalOr": operator.or_,
               "Add": operator.add, "AddV2": operator.add, "Sub": operator.sub}
_COMPARISONS = frozenset({operator.lt, operator.le, operator.gt, operator.ge, operator.eq,
                          operator.ne})


def _scalar_op(python_op, x, y):
    """A 0-d op in Python numbers (a numpy call costs more than the op): comparisons of
    ints/floats/bools, logic of bools, int sums in range; None when numpy must do it."""
    kind_ = x.dtype.kind
    if python_op in _COMPARISONS:
        return np.asarray(python_op(x.item(), y.item())) if kind_ in "iubf" else None
    if python_op is operator.and_ or python_op is operator.or_:
        return np.asarray(python_op(x.item(), y.item())) if kind_ == "b" else None
    if kind_ not in "iu":
        return None
    value = python_op(x.item(), y.item())
    info = _INT_RANGES.get(x.dtype)
    if info is None or not info[0] <= value <= info[1]:
        return None
    return np.asarray(value, x.dtype)


_INT_RANGES = {np.dtype(t): (int(np.iinfo(t).min), int(np.iinfo(t).max))
               for t in (np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32,
                         np.uint64)}


def _plain_broadcast(a, b) -> bool:
    """Shapes that surely broadcast to the larger one: equal, a scalar, or a vector along
    the other's last axis (the common cases, checked without np.broadcast_shapes)."""
    if a == b or not a or not b:
        return True
    if len(b) == 1:
        return b[0] == a[-1]
    return len(a) == 1 and a[0] == b[-1]


def _check_int_divisor(xp, op, x, y):
    if kind(y) in "iu" and bool(xp.any(y == 0)):
        fail(op, "Integer division by zero")


def _truncate_div(op):
    def compute(xp, x, y):
        if kind(x) in "iu":
            _check_int_divisor(xp, op, x, y)
            quotient = xp.floor_divide(x, y)
            inexact = xp.remainder(x, y) != 0
            if kind(x) == "i":
                signs_differ = (x < 0) != (y < 0)
                quotient = xp.where(inexact & signs_differ, quotient + scalar(xp, 1, x), quotient)
            return quotient
        quotient = x / y
        return quotient if kind(x) == "c" else xp.trunc(quotient)
    return compute


def _divide(op):
    """Div and RealDiv: true division for floats, truncating division for integers."""
    truncate = _truncate_div(op)

    def compute(xp, x, y):
        if kind(x) in "iu":
            return truncate(xp, x, y)
        return x / y
    return compute


def _floor_div(xp, x, y):
    if kind(x) in "iu":
        _check_int_divisor(xp, "FloorDiv", x, y)
        return xp.floor_divide(x, y)
    return xp.floor(x / y)


def _floor_mod(xp, x, y):
    if kind(x) in "iu":
        _check_int_divisor(xp, "FloorMod", x, y)
    return xp.remainder(x, y)


def _truncate_mod(op):
    """The remainder with the sign of x (C fmod)."""
    def compute(xp, x, y):
        if kind(x) in "iu":
            _check_int_divisor(xp, op, x, y)
        if is_numpy(xp):
            return np.fmod(x, y)
        if kind(x) == "f":  # exact: the remainder of magnitudes, with x's sign (inf, -0.0 too)
            return xp.copysign(xp.remainder(xp.abs(x), xp.abs(y)), x)
        floored = xp.remainder(x, y)
        differs = (floored != 0) & ((floored < 0) != (x < 0))
        return xp.where(differs, floored - y, floored)
    return compute


def _pow(xp, x, y):
    if kind(y) == "i" and bool(xp.any(y < 0)):
        fail("Pow", "Integers to negative integer powers are not allowed")
    return xp.pow(x, y)


def _squared_difference(xp, x, y):
    d = x - y
    return d * xp.conj(d) if kind(d) == "c" else d * d


def _zero_where(xp, condition, value):
    return xp.where(condition, xp.zeros_like(value), value)


def _xlogy(xp, x, y):
    x, y = xp.broadcast_arrays(x, y)
    return _zero_where(xp, x == 0, x * xp.log(y))


def _xlog1py(xp, x, y):
    x, y = xp.broadcast_arrays(x, y)
    return _zero_where(xp, x == 0, x * xp.log1p(y))


def _xdivy(xp, x, y):
    x, y = xp.broadcast_arrays(x, y)
    return _zero_where(xp, x == 0, x / y)


def _div_no_nan(xp, x, y):
    x, y = xp.broadcast_arrays(x, y)
    safe = xp.where(y == 0, xp.ones_like(y), y)
    return _zero_where(xp, y == 0, x / safe)


def _mul_no_nan(xp, x, y):
    x, y = xp.broadcast_arrays(x, y)
    return _zero_where(xp, y == 0, x * y)


def _shift_amount(xp, x, y):
    """TensorFlow clamps shift amounts to [0, bits - 1]."""
    bits = np_dtype(x.dtype).itemsize * 8
    return xp.clip(y, scalar(xp, 0, y), scalar(xp, bits - 1, y))


_BINARY = {
    "Add": lambda xp, x, y: x + y,
    "AddV2": lambda xp, x, y: x + y,
    "Sub": lambda xp, x, y: x - y,
    "Mul": lambda xp, x, y: x * y,
    "Div": _divide("Div"),
    "RealDiv": _divide("RealDiv"),
    "TruncateDiv": _truncate_div("TruncateDiv"),
    "FloorDiv": _floor_div,
    "FloorMod": _floor_mod,
    "TruncateMod": _truncate_mod("TruncateMod"),
    "Mod": _truncate_mod("Mod"),
    "Pow": _pow,
    "Maximum": lambda xp, x, y: xp.maximum(x, y),
    "Minimum": lambda xp, x, y: xp.minimum(x, y),
    "SquaredDifference": _squared_difference,
    "Atan2": lambda xp, x, y: xp.atan2(x, y),
    "Xlogy": _xlogy,
    "Xlog1py": _xlog1py,
    "Xdivy": _xdivy,
    "DivNoNan": _div_no_nan,
    "MulNoNan": _mul_no_nan,
    "Equal": lambda xp, x, y: x == y,
    "NotEqual": lambda xp, x, y: x != y,
    "Less": lambda xp, x, y: x < y,
    "LessEqual": lambda xp, x, y: x <= y,
    "Greater": lambda xp, x, y: x > y,
    "GreaterEqual": lambda xp, x, y: x >= y,
    "LogicalAnd": lambda xp, x, y: xp.logical_and(x, y),
    "LogicalOr": lambda xp, x, y: xp.logical_or(x, y),
    "BitwiseAnd": lambda xp, x, y: xp.bitwise_and(x, y),
    "BitwiseOr": lambda xp, x, y: xp.bitwise_or(x, y),
    "BitwiseXor": lambda xp, x, y: xp.bitwise_xor(x, y),
    "LeftShift": lambda xp, x, y: xp.bitwise_left_shift(x, _shift_amount(xp, x, y)),
    "RightShift": lambda xp, x, y: xp.bitwise_right_shift(x, _shift_amount(xp, x, y)),
}

for _op, _compute in _BINARY.items():
    _binary(_op, _compute)


@op_kernel("ApproximateEqual")
def approximate_equal(ctx, inputs, attrs):
    """|x - y| < tolerance, elementwise (x and y of the same shape)."""
    xp, (x, y) = namespace(ctx, *inputs)
    return [xp.abs(x - y) < scalar(xp, float_attr(attrs, "tolerance", 1e-5), xp.abs(x))]


@op_kernel("Select")
def select(ctx, inputs, attrs):
    """Select(condition, t, e): a vector condition picks rows (first dimension) of t and e."""
    xp, (condition, t, e) = namespace(ctx, *inputs)
    if condition.ndim == 1 and t.ndim > 1:
        condition = xp.reshape(condition, (condition.shape[0],) + (1,) * (t.ndim - 1))
    elif condition.ndim and tuple(condition.shape) != tuple(t.shape):
        fail("Select", f"condition of shape {tuple(condition.shape)} must be a scalar, a vector "
                       f"or match the shape {tuple(t.shape)} of t and e")
    return [xp.where(condition, t, e)]


@op_kernel("SelectV2")
def select_v2(ctx, inputs, attrs):
    """where(condition, t, e) with broadcasting."""
    xp, (condition, t, e) = namespace(ctx, *inputs)
    broadcast_shape(ctx, "SelectV2", condition, t, e)
    return [xp.where(condition, t, e)]


@op_kernel("ClipByValue")
def clip_by_value(ctx, inputs, attrs):
    """max(min(t, clip_value_max), clip_value_min): where min > max, min wins (as TensorFlow)."""
    xp, (t, low, high) = namespace(ctx, *inputs)
    out = xp.maximum(xp.minimum(t, high), low)
    return [xp.broadcast_to(out, t.shape) if tuple(out.shape) != tuple(t.shape) else out]


@op_kernel("AddN")
def add_n(ctx, inputs, attrs):
    xp, arrays = namespace(ctx, *inputs)
    total = arrays[0]
    for a in arrays[1:]:
        total = total + a
    return [total]


@op_kernel("Cross")
def cross(ctx, inputs, attrs):
    """The cross product of 3-vectors along the last axis."""
    xp, (a, b) = namespace(ctx, *inputs)
    if a.ndim < 1 or a.shape[-1] != 3 or tuple(a.shape) != tuple(b.shape):
        fail("Cross", f"inputs must have the same shape with a last dimension of 3, got "
                      f"{tuple(a.shape)} and {tuple(b.shape)}")
    a0, a1, a2 = (a[..., i] for i in range(3))
    b0, b1, b2 = (b[..., i] for i in range(3))
    return [xp.stack([a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0], axis=-1)]


# --------------------------------------------------------------------------- reductions

def reduction_axes(ctx, op, x, axis_tensor) -> tuple[int, ...]:
    """Normalize a reduction's axis tensor (scalar or vector, negative allowed, no duplicates)."""
    axes = []
    for a in host_ints(ctx, axis_tensor):
        if not -x.ndim <= a < x.ndim:
            fail(op, f"Invalid reduction dimension {a} for input with {x.ndim} dimensions")
        a %= x.ndim
        if a in axes:
            fail(op, f"Invalid reduction arguments: Axes contains duplicate dimension: {a}")
        axes.append(a)
    return tuple(axes)


def _reduction(op, compute):
    """Register ``compute(xp, x, axes, keepdims) -> y`` as a Sum-like op (input, axis, keep_dims)."""
    @op_kernel(op)
    def run(ctx, inputs, attrs):
        xp, (x,) = namespace(ctx, inputs[0])
        axes = reduction_axes(ctx, op, x, inputs[1])
        return [compute(xp, x, axes, bool(attrs.get("keep_dims", False)))]
    return run


def _reduced_count(x, axes) -> int:
    return math.prod(int(x.shape[a]) for a in axes)


def _sum(xp, x, axes, keepdims):
    if is_half(x):
        return astype(xp, xp.sum(wide(xp, x), axis=axes, keepdims=keepdims), x.dtype)
    return xp.sum(x, axis=axes, keepdims=keepdims, dtype=x.dtype)


def _prod(xp, x, axes, keepdims):
    if is_half(x):
        return astype(xp, xp.prod(wide(xp, x), axis=axes, keepdims=keepdims), x.dtype)
    return xp.prod(x, axis=axes, keepdims=keepdims, dtype=x.dtype)


def _extreme(pick, identity):
    def compute(xp, x, axes, keepdims):
        if _reduced_count(x, axes) == 0 or 0 in x.shape:
            shape = tuple(1 if a in axes else int(d) for a, d in enumerate(x.shape))
            if not keepdims:
                shape = tuple(d for a, d in enumerate(shape) if a not in axes)
            return xp.full(shape, identity(x), dtype=x.dtype)
        return pick(xp)(x, axis=axes, keepdims=keepdims)
    return compute


def _float_sum(xp, x, axes, keepdims):
    """xp.sum; on numpy, a sum over middle axes (spatial means) as one einsum over
    (outer, reduced, lanes): numpy's reduction walks a short trailing axis row by row."""
    if (is_numpy(xp) and x.ndim >= 3 and kind(x) == "f" and axes and x.size
            and max(axes) < x.ndim - 1 and sorted(axes) == list(range(min(axes), max(axes) + 1))):
        first, last = min(axes), max(axes)
        grouped = x.reshape(math.prod(x.shape[:first]), -1, math.prod(x.shape[last + 1:]))
        total = np.einsum("okc->oc", grouped)
        shape = [1 if a in axes else int(d) for a, d in enumerate(x.shape)] if keepdims else \
            [int(d) for a, d in enumerate(x.shape) if a not in axes]
        return total.reshape(shape)
    if (is_numpy(xp) and axes == (x.ndim - 1,) and kind(x) == "f" and 1 < x.shape[-1] <= 64
            and x.size >= 16 * x.shape[-1]):
        # a short last axis: numpy reduces it row by row; sum the rows as columns instead
        columns = np.ascontiguousarray(x.reshape(-1, x.shape[-1]).T)
        total = columns.sum(axis=0)
        return total.reshape(x.shape[:-1] + ((1,) if keepdims else ()))
    return xp.sum(x, axis=axes, keepdims=keepdims)


def _mean(xp, x, axes, keepdims):
    count = _reduced_count(x, axes)
    if kind(x) in "iu":
        accumulator = np.uint64 if kind(x) == "u" else np.int64
        total = xp.sum(astype(xp, x, accumulator), axis=axes, keepdims=keepdims)
        if count == 0:
            return astype(xp, xp.zeros_like(total), x.dtype)
        divisor = scalar(xp, count, total)
        quotient = xp.floor_divide(total, divisor)
        if kind(x) == "i":  # truncate toward zero
            quotient = xp.where((total < 0) & (xp.remainder(total, divisor) != 0),
                                quotient + scalar(xp, 1, total), quotient)
        return astype(xp, quotient, x.dtype)
    total = _float_sum(xp, wide(xp, x), axes, keepdims)
    if not count:  # TensorFlow: NaN for real floats, 0 for complex
        return astype(xp, total if kind(x) == "c" else total * math.nan, x.dtype)
    return astype(xp, total / scalar(xp, count, total), x.dtype)


def _euclidean_norm(xp, x, axes, keepdims):
    if kind(x) == "c":
        return xp.sqrt(xp.sum(x * xp.conj(x), axis=axes, keepdims=keepdims, dtype=x.dtype))
    if kind(x) in "iu":
        squares = astype(xp, x, np.float64)
        return astype(xp, xp.sqrt(xp.sum(squares * squares, axis=axes, keepdims=keepdims)), x.dtype)
    w = wide(xp, x)
    return astype(xp, xp.sqrt(xp.sum(w * w, axis=axes, keepdims=keepdims)), x.dtype)


_REDUCTIONS = {
    "Sum": _sum,
    "Prod": _prod,
    "Max": _extreme(lambda xp: xp.max, lowest),
    "Min": _extreme(lambda xp: xp.min, highest),
    "Mean": _mean,
    "All": lambda xp, x, axes, keepdims: xp.all(x, axis=axes, keepdims=keepdims),
    "Any": lambda xp, x, axes, keepdims: xp.any(x, axis=axes, keepdims=keepdims),
    "EuclideanNorm": _euclidean_norm,
}

for _op, _compute in _REDUCTIONS.items():
    _reduction(_op, _compute)


def _arg_extreme(op, pick, nan_replacement):
    @op_kernel(op)
    def run(ctx, inputs, attrs):
        xp, (x,) = namespace(ctx, inputs[0])
        (axis,) = reduction_axes(ctx, op, x, inputs[1]) or (0,)
        if x.ndim == 0:
            fail(op, "input must have rank >= 1")
        if x.shape[axis] == 0:
            fail(op, f"Reduction axis {axis} is empty in shape {tuple(x.shape)}")
        if kind(x) == "f":  # TensorFlow's scan never picks NaN over a number
            x = xp.where(xp.isnan(x), scalar(xp, nan_replacement, x), x)
        index = pick(xp)(x, axis=axis)
        return [astype(xp, index, attrs.get("output_type", np.int64))]
    return run


_arg_extreme("ArgMax", lambda xp: xp.argmax, -math.inf)
_arg_extreme("ArgMin", lambda xp: xp.argmin, math.inf)


@op_kernel("L2Loss")
def l2_loss(ctx, inputs, attrs):
    """sum(t ** 2) / 2 as a scalar."""
    xp, (t,) = namespace(ctx, inputs[0])
    w = wide(xp, t)
    return [astype(xp, xp.sum(w * w) / scalar(xp, 2, w), t.dtype)]


# --------------------------------------------------------------------------- scans

def _scan(op, cumulative):
    @op_kernel(op)
    def run(ctx, inputs, attrs):
        xp, (x,) = namespace(ctx, inputs[0])
        if x.ndim == 0:
            fail(op, "input must have rank >= 1")
        (axis,) = host_ints(ctx, inputs[1])
        if not -x.ndim <= axis < x.ndim:
            fail(op, f"axis {axis} is out of range for rank {x.ndim}")
        axis %= x.ndim
        exclusive, reverse = bool(attrs.get("exclusive", False)), bool(attrs.get("reverse", False))
        work = wide(xp, x)
        if reverse:
            work = xp.flip(work, axis=axis)
        result = cumulative(xp)(work, axis=axis, dtype=work.dtype, include_initial=exclusive)
        if exclusive:
            index = [slice(None)] * x.ndim
            index[axis] = slice(0, int(x.shape[axis]))
            result = result[tuple(index)]
        if reverse:
            result = xp.flip(result, axis=axis)
        return [astype(xp, result, x.dtype)]
    return run


_scan("Cumsum", lambda xp: xp.cumulative_sum)
_scan("Cumprod", lambda xp: xp.cumulative_prod)


# --------------------------------------------------------------------------- matmul and einsum

def _matmul(xp, a, b, out_dtype=None):
    """a @ b; half floats accumulate in float32 like TensorFlow's CPU kernels."""
    out_dtype = out_dtype or np_dtype(a.dtype)
    if is_half(a) or is_half(b):
        a, b = astype(xp, a, np.float32), astype(xp, b, np.float32)
    if is_numpy(xp) and a.ndim and b.ndim:
        BLAS.for_product(math.prod(a.shape[-2:]) * b.shape[-1])
    return astype(xp, xp.matmul(a, b), out_dtype)


def _adjoint(xp, m):
    m = xp.matrix_transpose(m)
    return xp.conj(m) if kind(m) == "c" else m


_BLAS_FLOATS = frozenset({np.dtype(np.float32), np.dtype(np.float64)})


@prepared_kernel("MatMul")
def prepare_mat_mul(node, ctx):
    """a @ b of two matrices; transpose_a/transpose_b transpose (without conjugating)."""
    attrs = node.attrs
    if not ctx.is_numpy or attrs.get("transpose_a") or attrs.get("transpose_b"):
        return lambda inputs: _mat_mul_general(ctx, inputs, attrs)
    cap = ctx.memory_cap

    kept = [None, None]

    def run(inputs):
        a, b = inputs  # plain float matrices: straight to BLAS (which raises no numpy warnings)
        dtype = a.dtype
        if b.dtype is dtype and a.ndim == 2 and b.ndim == 2 and type(a) is np.ndarray:
            (m, k), (k_b, n) = a.shape, b.shape
            if k == k_b and m * n * dtype.itemsize <= cap:
                if dtype is HALF:
                    return [_half_matmul(a, b, kept)]
                if dtype in _BLAS_FLOATS:
                    if m * k * n > OPENBLAS_SINGLE_THREAD_MNK:
                        return [BLAS.matmul(a, b)]
                    return [np.dot(a, b)]
        return _mat_mul_general(ctx, inputs, attrs)
    run.fresh = True  # every path returns an array it allocated (fused epilogues write into it)
    return run


def _half_matmul(x, y, kept):
    """float16 ``x @ y`` (y a matrix) as `_matmul` computes it: in float32, rounded once;
    ``y`` widened once while it is the same read-only array (`_wide_kept`)."""
    BLAS.for_product(x.shape[-2] * x.shape[-1] * y.shape[-1])
    return to_half(np.matmul(to_float32(x), _wide_kept(kept, y)))


def _wide_kept(kept, b):
    """``b`` (float16) in float32; kept in ``kept`` (a node's [array, copy]) when ``b`` is
    read-only, as constants are (the same array object every call)."""
    if kept[0] is b:
        return kept[1]
    wide_b = b.astype(np.float32)
    if type(b) is np.ndarray and not b.flags.writeable:
        kept[0], kept[1] = b, wide_b
    return wide_b


@op_kernel_wrapper
def _mat_mul_general(ctx, inputs, attrs):
    xp, (a, b) = namespace(ctx, *inputs)
    if attrs.get("transpose_a", False):
        a = xp.matrix_transpose(a)
    if attrs.get("transpose_b", False):
        b = xp.matrix_transpose(b)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[0]:
        fail("MatMul", f"Matrix size-incompatible: In[0]: {list(a.shape)}, In[1]: {list(b.shape)}")
    ctx.check_alloc((a.shape[0], b.shape[1]), np_dtype(a.dtype), "MatMul")
    return [_matmul(xp, a, b)]


def _batch_mat_mul(op, broadcast):
    def general(ctx, inputs, attrs):
        xp, (x, y) = namespace(ctx, *inputs)
        if x.ndim < 2 or y.ndim < 2:
            fail(op, "inputs must have rank >= 2")
        if not broadcast and tuple(x.shape[:-2]) != tuple(y.shape[:-2]):
            fail(op, f"batch dimensions differ: {tuple(x.shape)} and {tuple(y.shape)}")
        if attrs.get("adj_x", False):
            x = _adjoint(xp, x)
        if attrs.get("adj_y", False):
            y = _adjoint(xp, y)
        out_dtype = attrs.get("Tout")
        if out_dtype is not None:
            out_dtype = np.dtype(out_dtype)
            x, y = astype(xp, x, out_dtype), astype(xp, y, out_dtype)
        batch = np.broadcast_shapes(tuple(x.shape[:-2]), tuple(y.shape[:-2]))
        ctx.check_alloc(batch + (x.shape[-2], y.shape[-1]), np_dtype(x.dtype), op)
        return [_matmul(xp, x, y, out_dtype)]

    slow = op_kernel_wrapper(general)

    def prepare(node, ctx):
        attrs = node.attrs
        tout = attrs.get("Tout")
        if (not (ctx.is_numpy and ctx.optimize) or attrs.get("adj_x") or attrs.get("adj_y")
                or (tout is not None and np.dtype(tout) != HALF)):
            return lambda inputs: slow(ctx, inputs, attrs)
        kept, cap = [None, None], ctx.memory_cap

        def run(inputs):  # float16 batches times a float16 matrix: as _matmul does it
            x, y = inputs
            if (type(x) is np.ndarray and x.dtype is HALF and type(y) is np.ndarray
                    and y.dtype is HALF and x.ndim >= 2 and y.ndim == 2 and x.shape[-1] == y.shape[0]
                    and math.prod(x.shape[:-1]) * y.shape[1] * 2 <= cap):
                return [_half_matmul(x, y, kept)]
            return slow(ctx, inputs, attrs)
        return run

    prepared_kernel(op)(prepare)


_batch_mat_mul("BatchMatMul", broadcast=False)
_batch_mat_mul("BatchMatMulV2", broadcast=True)
_batch_mat_mul("BatchMatMulV3", broadcast=True)


def _parse_einsum(equation: str, ranks: list[int]):
    """Operand label lists and output labels, with '...' spelled out as unique labels."""
    equation = equation.replace(" ", "")
    if "->" not in equation:
        fail("Einsum", f"equation {equation!r} needs an explicit '->' output")
    inputs_text, output_text = equation.split("->")
    terms = inputs_text.split(",")
    if len(terms) != len(ranks):
        fail("Einsum", f"equation {equation!r} names {len(terms)} operands, got {len(ranks)}")
    ellipsis_rank = 0
    for term, rank in zip(terms, ranks):
        if "..." in term:
            ellipsis_rank = max(ellipsis_rank, rank - len(term.replace("...", "")))
    ellipsis_labels = [f"...{i}" for i in range(ellipsis_rank)]

    def expand(term, rank=None):
        if "..." not in term:
            return list(term)
        before, after = term.split("...")
        width = ellipsis_rank if rank is None else rank - len(before) - len(after)
        return list(before) + ellipsis_labels[ellipsis_rank - width:] + list(after)

    operands = [expand(t, r) for t, r in zip(terms, ranks)]
    for labels, rank in zip(operands, ranks):
        if len(labels) != rank:
            fail("Einsum", f"equation {equation!r} does not match an operand of rank {rank}")
    return operands, expand(output_text)


def _take_diagonals(xp, x, labels):
    """Collapse repeated labels of one operand to their diagonal."""
    while len(set(labels)) < len(labels):
        for i, label in enumerate(labels):
            j = labels.index(label, i + 1) if label in labels[i + 1:] else -1
            if j >= 0:
                break
        n = int(x.shape[i])
        rest = [k for k in range(x.ndim) if k not in (i, j)]
        x = xp.permute_dims(x, tuple(rest) + (i, j))
        x = xp.reshape(x, tuple(x.shape[:-2]) + (n * n,))[..., ::n + 1]
        labels = [labels[k] for k in rest] + [label]
    return x, labels


def _einsum_generic(xp, operands, label_lists, output):
    """Einsum of one or two operands by diagonals, sums, permutes, reshapes and one matmul."""
    arrays, lists = [], []
    for x, labels in zip(operands, label_lists):
        x, labels = _take_diagonals(xp, x, list(labels))
        summed = [k for k, label in enumerate(labels)
                  if label not in output and sum(label in l for l in label_lists) == 1]
        if summed:
            x = xp.sum(x, axis=tuple(summed), dtype=x.dtype)
            labels = [label for k, label in enumerate(labels) if k not in summed]
        arrays.append(x)
        lists.append(labels)
    sizes = {}
    for x, labels in zip(arrays, lists):
        for label, dim in zip(labels, x.shape):
            if sizes.get(label, 1) == 1:  # a size-1 dimension broadcasts
                sizes[label] = int(dim)
    if len(arrays) == 1:
        (x,), (labels,) = arrays, lists
        return xp.permute_dims(x, tuple(labels.index(label) for label in output))
    (a, b), (la, lb) = arrays, lists
    batch = [label for label in output if label in la and label in lb]
    contracted = [label for label in la if label in lb and label not in output]
    left = [label for label in la if label not in lb]
    right = [label for label in lb if label not in la]

    def arrange(x, labels, order, groups):
        x = xp.permute_dims(x, tuple(labels.index(label) for label in order))
        x = xp.broadcast_to(x, tuple(sizes[label] for label in order))
        return xp.reshape(x, tuple(math.prod(sizes[label] for label in group)
                                   for group in groups))

    a3 = arrange(a, la, batch + left + contracted, (batch, left, contracted))
    b3 = arrange(b, lb, batch + contracted + right, (batch, contracted, right))
    product = xp.matmul(a3, b3)
    product = xp.reshape(product, tuple(sizes[label] for label in batch + left + right))
    order = batch + left + right
    return xp.permute_dims(product, tuple(order.index(label) for label in output))


@op_kernel("Einsum")
def einsum(ctx, inputs, attrs):
    """Einstein summation of one or two operands (the equation attr, with '...' broadcasting)."""
    xp, operands = namespace(ctx, *inputs)
    equation = attrs["equation"]
    if isinstance(equation, bytes):
        equation = equation.decode()
    if len(operands) == 2 and is_numpy(xp):  # seen before: shapes checked, plan known
        a, b = operands
        plan = _EINSUM_PLANS.get((equation, a.shape, b.shape))
        if plan and a.dtype == b.dtype:
            if a.dtype is HALF:  # as below: in float32, rounded once
                return [_run_einsum_plan(plan, a.astype(np.float32), b.astype(np.float32)).astype(
                    HALF, copy=False)]
            if not is_half(a):
                return [_run_einsum_plan(plan, a, b)]
    if len(operands) not in (1, 2):
        fail("Einsum", f"supports 1 or 2 operands, got {len(operands)}")
    label_lists, output = _parse_einsum(equation, [x.ndim for x in operands])
    out_dtype = np_dtype(operands[0].dtype)
    sizes = {}
    for x, labels in zip(operands, label_lists):
        for label, dim in zip(labels, x.shape):
            sizes[label] = max(sizes.get(label, 0), int(dim))
    ctx.check_alloc([sizes[label] for label in output], out_dtype, "Einsum")
    work = [astype(xp, x, np.float32) if is_half(x) else x for x in operands]
    if is_numpy(xp):
        if len(work) == 2:
            key = (equation, work[0].shape, work[1].shape)
            plan = _EINSUM_PLANS.get(key)
            if plan is None:
                if len(_EINSUM_PLANS) > 256:
                    _EINSUM_PLANS.clear()
                plan = _EINSUM_PLANS[key] = _einsum_matmul_plan(label_lists, output, *work)
            if plan:
                return [_run_einsum_plan(plan, *work).astype(out_dtype, copy=False)]
        return [np.asarray(np.einsum(equation, *work, optimize=True)).astype(out_dtype, copy=False)]
    return [astype(xp, _einsum_generic(xp, work, label_lists, output), out_dtype)]


_EINSUM_PLANS: dict = {}


def _einsum_matmul_plan(label_lists, output, a, b):
    """Permutations and shapes that turn a two-operand einsum into one batched matmul
    (numpy), or False when labels repeat, broadcast or are summed in one operand only."""
    la, lb = label_lists
    if len(set(la)) != len(la) or len(set(lb)) != len(lb) or len(set(output)) != len(output):
        return False
    sizes = {}
    for labels, x in ((la, a), (lb, b)):
        for label, dim in zip(labels, x.shape):
            if sizes.setdefault(label, int(dim)) != int(dim):
                return False
    if any(label not in output and label not in (lb if label in la else la)
           for label in sizes):
        return False
    batch = [label for label in output if label in la and label in lb]
    contracted = [label for label in la if label in lb and label not in output]
    left = [label for label in la if label not in lb]
    right = [label for label in lb if label not in la]
    if sorted(batch + left + right) != sorted(output):
        return False
    order = batch + left + right

    def size(group):
        return math.prod(sizes[label] for label in group)

    return (tuple(la.index(label) for label in batch + left + contracted),
            (size(batch), size(left), size(contracted)),
            tuple(lb.index(label) for label in batch + contracted + right),
            (size(batch), size(contracted), size(right)),
            tuple(sizes[label] for label in order),
            tuple(order.index(label) for label in output))


def _run_einsum_plan(plan, a, b):
    a_order, a_shape, b_order, b_shape, product_shape, out_order = plan
    BLAS.for_product(math.prod(a_shape[-2:]) * b_shape[-1])
    product = np.matmul(a.transpose(a_order).reshape(a_shape), b.transpose(b_order).reshape(b_shape))
    return product.reshape(product_shape).transpose(out_order)
