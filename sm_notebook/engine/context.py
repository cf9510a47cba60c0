"""What a kernel sees of the running call (the ``ctx`` of the kernel contract)."""
from __future__ import annotations

import numpy as np

from ..errors import SavedModelError
from .backend import Backend, get_backend

DEFAULT_MEMORY_CAP = 8 * 2**30  # bytes one intermediate may take


class KernelContext:
    """Backend, resources and callbacks shared by the kernels of one model.

    Attributes: ``backend``, ``xp`` (its namespace), ``is_numpy``, ``resources``
    (dict of resource key -> engine object: variables, tables, ...), ``export_dir``,
    ``allow_io``, ``memory_cap``, ``optimize``. The engine sets ``function_caller`` (and
    ``function_runner``, ``loop_body_runner``) so control-flow kernels can run
    FunctionDefs through ``call_function`` (and ``function``, ``loop_body``).
    """

    def __init__(self, backend="numpy", export_dir=None, allow_io=False,
                 memory_cap=DEFAULT_MEMORY_CAP, function_caller=None, function_runner=None,
                 loop_body_runner=None, optimize=True):
        self.backend: Backend = get_backend(backend)
        self.xp = self.backend.xp
        self.is_numpy = self.backend.is_numpy
        self.export_dir = export_dir
        self.allow_io = allow_io
        self.memory_cap = memory_cap
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
            count *= int(dim)
        nbytes = count * np.dtype(dtype).itemsize
        if nbytes > self.memory_cap:
            raise SavedModelError(
                f"Op {op} would allocate {nbytes / 2**30:.1f} GiB for shape {tuple(shape)} "
                f"({np.dtype(dtype).name}), over the memory cap of {self.memory_cap / 2**30:.1f} GiB. "
                "Feed smaller inputs, or raise the cap with load(..., memory_cap=BYTES).")

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
