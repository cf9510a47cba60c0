"""A TensorFlow-made stateful model called from 8 threads: each call's variable updates are
atomic with respect to the other calls (1,000 increments end at exactly 1,000).

``bump`` (assign_add) is atomic in TensorFlow too. ``step`` (read, add, assign: three
ops) is not in TensorFlow, whose calls do not exclude each other (999 seen), but is here:
the engine runs a call of a signature with effects under the model's lock."""
from __future__ import annotations

import os
import sys
from concurrent.futures import ThreadPoolExecutor

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import pytest

from sm_notebook.engine.loader import load_model

tf = pytest.importorskip("tensorflow")

pytestmark = pytest.mark.interop

THREADS, CALLS = 8, 1000


class _Counter(tf.Module):
    def __init__(self):
        super().__init__()
        self.count = tf.Variable(0.0)
        self.total = tf.Variable(0.0)

    @tf.function(input_signature=[])
    def bump(self):
        return {"count": self.count.assign_add(1.0)}

    @tf.function(input_signature=[])
    def step(self):
        self.total.assign(self.total + 1.0)
        return {"total": self.total.read_value()}

    @tf.function(input_signature=[tf.TensorSpec([], tf.float32)])
    def scale(self, x):
        return {"y": x * 2.0}


def test_stateful_signature_called_from_threads_is_atomic(tmp_path):
    module = _Counter()
    export = tmp_path / "counter"
    tf.saved_model.save(module, str(export), signatures={"bump": module.bump,
                                                         "step": module.step,
                                                         "scale": module.scale})
    model = load_model(export)
    bump, step, scale = (model.signatures[k] for k in ("bump", "step", "scale"))
    assert bump.plan.has_effects and step.plan.has_effects and not scale.plan.has_effects
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads often: a race shows in every run
    try:
        with ThreadPoolExecutor(THREADS) as pool:
            seen = list(pool.map(lambda _: float(bump()["count"]), range(CALLS)))
            totals = list(pool.map(lambda _: float(step()["total"]), range(CALLS)))
            doubled = list(pool.map(lambda k: float(scale(x=np.float32(k))["y"]), range(100)))
    finally:
        sys.setswitchinterval(interval)
    assert sorted(seen) == list(range(1, CALLS + 1))  # ends at 1,000, each call its own value
    assert sorted(totals) == list(range(1, CALLS + 1))
    assert doubled == [2.0 * k for k in range(100)]
