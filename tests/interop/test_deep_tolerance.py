"""A deep network judged against TensorFlow's own float32 error (issue 9, guarantee 4).

keras.applications.ResNet50 (random weights, fixed seed, BatchNormalization statistics
perturbed as make_fixtures.py does) exported to a temporary SavedModel with two
outputs: the class probabilities and the 2048 pooled features. TensorFlow runs it in
float32 and, frozen and rewritten to float64 (make_batch_sweep.to_float64), gives the
exact answer; sm_notebook's float32 answer at batch 1 and 3 must be within the bound
of conftest.float32_error_bound, TensorFlow's error pooled over both batches.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import FIXTURES, assert_float32_near_reference

pytestmark = [pytest.mark.slow, pytest.mark.interop]

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")
sys.path.insert(0, str(FIXTURES))
import make_batch_sweep  # noqa: E402
import make_fixtures  # noqa: E402

import sm_notebook  # noqa: E402

SEED = 21
IMAGE = (64, 64, 3)
BATCH_SIZES = (1, 3)


@pytest.fixture(scope="module")
def resnet(tmp_path_factory):
    """(export_dir, input key, {batch: inputs}, {batch: tf32 outputs}, {batch: ref64 outputs})."""
    keras.utils.set_random_seed(SEED)
    classifier = keras.applications.ResNet50(weights=None, input_shape=IMAGE, classes=10)
    make_fixtures._make_weights_non_trivial(classifier, seed=SEED)
    model = keras.Model(classifier.input,
                        [classifier.output, classifier.get_layer("avg_pool").output])
    export_dir = Path(tmp_path_factory.mktemp("deep")) / "resnet50"
    model.export(str(export_dir), format="tf_saved_model", verbose=False)

    loaded = tf.saved_model.load(str(export_dir))
    function = loaded.signatures["serving_default"]
    frozen = make_batch_sweep.freeze_tf2(function)
    (key,) = frozen.inputs
    rng = np.random.default_rng(SEED)
    inputs = {b: {key: rng.standard_normal((b, *IMAGE)).astype(np.float32)} for b in BATCH_SIZES}
    tf32 = {b: {k: v.numpy() for k, v in function(**{key: tf.constant(x[key])}).items()}
            for b, x in inputs.items()}
    values, kept = make_batch_sweep.run_float64(frozen.graph_def, list(inputs.values()),
                                                frozen.inputs, frozen.outputs)
    assert kept == [], f"ops left in float32 by the float64 rewrite: {kept}"
    return export_dir, inputs, tf32, dict(zip(BATCH_SIZES, values))


@pytest.mark.filterwarnings("ignore::sm_notebook.SavedModelWarning")
def test_resnet50_within_tensorflows_float32_error(resnet):
    export_dir, inputs, tf32, ref64 = resnet
    model = sm_notebook.load(export_dir)
    for batch in BATCH_SIZES:
        feeds = {k: v.copy() for k, v in inputs[batch].items()}
        for array in feeds.values():
            array.flags.writeable = False
        got = model.signatures["serving_default"](**feeds).numpy()
        assert sorted(got) == sorted(tf32[batch])
        for key, want in tf32[batch].items():
            assert got[key].dtype == want.dtype == np.float32
            pooled = [(tf32[b][key], ref64[b][key]) for b in BATCH_SIZES if b != batch]
            assert_float32_near_reference(got[key], want, ref64[batch][key],
                                          f"ResNet50 b{batch} {key}", pooled=pooled)
        for key, array in feeds.items():
            assert array.tobytes() == inputs[batch][key].tobytes(), f"input {key} changed"


def test_float64_reference_is_a_different_run_of_the_same_graph(resnet):
    """The rewrite computed in float64 (it differs from TensorFlow's float32 answer) and
    computed the same function (it differs by no more than float32 noise)."""
    _, _, tf32, ref64 = resnet
    for batch in BATCH_SIZES:
        for key, exact in ref64[batch].items():
            assert exact.dtype == np.float64
            error = np.max(np.abs(tf32[batch][key] - exact))
            assert 0 < error < 1e-4 * np.max(np.abs(exact)), (batch, key, error)
