"""Call ``tf.raw_ops`` with positional inputs (named from the OpDef) and compare with our kernel.

Shared by test_math_ops, test_nn_ops and test_image_ops.
"""
from __future__ import annotations

import inspect

import ml_dtypes
import numpy as np
import pytest

from harness import assert_same, check_op, run_kernel
from sm_notebook.errors import SavedModelError

tf = pytest.importorskip("tensorflow")
from tensorflow.python.framework import op_def_registry  # noqa: E402

BFLOAT16 = np.dtype(ml_dtypes.bfloat16)


def _tf_attr(value):
    if isinstance(value, np.dtype) or (isinstance(value, type) and issubclass(value, np.generic)):
        return tf.as_dtype(np.dtype(value))
    return value


def _tensor(x):
    """A tensor of x's exact dtype (TensorFlow turns 0-d complex128 arrays into complex64)."""
    if isinstance(x, list):
        return [_tensor(v) for v in x]
    x = np.asarray(x)
    return tf.convert_to_tensor(x, dtype=tf.as_dtype(x.dtype))


def tf_outputs(op: str, inputs: list, attrs: dict | None = None) -> list[np.ndarray]:
    """TensorFlow's outputs of ``op``; a list input (AddN, Einsum) is passed as a Python list."""
    function = getattr(tf.raw_ops, op)
    input_count = len(op_def_registry.get(op).input_arg)
    names = list(inspect.signature(function).parameters)[:input_count]  # Python renames some
    kwargs = dict(zip(names, (_tensor(x) for x in inputs)))
    kwargs.update({k: _tf_attr(v) for k, v in (attrs or {}).items()})
    result = function(**kwargs)
    if not isinstance(result, (list, tuple)):
        result = [result]
    return [t.numpy() for t in result]


def tf_supports(op, inputs, attrs=None) -> bool:
    """Whether TensorFlow's CPU build has a kernel for these input dtypes."""
    try:
        tf_outputs(op, inputs, attrs)
        return True
    except tf.errors.NotFoundError:
        return False
    except tf.errors.InvalidArgumentError as exc:
        if "allowed values" in str(exc):
            return False
        raise


def skip_unless_tf_supports(op, inputs, attrs=None):
    if not tf_supports(op, inputs, attrs):
        dtypes = sorted({np.asarray(x).dtype.name for x in _flat(inputs)})
        pytest.skip(f"TensorFlow's CPU build has no {op} kernel for {dtypes} (not an exclusion)")


def _flat(inputs):
    flat = []
    for value in inputs:
        flat.extend(value if isinstance(value, list) else [value])
    return flat


def compare(op, inputs, attrs=None, backend="numpy", tolerance=None, tf_only=None, values_of=None):
    """Our kernel reproduces TensorFlow; ``tf_only`` attrs go to TensorFlow alone.

    ``values_of``: the output indexes whose values are compared (default all); the others
    are checked for dtype only (scratch outputs whose contents and shape vary between
    TensorFlow's own kernels).
    """
    attrs = dict(attrs or {})
    expected = tf_outputs(op, inputs, {**attrs, **(tf_only or {})})
    if values_of is None:
        check_op(op, _flat(inputs), attrs, expected, backend=backend, tolerance=tolerance)
        return expected
    ours = run_kernel(op, _flat(inputs), attrs, backend=backend)
    assert len(ours) == len(expected)
    for i, (a, b) in enumerate(zip(ours, expected)):
        if i in values_of:
            assert_same(a, b, tolerance, what=f"{op} output {i} on {backend}")
        else:
            assert a.dtype == b.dtype, f"{op} output {i} on {backend}"
    return expected


def compare_error(op, inputs, attrs=None, backend="numpy"):
    """TensorFlow refuses these inputs, and so do we (with a SavedModelError)."""
    with pytest.raises((tf.errors.OpError, ValueError)):
        tf_outputs(op, inputs, attrs)
    with pytest.raises(SavedModelError):
        run_kernel(op, _flat(inputs), dict(attrs or {}), backend=backend)


def random(rng, shape, dtype, low=-3.0, high=3.0):
    """Uniform random values of ``dtype`` in [low, high) (integers: a small range)."""
    dtype = np.dtype(dtype)
    if dtype.kind == "b":
        return np.asarray(rng.integers(0, 2, shape)).astype(bool)
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return np.asarray(rng.integers(max(info.min, int(low) * 10), min(info.max, int(high) * 10),
                                       shape, endpoint=True)).astype(dtype)
    if dtype.kind == "c":
        return np.asarray(rng.uniform(low, high, shape) + 1j * rng.uniform(low, high, shape)).astype(dtype)
    return np.asarray(rng.uniform(low, high, shape)).astype(dtype)
