"""StringNGrams against tf.raw_ops (padding, preserve_short_sequences, refusals)."""
from __future__ import annotations

import numpy as np
import pytest

from harness import BACKENDS
from raw_oracle import conform

WORDS = np.array([b"the", b"cat", b"sat", b"\xc3\xa9t\xc3\xa9", b"", b"on", b"mat"], object)


@pytest.fixture(params=BACKENDS)
def backend(request):
    return request.param


@pytest.mark.parametrize("splits", [[0, 3, 3, 7], [0, 7], [0, 1, 2, 2], [0, 0], [], [1, 7],
                                    [0, 5, 3, 7], [0, 3, 6]])
@pytest.mark.parametrize("widths", [[1, 2], [2], [3, 1], [5], []])
@pytest.mark.parametrize("pad", [(b"", b"", 0), (b"<s>", b"</s>", -1), (b"L", b"R", 1),
                                 (b"L", b"R", 3)])
@pytest.mark.parametrize("preserve_short", [False, True])
def test_string_ngrams(backend, splits, widths, pad, preserve_short):
    data = WORDS if not splits or splits[-1] else WORDS[:0]
    left, right, width = pad
    for split_dtype in (np.int64, np.int32):
        conform("StringNGrams", {"data": data, "data_splits": np.asarray(splits, split_dtype)},
                {"separator": "+", "ngram_widths": widths, "left_pad": left, "right_pad": right,
                 "pad_width": width, "preserve_short_sequences": preserve_short},
                backend=backend)


def test_string_ngrams_refuses_width_zero(backend):
    conform("StringNGrams", {"data": WORDS, "data_splits": np.asarray([0, 7], np.int64)},
            {"separator": " ", "ngram_widths": [0], "left_pad": "", "right_pad": "",
             "pad_width": 0, "preserve_short_sequences": False}, backend=backend)


@pytest.mark.parametrize("data", [
    np.array([b"a", b"", b"hello world" * 9], object), np.array([[b"a", b"b"], [b"", b"c"]], object),
    np.array([[[b"x"]], [[b"y"]]], object), np.zeros((0, 3), object),
    np.arange(12, dtype=np.int32).reshape(3, 4), np.float64([[1.5, -0.0]]),
    np.array([True, False]), np.zeros((2, 0), np.int64), np.arange(40, dtype=np.uint8),
])
def test_fingerprint(backend, data):
    conform("Fingerprint", {"data": data, "method": np.asarray(b"farmhash64", object)},
            backend=backend)


@pytest.mark.parametrize("method,data", [(b"md5", np.array([b"a"], object)),
                                         (b"farmhash64", np.array(b"a", object))])
def test_fingerprint_refusals(backend, method, data):
    conform("Fingerprint", {"data": data, "method": np.asarray(method, object)}, backend=backend)
