"""numpy's floating-point warnings are off during a plan run and only then (engine/quiet.py)."""
from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

import sm_notebook
from sm_notebook.engine.quiet import quiet, restore

MLP = Path(__file__).resolve().parents[1] / "fixtures" / "models" / "keras3_mlp"


def test_quiet_ignores_everything_and_restores_the_callers_state():
    def callback(kind, flag):
        pass

    with np.errstate(over="raise", call=callback):
        before = np.geterr()
        token = quiet()
        assert set(np.geterr().values()) == {"ignore"}
        assert np.geterrcall() is callback
        np.exp(np.float32(1000))  # would raise under the caller's state
        restore(token)
        assert np.geterr() == before
    with np.errstate(divide="raise"):  # a different caller state derives its own
        token = quiet()
        assert set(np.geterr().values()) == {"ignore"}
        restore(token)
        assert np.geterr()["divide"] == "raise"


def test_quiet_in_one_thread_leaves_another_alone():
    entered, release = threading.Event(), threading.Event()

    def worker():
        token = quiet()
        entered.set()
        release.wait(5)
        restore(token)

    with np.errstate(invalid="raise"):
        thread = threading.Thread(target=worker)
        thread.start()
        entered.wait(5)
        try:
            assert np.geterr()["invalid"] == "raise"
        finally:
            release.set()
            thread.join()


@pytest.mark.skipif(not MLP.exists(), reason="fixture models not generated")
def test_model_call_raises_no_warning_and_keeps_the_callers_state():
    fn = sm_notebook.load(MLP, tags=["serve"]).signatures["serving_default"]
    x = np.full((1, 8), np.inf, np.float32)  # inf - inf in the softmax: invalid
    with np.errstate(all="raise"):
        for _ in range(2):  # the second call runs compiled
            fn(features=x)
        assert set(np.geterr().values()) == {"raise"}
    with pytest.raises(FloatingPointError), np.errstate(all="raise"):
        np.subtract(np.float32(np.inf), np.float32(np.inf))
