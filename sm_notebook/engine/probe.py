"""One kernel run on numpy arrays outside any model: the builder's shape probes.

This is the engine's only entry point for ``sm_notebook.builder`` (which must not
reach into plans, contexts or the kernel registry itself).
"""
from __future__ import annotations

from .. import opdefs


def can_probe(op: str) -> bool:
    """Whether ``op`` has a kernel that is safe to run on made-up inputs (no state, no IO)."""
    from . import ops  # noqa: F401  (registers every kernel)
    from .ops.registry import KERNELS
    info = opdefs.get(op)
    return op in KERNELS and info is not None and not info.flags & {"io", "stateful"}


def run_op_once(op: str, inputs: list, attr_map) -> list | None:
    """The outputs of ``op`` on numpy ``inputs`` with the node attrs ``attr_map`` (AttrValue
    protos, defaults filled in from the op table); None when it cannot run or fails."""
    if not can_probe(op):
        return None
    from .attrs import decode_node_attrs
    from .context import KernelContext
    from .ops.registry import KERNELS
    try:
        return list(KERNELS[op].fn(KernelContext("numpy"), inputs, decode_node_attrs(attr_map, op)))
    except Exception:  # noqa: BLE001 - any kernel failure means "cannot tell"
        return None
