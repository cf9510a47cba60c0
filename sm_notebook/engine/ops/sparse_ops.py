"""SparseTensor kernels (indices, values, dense shape as separate tensors): conversion to
dense, filling empty rows, reshaping and feature crosses, as tf.compat.v1.feature_column
models use them.

They rearrange indices whose count depends on the data, so they compute on the host with
numpy and move their results to the backend (string values stay numpy), as the scatter
kernels of gather_ops do.
"""
from __future__ import annotations

import numpy as np

from ...errors import SavedModelError
from ...format.farmhash import fingerprint64, fingerprint_cat64
from .registry import kernel
from .string_ops import siphash24

INT64_MAX = np.iinfo(np.int64).max
MASK64 = 0xFFFFFFFFFFFFFFFF


def _host(ctx, t):
    return t if isinstance(t, np.ndarray) else ctx.to_numpy(t)


def _out(ctx, host):
    """A numpy result as the backend's array (object arrays stay numpy)."""
    return host if host.dtype == object else ctx.asarray(host)


def _matrix_indices(indices, op, rank=None):
    if indices.ndim != 2 or (rank is not None and indices.shape[1] != rank):
        want = f"[N, {rank}]" if rank is not None else "a matrix"
        raise SavedModelError(f"{op}: indices must be {want}, got shape {indices.shape}.")
    return indices.astype(np.int64, copy=False)


# --- SparseToDense --------------------------------------------------------------------------


def _check_order(indices, shape, op):
    """TensorFlow's validate_indices: in bounds, strictly increasing in row-major order."""
    for i, row in enumerate(indices):
        if np.any(row < 0) or np.any(row >= shape):
            raise SavedModelError(f"{op}: indices[{i}] = {row.tolist()} is out of bounds: need "
                                  f"0 <= index < {shape.tolist()}.")
    if len(indices) > 1:
        strides = np.cumprod(np.concatenate([shape[1:], [1]])[::-1])[::-1]
        linear = indices @ strides
        steps = np.diff(linear)
        bad = np.flatnonzero(steps <= 0)
        if bad.size:
            i = int(bad[0]) + 1
            what = "is repeated" if steps[bad[0]] == 0 else "is out of order"
            raise SavedModelError(f"{op}: indices[{i}] = {indices[i].tolist()} {what}. Many "
                                  "sparse ops require sorted indices.")


@kernel("SparseToDense")
def sparse_to_dense(ctx, inputs, attrs):
    op = "SparseToDense"
    indices, shape = _host(ctx, inputs[0]), _host(ctx, inputs[1]).astype(np.int64)
    values, default = _host(ctx, inputs[2]), _host(ctx, inputs[3])
    if shape.ndim != 1 or indices.ndim > 2:
        raise SavedModelError(f"{op}: output_shape must be a vector and sparse_indices at most "
                              f"a matrix, got shapes {shape.shape} and {indices.shape}.")
    if indices.ndim < 2:  # TensorFlow: a scalar or vector holds 1-D indices
        indices = indices.reshape(-1, 1)
    count = indices.shape[0]
    if indices.shape[1] != shape.size:
        raise SavedModelError(f"{op}: sparse_indices has {indices.shape[1]} columns but "
                              f"output_shape has {shape.size} dimensions.")
    if values.ndim > 1 or (values.ndim == 1 and values.shape[0] != count):
        raise SavedModelError(f"{op}: sparse_values must be a scalar or have {count} elements, "
                              f"got shape {values.shape}.")
    if default.size != 1 or default.ndim:
        raise SavedModelError(f"{op}: default_value must be a scalar, got shape "
                              f"{default.shape}.")
    if np.any(shape < 0):
        raise SavedModelError(f"{op}: output_shape {shape.tolist()} has a negative dimension.")
    if attrs.get("validate_indices", True):
        _check_order(indices.astype(np.int64), shape, op)
    elif count and (np.any(indices < 0) or np.any(indices >= shape)):
        raise SavedModelError(f"{op}: an index is out of bounds of output_shape "
                              f"{shape.tolist()}.")
    ctx.check_alloc(tuple(shape), values.dtype, op)
    dense = np.full(tuple(int(d) for d in shape), default.reshape(()), dtype=values.dtype)
    if count:
        dense[tuple(indices.astype(np.int64).T)] = values
    return [_out(ctx, dense)]


# --- SparseFillEmptyRows --------------------------------------------------------------------


