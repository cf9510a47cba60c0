"""Scaled Bessel functions and incomplete gamma and beta functions, in float64 array code
rounded to the input's dtype: BesselI0e, BesselI1e, Igamma, Igammac, Betainc.

* ``exp(-|x|) I_nu(x)``: the power series (all terms positive) up to |x| = 30, then the
  asymptotic expansion ``1/sqrt(2 pi x) sum (-1)^k a_k(nu) / x^k`` (its terms shrink by a
  factor below 0.2 per step there).
* ``P(a, x)`` and ``Q(a, x)``: the series of P for x < a + 1, Legendre's continued fraction
  of Q (modified Lentz) otherwise, each with a fixed number of terms enough for float64
  over TensorFlow's range of use; the other is 1 minus it.
* ``I_x(a, b)``: the continued fraction of Numerical Recipes' betacf (modified Lentz), on
  the side of ``x < (a + 1) / (a + b + 2)`` where it converges fast, the other by symmetry.
Domain errors give NaN, as TensorFlow's kernels do.
"""
from __future__ import annotations

import math

import numpy as np

from . import _special
from ._numeric import astype, namespace, np_dtype, op_kernel

_BESSEL_SERIES_LIMIT = 30.0
_BESSEL_SERIES_TERMS = 80
_BESSEL_ASYMPTOTIC_TERMS = 14
_GAMMA_TERMS = 300
_BETA_TERMS = 300
_TINY = 1e-300


def _float64_inputs(ctx, inputs):
    xp, arrays = namespace(ctx, *inputs)
    dtype = np_dtype(arrays[0].dtype)
    wide = [astype(xp, a, np.float64) for a in arrays]
    if len(wide) > 1:
        wide = list(xp.broadcast_arrays(*wide))
    return xp, dtype, wide


def _scaled_bessel_i(xp, x, order: int):
    """exp(-|x|) I_order(x) for order 0 or 1."""
    a = xp.abs(x)
    small = xp.minimum(a, _BESSEL_SERIES_LIMIT)
    quarter = small * small / 4.0
    term = xp.ones_like(small) if order == 0 else small / 2.0
    total = term
    for k in range(1, _BESSEL_SERIES_TERMS):
        term = term * quarter / (k * (k + order))
        total = total + term
    series = total * xp.exp(-small)
    large = xp.maximum(a, _BESSEL_SERIES_LIMIT)
    mu = 4.0 * order * order
    coefficient, asymptotic = 1.0, xp.ones_like(large)
    power = xp.ones_like(large)
    for k in range(1, _BESSEL_ASYMPTOTIC_TERMS):
        coefficient *= -(mu - (2 * k - 1) ** 2) / (k * 8.0)
        power = power / large
        asymptotic = asymptotic + coefficient * power
    asymptotic = asymptotic / xp.sqrt(2.0 * math.pi * large)
    value = xp.where(a <= _BESSEL_SERIES_LIMIT, series, asymptotic)
    value = xp.where(xp.isinf(a), 0.0, value)
    return value if order == 0 else xp.where(x < 0, -value, value)


def _gamma_prefix(xp, a, x):
    """x^a e^-x / Gamma(a), computed through logarithms."""
    safe_x = xp.where(x > 0, x, 1.0)
    return xp.exp(a * xp.log(safe_x) - x - _special.lgamma(xp, a))


def _lower_series(xp, a, x):
    """P(a, x) = x^a e^-x / Gamma(a + 1) * sum x^n / ((a+1)...(a+n))."""
    term = xp.ones_like(x)
    total = term
    for n in range(1, _GAMMA_TERMS):
        term = term * x / (a + n)
        total = total + term
    return _gamma_prefix(xp, a, x) * total / a


def _upper_fraction(xp, a, x):
    """Q(a, x) by Legendre's continued fraction (modified Lentz)."""
    b = x + 1.0 - a
    c = xp.full_like(x, 1.0 / _TINY)
    d = 1.0 / xp.where(xp.abs(b) < _TINY, _TINY, b)
    h = d
    for i in range(1, _GAMMA_TERMS):
        an = -i * (i - a)
        b = b + 2.0
        d = an * d + b
        d = 1.0 / xp.where(xp.abs(d) < _TINY, _TINY, d)
        c = b + an / c
        c = xp.where(xp.abs(c) < _TINY, _TINY, c)
        h = h * d * c
    return _gamma_prefix(xp, a, x) * h


