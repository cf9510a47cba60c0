"""Inverse error function and the standard normal quantile (Erfinv, Ndtri), the
regularized incomplete gamma functions (Igamma, Igammac) and the regularized incomplete
beta function (Betainc), in float64 array code, rounded to the input's dtype (half floats
through float64 too).

Both solve Phi(z) = p for the standard normal CDF Phi: a starting point from Abramowitz
& Stegun 26.2.23 (absolute error below 4.5e-4), then four Halley steps on
``erf(z / sqrt 2) / 2 = p - 1/2`` in the centre or ``erfc(z / sqrt 2) / 2 = tail`` in the
tails, so that neither loses relative accuracy near p = 1/2 nor near 0 and 1. ``p - 1/2`` and
the tail are formed exactly by the caller (Erfinv(y): y / 2 and (1 - |y|) / 2).
"""
from __future__ import annotations

import math

import numpy as np

from . import _special
from ._numeric import astype, fail, namespace, np_dtype, op_kernel

_SQRT_HALF = math.sqrt(0.5)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
# Abramowitz & Stegun 26.2.23: t - (c0 + c1 t + c2 t^2) / (1 + d1 t + d2 t^2 + d3 t^3)
_AS_C = (2.515517, 0.802853, 0.010328)
_AS_D = (1.432788, 0.189269, 0.001308)
_HALLEY_STEPS = 4
_CENTRAL = 0.25  # |p - 1/2| below: the centred equation; above: the tail's


def normal_quantile(xp, centre, tail):
    """z >= 0 with Phi(z) = 1/2 + |centre|, where ``tail = 1/2 - |centre|`` (both float64,
    exact); +inf where the tail is 0. The caller applies the sign of ``centre``."""
    magnitude = xp.abs(centre)
    central = magnitude < _CENTRAL
    safe_tail = xp.where(tail > 0, tail, 0.5)
    t = xp.sqrt(-2.0 * xp.log(safe_tail))
    z = t - (_AS_C[0] + t * (_AS_C[1] + t * _AS_C[2])) / (
        1.0 + t * (_AS_D[0] + t * (_AS_D[1] + t * _AS_D[2])))
    z = xp.maximum(z, 0.0)
    for _ in range(_HALLEY_STEPS):
        scaled = z * _SQRT_HALF
        # f(z) = Phi(z) - target, f' = phi(z), f'' = -z phi(z)
        residual = xp.where(central, 0.5 * _special.erf(xp, scaled) - magnitude,
                            tail - 0.5 * _special.erfc(xp, scaled))
        density = _INV_SQRT_2PI * xp.exp(-0.5 * z * z)
        step = -residual / density
        z = z + step / (1.0 - 0.5 * z * step)
    z = xp.where(magnitude == 0, 0.0, z)
    return xp.where(tail == 0, math.inf, z)


def _signed(xp, centre, z):
    return xp.where(centre < 0, -z, z)


def _apply(ctx, inputs, compute):
    xp, (x,) = namespace(ctx, inputs[0])
    return [astype(xp, compute(xp, astype(xp, x, np.float64)), np_dtype(x.dtype))]


def _erfinv(xp, y):
    centre = 0.5 * y
    tail = 0.5 * (1.0 - xp.abs(y))
    z = _signed(xp, centre, normal_quantile(xp, centre, xp.maximum(tail, 0.0))) * _SQRT_HALF
    return xp.where((xp.abs(y) > 1) | xp.isnan(y), math.nan, z)


def _ndtri(xp, p):
    centre = p - 0.5
    tail = xp.minimum(p, 1.0 - p)
    z = _signed(xp, centre, normal_quantile(xp, centre, xp.maximum(tail, 0.0)))
    return xp.where((p < 0) | (p > 1) | xp.isnan(p), math.nan, z)


@op_kernel("Erfinv")
def erfinv(ctx, inputs, attrs):
    """x with erf(x) = y; +-inf at +-1, NaN outside [-1, 1]."""
    return _apply(ctx, inputs, _erfinv)


