"""The engine's planner and interpreter on hand-built graphs: pruning, folding, elision,
freeing, function inlining, TF1 cond/while, functional If/While, debugging switches."""
from __future__ import annotations

import gc
import weakref

import numpy as np
import pytest

from engine_graphs import (Counter, Func, const, function, install_test_kernels, install_test_op, meta_graph, node,
                           placeholder, save, signature)

import sm_notebook.engine.ops  # noqa: F401
from sm_notebook.engine.attrs import OpDefaults, decode_attr, decode_node_attrs
from sm_notebook.engine.loader import load_model
from sm_notebook.engine.ops.registry import FuncAttr
from sm_notebook.errors import SavedModelError

F32 = np.float32
X = {"x": ("x:0", F32, (None,))}


@pytest.fixture(autouse=True)
def kernels(monkeypatch):
    install_test_kernels(monkeypatch)


def _load(tmp_path, nodes, outputs, inputs=X, functions=(), backend="numpy", **kw):
    mg = meta_graph(nodes, {"serving_default": signature(inputs, outputs)}, functions)
    return load_model(save(tmp_path / "m", mg), backend=backend, **kw)


def _ops(fn):
    return [i.op for i in fn.plan.info]


# --------------------------------------------------------------------------- pruning and folding

def test_constants_fold_and_unused_nodes_are_pruned(tmp_path):
    nodes = [placeholder("x"), const("a", 2.0, F32), const("b", 3.0, F32),
             node("ab", "_TMul", ["a", "b"]), node("y", "_TAdd", ["x", "ab"]),
             node("unused", "NoSuchOp", ["x"])]
    model = _load(tmp_path, nodes, {"y": ("y:0", F32, (None,))})
    fn = model.signatures["serving_default"]
    out = fn(x=np.array([1.0, 2.0], F32))
    np.testing.assert_array_equal(out["y"], [7.0, 8.0])
    assert _ops(fn) == ["_TAdd"]  # a*b folded; NoSuchOp never needed


def test_stateful_kernels_are_never_folded(tmp_path):
    nodes = [placeholder("x"), const("a", 1.0, F32), node("c", "_TCount", ["a"]),
             node("y", "_TAdd", ["x", "c"])]
    fn = _load(tmp_path, nodes, {"y": ("y:0", F32, (None,))}).signatures["serving_default"]
    for _ in range(3):
        fn(x=np.zeros(1, F32))
    assert Counter.calls == 3


def test_identity_chains_vanish_and_constant_outputs_are_copies(tmp_path):
    nodes = [placeholder("x"), node("i1", "Identity", ["x"]), node("i2", "Identity", ["i1"]),
             const("k", [1.0, 2.0], F32), node("ki", "Identity", ["k"])]
    fn = _load(tmp_path, nodes, {"y": ("i2:0", F32, (None,)), "k": ("ki:0", F32, (2,))}
               ).signatures["serving_default"]
    assert len(fn.plan) == 0
    first = fn(x=np.ones(2, F32))
    first["k"][0] = 99.0  # must not change the model's constant
    np.testing.assert_array_equal(fn(x=np.ones(2, F32))["k"], [1.0, 2.0])


def test_intermediates_are_freed_after_their_last_consumer(tmp_path, monkeypatch):
    refs = []

    def make(ctx, inputs, attrs):
        out = inputs[0] * 2
        refs.append(weakref.ref(out))
        return [out]

    def check(ctx, inputs, attrs):
        gc.collect()
        assert refs[-1]() is None, "the first intermediate is still alive"
        return [inputs[0]]

    install_test_op(monkeypatch, "_TMake", make)
    install_test_op(monkeypatch, "_TCheck", check)
    nodes = [placeholder("x"), node("a", "_TMake", ["x"]), node("b", "_TAdd", ["a", "a"]),
             node("c", "_TCheck", ["b"])]
    fn = _load(tmp_path, nodes, {"y": ("c:0", F32, (None,))}).signatures["serving_default"]
    np.testing.assert_array_equal(fn(x=np.ones(3, F32))["y"], [4.0, 4.0, 4.0])


