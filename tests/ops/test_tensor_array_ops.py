"""TF1 TensorArray kernels against TensorFlow, as programs of raw ops (handles are never
compared; flows and read values are), errors included."""
from __future__ import annotations

import numpy as np
import pytest

from harness import BACKENDS
from raw_oracle import run_program
from sm_notebook.engine.ops.tensor_array_ops import TensorArray

F32, I32 = np.dtype(np.float32), np.dtype(np.int32)


@pytest.fixture(params=BACKENDS)
def backend(request):
    return request.param


def create(size, dtype=F32, **attrs):
    return (["h", "f0"], "TensorArrayV3", {"size": np.int32(size)}, {"dtype": dtype, **attrs})


def write(out, flow, index, value):
    return ([out], "TensorArrayWriteV3", {"handle": "$h", "index": np.int32(index),
                                          "value": value, "flow_in": f"${flow}"}, {})


def read(out, flow, index):
    return ([out], "TensorArrayReadV3", {"handle": "$h", "index": np.int32(index),
                                         "flow_in": f"${flow}"}, {"dtype": F32})


def test_write_read_gather_size(backend):
    x = np.arange(6, dtype=np.float32).reshape(3, 2)
    steps = [
        create(3, element_shape=[2]),
        write("f1", "f0", 2, x[2]),
        write("f2", "f1", 0, x[0]),
        (["n"], "TensorArraySizeV3", {"handle": "$h", "flow_in": "$f2"}, {}),
        # index 1 was never written: zeros of the (known) element shape
        (["g"], "TensorArrayGatherV3", {"handle": "$h", "indices": np.asarray([1, 2], I32),
                                        "flow_in": "$f2"}, {"dtype": F32}),
        read("r", "f2", 0),
    ]
    ours, error = run_program(steps, backend)
    assert error is None and isinstance(ours["h"], TensorArray)


@pytest.mark.parametrize("clear_after_read", [True, False])
def test_read_twice(backend, clear_after_read):
    """A second read of an element is refused when the first read cleared it."""
    steps = [create(2, clear_after_read=clear_after_read),
             write("f1", "f0", 1, np.float32([1, 2])), read("r", "f1", 1), read("r2", "f1", 1)]
    _, error = run_program(steps, backend)
    assert (error is not None) == clear_after_read


@pytest.mark.parametrize("case", ["write-twice", "out-of-range", "bad-dtype", "bad-shape",
                                  "unknown-shape-read"])
def test_refusals(backend, case):
    value = np.float32([1, 2])
    steps = [create(2, element_shape=[2] if case == "bad-shape" else None)]
    if case == "write-twice":
        steps += [write("f1", "f0", 0, value), write("f2", "f1", 0, value)]
    elif case == "out-of-range":
        steps += [write("f1", "f0", 2, value)]
    elif case == "bad-dtype":
        steps += [write("f1", "f0", 0, np.int32([1, 2]))]
    elif case == "bad-shape":
        steps += [write("f1", "f0", 0, np.float32([1, 2, 3]))]
    else:
        steps += [read("r", "f0", 1)]
    _, error = run_program(steps, backend)
    assert error is not None


def test_dynamic_size_grows(backend):
    steps = [
        create(0, I32, dynamic_size=True),
        write("f1", "f0", 2, np.int32([4])),
        (["n"], "TensorArraySizeV3", {"handle": "$h", "flow_in": "$f1"}, {}),
        write("f2", "f1", 0, np.int32([7])),
        (["g"], "TensorArrayGatherV3", {"handle": "$h", "indices": np.asarray([2, 0], I32),
                                        "flow_in": "$f2"}, {"dtype": I32}),
    ]
    assert run_program(steps, backend)[1] is None


@pytest.mark.parametrize("batch", [0, 1, 3])
def test_scatter_gather_roundtrip(backend, batch):
    value = np.arange(batch * 4, dtype=np.float32).reshape(batch, 2, 2)
    steps = [
        create(batch, element_shape=[2, 2]),
        (["f1"], "TensorArrayScatterV3", {"handle": "$h", "indices": np.arange(batch, dtype=I32)[::-1].copy(),
                                          "value": value, "flow_in": "$f0"}, {}),
        (["g"], "TensorArrayGatherV3", {"handle": "$h", "indices": np.arange(batch, dtype=I32),
                                        "flow_in": "$f1"}, {"dtype": F32, "element_shape": [2, 2]}),
    ]
    assert run_program(steps, backend)[1] is None


