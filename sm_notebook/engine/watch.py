"""Watching a signature run step by step: progress reports and cancellation.

A `RunWatch` is given to `SignatureFunction.run_watched`; the run reports each step of the
signature's plan to it (at most every ``interval`` seconds to ``on_step``) and stops at the
next step boundary after `cancel()` (from another thread, a button, or Ctrl-C), raising
`RunCancelled`. A step in progress finishes first (a While loop or a function call is one
step); variables and tables are left as the finished steps made them, so the model stays
usable.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Callable

from ..errors import SavedModelError
from .plan import Debugger, StopExecution


class RunCancelled(SavedModelError):
    """A watched run was cancelled; ``done`` of ``total`` steps had run."""

    def __init__(self, signature: str, done: int, total: int, node: str | None):
        where = f" after node {node!r}" if node else ""
        super().__init__(f"Run of signature {signature!r} cancelled{where} ({done} of {total} steps "
                         "done). Nothing was returned; the model is unchanged apart from what "
                         "those steps did and can be called again.")
        self.done, self.total, self.node = done, total, node


@dataclass
class RunWatch(Debugger):
    """Progress of one run (make one per run): ``done`` of ``total`` steps, the last node,
    elapsed seconds.

    ``on_step(watch)`` is called at most every ``interval`` seconds (and never after a cancel).
    """
    on_step: Callable | None = None
    interval: float = 0.1
    keep: bool = False
    total: int = 0
    done: int = 0
    node: str | None = None
    started: float = 0.0
    _cancelled: threading.Event = field(default_factory=threading.Event)
    _last: float = 0.0

    def begin(self, total: int) -> None:
        """Start counting a run of ``total`` top-level steps (a cancel already asked for stands)."""
        self.total, self.done, self.node = total, 0, None
        self.started = self._last = time.perf_counter()

    def cancel(self) -> None:
        """Stop the run at the next step boundary (safe from any thread)."""
        self._cancelled.set()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.started if self.started else 0.0

    @property
    def fraction(self) -> float:
        """Share of the steps done, in [0, 1]."""
        return min(self.done / self.total, 1.0) if self.total else 0.0

    def record(self, info, inputs, outputs):
        self.done += 1
        self.node = info.name
        if self._cancelled.is_set():
            self.stopped_at = info.name
            raise StopExecution()
        if self.on_step is not None:
            now = time.perf_counter()
            if now - self._last >= self.interval:
                self._last = now
                self.on_step(self)