@kernel("SparseFillEmptyRows")
def sparse_fill_empty_rows(ctx, inputs, attrs):
    """Each row of the dense shape without entries gets one, ``[row, 0, ...] = default``;
    entries are laid out by row, each row's entries in their input order."""
    op = "SparseFillEmptyRows"
    indices, values = _host(ctx, inputs[0]), _host(ctx, inputs[1])
    shape, default = _host(ctx, inputs[2]).astype(np.int64), _host(ctx, inputs[3])
    if shape.ndim != 1 or values.ndim != 1 or default.ndim != 0:
        raise SavedModelError(f"{op}: dense_shape and values must be vectors and "
                              f"default_value a scalar, got shapes {shape.shape}, "
                              f"{values.shape} and {default.shape}.")
    count = values.shape[0]
    if indices.ndim != 2 or indices.shape[0] != count:
        raise SavedModelError(f"{op}: indices must be a matrix with one row per value, got "
                              f"shape {indices.shape} for {count} values.")
    if shape.size == 0:
        raise SavedModelError(f"{op}: dense_shape must not be empty.")
    indices = indices.astype(np.int64, copy=False)
    nrows = int(shape[0])
    if nrows == 0:
        if count:
            raise SavedModelError(f"{op}: received SparseTensor with dense_shape[0] = 0 but "
                                  f"indices.shape[0] = {count}.")
        empty = np.zeros((0, indices.shape[1]), np.int64)
        return [ctx.asarray(empty), _out(ctx, values[:0].copy()),
                ctx.asarray(np.zeros(0, bool)), ctx.asarray(np.zeros(0, np.int64))]
    rows = indices[:, 0] if count else np.zeros(0, np.int64)
    bad = np.flatnonzero((rows < 0) | (rows >= nrows))
    if bad.size:
        i = int(bad[0])
        raise SavedModelError(f"{op}: indices({i}, 0) = {rows[i]} is invalid: the row must lie "
                              f"in [0, {nrows}).")
    ctx.check_alloc((nrows + count, indices.shape[1]), np.int64, op)
    per_row = np.bincount(rows, minlength=nrows)
    empty_rows = per_row == 0
    starts = np.concatenate([[0], np.cumsum(np.maximum(per_row, 1))[:-1]])
    order = np.argsort(rows, kind="stable")
    by_row = rows[order]
    rank = np.empty(count, np.int64)  # each entry's place among its row's entries
    rank[order] = np.arange(count) - np.searchsorted(by_row, by_row, side="left")
    reverse = starts[rows] + rank
    total = count + int(empty_rows.sum())
    out_indices = np.zeros((total, indices.shape[1]), np.int64)
    out_values = np.empty(total, values.dtype)
    out_indices[reverse] = indices
    out_values[reverse] = values
    filled = starts[empty_rows]
    out_indices[filled, 0] = np.flatnonzero(empty_rows)
    out_values[filled] = default
    return [ctx.asarray(out_indices), _out(ctx, out_values), ctx.asarray(empty_rows),
            ctx.asarray(reverse.astype(np.int64))]


# --- SparseReshape --------------------------------------------------------------------------


def reshaped(dense_size, requested, op):
    """The new shape with its one -1 inferred (TensorFlow's reshape_util checks)."""
    requested = [int(d) for d in requested]
    unknown = [i for i, d in enumerate(requested) if d == -1]
    if len(unknown) > 1:
        raise SavedModelError(f"{op}: only one output dimension may be -1, not both "
                              f"{unknown[0]} and {unknown[1]}.")
    for i, d in enumerate(requested):
        if d < -1:
            raise SavedModelError(f"{op}: size {i} must be non-negative, not {d}.")
    product = int(np.prod([d for d in requested if d != -1], dtype=np.int64))
    if unknown:
        if product <= 0:
            raise SavedModelError(f"{op}: reshape cannot infer the missing input size for an "
                                  "empty tensor unless all specified input sizes are non-zero.")
        missing = dense_size // product
        if missing * product != dense_size:
            raise SavedModelError(f"{op}: input to reshape is a SparseTensor with {dense_size} "
                                  f"dense values, but the requested shape requires a multiple "
                                  f"of {product}.")
        requested[unknown[0]] = missing
    if int(np.prod(requested, dtype=np.int64)) != dense_size:
        raise SavedModelError(f"{op}: input to reshape is a tensor with {dense_size} dense "
                              f"values, but the requested shape has "
                              f"{int(np.prod(requested, dtype=np.int64))}.")
    return requested


