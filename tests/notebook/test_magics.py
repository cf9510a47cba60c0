"""%savedmodel / %%savedmodel in IPython's in-process test shell: every sub-command and every UsageError."""
import html
import warnings

import numpy as np
import pytest
from IPython.core.error import UsageError
from IPython.utils.capture import capture_output

import sm_notebook
from notebook_fixtures import copy_model, fixture_model, ip  # noqa: F401 (fixtures)
from sm_notebook.notebook.magics import split_arguments


def run(ip, line, cell=None):
    """Run the magic; returns the rich outputs it displayed (list of mime-bundle dicts)."""
    with capture_output() as captured:
        if cell is None:
            ip.run_line_magic("savedmodel", line)
        else:
            ip.run_cell_magic("savedmodel", line, cell)
    return [o.data for o in captured.outputs]


def usage_error(ip, line, cell=None) -> str:
    with pytest.raises(UsageError) as caught:
        run(ip, line, cell)
    return str(caught.value)


# ---------------------------------------------------------------- help and parsing

def test_help_describes_every_sub_command_and_the_cell_format(ip):
    doc = ip.find_line_magic("savedmodel").__doc__
    for text in ("show", "diagnose", "run", "scan", "edit", "%%savedmodel", "rename:", "--write",
                 "--overwrite", "--tags", "--signature", "--backend", "-o"):
        assert text in doc
    with capture_output() as captured:
        ip.run_line_magic("pinfo", "%savedmodel")
    assert "rename_output" in captured.stdout or any("rename_output" in str(o.data) for o in captured.outputs)


def test_split_arguments_keeps_expressions_and_unquotes_paths():
    assert split_arguments("run 'my dir/m' x=np.zeros((2, 3)) y=[1, 2] -o out") == [
        "run", "my dir/m", "x=np.zeros((2, 3))", "y=[1, 2]", "-o", "out"]
    assert split_arguments("run m x='a b'") == ["run", "m", "x='a b'"]
    with pytest.raises(UsageError, match="Unclosed quote"):
        split_arguments("show 'oops")


@pytest.mark.parametrize("line, message", [
    ("", "needs a sub-command"),
    ("shwo PATH", "did you mean 'show'"),
    ("frobnicate PATH", "sub-commands: show, diagnose, run, edit, scan"),
    ("show", "needs the SavedModel directory"),
    ("diagnose /no/such/model", "No such directory"),
    ("show MODEL --write", "does not take --write"),
    ("show MODEL x=1", "does not take NAME=VALUE"),
    ("diagnose MODEL --signature serving_default", "does not take --signature"),
    ("run MODEL --backend tpu", "invalid choice"),
    ("show MODEL -o 1bad", "-o needs a Python variable name"),
    ("show MODEL --bogus", "unrecognized arguments"),
])
def test_user_mistakes_are_one_line_usage_errors(ip, line, message):
    model = str(fixture_model("tf1_multi_tags"))
    text = usage_error(ip, line.replace("MODEL", model).replace("PATH", model))
    assert message in text
    assert "Traceback" not in text and "\n" not in text


def test_a_file_instead_of_a_directory(ip):
    path = fixture_model("tf1_multi_tags") / "saved_model.pb"
    assert "is a file" in usage_error(ip, f"show {path}")


def test_saved_model_error_becomes_usage_error(ip, tmp_path):
    (tmp_path / "empty").mkdir()
    text = usage_error(ip, f"show {tmp_path / 'empty'}")
    assert "saved_model.pb" in text


# ---------------------------------------------------------------- show

def test_show_has_html_and_text_with_every_tag_set_and_signature(ip):
    path = fixture_model("tf1_multi_tags")
    (bundle,) = run(ip, f"show {path} -o info")
    html, text = bundle["text/html"], bundle["text/plain"]
    for key in ("serving_default", "lookup", "predict_gpu", "train_step"):
        assert key in html and key in text
    assert "float32" in html and "(?, 3)" in html          # dtype and shape
    assert "variables (2)" in html and "weights" in html   # variables
    assert "vocab.txt" in html                               # assets
    assert "MatMul" in html and "ops (" in text             # op census
    assert isinstance(ip.user_ns["info"], sm_notebook.inspection.SavedModelInfo)