def _regularized_gamma(xp, a, x, upper: bool):
    safe_a = xp.where(a > 0, a, 1.0)
    safe_x = xp.where((x > 0) & xp.isfinite(x), x, 1.0)
    use_series = safe_x < safe_a + 1.0
    series_x = xp.where(use_series, safe_x, 0.5 * safe_a)  # keep each branch in its good range
    fraction_x = xp.where(use_series, safe_a + 2.0, safe_x)
    series = _lower_series(xp, safe_a, series_x)
    fraction = _upper_fraction(xp, safe_a, fraction_x)
    if upper:  # each side computed directly where it is the small one
        value = xp.where(use_series, 1.0 - series, fraction)
    else:
        value = xp.where(use_series, series, 1.0 - fraction)
    value = xp.minimum(xp.maximum(value, 0.0), 1.0)
    at_zero, at_inf = (1.0, 0.0) if upper else (0.0, 1.0)
    value = xp.where(x == 0, at_zero, value)
    value = xp.where(xp.isinf(x) & (x > 0), at_inf, value)
    bad = (a <= 0) | (x < 0) | xp.isnan(a) | xp.isnan(x)
    return xp.where(bad, math.nan, value)


def _beta_fraction(xp, a, b, x):
    """The continued fraction of I_x(a, b) (without its prefix), modified Lentz."""
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c = xp.ones_like(x)
    d = 1.0 - qab * x / qap
    d = 1.0 / xp.where(xp.abs(d) < _TINY, _TINY, d)
    h = d
    for m in range(1, _BETA_TERMS):
        m2 = 2 * m
        for numerator in (m * (b - m) * x / ((qam + m2) * (a + m2)),
                          -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))):
            d = 1.0 + numerator * d
            d = 1.0 / xp.where(xp.abs(d) < _TINY, _TINY, d)
            c = 1.0 + numerator / c
            c = xp.where(xp.abs(c) < _TINY, _TINY, c)
            h = h * d * c
    return h


def _betainc(xp, a, b, x):
    safe_a = xp.where(a > 0, a, 1.0)
    safe_b = xp.where(b > 0, b, 1.0)
    safe_x = xp.where((x > 0) & (x < 1), x, 0.5)
    swap = safe_x > (safe_a + 1.0) / (safe_a + safe_b + 2.0)
    p, q = xp.where(swap, safe_b, safe_a), xp.where(swap, safe_a, safe_b)
    y = xp.where(swap, 1.0 - safe_x, safe_x)
    log_prefix = (_special.lgamma(xp, p + q) - _special.lgamma(xp, p) - _special.lgamma(xp, q)
                  + p * xp.log(y) + q * xp.log1p(-y))
    part = xp.exp(log_prefix) * _beta_fraction(xp, p, q, y) / p
    value = xp.where(swap, 1.0 - part, part)
    value = xp.where(x == 0, 0.0, xp.where(x == 1, 1.0, value))
    bad = (a <= 0) | (b <= 0) | (x < 0) | (x > 1) | xp.isnan(a) | xp.isnan(b) | xp.isnan(x)
    return xp.where(bad, math.nan, value)


def _rounded(xp, value, dtype):
    return [astype(xp, value, dtype)]


@op_kernel("BesselI0e")
def bessel_i0e(ctx, inputs, attrs):
    xp, dtype, (x,) = _float64_inputs(ctx, inputs)
    return _rounded(xp, _scaled_bessel_i(xp, x, 0), dtype)


@op_kernel("BesselI1e")
def bessel_i1e(ctx, inputs, attrs):
    xp, dtype, (x,) = _float64_inputs(ctx, inputs)
    return _rounded(xp, _scaled_bessel_i(xp, x, 1), dtype)


@op_kernel("Igamma")
def igamma(ctx, inputs, attrs):
    """P(a, x), the regularized lower incomplete gamma function."""
    xp, dtype, (a, x) = _float64_inputs(ctx, inputs)
    return _rounded(xp, _regularized_gamma(xp, a, x, upper=False), dtype)


@op_kernel("Igammac")
def igammac(ctx, inputs, attrs):
    """Q(a, x) = 1 - P(a, x)."""
    xp, dtype, (a, x) = _float64_inputs(ctx, inputs)
    return _rounded(xp, _regularized_gamma(xp, a, x, upper=True), dtype)


@op_kernel("Betainc")
def betainc(ctx, inputs, attrs):
    """I_x(a, b), the regularized incomplete beta function."""
    xp, dtype, (a, b, x) = _float64_inputs(ctx, inputs)
    return _rounded(xp, _betainc(xp, a, b, x), dtype)