@kernel("SparseReshape")
def sparse_reshape(ctx, inputs, attrs):
    op = "SparseReshape"
    indices = _host(ctx, inputs[0])
    shape, requested = _host(ctx, inputs[1]).astype(np.int64), _host(ctx, inputs[2])
    if shape.ndim != 1 or requested.ndim != 1:
        raise SavedModelError(f"{op}: input_shape and new_shape must be vectors, got shapes "
                              f"{shape.shape} and {requested.shape}.")
    indices = _matrix_indices(indices, op, shape.size)
    dense_size = int(np.prod(shape, dtype=np.int64))
    new_shape = np.asarray(reshaped(dense_size, requested.tolist(), op), np.int64)
    if indices.shape[0] == 0 or dense_size == 0:
        out = np.zeros((indices.shape[0], new_shape.size), np.int64)
    else:
        linear = np.ravel_multi_index(tuple(indices.T), tuple(shape)) if shape.size else \
            np.zeros(indices.shape[0], np.int64)
        out = np.stack(np.unravel_index(linear, tuple(new_shape)), axis=1).astype(np.int64) \
            if new_shape.size else np.zeros((indices.shape[0], 0), np.int64)
    return [ctx.asarray(out.reshape(indices.shape[0], new_shape.size)), ctx.asarray(new_shape)]


# --- feature crosses ------------------------------------------------------------------------


def _cross_inputs(ctx, inputs, attrs, op, extra):
    """(columns, batch): each column the list of per-row feature lists, sparse ones first."""
    n = int(attrs["N"])
    dense_count = len(attrs.get("dense_types", []))
    indices = [_host(ctx, t) for t in inputs[:n]]
    values = [_host(ctx, t) for t in inputs[n:2 * n]]
    shapes = [_host(ctx, t) for t in inputs[2 * n:3 * n]]
    dense = [_host(ctx, t) for t in inputs[3 * n:3 * n + dense_count]]
    if len(inputs) != 3 * n + dense_count + extra:
        raise SavedModelError(f"{op}: expected {3 * n + dense_count + extra} inputs, got "
                              f"{len(inputs)}.")
    for i in range(n):
        if indices[i].ndim != 2 or indices[i].shape[1] != 2:
            raise SavedModelError(f"{op}: input indices should be a [N, 2] matrix but received "
                                  f"shape {indices[i].shape} at position {i}.")
        if values[i].ndim != 1 or values[i].shape[0] != indices[i].shape[0]:
            raise SavedModelError(f"{op}: expected {indices[i].shape[0]} values, got shape "
                                  f"{values[i].shape} at position {i}.")
        if shapes[i].ndim != 1 or shapes[i].size != 2:
            raise SavedModelError(f"{op}: shape should imply a 2D tensor, but got shape "
                                  f"{shapes[i].shape} at position {i}.")
    for i, d in enumerate(dense):
        if d.ndim != 2:
            raise SavedModelError(f"{op}: dense inputs should be a matrix but received shape "
                                  f"{d.shape} at position {i}.")
    batch = int(shapes[0][0]) if n else (dense[0].shape[0] if dense else 0)
    for i in range(n):
        if int(shapes[i][0]) != batch:
            raise SavedModelError(f"{op}: expected batch size {batch} got {int(shapes[i][0])} "
                                  f"at position {i}.")
    for i, d in enumerate(dense):
        if d.shape[0] != batch:
            raise SavedModelError(f"{op}: expected batch size {batch} got {d.shape[0]} at "
                                  f"dense tensor {i}.")
    columns = []
    for idx, vals in zip(indices, values):
        # TensorFlow walks the indices in order, taking each row's run of entries
        rows, at = [], 0
        for b in range(batch):
            start = at
            while at < idx.shape[0] and idx[at, 0] == b:
                at += 1
            rows.append(vals[start:at])
        columns.append((rows, True))
    columns += [(list(d), False) for d in dense]
    return columns, batch