def test_show_with_tags_and_signature_narrows_the_view(ip):
    path = fixture_model("tf1_multi_tags")
    (bundle,) = run(ip, f"show {path} --tags serve,gpu --signature predict_gpu")
    assert "predict_gpu" in bundle["text/plain"]
    assert "serving_default" not in bundle["text/plain"] and "train_step" not in bundle["text/plain"]


def test_show_signature_without_tags_finds_the_metagraph_holding_it(ip):
    (bundle,) = run(ip, f"show {fixture_model('tf1_multi_tags')} -s train_step")
    assert "train_step" in bundle["text/plain"]


def test_show_wrong_tag_set_explains_and_suggests(ip):
    text = usage_error(ip, f"show {fixture_model('tf1_multi_tags')} --tags serving")
    assert "No MetaGraphDef" in text and "{'serve'}" in text


def test_show_unknown_signature_lists_the_keys(ip):
    text = usage_error(ip, f"show {fixture_model('tf1_multi_tags')} --signature serving_defualt")
    assert "serving_default" in text and "Did you mean 'serving_default'" in text


def test_show_highlights_problems_first(ip):
    (bundle,) = run(ip, f"show {fixture_model('tf1_ambiguous_serve')}")
    html = bundle["text/html"]
    assert "ambiguous-serve" in html
    assert html.index("ambiguous-serve") < html.index("MetaGraphDef #0")


# ---------------------------------------------------------------- diagnose

def test_diagnose_lists_problems_with_fixes(ip):
    path = fixture_model("tf1_ambiguous_serve")
    (bundle,) = run(ip, f"diagnose {path} -o report")
    report = ip.user_ns["report"]
    assert "ambiguous-serve" in report.codes()
    problem = next(p for p in report.problems if p.code == "ambiguous-serve")
    assert problem.fix and html.escape(problem.fix) in bundle["text/html"]
    assert bundle["text/plain"] == str(report)


def test_diagnose_clean_model(ip):
    (bundle,) = run(ip, f"diagnose {fixture_model('tf1_multi_tags')}")
    assert "no problems found" in bundle["text/html"]


# ---------------------------------------------------------------- scan

def test_scan_lists_unsupported_and_denied_ops(ip):
    path = fixture_model("tf1_multi_tags")
    (bundle,) = run(ip, f"scan {path} --tags serve -o scan")
    report = ip.user_ns["scan"]
    assert bundle["text/plain"] == str(report)
    for op in report.unsupported + report.denied:
        assert op in bundle["text/html"]
    assert "SaveV2" in bundle["text/html"]   # denied, though unreachable: shown as a note


def test_scan_without_tags_scans_every_metagraph(ip):
    (bundle,) = run(ip, f"scan {fixture_model('tf1_multi_tags')} -o scans")
    assert len(ip.user_ns["scans"]) == 3
    assert bundle["text/plain"].count("Scan of") == 3


# ---------------------------------------------------------------- run

def test_run_evaluates_inputs_in_the_namespace_and_stores_outputs(ip):
    path = fixture_model("keras3_mlp")
    ip.user_ns["features"] = np.ones((2, 8), np.float32)
    (bundle,) = run(ip, f"run {path} --signature serving_default features=features -o result")
    output = ip.user_ns["result"]["output_0"]
    expected = sm_notebook.load(path).signatures["serving_default"](features=np.ones((2, 8), np.float32))
    np.testing.assert_allclose(output, expected["output_0"])
    assert output.shape == (2, 4)
    assert "output_0" in bundle["text/html"] and "ms" in bundle["text/plain"]


