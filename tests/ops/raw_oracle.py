"""Call a TensorFlow raw op as the oracle and compare our kernel with it, errors included."""
from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import pytest

from harness import on_host, check_op, read_only, run_kernel
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
        low, high = max(info.min, -50), min(info.max, 50)
        return rng.integers(low, high, shape, endpoint=True).astype(dtype)
    if dtype.kind == "c":
        return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


def _resolve(value, env):
    if isinstance(value, str) and value.startswith("$"):
        return env[value[1:]]
    if isinstance(value, list):
        return [_resolve(v, env) for v in value]
    if isinstance(value, dict):
        return {k: _resolve(v, env) for k, v in value.items()}
    return value


def run_program(steps, backend="numpy", **ctx_kwargs):
    """Run ``steps`` with TensorFlow and with our kernels (one shared context); compare tensors.

    A step is ``(output names, op, named inputs, attrs)``; an input ``"$name"`` refers to
    an earlier output. Variant and resource outputs (lists, tables) are not compared; tensors
    are. Where TensorFlow raises at a step, our kernels must raise SavedModelError there.
    Returns our outputs by name.
    """
    from harness import assert_same
    from sm_notebook.engine.context import KernelContext
    from sm_notebook.engine.ops import registry

    ctx = KernelContext(backend=backend, **ctx_kwargs)
    theirs, ours = {}, {}
    for names, op, named, attrs in steps:
        tf_inputs = {k: to_tf(v) for k, v in _resolve(named, theirs).items()}
        try:
            tf_out = getattr(tf.raw_ops, op)(**tf_inputs, **(attrs or {}))
        except (tf.errors.OpError, ValueError) as exc:
            kern = registry.get_kernel(op)
            args = [_to_ours(ctx, kern, v) for v in flat_inputs(_resolve(named, ours))]
            with pytest.raises(SavedModelError):
                kern.fn(ctx, args, dict(attrs or {}))
            return ours, exc
        if tf_out is None:
            tf_out = []
        tf_flat = list(tf_out) if isinstance(tf_out, (list, tuple)) else [tf_out]
        kern = registry.get_kernel(op)
        args = [_to_ours(ctx, kern, v) for v in flat_inputs(_resolve(named, ours))]
        our_flat = list(kern.fn(ctx, args, dict(attrs or {})))
        assert len(our_flat) == len(tf_flat), \
            f"{op}: {len(our_flat)} outputs, TensorFlow gave {len(tf_flat)}"
        compared = []
        for name, t, o in zip(names, tf_flat, our_flat):
            theirs[name], ours[name] = t, o
            if t.dtype in (tf.variant, tf.resource):
                continue
            expected = np.asarray(t.numpy(), dtype=object) if t.dtype == tf.string else t.numpy()
            compared.append((name, ctx.to_numpy(o), expected))
        if op == "LookupTableExportV2":  # export order is unspecified: sort both by key
            (_, our_keys, tf_keys), (_, our_values, tf_values) = compared
            ours_order = np.argsort(our_keys, kind="stable")
            tf_order = np.argsort(tf_keys, kind="stable")
            compared = [("keys", our_keys[ours_order], tf_keys[tf_order]),
                        ("values", our_values[ours_order], tf_values[tf_order])]
        for name, o, expected in compared:
            assert_same(o, expected, what=f"{op} output {name!r} on {backend}")
    return ours, None


def _to_ours(ctx, kern, value):
    """What the engine hands a kernel: numpy for host kernels, backend arrays otherwise;
    numpy arrays read-only, so that a kernel writing into its input raises."""
    if isinstance(value, (np.ndarray, np.generic)):
        return read_only(np.asarray(value) if on_host(kern.op) else ctx.asarray(value))
    if hasattr(value, "__array_namespace__"):
        return read_only(ctx.to_numpy(value)) if on_host(kern.op) else value
    return value


def conform_bits(op, named_inputs, attrs=None, backend="numpy", inferred=()):
    """`conform` with bit equality (floats compared as their bit patterns). Where
    TensorFlow's CPU build has no kernel for the dtypes there is nothing to compare;
    ``inferred``: attrs TensorFlow's Python wrapper infers from the inputs (ours get them)."""
    from harness import assert_bits_equal
    attrs = dict(attrs or {})
    expected = tf_raw(op, named_inputs, {k: v for k, v in attrs.items() if k not in inferred})
    if isinstance(expected, tf.errors.NotFoundError):
        return
    inputs = flat_inputs(named_inputs)
    if isinstance(expected, Exception):
        with pytest.raises(SavedModelError):
            run_kernel(op, inputs, attrs, backend=backend)
        return
    ours = run_kernel(op, inputs, attrs, backend=backend)
    assert len(ours) == len(expected), f"{op}: {len(ours)} outputs, TensorFlow gave {len(expected)}"
    for i, (a, b) in enumerate(zip(ours, expected)):
        assert_bits_equal(a, b, f"{op} {attrs} output {i} on {backend}")
