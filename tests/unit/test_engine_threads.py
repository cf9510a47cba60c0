"""Signature calls from several threads: a call of a signature with side effects is atomic
with respect to the model's other calls; signatures without effects run unlocked."""
from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from engine_graphs import const, install_test_kernels, install_test_op, meta_graph, node, placeholder, save, signature

from sm_notebook.engine.loader import load_model
from sm_notebook.engine.ops import registry

F32 = np.float32
THREADS, CALLS = 8, 1000


def _yield(ctx, inputs, attrs):
    time.sleep(0)  # let another thread run here, between the read and the write
    return [inputs[0]]


@pytest.fixture(autouse=True)
def kernels(monkeypatch):
    install_test_kernels(monkeypatch)
    install_test_op(monkeypatch, "_TYield", _yield)


def _counter_model(tmp_path):
    """``bump``: v = read(v) + 1, returning the new value (read, add, assign: three steps);
    ``double``: x + x, no effects."""
    dt = np.dtype(F32)
    nodes = [node("v", "VarHandleOp", shared_name="v", dtype=dt, shape=()),
             const("zero", 0.0, F32), node("init", "AssignVariableOp", ["v", "zero"], dtype=dt),
             node("old", "ReadVariableOp", ["v"], dtype=dt), node("slow", "_TYield", ["old"]),
             const("one", 1.0, F32), node("new", "_TAdd", ["slow", "one"]),
             node("write", "AssignVariableOp", ["v", "new"], dtype=dt),
             node("after", "ReadVariableOp", ["v", "^write"], dtype=dt),
             placeholder("x", F32, ()), node("twice", "_TAdd", ["x", "x"])]
    sigs = {"bump": signature({}, {"v": ("after:0", F32, ())}),
            "double": signature({"x": ("x:0", F32, ())}, {"y": ("twice:0", F32, ())})}
    mg = meta_graph(nodes, sigs)
    mg.collection_def["saved_model_main_op"].node_list.value.append("init")
    return load_model(save(tmp_path / "m", mg))


def test_calls_of_a_signature_with_effects_are_atomic(tmp_path):
    model = _counter_model(tmp_path)
    bump = model.signatures["bump"]
    assert bump.plan.has_effects
    with ThreadPoolExecutor(THREADS) as pool:
        seen = list(pool.map(lambda _: float(bump()["v"]), range(CALLS)))
    assert float(model.variables["v"].value) == CALLS
    assert sorted(seen) == list(range(1, CALLS + 1))  # every call saw its own increment


def test_signatures_without_effects_do_not_take_the_lock(tmp_path):
    model = _counter_model(tmp_path)
    double = model.signatures["double"]
    assert not double.plan.has_effects
    result = []
    with model._call_lock:  # a call with effects in progress elsewhere
        worker = threading.Thread(target=lambda: result.append(float(double(x=2.0)["y"])))
        worker.start()
        worker.join(timeout=120)  # hang guard only: it returns at once unless it waits on the lock
        assert result == [4.0]


@pytest.mark.parametrize("stride", [1, 2])
def test_concurrent_calls_of_a_depthwise_conv_keep_their_own_padded_copies(tmp_path, stride):
    """The flat depthwise conv keeps its zero-bordered padded copies between calls (one per
    concurrent call): calls from several threads, each with its own input, give exactly
    what the same calls give one after another."""
    rng = np.random.default_rng(0)
    nodes = [placeholder("x", F32, (None, 9, 9, 4)),
             const("w", rng.standard_normal((3, 3, 4, 1)).astype(F32)),
             const("b", rng.standard_normal(4).astype(F32)),
             node("dw", "DepthwiseConv2dNative", ["x", "w"], strides=[1, stride, stride, 1], padding="SAME",
                  T=np.dtype(F32)),
             node("bias", "BiasAdd", ["dw", "b"], T=np.dtype(F32)),
             node("y", "Relu6", ["bias"], T=np.dtype(F32))]
    mg = meta_graph(nodes, {"serving_default": signature({"x": ("x:0", F32, (None, 9, 9, 4))},
                                                         {"y": ("y:0", F32, None)})})
    fn = load_model(save(tmp_path / "m", mg)).signatures["serving_default"]
    assert "(DepthwiseConv2dNative + BiasAdd + Relu6)" in fn.plan.describe()
    inputs = [rng.standard_normal((1 + k % 3, 9, 9, 4)).astype(F32) * 4 for k in range(200)]
    alone = [fn(x=x)["y"] for x in inputs]
    with ThreadPoolExecutor(THREADS) as pool:
        together = list(pool.map(lambda x: fn(x=x)["y"], inputs))
    for a, b in zip(alone, together):
        np.testing.assert_array_equal(a, b)
