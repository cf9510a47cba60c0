"""Linear algebra kernels against TensorFlow.

Tolerances come from the operation's conditioning, with the float64 (numpy) result on the
same inputs as the reference; ours and TensorFlow's must each be within the bound of it:

* solves, inverses (LU with partial pivoting, backward error gamma_3n |L||U|, Higham Thm 9.3
  with a growth factor ~1 on these random matrices): ||dx|| <= 3 n eps kappa(A) ||x||;
* determinants: |d det| <= 3 n^2 eps kappa(A) |det| (first order in dA);
* Cholesky, triangular solves (Higham Thms 10.3, 8.5): 3 n eps kappa(A) ||result||;
* QR, SVD, eigendecompositions (Householder reductions, backward error m n eps ||A||):
  singular values and eigenvalues within m n eps ||A|| (Weyl); factors within m n eps kappa(A)
  ||factor|| where they are unique (QR);
* singular vectors and eigenvectors are unique up to a sign (phase), which is each library's
  choice: compared as |U| elementwise (each column within 2 m n eps ||A|| / gap of the
  reference's, Davis-Kahan), plus the reconstruction A = U S V^H and orthonormality.

See tests/ops/EXCLUSIONS.md for what is compared by invariants rather than by value.
"""
from __future__ import annotations

import numpy as np
import pytest

from harness import BACKENDS, run_kernel
from tf_call import compare_error, tf, tf_outputs

EXCLUDED = {
    ("Svd", "u, v"): "signs (complex phases) of singular vectors are implementation-defined; "
                     "compared as |u|, |v| and by reconstruction",
    ("SelfAdjointEigV2", "v"): "eigenvector signs are implementation-defined; compared as |v| "
                               "and by A v = v diag(e)",
    ("Eig", "e, v"): "eigenvalue order and eigenvector phases differ between Eigen and LAPACK; "
                     "compared on symmetric inputs, sorted, as |v|",
    ("Svd/SelfAdjointEigV2", "u, v without compute_uv/compute_v"):
        "TensorFlow's 0-d placeholder outputs are uninitialized memory; shape and dtype compared",
    ("Cholesky", "complex, not positive definite"):
        "TensorFlow's real kernels fill the lower triangle with NaN (ours too, compared) and "
        "leave the upper one uninitialized (ours 0); its complex kernels leave zeros and "
        "uninitialized values; ours NaN there as for real",
}

DTYPES = [np.float32, np.float64, np.complex64, np.complex128]
SIZES = [1, 2, 5]
BATCHES = [(), (1,), (3,)]


# Complex multiplication rounds to within sqrt(2) gamma_2 (Higham Lemma 3.5): complex
# dtypes get that factor on eps.
COMPLEX_ROUNDING = 2 * np.sqrt(2)


def _eps(dtype):
    dtype = np.dtype(dtype)
    return float(np.finfo(dtype).eps) * (COMPLEX_ROUNDING if dtype.kind == "c" else 1.0)


def _random(rng, shape, dtype):
    x = rng.standard_normal(shape)
    if np.dtype(dtype).kind == "c":
        x = x + 1j * rng.standard_normal(shape)
    return x.astype(dtype)


def _wide(x):
    return x.astype(np.complex128 if x.dtype.kind == "c" else np.float64)


def _cond(a):
    """kappa_2 of each matrix (largest over the batch), from the float64 singular values."""
    if a.size == 0:
        return 1.0
    s = np.linalg.svd(_wide(a), compute_uv=False)
    return float(np.max(s[..., 0] / s[..., -1]))


def _norm(x):
    return float(np.max(np.linalg.norm(_wide(x).reshape(-1, *x.shape[-2:]) if x.ndim >= 2
                                        else _wide(x).reshape(1, -1), axis=(-2, -1) if x.ndim >= 2
                                        else -1), initial=0.0))


def _within(name, value, reference, bound):
    assert value.shape == reference.shape, (name, value.shape, reference.shape)
    error = float(np.max(np.abs(_wide(value) - reference), initial=0.0))
    assert error <= bound, f"{name}: error {error:.3g} > bound {bound:.3g}"


def _both(op, inputs, attrs, backend):
    expected = tf_outputs(op, inputs, attrs)
    ours = run_kernel(op, inputs, attrs, backend=backend)
    assert len(ours) == len(expected)
    for i, (a, b) in enumerate(zip(ours, expected)):
        assert a.dtype == b.dtype, f"{op} output {i}: {a.dtype} != TensorFlow's {b.dtype}"
        assert a.shape == b.shape, f"{op} output {i}: {a.shape} != TensorFlow's {b.shape}"
    return ours, expected


