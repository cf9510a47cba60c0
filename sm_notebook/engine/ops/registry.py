"""The registry of op kernels.

Every kernel has two phases, as ONNX's reference evaluator has ``OpRun(node)`` then
``run``: ``prepare(node, ctx) -> run``, once per plan node, then ``run(inputs) ->
outputs`` once per call. Per-node state (decoded geometry, cached index arrays, the
choice of a numpy fast path) lives in the closure ``prepare`` returns, never in
module-level caches.

Most kernels need no per-node state. They are written as ``fn(ctx, inputs, attrs)``
and registered with `kernel`; the registry prepares them as ``lambda inputs: fn(ctx,
inputs, node.attrs)``. Kernels with state are registered with `prepared_kernel`.

Facts about the op itself (its output arguments, attribute defaults, whether it is
stateful or touches files) are not declared here: they come from the op table,
``sm_notebook.opdefs``, or from the model's own OpDef when it carries one.

Kernel contract
---------------
``run(inputs) -> sequence of outputs`` (a list/tuple, even for one output; a list
output contributes its elements flat, in order).

* ``inputs``: the node's data inputs in order, already arrays of the active backend
  (``ctx.xp``), or numpy arrays for host-only dtypes (strings, and dtypes the backend
  lacks), or engine objects (resource handles, TensorLists). Inputs are read-only:
  a kernel never writes into an array it did not allocate.
* ``node.attrs``: the node's attributes decoded to Python: ``int``, ``float``, ``bool``,
  ``str`` (for ``s`` attrs that are valid UTF-8, else ``bytes``), numpy dtypes for
  ``type`` (ml_dtypes.bfloat16 for DT_BFLOAT16), tuples with ``None`` for unknown dims
  (``None`` for unknown rank) for ``shape``, numpy arrays for ``tensor``, Python lists
  for ``list`` values, and ``FuncAttr(name, attrs)`` for ``func``. Missing attributes
  take their OpDef default as TensorFlow does.
* ``ctx``: the `KernelContext` of the model (see its docstring); numpy's
  floating-point warnings are off while any plan runs (TensorFlow gives inf/nan quietly).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, Callable, Sequence

import numpy as np

from ...errors import SavedModelError


@dataclass(frozen=True)
class FuncAttr:
    """A decoded ``func`` attribute: the function's name and its attrs."""
    name: str
    attrs: dict = field(default_factory=dict)


Prepare = Callable[[Any, Any], Callable[[list], Sequence[Any]]]


@dataclass(frozen=True)
class OpKernel:
    """A registered kernel: ``prepare(node, ctx) -> run(inputs) -> outputs``.

    Everything else about the op (its outputs, whether it runs on the host, is stateful
    or touches files) is the op table's (``sm_notebook.opdefs``), not the kernel's; the
    engine's own ops are added there with ``opdefs.register_extra``.
    """
    op: str
    prepare: Prepare

    def fn(self, ctx, inputs, attrs):
        """Prepare and run once, outside any plan (tests, one-off calls)."""
        node = SimpleNamespace(name=f"<{self.op}>", op=self.op, attrs=dict(attrs), function=None)
        with np.errstate(all="ignore"):
            return self.prepare(node, ctx)(list(inputs))

    @property
    def module(self) -> str:
        """The module that defines the kernel (docs group ops by it)."""
        fn = getattr(self.prepare, "simple_fn", self.prepare)
        return getattr(fn, "__wrapped__", fn).__module__

    @classmethod
    def simple(cls, op: str, fn) -> "OpKernel":
        """A kernel from ``fn(ctx, inputs, attrs)`` without per-node state."""
        return cls(op, _prepare_simple(fn))


def _prepare_simple(fn):
    def prepare(node, ctx):
        attrs = node.attrs
        return lambda inputs: fn(ctx, inputs, attrs)
    prepare.simple_fn = fn
    return prepare


KERNELS: dict[str, OpKernel] = {}


def _register(ops, make):
    for op in ops:
        if op in KERNELS:
            raise RuntimeError(f"kernel for {op} registered twice")
        KERNELS[op] = make(op)


def kernel(*ops: str):
    """Register ``fn(ctx, inputs, attrs)`` as the kernel of every op named."""
    def register(fn):
        _register(ops, lambda op: OpKernel.simple(op, fn))
        return fn
    return register


def prepared_kernel(*ops: str):
    """Register ``prepare(node, ctx) -> run(inputs)`` as the kernel of every op named."""
    def register(prepare):
        _register(ops, lambda op: OpKernel(op, prepare))
        return prepare
    return register


def get_kernel(op: str, node: str = "?", function: str | None = None) -> OpKernel:
    """The kernel of ``op``; a SavedModelError naming op, node and function otherwise."""
    try:
        return KERNELS[op]
    except KeyError:
        where = f" in function {function!r}" if function else " in the main graph"
        raise SavedModelError(
            f"Op {op!r} (node {node!r}{where}) is not supported by sm_notebook's engine. "
            f"{len(KERNELS)} ops are supported (see sm_notebook.ops.supported_ops()); "
            "run `sm-notebook scan --dir DIR` to list every unsupported op of a model.") from None
