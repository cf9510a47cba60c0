"""Linear algebra kernels: factorizations, solves, inverses, determinants, eigenproblems.

Written once against the array API's ``linalg`` extension (numpy, cupy and
array_api_strict provide it). Where the standard has no function, the kernel is its own
array code: triangular solves by substitution (TensorFlow's ``MatrixTriangularSolve``
never refuses a singular matrix, it gives inf/nan), the LU factorization with partial
pivoting (``Lu``, pivoting on the modulus as Eigen does). ``Eig`` (general eigenproblem)
is not in the standard: it runs numpy's ``linalg.eig`` on the host.

Signs: QR has the same sign convention in LAPACK and Eigen (Householder, R's diagonal
signed as ``-sign(a_kk)``); the signs of singular vectors and eigenvectors are whatever
each library's algorithm gives, and may differ from TensorFlow's (only the subspaces are
defined). float16 inputs (``MatrixInverse``, ``Qr``) are computed in float32.
"""
from __future__ import annotations

import math

import numpy as np

from ._arrays import scalar
from ._numeric import astype, fail, namespace, np_dtype, op_kernel, wide

_LinAlgError = np.linalg.LinAlgError


def _matrices(op, x, square=True, what="input"):
    if x.ndim < 2:
        fail(op, f"{what} must have rank >= 2, got shape {tuple(x.shape)}")
    if square and x.shape[-1] != x.shape[-2]:
        fail(op, f"{what} must be a batch of square matrices, got shape {tuple(x.shape)}")


def _adjoint(xp, x):
    x = xp.matrix_transpose(x)
    return xp.conj(x) if np_dtype(x.dtype).kind == "c" else x


def _hermitian_from_lower(xp, x):
    """The Hermitian matrix whose lower triangle is x's (Eigen's LLT and eigen solvers read
    only the lower triangle)."""
    return xp.tril(x) + _adjoint(xp, xp.tril(x, k=-1))


def _computed(xp, x):
    """(x in the precision computed in, its dtype to return): float16 goes through float32."""
    return wide(xp, x), x.dtype


def _per_matrix(xp, x, factor):
    """``factor`` applied to each matrix of the batch; where it fails, a lower triangle of
    NaN (TensorFlow's Cholesky fills the lower triangle with NaN)."""
    n = x.shape[-1]
    flat = xp.reshape(x, (-1, n, n))
    results = []
    for i in range(flat.shape[0]):
        try:
            results.append(factor(flat[i, ...]))
        except _LinAlgError:
            results.append(xp.tril(xp.full((n, n), float("nan"), dtype=x.dtype)))
    return xp.reshape(xp.stack(results), x.shape)


@op_kernel("Cholesky")
def cholesky(ctx, inputs, attrs):
    """Lower Cholesky factor of the lower triangle. A matrix that is not positive definite
    gives NaN in its lower triangle, as TensorFlow's real kernels do (its complex kernels
    leave zeros and garbage there)."""
    xp, (x,) = namespace(ctx, inputs[0])
    _matrices("Cholesky", x)
    if x.size == 0:
        return [xp.zeros(x.shape, dtype=x.dtype)]
    x = _hermitian_from_lower(xp, x)
    try:
        return [xp.linalg.cholesky(x)]
    except _LinAlgError:
        return [_per_matrix(xp, x, xp.linalg.cholesky)]


def _refuse_singular(op, message, run):
    try:
        return run()
    except _LinAlgError:
        fail(op, message)


@op_kernel("MatrixInverse")
def matrix_inverse(ctx, inputs, attrs):
    xp, (x,) = namespace(ctx, inputs[0])
    _matrices("MatrixInverse", x)
    x, dtype = _computed(xp, x)
    if attrs.get("adjoint", False):
        x = _adjoint(xp, x)
    if x.size == 0:
        return [xp.zeros(x.shape, dtype=dtype)]
    inverse = _refuse_singular("MatrixInverse", "Input is not invertible.", lambda: xp.linalg.inv(x))
    return [astype(xp, inverse, dtype)]