@op_kernel("Ndtri")
def ndtri(ctx, inputs, attrs):
    """The standard normal quantile: z with Phi(z) = p; -inf at 0, inf at 1, NaN outside."""
    return _apply(ctx, inputs, _ndtri)


# --- Igamma, Igammac: Cephes' igam/igamc as Eigen (TensorFlow) arranges them ------------------

_MACHEP = float(np.finfo(np.float64).eps) / 2
_MAX_LOG = math.log(float(np.finfo(np.float64).max))
_BIG = 4503599627370496.0  # 2^52: the continued fraction's rescaling threshold
_MAX_ITERATIONS = 2000
_CHECK_EVERY = 25


def _log_prefactor(xp, a, x):
    """exp(a log x - x - lgamma(a)); 0 where it underflows or is NaN."""
    log_ax = a * xp.log(x) - x - _special.lgamma(xp, a)
    usable = (log_ax >= -_MAX_LOG) & ~xp.isnan(log_ax)
    return xp.where(usable, xp.exp(xp.where(usable, log_ax, 0.0)), 0.0)


def _lower_series(xp, a, x):
    """P(a, x) by its power series (for x <= 1 or x <= a); 0 where the prefactor is."""
    prefactor = _log_prefactor(xp, a, x)
    r, term, total = a, xp.ones_like(a), xp.ones_like(a)
    active = xp.ones(a.shape, dtype=xp.bool)
    for i in range(_MAX_ITERATIONS):  # each lane stops where Cephes' loop stops
        r = r + 1.0
        term = term * x / r
        total = xp.where(active, total + term, total)
        active = active & (term > _MACHEP * total)
        if i % _CHECK_EVERY == 0 and not bool(xp.any(active)):
            break
    return xp.where(prefactor == 0, 0.0, total * prefactor / a)


def _upper_fraction(xp, a, x):
    """Q(a, x) by its continued fraction (for x > 1 and x > a); 0 at x = inf."""
    y = 1.0 - a
    z = x + y + 1.0
    c = xp.zeros_like(a)
    p_prev2, q_prev2 = xp.ones_like(a), x
    p_prev, q_prev = x + 1.0, z * x
    answer = p_prev / q_prev
    active = xp.ones(a.shape, dtype=xp.bool)
    for i in range(_MAX_ITERATIONS):  # each lane stops where Cephes' loop stops
        c, y, z = c + 1.0, y + 1.0, z + 2.0
        yc = y * c
        p = p_prev * z - p_prev2 * yc
        q = q_prev * z - q_prev2 * yc
        nonzero = q != 0
        ratio = p / xp.where(nonzero, q, 1.0)
        change = xp.where(nonzero, xp.abs((answer - ratio) / ratio), 1.0)
        answer = xp.where(active & nonzero, ratio, answer)
        active = active & (change > _MACHEP)
        p_prev2, p_prev, q_prev2, q_prev = p_prev, p, q_prev, q
        large = xp.abs(p) > _BIG
        p_prev2, p_prev, q_prev2, q_prev = (xp.where(large, v / _BIG, v)
                                            for v in (p_prev2, p_prev, q_prev2, q_prev))
        if i % _CHECK_EVERY == 0 and not bool(xp.any(active)):
            break
    return xp.where(xp.isinf(x), 0.0, answer * _log_prefactor(xp, a, x))


def _incomplete_gamma(xp, a, x, upper):
    """P(a, x) (or Q with ``upper``), with TensorFlow's answers at the edges: NaN for a <= 0,
    x < 0 or NaN (P(a, 0) = 0 is checked before them; Q(0, 0) is NaN). P takes the continued
    fraction for x > 1 and x > a, Q for x >= 1 and x >= a, as Eigen splits them."""
    fraction = ((x >= 1) & (x >= a)) if upper else ((x > 1) & (x > a))
    # each method on its own lanes (the other lanes get harmless values)
    safe_a = xp.where((a > 0) & ~xp.isnan(a), a, 1.0)
    safe_x = xp.where((x >= 0) & ~xp.isnan(x), x, 1.0)
    series = _lower_series(xp, xp.where(fraction, 1.0, safe_a), xp.where(fraction, 0.5, safe_x))
    continued = _upper_fraction(xp, xp.where(fraction, safe_a, 1.0), xp.where(fraction, safe_x, 2.0))
    result = xp.where(fraction, 1.0 - continued, series) if not upper else \
        xp.where(fraction, continued, 1.0 - series)
    if upper:
        result = xp.where(xp.isinf(x), 0.0, result)
    result = xp.where(xp.isnan(a) | xp.isnan(x), math.nan, result)
    result = xp.where((x < 0) | (a <= 0), math.nan, result)
    if not upper:
        result = xp.where(x == 0, 0.0, result)
    return result


