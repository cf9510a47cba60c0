"""Inverse error function and the standard normal quantile (Erfinv, Ndtri), in float64 array
code, rounded to the input's dtype (half floats through float64 too).

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
from ._numeric import astype, namespace, np_dtype, op_kernel

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
