"""SparseTensor kernels against tf.raw_ops: to dense, fill empty rows, reshape, and feature
crosses (string joins and FarmHash/SipHash hashed crosses, bit for bit), refusals included."""
from __future__ import annotations

import numpy as np
import pytest

from harness import BACKENDS
from raw_oracle import conform

I64 = np.int64
S = object

#: Behaviour we cannot check against TensorFlow, reported as xfail with the reason.
EXCLUSIONS = {
    "cross-hashed-strong-dense-int": "SparseCrossHashed with strong_hash and a dense int64 "
                                     "input: TensorFlow 2.21's kernel crashes the process "
                                     "(segmentation fault), so there is no oracle; we hash the "
                                     "value's first four bytes as its sparse columns do.",
}


def strings(*values):
    return np.asarray([v.encode() if isinstance(v, str) else v for v in values], object)


@pytest.fixture(params=BACKENDS)
def backend(request):
    return request.param


# --- SparseToDense --------------------------------------------------------------------------


@pytest.mark.parametrize("indices,shape,values", [
    ([[0, 1], [2, 0]], [3, 2], [5, 7]),
    ([[0, 1], [2, 0]], [3, 2], 4),                 # one value for every index
    ([1, 3], [5], [1, 2]),                         # vector indices for a 1-D output
    (2, [4], 9),                                   # scalar index
    (np.zeros((0, 2)), [2, 3], []),
    (np.zeros((0, 2)), [0, 3], []),
    ([[1, 0], [0, 1]], [3, 2], [5, 7]),            # out of order
    ([[0, 1], [0, 1]], [3, 2], [5, 7]),            # repeated
    ([[0, 2]], [3, 2], [5]),                       # out of bounds
    ([[0, -1]], [3, 2], [5]),
    ([[0, 1], [2, 0]], [3, 2], [5, 7, 8]),         # too many values
])
@pytest.mark.parametrize("validate", [True, False])
@pytest.mark.parametrize("dtype", [np.float32, np.int32, np.bool_, S], ids=str)
def test_sparse_to_dense(backend, indices, shape, values, validate, dtype):
    values = np.asarray(values)
    if dtype is S:
        values = np.asarray([str(v).encode() for v in values.reshape(-1)], object).reshape(
            values.shape)
        default = np.asarray(b"-", object)
    else:
        values, default = values.astype(dtype), np.asarray(0, dtype)
    for index_dtype in (np.int32, I64):
        conform("SparseToDense", {"sparse_indices": np.asarray(indices, index_dtype),
                                  "output_shape": np.asarray(shape, index_dtype),
                                  "sparse_values": values, "default_value": default},
                {"validate_indices": validate}, backend=backend)


# --- SparseFillEmptyRows --------------------------------------------------------------------


@pytest.mark.parametrize("indices,shape", [
    ([[0, 1], [0, 3], [3, 0]], [5, 4]),
    ([[1, 0]], [2, 1]),
    ([[0, 0], [1, 0], [2, 1]], [3, 2]),            # no empty row
    (np.zeros((0, 2)), [3, 2]),                    # all rows empty
    (np.zeros((0, 2)), [0, 2]),
    ([[3, 0], [0, 1], [3, 1]], [4, 2]),            # unsorted rows
    ([[0, 0, 1], [2, 1, 1]], [3, 2, 2]),           # rank 3
    ([[4, 0]], [3, 2]),                            # row out of range
    ([[0, 0]], [0, 2]),
])
@pytest.mark.parametrize("dtype", [np.float32, I64, S], ids=str)
def test_sparse_fill_empty_rows(backend, indices, shape, dtype):
    indices = np.asarray(indices, I64).reshape(-1, len(shape))
    n = indices.shape[0]
    if dtype is S:
        values, default = strings(*[f"v{i}" for i in range(n)]), np.asarray(b"?", object)
    else:
        values, default = np.arange(1, n + 1).astype(dtype), np.asarray(-1, dtype)
    conform("SparseFillEmptyRows", {"indices": indices, "values": values,
                                    "dense_shape": np.asarray(shape, I64),
                                    "default_value": default}, backend=backend)


# --- SparseReshape --------------------------------------------------------------------------