def _batch_shapes(op, matrix, rhs):
    """The broadcast batch shape of two matrix batches (MatrixSolve takes equal ones)."""
    try:
        return tuple(np.broadcast_shapes(tuple(matrix.shape[:-2]), tuple(rhs.shape[:-2])))
    except ValueError:
        fail(op, f"Incompatible batch shapes: matrix {tuple(matrix.shape)}, rhs {tuple(rhs.shape)}")


@op_kernel("MatrixSolve")
def matrix_solve(ctx, inputs, attrs):
    xp, (matrix, rhs) = namespace(ctx, inputs[0], inputs[1])
    _matrices("MatrixSolve", matrix)
    _matrices("MatrixSolve", rhs, square=False, what="rhs")
    if tuple(matrix.shape[:-2]) != tuple(rhs.shape[:-2]) or matrix.shape[-1] != rhs.shape[-2]:
        fail("MatrixSolve", f"Input matrix and right-hand side must have matching shapes, got "
                            f"{tuple(matrix.shape)} and {tuple(rhs.shape)}")
    if attrs.get("adjoint", False):
        matrix = _adjoint(xp, matrix)
    if matrix.size == 0 or rhs.size == 0:
        return [xp.zeros(rhs.shape, dtype=rhs.dtype)]
    return [_refuse_singular("MatrixSolve", "Input matrix is not invertible.",
                             lambda: xp.linalg.solve(matrix, rhs))]


def triangular_solve(xp, matrix, rhs, lower):
    """Solve ``matrix @ x = rhs`` by substitution, reading one triangle of ``matrix``;
    batch dimensions broadcast. A zero on the diagonal gives inf/nan, as in TensorFlow."""
    n = matrix.shape[-1]
    batch = tuple(np.broadcast_shapes(tuple(matrix.shape[:-2]), tuple(rhs.shape[:-2])))
    matrix = xp.broadcast_to(matrix, batch + (n, n))
    rhs = xp.broadcast_to(rhs, batch + tuple(rhs.shape[-2:]))
    solved: list = [None] * n
    order = range(n) if lower else range(n - 1, -1, -1)
    for i in order:
        known = list(range(i)) if lower else list(range(i + 1, n))
        row = rhs[..., i:i + 1, :]
        if known:
            first, last = min(known), max(known) + 1
            partial = xp.concat([solved[j] for j in range(first, last)], axis=-2)
            row = row - xp.matmul(matrix[..., i:i + 1, first:last], partial)
        solved[i] = row / matrix[..., i:i + 1, i:i + 1]
    if n == 0:
        return xp.zeros(batch + tuple(rhs.shape[-2:]), dtype=rhs.dtype)
    return xp.concat(solved, axis=-2)


@op_kernel("MatrixTriangularSolve")
def matrix_triangular_solve(ctx, inputs, attrs):
    """``matrix @ x = rhs`` (or ``adjoint(matrix) @ x = rhs``) with matrix triangular."""
    xp, (matrix, rhs) = namespace(ctx, inputs[0], inputs[1])
    op = "MatrixTriangularSolve"
    _matrices(op, matrix)
    _matrices(op, rhs, square=False, what="rhs")
    _batch_shapes(op, matrix, rhs)
    if matrix.shape[-1] != rhs.shape[-2]:
        fail(op, f"Input matrix and right-hand side must have the same number of rows, got "
                 f"{tuple(matrix.shape)} and {tuple(rhs.shape)}")
    matrix, dtype = _computed(xp, matrix)
    rhs = astype(xp, rhs, np_dtype(matrix.dtype))
    lower = bool(attrs.get("lower", True))
    matrix = xp.tril(matrix) if lower else xp.triu(matrix)
    if attrs.get("adjoint", False):
        matrix, lower = _adjoint(xp, matrix), not lower
    return [astype(xp, triangular_solve(xp, matrix, rhs, lower), dtype)]


