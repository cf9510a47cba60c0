"""Limits on what a model's numbers can make the engine do: memory (the memory cap and
node output counts, checked before allocating), loop iterations (max_loop_iterations,
Ctrl-C still working), and nodes lacking attrs (SavedModelError, not KeyError)."""
from __future__ import annotations

import os
import pickle
import resource
import sys
import threading
import _thread
import tracemalloc

import numpy as np
import pytest

from engine_graphs import (Func, const, function, install_test_kernels, meta_graph, node,
                           placeholder, save, signature)

import sm_notebook
from sm_notebook.engine.context import KernelContext
from sm_notebook.engine.loader import load_model
from sm_notebook.engine.ops import registry
from sm_notebook.errors import SavedModelError

F32 = np.float32
I32 = np.int32
MiB = 2**20


@pytest.fixture(autouse=True)
def kernels(monkeypatch):
    install_test_kernels(monkeypatch)


def _model(tmp_path, nodes, out="y:0", functions=(), inputs=None, dtype=F32, **load_options):
    sig = signature(inputs or {}, {"y": (out, dtype, None)})
    mg = meta_graph(nodes, {"serving_default": sig}, functions)
    return load_model(save(tmp_path / "m", mg), **load_options).signatures["serving_default"]


def in_limited_child(fn, headroom=512 * MiB, cpu_seconds=120):
    """Run ``fn()`` in a forked child whose address space may grow by ``headroom`` only
    (RLIMIT_AS) and that may use ``cpu_seconds`` of CPU (RLIMIT_CPU): a kernel that
    allocates or loops before checking fails there (MemoryError, or killed: "crashed"),
    without taking the machine's memory or hanging the test. Returns ``(exception type name, message)``,
    ``("ok", "")`` when ``fn`` returned."""
    if not sys.platform.startswith("linux"):
        pytest.skip("needs fork and RLIMIT_AS (Linux)")
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.close(read)
        try:
            with open("/proc/self/statm") as statm:
                used = int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
            resource.setrlimit(resource.RLIMIT_AS, (used + headroom, resource.RLIM_INFINITY))
            spent = int(resource.getrusage(resource.RUSAGE_SELF).ru_utime)
            resource.setrlimit(resource.RLIMIT_CPU, (spent + cpu_seconds, resource.RLIM_INFINITY))
            fn()
            result = ("ok", "")
        except BaseException as exc:  # noqa: BLE001 - reported to the parent
            result = (type(exc).__name__, str(exc)[:2000])
        with os.fdopen(write, "wb") as out:
            out.write(pickle.dumps(result))
        os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as source:
        data = source.read()
    os.waitpid(pid, 0)
    return pickle.loads(data) if data else ("crashed", "")


# --------------------------------------------------------------------------- output counts

def _split_nodes(num_split):
    return [const("e", np.zeros((0,), F32)), const("ax", 0, I32),
            node("y", "Split", ["ax", "e"], num_split=num_split, T=np.dtype(F32))]


def _unpack_nodes(num):
    return [const("e", np.zeros((num, 0), F32)), node("y", "Unpack", ["e"], num=num, T=np.dtype(F32))]


@pytest.mark.parametrize("nodes, count", [(_split_nodes(10**9), "1,000,000,000"),
                                          (_split_nodes(10**7), "10,000,000"),
                                          (_unpack_nodes(10**7), "10,000,000")],
                         ids=["split-1e9", "split-1e7", "unpack-1e7"])
def test_huge_output_counts_are_refused_before_building_outputs(tmp_path, nodes, count):
    def call():
        _model(tmp_path, nodes)()
    kind, message = in_limited_child(call)
    assert kind == "SavedModelError", (kind, message)
    assert f"{count} outputs" in message and "node 'y'" in message


def test_output_counts_are_checked_against_the_memory_cap(tmp_path):
    fn = _model(tmp_path, _split_nodes(100_000), memory_cap=4 * MiB)
    tracemalloc.start()
    try:
        with pytest.raises(SavedModelError, match=r"100,000 outputs.*memory cap of 4.0 MiB"):
            fn()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2 * MiB
    assert len(_model(tmp_path / "ok", _split_nodes(1000), memory_cap=4 * MiB)()["y"]) == 0


@pytest.mark.parametrize("op, inputs, attrs", [
    ("Split", [np.int32(0), np.zeros((0,), F32)], {"num_split": 10**9}),
    ("Unpack", [np.zeros((10**7, 0), F32)], {"num": 10**7}),
    ("SplitV", [np.zeros((0,), F32), np.zeros(10**7, np.int64), np.int32(0)], {"num_split": 10**7}),
], ids=["Split", "Unpack", "SplitV"])
def test_kernels_check_their_output_count_against_the_cap(op, inputs, attrs):
    def call():
        ctx = KernelContext(memory_cap=64 * MiB)
        registry.get_kernel(op).fn(ctx, inputs, attrs)
    kind, message = in_limited_child(call)
    assert kind == "SavedModelError" and "outputs" in message, (kind, message)


# --------------------------------------------------------------------------- the memory cap