def _close(op, ours, expected, reference, bound, backend):
    _within(f"{op} on {backend}", ours, reference, bound)
    _within(f"{op} (TensorFlow)", expected, reference, bound)


def _well_conditioned(rng, shape, dtype):
    """Random square matrices shifted away from singular (kappa of a few tens)."""
    n = shape[-1]
    return (_random(rng, shape, dtype) + 2 * np.sqrt(max(n, 1)) * np.eye(n)).astype(dtype)


def _cases(rng, dtype, make=_well_conditioned):
    for batch in BATCHES:
        for n in SIZES:
            yield make(rng, batch + (n, n), dtype)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES + [np.float16], ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("adjoint", [False, True])
def test_matrix_inverse(adjoint, dtype, backend):
    rng = np.random.default_rng(80)
    for a in _cases(rng, dtype):
        ours, expected = _both("MatrixInverse", [a], {"adjoint": adjoint}, backend)
        reference = np.linalg.inv(_wide(a))
        if adjoint:
            reference = np.conj(np.swapaxes(reference, -1, -2))
        bound = 3 * a.shape[-1] * _eps(dtype) * _cond(a) * _norm(reference)
        _close("MatrixInverse", ours[0], expected[0], reference, bound, backend)
    _empty("MatrixInverse", dtype, {"adjoint": adjoint}, backend)


def _empty(op, dtype, attrs, backend):
    for shape in [(0, 3, 3), (2, 0, 0)]:
        _both(op, [np.zeros(shape, dtype)], attrs, backend)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("adjoint", [False, True])
def test_matrix_solve(adjoint, dtype, backend):
    rng = np.random.default_rng(81)
    for a in _cases(rng, dtype):
        for k in (1, 3):
            b = _random(rng, a.shape[:-1] + (k,), dtype)
            ours, expected = _both("MatrixSolve", [a, b], {"adjoint": adjoint}, backend)
            matrix = np.conj(np.swapaxes(_wide(a), -1, -2)) if adjoint else _wide(a)
            reference = np.linalg.solve(matrix, _wide(b))
            bound = 3 * a.shape[-1] * _eps(dtype) * _cond(a) * _norm(reference)
            _close("MatrixSolve", ours[0], expected[0], reference, bound, backend)
    _both("MatrixSolve", [np.zeros((0, 2, 2), dtype), np.zeros((0, 2, 1), dtype)], {}, backend)
    _both("MatrixSolve", [np.zeros((2, 0, 0), dtype), np.zeros((2, 0, 3), dtype)], {}, backend)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("lower", [True, False])