def _crosses(columns, batch, feature):
    """Each row's crosses in TensorFlow's order (the last column varies fastest), each a list
    of ``feature(value, column_is_sparse)`` per column; returns (indices, values, shape)."""
    out_indices, out_values, widest = [], [], 0
    for b in range(batch):
        lists = [[feature(v, sparse) for v in rows[b]] for rows, sparse in columns]
        crosses = [[]] if lists else []
        for features in lists:
            crosses = [c + [f] for c in crosses for f in features]
        widest = max(widest, len(crosses))
        out_indices += [(b, k) for k in range(len(crosses))]
        out_values += crosses
    return out_indices, out_values, widest


def _sparse_result(ctx, indices, values, batch, widest, dtype):
    idx = np.asarray(indices, np.int64).reshape(len(indices), 2)
    if dtype == object:
        vals = np.empty(len(values), object)
        vals[:] = values
    else:
        vals = np.asarray(values, np.uint64).astype(np.int64) if values else np.zeros(0, np.int64)
    return [ctx.asarray(idx), _out(ctx, vals), ctx.asarray(np.asarray([batch, widest], np.int64))]


def _as_text(value):
    return value if isinstance(value, bytes) else str(int(value)).encode()


def _bucket(value, buckets):
    return value % buckets if buckets > 0 else value % INT64_MAX


@kernel("SparseCross")
def sparse_cross(ctx, inputs, attrs):
    op = "SparseCross"
    columns, batch = _cross_inputs(ctx, inputs, attrs, op, 0)
    internal = np.dtype(attrs.get("internal_type", object))
    if internal == object and any(np.dtype(t) == np.int64 for t in
                                  list(attrs.get("sparse_types", [])) +
                                  list(attrs.get("dense_types", []))):
        raise SavedModelError(f"{op}: input values should be of internal type string but "
                              "received int64.")
    if not attrs.get("hashed_output", False):
        indices, values, widest = _crosses(columns, batch, lambda v, sparse: _as_text(v))
        return _sparse_result(ctx, indices, [b"_X_".join(c) for c in values], batch, widest,
                              object)
    key, buckets = int(attrs.get("hash_key", 0)) & MASK64, int(attrs.get("num_buckets", 0))

    def feature(value, sparse):
        return fingerprint64(value) if isinstance(value, bytes) else int(value) & MASK64

    indices, crosses, widest = _crosses(columns, batch, feature)
    values = []
    for cross in crosses:
        hashed = key
        for f in cross:
            hashed = fingerprint_cat64(hashed, f)
        values.append(_bucket(hashed, buckets))
    return _sparse_result(ctx, indices, values, batch, widest, np.int64)


@kernel("SparseCrossV2")
def sparse_cross_v2(ctx, inputs, attrs):
    op = "SparseCrossV2"
    columns, batch = _cross_inputs(ctx, inputs, attrs, op, 1)
    sep = _host(ctx, inputs[-1])
    if sep.ndim != 0:
        raise SavedModelError(f"{op}: input separator should be a scalar, got shape {sep.shape}.")
    sep = sep.reshape(-1)[0]
    sep = sep.encode() if isinstance(sep, str) else bytes(sep)
    indices, values, widest = _crosses(columns, batch, lambda v, sparse: _as_text(v))
    return _sparse_result(ctx, indices, [sep.join(c) for c in values], batch, widest, object)


@kernel("SparseCrossHashed")
def sparse_cross_hashed(ctx, inputs, attrs):
    """TensorFlow's keyed columns: a sparse int64 feature is hashed from its first four
    bytes (``sizeof(DataType)``), a dense one is used as is unless ``strong_hash``."""
    op = "SparseCrossHashed"
    columns, batch = _cross_inputs(ctx, inputs, attrs, op, 3)
    buckets = int(_host(ctx, inputs[-3]).reshape(-1)[0])
    strong = bool(_host(ctx, inputs[-2]).reshape(-1)[0])
    salt = _host(ctx, inputs[-1]).reshape(-1)
    if salt.size != 2:
        raise SavedModelError(f'{op}: input "salt" must have length 2 but has length '
                              f"{salt.size}.")
    key0, key1 = (int(s) & MASK64 for s in salt)

    def feature(value, sparse):
        if isinstance(value, bytes):
            return siphash24(key0, key1, value) if strong else fingerprint64(value)
        if strong or sparse:
            head = (int(value) & MASK64).to_bytes(8, "little")[:4]
            return siphash24(key0, key1, head) if strong else fingerprint64(head)
        return int(value) & MASK64

    indices, crosses, widest = _crosses(columns, batch, feature)
    values = []
    for cross in crosses:
        hashed = cross[0]
        for f in cross[1:]:
            hashed = fingerprint_cat64(hashed, f)
        values.append(_bucket(hashed, buckets))
    return _sparse_result(ctx, indices, values, batch, widest, np.int64)


