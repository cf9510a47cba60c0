"""An exported tf.function with stateless random noise (seeds derived from an input),
fake quantization, a quantize/dequantize round trip (MIN_COMBINED, where TensorFlow's
oneDNN and Eigen kernels agree) and both CTC decoders, run against TensorFlow at batch
1 and 3."""
from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

import sm_notebook  # noqa: E402

pytestmark = pytest.mark.interop
BATCHES = (1, 3)
STEPS, CLASSES = 7, 5


class NoisyDecoder(tf.Module):
    @tf.function(input_signature=[tf.TensorSpec([None, STEPS, CLASSES], tf.float32),
                                  tf.TensorSpec([], tf.int64)])
    def decode(self, x, seed):
        seeds = tf.stack([seed, seed * 3 + 1])
        batch = tf.shape(x)[0]
        noise = tf.random.stateless_uniform(tf.shape(x), seeds, minval=-0.5, maxval=0.5)
        gauss = tf.random.stateless_normal([batch, 4], seeds + 7, dtype=tf.float64)
        truncated = tf.random.stateless_truncated_normal([batch, 3], seeds)
        ints = tf.random.stateless_uniform([batch, 2], seeds, minval=-3, maxval=9, dtype=tf.int32)
        quantized = tf.quantization.fake_quant_with_min_max_args(x + noise, min=-3.0, max=3.0,
                                                                num_bits=6)
        q8 = tf.quantization.quantize(x, -2.0, 3.0, tf.qint8, mode="MIN_COMBINED")
        uq8 = tf.quantization.quantize(x, -2.0, 3.0, tf.quint8, mode="MIN_COMBINED")
        dequantized = (tf.quantization.dequantize(q8.output, q8.output_min, q8.output_max) +
                       tf.quantization.dequantize(uq8.output, uq8.output_min, uq8.output_max))
        per_channel = tf.quantization.fake_quant_with_min_max_vars_per_channel(
            x, tf.linspace(-2.0, -0.5, CLASSES), tf.linspace(0.5, 2.5, CLASSES), num_bits=4)
        logits = tf.transpose(tf.nn.log_softmax(quantized), [1, 0, 2])
        lengths = tf.fill([batch], STEPS) - tf.range(batch) % 3
        greedy, greedy_logp = tf.nn.ctc_greedy_decoder(logits, lengths)
        beams, beam_logp = tf.nn.ctc_beam_search_decoder(logits, lengths, beam_width=4, top_paths=2)
        outputs = {"noise": noise, "gauss": gauss, "truncated": truncated, "ints": ints,
                   "quantized": quantized, "per_channel": per_channel, "dequantized": dequantized,
                   "greedy_logp": greedy_logp, "beam_logp": beam_logp}
        for name, sparse in (("greedy", greedy[0]), ("beam0", beams[0]), ("beam1", beams[1])):
            outputs.update({f"{name}_indices": sparse.indices, f"{name}_values": sparse.values,
                            f"{name}_shape": sparse.dense_shape})
        return outputs


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    module = NoisyDecoder()
    path = tmp_path_factory.mktemp("noisy") / "model"
    tf.saved_model.save(module, str(path), signatures={"decode": module.decode})
    return path, tf.saved_model.load(str(path))


@pytest.mark.parametrize("optimize", [True, False])
def test_random_quantize_ctc_match_tensorflow(exported, optimize):
    path, theirs = exported
    ours = sm_notebook.load(path, tags=["serve"], optimize=optimize).signatures["decode"]
    rng = np.random.default_rng(21)
    for batch in BATCHES:
        for seed in (5, -123456789):
            x = (rng.standard_normal((batch, STEPS, CLASSES)) * 1.5).astype(np.float32)
            x.flags.writeable = False
            expected = {k: v.numpy() for k, v in theirs.signatures["decode"](
                x=tf.constant(x), seed=tf.constant(seed, tf.int64)).items()}
            got = ours(x=x, seed=np.int64(seed)).numpy()
            assert set(got) == set(expected)
            for key, want in expected.items():
                assert got[key].dtype == want.dtype and got[key].shape == want.shape, (key, batch)
                if key.endswith("logp"):
                    # log-softmax, then up to STEPS steps of a few float32 roundings each
                    np.testing.assert_allclose(got[key], want, rtol=0,
                                               atol=8 * (STEPS + 1) * np.finfo(np.float32).eps * 10)
                else:  # random bits, fake quantization and decoded paths: exact
                    np.testing.assert_array_equal(got[key].view(f"u{want.itemsize}")
                                                  if want.dtype.kind == "f" else got[key],
                                                  want.view(f"u{want.itemsize}")
                                                  if want.dtype.kind == "f" else want, err_msg=key)