def test_unsupported_op_error_names_op_node_and_function(tmp_path):
    body = [node("bad", "Zeta", ["a", "a"], T=F32)]  # a TensorFlow op without a kernel
    f = function("f", [("a", F32)], {"out": "bad:z:0"}, body)
    nodes = [placeholder("x"), node("call", "PartitionedCall", ["x"], f=Func("f"),
                                    Tin=[F32], Tout=[F32])]
    fn = _load(tmp_path, nodes, {"y": ("call:0", F32, (None,))}, functions=[f]
               ).signatures["serving_default"]
    with pytest.raises(SavedModelError, match=r"Zeta.*call/bad.*function 'f'"):
        fn(x=np.ones(1, F32))


def test_io_ops_are_refused_at_load_naming_op_and_node(tmp_path):
    nodes = [placeholder("path", object, ()), node("read", "ReadFile", ["path"])]
    with pytest.raises(SavedModelError, match=r"ReadFile.*'read'"):
        _load(tmp_path, nodes, {"y": ("read:0", object, ())},
              inputs={"p": ("path:0", object, ())})


# --------------------------------------------------------------------------- functions

def test_function_calls_are_inlined_with_function_def_naming(tmp_path):
    inner = function("inner", [("u", F32), ("v", F32)], {"s": "add:z:0", "p": "mul:z:0"},
                     [node("add", "_TAdd", ["u", "v"]), node("mul", "_TMul", ["u", "v"])])
    outer = function("outer", [("a", F32)], {"r": "add2:z:0"},
                     [const("two", 2.0, F32),
                      node("c", "StatefulPartitionedCall", ["a", "two:output:0"], f=Func("inner"),
                           Tin=[F32, F32], Tout=[F32, F32]),
                      node("add2", "_TAdd", ["c:output:0", "c:output:1"])])
    nodes = [placeholder("x"), node("call", "StatefulPartitionedCall", ["x"], f=Func("outer"),
                                    Tin=[F32], Tout=[F32])]
    fn = _load(tmp_path, nodes, {"y": ("call:0", F32, (None,))}, functions=[inner, outer]
               ).signatures["serving_default"]
    np.testing.assert_array_equal(fn(x=np.array([1.0, 3.0], F32))["y"], [5.0, 11.0])
    assert _ops(fn) == ["_TAdd", "_TMul", "_TAdd"]
    assert fn.plan.info[0].name == "call/c/add" and fn.plan.info[0].function == "inner"


def test_nodes_whose_op_is_a_library_function_are_calls(tmp_path):
    pair = function("pair", [("u", F32)], {"first": "d:z:0", "output": "t:z:0"},
                    [node("d", "_TAdd", ["u", "u"]), node("t", "_TMul", ["u", "u"])])
    user = function("user", [("a", F32)], {"r": "s:z:0"},
                    [node("p", "pair", ["a"]), node("s", "_TAdd", ["p:output:0", "p:first:0"])])
    nodes = [placeholder("x"), node("call", "user", ["x"]), node("y", "Identity", ["call:0"])]
    fn = _load(tmp_path, nodes, {"y": ("y:0", F32, (None,))}, functions=[pair, user]
               ).signatures["serving_default"]
    np.testing.assert_array_equal(fn(x=np.array([3.0], F32))["y"], [15.0])  # 9 + 6


def test_control_outputs_of_a_function_run_even_when_unused(tmp_path):
    f = function("f", [("a", F32)], {"out": "a"}, [node("side", "_TCount", ["a"])],
                 control_ret={"side": "side"})
    nodes = [placeholder("x"), node("call", "StatefulPartitionedCall", ["x"], f=Func("f"),
                                    Tin=[F32], Tout=[F32])]
    fn = _load(tmp_path, nodes, {"y": ("call:0", F32, (None,))}, functions=[f]
               ).signatures["serving_default"]
    fn(x=np.ones(1, F32))
    assert Counter.calls == 1


