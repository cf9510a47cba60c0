"""Erfinv and Ndtri against TensorFlow.

Ours solve Phi(z) = p to the accuracy of the float64 erf/erfc underneath (relative error
delta = 1e-13, see engine/ops/_special.py), which moves z by at most 1.2 delta |z| (the
factor is max Q(z) / (z phi(z)) over the tails, 1.17 at z = 0.674; delta |z| in the centre);
then rounded to the dtype (1/2 ulp). TensorFlow's Ndtri is Cephes' (float32: a few ulps).
TensorFlow's Erfinv evaluates ndtri((y + 1) / 2) / sqrt 2: rounding (y + 1) / 2 moves its
result by up to eps (1 + |y|) / (2 sqrt 2 phi(sqrt 2 x)), which is the large part of the
bound near y = 0 and +-1 (ours keeps full relative accuracy there, see EXCLUSIONS.md).
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from harness import BACKENDS, run_kernel
from tf_call import BFLOAT16, compare_error, tf_outputs, tf_supports

ERF_RELATIVE_ERROR = 1e-13
TAIL_FACTOR = 1.2
TF_NDTRI_ULPS = 4  # Cephes ndtri's peak relative error (float32: ~3.3 eps on [0, 1])

EXCLUDED = {
    ("Erfinv", "float64, |y| within eps of 1"):
        "TensorFlow rounds (y + 1) / 2 to 1 and returns inf; ours the finite erfinv",
}


def _phi(z):
    return np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)


def _check(op, x, backend):
    expected = tf_outputs(op, [x])[0]
    ours = run_kernel(op, [x], backend=backend)[0]
    assert ours.dtype == expected.dtype and ours.shape == expected.shape
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(expected))
    ours64, theirs64 = ours.astype(np.float64), expected.astype(np.float64)
    infinite = np.isinf(theirs64) | np.isinf(ours64)
    np.testing.assert_array_equal(ours64[infinite], theirs64[infinite])
    finite = np.isfinite(theirs64)
    eps = float(np.finfo(x.dtype).eps)
    magnitude = np.abs(theirs64[finite])
    bound = (TAIL_FACTOR * ERF_RELATIVE_ERROR + TF_NDTRI_ULPS * eps) * magnitude
    if op == "Erfinv":
        y = np.abs(x.astype(np.float64)[finite])
        bound = bound + eps * (1 + y) / (2 * math.sqrt(2) * _phi(math.sqrt(2) * magnitude))
    error = np.abs(ours64[finite] - theirs64[finite])
    assert np.all(error <= bound), f"{op} {x.dtype} on {backend}: worst excess {np.max(error - bound)}"


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16, BFLOAT16],
                         ids=lambda d: np.dtype(d).name)
def test_erfinv(dtype, backend):
    y = np.concatenate([np.linspace(-1, 1, 1001), [1e-30, -1e-20, 1e-7, 0.999, -0.9999, 1.5,
                                                    -2.0, np.nan, np.inf, -np.inf]]).astype(dtype)
    if not tf_supports("Erfinv", [y]):
        pytest.skip(f"TensorFlow's CPU build has no Erfinv kernel for {np.dtype(dtype).name}")
    if np.dtype(dtype) == np.float64:
        y = y[np.abs(np.abs(y) - 1) > 2 * np.finfo(np.float64).eps]  # excluded, see EXCLUDED
    for shape in [(y.size,), (0,), (1, 1)]:
        _check("Erfinv", y[:math.prod(shape)].reshape(shape), backend)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16, BFLOAT16],
                         ids=lambda d: np.dtype(d).name)
def test_ndtri(dtype, backend):
    p = np.concatenate([np.linspace(0, 1, 1001), [1e-30, 1e-20, 0.5 + 1e-7, 0.9999999, -0.1,
                                                   1.1, np.nan, np.inf]]).astype(dtype)
    if not tf_supports("Ndtri", [p]):
        pytest.skip(f"TensorFlow's CPU build has no Ndtri kernel for {np.dtype(dtype).name}")
    for shape in [(p.size,), (0,), (1, 1)]:
        _check("Ndtri", p[:math.prod(shape)].reshape(shape), backend)


def _log_gamma_size(values):
    return np.abs([math.lgamma(v) if 0 < v < np.inf else 0.0 for v in values])


def _check_regularized(op, inputs, backend, front_terms):
    """NaN exactly where TensorFlow has NaN; elsewhere within 4 eps L min(P, 1 - P) + 2 eps of
    TensorFlow, L = 1 + front_terms(*inputs) (the magnitudes of the log front factor's terms)."""
    expected = tf_outputs(op, inputs)[0]
    ours = run_kernel(op, inputs, backend=backend)[0]
    assert ours.dtype == expected.dtype and ours.shape == expected.shape
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(expected))
    finite = ~np.isnan(expected)
    with np.errstate(all="ignore"):
        size = 1 + front_terms(*(v.astype(np.float64)[finite] for v in inputs))
    size = np.where(np.isfinite(size), size, 1.0)
    e = expected.astype(np.float64)[finite]
    eps = float(np.finfo(expected.dtype).eps)
    bound = 4 * eps * size * np.minimum(e, 1 - e) + 2 * eps
    error = np.abs(ours.astype(np.float64)[finite] - e)
    assert np.all(error <= bound), f"{op} {expected.dtype} on {backend}: worst excess {np.max(error - bound)}"


