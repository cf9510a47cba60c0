"""BesselI0e, BesselI1e, Igamma, Igammac and Betainc against tf.raw_ops, with the error bound
taken from a 50-digit mpmath reference: ours may be off the exact value by at most 4 times
TensorFlow's own error, plus 4 ulp of the result's dtype (its rounding), plus the float64
evaluation's own error: ``exp(E)`` of a sum of logarithms E with terms of total size L
carries a relative error of about ``(2 L + 8) eps`` (each term rounded once, exp's
condition number |E| <= L), and lgamma's documented 1e-14 per call."""
from __future__ import annotations

import numpy as np
import pytest

from harness import BACKENDS, run_kernel
from raw_oracle import tf_raw

mpmath = pytest.importorskip("mpmath")
mpmath.mp.dps = 50

EXACT = {
    "BesselI0e": lambda x: mpmath.exp(-abs(x)) * mpmath.besseli(0, x),
    "BesselI1e": lambda x: mpmath.exp(-abs(x)) * mpmath.besseli(1, x),
    "Igamma": lambda a, x: mpmath.gammainc(a, 0, x, regularized=True),
    "Igammac": lambda a, x: mpmath.gammainc(a, x, mpmath.inf, regularized=True),
    "Betainc": lambda a, b, x: mpmath.betainc(a, b, 0, x, regularized=True),
}
NAMES = {"BesselI0e": ("x",), "BesselI1e": ("x",), "Igamma": ("a", "x"), "Igammac": ("a", "x"),
         "Betainc": ("a", "b", "x")}


def exact(op, args, dtype):
    flat = np.broadcast_arrays(*[np.asarray(a, np.float64) for a in args])
    values = [float(EXACT[op](*[mpmath.mpf(float(v)) for v in point]))
              for point in zip(*[f.reshape(-1) for f in flat])]
    return np.array(values, np.float64).reshape(flat[0].shape)


def log_terms(op, args) -> np.ndarray:
    """L: the total size of the logarithms the float64 evaluation adds before exp()."""
    from math import lgamma, log
    flat = np.broadcast_arrays(*[np.asarray(a, np.float64) for a in args])
    sizes = []
    for point in zip(*[f.reshape(-1) for f in flat]):
        if op.startswith("Bessel"):
            sizes.append(abs(point[0]))
        elif op.startswith("Igamma"):
            a, x = point
            sizes.append(abs(a * log(x)) + abs(x) + abs(lgamma(a)) if x > 0 and a > 0 else 0.0)
        else:
            a, b, x = point
            ok = a > 0 and b > 0 and 0 < x < 1
            sizes.append(abs(lgamma(a + b)) + abs(lgamma(a)) + abs(lgamma(b)) + abs(a * log(x))
                         + abs(b * log(1 - x)) if ok else 0.0)
    return np.array(sizes).reshape(flat[0].shape)


def check(op, args, backend, dtype):
    args = [np.asarray(a, dtype) for a in args]
    ours = run_kernel(op, args, {}, backend=backend)[0]
    theirs = tf_raw(op, dict(zip(NAMES[op], args)))[0]
    assert ours.dtype == theirs.dtype and ours.shape == theirs.shape
    truth = exact(op, args, dtype)
    ulp = np.spacing(np.abs(truth).astype(dtype)).astype(np.float64)
    evaluation = ((2 * log_terms(op, args) + 8) * np.finfo(np.float64).eps + 3e-14) * np.abs(truth)
    bound = 4 * np.abs(theirs.astype(np.float64) - truth) + 4 * ulp + evaluation
    error = np.abs(ours.astype(np.float64) - truth)
    assert np.all(error <= bound), (op, args, ours, theirs, truth)


@pytest.fixture(params=BACKENDS)
def backend(request):
    return request.param


DTYPES = [np.float32, np.float64]


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("op", ["BesselI0e", "BesselI1e"])
def test_scaled_bessel(backend, op, dtype):
    x = np.array([0.0, 1e-8, -0.5, 1.0, 2.5, -7.0, 15.0, 29.9, 30.1, -45.0, 100.0, 700.0, 1e5])
    check(op, [x], backend, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("op", ["Igamma", "Igammac"])
def test_incomplete_gamma(backend, op, dtype):
    a = np.array([0.5, 1.0, 2.0, 3.5, 10.0, 0.1, 50.0, 100.0, 1.0, 5.0])
    x = np.array([0.2, 1.0, 5.0, 1.0, 9.0, 3.0, 40.0, 130.0, 0.0, 60.0])
    check(op, [a, x], backend, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_incomplete_beta(backend, dtype):
    a = np.array([0.5, 1.0, 2.0, 5.0, 10.0, 0.2, 30.0, 1.0, 3.0])
    b = np.array([0.5, 3.0, 2.0, 1.0, 20.0, 0.9, 30.0, 1.0, 7.0])
    x = np.array([0.3, 0.1, 0.5, 0.99, 0.4, 0.01, 0.55, 0.0, 1.0])
    check("Betainc", [a, b, x], backend, dtype)


@pytest.mark.parametrize("op, args", [
    ("Igamma", [[-1.0, 0.0, 2.0, np.nan], [1.0, 1.0, -1.0, 1.0]]),
    ("Igammac", [[-1.0, 2.0, 2.0], [1.0, -1.0, np.inf]]),
    ("Betainc", [[1.0, -1.0, 1.0, 1.0], [1.0, 1.0, 0.0, 1.0], [0.5, 0.5, 0.5, 1.5]]),
    ("BesselI0e", [[np.inf, -np.inf, np.nan]]),
])
def test_domain_edges_match_tensorflow(backend, op, args):
    args = [np.asarray(a, np.float64) for a in args]
    ours = run_kernel(op, args, {}, backend=backend)[0]
    theirs = tf_raw(op, dict(zip(NAMES[op], args)))[0]
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(theirs))
    infinite = np.any([np.isinf(np.broadcast_to(a, ours.shape)) for a in args], axis=0)
    np.testing.assert_array_equal(ours[infinite], theirs[infinite])  # the limits, exactly
    finite = ~np.isnan(theirs) & ~infinite
    if finite.any():
        check(op, [np.broadcast_to(a, ours.shape)[finite] for a in args], backend, np.float64)


def test_shapes_broadcast_and_empty(backend):
    a = np.full((2, 3), 2.0, np.float32)
    x = np.array(1.5, np.float32)
    ours = run_kernel("Igamma", [a, x], {}, backend=backend)[0]
    assert ours.shape == (2, 3)
    assert run_kernel("BesselI1e", [np.zeros((0, 4), np.float32)], {}, backend=backend)[0].shape == (0, 4)
