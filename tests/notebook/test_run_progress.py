"""Per-op progress and cancelling a run: the engine's RunWatch, Ctrl-C in magics, the panel's Cancel."""
import os
import signal
import time

import numpy as np
import pytest

import sm_notebook
from notebook_fixtures import fixture_model
from sm_notebook.engine.watch import RunCancelled, RunWatch
from sm_notebook.notebook.widgets import RunPanel
from sm_notebook.notebook.widgets.progress import Progress, cancel_on_interrupt

MODEL = "keras3_mobilenetv2"


@pytest.fixture(scope="module")
def signature():
    return sm_notebook.load(fixture_model(MODEL)).signatures["serving_default"]


def image(batch=2):
    return {"keras_tensor_12": np.random.default_rng(0).random((batch, 96, 96, 3), np.float32)}


def test_a_watched_run_reports_every_op_and_equals_a_call(signature):
    seen = []
    watch = RunWatch(on_step=lambda w: seen.append((w.done, w.total)), interval=0)
    outputs = signature.run_watched(watch, **image())
    assert watch.done == watch.total == len(signature.plan.steps) > 10
    assert seen == [(k, watch.total) for k in range(1, watch.total + 1)]
    np.testing.assert_array_equal(outputs["output_0"], signature(**image())["output_0"])


def test_cancel_stops_at_the_next_op_and_the_model_stays_usable(signature):
    watch = RunWatch(on_step=lambda w: w.cancel() if w.done == 7 else None, interval=0)
    with pytest.raises(RunCancelled, match=r"cancelled after node .* \(8 of \d+ steps done\)") as caught:
        signature.run_watched(watch, **image())
    assert caught.value.done == 8 and isinstance(caught.value, sm_notebook.SavedModelError)
    again = signature.run_watched(RunWatch(), **image())
    np.testing.assert_array_equal(again["output_0"], signature(**image())["output_0"])


def test_ctrl_c_cancels_the_run_instead_of_interrupting_an_op(signature):
    interrupt = lambda w: os.kill(os.getpid(), signal.SIGINT) if w.done == 3 else None  # noqa: E731
    watch = RunWatch(on_step=interrupt, interval=0)
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(RunCancelled):
        with cancel_on_interrupt(watch):
            signature.run_watched(watch, **image())
    assert signal.getsignal(signal.SIGINT) is before
    assert 3 <= watch.done < watch.total


def test_the_bar_follows_the_ops():
    progress = Progress("run", show=False)
    watch = progress.watch()
    watch.begin(40)
    watch.done, watch.node = 10, "model/block_3/conv"
    progress.show_steps(watch)
    assert progress.bar.max == 40 and progress.bar.value == 10 and "10/40 ops · conv" in progress.text.value


def test_the_panels_cancel_button_stops_a_background_run(monkeypatch):
    slow_record = RunWatch.record

    def record(self, info, inputs, outputs):  # a slow model: every op takes 20 ms
        time.sleep(0.02)
        return slow_record(self, info, inputs, outputs)

    panel = RunPanel(fixture_model(MODEL), namespace={}, background=True)
    monkeypatch.setattr(RunWatch, "record", record)
    panel.run_button.click()
    assert panel.running and panel.run_button.disabled
    time.sleep(0.1)
    progress_widget = panel.progress_box.children[0]
    progress_widget.children[-1].click()  # Cancel
    panel.wait(30)
    assert not panel.running and not panel.run_button.disabled
    assert panel.result is None and "cancelled" in panel.status.value
    monkeypatch.setattr(RunWatch, "record", slow_record)
    panel.run_button.click()
    panel.wait(30)
    assert panel.result is not None, panel.status.value
