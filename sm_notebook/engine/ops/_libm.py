"""glibc's ``logf`` and ``sincosf``, reproduced bit for bit on any array API namespace.

TensorFlow's CPU Box-Muller (``BoxMullerFloat``) calls the C library's single-precision
``logf`` and ``sincosf``. On Linux (glibc 2.28 and later) these compute in double with a
small table and short polynomials, then round once to float; they are not correctly
rounded (up to 0.82 and 0.56 units in the last place), so a correctly rounded log or
sine differs from them on about one value in a hundred. The algorithms below follow the
same steps with the same constants (Arm's optimized-routines, published under the MIT
licence and used by glibc and musl); only the numbers are taken from there. Double
roundings inside the double-precision steps (with or without FMA) can change the float
result only when it lies within about 2**-50 of a rounding boundary.

Inputs are restricted to what Box-Muller feeds them: ``logf`` takes positive normal
floats below 1 given by their bit patterns, ``sincosf`` floats in [0, 2*pi).
"""
from __future__ import annotations

import numpy as np

from ._arrays import xp_dtype

_H = float.fromhex

#: ``logf``: 16 subintervals of [0x1.66p-1, 0x1.66p0), each with (1/c, log(c)).
_LOGF_TABLE = tuple((_H(inverse), _H(log)) for inverse, log in (
    ("0x1.661ec79f8f3bep+0", "-0x1.57bf7808caadep-2"), ("0x1.571ed4aaf883dp+0", "-0x1.2bef0a7c06ddbp-2"),
    ("0x1.49539f0f010bp+0", "-0x1.01eae7f513a67p-2"), ("0x1.3c995b0b80385p+0", "-0x1.b31d8a68224e9p-3"),
    ("0x1.30d190c8864a5p+0", "-0x1.6574f0ac07758p-3"), ("0x1.25e227b0b8eap+0", "-0x1.1aa2bc79c81p-3"),
    ("0x1.1bb4a4a1a343fp+0", "-0x1.a4e76ce8c0e5ep-4"), ("0x1.12358f08ae5bap+0", "-0x1.1973c5a611cccp-4"),
    ("0x1.0953f419900a7p+0", "-0x1.252f438e10c1ep-5"), ("0x1p+0", "0x0p+0"),
    ("0x1.e608cfd9a47acp-1", "0x1.aa5aa5df25984p-5"), ("0x1.ca4b31f026aap-1", "0x1.c5e53aa362eb4p-4"),
    ("0x1.b2036576afce6p-1", "0x1.526e57720db08p-3"), ("0x1.9c2d163a1aa2dp-1", "0x1.bc2860d22477p-3"),
    ("0x1.886e6037841edp-1", "0x1.1058bc8a07ee1p-2"), ("0x1.767dcf5534862p-1", "0x1.4043057b6ee09p-2")))
_LN2 = _H("0x1.62e42fefa39efp-1")
_LOGF_POLY = tuple(_H(v) for v in ("-0x1.00ea348b88334p-2", "0x1.5575b0be00b6ap-2",
                                    "-0x1.ffffef20a4123p-2"))
_LOGF_OFFSET = 0x3F330000  # the bits of 0x1.66p-1, where the subintervals start

#: ``sincosf``: 2/pi scaled by 2**24, pi/2, and the cosine and sine polynomials.
_HALF_PI_INVERSE_2_24 = _H("0x1.45F306DC9C883p+23")
_HALF_PI = _H("0x1.921FB54442D18p0")
_COS_POLY = tuple(_H(v) for v in ("0x1p0", "-0x1.ffffffd0c621cp-2", "0x1.55553e1068f19p-5",
                                   "-0x1.6c087e89a359dp-10", "0x1.99343027bf8c3p-16"))
_SIN_POLY = tuple(_H(v) for v in ("-0x1.555545995a603p-3", "0x1.1107605230bc4p-7",
                                   "-0x1.994eb3774cf24p-13"))
_NO_REDUCTION_BELOW = 0.75  # |y| whose top 12 bits are below those of pi/4 as a float


def logf_from_bits(xp, bits):
    """``logf(x)`` as float32, ``x`` given by its float32 bit pattern (an int64 array of
    positive normal floats)."""
    f64 = xp_dtype(xp, np.float64)
    shifted = bits - _LOGF_OFFSET
    index = (shifted >> 19) & 15
    exponent = shifted >> 23  # arithmetic shift: x = 2**exponent * z, z in [0x1.66p-1, 0x1.66p0)
    # z's bits are bits - (shifted & 0xff800000): x scaled by 2**-exponent, exact in double
    scale = xp.take(xp.asarray([2.0 ** -e for e in range(-32, 33)], dtype=f64), exponent + 32)
    z = _float_from_bits(xp, bits) * scale
    inverse_c = xp.take(xp.asarray([row[0] for row in _LOGF_TABLE], dtype=f64), index)
    log_c = xp.take(xp.asarray([row[1] for row in _LOGF_TABLE], dtype=f64), index)
    r = z * inverse_c - 1.0
    y0 = log_c + xp.astype(exponent, f64) * _LN2
    r2 = r * r
    a0, a1, a2 = _LOGF_POLY
    y = a1 * r + a2
    y = a0 * r2 + y
    y = y * r2 + (y0 + r)
    return xp.astype(y, xp_dtype(xp, np.float32))


def _float_from_bits(xp, bits):
    """The float64 value of positive normal float32 bit patterns (int64), arithmetically."""
    f64 = xp_dtype(xp, np.float64)
    mantissa = xp.astype(bits & 0x7FFFFF, f64) * 2.0 ** -23 + 1.0
    exponent = (bits >> 23) - 127
    scale = xp.take(xp.asarray([2.0 ** e for e in range(-126, 128)], dtype=f64), exponent + 126)
    return mantissa * scale


def sincosf(xp, y):
    """``(sinf(y), cosf(y))`` as float32 for float32 ``y`` in [0, 2*pi)."""
    f32, f64, i64 = (xp_dtype(xp, d) for d in (np.float32, np.float64, np.int64))
    x = xp.astype(y, f64)
    scaled = xp.astype(xp.floor(x * _HALF_PI_INVERSE_2_24), i64)  # (int32) truncation, x >= 0
    quadrant = (scaled + 0x800000) >> 24
    quadrant = xp.where(y < _NO_REDUCTION_BELOW, xp.zeros_like(quadrant), quadrant)
    reduced = x - xp.astype(quadrant, f64) * _HALF_PI
    # sign[n & 3] = (1, -1, -1, 1) multiplies the sine argument; table 1 (n & 2) negates cos
    sine_sign = 1.0 - 2.0 * xp.astype(((quadrant + 1) >> 1) & 1, f64)
    cos_sign = 1.0 - 2.0 * xp.astype((quadrant >> 1) & 1, f64)
    xs = reduced * sine_sign
    x2 = reduced * reduced
    x3 = x2 * xs
    x4 = x2 * x2
    c0, c1, c2, c3, c4 = (cos_sign * c for c in _COS_POLY)
    s1, s2, s3 = _SIN_POLY
    cos_tail = c3 + x2 * c4
    sin_tail = s2 + x2 * s3
    cos_head = c0 + x2 * c1
    sine = (xs + x3 * s1) + (x3 * x2) * sin_tail
    cosine = (cos_head + x4 * c2) + (x4 * x2) * cos_tail
    odd = (quadrant & 1) != 0
    return (xp.astype(xp.where(odd, cosine, sine), f32),
            xp.astype(xp.where(odd, sine, cosine), f32))
