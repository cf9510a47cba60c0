"""Call a TensorFlow raw op as the oracle and compare our kernel with it, errors included."""
from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import pytest

from harness import check_op, run_kernel
from sm_notebook.errors import SavedModelError

tf = pytest.importorskip("tensorflow")  # noqa: E402


def flatten_outputs(result) -> list[np.ndarray]:
    """TensorFlow's outputs (a tensor, a list, or a namedtuple of either) as flat numpy arrays."""
    if isinstance(result, (list, tuple)):
        flat = []
        for item in result:
            flat.extend(flatten_outputs(item))
        return flat
    if result.dtype == tf.string:
        return [np.asarray(result.numpy(), dtype=object)]
    return [result.numpy()]


def to_tf(value):
    """A numpy input as a TensorFlow constant of the same dtype (bytes objects -> tf.string)."""
    if isinstance(value, list):
        return [to_tf(v) for v in value]
    if isinstance(value, (np.ndarray, np.generic)):
        return tf.constant(value, dtype=tf.string if value.dtype.kind in "OS" else value.dtype)
    return value


def tf_raw(op: str, named_inputs: dict, attrs: dict | None = None):
    """Run ``tf.raw_ops.<op>``; returns flat numpy outputs, or the exception it raised."""
    try:
        named = {k: to_tf(v) for k, v in named_inputs.items()}
        return flatten_outputs(getattr(tf.raw_ops, op)(**named, **(attrs or {})))
    except (tf.errors.OpError, ValueError) as exc:
        return exc


def flat_inputs(named_inputs: dict) -> list:
    flat = []
    for value in named_inputs.values():
        flat.extend(value if isinstance(value, list) else [value])
    return flat


def conform(op, named_inputs, attrs=None, backend="numpy", tolerance=None, our_attrs=None):
    """Our kernel equals TensorFlow on these inputs; where TensorFlow refuses, so do we."""
    expected = tf_raw(op, named_inputs, attrs)
    inputs = flat_inputs(named_inputs)
    attrs = dict(attrs or {}, **(our_attrs or {}))
    if isinstance(expected, Exception):
        with pytest.raises(SavedModelError):
            run_kernel(op, inputs, attrs, backend=backend)
        return expected
    check_op(op, inputs, attrs, expected, backend=backend, tolerance=tolerance)
    return expected


def random_array(rng, shape, dtype):
    """Random values of ``dtype`` (bytes objects for strings), small enough for exact sums."""
    dtype = np.dtype(dtype) if dtype is not object else np.dtype(object)
    if dtype.kind == "O":
        letters = np.array(list(b"abcdefgh"), np.uint8)
        return np.array([bytes(rng.choice(letters, rng.integers(0, 4)).tolist())
                         for _ in range(int(np.prod(shape)))], dtype=object).reshape(shape)
    if dtype.kind == "b":
        return rng.integers(0, 2, shape).astype(bool)
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return rng.integers(max(info.min, -50), min(info.max, 50), shape, endpoint=True).astype(dtype)
    if dtype.kind == "c":
        return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)
