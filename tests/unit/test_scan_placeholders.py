"""scan, load and the call agree on functions reached through attr placeholders (``f: $inner``).

A function attr may name its function in the attrs of the func that calls it;
the called function's nodes then refer to it as a placeholder. Both the call
site's nested attrs and the placeholder are exercised, on hand-built graphs.
"""
from __future__ import annotations

import numpy as np
import pytest

from engine_graphs import Func, const, function, install_test_kernels, meta_graph, node, placeholder, save, signature

import sm_notebook
from sm_notebook.engine.scan import attr_function_names, scan_model
from sm_notebook.errors import SavedModelError

F32 = np.float32


@pytest.fixture(autouse=True)
def kernels(monkeypatch):
    install_test_kernels(monkeypatch)


def _reads_a_file():
    """x -> x, after ReadFile of a constant path (an IO op)."""
    return function("Evil", [("x", F32)], {"y": "id:output:0"},
                    [const("path", b"/etc/hostname", dtype=object), node("read", "ReadFile", ["path:output:0"]),
                     node("id", "Identity", ["x", "^read"], T=F32)])


def _doubles():
    return function("Double", [("x", F32)], {"y": "add:z:0"}, [node("add", "_TAdd", ["x", "x"])])


def _outer(kind: str):
    """A function with a func attr ``inner`` that its body calls through a placeholder."""
    if kind == "call":
        inner = node("c", "StatefulPartitionedCall", ["x"], Tin=[F32], Tout=[F32])
        inner.attr["f"].placeholder = "inner"
        nodes = [inner]
    else:
        inner = node("c", "StatelessIf", ["cond:output:0", "x"], Tcond=np.dtype(bool), Tin=[F32], Tout=[F32])
        inner.attr["then_branch"].placeholder = "inner"
        inner.attr["else_branch"].placeholder = "inner"
        nodes = [const("cond", True), inner]
    fdef = function("Outer", [("x", F32)], {"y": "c:output:0"}, nodes)
    fdef.signature.attr.add(name="inner", type="func")
    return fdef


def _model(tmp_path, kind, inner_function):
    nodes = [placeholder("x", shape=(2,)),
             node("call", "StatefulPartitionedCall", ["x"], f=Func("Outer", inner=Func(inner_function.signature.name)),
                  Tin=[F32], Tout=[F32])]
    mg = meta_graph(nodes, {"serving_default": signature({"x": ("x:0", F32, (2,))}, {"y": ("call:0", F32, (2,))})},
                    functions=[inner_function, _outer(kind)])
    return save(tmp_path / f"{kind}_{inner_function.signature.name}", mg)


@pytest.mark.parametrize("kind", ["call", "if"])
def test_scan_sees_io_passed_through_a_placeholder_and_load_refuses_it(tmp_path, kind):
    export = _model(tmp_path, kind, _reads_a_file())
    report = scan_model(export)
    assert report.denied == ["ReadFile"] and not report.ok
    assert [p.reachable for p in report.problems] == [True]
    with pytest.raises(SavedModelError, match=r"ReadFile \(node 'read' in function 'Evil'\)"):
        sm_notebook.load(export)


@pytest.mark.parametrize("kind", ["call", "if"])
def test_a_placeholder_call_runs_the_function_its_caller_names(tmp_path, kind):
    export = _model(tmp_path, kind, _doubles())
    report = scan_model(export)
    assert report.ok and "_TAdd" in report.reachable_ops
    outputs = sm_notebook.load(export).signatures["serving_default"](x=np.array([1.0, 2.5], F32))
    np.testing.assert_array_equal(np.asarray(outputs["y"]), [2.0, 5.0])


def test_attr_function_names_walks_nested_func_attrs_and_lists():
    from engine_graphs import attr_value
    value = attr_value(Func("a", body=Func("b", deeper=[Func("c"), Func("d", x=Func("e"))]), n=3))
    assert sorted(attr_function_names(value)) == ["a", "b", "c", "d", "e"]
    assert sorted(attr_function_names(attr_value([Func("p"), Func("q")]))) == ["p", "q"]
    assert attr_function_names(attr_value(3)) == []
