"""A TensorFlow-made stateful model called from 8 threads: each call's variable update is
atomic, as in TensorFlow (1,000 increments end at exactly 1,000)."""
from __future__ import annotations

import os
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

    @tf.function(input_signature=[])
    def bump(self):
        return {"count": self.count.assign_add(1.0)}

    @tf.function(input_signature=[tf.TensorSpec([], tf.float32)])
    def scale(self, x):
        return {"y": x * 2.0}


def test_stateful_signature_called_from_threads_is_atomic(tmp_path):
    module = _Counter()
    export = tmp_path / "counter"
    tf.saved_model.save(module, str(export), signatures={"bump": module.bump,
                                                         "scale": module.scale})
    model = load_model(export)
    bump, scale = model.signatures["bump"], model.signatures["scale"]
    assert bump.plan.has_effects and not scale.plan.has_effects
    with ThreadPoolExecutor(THREADS) as pool:
        seen = list(pool.map(lambda _: float(bump()["count"]), range(CALLS)))
        doubled = list(pool.map(lambda k: float(scale(x=np.float32(k))["y"]), range(100)))
    assert len(set(seen)) == CALLS and max(seen) == CALLS
    (variable,) = model.variables.values()
    assert float(variable.value) == CALLS
    assert doubled == [2.0 * k for k in range(100)]