@pytest.mark.parametrize("indices,shape,new_shape", [
    ([[0, 1], [1, 2], [2, 3]], [3, 4], [2, 6]),
    ([[0, 1], [1, 2], [2, 3]], [3, 4], [-1, 3]),
    ([[0, 1], [1, 2], [2, 3]], [3, 4], [12]),
    ([[0, 1], [1, 2], [2, 3]], [3, 4], [2, -1, 2]),
    ([[0, 0, 1]], [1, 1, 2], [2]),
    (np.zeros((0, 2)), [0, 4], [-1, 2]),           # cannot infer for an empty tensor
    (np.zeros((0, 2)), [0, 4], [4, 0]),
    (np.zeros((0, 2)), [3, 4], [-1, 4]),
    ([[0, 1]], [3, 4], [5, -1]),                   # not a multiple
    ([[0, 1]], [3, 4], [-1, -1]),
    ([[0, 1]], [3, 4], [2, 2]),
    ([[0]], [1], []),
])
def test_sparse_reshape(backend, indices, shape, new_shape):
    conform("SparseReshape", {"input_indices": np.asarray(indices, I64).reshape(-1, len(shape)),
                              "input_shape": np.asarray(shape, I64),
                              "new_shape": np.asarray(new_shape, I64)}, backend=backend)


# --- crosses --------------------------------------------------------------------------------


def _cross_case(kind):
    """(sparse inputs [(indices, values, shape)], dense inputs)."""
    words = ([[0, 0], [1, 0], [1, 1], [3, 0]], strings("a", "b", "c", "d"), [4, 2])
    ids = ([[0, 0], [0, 1], [1, 0], [3, 0]], np.asarray([7, -3, 2**40, 0], I64), [4, 2])
    colors = strings("red", "green", "blue", "").reshape(4, 1)
    counts = np.asarray([[1, 2], [3, 4], [5, 6], [-7, 8]], I64)
    if kind == "strings":
        return [words], [colors]
    if kind == "mixed":
        return [words, ids], [counts]
    if kind == "dense-only":
        return [], [colors, counts]
    if kind == "one-sparse":
        return [ids], []
    if kind == "empty-row":
        return [([[0, 0], [2, 0]], strings("x", "y"), [3, 1]), words[:2] and
                ([[0, 0], [1, 0]], strings("p", "q"), [3, 1])], []
    raise ValueError(kind)


def _cross_inputs(kind):
    sparse, dense = _cross_case(kind)
    named = {"indices": [np.asarray(s[0], I64).reshape(-1, 2) for s in sparse],
             "values": [s[1] for s in sparse],
             "shapes": [np.asarray(s[2], I64) for s in sparse],
             "dense_inputs": dense}
    return named


KINDS = ["strings", "mixed", "dense-only", "one-sparse", "empty-row"]


def list_attrs(named):
    """The attrs TensorFlow infers from a cross's input lists (a graph's node carries them)."""
    return {"N": len(named["indices"]),
            "sparse_types": [np.dtype(v.dtype) for v in named["values"]],
            "dense_types": [np.dtype(d.dtype) for d in named["dense_inputs"]]}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("hashed,buckets,key", [(False, 0, 0), (True, 0, 0xDECAFCAFFE),
                                                (True, 100, 0xDECAFCAFFE), (True, 7, -5)])
def test_sparse_cross(backend, kind, hashed, buckets, key):
    named = _cross_inputs(kind)
    has_int = any(v.dtype == I64 for v in named["values"] + named["dense_inputs"])
    for internal in ([I64, S] if has_int else [S]):
        conform("SparseCross", named, {"hashed_output": hashed, "num_buckets": buckets,
                                       "hash_key": key, "out_type": I64 if hashed else S,
                                       "internal_type": internal}, backend=backend,
                our_attrs=list_attrs(named))


@pytest.mark.parametrize("kind", KINDS)
def test_sparse_cross_v2(backend, kind):
    named = _cross_inputs(kind)
    conform("SparseCrossV2", dict(named, sep=np.asarray(b"#", object)), backend=backend,
            our_attrs=list_attrs(named))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("buckets", [0, 13])
@pytest.mark.parametrize("strong", [False, True])
def test_sparse_cross_hashed(backend, kind, buckets, strong):
    named = _cross_inputs(kind)
    if strong and any(d.dtype == I64 for d in named["dense_inputs"]):
        pytest.xfail(EXCLUSIONS["cross-hashed-strong-dense-int"])
    conform("SparseCrossHashed", dict(named, num_buckets=I64(buckets),
                                      strong_hash=np.asarray(strong),
                                      salt=np.asarray([137, -2**40], I64)), backend=backend,
            our_attrs=list_attrs(named))