def _incomplete_gamma_case(rng, dtype):
    a = np.concatenate([rng.uniform(0.05, 40, 600), [0.5, 1, 1, 3, 1e-3, 200, 200]])
    x = np.concatenate([rng.uniform(0, 50, 600), [0, 1, 0.999, 3, 2, 190, 210]])
    edges_a = [0, -1, 1, 1, 1, np.inf, np.nan, 2, 0, np.inf, 3]
    edges_x = [1, 1, 0, -1, np.inf, 1, 1, np.nan, 0, np.inf, 1e-30]
    return (np.concatenate([a, edges_a]).astype(dtype), np.concatenate([x, edges_x]).astype(dtype))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("op", ["Igamma", "Igammac"])
def test_incomplete_gamma(op, dtype, backend):
    """Edge values exactly (NaN, 0, 1 where TensorFlow gives them). Elsewhere the prefactor
    exp(a log x - x - lgamma(a)) carries a relative error of about eps L, L = |a log x| + x +
    |lgamma(a)| + 1, into the part computed by series or fraction, min(P, Q); 4 roundings of
    it (log, product, sum, exp) plus 2 eps for the 1 - part are allowed."""
    a, x = _incomplete_gamma_case(np.random.default_rng(49), dtype)
    _check_regularized(op, [a, x], backend, lambda a, x: np.abs(a * np.log(x)) + x + _log_gamma_size(a))
    for shape in [(0,), (2, 0)]:
        assert run_kernel(op, [np.zeros(shape, dtype), np.zeros(shape, dtype)],
                          backend=backend)[0].shape == shape
    # broadcasting
    compare_shapes = tf_outputs(op, [a[:3].reshape(3, 1), x[:4]])[0].shape
    assert run_kernel(op, [a[:3].reshape(3, 1), x[:4]], backend=backend)[0].shape == compare_shapes


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=lambda d: np.dtype(d).name)
def test_betainc(dtype, backend):
    """Edge values exactly; elsewhere the front factor exp(a log x + b log(1 - x) + lgamma(a + b)
    - lgamma(a) - lgamma(b)) carries a relative error of about eps L, L the sum of those terms'
    magnitudes + 1, into the part computed by the continued fraction (I or 1 - I); 4 roundings
    of it plus 2 eps for the 1 - part are allowed, as for Igamma."""
    rng = np.random.default_rng(51)
    a = np.concatenate([rng.uniform(0.05, 30, 500), [0, -1, 1, 1, 1, 1, np.inf, np.nan, 2, 1, 2, 1e-30, 3]])
    b = np.concatenate([rng.uniform(0.05, 30, 500), [1, 1, 0, 1, 1, 1, 1, 1, np.inf, 2, 2, 1, 1e-30]])
    x = np.concatenate([rng.uniform(0, 1, 500), [0.5, 0.5, 0.5, 0, 1, -0.1, 0.5, 0.5, 0.5, 1.1, np.nan, 0.5, 0.5]])
    a, b, x = a.astype(dtype), b.astype(dtype), x.astype(dtype)
    _check_regularized("Betainc", [a, b, x], backend, lambda a, b, x: (
        np.abs(a * np.log(x)) + np.abs(b * np.log1p(-x)) + _log_gamma_size(a + b)
        + _log_gamma_size(a) + _log_gamma_size(b)))
    # scalars mix with tensors of one shape; other shapes are refused as TensorFlow refuses them
    one = np.asarray(0.3, dtype)
    assert run_kernel("Betainc", [a[:4].reshape(2, 2), one, one], backend=backend)[0].shape == (2, 2)
    assert run_kernel("Betainc", [np.zeros((0, 2), dtype)] * 3, backend=backend)[0].shape == (0, 2)
    compare_error("Betainc", [np.ones((2, 3), dtype), np.ones(3, dtype), one], backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16, BFLOAT16],
                         ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("op", ["BesselI0e", "BesselI1e", "BesselI0", "BesselI1"])
def test_bessel(op, dtype, backend):
    """Both sides of the series/asymptotic switch at |x| = 30, overflow of the unscaled
    functions, infinities and NaN; the elementwise tolerance of every special function
    (float64 computation rounded to the dtype; TensorFlow's float32 Cephes is ~8 ulps off)."""
    from tf_call import compare

    x = np.concatenate([np.linspace(-50, 50, 801), [0, -0.0, 1e-30, 29.999, 30.0, 30.001, 700,
                                                     800, np.inf, -np.inf, np.nan]]).astype(dtype)
    if not tf_supports(op, [x]):
        pytest.skip(f"TensorFlow's CPU build has no {op} kernel for {np.dtype(dtype).name}")
    for shape in [(x.size,), (0,), (1, 1)]:
        compare(op, [x[:math.prod(shape)].reshape(shape)], backend=backend)