def test_run_accepts_literals_numpy_constructors_and_variables_with_spaces(ip):
    ip.user_ns["np"] = np
    ip.user_ns["loaded"] = np.zeros((4, 2, 4), np.float32)
    path = fixture_model("keras3_mlp")
    run(ip, f"run {path} features=loaded.reshape(4, 8) -o r1")
    run(ip, f"run {path} features=[[0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]] -o r2")
    run(ip, f"run {path} features=np.zeros((3, 8), np.float32) -o r3")
    assert ip.user_ns["r1"]["output_0"].shape == (4, 4)
    assert ip.user_ns["r2"]["output_0"].shape == (1, 4)
    assert ip.user_ns["r3"]["output_0"].shape == (3, 4)


@pytest.mark.parametrize("value", [
    "{__import__('os').system('touch MARKER')}",
    "__import__('os').system('touch MARKER')",
    "np.lib._npyio_impl.os.system('touch MARKER')",
    "np.load('MARKER')",
])
def test_run_values_are_parsed_never_evaluated_nor_expanded(ip, tmp_path, value):
    """IPython would expand {expr} in a magic's line before the magic sees it; %savedmodel opts out."""
    marker = tmp_path / "marker"
    ip.user_ns["np"] = np
    line = f"%savedmodel run {fixture_model('keras3_mlp')} features={value.replace('MARKER', str(marker))}"
    result = ip.run_cell(line)  # the notebook path: input transformers, then run_line_magic
    assert isinstance(result.error_in_exec, UsageError) and not marker.exists()
    message = str(result.error_in_exec)
    assert "Cannot use input features" in message and "Allowed: Python literals" in message
    assert "__import__" in message or "np.l" in message  # the text as typed, not its expansion


def test_line_is_not_expanded_for_dollar_names_or_braces(ip):
    ip.user_ns["secret"] = "serving_default"
    from IPython.core.magic import MAGIC_NO_VAR_EXPAND_ATTR
    assert getattr(ip.find_line_magic("savedmodel"), MAGIC_NO_VAR_EXPAND_ATTR, False)
    text = usage_error(ip, f"run {fixture_model('tf1_multi_tags')} -t serve -s $secret x=[[1.0, 2.0, 3.0]]")
    assert "$secret" in text
    text = usage_error(ip, f"show {fixture_model('tf1_multi_tags')} -t serve -s {{secret}}")
    assert "{secret}" in text


def test_run_picks_the_metagraph_by_tags(ip):
    path = fixture_model("tf1_ambiguous_serve")
    run(ip, f"run {path} --tags serve,gpu x=[[1.0, 2.0, 3.0]] -o r")
    assert ip.user_ns["r"]["y"].shape == (1, 2)


@pytest.mark.parametrize("inputs, message", [
    ("", "Missing input(s) x"),
    ("y=1", "has no input 'y'"),
    ("x=undefined_name", "there is no notebook variable 'undefined_name'"),
    ("x=np.zeros(10000000000)", "limit for typed inputs"),
    ("x=np.ones((1,3))*2", "Cannot use input x 'np.ones((1,3))*2': it is not a literal or an allowed call"),
    ("x=1 x=2", "given twice"),
    ("x", "Inputs are NAME=VALUE"),
])
def test_run_input_mistakes(ip, inputs, message):
    text = usage_error(ip, f"run {fixture_model('tf1_multi_tags')} -t serve -s serving_default {inputs}")
    assert message in text


def test_run_needs_a_signature_when_there_is_no_serving_default(ip):
    text = usage_error(ip, f"run {fixture_model('tf1_multi_tags')} --tags train x=1")
    assert "train_step" in text


def test_run_needs_tags_when_there_are_several_metagraphs(ip):
    text = usage_error(ip, f"run {fixture_model('tf1_multi_tags')} x=1")
    assert "pass --tags, one of: serve | gpu,serve | train" in text


