"""Models whose While bodies reference op outputs by name (``ones_like:y:0``, ``Cast:y:0``),
made by TensorFlow's own map_fn, scan and a greedy-decoding while_loop, run at several
batch sizes against TensorFlow. Output argument names come from the op table, never
guessed (regression: "Op OnesLike has no output argument 'y'")."""
from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

import sm_notebook  # noqa: E402

pytestmark = pytest.mark.interop
BATCHES = (1, 2, 3, 7)
VOCAB, STEPS = 6, 5


class LoopModule(tf.Module):
    def __init__(self):
        super().__init__()
        rng = np.random.default_rng(5)
        self.embed = tf.Variable(rng.standard_normal((VOCAB, 4)).astype(np.float32))
        self.proj = tf.Variable(rng.standard_normal((4, VOCAB)).astype(np.float32))

    @tf.function(input_signature=[tf.TensorSpec([None, 3], tf.float32)])
    def mapped(self, x):
        rows = tf.map_fn(lambda r: tf.ones_like(r) * tf.cast(tf.reduce_sum(r) > 0, tf.float32) + r, x)
        return {"rows": rows}

    @tf.function(input_signature=[tf.TensorSpec([None, 3], tf.float32)])
    def scanned(self, x):
        totals = tf.scan(lambda acc, r: acc + tf.cast(r > 0, tf.float32) + tf.zeros_like(r),
                         tf.transpose(x), initializer=tf.zeros_like(x[:, 0]))
        return {"totals": totals}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.int32)])
    def greedy(self, start):
        tokens = tf.TensorArray(tf.int32, size=STEPS)

        def step(i, prev, tokens):
            hidden = tf.nn.embedding_lookup(self.embed, prev)
            logits = tf.matmul(tf.tanh(hidden), self.proj)
            nxt = tf.cast(tf.argmax(logits, axis=-1), tf.int32)
            return i + 1, nxt, tokens.write(i, nxt)

        _, _, tokens = tf.while_loop(lambda i, p, t: i < STEPS, step,
                                     [tf.constant(0), start, tokens])
        return {"tokens": tf.transpose(tokens.stack())}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    module = LoopModule()
    path = tmp_path_factory.mktemp("loops") / "model"
    tf.saved_model.save(module, str(path), signatures={
        "mapped": module.mapped, "scanned": module.scanned, "greedy": module.greedy})
    return path, tf.saved_model.load(str(path))


def _inputs(signature, batch, rng):
    if signature == "greedy":
        return {"start": rng.integers(0, VOCAB, batch).astype(np.int32)}
    return {"x": rng.standard_normal((batch, 3)).astype(np.float32)}


@pytest.mark.parametrize("optimize", [True, False])
@pytest.mark.parametrize("signature", ["mapped", "scanned", "greedy"])
def test_loop_bodies_match_tensorflow_at_every_batch_size(exported, signature, optimize):
    path, theirs = exported
    ours = sm_notebook.load(path, tags=["serve"], optimize=optimize).signatures[signature]
    rng = np.random.default_rng(11)
    for batch in BATCHES:
        feeds = _inputs(signature, batch, rng)
        for value in feeds.values():
            value.flags.writeable = False
        expected = {k: v.numpy() for k, v in theirs.signatures[signature](
            **{k: tf.constant(v) for k, v in feeds.items()}).items()}
        got = ours(**feeds).numpy()
        assert set(got) == set(expected)
        for key, want in expected.items():
            assert got[key].dtype == want.dtype and got[key].shape == want.shape, (key, batch)
            if want.dtype.kind == "f":
                # sums of at most 3 terms plus exact 0/1 terms: a few float32 ulps
                np.testing.assert_allclose(got[key], want, rtol=4 * np.finfo(np.float32).eps, atol=0)
            else:
                np.testing.assert_array_equal(got[key], want)
