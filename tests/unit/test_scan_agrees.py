"""`scan` says exactly what `load` and a call do: for every fixture model and for
hand-built graphs with ops the engine lacks (unconditionally, only on a branch, on a
branch a constant predicate never takes, from outside core TensorFlow), scan's verdict
for each signature equals whether loading and calling it succeeds."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine_graphs import (Func, const, function, install_test_kernels, meta_graph, node, placeholder,
                           save, signature)

import sm_notebook
from sm_notebook.engine.scan import scan_model
from sm_notebook.errors import SavedModelError, UnsupportedOpError
from sm_notebook.format.savedmodel import read_saved_model

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
F32 = np.float32
#: A TensorFlow op the engine has no kernel for (checked below, so a new kernel shows up here).
MISSING = "Zeta"


@pytest.fixture(autouse=True)
def kernels(monkeypatch):
    install_test_kernels(monkeypatch)


def test_the_missing_op_is_really_missing():
    assert not sm_notebook.ops.is_supported(MISSING), f"pick another op: {MISSING} has a kernel now"


def _expected_inputs(fixture: str) -> dict:
    """(tags text, signature) -> inputs TensorFlow was called with (tests/fixtures/expected)."""
    path = FIXTURES / "expected" / f"{fixture}.npz"
    found: dict = {}
    if path.is_file():
        data = np.load(path, allow_pickle=True)
        for key in data.files:
            tags, sig, kind, name = key.split("|")
            if kind == "inputs":
                found.setdefault((tags, sig), {})[name] = data[key]
    return found


def _outcome(call) -> bool:
    try:
        call()
    except SavedModelError:
        return False
    return True


def _agrees(export_dir, tags, inputs_of=None) -> list:
    """(entry, scan says it runs, it ran) for every signature scan lists; load failures
    count against every entry."""
    report = scan_model(export_dir, tags)
    try:
        model = sm_notebook.load(export_dir, tags=tags)
    except SavedModelError:
        return [("load", report.ok, False)]
    rows = []
    for verdict in report.verdicts:
        if not verdict.name.startswith("signature "):
            continue
        key = verdict.name[len("signature '"):-1]
        inputs = (inputs_of or {}).get(key)
        if inputs is None:
            continue
        ran = _outcome(lambda: model.signatures[key](**inputs))
        rows.append((verdict.name, verdict.runs, ran))
    return rows


def _fixture_cases():
    cases = []
    for export_dir in sorted((FIXTURES / "models").iterdir()):
        saved_model = read_saved_model(export_dir)
        for graph in saved_model.meta_graphs:
            tags = list(graph.meta_info_def.tags)
            cases.append(pytest.param(export_dir.name, tags, id=f"{export_dir.name}-{','.join(tags)}"))
    return cases


@pytest.mark.filterwarnings("ignore::sm_notebook.SavedModelWarning")
@pytest.mark.parametrize("fixture, tags", _fixture_cases())
def test_scan_agrees_with_load_and_call_on_every_fixture(fixture, tags):
    inputs = {sig: values for (t, sig), values in _expected_inputs(fixture).items()
              if sorted(t.split(",")) == sorted(tags)}
    try:
        rows = _agrees(FIXTURES / "models" / fixture, tags, inputs)
    except SavedModelError as exc:  # the tag-set is ambiguous or shadowed: scan and load alike
        with pytest.raises(SavedModelError):
            sm_notebook.load(FIXTURES / "models" / fixture, tags=tags)
        pytest.skip(f"tag-set not selectable: {exc}"[:120])
    assert all(said == ran for _, said, ran in rows), rows


# --------------------------------------------------------------------------- hand-built graphs

X = {"x": ("x:0", F32, (None,))}
X_AND_P = {"x": ("x:0", F32, (None,)), "p": ("p:0", bool, ())}


def _branches():
    missing = function("Missing", [("a", F32)], {"y": "m:z:0"},
                       [node("m", MISSING, ["a", "a"], T=F32)])
    double = function("Double", [("a", F32)], {"y": "d:z:0"}, [node("d", "_TAdd", ["a", "a"])])
    return [missing, double]


def _if(pred):
    return node("if", "StatelessIf", [pred, "x"], Tcond=np.dtype(bool), Tin=[F32], Tout=[F32],
                then_branch=Func("Missing"), else_branch=Func("Double"))


def _graph(kind):
    """(nodes, functions, signature inputs, calls: [(inputs, should run)])."""
    x = np.array([1.0, 2.0], F32)
    if kind == "unconditional":
        return ([placeholder("x"), node("y", MISSING, ["x", "x"], T=F32)], [], X, [({"x": x}, False)])
    if kind == "if-on-input":
        return ([placeholder("x"), placeholder("p", bool, ()), _if("p")], _branches(), X_AND_P,
                [({"x": x, "p": np.array(False)}, True), ({"x": x, "p": np.array(True)}, False)])
    if kind == "if-on-constant":
        nodes = [placeholder("x"), const("one", 1), node("eq", "Equal", ["one", "one"], T=np.dtype(np.int64)),
                 node("not", "LogicalNot", ["eq"]), _if("not")]
        return nodes, _branches(), X, [({"x": x}, True)]
    if kind == "if-on-default":  # PlaceholderWithDefault(False) the signature does not feed
        nodes = [placeholder("x"), const("f", False),
                 node("p", "PlaceholderWithDefault", ["f"], dtype=np.dtype(bool), shape=()), _if("p")]
        return nodes, _branches(), X, [({"x": x}, True)]
    if kind in ("switch-on-input", "switch-on-default"):  # TF1 cond: Switch/Merge
        nodes = [placeholder("x"), const("f", False),
                 node("p", "PlaceholderWithDefault", ["f"], dtype=np.dtype(bool), shape=()),
                 node("sw", "Switch", ["x", "p"], T=F32),
                 node("t", MISSING, ["sw:1", "sw:1"], T=F32), node("e", "_TAdd", ["sw", "sw"]),
                 node("if", "Merge", ["t", "e"], T=F32, N=2)]
        if kind == "switch-on-default":
            return nodes, [], X, [({"x": x}, True)]
        return nodes, [], X_AND_P, [({"x": x, "p": np.array(False)}, True),
                                    ({"x": x, "p": np.array(True)}, False)]
    if kind in ("case-on-input", "case-on-constant"):
        branches = [Func("Double"), Func("Missing"), Func("Double")]
        index = ("i", "Placeholder") if kind == "case-on-input" else ("i", "Const")
        first = placeholder("i", np.int32, ()) if index[1] == "Placeholder" else const("i", np.int32(2))
        nodes = [placeholder("x"), first,
                 node("if", "Case", ["i", "x"], Tin=[F32], Tout=[F32], branches=branches)]
        if kind == "case-on-constant":
            return nodes, _branches(), X, [({"x": x}, True)]
        inputs = {"x": ("x:0", F32, (None,)), "i": ("i:0", np.int32, ())}
        return nodes, _branches(), inputs, [({"x": x, "i": np.int32(7)}, True),  # out of range: last
                                            ({"x": x, "i": np.int32(1)}, False)]
    if kind == "while-body":
        cond = function("Cond", [("a", F32)], {"y": "c:z:0"}, [node("c", "_TLess", ["a", "a"])])
        cond.signature.output_arg[0].type = 10  # DT_BOOL
        nodes = [placeholder("x"), node("if", "While", ["x"], T=[F32], cond=Func("Cond"), body=Func("Missing"))]
        return nodes, _branches() + [cond], X, [({"x": x}, False)]
    if kind == "foreign":
        return ([placeholder("x"), node("y", "NormalizeUTF8", ["x"])], [], X, [({"x": x}, False)])
    raise ValueError(kind)


@pytest.mark.parametrize("optimize", [True, False])
@pytest.mark.parametrize("kind", ["unconditional", "if-on-input", "if-on-constant", "if-on-default",
                                  "switch-on-input", "switch-on-default", "case-on-input",
                                  "case-on-constant", "while-body", "foreign"])
def test_scan_agrees_with_load_and_call_on_graphs_with_missing_ops(tmp_path, kind, optimize):
    nodes, functions, inputs, calls = _graph(kind)
    mg = meta_graph(nodes, {"serving_default": signature(inputs, {"y": ("y:0" if kind in ("unconditional", "foreign") else "if:0", F32, (None,))})},
                    functions)
    export = save(tmp_path / kind, mg)
    report = scan_model(export)
    (verdict,) = report.verdicts
    codes = sm_notebook.inspect(export).diagnose().codes()  # diagnose says what scan says
    assert ("engine-unsupported" in codes) == (not verdict.runs and kind != "foreign")
    assert ("engine-branch-refusal" in codes) == bool(verdict.runs and verdict.conditional)
    assert ("foreign-ops" in codes) == (kind == "foreign")
    try:
        fn = sm_notebook.load(export, optimize=optimize).signatures["serving_default"]
    except UnsupportedOpError as exc:
        assert kind == "foreign" and not report.ok and report.foreign == {"NormalizeUTF8": "tensorflow-text"}
        assert "NormalizeUTF8 comes from tensorflow-text" in str(exc)
        return
    assert report.ok == verdict.runs == calls[0][1]  # the first call takes no refused branch
    for args, should_run in calls:
        assert _outcome(lambda: fn(**args)) == should_run
    if kind == "if-on-input":
        assert report.conditional == [MISSING] and verdict.conditional
        with pytest.raises(UnsupportedOpError, match=r"taken when `p:0` is True needs op Zeta "
                                                     r"\(node 'm' in function 'Missing'\)"):
            fn(x=np.ones(1, F32), p=np.array(True))
    if kind == "switch-on-input":
        with pytest.raises(UnsupportedOpError, match=r"The branch where `p:0` is True needs op "
                                                     r"Zeta \(node 't' in the main graph\)"):
            fn(x=np.ones(1, F32), p=np.array(True))
    if kind == "case-on-input":
        with pytest.raises(UnsupportedOpError, match=r"Case node 'if' taken when `i:0` is 1 needs"):
            fn(x=np.ones(1, F32), i=np.int32(1))
    if kind in ("switch-on-default", "case-on-constant"):
        assert not report.conditional and not report.unsupported
        assert [p.reachable for p in report.problems if p.op == MISSING] == [False]  # never runs
        assert "t" not in {i.name for i in fn.plan.info}  # the dead branch is pruned
    if kind == "if-on-constant" or kind == "if-on-default":
        assert not report.conditional and not report.unsupported
        np.testing.assert_array_equal(fn(x=np.array([1.0, 2.0], F32))["y"], [2.0, 4.0])


def test_ops_from_extension_libraries_are_named_with_their_library_by_load_scan_and_diagnose(tmp_path):
    nodes = [placeholder("x", object), node("norm", "NormalizeUTF8", ["x"], normalization_form="NFKC"),
             node("tok", "FastWordpieceTokenizeWithOffsets", ["norm"]),
             node("gather", "Addons>GatherTree", ["tok"]), node("forest", "SimpleMLInferenceOpWithHandle", ["gather"]),
             node("mine", "MyCustomOp", ["forest"]), node("unused", "SentencepieceOp", [])]
    mg = meta_graph(nodes, {"serving_default": signature({"x": ("x:0", object, (None,))},
                                                         {"y": ("mine:0", F32, (None,))})})
    export = save(tmp_path / "m", mg)
    with pytest.raises(UnsupportedOpError) as caught:
        sm_notebook.load(export)
    text = str(caught.value)
    for part in ("FastWordpieceTokenizeWithOffsets and NormalizeUTF8 come from tensorflow-text",
                 "Addons>GatherTree comes from tensorflow-addons",
                 "SimpleMLInferenceOpWithHandle comes from tensorflow-decision-forests",
                 "MyCustomOp comes from an unknown library"):
        assert part in text
    assert "SentencepieceOp" not in text  # no signature runs it
    assert caught.value.ops == sorted(["NormalizeUTF8", "FastWordpieceTokenizeWithOffsets", "Addons>GatherTree",
                                       "SimpleMLInferenceOpWithHandle", "MyCustomOp"])
    report = scan_model(export)
    assert not report.ok and report.foreign["NormalizeUTF8"] == "tensorflow-text"
    assert "SentencepieceOp" not in report.foreign and "MyCustomOp" in report.unsupported
    assert "NormalizeUTF8 (from tensorflow-text)" in str(report)
    diagnosis = sm_notebook.inspect(export).diagnose()
    (problem,) = [p for p in diagnosis.problems if p.code == "foreign-ops"]
    assert problem.severity == "error" and "NormalizeUTF8" in problem.message
    assert "from tensorflow-decision-forests" in problem.message and "SentencepieceOp" not in problem.message