def test_run_cupy_without_cupy_is_a_usage_error(ip):
    try:
        import cupy  # noqa: F401 (only whether it imports)
        pytest.skip("cupy is installed here")
    except ImportError:
        pass
    text = usage_error(ip, f"run {fixture_model('keras3_mlp')} --backend cupy features=np.zeros((1, 8))")
    assert "cupy" in text


# ---------------------------------------------------------------- edit (widgets)

@pytest.mark.parametrize("widget, cls", [
    ("", "ModelEditor"), ("--widget signatures", "SignatureEditor"), ("--widget tags", "TagSetEditor"),
    ("--widget assets", "AssetEditor"),
    ("--widget run", "RunPanel"), ("--widget browser", "ModelBrowser")])
def test_edit_opens_a_widget_and_stores_it(ip, widget, cls):
    run(ip, f"edit {fixture_model('tf1_multi_tags')} {widget} -o w")
    assert type(ip.user_ns["w"]).__name__ == cls


def test_edit_passes_tags_and_signature(ip):
    run(ip, f"edit {fixture_model('tf1_multi_tags')} --tags serve,gpu -s predict_gpu -o w")
    assert ip.user_ns["w"].signatures.draft.key == "predict_gpu"


# ---------------------------------------------------------------- %%savedmodel

CELL = """
# rename and retag
rename: serving_default -> classify_probs
rename_output: classify_probs probabilities -> probs
tags: serve,gpu -> serve,gpu,tpu
"""


def test_cell_dry_run_shows_the_diff_and_writes_nothing(ip, copy_model):
    path = copy_model()
    before = (path / "saved_model.pb").read_bytes()
    (bundle,) = run(ip, f"{path} --tags serve -o b", CELL)
    assert "Dry run" in bundle["text/plain"] and "nothing written" in bundle["text/plain"]
    assert "+  signature classify_probs" in bundle["text/plain"]
    assert "-  signature serving_default" in bundle["text/plain"]
    assert (path / "saved_model.pb").read_bytes() == before
    assert ip.user_ns["b"] is not None


def test_cell_write_to_a_new_directory(ip, copy_model, tmp_path):
    path = copy_model()
    out = tmp_path / "edited"
    run(ip, f"{path} --tags serve --write --to {out}", CELL)
    info = sm_notebook.inspect(out)
    serve = info.meta_graph(["serve"])
    assert "classify_probs" in serve.signatures and "serving_default" not in serve.signatures
    assert list(serve.signatures["classify_probs"].outputs) == ["probs"]
    assert frozenset({"serve", "gpu", "tpu"}) in info.tag_sets


def test_cell_write_in_place_needs_overwrite(ip, copy_model):
    path = copy_model()
    text = usage_error(ip, f"{path} --tags serve --write", CELL)
    assert "--overwrite" in text
    run(ip, f"{path} --tags serve --write --overwrite", CELL)
    assert "classify_probs" in sm_notebook.inspect(path).meta_graph(["serve"]).signatures


def test_cell_builder_rule_violation_is_a_usage_error_naming_the_line(ip, copy_model):
    path = copy_model()
    text = usage_error(ip, f"{path} --tags serve", "rename: no_such_signature -> x\n")
    assert "line 1" in text and "no_such_signature" in text


def test_cell_write_existing_target_is_refused_before_any_work(ip, copy_model):
    path = copy_model()
    assert "--overwrite" in usage_error(ip, f"{path} --tags serve --write", CELL)


@pytest.mark.parametrize("cell, message", [
    ("renme: a -> b", "did you mean 'rename'"),
    ("rename: a b", "expected 'OLD -> NEW'"),
    ("rename_output: sig -> b", "expected 'SIGNATURE OLD -> NEW'"),
    ("  inputs: x=x:0", "belongs under 'add: KEY'"),
    ("add: s\n  inputs: x=x:0", "needs an indented 'outputs"),
    ("just words", "expected 'directive: arguments'"),
    ("# only a comment", "has no edits"),
])
def test_cell_format_mistakes(ip, cell, message):
    text = usage_error(ip, f"{fixture_model('tf1_multi_tags')}", cell)
    assert message in text


