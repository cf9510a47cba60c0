"""StatelessMultinomial against TensorFlow's CPU kernel: every sample equal."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from harness import BACKENDS
from raw_oracle import conform_bits
from sm_notebook.engine.backend import numpy_namespace
from sm_notebook.engine.ops.multinomial_ops import multinomial, shard_size
from sm_notebook.engine.ops.random_ops import Philox

OP = "StatelessMultinomial"
SEEDS = [np.array([1, 2], np.int32), np.array([-7, 2**31 - 1], np.int32),
         np.array([2**40 + 3, -(2**62)], np.int64)]
LOGIT_DTYPES = [np.dtype(np.float32), np.dtype(np.float64), np.dtype(np.float16)]
OUT_DTYPES = [np.dtype(np.int64), np.dtype(np.int32)]


def _check(logits, num_samples, seed, out_dtype, backend):
    named = {"logits": logits, "num_samples": np.int32(num_samples), "seed": seed}
    conform_bits(OP, named, {"T": logits.dtype, "output_dtype": out_dtype}, backend,
                 inferred=("T",))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("batch", [1, 3, 8])
def test_shapes_dtypes_seeds(batch, backend):
    rng = np.random.default_rng(batch)
    for classes in (1, 2, 3, 17, 100, 1000):
        for num_samples in (1, 2, 3, 4, 5, 8, 13, 64):
            dtype = LOGIT_DTYPES[(classes + num_samples) % 3]
            logits = (rng.normal(size=(batch, classes)) * 4).astype(dtype)
            seed = SEEDS[(classes * num_samples) % 3]
            _check(logits, num_samples, seed, OUT_DTYPES[num_samples % 2], backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_non_finite_logits(backend):
    """-inf classes are never drawn; NaN and +inf count as -inf; a row without finite
    logits gives num_classes, as TensorFlow's kernel does."""
    inf, nan = np.inf, np.nan
    rows = [[-inf, 0.0, -inf, 1.0], [-inf, -inf, -inf, -inf], [nan, 2.0, inf, -1.0],
            [inf, nan, -inf, inf], [30.0, -30.0, -inf, 0.0], [-1e30, 1e30, 0.0, -inf]]
    for dtype in LOGIT_DTYPES:
        logits = np.array(rows).astype(dtype) if dtype != np.float16 else \
            np.clip(np.array(rows), -6e4, 6e4).astype(dtype)
        for num_samples in (1, 6, 33):
            for out_dtype in OUT_DTYPES:
                _check(logits, num_samples, SEEDS[0], out_dtype, backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_empty_and_refused(backend):
    f32 = np.dtype(np.float32)
    _check(np.zeros((0, 3), f32), 5, SEEDS[0], np.dtype(np.int64), backend)
    _check(np.zeros((2, 3), f32), 0, SEEDS[1], np.dtype(np.int32), backend)
    _check(np.zeros((0, 3), f32), 0, SEEDS[1], np.dtype(np.int32), backend)
    # TensorFlow refuses these, and so must we (conform_bits checks SavedModelError)
    _check(np.zeros((2, 0), f32), 3, SEEDS[0], np.dtype(np.int64), backend)
    _check(np.zeros((2, 3), f32), -1, SEEDS[0], np.dtype(np.int64), backend)
    _check(np.zeros((2, 3, 1), f32), 2, SEEDS[0], np.dtype(np.int64), backend)
    _check(np.zeros((2, 3), f32), 2, np.array([1, 2, 3], np.int64), np.dtype(np.int64), backend)


def test_shard_sizes():
    """One shard below Eigen's threshold of about 210000 cycles or with one thread;
    Eigen's block sizes above it."""
    assert shard_size(1, 10**6, 1000, 16) == 1
    assert shard_size(8, 1000, 64, 1) == 8
    assert shard_size(8, 100, 7, 16) == 8  # cost 8 * 6982 cycles
    assert shard_size(3, 1000, 64, 2) == 2
    assert shard_size(1000, 100, 7, 16) == 21


_TF_SCRIPT = """
import json, sys
import numpy as np
import tensorflow as tf
threads, cases = json.loads(sys.argv[1])
tf.config.threading.set_intra_op_parallelism_threads(threads)
out = []
for batch, classes, num_samples, seed in cases:
    logits = np.sin(np.arange(batch * classes, dtype=np.float64) * 0.37).reshape(batch, classes) * 3
    out.append(tf.raw_ops.StatelessMultinomial(logits=logits, num_samples=num_samples,
                                                seed=seed).numpy().tolist())
print(json.dumps(out))
"""


@pytest.mark.slow
@pytest.mark.parametrize("threads", [1, 3, 4, 16])
def test_sharding_matches_tensorflow_thread_counts(threads):
    """Several shards: TensorFlow with an intra-op pool of ``threads`` (in a fresh process)
    against ours told the same thread count."""
    cases = [[3, 1000, 64, [5, 6]], [8, 1000, 7, [1, 2]], [64, 100, 64, [9, 9]],
             [200, 50, 10, [0, 3]], [1000, 20, 3, [7, 1]], [37, 300, 17, [2, 2]]]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run([sys.executable, "-c", _TF_SCRIPT, json.dumps([threads, cases])],
                            capture_output=True, text=True, env=env, check=True)
    expected = json.loads(result.stdout.strip().splitlines()[-1])
    xp = numpy_namespace()
    for (batch, classes, num_samples, seed), want in zip(cases, expected):
        logits = np.sin(np.arange(batch * classes, dtype=np.float64) * 0.37).reshape(batch, classes) * 3
        got = multinomial(xp, Philox.from_seed(*seed), logits, num_samples, np.int64, threads)
        assert got.tolist() == want, (threads, batch, classes, num_samples,
                                      shard_size(batch, classes, num_samples, threads))


BINOMIAL = "StatelessRandomBinomial"
BINOMIAL_CASES = [  # counts, probs, output shape: inversion (count * p < 10), BTRS, flips, edges
    ([5.0, 20.0, 100.0, 1000.0], [0.3, 0.7, 0.5, 0.01], (3, 4)),
    ([[50.0], [3.0]], [0.1, 0.9, 0.45], (2, 2, 3)),
    (7.0, 0.2, (5,)), (1000.0, 0.999, (4,)), (1e6, 0.3, (2,)), (40.0, 0.25, ()),
    ([0.0, 3.0, 4.0, -2.0], [0.5, 0.0, 1.0, 0.5], (2, 4)),
    ([9.0, 10.0, 11.0], [1.0, 1.0, 0.95], (1, 3)), (5.0, 0.5, (0, 1)),
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("count_dtype", ["float32", "float64", "float16", "int32", "int64"])
def test_binomial(count_dtype, backend):
    dtype = np.dtype(count_dtype)
    for i, (counts, probs, shape) in enumerate(BINOMIAL_CASES):
        if dtype == np.float16 and np.max(counts) > 65504:
            continue  # not a float16 count
        for out in ("int64", "float32", "float64", "int32", "float16"):
            named = {"shape": np.array(shape, np.int32), "seed": SEEDS[i % 3],
                     "counts": np.array(counts).astype(dtype), "probs": np.array(probs).astype(dtype)}
            conform_bits(BINOMIAL, named, {"dtype": np.dtype(out), "T": dtype}, backend,
                         inferred=("T",))


@pytest.mark.parametrize("backend", BACKENDS)
def test_binomial_refused(backend):
    f32 = np.dtype(np.float32)
    for shape, counts, probs in [((3,), [1.0, 2.0], [0.5, 0.5, 0.5]),  # incompatible batch dims
                                 ((3, 2), [1.0, 2.0], [0.5]),  # shape does not end with [2]
                                 ((-1,), [1.0], [0.5])]:
        named = {"shape": np.array(shape, np.int32), "seed": SEEDS[0],
                 "counts": np.array(counts, f32), "probs": np.array(probs, f32)}
        conform_bits(BINOMIAL, named, {"dtype": np.dtype(np.int64), "T": f32}, backend,
                     inferred=("T",))


def test_binomial_many_parameters():
    """Hundreds of (count, prob) pairs: BTRS rejections and long inversion runs."""
    rng = np.random.default_rng(7)
    counts = np.floor(10 ** rng.uniform(0, 5, 300))
    probs = rng.uniform(0, 1, 300)
    for dtype in (np.float32, np.float64):
        named = {"shape": np.array([4, 300], np.int32), "seed": SEEDS[2],
                 "counts": counts.astype(dtype), "probs": probs.astype(dtype)}
        conform_bits(BINOMIAL, named, {"dtype": np.dtype(np.float64), "T": np.dtype(dtype)},
                     "numpy", inferred=("T",))


@pytest.mark.parametrize("backend", BACKENDS)
def test_binomial_nan_prob_float_output(backend):
    """A NaN prob gives NaN samples (float outputs; TensorFlow's integer outputs are then
    not defined, see EXCLUSIONS.md)."""
    for out in ("float32", "float64", "float16"):
        named = {"shape": np.array([2, 3], np.int32), "seed": SEEDS[1],
                 "counts": np.array([5.0, 20.0, 100.0], np.float32),
                 "probs": np.array([np.nan, 0.7, 0.5], np.float32)}
        conform_bits(BINOMIAL, named, {"dtype": np.dtype(out), "T": np.dtype(np.float32)},
                     backend, inferred=("T",))


@pytest.mark.parametrize("backend", BACKENDS)
def test_seeded_stateful_multinomial_advances_like_tensorflow(backend):
    """``Multinomial`` with seed/seed2: TensorFlow's first, second, ... call of one kernel."""
    from types import SimpleNamespace

    from raw_oracle import tf
    from sm_notebook.engine.context import KernelContext
    from sm_notebook.engine.ops import registry

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.float32),
                                  tf.TensorSpec([], tf.int32)])  # one trace, one kernel
    def sample(logits, n):
        return tf.raw_ops.Multinomial(logits=logits, num_samples=n, seed=7, seed2=11)

    rng = np.random.default_rng(3)
    calls = [(rng.normal(size=(2, 5)), 3), (rng.normal(size=(2, 5)), 3),
             (rng.normal(size=(0, 5)), 3), (rng.normal(size=(2, 5)), 0), (rng.normal(size=(3, 5)), 9)]
    calls = [(logits.astype(np.float32), n) for logits, n in calls]
    expected = [sample(tf.constant(logits), tf.constant(n)).numpy() for logits, n in calls]
    ctx = KernelContext(backend=backend)
    attrs = {"seed": 7, "seed2": 11, "T": np.dtype(np.float32), "output_dtype": np.dtype(np.int64)}
    node = SimpleNamespace(name="draw", op="Multinomial", attrs=attrs, function=None)
    run = registry.get_kernel("Multinomial").prepare(node, ctx)
    for (logits, n), want in zip(calls, expected):
        got = ctx.to_numpy(run([ctx.asarray(logits), ctx.asarray(np.int32(n))])[0])
        np.testing.assert_array_equal(got, want)
        assert got.dtype == want.dtype
