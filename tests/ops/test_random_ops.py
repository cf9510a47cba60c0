"""Random kernels against TensorFlow's CPU kernels: every output bit for bit."""
from __future__ import annotations

from types import SimpleNamespace

import ml_dtypes
import numpy as np
import pytest

from harness import BACKENDS, assert_bits_equal, run_kernel
from raw_oracle import conform, conform_bits, tf
from sm_notebook.engine.context import KernelContext
from sm_notebook.engine.ops import registry
from sm_notebook.errors import SavedModelError

FLOATS = [np.dtype(np.float32), np.dtype(np.float64), np.dtype(np.float16),
          np.dtype(ml_dtypes.bfloat16)]
SHAPES = [(0,), (1,), (3,), (5,), (2, 7), (4, 0, 3), (3, 3, 3), (1001,)]
SEEDS = [np.array([1, 2], np.int32), np.array([-7, 2**31 - 1], np.int32),
         np.array([2**40 + 3, -(2**62)], np.int64), np.array([0, 0], np.int64)]
U64 = np.uint64


@pytest.mark.parametrize("backend", BACKENDS)
def test_key_counter_and_alg(backend):
    for seed in SEEDS:
        conform_bits("StatelessRandomGetKeyCounter", {"seed": seed}, {}, backend)
        conform_bits("StatelessRandomGetKeyCounterAlg", {"seed": seed}, {}, backend)
    conform_bits("StatelessRandomGetAlg", {}, {}, backend)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("op", ["StatelessRandomUniform", "StatelessRandomNormal",
                                "StatelessTruncatedNormal"])
def test_stateless_v1_floats(op, backend):
    for dtype in FLOATS:
        for shape in SHAPES:
            for seed in SEEDS[:3]:
                named = {"shape": np.array(shape, np.int32), "seed": seed}
                conform_bits(op, named, {"dtype": dtype}, backend)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("op", ["StatelessRandomUniformV2", "StatelessRandomNormalV2",
                                "StatelessTruncatedNormalV2"])
