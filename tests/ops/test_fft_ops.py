"""FFT kernels against TensorFlow: FFT/IFFT and RFFT/IRFFT in 1-3 dimensions.

Tolerance: the rounding error of an FFT of N points is bounded in the 2-norm,
||y_computed - y||_2 <= log2(N) * eta * ||y||_2 with eta ~ 7 eps (Higham, "Accuracy and
Stability of Numerical Algorithms", 2nd ed., Thm 24.2: eta = mu + gamma_4 (sqrt 2 + mu), mu ~
eps the twiddle factors' error). Mixed-radix and Bluestein transforms of other lengths take
one more stage, so the bound used is (ceil(log2 N) + 1) * 7 eps * ||y||_2 per transform, with
y the float64 reference. Ours and TensorFlow's must each be within it of the reference.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from harness import BACKENDS, run_kernel
from tf_call import compare_error, tf, tf_outputs

EXCLUDED = {
    ("RFFT*/IRFFT*", "empty input, positive fft_length"):
        "TensorFlow returns its output buffer uninitialized when the input has no elements "
        "(RFFT of shape (2, 0) with fft_length [4] gives (2, 3) of garbage); ours gives zeros; "
        "only shape and dtype are compared",
}

FFT_ETA_OVER_EPS = 7.0
COMPLEX_OPS = {"FFT": 1, "IFFT": 1, "FFT2D": 2, "IFFT2D": 2, "FFT3D": 3, "IFFT3D": 3}
REAL_OPS = {"RFFT": 1, "IRFFT": 1, "RFFT2D": 2, "IRFFT2D": 2, "RFFT3D": 3, "IRFFT3D": 3}
BATCHES = [(), (1,), (3,), (2, 1)]
INNER = {1: [(1,), (2,), (5,), (8,), (13,)],
         2: [(1, 1), (1, 4), (3, 5), (8, 6)],
         3: [(1, 1, 1), (2, 3, 4), (4, 1, 5)]}


def _bound(reference, rank, lengths, eps):
    """Largest allowed elementwise error: the 2-norm bound of the worst transform."""
    n = math.prod(lengths)
    per_transform = np.sqrt((np.abs(reference) ** 2).reshape(
        reference.shape[:reference.ndim - rank] + (-1,)).sum(-1)) if reference.size else np.zeros(1)
    return (math.ceil(math.log2(max(n, 1))) + 1) * FFT_ETA_OVER_EPS * eps * float(np.max(per_transform))


def _check(op, inputs, attrs, reference, rank, lengths, backend):
    expected = tf_outputs(op, inputs, attrs)[0]
    ours = run_kernel(op, inputs, attrs, backend=backend)[0]
    assert ours.shape == expected.shape == reference.shape, (op, ours.shape, expected.shape)
    assert ours.dtype == expected.dtype, (op, ours.dtype, expected.dtype)
    eps = float(np.finfo(ours.dtype).eps)
    bound = _bound(reference, rank, lengths, eps)
    assert np.max(np.abs(ours - reference), initial=0) <= bound, f"{op} on {backend}: ours off"
    assert np.max(np.abs(expected - reference), initial=0) <= bound, f"{op}: TensorFlow off (bound)"


def _complex(rng, shape, dtype):
    return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(dtype)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [np.complex64, np.complex128], ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("op", sorted(COMPLEX_OPS))
def test_complex_fft(op, dtype, backend):
    rank = COMPLEX_OPS[op]
    rng = np.random.default_rng(60 + rank)
    axes = tuple(range(-rank, 0))
    reference_fn = np.fft.ifftn if op.startswith("I") else np.fft.fftn
    for batch in BATCHES:
        for inner in INNER[rank]:
            x = _complex(rng, batch + inner, dtype)
            reference = reference_fn(x.astype(np.complex128), axes=axes)
            _check(op, [x], {}, reference, rank, inner, backend)
    for empty in [(0,) + INNER[rank][-1], (2,) + (0,) * rank, (3,) + INNER[rank][-1][:-1] + (0,)]:
        x = np.zeros(empty, dtype)
        assert run_kernel(op, [x], backend=backend)[0].shape == tf_outputs(op, [x])[0].shape == empty


def _real_reference(op, x, lengths, rank):
    axes = tuple(range(-rank, 0))
    if op.startswith("I"):
        return np.fft.irfftn(x.astype(np.complex128), s=lengths, axes=axes)
    return np.fft.rfftn(x.astype(np.float64), s=lengths, axes=axes)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("precision", ["single", "double"])
@pytest.mark.parametrize("op", sorted(REAL_OPS))
def test_real_fft(op, precision, backend):
    """Full-length transforms, and fft_length cropping every transformed dimension."""
    rank = REAL_OPS[op]
    inverse = op.startswith("I")
    real, cplx = (np.float32, np.complex64) if precision == "single" else (np.float64, np.complex128)
    attrs = {"Treal": real} if inverse else {"Tcomplex": cplx}
    rng = np.random.default_rng(70 + rank)
    for batch in BATCHES:
        for lengths in INNER[rank]:
            for extra in [(0,) * rank, (1,) * rank, (0,) * (rank - 1) + (3,)]:
                shape = tuple(n + e for n, e in zip(lengths, extra))  # cropped to lengths
                if inverse:  # the innermost dimension holds the bins 0..n//2 (and more, cropped)
                    shape = shape[:-1] + (lengths[-1] // 2 + 1 + extra[-1],)
                    x = _complex(rng, batch + shape, cplx)
                else:
                    x = rng.standard_normal(batch + shape).astype(real)
                fft_length = np.array(lengths, np.int32)
                reference = _real_reference(op, x, lengths, rank)
                _check(op, [x, fft_length], attrs, reference, rank, lengths, backend)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("op", ["IRFFT", "IRFFT2D"])
def test_irfft_ignores_imaginary_dc_and_nyquist(op, backend):
    """The imaginary parts of bins 0 and n/2 of the innermost dimension do not contribute."""
    rank = REAL_OPS[op]
    row = np.array([1 + 2j, 3 + 1j, 5 + 7j], np.complex64)
    x = np.stack([row, 2 * row]) if rank == 2 else row
    for n in (4, 5):
        lengths = x.shape[:-1] + (n,)
        _check(op, [x, np.array(lengths, np.int32)], {}, _real_reference(op, x, lengths, rank),
               rank, lengths, backend)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("op", sorted(REAL_OPS))
def test_real_fft_empty(op, backend):
    """An empty batch; an empty input with a positive fft_length (TensorFlow's output there is
    uninitialized memory: shape and dtype compared, ours is zeros)."""
    rank = REAL_OPS[op]
    inverse = op.startswith("I")
    dtype = np.complex64 if inverse else np.float32
    lengths = np.array([4] * rank, np.int32)
    inner = (4,) * (rank - 1) + ((3,) if inverse else (4,))
    for shape in [(0,) + inner, (2,) + inner[:-1] + (0,)]:
        x = np.zeros(shape, dtype)
        expected = tf_outputs(op, [x, lengths])[0]
        ours = run_kernel(op, [x, lengths], backend=backend)[0]
        assert ours.shape == expected.shape and ours.dtype == expected.dtype
        assert not np.any(ours)


@pytest.mark.parametrize("backend", BACKENDS)
def test_fft_refusals(backend):
    """Rank too low, padding asked of the raw op, a wrong fft_length shape, a negative length."""
    compare_error("FFT2D", [np.ones(3, np.complex64)], backend=backend)
    compare_error("RFFT2D", [np.ones(4, np.float32), np.array([4, 4], np.int32)], backend=backend)
    compare_error("RFFT2D", [np.ones((2, 3, 5), np.float32), np.array([4, 3], np.int32)],
                  backend=backend)
    compare_error("IRFFT", [np.ones((2, 2), np.complex64), np.array([8], np.int32)], backend=backend)
    compare_error("RFFT", [np.ones((2, 4), np.float32), np.array([4, 4], np.int32)], backend=backend)
    compare_error("RFFT", [np.ones((2, 4), np.float32), np.array([-1], np.int32)], backend=backend)


def test_zero_fft_length_is_refused():
    """TensorFlow aborts the process on fft_length 0 with a non-empty input; we refuse."""
    from sm_notebook.errors import SavedModelError

    with pytest.raises(SavedModelError, match="zero-size FFT"):
        run_kernel("RFFT", [np.ones((2, 4), np.float32), np.array([0], np.int32)])


assert tf  # TensorFlow is the oracle (skips the module without it)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [np.float32, np.int32, np.complex64, np.bool_],
                         ids=lambda d: np.dtype(d).name)
def test_roll(dtype, backend):
    """Roll (tf.signal.fftshift): scalar and vector shifts, negative axes, an axis named twice,
    shifts beyond the length, empty and size-1 dimensions."""
    from tf_call import compare

    for shape in [(2, 3, 4), (1, 5), (0, 3), (4,)]:
        x = np.arange(math.prod(shape)).reshape(shape).astype(dtype)
        cases = [(1, 0), ([1, -2], [-1, -1]), ([7, 3], [0, -1]), (0, 0)]
        for shift, axis in cases:
            if any(not -len(shape) <= a < len(shape) for a in np.atleast_1d(axis)):
                continue
            compare("Roll", [x, np.array(shift, np.int32), np.array(axis, np.int32)], backend=backend)
    compare_error("Roll", [np.ones((2, 2), dtype), np.array([1, 1], np.int32), np.array([0], np.int32)],
                  backend=backend)
    compare_error("Roll", [np.ones((2, 2), dtype), np.array(1, np.int32), np.array(2, np.int32)],
                  backend=backend)