def _binary(op, ctx, inputs, compute):
    xp, (a, x) = namespace(ctx, inputs[0], inputs[1])
    if np_dtype(a.dtype) != np_dtype(x.dtype):
        fail(op, f"a and x must have the same dtype, got {np_dtype(a.dtype)} and {np_dtype(x.dtype)}")
    try:
        shape = tuple(np.broadcast_shapes(tuple(a.shape), tuple(x.shape)))
    except ValueError:
        fail(op, f"Incompatible shapes: {tuple(a.shape)} vs. {tuple(x.shape)}")
    wide_a = xp.broadcast_to(astype(xp, a, np.float64), shape)
    wide_x = xp.broadcast_to(astype(xp, x, np.float64), shape)
    return [astype(xp, compute(xp, wide_a, wide_x), np_dtype(a.dtype))]


@op_kernel("Igamma")
def igamma(ctx, inputs, attrs):
    """The regularized lower incomplete gamma function P(a, x)."""
    return _binary("Igamma", ctx, inputs, lambda xp, a, x: _incomplete_gamma(xp, a, x, False))


@op_kernel("Igammac")
def igammac(ctx, inputs, attrs):
    """The regularized upper incomplete gamma function Q(a, x) = 1 - P(a, x)."""
    return _binary("Igammac", ctx, inputs, lambda xp, a, x: _incomplete_gamma(xp, a, x, True))


# --- Betainc ---------------------------------------------------------------------------------

_TINY = 1e-300


def _beta_fraction(xp, a, b, x):
    """The continued fraction of I_x(a, b) (modified Lentz), each lane stopped at convergence;
    converges fast for x < (a + 1) / (a + b + 2)."""
    def floor(v):
        return xp.where(xp.abs(v) < _TINY, _TINY, v)

    c = xp.ones_like(a)
    d = 1.0 / floor(1.0 - (a + b) * x / (a + 1.0))
    h = d
    active = xp.ones(a.shape, dtype=xp.bool)
    for m in range(1, _MAX_ITERATIONS + 1):
        even = m * (b - m) * x / ((a - 1.0 + 2 * m) * (a + 2 * m))
        d = 1.0 / floor(1.0 + even * d)
        c = floor(1.0 + even / c)
        h = xp.where(active, h * d * c, h)
        odd = -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 1.0 + 2 * m))
        d = 1.0 / floor(1.0 + odd * d)
        c = floor(1.0 + odd / c)
        delta = d * c
        h = xp.where(active, h * delta, h)
        active = active & (xp.abs(delta - 1.0) > _MACHEP)
        if m % _CHECK_EVERY == 0 and not bool(xp.any(active)):
            break
    return h


def _betainc(xp, a, b, x):
    """I_x(a, b): the fraction on whichever of (a, b, x) and (b, a, 1 - x) converges fast, times
    x^a (1 - x)^b / (a B(a, b)) in logarithms. NaN for a, b <= 0 or infinite, x outside [0, 1]."""
    domain = (a > 0) & (b > 0) & ~xp.isinf(a) & ~xp.isinf(b) & (x >= 0) & (x <= 1)
    inside = domain & (x > 0) & (x < 1)
    safe_a, safe_b = xp.where(inside, a, 1.0), xp.where(inside, b, 1.0)
    safe_x = xp.where(inside, x, 0.5)
    swap = safe_x > (safe_a + 1.0) / (safe_a + safe_b + 2.0)
    first, second = xp.where(swap, safe_b, safe_a), xp.where(swap, safe_a, safe_b)
    point, complement = xp.where(swap, 1.0 - safe_x, safe_x), xp.where(swap, safe_x, 1.0 - safe_x)
    log_front = (first * xp.log(point) + second * xp.log(complement) + _special.lgamma(xp, first + second)
                 - _special.lgamma(xp, first) - _special.lgamma(xp, second))
    part = xp.exp(log_front) * _beta_fraction(xp, first, second, point) / first
    result = xp.where(swap, 1.0 - part, part)
    result = xp.where(x == 0, 0.0, xp.where(x == 1, 1.0, result))
    return xp.where(domain & ~xp.isnan(x), result, math.nan)


