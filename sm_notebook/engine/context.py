"""What a kernel sees of the running call (the ``ctx`` of the kernel contract)."""
from __future__ import annotations

import numpy as np

from ..errors import SavedModelError
from .backend import Backend, get_backend

DEFAULT_MEMORY_CAP = 8 * 2**30  # bytes one intermediate may take
#: Iterations one run of a While loop (TF2 While/StatelessWhile, TF1 frame) may take:
#: generous (TensorFlow has no limit; its maximum_iterations is a loop input), but a
#: malformed or hostile loop fails instead of running for ever.
DEFAULT_MAX_LOOP_ITERATIONS = 10_000_000
#: Outputs one node may have (Split's num_split, Unpack's num, ...): each output costs
#: the engine an object and a slot whatever its size, so the count is bounded on its own.
MAX_NODE_OUTPUTS = 2**20
#: What one output costs the engine before holding any data (plan slot, array view),
#: measured at about 240 bytes on CPython 3.11; counted against the memory cap.
OUTPUT_OBJECT_BYTES = 256


def check_output_count(count: int, op: str, memory_cap: int | None, what: str = "outputs") -> None:
    """Refuse a node with more outputs than `MAX_NODE_OUTPUTS` or than the memory cap
    allows at `OUTPUT_OBJECT_BYTES` each, before any per-output structure is built."""
    if count < 0:
        raise SavedModelError(f"{op} asks for {count} {what}; the count must be non-negative.")
    if count > MAX_NODE_OUTPUTS:
        raise SavedModelError(
            f"{op} asks for {count:,} {what}; sm_notebook's engine allows at most "
            f"{MAX_NODE_OUTPUTS:,} outputs on one node. The model is malformed or hostile.")
    if memory_cap is not None and count * OUTPUT_OBJECT_BYTES > memory_cap:
        raise SavedModelError(
            f"{op} asks for {count:,} {what}, which would take "
            f"{size_text(count * OUTPUT_OBJECT_BYTES)} of engine objects, over the memory "
            f"cap of {size_text(memory_cap)}. Raise the cap with load(..., memory_cap=BYTES).")


def size_text(nbytes: int) -> str:
    """``1.5 GiB``-style size (bytes below 1 KiB)."""
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if nbytes >= scale:
            return f"{nbytes / scale:.1f} {unit}"
    return f"{nbytes} bytes"


class KernelContext:
    """Backend, resources and callbacks shared by the kernels of one model.

    Attributes: ``backend``, ``xp`` (its namespace), ``is_numpy``, ``resources``
    (dict of resource key -> engine object: variables, tables, ...), ``export_dir``,
    ``allow_io``, ``memory_cap``, ``max_loop_iterations``, ``optimize``. The engine sets
    ``function_caller`` (and ``function_runner``, ``loop_body_runner``) so control-flow
    kernels can run FunctionDefs through ``call_function`` (and ``function``,
    ``loop_body``).
    """

    def __init__(self, backend="numpy", export_dir=None, allow_io=False,
                 memory_cap=DEFAULT_MEMORY_CAP, function_caller=None, function_runner=None,
                 loop_body_runner=None, max_loop_iterations=DEFAULT_MAX_LOOP_ITERATIONS,
                 optimize=True):
        self.backend: Backend = get_backend(backend)
        self.xp = self.backend.xp
        self.is_numpy = self.backend.is_numpy
        self.export_dir = export_dir
        self.allow_io = allow_io
        self.memory_cap = memory_cap
        self.max_loop_iterations = max_loop_iterations
        self.optimize = optimize  # kernels pick their fast paths at prepare time only if set
        self.resources: dict = {}
        self.function_caller = function_caller
        self.function_runner = function_runner
        self.loop_body_runner = loop_body_runner

    def asarray(self, value, dtype=None):
        return self.backend.asarray(value, dtype)

    def to_numpy(self, array) -> np.ndarray:
        return self.backend.to_numpy(array)

    def dtype(self, dtype):
        return self.backend.dtype(dtype)

    def check_alloc(self, shape, dtype, op="?"):
        """Refuse an allocation larger than the memory cap, before making it."""
        count = 1
        for dim in shape:
            if int(dim) < 0:
                raise SavedModelError(f"Op {op} was asked for a negative dimension: shape "
                                      f"{tuple(shape)}.")
            count *= int(dim)
        nbytes = count * np.dtype(dtype).itemsize
        if nbytes > self.memory_cap:
            raise SavedModelError(
                f"Op {op} would allocate {size_text(nbytes)} for shape {tuple(shape)} "
                f"({np.dtype(dtype).name}), over the memory cap of {size_text(self.memory_cap)}. "
                "Feed smaller inputs, or raise the cap with load(..., memory_cap=BYTES).")

    def check_outputs(self, count: int, op: str = "?") -> None:
        """Refuse ``count`` outputs (or list items) of one node before building them."""
        check_output_count(count, op, self.memory_cap)

    def check_loop(self, iterations: int, loop: str) -> None:
        """Called with the number of iterations a loop has run so far; refuses to go past
        ``max_loop_iterations``."""
        if iterations > self.max_loop_iterations:
            raise SavedModelError(
                f"{loop} ran {self.max_loop_iterations:,} iterations without finishing, the "
                "limit for one loop. If the model really needs more, raise it with "
                "load(..., max_loop_iterations=N).")

    def function(self, name: str, attrs: dict | None = None):
        """``run(inputs) -> outputs`` for function ``name``, resolved once (for loops)."""
        if self.function_runner is None:
            return lambda inputs: self.call_function(name, inputs, attrs)
        return self.function_runner(name, attrs or {})

    def loop_body(self, name: str, attrs: dict | None = None, cond=None):
        """Like `function`, for one run of a While loop (``cond``: its cond function as
        ``(name, attrs)``): the body's loop-invariant steps are computed in the first
        iteration only."""
        if self.loop_body_runner is None:
            return self.function(name, attrs)
        return self.loop_body_runner(name, attrs or {}, cond)

    def call_function(self, name: str, inputs: list, attrs: dict | None = None) -> list:
        if self.function_caller is None:
            raise SavedModelError(f"Function {name!r} called outside a model: no function library.")
        return self.function_caller(name, inputs, attrs or {})
