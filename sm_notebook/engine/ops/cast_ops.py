"""Cast and Bitcast kernels, following TensorFlow's CPU conversion rules.

Float to 8/16-bit integers converts to int32 first and wraps (as TensorFlow
on x86 does); complex to real or bool keeps the real part; float64 and
integers reach float16/bfloat16 through float32 (TensorFlow's double
rounding); ``Truncate`` cuts float32 mantissa bits for bfloat16.
"""
from __future__ import annotations

import numpy as np

from ...errors import SavedModelError
from ..half import HALF, to_float32, to_half
from ._arrays import is_numpy_namespace, np_dtype, xp_dtype, xp_of
from .registry import kernel

_SMALL_INTS = frozenset(np.dtype(t) for t in (np.int8, np.int16, np.uint8, np.uint16))
_HALFS = ("float16", "bfloat16")
_NAMES: dict = {}


def _name(dtype: np.dtype) -> str:
    """``dtype.name``, remembered (numpy computes it in Python, several microseconds a call)."""
    name = _NAMES.get(dtype)
    if name is None:
        name = _NAMES[dtype] = dtype.name
    return name


def _check_castable(src: np.dtype, dst: np.dtype, op: str):
    if any(d.kind in "OSU" or d.type is np.void for d in (src, dst)):
        raise SavedModelError(f"{op}: casting between {src.name} and {dst.name} is not supported "
                              "(use AsString / StringToNumber for strings).")


def _cast_host(x: np.ndarray, dst: np.dtype, truncate: bool) -> np.ndarray:
    """``x.astype(dst)`` with TensorFlow's rules; out-of-range values wrap or become inf
    quietly (kernels run with numpy's floating-point warnings off, see registry)."""
    src = x.dtype
    if src == np.float32 and dst == HALF:
        return to_half(x)
    if src == HALF and dst == np.float32:
        return to_float32(x)
    if src.kind == "c" and dst.kind != "c":
        x, src = x.real, x.real.dtype
    if _name(dst) in _HALFS and src != np.float32 and src.kind != "b":
        x, src = x.astype(np.float32), np.dtype(np.float32)
    if truncate and _name(dst) == "bfloat16" and src == np.float32:
        bits = np.ascontiguousarray(x).view(np.uint32) & np.uint32(0xFFFF0000)
        return bits.view(np.float32).astype(dst)
    if src.kind == "f" or _name(src) == "bfloat16":
        if dst in _SMALL_INTS:
            return x.astype(np.int32).astype(dst)
        if dst.kind == "u":
            return x.astype(np.int64).astype(dst) if dst.itemsize < 8 else _float_to_uint64(x)
    return x.astype(dst)


def _float_to_uint64(x):
    big = x >= 2.0 ** 63
    low = np.where(big, 0, x).astype(np.int64).astype(np.uint64)
    high = (np.where(big, x - 2.0 ** 63, 0).astype(np.int64).astype(np.uint64)
            + np.uint64(2 ** 63))
    return np.where(big, high, low)


def cast(ctx, x, dst, truncate=False, op="Cast"):
    """``x`` converted to numpy dtype ``dst`` with TensorFlow's rules."""
    dst = np.dtype(dst)
    src = np_dtype(x)
    _check_castable(src, dst, op)
    if src == dst:
        return x
    xp = xp_of(ctx, x)
    on_device = (not is_numpy_namespace(xp) and ctx.backend.supports(dst) and not truncate
                 and _name(dst) not in _HALFS)
    from_float = src.kind in "fc"
    if on_device and not (from_float and dst.kind == "u"):
        if src.kind == "c" and dst.kind != "c":
            x = xp.real(x)
        with np.errstate(invalid="ignore", over="ignore"):
            if from_float and dst in _SMALL_INTS:
                x = xp.astype(x, xp_dtype(xp, np.int32))
            return xp.astype(x, xp_dtype(xp, dst))
    return ctx.asarray(_cast_host(ctx.to_numpy(x), dst, truncate))


@kernel("Cast")
def cast_kernel(ctx, inputs, attrs):
    return [cast(ctx, inputs[0], attrs["DstT"], bool(attrs.get("Truncate", False)))]


_BITCAST_KINDS = "iufc"


@kernel("Bitcast")
def bitcast(ctx, inputs, attrs):
    x = inputs[0]
    src, dst = np_dtype(x), np.dtype(attrs["type"])
    for dtype in (src, dst):
        if dtype.kind not in _BITCAST_KINDS and dtype.name != "bfloat16":
            raise SavedModelError(f"Bitcast: dtype {dtype.name} is not supported (numeric types "
                                  "only).")
    shape = tuple(x.shape)
    if src.itemsize > dst.itemsize:
        shape = shape + (src.itemsize // dst.itemsize,)
    elif src.itemsize < dst.itemsize:
        ratio = dst.itemsize // src.itemsize
        if not shape or shape[-1] != ratio:
            raise SavedModelError(f"Bitcast: cannot bitcast {src.name} of shape {tuple(x.shape)} "
                                  f"to {dst.name}: the last dimension must be {ratio}.")
        shape = shape[:-1]
    host = np.ascontiguousarray(ctx.to_numpy(x)).view(dst).reshape(shape)
    return [ctx.asarray(host)]
