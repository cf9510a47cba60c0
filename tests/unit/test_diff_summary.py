"""sm_notebook.diff / summary, `sm-notebook diff|summary` and `%savedmodel diff|summary`."""
import shutil

import numpy as np
import pytest

import sm_notebook as sm
from sm_notebook import cli
from sm_notebook.builder import Builder, Graph

from conftest import fixture_path


def linear_model(path, w, b, signature="serving_default", vocab=None):
    g = Graph()
    x = g.placeholder("x", "float32", (None, 3))
    weights = g.variable("dense/kernel", np.asarray(w, np.float32))
    bias = g.variable("dense/bias", np.asarray(b, np.float32))
    y = g.op("BiasAdd", g.op("MatMul", x, weights), bias, name="y")
    builder = Builder(graph=g)
    if vocab is not None:
        vocab_file = path.parent / f"{path.name}_vocab.txt"
        vocab_file.write_text(vocab)
        builder.add_asset(vocab_file, "vocab.txt")
    builder.add_signature(signature, {"x": x}, {"y": y})
    return builder.save(path)


W = np.arange(6, dtype=np.float32).reshape(3, 2)


def test_identical_models_have_no_differences(tmp_path):
    a = linear_model(tmp_path / "a", W, [1, 2])
    b = linear_model(tmp_path / "b", W, [1, 2])
    result = sm.diff(a, b)
    assert result.identical
    assert "No differences" in str(result)


def test_value_change_reports_count_and_max_abs_difference(tmp_path):
    changed = W.copy()
    changed[0, 1] += 0.25
    changed[2, 0] -= 2.0
    a = linear_model(tmp_path / "a", W, [1, 2])
    b = linear_model(tmp_path / "b", changed, [1, 2])
    text = str(sm.diff(a, b))
    assert "~ variable dense/kernel: values changed (2 of 6 elements; max abs difference 2)" in text
    assert "dense/bias" not in text
    assert "dense/kernel" not in str(sm.diff(a, b, values=False))


def test_signature_variable_shape_and_asset_changes(tmp_path):
    a = linear_model(tmp_path / "a", W, [1, 2], vocab="a\nb\n")
    b = linear_model(tmp_path / "b", np.ones((3, 4)), [1, 2, 3, 4], signature="predict", vocab="a\nc\n")
    text = str(sm.diff(a, b))
    assert "- signature serving_default" in text and "+ signature predict" in text
    assert "~ variable dense/kernel: float32 (3, 2) -> float32 (3, 4)" in text
    assert "~ asset vocab.txt: contents differ" in text
    html = sm.diff(a, b)._repr_html_()
    assert "removed" in html and "added" in html and "serving_default" in html


def test_tag_set_and_op_count_changes(tmp_path, copy_fixture):
    a = copy_fixture("tf1_multi_tags")
    builder = Builder.from_saved_model(a)
    builder.remove_meta_graph(["train"])
    b = builder.save(tmp_path / "b")
    text = str(sm.diff(a, b))
    assert "- metagraph {'train'}" in text
    assert "op counts" not in text  # the {'serve'} graphs are the same


def test_keras3_variables_counted_once(tmp_path):
    # Keras 3 saves each variable under two object paths; the table must not double it.
    table = sm.summary(fixture_path("keras3_cnn"))
    conv = next(r for r in table.rows if r.layer == "conv_same")
    assert conv.params == 3 * 3 * 3 * 8 + 8
    assert [name for name, _, _ in conv.variables] == ["conv_same/kernel", "conv_same/bias"]
    assert table.total_bytes == 4 * table.total_params - 4 * 2 + 8 * 2  # float32 weights, int64 seed state
    assert table.trainable_params < table.total_params  # batch-norm moving statistics
    assert "Total params: 1,959" in str(table)


def test_summary_of_a_tf1_model_and_its_html(tmp_path):
    path = linear_model(tmp_path / "m", W, [1, 2])
    table = sm.summary(path)
    assert [(r.layer, r.params, r.bytes) for r in table.rows] == [("dense", 8, 32)]
    assert "Total params: 8 (32 B)" in str(table)
    assert "dense" in table._repr_html_()


def test_summary_needs_a_tag_set_when_there_are_several():
    with pytest.raises(sm.TagSetNotFoundError):
        sm.summary(fixture_path("tf1_multi_tags"))
    assert sm.summary(fixture_path("tf1_multi_tags"), tags="serve").rows


def test_cli_diff_and_summary(tmp_path, capsys):
    a = linear_model(tmp_path / "a", W, [1, 2])
    b = linear_model(tmp_path / "b", W, [1, 3])
    assert cli.main(["diff", "--dir", str(a), "--dir", str(a)]) == 0
    assert cli.main(["diff", "--dir", str(a), "--dir", str(b)]) == 1
    assert "dense/bias: values changed (1 of 2 elements; max abs difference 1)" in capsys.readouterr().out
    assert cli.main(["diff", "--dir", str(a)]) == 1
    assert "sm-notebook diff --dir OLD --dir NEW" in capsys.readouterr().err
    assert cli.main(["summary", "--dir", str(a)]) == 0
    assert "Total params: 8" in capsys.readouterr().out
    assert cli.main(["summary", "--dir", str(fixture_path("tf1_multi_tags"))]) == 1
    err = capsys.readouterr().err
    assert "--tag_set" in err and "tags=" not in err


def test_diff_of_a_missing_directory_is_a_clear_error(tmp_path):
    a = linear_model(tmp_path / "a", W, [1, 2])
    with pytest.raises(sm.SavedModelError, match="nowhere"):
        sm.diff(a, tmp_path / "nowhere")


def test_diff_does_not_touch_either_model(tmp_path):
    a = linear_model(tmp_path / "a", W, [1, 2])
    b = linear_model(tmp_path / "b", W * 2, [1, 2])
    before = {p: p.read_bytes() for p in sorted(tmp_path.rglob("*")) if p.is_file()}
    sm.diff(a, b)
    sm.summary(a)
    after = {p: p.read_bytes() for p in sorted(tmp_path.rglob("*")) if p.is_file()}
    assert before == after
    shutil.rmtree(b)
