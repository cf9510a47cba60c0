"""Ragged kernels against tf.raw_ops: RaggedRange, RaggedGather, RaggedTensorToTensor,
RaggedTensorToSparse and the variant round trip map_fn uses; empty rows, empty values,
size-1 dims and the refusals TensorFlow makes."""
from __future__ import annotations

import numpy as np
import pytest

from harness import BACKENDS, assert_same, run_kernel
from raw_oracle import conform, to_tf
from sm_notebook.engine.context import KernelContext
from sm_notebook.engine.ops import registry
from sm_notebook.errors import SavedModelError

tf = pytest.importorskip("tensorflow")

F32, F64, I32, I64, S = (np.dtype(t) for t in (np.float32, np.float64, np.int32, np.int64, object))


@pytest.fixture(params=BACKENDS)
def backend(request):
    return request.param


def splits(*values, dtype=I64):
    return np.asarray(values, dtype)


def strings(*values):
    out = np.empty(len(values), object)
    out[:] = [v.encode() for v in values]
    return out


RANGES = {  # name: (starts, limits, deltas)
    "ints": ([0, 5, 3, 2], [4, 1, 3, 9], [1, -2, 1, 3]),
    "scalar-broadcast": ([0, 2, 4], 6, 1),
    "all-scalars": (3, 7, 2),
    "floats": ([0.1, 5.0, 1.0], [3.0, 1.0, 1.5], [0.1, -0.7, 0.25]),
    "empty": ([], [], []),
}


@pytest.mark.parametrize("case", RANGES)
@pytest.mark.parametrize("tsplits", [I32, I64])
def test_ragged_range(case, tsplits, backend):
    starts, limits, deltas = RANGES[case]
    dtype = F32 if case == "floats" else I64 if case == "empty" else I32
    conform("RaggedRange", {"starts": np.asarray(starts, dtype), "limits": np.asarray(limits, dtype),
                            "deltas": np.asarray(deltas, dtype)}, {"Tsplits": tsplits},
            backend=backend)


@pytest.mark.parametrize("case", ["zero-delta", "shapes"])
def test_ragged_range_refusals(case, backend):
    named = {"zero-delta": {"starts": np.asarray([3], I32), "limits": np.int32(7), "deltas": np.int32(0)},
             "shapes": {"starts": np.asarray([3, 4], I32), "limits": np.asarray([7, 8, 9], I32),
                        "deltas": np.int32(1)}}[case]
    assert isinstance(conform("RaggedRange", named, backend=backend), Exception)


