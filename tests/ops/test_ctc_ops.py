"""CTC decoders against TensorFlow: the same decoded paths, log probabilities within a
rounding-error bound."""
from __future__ import annotations

import numpy as np
import pytest

from harness import BACKENDS, assert_bits_equal, run_kernel
from raw_oracle import flat_inputs, tf_raw
from sm_notebook.errors import SavedModelError


def _cases(seed, count):
    rng = np.random.default_rng(seed)
    for trial in range(count):
        steps, batch, classes = int(rng.integers(1, 12)), int(rng.integers(1, 4)), int(rng.integers(2, 7))
        dtype = (np.float32, np.float64)[trial % 2]
        if trial % 3 == 0:  # log probabilities, some very small
            logits = np.log(rng.dirichlet(np.full(classes, 0.3), size=(steps, batch)))
        else:
            logits = rng.standard_normal((steps, batch, classes)) * 2
        lengths = rng.integers(0, steps + 1, batch).astype(np.int32)
        width = int(rng.integers(1, 8))
        yield logits.astype(dtype), lengths, width, int(rng.integers(1, width + 1))


def _tolerance(logits):
    """A rounding-error bound for a log probability summed over the steps: each step adds
    a few rounded operations on values no larger than 1 + max|logit| (the normaliser),
    in float32 at best (TensorFlow's LogSumExp calls expf/log1pf for float64 too)."""
    eps = np.finfo(np.float32).eps
    scale = 1.0 + float(np.max(np.abs(logits[np.isfinite(logits)]), initial=0.0))
    bound = 8 * (logits.shape[0] + 1) * eps * scale
    return dict(rtol=bound, atol=bound)


def _compare(op, named, attrs, backend, logits):
    expected = tf_raw(op, named, attrs)
    if isinstance(expected, Exception):
        with pytest.raises(SavedModelError):
            run_kernel(op, flat_inputs(named), attrs, backend=backend)
        return
    ours = run_kernel(op, flat_inputs(named), attrs, backend=backend)
    assert len(ours) == len(expected)
    for i, (a, b) in enumerate(zip(ours[:-1], expected[:-1])):
        assert_bits_equal(a, b, f"{op} {attrs} output {i} on {backend}")
    a, b = ours[-1], expected[-1]
    assert a.dtype == b.dtype and a.shape == b.shape
    np.testing.assert_allclose(a, b, err_msg=f"{op} {attrs} log_probability on {backend}",
                               **_tolerance(logits))


@pytest.mark.parametrize("backend", BACKENDS)
def test_greedy_decoder(backend):
    for logits, lengths, _, _ in _cases(11, 40):
        for merge in (False, True):
            for blank in (-1, 0, -2):
                if -blank > logits.shape[2]:
                    continue
                _compare("CTCGreedyDecoder", {"inputs": logits, "sequence_length": lengths},
                         {"merge_repeated": merge, "blank_index": blank}, backend, logits)


@pytest.mark.parametrize("backend", BACKENDS)
def test_beam_search_decoder(backend):
    for logits, lengths, width, paths in _cases(12, 40):
        for merge in (False, True):
            _compare("CTCBeamSearchDecoder", {"inputs": logits, "sequence_length": lengths},
                     {"beam_width": width, "top_paths": paths, "merge_repeated": merge},
                     backend, logits)


def test_beam_search_decoder_wide_beam():
    """A beam wider than the alphabet, long sequences: many evictions and re-entries."""
    rng = np.random.default_rng(13)
    logits = (rng.standard_normal((30, 3, 8)) * 1.5).astype(np.float32)
    lengths = np.array([30, 17, 1], np.int32)
    for width, paths in ((25, 5), (3, 3), (1, 1)):
        _compare("CTCBeamSearchDecoder", {"inputs": logits, "sequence_length": lengths},
                 {"beam_width": width, "top_paths": paths, "merge_repeated": False}, "numpy", logits)


@pytest.mark.parametrize("backend", BACKENDS)
def test_refusals(backend):
    logits = np.zeros((3, 2, 4), np.float32)
    for op, attrs in (("CTCGreedyDecoder", {}),
                      ("CTCBeamSearchDecoder", {"beam_width": 2, "top_paths": 1})):
        for lengths in (np.array([4, 1], np.int32), np.array([1], np.int32)):  # too long; wrong batch
            _compare(op, {"inputs": logits, "sequence_length": lengths}, attrs, backend, logits)
    _compare("CTCGreedyDecoder", {"inputs": logits, "sequence_length": np.array([1, 1], np.int32)},
             {"blank_index": 4}, backend, logits)
    _compare("CTCBeamSearchDecoder", {"inputs": logits, "sequence_length": np.array([3, 0], np.int32)},
             {"beam_width": 2, "top_paths": 3}, backend, logits)  # more paths than the beam
    _compare("CTCBeamSearchDecoder", {"inputs": logits, "sequence_length": np.array([3, 0], np.int32)},
             {"beam_width": 3, "top_paths": 2}, backend, logits)  # fewer leaves than paths