def _filled(name, elements, value=0.0):
    """A float32 vector of ``elements`` zeros made by Fill (small in the model)."""
    return [const(f"{name}_dims", [elements], I32), const(f"{name}_value", value, F32),
            node(name, "Fill", [f"{name}_dims", f"{name}_value"], T=np.dtype(F32))]


QUARTER = 64 * 1024  # float32 elements in 256 KiB

AMPLIFIERS = {
    "ConcatV2": _filled("b", QUARTER) + [
        const("ax", 0, I32), node("y", "ConcatV2", ["b"] * 64 + ["ax"], N=64, T=np.dtype(F32))],
    "Pack": _filled("b", QUARTER) + [node("y", "Pack", ["b"] * 64, N=64, T=np.dtype(F32))],
    "GatherV2": _filled("b", QUARTER) + [
        const("zero", 0, I32), const("idx", np.zeros(64, I32)),
        node("rows", "ExpandDims", ["b", "zero"]),
        node("y", "GatherV2", ["rows", "idx", "zero"], batch_dims=0)],
    "GatherNd": _filled("b", QUARTER) + [
        const("zero", 0, I32), const("idx", np.zeros((64, 1), I32)),
        node("rows", "ExpandDims", ["b", "zero"]), node("y", "GatherNd", ["rows", "idx"])],
}


@pytest.mark.parametrize("op", sorted(AMPLIFIERS))
def test_ops_that_repeat_their_inputs_respect_the_memory_cap(tmp_path, op):
    """64 copies of a 256 KiB input would take 16 MiB; the cap is 1 MiB."""
    fn = _model(tmp_path, AMPLIFIERS[op], memory_cap=MiB)
    tracemalloc.start()
    try:
        with pytest.raises(SavedModelError, match=rf"{op} would allocate 16.0 MiB.*memory cap"):
            fn()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2 * MiB
    assert _model(tmp_path / "big", AMPLIFIERS[op], memory_cap=32 * MiB)()["y"].nbytes == 16 * MiB


def _run_kernels(ctx, *calls):
    """Run ``(op, inputs, attrs)`` kernel calls in order, each fed the previous outputs
    where its inputs say ``PREVIOUS``."""
    previous = None
    for op, inputs, attrs in calls:
        inputs = [previous[0] if x is PREVIOUS else x for x in inputs]
        previous = registry.get_kernel(op).fn(ctx, inputs, attrs)
    return previous


PREVIOUS = object()
ROW = np.zeros(QUARTER, F32)  # 256 KiB


def _objects(*values):
    out = np.empty(len(values), object)
    out[:] = list(values)
    return out


#: Kernel calls whose output (or scratch) is sized by values or attrs: 16 MiB or more
#: from inputs of at most 256 KiB.
SIZED_BY_VALUES = {
    "StringJoin": [("StringJoin", [np.array(b"x" * (256 * 1024), object), _objects(*[b""] * 64)],
                    {})],
    "AsString": [("AsString", [np.zeros(16, I32)], {"width": MiB})],
    "TensorListGather": [
        ("TensorListFromTensor", [ROW.reshape(1, -1), np.int32(-1)], {}),
        ("TensorListGather", [PREVIOUS, np.zeros(64, I32), np.int32(-1)],
         {"element_dtype": np.dtype(F32)})],
    "ParseExampleV2": [("ParseExampleV2", [
        _objects(*[b""] * 64), _objects(), _objects(), _objects(b"a"), _objects(), ROW],
        {"Tdense": [np.dtype(F32)], "dense_shapes": [(QUARTER,)], "num_sparse": 0,
         "sparse_types": [], "ragged_value_types": [], "ragged_split_types": []})],
    "ResizeArea": [("ResizeArea", [np.zeros((1, QUARTER, 1, 1), F32),
                                   np.array([QUARTER, 1], I32)], {})],
    "MatrixDiagPartV3": [("MatrixDiagPartV3", [np.zeros((0, 0), F32),
                                               np.array([-10**12, 10**12], np.int64),
                                               np.float32(0)], {})],
}


@pytest.mark.parametrize("case", sorted(SIZED_BY_VALUES))
def test_kernels_sized_by_values_check_the_cap_first(case):
    def call():
        _run_kernels(KernelContext(memory_cap=MiB), *SIZED_BY_VALUES[case])
    kind, message = in_limited_child(call, cpu_seconds=60)
    assert kind == "SavedModelError" and "memory cap" in message, (kind, message)


# --------------------------------------------------------------------------- loops

def _counting_while(stateless=False):
    """x counted up by one while x < limit (a float32 input)."""
    cond = function("cond_f", [("i", F32), ("n", F32)], {"out": "lt:z:0"},
                    [node("lt", "_TLess", ["i", "n"])])
    body = function("body_f", [("i", F32), ("n", F32)], {"i2": "inc:z:0", "n2": "n"},
                    [const("one", 1.0, F32), node("inc", "_TAdd", ["i", "one:output:0"])])
    nodes = [placeholder("n", F32, ()), const("zero", 0.0, F32),
             node("loop", "StatelessWhile" if stateless else "While", ["zero", "n"],
                  cond=Func("cond_f"), body=Func("body_f"), T=[F32, F32]),
             node("y", "Identity", ["loop"])]
    return nodes, [cond, body]