def test_cell_magic_refuses_other_sub_commands(ip):
    assert "%%savedmodel is for edits" in usage_error(ip, f"show {fixture_model('tf1_multi_tags')}", "rename: a -> b")


def test_cell_only_options_are_refused_on_lines(ip):
    assert "does not take --to" in usage_error(ip, f"show {fixture_model('tf1_multi_tags')} --to x")


# ---------------------------------------------------------------- completion

def complete(ip, line):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PendingDeprecationWarning)  # IPython's own complete() API
        _, matches = ip.complete("", line, len(line))
    return matches


def test_completes_sub_commands(ip):
    assert complete(ip, "%savedmodel ") == ["show", "diagnose", "run", "edit", "scan", "diff", "summary", "graph"]
    assert complete(ip, "%savedmodel dia") == ["diagnose"]
    assert complete(ip, "%savedmodel di") == ["diagnose", "diff"]


def test_completes_paths(ip):
    parent = fixture_model("tf1_multi_tags").parent
    assert f"{parent}/tf1_multi_tags/" in complete(ip, f"%savedmodel show {parent}/tf1_m")
    assert f"{parent}/tf1_multi_tags/" in complete(ip, f"%%savedmodel {parent}/tf1_m")


def test_completes_tag_sets_and_signature_keys(ip):
    path = fixture_model("tf1_multi_tags")
    assert set(complete(ip, f"%savedmodel show {path} --tags ")) == {"serve", "gpu,serve", "train"}
    assert complete(ip, f"%savedmodel show {path} --tags serve,g") == ["gpu"]
    assert complete(ip, f"%savedmodel run {path} -t serve -s ") == ["lookup", "serving_default"]
    assert complete(ip, f"%savedmodel run {path} -t serve -s serving_default ") == ["x="]


def test_completes_options_and_backends(ip):
    path = fixture_model("tf1_multi_tags")
    assert complete(ip, f"%savedmodel run {path} --ba") == ["--backend"]
    assert complete(ip, f"%savedmodel run {path} --backend ") == ["numpy", "cupy"]


# ---------------------------------------------------------------- diff, summary, option spellings

def test_diff_shows_what_changed_and_stores_it(ip, copy_model, tmp_path):
    from sm_notebook.builder import Builder
    old = copy_model("tf1_multi_tags")
    builder = Builder.from_saved_model(old)
    builder.rename_signature("lookup", "vocab_lookup", tags="serve")
    new = builder.save(tmp_path / "new")
    (bundle,) = run(ip, f"diff {old} {new} -o d")
    assert "- signature lookup" in bundle["text/plain"] and "+ signature vocab_lookup" in bundle["text/plain"]
    assert "vocab_lookup" in bundle["text/html"]
    assert not ip.user_ns["d"].identical
    assert "needs two SavedModel directories" in usage_error(ip, f"diff {old}")
    assert "No such directory" in usage_error(ip, f"diff {old} {tmp_path / 'none'}")


def test_summary_is_a_parameter_table(ip):
    (bundle,) = run(ip, f"summary {fixture_model('keras3_mlp')}")
    assert "Total params" in bundle["text/plain"] and "hidden" in bundle["text/html"]
    (bundle,) = run(ip, f"summary {fixture_model('tf1_multi_tags')} --tags serve")
    assert "weights" in bundle["text/plain"]


def test_magics_accept_the_command_line_spellings(ip):
    path = fixture_model("tf1_multi_tags")
    (by_cli_names,) = run(ip, f"show {path} --tag_set serve,gpu --signature_def predict_gpu")
    (by_magic_names,) = run(ip, f"show {path} --tags serve,gpu --signature predict_gpu")
    assert by_cli_names["text/plain"] == by_magic_names["text/plain"]