# --- arithmetic on SparseTensors ------------------------------------------------------------


def _sparse_tensor(ctx, indices_t, values_t, shape_t, op):
    """(indices [N, rank] int64, values [N], dense shape [rank] int64) on the host, checked."""
    shape = _host(ctx, shape_t).astype(np.int64)
    values = _host(ctx, values_t)
    if shape.ndim != 1 or values.ndim != 1:
        raise SavedModelError(f"{op}: the dense shape and values must be vectors, got shapes "
                              f"{shape.shape} and {values.shape}.")
    indices = _matrix_indices(_host(ctx, indices_t), op, shape.size)
    if indices.shape[0] != values.shape[0]:
        raise SavedModelError(f"{op}: {indices.shape[0]} indices but {values.shape[0]} values.")
    return indices, values, shape


@kernel("SparseTensorDenseMatMul")
def sparse_tensor_dense_mat_mul(ctx, inputs, attrs):
    """product[i, :] += value * b[k, :] for each entry (i, k) of A, in entry order."""
    op = "SparseTensorDenseMatMul"
    indices, values, shape = _sparse_tensor(ctx, inputs[0], inputs[1], inputs[2], op)
    b = _host(ctx, inputs[3])
    if shape.size != 2 or b.ndim != 2:
        raise SavedModelError(f"{op}: A and B must be matrices, got A of shape "
                              f"{shape.tolist()} and B of shape {b.shape}.")
    rows, cols = (indices[:, 1], indices[:, 0]) if attrs.get("adjoint_a") else \
        (indices[:, 0], indices[:, 1])
    out_rows, inner = (shape[1], shape[0]) if attrs.get("adjoint_a") else (shape[0], shape[1])
    if attrs.get("adjoint_a"):
        values = np.conj(values)
    if attrs.get("adjoint_b"):
        b = np.conj(b.T)
    if b.shape[0] != inner:
        raise SavedModelError(f"{op}: cannot multiply A and B because inner dimension does not "
                              f"match: {inner} vs. {b.shape[0]}.")
    bad = np.flatnonzero((rows < 0) | (rows >= out_rows) | (cols < 0) | (cols >= inner))
    if bad.size:
        raise SavedModelError(f"{op}: index {indices[bad[0]].tolist()} of A is out of bounds "
                              f"of its shape {shape.tolist()}.")
    ctx.check_alloc((int(out_rows), b.shape[1]), b.dtype, op)
    out = np.zeros((int(out_rows), b.shape[1]), b.dtype)
    np.add.at(out, rows, values[:, None].astype(b.dtype) * b[cols])
    return [ctx.asarray(out)]


@kernel("SparseReduceSum")
def sparse_reduce_sum(ctx, inputs, attrs):
    op = "SparseReduceSum"
    indices, values, shape = _sparse_tensor(ctx, inputs[0], inputs[1], inputs[2], op)
    axes = set()
    for a in _host(ctx, inputs[3]).reshape(-1).tolist():
        if not -shape.size <= a < shape.size:
            raise SavedModelError(f"{op}: invalid reduction dimension {a}, for input with "
                                  f"{shape.size} dimensions.")
        axes.add(a % shape.size)
    if indices.size and (np.any(indices < 0) or np.any(indices >= shape)):
        raise SavedModelError(f"{op}: an index is out of bounds of the shape {shape.tolist()}.")
    kept = [d for d in range(shape.size) if d not in axes]
    out_shape = tuple(int(shape[d]) for d in kept)
    ctx.check_alloc(out_shape, values.dtype, op)
    out = np.zeros(int(np.prod(out_shape, dtype=np.int64)), values.dtype)
    linear = np.ravel_multi_index(tuple(indices[:, d] for d in kept), out_shape) if kept else \
        np.zeros(indices.shape[0], np.int64)
    np.add.at(out, linear, values)
    out = out.reshape(out_shape)
    if attrs.get("keep_dims", False):
        out = out.reshape(tuple(1 if d in axes else int(shape[d]) for d in range(shape.size)))
    return [ctx.asarray(out)]


