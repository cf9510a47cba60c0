"""HTML and text views: content, escaping, highlighted problems, theme-safe styling, _repr_html_ hooks."""
import re

import numpy as np
import pytest

import sm_notebook
from notebook_fixtures import MODELS, copy_model, fixture_model  # noqa: F401 (fixtures)
from sm_notebook.diagnose import DiagnosticReport, Problem
from sm_notebook.inspection import SignatureInfo, TensorSpec
from sm_notebook import render as display


def theme_safe(html: str):
    """Colours come from JupyterLab variables (with fallbacks); no opaque light backgrounds."""
    assert "var(--jp-ui-font-color1" in html
    backgrounds = re.findall(r"background:\s*([^;\"]+)", html)
    for value in backgrounds:
        assert value.strip() == "transparent" or value.startswith("rgba("), value
    assert not re.search(r"#fff\b|#ffffff|\bwhite\b(?!-space)", html, re.I)


@pytest.fixture(scope="module")
def multi():
    return sm_notebook.inspect(fixture_model("tf1_multi_tags"))


def test_saved_model_html_lists_tag_sets_signatures_variables_assets_ops(multi):
    html = display.saved_model_html(multi)
    for text in ("{&#x27;serve&#x27;}", "{&#x27;gpu&#x27;, &#x27;serve&#x27;}", "serving_default", "predict_gpu",
                 "train_step", "probabilities:0", "float32", "(?, 4)", "weights", "(3, 4)", "vocab.txt",
                 "MatMul&nbsp;×"):
        assert text in html, text
    theme_safe(html)


def test_saved_model_text_is_the_terminal_view(multi):
    text = display.saved_model_text(multi)
    assert "MetaGraphDef #1 with tag-set {'gpu', 'serve'}" in text
    assert "x: float32 (?, 3) <- x:0" in text
    assert "weights: float32 (3, 4)" in text and "vocab.txt <- " in text and "MatMul x" in text


def test_selection_by_tags_and_signature(multi):
    text = display.saved_model_text(multi, tags=["serve"], signature="lookup")
    assert "lookup" in text and "serving_default" not in text and "MetaGraphDef #1" not in text


def test_repr_html_hooks_delegate_to_display(multi):
    report = multi.diagnose()
    assert multi._repr_html_() == display.saved_model_html(multi)
    assert multi.meta_graphs[0]._repr_html_() == display.meta_graph_html(multi.meta_graphs[0])
    sig = multi.signature("serving_default", ["serve"])
    assert sig._repr_html_() == display.signature_html(sig)
    assert report._repr_html_() == display.report_html(report)


def test_everything_is_escaped():
    spec = TensorSpec("<b>x</b>", "<script>alert(1)</script>:0", "DT_FLOAT", (None, 3))
    sig = SignatureInfo("<img src=x onerror=alert(1)>", "m&m", {spec.key: spec}, {spec.key: spec})
    html = display.signature_html(sig)
    assert "<script>" not in html and "<img" not in html and "<b>x</b>" not in html
    assert "&lt;script&gt;" in html and "m&amp;m" in html


def test_report_html_puts_problems_first_highlighted_with_fixes():
    problems = [Problem("note", "no-signatures", "nothing to call", "", 2),
                Problem("error", "missing-asset", "vocab.txt is gone", "Copy the file", 0),
                Problem("warning", "misspelled-tag", "'serv' looks like 'serve'", "Builder.set_tags", 1)]
    report = DiagnosticReport("/m", problems, ["MetaGraphDef #0 {'serve'}: ..."])
    html = display.report_html(report)
    assert html.index("missing-asset") < html.index("misspelled-tag") < html.index("no-signatures")
    assert "1 error(s)" in html and "1 warning(s)" in html and "1 note(s)" in html
    assert "Copy the file" in html and "#0" in html
    assert "var(--jp-error-color1" in html and "var(--jp-warn-color1" in html
    theme_safe(html)
    assert display.report_text(report) == str(report)


def test_clean_report(multi):
    html = display.report_html(multi.diagnose())
    assert "no problems found" in html
    theme_safe(html)