@pytest.mark.parametrize("adjoint", [False, True])
def test_matrix_triangular_solve(adjoint, lower, dtype, backend):
    """Only one triangle is read (the other holds noise); batch dimensions broadcast."""
    rng = np.random.default_rng(82)
    for a in _cases(rng, dtype):
        for rhs_batch in [a.shape[:-2], (2,) + a.shape[:-2]]:
            b = _random(rng, rhs_batch + (a.shape[-1], 2), dtype)
            attrs = {"lower": lower, "adjoint": adjoint}
            ours, expected = _both("MatrixTriangularSolve", [a, b], attrs, backend)
            triangle = np.tril(_wide(a)) if lower else np.triu(_wide(a))
            if adjoint:
                triangle = np.conj(np.swapaxes(triangle, -1, -2))
            reference = np.linalg.solve(triangle, _wide(b))
            bound = 3 * a.shape[-1] * _eps(dtype) * _cond(triangle) * _norm(reference)
            _close("MatrixTriangularSolve", ours[0], expected[0], reference, bound, backend)
    _both("MatrixTriangularSolve", [np.zeros((2, 0, 0), dtype), np.zeros((2, 0, 3), dtype)],
          {}, backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_matrix_triangular_solve_singular_gives_inf_nan(backend):
    a, b = np.zeros((2, 2)), np.ones((2, 1))
    ours, expected = _both("MatrixTriangularSolve", [a, b], {}, backend)
    np.testing.assert_array_equal(ours[0], expected[0])


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_determinants(dtype, backend):
    rng = np.random.default_rng(83)
    for a in list(_cases(rng, dtype)) + [_random(rng, (3, 4, 4), dtype)]:
        n = a.shape[-1]
        bound_factor = 3 * n * n * _eps(dtype) * _cond(a)
        reference = np.linalg.det(_wide(a))
        ours, expected = _both("MatrixDeterminant", [a], {}, backend)
        _close("MatrixDeterminant", ours[0], expected[0], reference,
               bound_factor * float(np.max(np.abs(reference))), backend)
        sign, log_abs = np.linalg.slogdet(_wide(a))
        ours, expected = _both("LogMatrixDeterminant", [a], {}, backend)
        _close("LogMatrixDeterminant sign", ours[0], expected[0], sign, bound_factor, backend)
        _close("LogMatrixDeterminant log", ours[1], expected[1], log_abs, bound_factor, backend)
    _empty("MatrixDeterminant", dtype, {}, backend)
    _empty("LogMatrixDeterminant", dtype, {}, backend)
    ours, expected = _both("LogMatrixDeterminant", [np.zeros((2, 2), dtype)], {}, backend)
    np.testing.assert_array_equal(ours[0], expected[0])
    np.testing.assert_array_equal(ours[1], expected[1])


def _hermitian_positive(rng, shape, dtype):
    """Hermitian positive definite matrices whose upper triangle is replaced by noise
    (the kernels must read the lower one only)."""
    a = _random(rng, shape, dtype)
    spd = _wide(a) @ np.conj(np.swapaxes(_wide(a), -1, -2)) + shape[-1] * np.eye(shape[-1])
    noise = np.triu(_random(rng, shape, dtype), 1)
    return (np.tril(spd) + noise).astype(dtype)


def _lower_hermitian(a):
    low = np.tril(_wide(a))
    return low + np.conj(np.swapaxes(np.tril(_wide(a), -1), -1, -2))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_cholesky(dtype, backend):
    rng = np.random.default_rng(84)
    for a in _cases(rng, dtype, _hermitian_positive):
        ours, expected = _both("Cholesky", [a], {}, backend)
        full = _lower_hermitian(a)
        reference = np.linalg.cholesky(full)
        bound = 3 * a.shape[-1] * _eps(dtype) * _cond(full) * _norm(reference)
        _close("Cholesky", ours[0], expected[0], reference, bound, backend)
    _empty("Cholesky", dtype, {}, backend)
    # not positive definite: a lower triangle of NaN (TensorFlow's complex kernels: garbage)
    bad = np.stack([np.eye(2), -np.eye(2), np.diag([1.0, -1.0])]).astype(dtype)
    ours, expected = _both("Cholesky", [bad], {}, backend)
    np.testing.assert_array_equal(ours[0][0], expected[0][0])
    assert np.isnan(ours[0][1:][:, [1, 1, 0], [0, 1, 0]]).all()
    if np.dtype(dtype).kind == "f":  # above the diagonal TensorFlow leaves garbage
        rows, cols = np.tril_indices(2)
        np.testing.assert_array_equal(ours[0][:, rows, cols], expected[0][:, rows, cols])


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES + [np.float16], ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("full_matrices", [False, True])
def test_qr(full_matrices, dtype, backend):
    """Same Householder sign convention as TensorFlow's Eigen: compared by value."""
    rng = np.random.default_rng(85)
    for batch in BATCHES:
        for m, n in [(1, 1), (4, 2), (2, 4), (5, 5), (1, 3)]:
            a = _random(rng, batch + (m, n), dtype)
            ours, expected = _both("Qr", [a], {"full_matrices": full_matrices}, backend)
            q, r = np.linalg.qr(_wide(a), mode="complete" if full_matrices else "reduced")
            bound = m * n * _eps(dtype) * _cond(a) * max(_norm(a), 1.0)
            _close("Qr q", ours[0], expected[0], q, bound, backend)
            _close("Qr r", ours[1], expected[1], r, bound, backend)
    for shape in [(0, 3, 2), (3, 0), (0, 3), (2, 0, 0)]:
        ours, expected = _both("Qr", [np.zeros(shape, dtype)], {"full_matrices": full_matrices},
                               backend)
        for a, b in zip(ours, expected):
            np.testing.assert_array_equal(a, b)


def _abs_columns_close(name, ours, reference, values, scale, backend, singular=False):
    """|columns| within 2 * scale / gap of the reference's (Davis-Kahan); columns whose value
    is repeated (gap 0) are skipped. For singular vectors the rest of the spectrum includes 0
    (the complement of a rectangular matrix's singular subspace), so the gap is at most s_j."""
    values = np.abs(np.asarray(values)) if np.iscomplexobj(values) else np.asarray(values)
    k = ours.shape[-1]
    for j in range(k):
        v = values[..., j:j + 1]
        others = np.delete(values, j, axis=-1)
        if singular:
            others = np.concatenate([others, np.zeros_like(v)], axis=-1)
        gap = float(np.min(np.abs(others - v), initial=np.inf))
        if gap == 0:
            continue
        bound = 2 * scale / gap
        _within(f"{name} column {j} on {backend}", np.abs(ours[..., j]), np.abs(reference[..., j]),
                bound)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("full_matrices", [False, True])
def test_svd(full_matrices, dtype, backend):
    rng = np.random.default_rng(86)
    for batch in BATCHES:
        for m, n in [(1, 1), (4, 2), (2, 4), (5, 5)]:
            a = _random(rng, batch + (m, n), dtype)
            attrs = {"compute_uv": True, "full_matrices": full_matrices}
            ours, expected = _both("Svd", [a], attrs, backend)
            u, s, vh = np.linalg.svd(_wide(a), full_matrices=full_matrices)
            scale = m * n * _eps(dtype) * _norm(a)
            _close("Svd s", ours[0], expected[0], s, scale, backend)
            k = min(m, n)
            for name, (s_, u_, v_) in (("ours", ours), ("TensorFlow", expected)):
                rebuilt = (_wide(u_[..., :k]) * _wide(s_)[..., None, :]) @ np.conj(
                    np.swapaxes(_wide(v_[..., :k]), -1, -2))
                _within(f"Svd reconstruction ({name})", rebuilt, _wide(a), scale)
                for f in (u_, v_):
                    gram = np.conj(np.swapaxes(_wide(f), -1, -2)) @ _wide(f)
                    _within(f"Svd orthonormality ({name})", gram,
                            np.broadcast_to(np.eye(f.shape[-1]), gram.shape), scale)
            # the singular subspaces of distinct values: |u| and |v| columns
            _abs_columns_close("Svd u", ours[1][..., :k], u[..., :k], s, scale, backend, True)
            _abs_columns_close("Svd v", ours[2][..., :k], np.conj(np.swapaxes(vh, -1, -2))[..., :k],
                               s, scale, backend, True)
            ours, expected = _both("Svd", [a], {"compute_uv": False,
                                                "full_matrices": full_matrices}, backend)
            _close("Svd s (no uv)", ours[0], expected[0], s, scale, backend)
    for shape in [(2, 0, 3), (2, 3, 0), (0, 2, 2)]:
        ours, expected = _both("Svd", [np.zeros(shape, dtype)],
                               {"compute_uv": True, "full_matrices": full_matrices}, backend)
        for a, b in zip(ours, expected):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_self_adjoint_eig(dtype, backend):
    rng = np.random.default_rng(87)
    for a in _cases(rng, dtype, _hermitian_positive):
        full = _lower_hermitian(a)
        e, v = np.linalg.eigh(full)
        n = a.shape[-1]
        scale = n * n * _eps(dtype) * _norm(full)
        ours, expected = _both("SelfAdjointEigV2", [a], {"compute_v": True}, backend)
        _close("SelfAdjointEigV2 e", ours[0], expected[0], e, scale, backend)
        for name, (e_, v_) in (("ours", ours), ("TensorFlow", expected)):
            residual = full @ _wide(v_) - _wide(v_) * _wide(e_)[..., None, :]
            _within(f"SelfAdjointEigV2 residual ({name})", residual, np.zeros_like(residual), scale)
        _abs_columns_close("SelfAdjointEigV2 v", ours[1], v, e, scale, backend)
        ours, expected = _both("SelfAdjointEigV2", [a], {"compute_v": False}, backend)
        _close("SelfAdjointEigV2 e (no v)", ours[0], expected[0], e, scale, backend)
    _empty("SelfAdjointEigV2", dtype, {"compute_v": True}, backend)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_eig_on_symmetric_input(dtype, backend):
    """Real symmetric (complex: Hermitian) inputs: real eigenvalues, compared sorted."""
    rng = np.random.default_rng(88)
    tout = np.complex64 if np.dtype(dtype) in (np.float32, np.complex64) else np.complex128
    for a in _cases(rng, dtype, _hermitian_positive):
        full = _lower_hermitian(a).astype(dtype)
        e, v = np.linalg.eigh(_wide(full))
        scale = a.shape[-1] ** 2 * _eps(dtype) * _norm(full)
        ours, expected = _both("Eig", [full], {"compute_v": True, "Tout": tout}, backend)
        for name, (e_, v_) in (("ours", ours), ("TensorFlow", expected)):
            order = np.argsort(e_.real, axis=-1)
            sorted_e = np.take_along_axis(e_, order, axis=-1)
            _within(f"Eig e ({name})", sorted_e, e.astype(complex), scale)
            sorted_v = np.take_along_axis(v_, order[..., None, :], axis=-1)
            _abs_columns_close(f"Eig v ({name})", sorted_v, v, e, scale, backend)
    _empty("Eig", dtype, {"compute_v": True, "Tout": tout}, backend)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("index_type", [np.int32, np.int64], ids=["int32", "int64"])
def test_lu(index_type, dtype, backend):
    """Same pivots as TensorFlow (largest modulus); x[p] = L U."""
    rng = np.random.default_rng(89)
    attrs = {"output_idx_type": index_type}
    for a in list(_cases(rng, dtype, _random)) + [np.array([[1., 2], [3, 4]], dtype)]:
        ours, expected = _both("Lu", [a], attrs, backend)
        np.testing.assert_array_equal(ours[1], expected[1])
        n = a.shape[-1]
        permuted = np.take_along_axis(_wide(a), expected[1][..., None].astype(np.int64), axis=-2)
        lower = np.tril(_wide(expected[0]), -1) + np.eye(n)
        bound = 3 * n * _eps(dtype) * _cond(a) * max(_norm(a), 1.0)
        _within("Lu reconstruction (TensorFlow)", lower @ np.triu(_wide(expected[0])), permuted,
                bound)
        _close("Lu", ours[0], expected[0], _wide(expected[0]), 2 * bound, backend)
    _empty("Lu", dtype, attrs, backend)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("fast", [True, False])
def test_matrix_solve_ls(fast, dtype, backend):
    """fast: normal equations (error ~ eps kappa(A)^2); not fast: the minimum-norm solution."""
    rng = np.random.default_rng(90)
    for batch in BATCHES:
        for m, n in [(4, 2), (2, 4), (3, 3), (1, 1)]:
            a = _random(rng, batch + (m, n), dtype)
            b = _random(rng, batch + (m, 2), dtype)
            for l2 in (0.0, 0.5):
                if not fast and l2:
                    continue  # TensorFlow ignores l2_regularizer without fast
                ours, expected = _both("MatrixSolveLs", [a, b, np.float64(l2)], {"fast": fast},
                                       backend)
                wa, wb = _wide(a), _wide(b)
                ah = np.conj(np.swapaxes(wa, -1, -2))
                if m >= n:
                    gram = ah @ wa + l2 * np.eye(n)
                    reference = np.linalg.solve(gram, ah @ wb)
                else:
                    gram = wa @ ah + l2 * np.eye(m)
                    reference = ah @ np.linalg.solve(gram, wb)
                if not fast:
                    reference = np.linalg.pinv(wa) @ wb
                bound = 3 * m * n * _eps(dtype) * _cond(gram) * max(_norm(reference), 1.0)
                _close("MatrixSolveLs", ours[0], expected[0], reference, bound, backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_linalg_refusals(backend):
    singular = np.zeros((2, 2))
    compare_error("MatrixInverse", [singular], backend=backend)
    compare_error("MatrixSolve", [singular, np.ones((2, 1))], backend=backend)
    compare_error("Lu", [singular], backend=backend)
    compare_error("MatrixInverse", [np.ones((2, 3))], backend=backend)
    compare_error("MatrixSolve", [np.eye(2), np.ones((3, 1))], backend=backend)
    compare_error("Cholesky", [np.ones(3)], backend=backend)


assert tf


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_matrix_square_root(dtype, backend):
    """Diagonalizable A = V diag(lambda) V^-1 with positive eigenvalues (Hermitian positive
    definite ones included): the principal root moves by at most ||L^-1|| ||dA||, ||L^-1|| <=
    kappa(V)^2 / min(sqrt(l_i) + sqrt(l_j)) (the Frechet derivative's inverse), with a backward
    error of 4 n eps ||A||. Real matrices without a real root give NaN, as TensorFlow's."""
    rng = np.random.default_rng(91)
    for n in SIZES:
        for batch in BATCHES:
            values = rng.uniform(0.2, 4.0, batch + (n,))
            vectors = _random(rng, batch + (n, n), dtype) + 2 * np.sqrt(n) * np.eye(n)
            a = (_wide(vectors) * values[..., None, :]) @ np.linalg.inv(_wide(vectors))
            for matrix, kappa in [(a, np.linalg.cond(_wide(vectors))), (_lower_hermitian(
                    _hermitian_positive(rng, batch + (n, n), dtype)), 1.0)]:
                matrix = matrix.astype(dtype)
                ours, expected = _both("MatrixSquareRoot", [matrix], {}, backend)
                eigenvalues = np.abs(np.linalg.eigvals(_wide(matrix)))
                gap = 2 * np.sqrt(np.min(eigenvalues))
                bound = 4 * n * _eps(dtype) * _norm(matrix) * float(np.max(kappa)) ** 2 / gap
                _within("MatrixSquareRoot (TensorFlow vs ours)", ours[0], _wide(expected[0]), 2 * bound)
                root = _wide(ours[0])
                _within("MatrixSquareRoot residual", root @ root, _wide(matrix),
                        4 * n * _eps(dtype) * _norm(root) ** 2)
    if np.dtype(dtype).kind == "f":
        for no_root in [np.diag([4.0, -1.0]), np.zeros((2, 2))]:
            ours, expected = _both("MatrixSquareRoot", [no_root.astype(dtype)], {}, backend)
            assert np.isnan(ours[0]).all() and np.isnan(expected[0]).all()
    _empty("MatrixSquareRoot", dtype, {}, backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_linalg_shape_refusals(backend):
    compare_error("Qr", [np.ones(3)], backend=backend)
    compare_error("Svd", [np.ones(3)], backend=backend)
    compare_error("MatrixDeterminant", [np.ones((2, 3))], backend=backend)
    compare_error("SelfAdjointEigV2", [np.ones((2, 3))], backend=backend)
    compare_error("MatrixTriangularSolve", [np.eye(3), np.ones((2, 1))], backend=backend)
    compare_error("MatrixTriangularSolve", [np.ones((2, 3, 3)), np.ones((4, 3, 1))], backend=backend)
    compare_error("MatrixSolveLs", [np.ones((3, 2)), np.ones((2, 1)), np.float64(0)], backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("partial_pivoting", [True, False])
def test_tridiagonal_solve(partial_pivoting, dtype, backend):
    """Within the solve bound 3 m eps kappa(A) ||x|| (diagonally dominant systems, so that
    elimination without pivoting is stable too); a singular system, and without pivoting a
    zero pivot, gives NaN (TensorFlow's complex kernels: zeros, see EXCLUSIONS.md)."""
    rng = np.random.default_rng(92)
    attrs = {"partial_pivoting": partial_pivoting}
    for batch in BATCHES:
        for m in (1, 2, 6):
            diagonals = _random(rng, batch + (3, m), dtype)
            diagonals[..., 1, :] += 4  # diagonally dominant
            rhs = _random(rng, batch + (m, 2), dtype)
            ours, expected = _both("TridiagonalSolve", [diagonals, rhs], attrs, backend)
            w = _wide(diagonals)
            dense = (np.eye(m) * w[..., 1, None, :]).astype(w.dtype)
            dense = dense + np.eye(m, k=1) * w[..., 0, :, None] + np.eye(m, k=-1) * w[..., 2, :, None]
            reference = np.linalg.solve(dense, _wide(rhs))
            bound = 3 * m * _eps(dtype) * _cond(dense) * _norm(reference)
            _close("TridiagonalSolve", ours[0], expected[0], reference, bound, backend)
    singular = np.stack([np.zeros((3, 3)), np.ones((3, 3))]).astype(dtype)
    ours, expected = _both("TridiagonalSolve", [singular, np.ones((2, 3, 1), dtype)], attrs, backend)
    if np.dtype(dtype).kind == "f":
        np.testing.assert_array_equal(np.isnan(ours[0]), np.isnan(expected[0]))
    assert np.isnan(ours[0][0]).all()
    _both("TridiagonalSolve", [np.zeros((2, 3, 0), dtype), np.zeros((2, 0, 3), dtype)], attrs, backend)
    compare_error("TridiagonalSolve", [np.ones((2, 4), dtype), np.ones((4, 1), dtype)], backend=backend)
