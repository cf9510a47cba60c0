"""Ops the engine lacks, used only on branches, in real TensorFlow exports: the model
loads and runs as TensorFlow does while the branch is not taken, a call that takes it
is refused naming the op, and `scan` says so beforehand.

Exports: a TF1 graph with ``tf.compat.v1.cond`` on ``PlaceholderWithDefault(False)``
(``is_training``), both as TF2-style control flow (StatelessIf) and as TF1 Switch/Merge
(``disable_control_flow_v2``), plus a cond on a constant; a TF2 ``tf.function`` with
``tf.cond`` on a predicate constant after folding, and on an input."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

import sm_notebook as sm  # noqa: E402
from sm_notebook.engine.scan import scan_model  # noqa: E402
from sm_notebook.errors import UnsupportedOpError  # noqa: E402
from sm_notebook.format.savedmodel import read_saved_model  # noqa: E402

pytestmark = pytest.mark.interop

#: A TensorFlow op the engine has no kernel for (checked, so a new kernel shows up here).
MISSING = "Zeta"
X = np.array([1.0, 2.0, 3.5], np.float32)


def _missing(x):
    return tf.raw_ops.Zeta(x=x + 1.0, q=tf.fill(tf.shape(x), 0.5))


def _tf1_export(path, v1_control_flow):
    if v1_control_flow:
        tf.compat.v1.disable_control_flow_v2()
    try:
        graph = tf.Graph()
        with graph.as_default():
            x = tf.compat.v1.placeholder(tf.float32, [None], name="x")
            training = tf.compat.v1.placeholder_with_default(False, [], name="is_training")
            y = tf.compat.v1.cond(training, lambda: _missing(x), lambda: x * 2.0)
            never = tf.compat.v1.cond(tf.constant(False), lambda: _missing(x), lambda: x + 1.0)
            looped = tf.compat.v1.cond(  # a while loop on the branch, the missing op in its body
                training, lambda: tf.while_loop(lambda v: tf.reduce_sum(v) < 100.0,
                                                lambda v: _missing(v) + v * 3.0, [x])[0],
                lambda: x)
            y = tf.identity(y + never + looped, name="y")
            with tf.compat.v1.Session(graph=graph) as session:
                builder = tf.compat.v1.saved_model.Builder(str(path))
                predict = tf.compat.v1.saved_model.signature_def_utils.predict_signature_def
                builder.add_meta_graph_and_variables(session, ["serve"], signature_def_map={
                    "serving_default": predict({"x": x, "is_training": training}, {"y": y}),
                    "infer": predict({"x": x}, {"y": y})})
                builder.save()
                expected = session.run(y, {x: X})
    finally:
        if v1_control_flow:
            tf.compat.v1.enable_control_flow_v2()
    return expected


class Conds(tf.Module):
    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32)])
    def folded(self, x):
        predicate = tf.equal(tf.constant(1), 1)   # constant once folded, not a Python bool
        return {"y": tf.cond(predicate, lambda: x * 2.0, lambda: _missing(x))}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32), tf.TensorSpec([], tf.bool)])
    def on_input(self, x, p):
        return {"y": tf.cond(p, lambda: _missing(x), lambda: x * 2.0)}


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    root = tmp_path_factory.mktemp("branches")
    expected = {"tf1_if": _tf1_export(root / "tf1_if", False),
                "tf1_switch": _tf1_export(root / "tf1_switch", True)}
    module = Conds()
    tf.saved_model.save(module, str(root / "tf2"),
                        signatures={"folded": module.folded, "on_input": module.on_input})
    return root, expected


def test_the_missing_op_is_really_missing():
    assert not sm.ops.is_supported(MISSING), f"pick another op: {MISSING} has a kernel now"


@pytest.mark.parametrize("optimize", [True, False])
@pytest.mark.parametrize("kind", ["tf1_if", "tf1_switch"])
def test_tf1_cond_on_placeholder_with_default(exports, kind, optimize):
    root, expected = exports
    expected = expected[kind]
    graph_ops = {n.op for n in read_saved_model(root / kind).meta_graphs[0].graph_def.node}
    assert ("Switch" in graph_ops) == (kind == "tf1_switch")
    model = sm.load(root / kind, optimize=optimize)
    for key, extra in (("infer", {}), ("serving_default", {"is_training": np.array(False)})):
        got = model.signatures[key](x=X, **extra)["y"]
        np.testing.assert_allclose(got, expected, rtol=1e-6)
    with pytest.raises(UnsupportedOpError, match=r"(taken when|where) `is_training:0` is True needs op "
                                                 r"Zeta \(node '[^']*Zeta'") as caught:
        model.signatures["serving_default"](x=X, is_training=np.array(True))
    assert caught.value.ops == [MISSING] and caught.value.branch
    report = scan_model(root / kind)
    verdicts = {v.name: v for v in report.verdicts}
    assert report.ok and report.conditional == [MISSING] and not report.unsupported
    assert verdicts["signature 'infer'"].runs and not verdicts["signature 'infer'"].conditional
    assert {op for op, _ in verdicts["signature 'serving_default'"].conditional} == {MISSING}
    assert "is_training:0" in str(report)


@pytest.mark.parametrize("optimize", [True, False])
def test_tf2_cond_on_a_folded_constant_and_on_an_input(exports, optimize):
    root, _ = exports
    loaded = tf.saved_model.load(str(root / "tf2"))
    model = sm.load(root / "tf2", optimize=optimize)
    want = loaded.signatures["folded"](x=tf.constant(X))["y"].numpy()
    np.testing.assert_array_equal(model.signatures["folded"](x=X)["y"], want)
    want = loaded.signatures["on_input"](x=tf.constant(X), p=tf.constant(False))["y"].numpy()
    np.testing.assert_array_equal(model.signatures["on_input"](x=X, p=np.array(False))["y"], want)
    with pytest.raises(UnsupportedOpError, match=r"StatelessIf node .* taken when `[^`]*p:0` is "
                                                 r"True needs op Zeta"):
        model.signatures["on_input"](x=X, p=np.array(True))
    report = scan_model(root / "tf2")
    verdicts = {v.name: v for v in report.verdicts}
    assert verdicts["signature 'folded'"].runs and not verdicts["signature 'folded'"].conditional
    assert [op for op, _ in verdicts["signature 'on_input'"].conditional] == [MISSING]
    assert report.ok and report.conditional == [MISSING]