@op_kernel("MatrixDeterminant")
def matrix_determinant(ctx, inputs, attrs):
    xp, (x,) = namespace(ctx, inputs[0])
    _matrices("MatrixDeterminant", x)
    x, dtype = _computed(xp, x)
    if x.shape[-1] == 0:
        return [xp.ones(tuple(x.shape[:-2]), dtype=dtype)]
    if x.size == 0:
        return [xp.zeros(tuple(x.shape[:-2]), dtype=dtype)]
    return [astype(xp, xp.linalg.det(x), dtype)]


@op_kernel("LogMatrixDeterminant")
def log_matrix_determinant(ctx, inputs, attrs):
    """sign and log|det|, both of the input's dtype (a complex log|det| has 0 imaginary part)."""
    xp, (x,) = namespace(ctx, inputs[0])
    _matrices("LogMatrixDeterminant", x)
    batch = tuple(x.shape[:-2])
    if x.size == 0:
        return [xp.ones(batch, dtype=x.dtype), xp.zeros(batch, dtype=x.dtype)]
    sign, log_abs = xp.linalg.slogdet(x)
    return [sign, astype(xp, log_abs, np_dtype(x.dtype))]


@op_kernel("Qr")
def qr(ctx, inputs, attrs):
    xp, (x,) = namespace(ctx, inputs[0])
    _matrices("Qr", x, square=False)
    x, dtype = _computed(xp, x)
    full = bool(attrs.get("full_matrices", False))
    m, n = x.shape[-2], x.shape[-1]
    k = m if full else min(m, n)
    batch = tuple(x.shape[:-2])
    if x.size == 0:
        eye = xp.broadcast_to(xp.eye(m, k, dtype=x.dtype), batch + (m, k))
        return [astype(xp, eye, dtype), xp.zeros(batch + (k, n), dtype=dtype)]
    q, r = xp.linalg.qr(x, mode="complete" if full else "reduced")
    return [astype(xp, q, dtype), astype(xp, r, dtype)]


@op_kernel("Svd")
def svd(ctx, inputs, attrs):
    """s (descending, of the input's dtype), u and v with ``x = u @ diag(s) @ adjoint(v)``;
    without compute_uv, u and v are 0-d zeros (TensorFlow leaves them uninitialized)."""
    xp, (x,) = namespace(ctx, inputs[0])
    _matrices("Svd", x, square=False)
    m, n = x.shape[-2], x.shape[-1]
    k = min(m, n)
    batch = tuple(x.shape[:-2])
    full = bool(attrs.get("full_matrices", False))
    compute_uv = bool(attrs.get("compute_uv", True))
    if not compute_uv:
        s = xp.zeros(batch + (k,), dtype=x.dtype) if x.size == 0 else xp.linalg.svdvals(x)
        empty = xp.zeros((), dtype=x.dtype)
        return [astype(xp, s, np_dtype(x.dtype)), empty, empty]
    if x.size == 0:
        u_cols, v_cols = (m, n) if full else (k, k)
        u = xp.broadcast_to(xp.eye(m, u_cols, dtype=x.dtype), batch + (m, u_cols))
        v = xp.broadcast_to(xp.eye(n, v_cols, dtype=x.dtype), batch + (n, v_cols))
        return [xp.zeros(batch + (k,), dtype=x.dtype), u, v]
    u, s, vh = xp.linalg.svd(x, full_matrices=full)
    return [astype(xp, s, np_dtype(x.dtype)), u, _adjoint(xp, vh)]


@op_kernel("SelfAdjointEigV2")
def self_adjoint_eig(ctx, inputs, attrs):
    """Eigenvalues (ascending, of the input's dtype) and eigenvectors of the Hermitian matrix
    given by its lower triangle; without compute_v, v is a 0-d zero."""
    xp, (x,) = namespace(ctx, inputs[0])
    _matrices("SelfAdjointEigV2", x)
    n = x.shape[-1]
    batch = tuple(x.shape[:-2])
    compute_v = bool(attrs.get("compute_v", True))
    if x.size == 0:
        v = xp.zeros(batch + (n, n), dtype=x.dtype) if compute_v else xp.zeros((), dtype=x.dtype)
        return [xp.zeros(batch + (n,), dtype=x.dtype), v]
    x = _hermitian_from_lower(xp, x)
    if not compute_v:
        return [astype(xp, xp.linalg.eigvalsh(x), np_dtype(x.dtype)), xp.zeros((), dtype=x.dtype)]
    e, v = xp.linalg.eigh(x)
    return [astype(xp, e, np_dtype(x.dtype)), v]