def _counting_tf1_loop():
    """The same loop as tf.compat.v1.while_loop writes it (an Enter..Exit frame)."""
    frame = "while/while_context"

    def enter(name, source, constant=False):
        return node(name, "Enter", [source], frame_name=frame, is_constant=constant,
                    parallel_iterations=10)
    return [placeholder("n", F32, ()), const("zero", 0.0, F32),
            enter("while/Enter", "zero"),
            node("while/Merge", "Merge", ["while/Enter", "while/NextIteration"], N=2),
            enter("while/Less/Enter", "n", constant=True),
            node("while/Less", "_TLess", ["while/Merge", "while/Less/Enter"]),
            node("while/LoopCond", "LoopCond", ["while/Less"]),
            node("while/Switch", "Switch", ["while/Merge", "while/LoopCond"]),
            node("while/Identity", "Identity", ["while/Switch:1"]),
            const("while/add/y", 1.0, F32, inputs=["^while/Identity"]),
            node("while/add", "_TAdd", ["while/Identity", "while/add/y"]),
            node("while/NextIteration", "NextIteration", ["while/add"]),
            node("while/Exit", "Exit", ["while/Switch"]),
            node("y", "Identity", ["while/Exit"])], []


LOOPS = {"While": lambda: _counting_while(), "StatelessWhile": lambda: _counting_while(True),
         "TF1 frame": _counting_tf1_loop}
N_IN = {"n": ("n:0", F32, ())}


@pytest.mark.parametrize("kind", sorted(LOOPS))
def test_loops_stop_at_max_loop_iterations_with_a_clear_error(tmp_path, kind):
    nodes, functions = LOOPS[kind]()
    fn = _model(tmp_path, nodes, functions=functions, inputs=N_IN, max_loop_iterations=50)
    assert fn(n=50.0)["y"] == 50.0  # exactly the limit is allowed
    with pytest.raises(SavedModelError) as caught:
        fn(n=51.0)
    message = str(caught.value)
    assert "ran 50 iterations" in message and "max_loop_iterations=N" in message
    assert ("'while/while_context/_loop'" if kind == "TF1 frame" else "Node 'loop'") in message


def test_max_loop_iterations_has_a_generous_default_and_is_checked(tmp_path):
    from sm_notebook.engine.context import DEFAULT_MAX_LOOP_ITERATIONS
    assert DEFAULT_MAX_LOOP_ITERATIONS == 10_000_000
    nodes, functions = _counting_while()
    mg = meta_graph(nodes, {"serving_default": signature(N_IN, {"y": ("y:0", F32, ())})}, functions)
    export = save(tmp_path / "m", mg)
    model = sm_notebook.load(export, max_loop_iterations=7)  # the public load takes it
    with pytest.raises(SavedModelError, match="ran 7 iterations"):
        model.signatures["serving_default"](n=8.0)
    with pytest.raises(SavedModelError, match="ran 7 iterations"):
        model.to("numpy").signatures["serving_default"](n=8.0)  # kept by to()
    for bad in (0, -1, 2.5, True, "10"):
        with pytest.raises(SavedModelError, match="max_loop_iterations"):
            load_model(export, max_loop_iterations=bad)


@pytest.mark.parametrize("kind", sorted(LOOPS))
def test_ctrl_c_stops_a_long_loop_as_keyboard_interrupt(tmp_path, kind):
    """KeyboardInterrupt (a BaseException) passes every layer unwrapped and unswallowed."""
    nodes, functions = LOOPS[kind]()
    fn = _model(tmp_path, nodes, functions=functions, inputs=N_IN, max_loop_iterations=10**12)
    timer = threading.Timer(0.3, _thread.interrupt_main)
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            fn(n=1e12)
    finally:
        timer.cancel()


# --------------------------------------------------------------------------- missing attrs

@pytest.mark.parametrize("nodes, attr", [
    ([const("e", np.zeros((0,), F32)), const("ax", 0, I32), node("y", "Split", ["ax", "e"])],
     "num_split"),
    ([const("e", np.zeros((3, 0), F32)), node("y", "Unpack", ["e"])], "num"),
    ([const("a", [1.0], F32), node("y", "IdentityN", ["a"])], "T"),
], ids=["Split", "Unpack", "IdentityN"])
def test_a_node_lacking_an_attr_that_sizes_its_outputs_is_a_saved_model_error(tmp_path, nodes, attr):
    fn = _model(tmp_path, nodes)
    with pytest.raises(SavedModelError, match=rf"'{attr}'.*no (such )?attr.*node 'y'|no attr '{attr}'.*node 'y'"):
        fn()


def test_kernels_reading_a_missing_attr_raise_saved_model_error(tmp_path):
    nodes = [const("x", np.zeros((1, 2, 2, 4), F32)), node("y", "DepthToSpace", ["x"])]
    with pytest.raises(SavedModelError, match=r"DepthToSpace.*lacks attribute 'block_size'"):
        _model(tmp_path, nodes)()
