"""XlaDynamicSlice / XlaDynamicUpdateSlice against tf.raw_ops (TensorFlow runs them on CPU
outside XLA too), including the clamping of start indices."""
from __future__ import annotations

import numpy as np
import pytest

from harness import BACKENDS, check_op
from raw_oracle import random_array, tf

gen_xla_ops = pytest.importorskip("tensorflow.compiler.tf2xla.ops.gen_xla_ops")


def conform(op, named_inputs, backend):
    """tf.raw_ops lacks the Xla* ops; their generated wrappers call the same kernels."""
    wrapper = {"XlaDynamicUpdateSlice": gen_xla_ops.xla_dynamic_update_slice,
               "XlaDynamicSlice": gen_xla_ops.xla_dynamic_slice}[op]
    expected = wrapper(**{k: tf.constant(v) for k, v in named_inputs.items()}).numpy()
    check_op(op, list(named_inputs.values()), {}, [expected], backend=backend)


@pytest.fixture(params=BACKENDS)
def backend(request):
    return request.param


@pytest.mark.parametrize("dtype", [np.float32, np.int32, np.float16], ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("shape,update_shape,starts", [
    ((2, 8, 4), (2, 1, 4), [0, 3, 0]),
    ((2, 8, 4), (2, 1, 4), [0, 9, 0]),     # past the end: clamped to 7
    ((2, 8, 4), (2, 3, 4), [-4, -1, 2]),   # negative: clamped to 0
    ((1, 1), (1, 1), [0, 0]),
    ((3, 0), (3, 0), [1, 0]),
    ((5,), (0,), [2]),
])
def test_dynamic_update_slice(backend, dtype, shape, update_shape, starts):
    rng = np.random.default_rng(len(shape) + sum(starts))
    for index_dtype in (np.int32, np.int64):
        conform("XlaDynamicUpdateSlice", {
            "input": random_array(rng, shape, dtype), "update": random_array(rng, update_shape, dtype),
            "indices": np.asarray(starts, index_dtype)}, backend)


@pytest.mark.parametrize("shape,starts,sizes", [
    ((4, 6), [1, 2], [2, 3]),
    ((4, 6), [3, 5], [2, 3]),     # clamped
    ((4, 6), [-1, -7], [4, 6]),   # clamped to 0
    ((3,), [0], [0]),
])
def test_dynamic_slice(backend, shape, starts, sizes):
    x = random_array(np.random.default_rng(0), shape, np.float32)
    conform("XlaDynamicSlice", {"input": x, "start_indices": np.asarray(starts, np.int32),
                                "size_indices": np.asarray(sizes, np.int32)}, backend)
