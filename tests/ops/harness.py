"""Run one kernel of ours and the same TensorFlow raw op, and compare.

Used by every op conformance module: TensorFlow is the oracle.
"""
from __future__ import annotations

import numpy as np
import pytest

from sm_notebook.engine.context import KernelContext
from sm_notebook.engine.ops import registry

BACKENDS = ["numpy", "array_api_strict"]

FLOAT_TOLERANCE = {
    np.dtype("float32"): dict(rtol=1e-5, atol=1e-6),
    np.dtype("float64"): dict(rtol=1e-10, atol=1e-12),
    np.dtype("float16"): dict(rtol=1e-3, atol=1e-3),
    np.dtype("complex64"): dict(rtol=1e-5, atol=1e-6),
    np.dtype("complex128"): dict(rtol=1e-10, atol=1e-12),
}


def read_only(value):
    """``value`` as the engine guarantees kernels see it: numpy arrays (also inside lists)
    become read-only views, so a kernel that writes into its input raises."""
    if isinstance(value, np.generic):
        value = np.asarray(value)
    if isinstance(value, np.ndarray):
        view = value.view()
        view.flags.writeable = False
        return view
    if isinstance(value, list):
        return [read_only(v) for v in value]
    return value


def on_host(op: str) -> bool:
    """Whether the engine runs ``op`` on the host (the op table's ``host`` flag)."""
    from sm_notebook import opdefs
    info = opdefs.get(op)
    return info is not None and "host" in info.flags


def run_kernel(op: str, inputs, attrs=None, backend="numpy", **ctx_kwargs):
    """Run our kernel for ``op`` on ``backend`` with read-only numpy inputs; returns a list
    of numpy arrays."""
    import sm_notebook.engine.ops  # noqa: F401  (registers every kernel)

    ctx = KernelContext(backend=backend, **ctx_kwargs)
    kern = registry.get_kernel(op)
    if on_host(op):
        args = [np.asarray(x) if not isinstance(x, np.ndarray) else x for x in inputs]
    else:
        args = [ctx.asarray(x) if isinstance(x, (np.ndarray, np.generic, int, float, bool, list))
                else x for x in inputs]
    args = [read_only(x) for x in args]
    outputs = kern.fn(ctx, args, dict(attrs or {}))
    return [ctx.to_numpy(o) for o in outputs]


def assert_same(ours, expected, tolerance=None, what=""):
    """Exact for ints/bools/strings, within FLOAT_TOLERANCE (or ``tolerance``) for floats."""
    expected = np.asarray(expected)
    ours = np.asarray(ours)
    assert ours.shape == expected.shape, f"{what}: shape {ours.shape} != TensorFlow's {expected.shape}"
    assert ours.dtype == expected.dtype, f"{what}: dtype {ours.dtype} != TensorFlow's {expected.dtype}"
    tol = tolerance or FLOAT_TOLERANCE.get(expected.dtype)
    if tol is not None:
        np.testing.assert_allclose(ours, expected, err_msg=what, equal_nan=True, **tol)
    elif expected.dtype.name == "bfloat16":
        np.testing.assert_allclose(ours.astype(np.float32), expected.astype(np.float32),
                                   rtol=1e-2, atol=1e-2, err_msg=what)
    else:
        np.testing.assert_array_equal(ours, expected, err_msg=what)


def check_op(op, inputs, attrs, tf_outputs, backend="numpy", tolerance=None):
    """Assert our kernel reproduces TensorFlow's outputs (a list of arrays/tensors)."""
    if backend != "numpy":
        pytest.importorskip(backend)
    ours = run_kernel(op, inputs, attrs, backend=backend)
    expected = [np.asarray(t) for t in tf_outputs]
    assert len(ours) == len(expected), f"{op}: {len(ours)} outputs, TensorFlow gave {len(expected)}"
    for i, (a, b) in enumerate(zip(ours, expected)):
        assert_same(a, b, tolerance, what=f"{op} output {i} on {backend}")


def assert_bits_equal(ours, expected, what=""):
    """Same dtype, shape and bit pattern (floats compared as unsigned integers: NaN
    payloads and the sign of zero included)."""
    ours, expected = np.asarray(ours), np.asarray(expected)
    assert ours.dtype == expected.dtype and ours.shape == expected.shape, \
        f"{what}: {ours.dtype}{ours.shape} != TensorFlow's {expected.dtype}{expected.shape}"
    as_bits = np.dtype(f"u{expected.dtype.itemsize}") if expected.dtype.kind in "fcV" else expected.dtype
    mismatch = np.flatnonzero(ours.view(as_bits) != expected.view(as_bits))
    assert mismatch.size == 0, (f"{what}: {mismatch.size} of {expected.size} differ, first at "
                                f"{mismatch[:3]}: {ours.reshape(-1)[mismatch[:3]]} != "
                                f"{expected.reshape(-1)[mismatch[:3]]}")