def test_functional_if_and_while(tmp_path):
    then_f = function("then_f", [("a", F32)], {"out": "m:z:0"},
                      [const("k", 10.0, F32), node("m", "_TMul", ["a", "k:output:0"])])
    else_f = function("else_f", [("a", F32)], {"out": "n:z:0"}, [node("n", "_TAdd", ["a", "a"])])
    cond_f = function("cond_f", [("i", F32), ("v", F32)], {"out": "lt:z:0"},
                      [const("lim", 3.0, F32), node("lt", "_TLess", ["i", "lim:output:0"])])
    body_f = function("body_f", [("i", F32), ("v", F32)], {"i2": "inc:z:0", "v2": "dbl:z:0"},
                      [const("one", 1.0, F32), node("inc", "_TAdd", ["i", "one:output:0"]),
                       node("dbl", "_TAdd", ["v", "v"])])
    nodes = [placeholder("x"), placeholder("p", bool, ()), const("zero", 0.0, F32),
             node("if", "StatelessIf", ["p", "x"], then_branch=Func("then_f"),
                  else_branch=Func("else_f"), Tcond=np.dtype(bool), Tin=[F32], Tout=[F32]),
             node("loop", "While", ["zero", "x"], cond=Func("cond_f"), body=Func("body_f"),
                  T=[F32, F32])]
    inputs = {"x": ("x:0", F32, (None,)), "p": ("p:0", bool, ())}
    fn = _load(tmp_path, nodes, {"y": ("if:0", F32, (None,)), "w": ("loop:1", F32, (None,))},
               inputs=inputs, functions=[then_f, else_f, cond_f, body_f]).signatures["serving_default"]
    out = fn(x=np.array([1.0, 2.0], F32), p=True)
    np.testing.assert_array_equal(out["y"], [10.0, 20.0])
    np.testing.assert_array_equal(out["w"], [8.0, 16.0])
    np.testing.assert_array_equal(fn(x=np.array([1.0], F32), p=False)["y"], [2.0])


# --------------------------------------------------------------------------- TF1 control flow

def _tf1_cond_nodes():
    """y = x * 10 if p else x + 1, as tf.compat.v1.cond writes it."""
    return [placeholder("x"), placeholder("p", bool, ()),
            node("cond/Switch", "Switch", ["p", "p"]),
            node("cond/switch_t", "Identity", ["cond/Switch:1"]),
            node("cond/switch_f", "Identity", ["cond/Switch"]),
            node("cond/pred_id", "Identity", ["p"]),
            node("cond/mul/Switch", "Switch", ["x", "cond/pred_id"]),
            const("cond/mul/y", 10.0, F32, inputs=["^cond/switch_t"]),
            node("cond/mul", "_TMul", ["cond/mul/Switch:1", "cond/mul/y"]),
            node("cond/add/Switch", "Switch", ["x", "cond/pred_id"]),
            const("cond/add/y", 1.0, F32, inputs=["^cond/switch_f"]),
            node("cond/add", "_TAdd", ["cond/add/Switch", "cond/add/y"]),
            node("cond/Merge", "Merge", ["cond/add", "cond/mul"], N=2)]


@pytest.mark.parametrize("backend", ["numpy", "array_api_strict"])
def test_tf1_cond_runs_one_branch_with_dead_tensors(tmp_path, backend):
    inputs = {"x": ("x:0", F32, (None,)), "p": ("p:0", bool, ())}
    fn = _load(tmp_path, _tf1_cond_nodes(), {"y": ("cond/Merge:0", F32, (None,))}, inputs=inputs,
               backend=backend).signatures["serving_default"]
    np.testing.assert_array_equal(fn(x=[1.0, 2.0], p=True).numpy()["y"], [10.0, 20.0])
    np.testing.assert_array_equal(fn(x=[1.0, 2.0], p=False).numpy()["y"], [2.0, 3.0])


