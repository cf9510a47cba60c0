"""Array namespaces the engine runs on: numpy (fast path), cupy (lazily), any array API namespace."""
from __future__ import annotations

import numpy as np

from ..errors import SavedModelError


def numpy_namespace():
    """numpy's array API namespace: numpy itself from 2.1 (its main namespace implements
    the standard), else array-api-compat's wrapper (imported only then: it costs ~100 ms)."""
    global _NUMPY_XP
    if _NUMPY_XP is None:
        if tuple(int(part) for part in np.__version__.split(".")[:2]) >= (2, 1):
            _NUMPY_XP = np
        else:
            import array_api_compat.numpy as compat
            _NUMPY_XP = compat
    return _NUMPY_XP


_NUMPY_XP = None


def is_numpy_namespace(xp) -> bool:
    """Whether ``xp`` is numpy, or array-api-compat's wrapper of it."""
    return xp is np or getattr(xp, "__name__", "") == "array_api_compat.numpy"


class Backend:
    """One array namespace plus the conversions kernels need.

    ``xp`` is the array API namespace (numpy's own main namespace for numpy); host-only dtypes
    (strings, and float16/bfloat16/... where the namespace lacks them) stay numpy.
    """

    def __init__(self, name: str, xp):
        self.name = name
        self.xp = xp
        self.is_numpy = name == "numpy"

    def __repr__(self):
        return f"Backend({self.name!r})"

    def supports(self, dtype) -> bool:
        """Whether arrays of this numpy dtype can live on this backend."""
        dtype = np.dtype(dtype)
        if self.is_numpy:
            return True
        if dtype.kind in "OSUV" or dtype.name in ("bfloat16",) or dtype.name.startswith(("float8", "int4", "uint4", "float4", "int2", "uint2")):
            return False
        return getattr(self.xp, dtype.name, None) is not None

    def dtype(self, dtype):
        """The namespace's dtype object for a numpy dtype."""
        if self.is_numpy:
            return np.dtype(dtype)
        return getattr(self.xp, np.dtype(dtype).name)

    def asarray(self, value, dtype=None):
        """Move a host value to this backend, unless its dtype is host-only."""
        host = np.asarray(value, dtype=dtype)
        if self.is_numpy or not self.supports(host.dtype):
            return host
        return self.xp.asarray(host)

    def to_numpy(self, array) -> np.ndarray:
        """Bring an array of this backend (or numpy) back to the host."""
        if isinstance(array, np.ndarray) or np.isscalar(array):
            return np.asarray(array)
        if self.name == "cupy":
            return array.get()
        try:
            return np.asarray(array)
        except Exception:  # array_api_strict refuses __array__ on some versions
            return np.asarray(array.tolist()) if array.ndim else np.asarray(array.__float__())


def get_backend(backend) -> Backend:
    """Resolve ``"numpy"``, ``"cupy"`` or an array API namespace to a Backend."""
    if isinstance(backend, Backend):
        return backend
    if backend is None or backend == "numpy":
        return Backend("numpy", numpy_namespace())
    if backend == "cupy":
        try:
            import cupy  # noqa: F401  (imported lazily: never at import sm_notebook)
        except ImportError as exc:
            raise SavedModelError(
                f"backend='cupy' was asked for, but cupy cannot be imported ({exc}). "
                "Install the GPU extra (pip install 'sm_notebook[cupy]') on a machine with CUDA, "
                "or use backend='numpy'.") from None
        import array_api_compat.cupy as xp
        return Backend("cupy", xp)
    if isinstance(backend, str):
        if backend == "array_api_strict":
            import array_api_strict
            return Backend("array_api_strict", array_api_strict)
        raise SavedModelError(
            f"Unknown backend {backend!r}; use 'numpy', 'cupy', or pass an array API namespace module.")
    name = getattr(backend, "__name__", type(backend).__name__)
    if name in ("numpy", "array_api_compat.numpy"):
        return get_backend("numpy")
    import array_api_compat

    return Backend(name, array_api_compat.array_namespace(backend.asarray(0)))
