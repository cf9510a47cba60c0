"""TF1 producers' exports (tf1_producers.py: dynamic_rnn, bidirectional_dynamic_rnn,
feature columns behind tf.Example serving) run against TensorFlow at batch 1 and 3, optimised
and plain. RNN float32 outputs are judged against the float64 twin of each model
(conftest.assert_float32_near_reference)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

import sm_notebook  # noqa: E402
from conftest import assert_float32_near_reference  # noqa: E402
from sm_notebook.engine.scan import scan_model  # noqa: E402
from sm_notebook.format.example import serialize_example  # noqa: E402

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
@pytest.mark.parametrize("name", ["dynamic_rnn", "bidirectional_rnn", "tensor_array_loops"])
def test_tf1_loops_match_tensorflow(exports, name, optimize):
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
            if tf32[key].dtype.kind != "f":
                np.testing.assert_array_equal(got[key], tf32[key])
                continue
            assert_float32_near_reference(got[key], tf32[key], ref64[key],
                                          what=f"{name} {key} batch {batch}")
        again = ours(**feeds).numpy()  # the TensorArrays of one call do not leak into the next
        for key in tf32:
            np.testing.assert_array_equal(again[key], got[key])


def _examples(batch, rng):
    """Serialized tf.train.Examples; some lack the optional features (empty sparse rows)."""
    cities = [b"paris", b"oslo", b"lima", "s\u00e3o paulo".encode()]
    out = []
    for i in range(batch):
        features = {"age": [float(rng.choice([5.0, 18.0, 29.5, 50.0, 71.0]))]}
        if i % 3 != 1:
            features["city"] = [cities[int(rng.integers(0, len(cities)))]]
            features["color"] = [[b"red", b"blue", b"pink"][int(rng.integers(0, 3))]]
        tags = [b"t%d" % int(t) for t in rng.integers(0, 30, int(rng.integers(0, 4)))]
        if tags:
            features["tags"] = tags
        ids = [int(k) for k in rng.integers(0, 10, int(rng.integers(0, 3)))]
        if ids:
            features["ids"] = ids
            features["ids_weight"] = [float(w) for w in rng.uniform(0.5, 3.0, len(ids))]
        out.append(serialize_example(features))
    return np.asarray(out, object)


def _rounding_bound(name, expected):
    """How far two correct float32 evaluations of a feature-column output may differ."""
    eps32 = float(np.finfo(np.float32).eps)
    if name == "linear_model":
        # a logit sums at most 10 terms |w * x| <= 0.8 * 71 (weights in [-0.8, 0.8], ages up
        # to 71, id weights below 3): every partial sum is below 100, and two summation
        # orders differ by at most 2 * 10 roundings of it
        return 20 * eps32 * 100.0
    # one-hot, bucket and numeric columns are exact; an embedding column is the mean or
    # sqrtn-weighted sum of at most 3 float32 rows: a few roundings of the largest value
    return 8 * eps32 * max(1.0, float(np.abs(expected).max(initial=0.0)))


@pytest.mark.parametrize("optimize", [True, False])
@pytest.mark.parametrize("name", ["feature_columns", "feature_columns_embedded",
                                  "linear_model"])
def test_tf1_feature_columns_match_tensorflow(exports, name, optimize):
    path = exports / f"{name}_float32"
    missing = scan_model(str(path)).unsupported
    assert not missing
    ours = sm_notebook.load(path, tags=["serve"], optimize=optimize).signatures["serving_default"]
    rng = np.random.default_rng(5)
    for batch in BATCHES:
        examples = _examples(batch, rng)
        (key, expected), = _tf_run(path, {"examples": examples}).items()
        got = ours(examples=examples).numpy()[key]
        assert got.shape == expected.shape and got.dtype == expected.dtype
        bound = _rounding_bound(name, expected)
        np.testing.assert_allclose(got, expected, rtol=0, atol=bound, err_msg=f"{name} {batch}")


def test_tensor_arrays_are_private_to_each_call_across_threads(exports):
    """TensorArrayV3 makes a new array in every call, so concurrent calls never share one
    and run without the model's lock (TensorArray ops are `call_private`, not effects)."""
    import threading

    ours = sm_notebook.load(exports / "dynamic_rnn_float32", tags=["serve"]).signatures[
        "serving_default"]
    assert not ours.plan.has_effects
    feeds = [_feeds("dynamic_rnn", batch) for batch in (1, 2, 3, 4, 5, 6)]
    alone = [ours(**f).numpy()["outputs"] for f in feeds]
    together = [None] * len(feeds)

    def call(k):
        together[k] = ours(**feeds[k]).numpy()["outputs"]

    threads = [threading.Thread(target=call, args=(k,)) for k in range(len(feeds))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for a, b in zip(alone, together):
        np.testing.assert_array_equal(a, b)