def test_fetching_an_untaken_branch_is_an_error(tmp_path):
    inputs = {"x": ("x:0", F32, (None,)), "p": ("p:0", bool, ())}
    fn = _load(tmp_path, _tf1_cond_nodes(), {"y": ("cond/mul:0", F32, (None,))}, inputs=inputs
               ).signatures["serving_default"]
    np.testing.assert_array_equal(fn(x=[1.0], p=True)["y"], [10.0])
    with pytest.raises(SavedModelError, match="branch"):
        fn(x=[1.0], p=False)


def _tf1_while_nodes(frame="while/while_context"):
    """(i, acc) = (0, x); while i < n: (i + 1, acc * 2), as tf.compat.v1.while_loop writes it."""
    def enter(name, source, constant=False):
        return node(name, "Enter", [source], frame_name=frame, is_constant=constant,
                    parallel_iterations=10)
    return [placeholder("x"), placeholder("n", F32, ()), const("zero", 0.0, F32),
            enter("while/Enter", "zero"), enter("while/Enter_1", "x"),
            node("while/Merge", "Merge", ["while/Enter", "while/NextIteration"], N=2),
            node("while/Merge_1", "Merge", ["while/Enter_1", "while/NextIteration_1"], N=2),
            enter("while/Less/Enter", "n", constant=True),
            node("while/Less", "_TLess", ["while/Merge", "while/Less/Enter"]),
            node("while/LoopCond", "LoopCond", ["while/Less"]),
            node("while/Switch", "Switch", ["while/Merge", "while/LoopCond"]),
            node("while/Switch_1", "Switch", ["while/Merge_1", "while/LoopCond"]),
            node("while/Identity", "Identity", ["while/Switch:1"]),
            node("while/Identity_1", "Identity", ["while/Switch_1:1"]),
            const("while/add/y", 1.0, F32, inputs=["^while/Identity"]),
            node("while/add", "_TAdd", ["while/Identity", "while/add/y"]),
            node("while/mul", "_TAdd", ["while/Identity_1", "while/Identity_1"]),
            node("while/NextIteration", "NextIteration", ["while/add"]),
            node("while/NextIteration_1", "NextIteration", ["while/mul"]),
            node("while/Exit", "Exit", ["while/Switch"]),
            node("while/Exit_1", "Exit", ["while/Switch_1"]),
            node("y", "_TAdd", ["while/Exit_1", "while/Exit_1"])]


@pytest.mark.parametrize("backend", ["numpy", "array_api_strict"])
def test_tf1_while_loop_becomes_one_structured_loop(tmp_path, backend):
    inputs = {"x": ("x:0", F32, (None,)), "n": ("n:0", F32, ())}
    outputs = {"y": ("y:0", F32, (None,)), "i": ("while/Exit:0", F32, ())}
    fn = _load(tmp_path, _tf1_while_nodes(), outputs, inputs=inputs, backend=backend
               ).signatures["serving_default"]
    assert _ops(fn) == ["_V1Loop", "_TAdd"]
    out = fn(x=[1.0, 3.0], n=3.0).numpy()
    np.testing.assert_array_equal(out["y"], [16.0, 48.0])
    assert out["i"] == 3.0
    np.testing.assert_array_equal(fn(x=[1.0], n=0.0).numpy()["y"], [2.0])


# --------------------------------------------------------------------------- debugging