@op_kernel("Eig")
def eig(ctx, inputs, attrs):
    """General eigenproblem: numpy's ``linalg.eig`` on the host (the array API has no eig).
    The eigenvalues' order and the eigenvectors' phases are LAPACK's, not Eigen's."""
    x = np.asarray(ctx.to_numpy(inputs[0]))
    _matrices("Eig", x)
    out = np.dtype(attrs.get("Tout", np.complex64))
    compute_v = bool(attrs.get("compute_v", True))
    if x.size == 0:
        e, v = np.zeros(x.shape[:-1], out), np.zeros(x.shape, out)
    elif compute_v:
        e, v = np.linalg.eig(x)
    else:
        e, v = np.linalg.eigvals(x), np.zeros((), out)
    return [np.asarray(e).astype(out), np.asarray(v).astype(out)]


@op_kernel("Lu")
def lu(ctx, inputs, attrs):
    """Partial-pivoting LU, ``x[..., p, :] = L @ U`` with L unit lower and U upper packed in
    one matrix; the pivot is the first entry of largest modulus (Eigen's PartialPivLU). A zero
    pivot is refused, as TensorFlow refuses it."""
    xp, (x,) = namespace(ctx, inputs[0])
    _matrices("Lu", x)
    index_dtype = np.dtype(attrs.get("output_idx_type", np.int32))
    n = x.shape[-1]
    batch = tuple(x.shape[:-2])
    perm = xp.broadcast_to(xp.arange(n, dtype=xp.int64), batch + (n,))
    if x.size == 0:
        return [xp.zeros(x.shape, dtype=x.dtype), astype(xp, perm, index_dtype)]
    a = xp.asarray(x, copy=True)
    perm = xp.asarray(perm, copy=True)
    rows = xp.arange(n, dtype=xp.int64)
    for k in range(n):
        pivot = xp.argmax(xp.abs(a[..., k:, k]), axis=-1) + k
        # the permutation that swaps row k with row `pivot` in every matrix of the batch
        target = xp.expand_dims(pivot, axis=-1)
        swap = xp.where(rows == k, target, xp.where(rows == target, k, rows))
        a = xp.take_along_axis(a, xp.broadcast_to(xp.expand_dims(swap, axis=-1), a.shape), axis=-2)
        perm = xp.take_along_axis(perm, swap, axis=-1)
        head = a[..., k:k + 1, k:k + 1]
        if bool(xp.any(head == 0)):
            fail("Lu", "Input is not invertible.")
        multipliers = a[..., k + 1:, k:k + 1] / head
        a[..., k + 1:, k:k + 1] = multipliers
        a[..., k + 1:, k + 1:] = a[..., k + 1:, k + 1:] - multipliers * a[..., k:k + 1, k + 1:]
    return [a, astype(xp, perm, index_dtype)]