VALUES = np.arange(1, 6, dtype=np.float32)
TO_TENSOR = {  # name: (shape, values, default, partitions, types)
    "natural": (np.int64(-1), VALUES, np.float32(0), [splits(0, 2, 2, 5)], ["ROW_SPLITS"]),
    "truncated": (splits(2, 2), VALUES, np.float32(0), [splits(0, 2, 2, 5)], ["ROW_SPLITS"]),
    "padded": (splits(4, 5), VALUES, np.float32(9), [splits(0, 2, 2, 5)], ["ROW_SPLITS"]),
    "unknown-dim": (splits(-1, 4), VALUES, np.float32(-1), [splits(0, 2, 2, 5)], ["ROW_SPLITS"]),
    "inner-dims-default-row": (np.int64(-1), np.arange(10, dtype=np.float32).reshape(5, 2),
                               np.asarray([7, 8], np.float32), [splits(0, 2, 2, 5)], ["ROW_SPLITS"]),
    "inner-size-1": (splits(-1, -1, 1), np.arange(5, dtype=np.float32).reshape(5, 1),
                     np.float32(0), [splits(0, 1, 5)], ["ROW_SPLITS"]),
    "rank-2-splits": (np.int64(-1), VALUES, np.float32(0), [splits(0, 2, 3), splits(0, 1, 3, 5)],
                      ["ROW_SPLITS", "ROW_SPLITS"]),
    "value-rowids": (np.int64(-1), VALUES, np.float32(0), [np.int64(3), splits(0, 0, 2, 2, 2)],
                     ["FIRST_DIM_SIZE", "VALUE_ROWIDS"]),
    "value-rowids-rank-2": (np.int64(-1), VALUES, np.float32(0),
                            [np.int64(2), splits(0, 1, 1), splits(0, 0, 1, 2, 2)],
                            ["FIRST_DIM_SIZE", "VALUE_ROWIDS", "VALUE_ROWIDS"]),
    "value-rowids-truncated": (splits(2, 1), VALUES, np.float32(0), [np.int64(3), splits(0, 0, 2, 2, 2)],
                               ["FIRST_DIM_SIZE", "VALUE_ROWIDS"]),
    "extra-values-ignored": (np.int64(-1), VALUES, np.float32(0), [splits(0, 2, 4)], ["ROW_SPLITS"]),
    "all-rows-empty": (np.int64(-1), np.zeros(0, np.float32), np.float32(3), [splits(0, 0, 0)],
                       ["ROW_SPLITS"]),
    "no-rows": (np.int64(-1), np.zeros(0, np.float32), np.float32(3), [splits(0)], ["ROW_SPLITS"]),
    "one-row": (np.int64(-1), VALUES[:1], np.float32(3), [splits(0, 1, dtype=I32)], ["ROW_SPLITS"]),
    "ints": (np.int64(-1), np.asarray([4, 5, 6], I32), np.int32(-1), [splits(0, 3, 3)], ["ROW_SPLITS"]),
    # refused by TensorFlow
    "bad-rank": (splits(4, -1, 1), VALUES, np.float32(0), [splits(0, 2, 2, 5)], ["ROW_SPLITS"]),
    "empty-shape": (np.zeros(0, np.int64), VALUES, np.float32(0), [splits(0, 2, 2, 5)], ["ROW_SPLITS"]),
    "bad-default": (np.int64(-1), np.arange(10, dtype=np.float32).reshape(5, 2),
                    np.asarray([7, 8, 9], np.float32), [splits(0, 2, 2, 5)], ["ROW_SPLITS"]),
    "inner-mismatch": (splits(-1, -1, 3), np.arange(10, dtype=np.float32).reshape(5, 2),
                       np.float32(0), [splits(0, 2, 2, 5)], ["ROW_SPLITS"]),
    "splits-start": (np.int64(-1), VALUES, np.float32(0), [splits(1, 2, 5)], ["ROW_SPLITS"]),
    "splits-decrease": (np.int64(-1), VALUES, np.float32(0), [splits(0, 3, 2, 5)], ["ROW_SPLITS"]),
    "rowid-too-big": (np.int64(-1), VALUES, np.float32(0), [np.int64(2), splits(0, 0, 2, 2, 2)],
                      ["FIRST_DIM_SIZE", "VALUE_ROWIDS"]),
}


def test_unsorted_value_rowids_are_refused(backend):
    """TensorFlow does not check them (it returns rows out of place or corrupts its heap:
    tests/ops/EXCLUSIONS.md); we refuse."""
    with pytest.raises(SavedModelError, match="sorted"):
        run_kernel("RaggedTensorToTensor", [np.int64(-1), VALUES, np.float32(0), np.int64(3),
                                            splits(0, 0, 2, 1, 2)],
                   {"row_partition_types": ["FIRST_DIM_SIZE", "VALUE_ROWIDS"]}, backend=backend)


@pytest.mark.parametrize("case", TO_TENSOR)
def test_ragged_tensor_to_tensor(case, backend):
    shape, values, default, partitions, types = TO_TENSOR[case]
    conform("RaggedTensorToTensor", {"shape": shape, "values": values, "default_value": default,
                                     "row_partition_tensors": partitions},
            {"row_partition_types": types}, backend=backend)


def test_ragged_tensor_to_tensor_strings(backend):
    conform("RaggedTensorToTensor", {"shape": np.int64(-1), "values": strings("a", "bc", "d"),
                                     "default_value": strings("")[0:1].reshape(()),
                                     "row_partition_tensors": [splits(0, 1, 1, 3)]},
            {"row_partition_types": ["ROW_SPLITS"]}, backend=backend)


GATHER = {  # name: (nested splits, values, indices)
    "rows": ([splits(0, 2, 2, 5)], VALUES, np.asarray([2, 0, 1, 2], I32)),
    "rank-2-params": ([splits(0, 2, 3), splits(0, 1, 3, 5)], VALUES, np.asarray([1, 0, 1], I64)),
    "2d-indices": ([splits(0, 2, 2, 5)], VALUES, np.asarray([[2, 0], [1, 1], [0, 2]], I32)),
    "inner-dims": ([splits(0, 1, 3, dtype=I32)], np.arange(6, dtype=np.float64).reshape(3, 2),
                   np.asarray([1], I32)),
    "no-indices": ([splits(0, 2, 2, 5)], VALUES, np.zeros(0, I32)),
    "strings": ([splits(0, 2, 3)], strings("a", "b", "c"), np.asarray([1, 1, 0], I32)),
    "empty-values": ([splits(0, 0, 0)], np.zeros(0, np.float32), np.asarray([1, 0, 1], I32)),
    "one-row-size-1": ([splits(0, 1)], np.ones((1, 1), np.float32), np.asarray([0, 0], I64)),
    "out-of-range": ([splits(0, 2, 2, 5)], VALUES, np.asarray([0, 3], I32)),
    "negative": ([splits(0, 2, 2, 5)], VALUES, np.asarray([-1], I32)),
}