def test_debug_traces_every_node_and_stops_where_asked(tmp_path):
    nodes = [placeholder("x"), node("a", "_TAdd", ["x", "x"]), node("b", "_TMul", ["a", "a"]),
             node("c", "_TAdd", ["b", "x"])]
    fn = _load(tmp_path, nodes, {"y": ("c:0", F32, (None,))}).signatures["serving_default"]
    seen = []
    run = fn.debug(trace=seen.append, x=np.array([1.0, 2.0], F32))
    assert [r.name for r in run.records] == ["a", "b", "c"]
    assert "float32[2]" in str(run.records[0])
    np.testing.assert_array_equal(run.outputs["y"], [5.0, 18.0])
    np.testing.assert_array_equal(run.values["b"][0], [4.0, 16.0])
    stopped = fn.debug(trace=False, stop_after="b", x=np.array([1.0], F32))
    assert stopped.outputs is None and stopped.stopped_at == "b"
    assert list(stopped.values) == ["a", "b"]
    assert fn.debug(trace=False, stop_after=0, x=np.array([1.0], F32)).stopped_at == "a"


def test_debug_traces_into_functions_with_depth(tmp_path, capsys):
    body = function("body_f", [("a", F32)], {"out": "d:z:0"}, [node("d", "_TAdd", ["a", "a"])])
    nodes = [placeholder("x"), node("call", "If", ["x", "x"], then_branch=Func("body_f"),
                                    else_branch=Func("body_f"), Tin=[F32], Tout=[F32])]
    fn = _load(tmp_path, nodes, {"y": ("call:0", F32, ())}, inputs={"x": ("x:0", F32, ())},
               functions=[body]).signatures["serving_default"]
    run = fn.debug(x=np.float32(1.0))
    assert [(r.name, r.depth) for r in run.records] == [("d", 1), ("call", 0)]
    assert "d (_TAdd)" in capsys.readouterr().out


def test_debug_runs_the_unoptimised_plan_and_stops_at_fused_nodes(tmp_path):
    """The optimised plan fuses BiasAdd and Relu into the MatMul step and elides the
    Identity; the debugger still stops after each of them (issue: it ran to the end)."""
    rng = np.random.default_rng(3)
    nodes = [placeholder("x", F32, (None, 3)), const("w", rng.standard_normal((3, 2)).astype(F32)),
             const("b", rng.standard_normal(2).astype(F32)),
             node("mm", "MatMul", ["x", "w"], T=np.dtype(F32)),
             node("bias", "BiasAdd", ["mm", "b"], T=np.dtype(F32)),
             node("ident", "Identity", ["bias"], T=np.dtype(F32)),
             node("act", "Relu", ["ident"], T=np.dtype(F32))]
    fn = _load(tmp_path, nodes, {"y": ("act:0", F32, (None, 2))},
               inputs={"x": ("x:0", F32, (None, 3))}).signatures["serving_default"]
    x = rng.standard_normal((2, 3)).astype(F32)
    expected = fn(x=x).numpy()["y"]
    assert "MatMul + BiasAdd + Relu" in fn.plan.describe() and "ident" not in fn.plan.describe()
    for name in ("bias", "ident", "act"):
        run = fn.debug(trace=False, stop_after=name, x=x)
        assert run.stopped_at == name and run.outputs is None
    run = fn.debug(trace=False, stop_after="ident", x=x)
    np.testing.assert_allclose(run.values["bias"][0], x @ _const_value(nodes, "w") + _const_value(nodes, "b"),
                               rtol=1e-6, atol=1e-6)
    full = fn.debug(trace=False, x=x)
    np.testing.assert_array_equal(full.outputs["y"], expected)
    names = [r.name for r in full.records]
    assert sorted(names) == ["act", "b", "bias", "ident", "mm", "w"]  # every node, consts too
    assert [n for n in names if n in ("mm", "bias", "ident", "act")] == ["mm", "bias", "ident", "act"]
    np.testing.assert_array_equal(fn(x=x).numpy()["y"], expected)  # the optimised plan is untouched


def test_debug_refuses_a_stop_after_that_names_no_node(tmp_path):
    nodes = [placeholder("x"), node("first_add", "_TAdd", ["x", "x"]), node("b", "_TMul", ["first_add", "x"])]
    fn = _load(tmp_path, nodes, {"y": ("b:0", F32, (None,))}).signatures["serving_default"]
    with pytest.raises(SavedModelError, match=r"stop_after='first_ad'.*Near names: 'first_add'"):
        fn.debug(trace=False, stop_after="first_ad", x=np.array([1.0], F32))
    with pytest.raises(SavedModelError, match="only 2 steps"):
        fn.debug(trace=False, stop_after=7, x=np.array([1.0], F32))


