"""ReverseSequence against tf.raw_ops."""
from __future__ import annotations

import numpy as np
import pytest

from harness import BACKENDS
from raw_oracle import conform, random_array


@pytest.fixture(params=BACKENDS)
def backend(request):
    return request.param


@pytest.mark.parametrize("dtype", [np.float32, np.int64, object], ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("shape,seq_dim,batch_dim,lengths", [
    ((3, 5, 2), 1, 0, [5, 0, 2]),
    ((1, 4), 1, 0, [3]),
    ((4, 3, 2), 0, 1, [1, 4, 2]),
    ((2, 1, 3), -2, 2, [1, 0, 1]),
    ((0, 3), 1, 0, []),
    ((2, 0), 1, 0, [0, 0]),
    ((2, 3), 1, 0, [4, 1]),       # longer than the sequence: refused
    ((2, 3), 1, 0, [1]),          # one length for two rows: refused
    ((2, 3), 1, 1, [1, 1]),       # seq_dim == batch_dim: refused
])
def test_reverse_sequence(backend, dtype, shape, seq_dim, batch_dim, lengths):
    x = random_array(np.random.default_rng(len(shape)), shape, dtype)
    for index_dtype in (np.int32, np.int64):
        conform("ReverseSequence", {"input": x, "seq_lengths": np.asarray(lengths, index_dtype)},
                {"seq_dim": seq_dim, "batch_dim": batch_dim}, backend=backend)