@op_kernel("Betainc")
def betainc(ctx, inputs, attrs):
    """The regularized incomplete beta function I_x(a, b); a, b and x have one shape, or are
    scalars (TensorFlow does not broadcast them otherwise)."""
    op = "Betainc"
    xp, (a, b, x) = namespace(ctx, *inputs[:3])
    shapes = [tuple(v.shape) for v in (a, b, x)]
    full = [s for s in shapes if s != ()]
    if any(s != full[0] for s in full):
        fail(op, f"Shapes of a, b and x are inconsistent: {shapes} (each must be that shape or "
                 "a scalar)")
    shape = full[0] if full else ()
    dtype = np_dtype(a.dtype)
    wide = [xp.broadcast_to(astype(xp, v, np.float64), shape) for v in (a, b, x)]
    return [astype(xp, _betainc(xp, *wide), dtype)]


# --- Modified Bessel functions of the first kind, orders 0 and 1 -------------------------------

_BESSEL_SERIES_UNTIL = 30.0  # |x| below: the power series (positive terms); above: asymptotic
_BESSEL_SERIES_TERMS = 100
_BESSEL_ASYMPTOTIC_TERMS = 30


def _bessel_scaled(xp, x, order):
    """exp(-|x|) I_order(|x|) for order 0 or 1 (float64): the power series
    sum (x/2)^(2k + order) / (k! (k + order)!) below |x| = 30, else the asymptotic series
    exp(-x) I_v(x) ~ sum_k (-1)^k prod_{j <= k}(4 v^2 - (2j - 1)^2) / (k! (8x)^k) / sqrt(2 pi x)."""
    a = xp.abs(x)
    small = a < _BESSEL_SERIES_UNTIL
    s = xp.where(small, a, 1.0)
    quarter_square = 0.25 * s * s
    term = 0.5 * s if order else xp.ones_like(s)
    total = term
    for k in range(1, _BESSEL_SERIES_TERMS):
        term = term * quarter_square / (k * (k + order))
        total = total + term
    series = total * xp.exp(-s)
    big = xp.where(small, _BESSEL_SERIES_UNTIL, a)
    mu = 4.0 * order * order
    term = xp.ones_like(big)
    total = term
    for k in range(1, _BESSEL_ASYMPTOTIC_TERMS):
        term = -term * (mu - (2 * k - 1) ** 2) / (k * 8.0 * big)
        total = total + term
    asymptotic = total / xp.sqrt(2.0 * math.pi * big)
    result = xp.where(small, series, asymptotic)
    result = xp.where(xp.isinf(a), 0.0, result)
    return xp.where(x < 0, -result, result) if order else result


def _bessel_kernel(op, order, scaled):
    def compute(xp, x):
        value = _bessel_scaled(xp, x, order)
        return value if scaled else value * xp.exp(xp.abs(x))

    @op_kernel(op)
    def kernel(ctx, inputs, attrs):
        return _apply(ctx, inputs, compute)
    kernel.__name__ = op.lower()
    kernel.__doc__ = (f"{'exp(-|x|) ' if scaled else ''}I_{order}(x), the modified Bessel function "
                      f"of the first kind of order {order}.")
    return kernel


for _op, _order, _scaled in (("BesselI0e", 0, True), ("BesselI1e", 1, True),
                             ("BesselI0", 0, False), ("BesselI1", 1, False)):
    _bessel_kernel(_op, _order, _scaled)