def _const_value(nodes, name):
    from sm_notebook.format.tensors import tensor_proto_to_numpy
    (found,) = [n for n in nodes if n.name == name]
    return tensor_proto_to_numpy(found.attr["value"].tensor)


# --------------------------------------------------------------------------- attrs

def test_attr_decoding_and_defaults():
    from sm_notebook._proto import graph_pb2
    from engine_graphs import attr_value

    assert decode_attr(attr_value(np.dtype(np.int64))) == np.dtype(np.int64)
    assert decode_attr(attr_value((-1, 3))) == (None, 3)
    assert decode_attr(attr_value(Func("f", T=np.dtype(F32)))) == FuncAttr("f", {"T": np.dtype(F32)})
    assert decode_attr(attr_value([])) == []
    placeholder_attr = graph_pb2.AttrValue(placeholder="T")
    assert decode_attr(placeholder_attr, {"T": np.dtype(F32)}) == np.dtype(F32)
    with pytest.raises(SavedModelError, match=r"\$T"):
        decode_attr(placeholder_attr, {})
    op_list = graph_pb2.OpList()
    op_def = op_list.op.add(name="MatMul")
    op_def.attr.add(name="transpose_a", type="bool").default_value.b = True
    op_def.output_arg.add(name="product")
    defaults = OpDefaults(op_list)
    assert decode_node_attrs({}, "MatMul", defaults)["transpose_a"] is True  # the model's op list wins
    assert decode_node_attrs({}, "MatMul", defaults)["transpose_b"] is False  # the engine's table
    assert defaults.op_info("MatMul").outputs[0].name == "product"


# --------------------------------------------------------------------------- rewrites

@pytest.mark.parametrize("transpose_b", [False, True])
def test_constant_scales_fold_into_matmul_weights(tmp_path, transpose_b):
    rng = np.random.default_rng(0)
    w = rng.standard_normal((3, 4)).astype(F32)
    s = rng.standard_normal(4).astype(F32)
    nodes = [placeholder("x"), const("w", w.T if transpose_b else w), const("s", s),
             node("mm", "MatMul", ["x", "w"], T=np.dtype(F32), transpose_b=transpose_b),
             node("y", "Mul", ["mm", "s"], T=np.dtype(F32))]
    fn = _load(tmp_path, nodes, {"y": ("y:0", F32, (None, 4))},
               inputs={"x": ("x:0", F32, (None, 3))}).signatures["serving_default"]
    x = rng.standard_normal((2, 3)).astype(F32)
    np.testing.assert_allclose(fn(x=x)["y"], (x @ w) * s, rtol=1e-5, atol=1e-6)
    assert _ops(fn) == ["MatMul"]


def test_scales_are_not_folded_when_the_product_has_other_consumers(tmp_path):
    w = np.ones((3, 4), F32)
    nodes = [placeholder("x"), const("w", w), const("s", np.full(4, 2.0, F32)),
             node("mm", "MatMul", ["x", "w"], T=np.dtype(F32)),
             node("y", "Mul", ["mm", "s"], T=np.dtype(F32))]
    fn = _load(tmp_path, nodes, {"y": ("y:0", F32, (None, 4)), "mm": ("mm:0", F32, (None, 4))},
               inputs={"x": ("x:0", F32, (None, 3))}).signatures["serving_default"]
    out = fn(x=np.ones((1, 3), F32))
    np.testing.assert_array_equal(out["mm"], np.full((1, 4), 3.0, F32))
    np.testing.assert_array_equal(out["y"], np.full((1, 4), 6.0, F32))
    assert _ops(fn) == ["MatMul", "Mul"]
