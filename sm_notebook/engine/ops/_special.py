"""Special functions the array API lacks (erf, erfc, lgamma, digamma), in float64 array code.

Each takes and returns float64 arrays of any array API namespace ``xp``; the
kernels round the result to the input's dtype. Accuracy is about 1e-13 relative
(erf, erfc, digamma) and 1e-14 absolute near the zeros of lgamma.

``erf_float32`` and ``erfc_float32`` are numpy-only float32 versions, accurate to
about 3e-7 relative, for the float32 kernels (GELU's Erfc) where the float64
series would dominate a model's time.
"""
from __future__ import annotations

import math

import numpy as np

_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)
_SERIES_LIMIT = 2.0     # |x| below: power series of erf; above: continued fraction of erfc
_SERIES_TERMS = 40
_FRACTION_TERMS = 50


def _exp_minus_square(xp, a):
    """exp(-a*a) without the rounding error of a*a (a split into an exact high part)."""
    high = xp.round(a * 16.0) / 16.0
    low = a - high
    return xp.exp(-(high * high)) * xp.exp(-(2.0 * high * low + low * low))


def _erf_small(xp, a):
    """erf(a) for 0 <= a < 2: exp(-a^2) * sum 2^n a^(2n+1) / (1*3*...*(2n+1)), all terms positive."""
    two_a2 = 2.0 * a * a
    term = a
    total = a
    for n in range(1, _SERIES_TERMS):
        term = term * two_a2 / (2.0 * n + 1.0)
        total = total + term
    return _TWO_OVER_SQRT_PI * _exp_minus_square(xp, a) * total


_ERFC_ZERO_FROM = 30.0  # erfc(30) ~ 2e-393 rounds to 0 in float64: +inf gives 0, not inf - inf


def _erfc_large(xp, a):
    """erfc(a) for a >= 2 by the continued fraction 1/(a + (1/2)/(a + 1/(a + (3/2)/(a + ...))))."""
    # the other branch's lanes: keep the fraction finite; NaN stays NaN
    a = xp.minimum(xp.maximum(a, _SERIES_LIMIT), _ERFC_ZERO_FROM)
    denominator = a
    for k in range(_FRACTION_TERMS, 0, -1):
        denominator = a + (k / 2.0) / denominator
    return _exp_minus_square(xp, a) / (math.sqrt(math.pi) * denominator)


def erf(xp, x):
    a = xp.abs(x)
    small = a < _SERIES_LIMIT
    magnitude = xp.where(small, _erf_small(xp, xp.where(small, a, 0.0)), 1.0 - _erfc_large(xp, a))
    return xp.where(x < 0, -magnitude, magnitude)


def erfc(xp, x):
    a = xp.abs(x)
    small = a < _SERIES_LIMIT
    upper = xp.where(small, 1.0 - _erf_small(xp, xp.where(small, a, 0.0)), _erfc_large(xp, a))
    return xp.where(x < 0, 2.0 - upper, upper)


# Lanczos approximation, g = 7, nine coefficients (relative error about 1e-15).
_LANCZOS_G = 7.0
_LANCZOS = (0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313,
            -176.61502916214059, 12.507343278686905, -0.13857109526572012,
            9.9843695780195716e-6, 1.5056327351493116e-7)
_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


def _lgamma_right(xp, x):
    """log|Gamma(x)| for x >= 0.5."""
    z = x - 1.0
    series = _LANCZOS[0]
    for i, c in enumerate(_LANCZOS[1:], start=1):
        series = series + c / (z + float(i))
    t = z + _LANCZOS_G + 0.5
    return _HALF_LOG_2PI + (z + 0.5) * xp.log(t) - t + xp.log(series)


def _sin_pi(xp, x):
    """sin(pi*x), exact near the integers: x reduced to [-0.5, 0.5] by exact steps first."""
    reduced = x - 2.0 * xp.round(x / 2.0)                      # in [-1, 1]
    reduced = xp.where(reduced > 0.5, 1.0 - reduced, reduced)   # sin(pi r) = sin(pi (1 - r))
    reduced = xp.where(reduced < -0.5, -1.0 - reduced, reduced)
    return xp.sin(math.pi * reduced)


def lgamma(xp, x):
    """log|Gamma(x)|; +inf at the poles 0, -1, -2, ...; reflection formula for x < 0.5."""
    right = x >= 0.5
    safe_right = xp.where(right, x, 1.0)
    safe_left = xp.where(right, 0.0, x)
    left = (math.log(math.pi) - xp.log(xp.abs(_sin_pi(xp, safe_left)))
            - _lgamma_right(xp, 1.0 - safe_left))
    pole = (x <= 0) & (xp.floor(x) == x)
    result = xp.where(right, _lgamma_right(xp, safe_right), left)
    result = xp.where((x == 1.0) | (x == 2.0), 0.0, result)  # exact zeros (Lanczos: -8.9e-16)
    result = xp.where(pole, math.inf, result)
    return xp.where(xp.isinf(x), math.inf, result)


