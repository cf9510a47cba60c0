"""numpy's floating-point warnings off for a plan run, cheaply: `np.errstate` costs about a
microsecond per call (a twentieth of a small model's call); on numpy 2 the same context
variable is set directly, with the error state derived from the caller's once per distinct
caller state. Thread- and context-safe as `np.errstate` is (a context variable)."""
from __future__ import annotations

import numpy as np

try:  # numpy 2: errstate sets this context variable to an object _make_extobj builds
    from numpy._core._ufunc_config import _extobj_contextvar, _make_extobj
except ImportError:  # pragma: no cover - numpy 1.x
    _extobj_contextvar = _make_extobj = None

_derived = (None, None)  # (caller's state, the same with every warning ignored)


def quiet():
    """Turn numpy's floating-point warnings off; pass the result to `restore`."""
    if _extobj_contextvar is None:  # pragma: no cover - numpy 1.x
        state = np.errstate(all="ignore")
        state.__enter__()
        return state
    global _derived
    caller = _extobj_contextvar.get()
    seen, ignoring = _derived
    if seen is not caller:
        ignoring = _make_extobj(all="ignore")  # keeps the caller's buffer size and callback
        _derived = (caller, ignoring)
    return _extobj_contextvar.set(ignoring)


def restore(token) -> None:
    """Give back the warnings state `quiet` replaced."""
    if _extobj_contextvar is None:  # pragma: no cover - numpy 1.x
        token.__exit__(None, None, None)
    else:
        _extobj_contextvar.reset(token)