def _sorted_entries(indices, values):
    """Entries in row-major index order (a stable sort)."""
    if indices.shape[0] < 2 or indices.shape[1] == 0:
        return indices, values
    order = np.lexsort(indices.T[::-1])
    return indices[order], values[order]


@kernel("SparseConcat")
def sparse_concat(ctx, inputs, attrs):
    op = "SparseConcat"
    n = int(attrs["N"])
    tensors = [_sparse_tensor(ctx, inputs[i], inputs[n + i], inputs[2 * n + i], op)
               for i in range(n)]
    rank = tensors[0][2].size
    dim = int(attrs["concat_dim"])
    if not -rank <= dim < rank:
        raise SavedModelError(f"{op}: concat_dim {dim} is out of range for rank {rank}.")
    dim %= rank
    offset, parts = 0, []
    for indices, values, shape in tensors:
        if shape.size != rank or any(shape[d] != tensors[0][2][d] for d in range(rank) if d != dim):
            raise SavedModelError(f"{op}: input shapes must match except along concat_dim "
                                  f"{dim}: {tensors[0][2].tolist()} and {shape.tolist()}.")
        moved = indices.copy()
        moved[:, dim] += offset
        parts.append((moved, values))
        offset += int(shape[dim])
    indices = np.concatenate([p[0] for p in parts]) if parts else np.zeros((0, rank), np.int64)
    values = np.concatenate([p[1] for p in parts])
    if dim != 0:  # only a concat along the first dimension keeps the entries in order
        indices, values = _sorted_entries(indices, values)
    shape = tensors[0][2].copy()
    shape[dim] = offset
    return [ctx.asarray(indices), _out(ctx, values), ctx.asarray(shape)]


@kernel("SparseSlice")
def sparse_slice(ctx, inputs, attrs):
    op = "SparseSlice"
    indices, values, shape = _sparse_tensor(ctx, inputs[0], inputs[1], inputs[2], op)
    start = _host(ctx, inputs[3]).astype(np.int64).reshape(-1)
    size = _host(ctx, inputs[4]).astype(np.int64).reshape(-1)
    if start.size != shape.size or size.size != shape.size:
        raise SavedModelError(f"{op}: start {start.tolist()} and size {size.tolist()} must have "
                              f"one entry per dimension of shape {shape.tolist()}.")
    end = np.minimum(start + size, shape)
    keep = np.all((indices >= start) & (indices < end), axis=1) if indices.size else \
        np.zeros(indices.shape[0], bool)
    out_shape = np.maximum(end - start, 0)
    return [ctx.asarray(indices[keep] - start), _out(ctx, values[keep]),
            ctx.asarray(out_shape.astype(np.int64))]


@kernel("SparseAdd")
def sparse_add(ctx, inputs, attrs):
    """The merge of two SparseTensors in index order; a sum of two entries at the same index
    is kept when its magnitude is at least ``thresh``."""
    op = "SparseAdd"
    a_idx, a_val, a_shape = _sparse_tensor(ctx, inputs[0], inputs[1], inputs[2], op)
    b_idx, b_val, b_shape = _sparse_tensor(ctx, inputs[3], inputs[4], inputs[5], op)
    thresh = _host(ctx, inputs[6]).reshape(())
    if a_shape.tolist() != b_shape.tolist():
        raise SavedModelError(f"{op}: operands do not have the same shape: {a_shape.tolist()} "
                              f"and {b_shape.tolist()}.")
    merged, i, j = [], 0, 0
    while i < len(a_idx) or j < len(b_idx):
        a_key = tuple(a_idx[i]) if i < len(a_idx) else None
        b_key = tuple(b_idx[j]) if j < len(b_idx) else None
        if b_key is None or (a_key is not None and a_key < b_key):
            merged.append((a_idx[i], a_val[i]))
            i += 1
        elif a_key is None or b_key < a_key:
            merged.append((b_idx[j], b_val[j]))
            j += 1
        else:
            total = a_val[i] + b_val[j]
            if np.abs(total) >= thresh:
                merged.append((a_idx[i], total))
            i, j = i + 1, j + 1
    out_idx = [index for index, _ in merged]
    out_val = [value for _, value in merged]
    indices = np.asarray(out_idx, np.int64).reshape(len(out_idx), a_shape.size)
    values = np.asarray(out_val, a_val.dtype).reshape(len(out_val))
    return [ctx.asarray(indices), ctx.asarray(values), ctx.asarray(a_shape.copy())]
