"""Progress for long work (loading big bundles, long runs): a bar, the current step, elapsed time."""
from __future__ import annotations

import contextlib
import html
import signal
import threading
import time

import ipywidgets as W


@contextlib.contextmanager
def cancel_on_interrupt(watch):
    """While the block runs, the first Ctrl-C (SIGINT) cancels ``watch`` (the run stops at the
    next step boundary) instead of interrupting a kernel mid-op; a second one interrupts as
    usual. Outside the main thread nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)

    def on_interrupt(signum, frame):
        watch.cancel()
        signal.signal(signal.SIGINT, previous)

    signal.signal(signal.SIGINT, on_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


class Progress:
    """Steps of long work shown as a bar and a label; also a context manager.

    ``steps`` is the number of `step` calls expected (None: unknown, the bar
    then shows activity only). ``show=False`` keeps it silent (terminals,
    tests); the state (``label``, ``done``, ``failed``) is kept either way.
    """

    def __init__(self, description: str = "", steps: int | None = None, show: bool = True):
        self.description = description
        self.steps = steps
        self.count = 0
        self.label = ""
        self.done = False
        self.failed = None
        self.start = time.perf_counter()
        self.show = show
        self.bar = W.IntProgress(value=0, min=0, max=max(steps or 1, 1), description=description,
                                 bar_style="info", layout=W.Layout(width="320px"))
        self.text = W.HTML()
        self.widget = W.HBox([self.bar, self.text])
        self._handle = None

    def __repr__(self):
        state = "failed" if self.failed else "done" if self.done else f"step {self.count}/{self.steps or '?'}"
        return f"<Progress {self.description!r}: {state} {self.label!r}>"

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def _render(self):
        self.bar.value = min(self.count, self.bar.max)
        self.text.value = (f'<span style="color:var(--jp-ui-font-color1, inherit)">{html.escape(self.label)}</span> '
                           f'<span style="color:var(--jp-ui-font-color2, #888)">{self.elapsed:.1f} s</span>')

    def step(self, label: str):
        """Begin the next step (the previous one is complete)."""
        if self.count == 0 and self.show and self._handle is None:
            from IPython.display import display
            self._handle = display(self.widget, display_id=True)
        if self.label:
            self.count += 1
        self.label = label
        if self.steps is None:
            self.bar.max = self.count + 1
        self._render()

    def watch(self, on_cancel=None):
        """A RunWatch whose steps move this bar (ops done of the plan's ops, the current node,
        live elapsed time); with ``on_cancel`` a Cancel button appears next to the bar."""
        from ...engine.watch import RunWatch
        watch = RunWatch(on_step=self.show_steps)
        if on_cancel is not None:
            self.cancel_button = W.Button(description="Cancel", icon="stop", button_style="warning",
                                          layout=W.Layout(width="auto"))
            self.cancel_button.on_click(lambda _: (watch.cancel(), on_cancel()))
            self.widget.children = (*self.widget.children, self.cancel_button)
        return watch

    def show_steps(self, watch):
        """Show a RunWatch's progress: ``done`` of ``total`` ops and the node running."""
        self.bar.max = max(watch.total, 1)
        self.count = min(watch.done, self.bar.max)
        node = (watch.node or "").rsplit("/", 1)[-1]
        self.label = f"{watch.done}/{watch.total} ops · {node}"
        self._render()

    def finish(self, label: str = "done"):
        self.count = self.bar.max
        self.label = f"{label}"
        self.done = True
        self.bar.bar_style = "success"
        self._render()

    def fail(self, message: str):
        self.failed = message
        self.label = f"failed: {message}"
        self.bar.bar_style = "danger"
        self._render()

    def close(self):
        """Remove the bar from the page (the state stays)."""
        if self._handle is not None:  # leave an empty output, not a view of a closed widget
            self._handle.update({"text/plain": ""}, raw=True)
        self.widget.close()

    def __enter__(self):
        self.start = time.perf_counter()
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.finish(f"done in {self.elapsed:.2f} s")
            if self._handle is not None:
                self.close()
        else:  # the caller shows the error; a red bar repeating it would say it twice
            self.fail(f"{exc_type.__name__}: {exc}")
            self.close()
        return False