@op_kernel("MatrixSolveLs")
def matrix_solve_ls(ctx, inputs, attrs):
    """Least squares. ``fast=True`` (TensorFlow's default): the l2-regularized normal
    equations solved by their Cholesky factor, as TensorFlow does. ``fast=False``: the
    minimum-norm solution, l2_regularizer ignored, as TensorFlow's complete orthogonal
    decomposition gives it; here by the pseudo-inverse (the array API has no COD), rank
    cut at the array API's default ``max(M, N) * eps`` relative to the largest singular value."""
    op = "MatrixSolveLs"
    xp, (matrix, rhs) = namespace(ctx, inputs[0], inputs[1])
    _matrices(op, matrix, square=False)
    _matrices(op, rhs, square=False, what="rhs")
    if tuple(matrix.shape[:-2]) != tuple(rhs.shape[:-2]) or matrix.shape[-2] != rhs.shape[-2]:
        fail(op, f"matrix and rhs must have matching batch shapes and row counts, got "
                 f"{tuple(matrix.shape)} and {tuple(rhs.shape)}")
    l2 = float(scalar(ctx, inputs[2], op, "l2_regularizer"))
    m, n = matrix.shape[-2], matrix.shape[-1]
    batch = tuple(matrix.shape[:-2])
    if matrix.size == 0 or rhs.size == 0:
        return [xp.zeros(batch + (n, rhs.shape[-1]), dtype=rhs.dtype)]
    if not attrs.get("fast", True):
        return [xp.matmul(xp.linalg.pinv(matrix), rhs)]
    adjoint = _adjoint(xp, matrix)
    overdetermined = m >= n
    gram = xp.matmul(adjoint, matrix) if overdetermined else xp.matmul(matrix, adjoint)
    if l2:
        gram = gram + xp.asarray(l2, dtype=gram.dtype) * xp.eye(gram.shape[-1], dtype=gram.dtype)
    try:
        factor = xp.linalg.cholesky(gram)
    except _LinAlgError:
        fail(op, "Input matrix was rank deficient or ill-conditioned. Try setting fast=False "
                 "or provide a larger l2_regularizer > 0.")
    target = xp.matmul(adjoint, rhs) if overdetermined else rhs
    solved = triangular_solve(xp, _adjoint(xp, factor), triangular_solve(xp, factor, target, True),
                              False)
    return [solved if overdetermined else xp.matmul(adjoint, solved)]



_SQRT_ITERATIONS = 60


def _denman_beavers(xp, a):
    """Principal square root of one matrix: Y <- (mu Y + (mu Z)^-1) / 2, Z <- (mu Z +
    (mu Y)^-1) / 2 from Y = A, Z = I, mu = |det Y det Z|^(-1 / 2n) (Higham, Functions of
    Matrices, 6.28); one more step once the relative change is below sqrt(eps) (the
    convergence is quadratic). None where it breaks down or does not settle."""
    n = a.shape[-1]
    settle = math.sqrt(float(np.finfo(np_dtype(a.dtype)).eps))
    y, z = a, xp.eye(n, dtype=a.dtype)
    closing = False
    for _ in range(_SQRT_ITERATIONS):
        try:
            y_inv, z_inv = xp.linalg.inv(y), xp.linalg.inv(z)
        except _LinAlgError:
            return None
        log_scale = -(float(xp.linalg.slogdet(y)[1]) + float(xp.linalg.slogdet(z)[1])) / (2 * n)
        if not math.isfinite(log_scale):
            return None
        mu = math.exp(log_scale)
        new_y = (mu * y + z_inv / mu) / 2
        z = (mu * z + y_inv / mu) / 2
        change = float(xp.linalg.matrix_norm(new_y - y))
        y = new_y
        if closing:
            return y if bool(xp.all(xp.isfinite(y))) else None
        closing = change <= settle * float(xp.linalg.matrix_norm(y))
    return None


@op_kernel("MatrixSquareRoot")
def matrix_square_root(ctx, inputs, attrs):
    """The principal square root of each matrix, by the Denman-Beavers iteration (the array
    API has no Schur decomposition, which TensorFlow's Eigen kernel uses). Where there is none
    in the dtype (a singular matrix, a real matrix with a negative eigenvalue: the iteration
    breaks down or does not settle) the result is NaN, as TensorFlow's real kernels give."""
    op = "MatrixSquareRoot"
    xp, (a,) = namespace(ctx, inputs[0])
    _matrices(op, a)
    if a.size == 0:
        return [xp.zeros(a.shape, dtype=a.dtype)]
    n = a.shape[-1]
    flat = xp.reshape(a, (-1, n, n))
    missing = xp.full((n, n), float("nan"), dtype=a.dtype)
    roots = []
    for i in range(flat.shape[0]):
        root = _denman_beavers(xp, flat[i, ...])
        roots.append(missing if root is None else root)
    return [xp.reshape(xp.stack(roots), a.shape)]


