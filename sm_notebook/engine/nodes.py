"""Bound nodes of a plan being compiled, and their dependency order (used by plan.py,
fusion.py and frames.py)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import SavedModelError
from .ops.registry import OpKernel


@dataclass(slots=True)
class PlanNode:
    """A node with its kernel bound and its inputs as ``(node, flat index)``."""
    name: str
    op: str
    inputs: list
    controls: list
    attrs: dict
    kernel: OpKernel | None
    n_out: int
    function: str | None = None
    run: object = None         # the prepared ``run(inputs)``; None until `prepare`
    value: list | None = None  # outputs, when known at plan time
    fused: tuple = ()          # ops of the epilogue nodes folded into this step (fusion.py)
    flags: frozenset = frozenset()  # op table flags (opdefs)

    def prepare(self, ctx):
        """The prepared kernel, made once (`run`); host kernels move data for non-numpy."""
        if self.run is None:
            run = self.kernel.prepare(self, ctx)
            if "host" in self.flags and not ctx.is_numpy:
                run = _on_host(run, ctx)
            self.run = run
        return self.run


def _on_host(run, ctx):
    """Run a host-only kernel on numpy: inputs come back from the backend, outputs go to it."""
    def on_host(inputs):
        host_inputs = [x if isinstance(x, np.ndarray) or not hasattr(x, "__array_namespace__")
                       else ctx.to_numpy(x) for x in inputs]
        outputs = run(host_inputs)
        return [ctx.asarray(o) if isinstance(o, (np.ndarray, np.generic)) else o for o in outputs]
    return on_host


def toposort(pnodes: dict, fed) -> list:
    """PlanNodes in an order where producers come first (NextIteration back edges ignored)."""
    consumers = {n: [] for n in pnodes}
    pending = {}
    for p in pnodes.values():
        deps = set()
        for src, index in p.inputs:
            if (src, index) in fed or src not in pnodes:
                continue
            if p.op in ("Merge", "RefMerge") and pnodes[src].op in ("NextIteration", "RefNextIteration"):
                continue
            deps.add(src)
        deps.update(c for c in p.controls if c in pnodes)
        pending[p.name] = len(deps)
        for d in deps:
            consumers[d].append(p.name)
    ready = [n for n in pnodes if pending[n] == 0]
    ready.reverse()
    order = []
    while ready:
        n = ready.pop()
        order.append(pnodes[n])
        released = []
        for c in consumers[n]:
            pending[c] -= 1
            if pending[c] == 0:
                released.append(c)
        ready.extend(reversed(released))
    if len(order) != len(pnodes):
        stuck = sorted(n for n in pnodes if pending[n] > 0)[:5]
        raise SavedModelError(f"The graph has a cycle through {', '.join(stuck)}; it cannot run.")
    return order
