"""TF1 producers' exports (tf1_producers.py: dynamic_rnn, bidirectional_dynamic_rnn) run
against TensorFlow at batch 1 and 3, optimised and plain; float32 judged against the float64
twin of each model (conftest.assert_float32_near_reference)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

import sm_notebook  # noqa: E402
from conftest import assert_float32_near_reference  # noqa: E402

pytestmark = [pytest.mark.interop, pytest.mark.slow]
BATCHES = (1, 3)


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    out = tmp_path_factory.mktemp("tf1")
    subprocess.run([sys.executable, str(Path(__file__).with_name("tf1_producers.py")), str(out)],
                   check=True, timeout=600)
    return out


def _feeds(name, batch):
    rng = np.random.default_rng(batch)
    feeds = {"x": rng.standard_normal((batch, 5, 3)).astype(np.float32)}
    if name == "bidirectional_rnn":
        feeds["lengths"] = rng.integers(0, 6, batch).astype(np.int32)
    return feeds


def _tf_run(path, feeds):
    fn = tf.saved_model.load(str(path)).signatures["serving_default"]
    return {k: v.numpy() for k, v in fn(**{k: tf.constant(v) for k, v in feeds.items()}).items()}


@pytest.mark.parametrize("optimize", [True, False])
@pytest.mark.parametrize("name", ["dynamic_rnn", "bidirectional_rnn"])
def test_tf1_rnn_matches_tensorflow(exports, name, optimize):
    ours = sm_notebook.load(exports / f"{name}_float32", tags=["serve"],
                            optimize=optimize).signatures["serving_default"]
    for batch in BATCHES:
        feeds = _feeds(name, batch)
        tf32 = _tf_run(exports / f"{name}_float32", feeds)
        ref64 = _tf_run(exports / f"{name}_float64",
                        {k: v.astype(np.float64) if v.dtype == np.float32 else v
                         for k, v in feeds.items()})
        for value in feeds.values():
            value.flags.writeable = False
        got = ours(**feeds).numpy()
        assert set(got) == set(tf32)
        for key in tf32:
            assert_float32_near_reference(got[key], tf32[key], ref64[key],
                                          what=f"{name} {key} batch {batch}")
        again = ours(**feeds).numpy()  # the TensorArrays of one call do not leak into the next
        for key in tf32:
            np.testing.assert_array_equal(again[key], got[key])