@pytest.mark.parametrize("lengths", [[2, 0, 1], [3], [0]])
def test_split_concat(backend, lengths):
    total = sum(lengths)
    value = np.arange(total * 2, dtype=np.float32).reshape(total, 2)
    steps = [
        create(len(lengths)),
        (["f1"], "TensorArraySplitV3", {"handle": "$h", "value": value,
                                        "lengths": np.asarray(lengths, np.int64),
                                        "flow_in": "$f0"}, {}),
        (["c", "lengths"], "TensorArrayConcatV3", {"handle": "$h", "flow_in": "$f1"},
         {"dtype": F32}),
    ]
    assert run_program(steps, backend)[1] is None


def test_split_with_wrong_count_is_refused(backend):
    steps = [
        create(2),
        (["f1"], "TensorArraySplitV3", {"handle": "$h", "value": np.zeros((3, 1), np.float32),
                                        "lengths": np.asarray([1, 1, 1], np.int64),
                                        "flow_in": "$f0"}, {}),
    ]
    assert run_program(steps, backend)[1] is not None


def test_gather_of_empty_array_needs_element_shape(backend):
    ok = [create(0), (["g"], "TensorArrayGatherV3", {"handle": "$h", "indices": np.zeros(0, I32),
                                                     "flow_in": "$f0"},
                      {"dtype": F32, "element_shape": [3]})]
    assert run_program(ok, backend)[1] is None
    refused = [create(0), (["g"], "TensorArrayGatherV3", {"handle": "$h",
                                                          "indices": np.zeros(0, I32),
                                                          "flow_in": "$f0"}, {"dtype": F32})]
    assert run_program(refused, backend)[1] is not None


def test_close(backend):
    steps = [create(1), ([], "TensorArrayCloseV3", {"handle": "$h"}, {})]
    ours, error = run_program(steps, backend)
    assert error is None and ours["h"].closed


@pytest.mark.parametrize("identical", [False, True])
@pytest.mark.parametrize("then", ["gather", "read", "write-other-shape"])
def test_identical_element_shapes_fix_the_shape_of_unwritten_elements(backend, identical, then):
    steps = [create(3, identical_element_shapes=identical),
             write("f1", "f0", 0, np.float32([1, 2]))]
    if then == "gather":
        steps.append((["g"], "TensorArrayGatherV3", {"handle": "$h",
                                                     "indices": np.asarray([0, 1], I32),
                                                     "flow_in": "$f1"}, {"dtype": F32}))
    elif then == "read":
        steps.append(read("r", "f1", 1))
    else:
        steps.append(write("f2", "f1", 2, np.float32([1, 2, 3])))
    _, error = run_program(steps, backend)
    assert (error is None) == (identical != (then == "write-other-shape"))


@pytest.mark.parametrize("indices", [[0, 2], [0, 1]])
def test_strings(backend, indices):
    """Unwritten string elements cannot be read: TensorFlow has no string zeros."""
    words = np.array([[b"a", b"bb"], [b"", b"c"]], object)
    steps = [
        create(3, np.dtype(object), element_shape=[2]),
        (["f1"], "TensorArrayScatterV3", {"handle": "$h", "indices": np.asarray([2, 0], I32),
                                          "value": words, "flow_in": "$f0"}, {}),
        (["g"], "TensorArrayGatherV3", {"handle": "$h", "indices": np.asarray(indices, I32),
                                        "flow_in": "$f1"}, {"dtype": np.dtype(object)}),
    ]
    assert (run_program(steps, backend)[1] is None) == (indices == [0, 2])


def test_tensor_array_v2_runs_on_the_v3_kernels(backend):
    """TensorFlow refuses TensorArrayV2 (removed at GraphDef version 26): no oracle, so the
    V2 ops are checked to behave as the V3 ones compared above."""
    pytest.importorskip(backend)
    from sm_notebook.engine.context import KernelContext
    from sm_notebook.engine.ops import registry

    ctx = KernelContext(backend=backend)

    def run(op, inputs, attrs=None):
        return registry.get_kernel(op).fn(ctx, inputs, attrs or {})

    (handle,) = run("TensorArrayV2", [ctx.asarray(np.int32(2))], {"dtype": F32})
    value = ctx.asarray(np.float32([1, 2]))
    (flow,) = run("TensorArrayWriteV2", [handle, ctx.asarray(np.int32(1)), value,
                                         ctx.asarray(np.float32(0))])
    (size,) = run("TensorArraySizeV2", [handle, flow])
    (stacked,) = run("TensorArrayGatherV2", [handle, ctx.asarray(np.int32([1])), flow],
                     {"dtype": F32})
    assert int(ctx.to_numpy(size)) == 2
    np.testing.assert_array_equal(ctx.to_numpy(stacked), [[1, 2]])
    assert run("TensorArrayCloseV2", [handle]) == [] and handle.closed