_DIGAMMA_SHIFT_TO = 10.0
# Bernoulli terms B_2k / (2k) of the asymptotic series psi(x) ~ log x - 1/(2x) - sum B_2k/(2k x^2k).
_DIGAMMA_ASYMPTOTIC = (1 / 12, -1 / 120, 1 / 252, -1 / 240, 1 / 132, -691 / 32760, 1 / 12)


def _digamma_positive(xp, x):
    shift = xp.zeros_like(x)
    y = x
    for _ in range(int(_DIGAMMA_SHIFT_TO)):
        below = y < _DIGAMMA_SHIFT_TO
        shift = shift - xp.where(below, 1.0 / y, 0.0)
        y = xp.where(below, y + 1.0, y)
    inv2 = 1.0 / (y * y)
    tail = 0.0
    for coefficient in reversed(_DIGAMMA_ASYMPTOTIC):
        tail = (tail + coefficient) * inv2
    return shift + xp.log(y) - 0.5 / y - tail


def digamma(xp, x):
    """psi(x); nan at the poles 0, -1, -2, ... (as TensorFlow); reflection for x <= 0."""
    positive = x > 0
    safe_positive = xp.where(positive, x, 1.0)
    safe_negative = xp.where(positive, 0.5, x)
    reflected = (_digamma_positive(xp, 1.0 - safe_negative)
                 - math.pi / xp.tan(math.pi * (safe_negative - xp.round(safe_negative))))
    result = xp.where(positive, _digamma_positive(xp, safe_positive), reflected)
    pole = (x <= 0) & (xp.floor(x) == x)
    return xp.where(pole, math.nan, result)


# --------------------------------------------------------------------------- float32 (numpy)

# erfc(x) = t * exp(-x*x + G(t)) for x >= 0, t = 2 / (2 + x): G is smooth on x in
# [0, _ERFC_XMAX] (beyond it erfc underflows float32) and is a degree-11 polynomial in
# u = t mapped onto [-1, 1], fitted here (Chebyshev least squares against math.erfc,
# turned into power-basis coefficients, lowest first).
_ERFC_XMAX = 10.125
_ERFC_TMIN = 2.0 / (2.0 + _ERFC_XMAX)
_ERFC_G = (-0.5597711776341346, 0.5714176068043796, 0.01599309532301217, -0.029645205275507742,
           -0.0010928510026699616, 0.0037551008786386986, -0.00027126684203645823,
           -0.0005576896145944867, 0.00013059588883119572, 6.989948521452889e-05,
           -2.3157090559936315e-05, -4.953298161643004e-06)
# erf(x) = x * sum c_n x^(2n) with c_n = 2/sqrt(pi) (-1)^n / (n! (2n + 1)), for |x| < 1/2.
_ERF_SERIES = tuple(_TWO_OVER_SQRT_PI * (-1) ** n / (math.factorial(n) * (2 * n + 1))
                    for n in range(8))
_ERF_SERIES_LIMIT = 0.5


def _erfc_positive_float32(a):
    """erfc(a) for float32 a >= 0 (NaN stays NaN): float32 polynomial, float64 exponent."""
    t = np.float32(2.0) / (np.float32(2.0) + np.minimum(a, np.float32(_ERFC_XMAX)))
    u = t * np.float32(2.0 / (1.0 - _ERFC_TMIN)) - np.float32((1.0 + _ERFC_TMIN) / (1.0 - _ERFC_TMIN))
    g = np.full_like(u, _ERFC_G[-1])
    for coefficient in _ERFC_G[-2::-1]:
        g *= u
        g += np.float32(coefficient)
    wide = a.astype(np.float64)
    exponent = g.astype(np.float64)
    exponent -= wide * wide
    return (t * np.exp(exponent)).astype(np.float32)


def _erf_small_float32(x):
    """erf(x) for float32 |x| < 1/2, by its Taylor series (accurate near 0)."""
    square = x * x
    total = np.full_like(x, _ERF_SERIES[-1])
    for coefficient in _ERF_SERIES[-2::-1]:
        total *= square
        total += np.float32(coefficient)
    return x * total


def erfc_float32(x):
    """erfc of a float32 numpy array."""
    upper = _erfc_positive_float32(np.abs(x))
    return np.where(x < 0, np.float32(2.0) - upper, upper)


def erf_float32(x):
    """erf of a float32 numpy array."""
    a = np.abs(x)
    small = a < _ERF_SERIES_LIMIT
    if small.all():
        return _erf_small_float32(x)
    magnitude = np.float32(1.0) - _erfc_positive_float32(a)
    result = np.where(x < 0, -magnitude, magnitude)
    if small.any():
        result = np.where(small, _erf_small_float32(x), result)
    return result