@op_kernel("TridiagonalSolve")
def tridiagonal_solve(ctx, inputs, attrs):
    """Solve tridiagonal systems given as [..., 3, M] diagonals (superdiagonal, diagonal,
    subdiagonal; the super's last and the sub's first entries unused). With partial_pivoting
    (the default) by a dense solve with partial pivoting (the array API has no banded solver);
    without, by the Thomas algorithm, as TensorFlow, so that a zero pivot gives NaN even for an
    invertible matrix. A singular system gives NaN, as TensorFlow's real kernels give;
    ``perturb_singular`` is refused."""
    op = "TridiagonalSolve"
    xp, (diagonals, rhs) = namespace(ctx, inputs[0], inputs[1])
    if diagonals.ndim < 2 or diagonals.shape[-2] != 3:
        fail(op, f"diagonals must have shape [..., 3, M], got {tuple(diagonals.shape)}")
    if rhs.ndim < 2 or tuple(rhs.shape[:-2]) != tuple(diagonals.shape[:-2]) \
            or rhs.shape[-2] != diagonals.shape[-1]:
        fail(op, f"rhs must have shape [..., M, K] matching diagonals {tuple(diagonals.shape)}, "
                 f"got {tuple(rhs.shape)}")
    if attrs.get("perturb_singular", False):
        fail(op, "perturb_singular=True is not supported (it perturbs zero pivots of TensorFlow's "
                 "own elimination order, which a dense solve does not reproduce)")
    m = diagonals.shape[-1]
    if diagonals.size == 0 or rhs.size == 0:
        return [xp.zeros(rhs.shape, dtype=rhs.dtype)]
    if not attrs.get("partial_pivoting", True):
        return [_thomas(xp, diagonals, rhs)]
    ctx.check_alloc(list(diagonals.shape[:-2]) + [m, m], np_dtype(diagonals.dtype), op)
    eye = xp.eye(m, dtype=diagonals.dtype)
    upper, middle, lower = (xp.expand_dims(diagonals[..., i, :], axis=-2) for i in range(3))
    # matrix[i, j]: diagonal at j == i, superdiagonal[i] at j == i + 1, subdiagonal[i] at j == i - 1
    dense = (eye * middle + xp.eye(m, k=1, dtype=diagonals.dtype) * xp.matrix_transpose(upper)
             + xp.eye(m, k=-1, dtype=diagonals.dtype) * xp.matrix_transpose(lower))
    try:
        return [xp.linalg.solve(dense, rhs)]
    except _LinAlgError:
        flat_a = xp.reshape(dense, (-1, m, m))
        flat_b = xp.reshape(rhs, (-1, m, rhs.shape[-1]))
        solved = []
        for i in range(flat_a.shape[0]):
            try:
                solved.append(xp.linalg.solve(flat_a[i, ...], flat_b[i, ...]))
            except _LinAlgError:
                solved.append(xp.full(tuple(flat_b.shape[1:]), float("nan"), dtype=rhs.dtype))
        return [xp.reshape(xp.stack(solved), rhs.shape)]


def _thomas(xp, diagonals, rhs):
    """Tridiagonal elimination without pivoting, batched; NaN for a system with a zero pivot."""
    m = diagonals.shape[-1]
    upper, middle, lower = (xp.expand_dims(diagonals[..., i, :], axis=-1) for i in range(3))
    ratios, values = [], []
    pivot = middle[..., 0:1, :]
    failed = pivot == 0
    ratios.append(upper[..., 0:1, :] / pivot)
    values.append(rhs[..., 0:1, :] / pivot)
    for i in range(1, m):
        pivot = middle[..., i:i + 1, :] - lower[..., i:i + 1, :] * ratios[-1]
        failed = failed | (pivot == 0)
        ratios.append(upper[..., i:i + 1, :] / pivot)
        values.append((rhs[..., i:i + 1, :] - lower[..., i:i + 1, :] * values[-1]) / pivot)
    solved = [values[-1]]
    for i in range(m - 2, -1, -1):
        solved.append(values[i] - ratios[i] * solved[-1])
    result = xp.concat(solved[::-1], axis=-2)
    failed = xp.any(failed, axis=(-2, -1), keepdims=True)
    return xp.where(failed, xp.full(result.shape, float("nan"), dtype=result.dtype), result)