def test_missing_asset_is_highlighted_in_show(copy_model):
    path = copy_model("tf1_multi_tags")
    (path / "assets" / "vocab.txt").unlink()
    info = sm_notebook.inspect(path)
    html = display.saved_model_html(info, report=info.diagnose())
    assert "missing-asset" in html and ">missing<" in html
    assert "(MISSING)" in display.saved_model_text(info)


def test_run_result_views():
    result = display.RunResult({"probabilities": np.full((2, 4), 0.25, np.float32), "ids": np.arange(3)},
                               "serving_default", frozenset({"serve"}), "numpy", 0.0123)
    html = result._repr_html_()
    assert "probabilities" in html and "float32" in html and "(2, 4)" in html and "12.3 ms" in html
    theme_safe(html)
    text = display.run_result_text(result)
    assert "ids: int64 (3,)" in text and "[0 1 2]" in text
    assert repr(result) == "<RunResult 'serving_default': 2 output(s) [probabilities, ids] in 12.3 ms>"


def test_run_result_preview_is_short_for_big_outputs():
    small = display.run_result_html(display.RunResult({"big": np.random.rand(10, 10)}, "s"))
    big = display.run_result_html(display.RunResult({"big": np.random.rand(1000, 1000)}, "s"))
    assert len(big) < 1.2 * len(small) + 200  # the view does not grow with the output


def test_run_result_statistics_top_k_with_labels_and_histogram():
    scores = np.array([[0.1, 0.7, 0.2], [0.5, 0.2, 0.3]], np.float32)
    result = display.RunResult({"probs": scores, "raw": np.array([1.0, np.nan, np.inf, -2.0])}, "s",
                               labels=["cat", "dog", "bird"])
    text = display.run_result_text(result)
    assert "min 0.1 · max 0.7 · mean 0.3333 · no NaN/Inf" in text
    assert "top-3 (row 0): dog 0.7, bird 0.2, cat 0.1" in text and "top-3 (row 1): cat 0.5" in text
    assert "min -2 · max 1 · mean -0.5 · 1 NaN, 1 Inf" in text
    html = display.run_result_html(result)
    assert html.count("<svg") == 2 and "dog 0.7" in html
    theme_safe(html)


def test_scan_views(multi):
    from sm_notebook.engine.scan import scan_model
    report = scan_model(fixture_model("tf1_multi_tags"), tags=["serve"])
    html = display.scan_html(report)
    for op in report.unsupported:
        assert op in html
    assert "unreachable" in html and "SaveV2" in html
    theme_safe(html)
    assert display.scan_text(report) == str(report)


def test_diff_html_marks_added_and_removed_lines():
    html = display.diff_html("Dry run", "--- a\n+++ b\n@@ -1 +1 @@\n-  signature old\n+  signature new")
    assert "rgba(56, 142, 60" in html and "rgba(211, 47, 47" in html
    assert "signature old" in html and "signature new" in html
    theme_safe(html)


def test_shape_and_dtype_text():
    assert display.shape_text(None) == "<unknown rank>"
    assert display.shape_text((None, 3)) == "(?, 3)"
    assert display.shape_text((5,)) == "(5,)"
    assert display.dtype_text("DT_HALF") == "float16"
    assert display.dtype_text("DT_NOT_A_TYPE") == "DT_NOT_A_TYPE"


def test_long_tables_are_cut():
    rows = [[str(i)] for i in range(display.MAX_ROWS + 7)]
    assert "7 more row(s)" in display.table_html(["n"], rows)


def test_tf2_functions_are_listed():
    info = sm_notebook.inspect(fixture_model("keras3_mlp"))
    assert "function serve(TensorSpec(shape=(None, 8), dtype=tf.float32, name='features'))" in \
        display.saved_model_text(info)
    assert "callable with" in display.saved_model_html(info)


@pytest.mark.parametrize("name", sorted(p.name for p in MODELS.iterdir() if p.is_dir()) if MODELS.is_dir() else [])
def test_every_fixture_model_renders(name):
    info = sm_notebook.inspect(fixture_model(name))
    report = info.diagnose()
    html = display.saved_model_html(info, report=report)
    theme_safe(html)
    assert all(key in html for mg in info.meta_graphs for key in mg.signatures)
    assert display.saved_model_text(info, report=report).startswith("SavedModel ")
    theme_safe(display.report_html(report))
