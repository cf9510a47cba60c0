"""float16 <-> float32 conversions of numpy arrays, exactly as ``astype`` gives them, faster.

numpy converts float16 one element at a time (no vector instructions for it on x86 without
AVX512-FP16): about 4 ns an element to float16 and 2 ns back. Large arrays go instead
through vectorised integer operations on the float32 bits (to float16: round to nearest
even, float16 subnormals, overflow to inf, NaN payloads as numpy keeps them) or a table of
the 65536 float16 values (to float32); small ones through ``astype``, whose fixed cost is
lower. Every result is bit for bit ``astype``'s (tests/unit/test_optimized_equals_reference.py).
"""
from __future__ import annotations

import numpy as np

HALF = np.dtype(np.float16)
NARROW_MIN = 8192  # elements from which the bit form beats astype (about 3x fewer instructions at 16K)
WIDEN_MIN = 2048

_U32 = np.uint32
_WIDE: list = []  # the float32 value of each float16 bit pattern, made on first use


def to_half(x: np.ndarray) -> np.ndarray:
    """``x.astype(float16)`` for a float32 array."""
    if x.size < NARROW_MIN or not x.ndim:
        return x.astype(HALF)
    bits = (x if x.flags.c_contiguous else np.ascontiguousarray(x)).view(_U32)
    magnitude = bits & _U32(0x7FFFFFFF)
    # normal float16 range: exponent rebased (127 - 15), 13 low bits rounded to nearest even
    # (the carry may step into the exponent, as it should); wraps below that range
    half = (magnitude >> _U32(13)) & _U32(1)
    half += magnitude
    half += _U32((0xFFF - 0x38000000) % 2**32)
    half >>= _U32(13)
    small = magnitude < _U32(0x38800000)  # below 2**-14: float16 subnormals (or zero)
    if small.any():
        scaled = np.fmin(np.abs(x), np.float32(2.0 ** -14))  # the others (NaN too) capped
        scaled *= np.float32(2.0 ** 24)  # exact: in units of the smallest subnormal
        np.rint(scaled, out=scaled)  # nearest, ties to even
        np.copyto(half, scaled.astype(_U32), where=small)
    large = magnitude >= _U32(0x477FF000)  # rounds to inf, or is inf or NaN
    if large.any():
        payload = (magnitude >> _U32(13)) - _U32(0x3FC00 - 0x7C00)  # NaN: 0x7C00 + mantissa >> 13
        payload[payload == _U32(0x7C00)] = _U32(0x7C01)  # kept a NaN when those bits are zero
        np.copyto(half, np.where(magnitude > _U32(0x7F800000), payload, _U32(0x7C00)), where=large)
    half |= (bits >> _U32(16)) & _U32(0x8000)
    return half.astype(np.uint16).view(HALF)


def to_float32(x: np.ndarray) -> np.ndarray:
    """``x.astype(float32)`` for a float16 array."""
    if x.size < WIDEN_MIN:
        return x.astype(np.float32)
    if not _WIDE:
        every = np.arange(65536, dtype=_U32).astype(np.uint16).view(HALF)
        table = every.astype(np.float32)
        table.flags.writeable = False
        _WIDE.append(table)
    return _WIDE[0].take(x.view(np.uint16), mode="clip")
