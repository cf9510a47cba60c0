"""Special functions the array API lacks (erf, erfc, lgamma, digamma), in float64 array code.

Each takes and returns float64 arrays of any array API namespace ``xp``; the
kernels round the result to the input's dtype. Accuracy is about 1e-13 relative
(erf, erfc, digamma) and 1e-14 absolute near the zeros of lgamma.
"""
from __future__ import annotations

import math

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


def _erfc_large(xp, a):
    """erfc(a) for a >= 2 by the continued fraction 1/(a + (1/2)/(a + 1/(a + (3/2)/(a + ...))))."""
    a = xp.maximum(a, _SERIES_LIMIT)  # the other branch's lanes: keep the fraction finite
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
