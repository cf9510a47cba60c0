"""Which TensorFlow ops sm_notebook's engine can run, and which it refuses (IO)."""
from __future__ import annotations

__all__ = ["supported_ops", "is_supported", "denied_ops"]

_INTERNAL_PREFIX = "_Smnb"


def _kernels():
    from .engine import ops  # noqa: F401  (registers every kernel)
    from .engine.ops.registry import KERNELS
    return KERNELS


def supported_ops() -> list:
    """Sorted names of the ops the engine has kernels for (IO ops excluded)."""
    return sorted(op for op, k in _kernels().items()
                  if not op.startswith(_INTERNAL_PREFIX) and not k.io)


def is_supported(op: str) -> bool:
    """Whether the engine can run ``op`` without allow_io=True."""
    from .engine.ops.registry import IO_OPS
    kern = _kernels().get(op)
    return kern is not None and not kern.io and op not in IO_OPS and not op.startswith(_INTERNAL_PREFIX)


def denied_ops() -> list:
    """Sorted names of the ops refused unless a model is loaded with allow_io=True."""
    from .engine.ops.registry import IO_OPS
    return sorted(set(IO_OPS) | {op for op, k in _kernels().items() if k.io})