def test_sparse_cross_refuses_mismatched_batches(backend):
    named = _cross_inputs("strings")
    named["dense_inputs"] = [named["dense_inputs"][0][:3]]
    conform("SparseCross", named, {"hashed_output": False, "num_buckets": 0, "hash_key": 0,
                                   "out_type": S, "internal_type": S}, backend=backend,
            our_attrs=list_attrs(named))


# --- arithmetic -----------------------------------------------------------------------------


@pytest.mark.parametrize("indices,shape", [
    ([[0, 1], [2, 0], [2, 0], [1, 2]], [3, 3]), (np.zeros((0, 2)), [2, 3]), ([[0, 0]], [1, 1]),
    ([[3, 0]], [3, 3]),
])
@pytest.mark.parametrize("adjoint_a", [False, True])
@pytest.mark.parametrize("adjoint_b", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32, np.complex64], ids=str)
def test_sparse_tensor_dense_mat_mul(backend, indices, shape, adjoint_a, adjoint_b, dtype):
    rng = np.random.default_rng(len(indices))
    indices = np.asarray(indices, I64).reshape(-1, 2)
    values = (rng.integers(-4, 5, indices.shape[0]) + (1j if dtype == np.complex64 else 0)
              ).astype(dtype)
    inner = shape[0] if adjoint_a else shape[1]
    b = rng.integers(-3, 4, (2, inner) if adjoint_b else (inner, 2)).astype(dtype)
    conform("SparseTensorDenseMatMul", {"a_indices": indices, "a_values": values,
                                        "a_shape": np.asarray(shape, I64), "b": b},
            {"adjoint_a": adjoint_a, "adjoint_b": adjoint_b}, backend=backend)


SPARSE_3D = ([[0, 0, 1], [0, 2, 0], [1, 1, 1], [1, 1, 1]], [2, 3, 2])


@pytest.mark.parametrize("axes", [[0], [1], [-1], [0, 2], [], [0, 1, 2], [3]])
@pytest.mark.parametrize("keep_dims", [False, True])
def test_sparse_reduce_sum(backend, axes, keep_dims):
    indices, shape = SPARSE_3D
    conform("SparseReduceSum", {"input_indices": np.asarray(indices, I64),
                                "input_values": np.float32([1, 2, 3, 4]),
                                "input_shape": np.asarray(shape, I64),
                                "reduction_axes": np.asarray(axes, np.int32)},
            {"keep_dims": keep_dims}, backend=backend)


@pytest.mark.parametrize("dim", [0, 1, -1, 2])
def test_sparse_concat(backend, dim):
    a = ([[0, 1], [1, 0]], [1, 2], [2, 2])
    b = ([[0, 0], [1, 1], [1, 2]], [3, 4, 5], [2, 3] if dim in (1, -1) else [2, 2])
    if dim == 0:
        b = ([[0, 0], [2, 1]], [3, 4], [3, 2])
    named = {"indices": [np.asarray(a[0], I64), np.asarray(b[0], I64)],
             "values": [np.float32(a[1]), np.float32(b[1])],
             "shapes": [np.asarray(a[2], I64), np.asarray(b[2], I64)]}
    conform("SparseConcat", named, {"concat_dim": dim}, backend=backend, our_attrs={"N": 2})


@pytest.mark.parametrize("start,size", [([0, 0, 0], [1, 3, 2]), ([1, 1, 1], [5, 5, 5]),
                                        ([0, 2, 0], [2, 0, 2]), ([2, 0, 0], [1, 1, 1]),
                                        ([0, 0], [1, 1])])
def test_sparse_slice(backend, start, size):
    indices, shape = SPARSE_3D
    conform("SparseSlice", {"indices": np.asarray(indices, I64), "values": strings(*"abcd"),
                            "shape": np.asarray(shape, I64), "start": np.asarray(start, I64),
                            "size": np.asarray(size, I64)}, backend=backend)


@pytest.mark.parametrize("thresh", [0.0, 2.5])
@pytest.mark.parametrize("b_shape", [[3, 3], [3, 4]])
def test_sparse_add(backend, thresh, b_shape):
    conform("SparseAdd", {"a_indices": np.asarray([[0, 1], [1, 1], [2, 0]], I64),
                          "a_values": np.float32([1, 2, 3]), "a_shape": np.asarray([3, 3], I64),
                          "b_indices": np.asarray([[0, 0], [1, 1], [2, 0], [2, 2]], I64),
                          "b_values": np.float32([4, 1, -3, 5]),
                          "b_shape": np.asarray(b_shape, I64), "thresh": np.float32(thresh)},
            backend=backend)