def test_stateless_v2_floats(op, backend):
    counters = [np.array([0, 0], U64), np.array([2**64 - 3, 5, 9], U64),  # carry into the high word
                np.array([2**64 - 1, 2**64 - 1], U64)]  # the 128-bit counter wraps
    for dtype in FLOATS:
        for alg in (1, 3):
            for counter in counters:
                for shape in [(0,), (1,), (7,), (3, 5)]:
                    named = {"shape": np.array(shape, np.int64), "key": np.array([12345], U64),
                             "counter": counter, "alg": np.int32(alg)}
                    conform_bits(op, named, {"dtype": dtype}, backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_stateless_ints(backend):
    ranges = {np.dtype(np.int32): [(0, 10), (-5, 3), (-2**31, 2**31 - 1), (7, 8), (-100, 2**30 + 17)],
              np.dtype(np.int64): [(0, 10), (-2**63, 2**63 - 1), (-3, 2**40), (2**62, 2**62 + 3)]}
    for dtype, bounds in ranges.items():
        for low, high in bounds:
            for shape in [(0,), (1,), (5,), (3, 4), (257,)]:
                bounds_named = {"minval": np.array(low, dtype), "maxval": np.array(high, dtype)}
                conform_bits("StatelessRandomUniformInt",
                           {"shape": np.array(shape, np.int32), "seed": SEEDS[1], **bounds_named},
                           {"dtype": dtype}, backend, inferred=("dtype",))
                conform_bits("StatelessRandomUniformIntV2",
                           {"shape": np.array(shape, np.int32), "key": np.array([99], U64),
                            "counter": np.array([3, 2**63], U64), "alg": np.int32(1), **bounds_named},
                           {"dtype": dtype}, backend, inferred=("dtype",))
    for dtype in (np.int32, np.int64, np.uint32, np.uint64):
        for shape in [(0,), (1,), (6,), (2, 5)]:
            conform_bits("StatelessRandomUniformFullInt",
                       {"shape": np.array(shape, np.int32), "seed": SEEDS[2]},
                       {"dtype": np.dtype(dtype)}, backend)
            conform_bits("StatelessRandomUniformFullIntV2",
                       {"shape": np.array(shape, np.int32), "key": np.array([2**63 + 1], U64),
                        "counter": np.array([7, 0], U64), "alg": np.int32(3)},
                       {"dtype": np.dtype(dtype)}, backend)


@pytest.mark.parametrize("op", ["StatelessRandomUniform", "StatelessRandomNormal",
                                "StatelessTruncatedNormal"])
def test_more_than_a_million_values(op):
    """Outputs spanning many of TensorFlow's shards and many of our chunks."""
    for dtype in (np.float32, np.float64):
        named = {"shape": np.array([1031, 1021], np.int32), "seed": np.array([5, 6], np.int64)}
        conform_bits(op, named, {"dtype": np.dtype(dtype)}, "numpy")


@pytest.mark.parametrize("backend", BACKENDS)
def test_refusals(backend):
    shape = np.array([3], np.int32)
    f32 = {"dtype": np.dtype(np.float32)}
    cases = [
        ("StatelessRandomUniform", {"shape": shape, "seed": np.array([1, 2, 3], np.int32)}, f32),
        ("StatelessRandomNormal", {"shape": np.array([-1], np.int32), "seed": SEEDS[0]}, f32),
    ]
    conform("StatelessRandomUniformInt", {"shape": shape, "seed": SEEDS[0], "minval": np.int32(4),
                                          "maxval": np.int32(4)},
            backend=backend, our_attrs={"dtype": np.dtype(np.int32)})
    for alg, counter in ((2, [1, 2]), (7, [1, 2])):  # ThreeFry; unknown
        cases.append(("StatelessRandomUniformV2", {"shape": shape, "key": np.array([1], U64),
                                                   "counter": np.array(counter, U64),
                                                   "alg": np.int32(alg)}, f32))
    cases.append(("StatelessRandomNormalV2", {"shape": shape, "key": np.array([1, 2], U64),
                                              "counter": np.array([1, 2], U64),
                                              "alg": np.int32(1)}, f32))
    for op, named, attrs in cases:
        conform(op, named, attrs, backend=backend)  # TensorFlow raises, so must we


def test_short_counter_is_refused():
    """TensorFlow checks the counter's length against the algorithm id (1 for Philox)
    instead of Philox's counter size (2), then reads past the end of a one-element counter;
    that is refused here."""
    with pytest.raises(SavedModelError, match="counter must be a vector with length at least 2"):
        run_kernel("StatelessRandomUniformV2", [np.array([3], np.int32), np.array([1], U64),
                                                np.array([1], U64), np.int32(1)],
                   {"dtype": np.dtype(np.float32)})


STATEFUL = [("RandomUniform", {"dtype": np.dtype(np.float32)}, []),
            ("RandomUniform", {"dtype": np.dtype(np.float64)}, []),
            ("RandomStandardNormal", {"dtype": np.dtype(np.float32)}, []),
            ("RandomStandardNormal", {"dtype": np.dtype(np.float16)}, []),
            ("TruncatedNormal", {"dtype": np.dtype(np.float64)}, []),
            ("RandomUniformInt", {"Tout": np.dtype(np.int64)}, [np.int64(-9), np.int64(2**40)])]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("op, attrs, bounds", STATEFUL, ids=[f"{s[0]}-{i}" for i, s in enumerate(STATEFUL)])
def test_seeded_stateful_ops_advance_like_tensorflow(op, attrs, bounds, backend):
    """A seeded stateful kernel gives TensorFlow's first, second, ... call (one kernel
    instance, as in one tf.function or Session) for the same seeds."""
    if backend != "numpy":
        pytest.importorskip(backend)
    tf_attrs = {k: tf.as_dtype(v) for k, v in attrs.items() if k != "Tout"}  # inferred from minval

    @tf.function
    def sample(shape):
        extra = {"minval": bounds[0], "maxval": bounds[1]} if bounds else {}
        return getattr(tf.raw_ops, op)(shape=shape, seed=7, seed2=11, **extra, **tf_attrs)

    shapes = [[5, 3], [5, 3], [0, 2], [7, 1]]
    expected = [sample(tf.constant(s)).numpy() for s in shapes]
    ctx = KernelContext(backend=backend)
    node = SimpleNamespace(name="noise", op=op, attrs={"seed": 7, "seed2": 11, **attrs}, function=None)
    run = registry.get_kernel(op).prepare(node, ctx)
    for s, want in zip(shapes, expected):
        got = ctx.to_numpy(run([ctx.asarray(np.array(s, np.int32))] +
                               [ctx.asarray(b) for b in bounds])[0])
        assert_bits_equal(got, want, f"{op} call with shape {s}")


def test_unseeded_stateful_op_is_refused():
    with pytest.raises(SavedModelError, match="seed=0 and seed2=0"):
        run_kernel("RandomUniform", [np.array([2], np.int32)], {"dtype": np.dtype(np.float32)})
