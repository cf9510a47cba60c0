"""Helpers shared by the math, nn and image kernels (array API code, numpy fast paths)."""
from __future__ import annotations

import functools

import numpy as np

from ...errors import SavedModelError
from ..backend import is_numpy_namespace, numpy_namespace
from ..half import HALF  # noqa: F401  (used by the op modules)
from .registry import kernel, prepared_kernel

_DTYPE_NAMES = ("bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
                "float16", "float32", "float64", "complex64", "complex128")
_NP_DTYPE_CACHE: dict = {}


def np_dtype(dtype) -> np.dtype:
    """The numpy dtype of a dtype object of any backend."""
    if isinstance(dtype, np.dtype):
        return dtype
    cached = _NP_DTYPE_CACHE.get(id(dtype))
    if cached is not None and cached[0] is dtype:
        return cached[1]
    try:
        result = np.dtype(dtype)
    except TypeError:
        text = str(dtype).rsplit(".", 1)[-1]
        if text not in _DTYPE_NAMES:
            raise
        result = np.dtype(text)
    _NP_DTYPE_CACHE[id(dtype)] = (dtype, result)
    return result


def kind(x) -> str:
    """'b', 'i', 'u', 'f' or 'c' for an array of any backend (bfloat16 and float8 count as 'f')."""
    dt = np_dtype(x.dtype)
    return "f" if dt.kind == "V" else dt.kind


#: float16 arrays at least this large get elementwise sums, differences and products in
#: float32, rounded once (the correctly rounded float16 results, as numpy's half loops give
#: them: 24 >= 2 * 11 + 2 bits make the double rounding harmless); numpy's half loops
#: convert each element (~13 ns), three vectorised conversions cost less from here on
HALF_WIDE_MIN = 512


def is_half(x) -> bool:
    """float16, bfloat16 and narrower floats: computed in float32, as TensorFlow's CPU kernels do."""
    dt = np_dtype(x.dtype)
    return dt.kind in "fV" and dt.itemsize < 4


def namespace(ctx, *arrays):
    """``(xp, arrays)``: ctx.xp, or numpy (all arrays moved to the host) when one stayed there."""
    if ctx.is_numpy or not any(isinstance(a, (np.ndarray, np.generic)) for a in arrays):
        return ctx.xp, list(arrays)
    return numpy_namespace(), [np.asarray(ctx.to_numpy(a)) for a in arrays]


is_numpy = is_numpy_namespace


def dtype_of(xp, dtype):
    """The namespace's dtype for a numpy dtype (numpy namespaces take any numpy dtype)."""
    dtype = np_dtype(dtype)
    if is_numpy(xp):
        return dtype
    return getattr(xp, dtype.name)


def scalar(xp, value, like):
    """A 0-d array of ``like``'s dtype (array API code never mixes Python floats into int arrays)."""
    return xp.asarray(value, dtype=like.dtype)


def astype(xp, x, dtype):
    if type(x) is np.ndarray and x.dtype is dtype:  # numpy, already of that dtype
        return x
    dtype = np_dtype(dtype)
    if is_numpy(xp):
        return np.asarray(x).astype(dtype, copy=False)
    return xp.astype(x, dtype_of(xp, dtype))


def wide(xp, x):
    """x in the precision TensorFlow computes it in: half floats in float32."""
    return astype(xp, x, np.float32) if is_half(x) else x


def to_backend(ctx, x):
    """Move a numpy result onto the backend, when the backend holds its dtype."""
    if ctx.is_numpy or not isinstance(x, (np.ndarray, np.generic)):
        return x
    return ctx.asarray(x)  # stays numpy for dtypes the backend lacks


def finish(x):
    """Numpy reductions return scalars for 0-d results; kernels return arrays."""
    if isinstance(x, np.generic):
        return np.asarray(x)
    return x


def op_kernel_wrapper(fn):
    """``fn`` with numpy scalars made 0-d arrays and results moved to the backend (plans
    run with numpy's floating-point warnings off: TensorFlow gives inf/nan quietly)."""
    @functools.wraps(fn)
    def run(ctx, inputs, attrs):
        return finish_outputs(ctx, fn(ctx, inputs, attrs))
    return run


def finish_outputs(ctx, outputs):
    """Numpy scalars made 0-d arrays, results moved to the backend."""
    if ctx.is_numpy:
        for o in outputs:
            if type(o) is not np.ndarray:
                return [finish(o) for o in outputs]
        return outputs
    return [to_backend(ctx, finish(o)) for o in outputs]


def prepared_op_kernel(*ops):
    """`registry.prepared_kernel` of ``prepare(node, ctx) -> run(inputs)``, its outputs
    finished as `op_kernel_wrapper` does (unless ``run.finished`` says they are: a numpy
    fast path saves the wrapper's two calls per step)."""
    def register(prepare):
        def finished(node, ctx):
            run = prepare(node, ctx)
            if getattr(run, "finished", False):  # its outputs are finished already
                return run
            return lambda inputs: finish_outputs(ctx, run(inputs))
        finished.__wrapped__ = prepare
        prepared_kernel(*ops)(finished)
        return prepare
    return register


def op_kernel(*ops):
    """`registry.kernel` of ``op_kernel_wrapper(fn)``."""
    def register(fn):
        kernel(*ops)(op_kernel_wrapper(fn))
        return fn
    return register


def host_ints(ctx, x) -> list[int]:
    """A small int tensor (axes, sizes, ksize) as a Python list."""
    return [int(v) for v in np.asarray(ctx.to_numpy(x)).reshape(-1)]


def float_attr(attrs, name, default) -> float:
    """A float attr as TensorFlow holds it: rounded to float32 (0.2 is 0.20000000298...)."""
    return float(np.float32(attrs.get(name, default)))


def fail(op, message):
    raise SavedModelError(f"{op}: {message}")


def lowest(x):
    """The smallest value of x's dtype (-inf for floats): the padding of max pooling."""
    dt = np_dtype(x.dtype)
    if dt.kind in "fV":
        return float("-inf")
    if dt.kind == "b":
        return False
    return int(np.iinfo(dt).min)


def highest(x):
    dt = np_dtype(x.dtype)
    if dt.kind in "fV":
        return float("inf")
    if dt.kind == "b":
        return True
    return int(np.iinfo(dt).max)


def pad(xp, x, pads, value=0):
    """Pad each axis of x by ``pads[axis] = (before, after)`` with ``value``."""
    if not any(b or a for b, a in pads):
        return x
    if is_numpy(xp):
        return np.pad(x, pads, constant_values=np.asarray(value).astype(x.dtype))
    for axis, (before, after) in enumerate(pads):
        if before or after:
            parts = []
            if before:
                shape = list(x.shape)
                shape[axis] = before
                parts.append(xp.full(tuple(shape), value, dtype=x.dtype))
            parts.append(x)
            if after:
                shape = list(x.shape)
                shape[axis] = after
                parts.append(xp.full(tuple(shape), value, dtype=x.dtype))
            x = xp.concat(parts, axis=axis)
    return x