@pytest.mark.parametrize("case", GATHER)
def test_ragged_gather(case, backend):
    nested, values, indices = GATHER[case]
    conform("RaggedGather", {"params_nested_splits": nested, "params_dense_values": values,
                             "indices": indices},
            {"OUTPUT_RAGGED_RANK": len(nested) + indices.ndim - 1}, backend=backend,
            our_attrs={"PARAMS_RAGGED_RANK": len(nested)})


TO_SPARSE = {  # name: (nested splits, values)
    "rank-1": ([splits(0, 2, 2, 5)], VALUES),
    "rank-2": ([splits(0, 2, 3), splits(0, 1, 3, 5)], VALUES),
    "inner-dims": ([splits(0, 1, 3, dtype=I32)], np.arange(6, dtype=np.int64).reshape(3, 2)),
    "empty": ([splits(0, 0)], np.zeros(0, np.float32)),
    "empty-inner-dim": ([splits(0, 1, 2)], np.zeros((2, 0), np.float32)),
    "strings": ([splits(0, 2, 3, dtype=I32)], strings("a", "", "c")),
    "no-rows": ([splits(0)], np.zeros(0, np.float32)),
    "bad-end": ([splits(0, 2, 4)], VALUES),
}


@pytest.mark.parametrize("case", TO_SPARSE)
def test_ragged_tensor_to_sparse(case, backend):
    nested, values = TO_SPARSE[case]
    conform("RaggedTensorToSparse", {"rt_nested_splits": nested, "rt_dense_values": values},
            backend=backend)


VARIANTS = {  # name: (nested splits, values, batched, output ragged rank)
    "batched-rank-1": ([splits(0, 2, 2, 5)], VALUES, True, 1),
    "batched-rank-2": ([splits(0, 2, 3), splits(0, 1, 3, 5)], VALUES, True, 2),
    "unbatched": ([splits(0, 2, 2, 5)], VALUES, False, 1),
    "batched-inner-dims": ([splits(0, 1, 3)], np.arange(6, dtype=np.float32).reshape(3, 2), True, 1),
    "batched-one-row": ([splits(0, 3)], VALUES[:3], True, 1),
}


@pytest.mark.parametrize("case", VARIANTS)
def test_variant_round_trip(case, backend):
    nested, values, batched, out_rank = VARIANTS[case]
    from_attrs = {"input_ragged_rank": out_rank - (1 if batched else 0),
                  "output_ragged_rank": out_rank, "Tsplits": np.int64}
    encoded = tf.raw_ops.RaggedTensorToVariant(rt_nested_splits=to_tf(nested),
                                               rt_dense_values=to_tf(values), batched_input=batched)
    theirs = tf.raw_ops.RaggedTensorFromVariant(encoded_ragged=encoded, Tvalues=tf.as_dtype(values.dtype),
                                                **from_attrs)
    expected = [t.numpy() for t in theirs.output_nested_splits] + [theirs.output_dense_values.numpy()]
    ctx = KernelContext(backend=backend)
    ours = registry.get_kernel("RaggedTensorToVariant").fn(
        ctx, [ctx.asarray(x) for x in nested + [values]], {"batched_input": batched})
    assert ours[0].shape == tuple(encoded.shape)
    ours = registry.get_kernel("RaggedTensorFromVariant").fn(ctx, ours, {**from_attrs,
                                                                           "Tvalues": values.dtype})
    assert len(ours) == len(expected)
    for a, b in zip(ours, expected):
        assert_same(ctx.to_numpy(a), b, what=f"{case} on {backend}")


@pytest.mark.parametrize("dtype", [F32, F64])
def test_ragged_range_long_float_rows_round_like_tensorflow(dtype, backend):
    """Long rows expose the order of rounding: a running sum, not start + i * delta."""
    conform("RaggedRange", {"starts": np.asarray([0.1, -3.0, 7.0], dtype),
                            "limits": np.asarray([50.0, 40.0, -20.0], dtype),
                            "deltas": np.asarray([0.1, 0.37, -0.13], dtype)},
            backend=backend, tolerance=dict(rtol=0, atol=0))
