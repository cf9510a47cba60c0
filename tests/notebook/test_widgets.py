"""The widgets driven from Python through their traits and callbacks; saved models checked with inspect."""
import numpy as np
import pytest

import sm_notebook
from notebook_fixtures import copy_model, fixture_model  # noqa: F401 (fixtures)
from sm_notebook.notebook.widgets import ModelBrowser, Progress, RunPanel, SignatureEditor, TagSetEditor
from sm_notebook.notebook.widgets.run_panel import generate_input
from sm_notebook.notebook.widgets.signature_editor import default_key, graph_tensors


def cheap_repr(widget):
    text = repr(widget)
    assert text.startswith("<") and len(text) < 300 and "children=" not in text
    return text


# ---------------------------------------------------------------- browser

def test_browser_selects_metagraphs_and_signatures():
    from sm_notebook.showtext import signature_text
    browser = ModelBrowser(fixture_model("tf1_multi_tags"))
    assert browser.meta_graph.index == 0 and browser.signature.key == "lookup"
    browser.meta_graph_picker.value = 1                       # what the dropdown does
    assert browser.signature.key == "predict_gpu"
    assert browser.signature_text == signature_text(browser.meta_graph.proto, "predict_gpu")
    assert "DT_FLOAT" in browser.signature_view.value and "predict_gpu" in browser.signature_view.value
    browser.select(tags=["serve"], signature="serving_default")
    assert browser.meta_graph.index == 0 and "probabilities" in browser.signature_view.value
    assert "weights" in browser.variables_view.value and "(3, 4)" in browser.variables_view.value
    assert "vocab.txt" in browser.assets_view.value and "MatMul" in browser.ops_view.value
    assert "serving_default" in cheap_repr(browser)


def test_browser_refuses_unknown_tags_and_keys():
    browser = ModelBrowser(fixture_model("tf1_multi_tags"))
    with pytest.raises(sm_notebook.TagSetNotFoundError):
        browser.select(tags=["serving"])
    with pytest.raises(sm_notebook.SavedModelError, match="lookup, serving_default"):
        browser.select(signature="nope")


def test_browser_accepts_an_inspected_model():
    info = sm_notebook.inspect(fixture_model("keras3_mlp"))
    assert ModelBrowser(info).info is info


# ---------------------------------------------------------------- signature editor

def test_tensor_picker_lists_graph_tensors_with_dtype_and_shape():
    info = sm_notebook.inspect(fixture_model("tf1_multi_tags"))
    tensors = {t.name: t for t in graph_tensors(info.meta_graphs[0])}
    assert tensors["probabilities:0"].label == "probabilities:0  float32 (?, 4)  [Softmax]"
    assert tensors["logits:0"].dtype == "DT_FLOAT"
    assert not any(t.op == "NoOp" for t in tensors.values())
    editor = SignatureEditor(info)
    editor.search.value = "[Softmax]"                        # typing in the filter box (an op)
    assert [v for _, v in editor.tensor_list.options] == ["probabilities:0"]
    assert [t.name for t in editor.find_tensors("[biasadd] float32")] == ["logits:0"]


def test_default_key():
    assert default_key("dense/BiasAdd:0") == "dense_BiasAdd"
    assert default_key("split:2") == "split_2"


def new_scores_signature(editor):
    """What the mouse does: '+ new signature', type a key, pick an input and an output."""
    editor.signature_picker.value = None                     # the "new signature" entry
    editor.key_field.value = "scores"
    editor.search.value = "x:0"
    editor.tensor_list.value = "x:0"
    editor.add_input_button.click()
    editor.search.value = "probabilities"
    editor.tensor_list.value = "probabilities:0"
    editor.row_key.value = "probs"
    editor.add_output_button.click()


def test_new_signature_through_the_controls_builds_the_add_edit():
    editor = SignatureEditor(fixture_model("tf1_multi_tags"))
    new_scores_signature(editor)
    assert editor.draft.key == "scores"
    assert [(r.key, r.tensor) for r in editor.draft.inputs] == [("x", "x:0")]
    assert [(r.key, r.tensor) for r in editor.draft.outputs] == [("probs", "probabilities:0")]
    assert editor.cell_text == ("meta_graph: serve\nadd: scores\n  inputs: x=x:0\n"
                                "  outputs: probs=probabilities:0\n  method: predict")
    assert "add: scores" in editor.preview.value
    assert "scores" in cheap_repr(editor)


def test_renames_become_rename_edits_and_tensor_changes_recreate():
    editor = SignatureEditor(fixture_model("tf1_multi_tags"), tags=["serve"], signature="serving_default")
    editor.set_key("classify_probs").rename_output("probabilities", "probs").rename_input("x", "features")
    editor.set_method("classify")
    assert [str(e) for e in editor.edits] == [
        "rename_input: serving_default x -> features", "rename_output: serving_default probabilities -> probs",
        "method: serving_default classify", "rename: serving_default -> classify_probs"]
    editor.add_output("logits", "logits:0")
    assert [e.kind for e in editor.edits] == ["remove", "add"]
    assert editor.edits[1].options["outputs"] == {"probs": "probabilities:0", "logits": "logits:0"}


def test_inline_validation_while_typing():
    editor = SignatureEditor(fixture_model("tf1_multi_tags"))
    editor.new_signature("")
    editor.key_field.value = "serving_default"               # clashes with an existing key
    problems = " ".join(editor.problems())
    assert "already called 'serving_default'" in problems and "at least one output" in problems
    assert "already called" in editor.checks.value            # shown under the form
    editor.key_field.value = ""
    assert "the signature key is empty" in " ".join(editor.problems())
    editor.key_field.value = "fresh"
    editor.add_output("y", "no_such_node:0")
    assert "the graph has no tensor 'no_such_node:0'" in " ".join(editor.problems())
    editor.remove_output("y").add_output("y", "probabilities:0").add_output("y", "logits:0")
    assert "output key 'y' is used twice" in " ".join(editor.problems())


def test_remove_and_reset():
    editor = SignatureEditor(fixture_model("tf1_multi_tags"), tags=["serve"])
    editor.select("lookup")
    editor.remove_button.click()
    assert [str(e) for e in editor.edits] == ["remove: lookup"]
    assert "lookup" not in [v for _, v in editor.signature_picker.options]
    editor.reset()
    assert editor.edits == []


def test_switching_metagraph_shows_its_signatures():
    editor = SignatureEditor(fixture_model("tf1_multi_tags"))
    editor.meta_graph_picker.value = 2
    assert editor.draft.key == "train_step"
    assert {r.key for r in editor.draft.inputs} == {"labels", "x"}


def test_tf2_init_op_is_not_offered():
    editor = SignatureEditor(fixture_model("keras3_mlp"))
    assert "__saved_model_init_op" not in [v for _, v in editor.signature_picker.options]


def test_save_refuses_invalid_edits(tmp_path):
    editor = SignatureEditor(fixture_model("tf1_multi_tags"))
    editor.new_signature("broken")
    with pytest.raises(sm_notebook.SavedModelError, match="at least one output"):
        editor.save(tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_save_writes_through_the_builder(tmp_path):
    editor = SignatureEditor(fixture_model("tf1_multi_tags"), save_to=tmp_path / "out")
    new_scores_signature(editor)
    editor.select("serving_default")
    editor.rename_output("probabilities", "probs")
    assert editor.problems() == []
    editor.save_bar.save_button.click()
    assert "Saved" in editor.save_bar.status.value
    serve = sm_notebook.inspect(tmp_path / "out").meta_graph(["serve"])
    assert set(serve.signatures) == {"lookup", "serving_default", "scores"}
    scores = serve.signatures["scores"]
    assert scores.inputs["x"].name == "x:0" and scores.outputs["probs"].name == "probabilities:0"
    assert scores.outputs["probs"].dtype == "DT_FLOAT" and scores.outputs["probs"].shape == (None, 4)
    assert list(serve.signatures["serving_default"].outputs) == ["probs"]


def test_the_default_target_is_a_new_directory_never_the_model(copy_model):
    path = copy_model("tf1_multi_tags")
    editor = SignatureEditor(path)
    assert editor.save_bar.save_button.disabled  # nothing to save yet
    editor.select("lookup").set_key("tokens_to_ids")
    assert not editor.save_bar.save_button.disabled
    before = (path / "saved_model.pb").read_bytes()
    editor.save_bar.save_button.click()
    assert (path / "saved_model.pb").read_bytes() == before
    saved = path.with_name("tf1_multi_tags_edited")
    assert "tokens_to_ids" in sm_notebook.inspect(saved).meta_graph(["serve"]).signatures
    assert "Saved" in editor.save_bar.status.value
    editor.set_key("ids")
    assert editor.save_bar.status.value == ""  # the old status does not outlive an edit
    assert TagSetEditor(path).save_bar.target.value.endswith("tf1_multi_tags_edited_2")


def test_save_over_an_existing_model_asks_first(copy_model):
    path = copy_model("tf1_multi_tags")
    editor = SignatureEditor(path)
    editor.select("lookup").set_key("tokens_to_ids")
    before = (path / "saved_model.pb").read_bytes()
    editor.save_bar.target.value = str(path)
    editor.save_bar.save_button.click()
    assert editor.save_bar.awaiting_confirmation and "Overwrite it?" in editor.save_bar.status.value
    assert (path / "saved_model.pb").read_bytes() == before
    editor.save_bar.cancel_button.click()
    assert "Not saved" in editor.save_bar.status.value
    editor.save_bar.save_button.click()
    editor.save_bar.confirm_button.click()
    assert "tokens_to_ids" in sm_notebook.inspect(path).meta_graph(["serve"]).signatures
    assert editor.edits == [] and "tokens_to_ids" in [v for _, v in editor.signature_picker.options]


def test_tag_editor_saving_in_place_reloads(copy_model):
    path = copy_model("tf1_multi_tags")
    editor = TagSetEditor(path).set_tags(2, "train,eval")
    editor.save(path, overwrite=True)
    assert editor.edits == [] and editor.info.tag_sets[2] == frozenset({"train", "eval"})
    assert "was {&#x27;eval&#x27;, &#x27;train&#x27;}" in editor.rows.children[2].children[2].value


def test_save_without_overwrite_refuses_existing_target(copy_model):
    path = copy_model("tf1_multi_tags")
    editor = SignatureEditor(path).select("lookup").set_key("ids")
    with pytest.raises(sm_notebook.SavedModelError):
        editor.save(path)


def test_builder_property_applies_the_edits():
    editor = SignatureEditor(fixture_model("tf1_multi_tags")).select("lookup").set_key("ids")
    assert editor.builder is not editor.builder              # a fresh Builder each time, edits applied


# ---------------------------------------------------------------- tag-set editor

def codes(editor):
    return [p.code for p in editor.problems]


def test_tag_editor_warns_about_a_duplicate_while_typing():
    editor = TagSetEditor(fixture_model("tf1_multi_tags"))
    assert codes(editor) == []
    editor.fields[1].value = "serve"                          # typing in metagraph #1's field
    assert "duplicate-tag-set" in codes(editor)
    assert "duplicate-tag-set" in editor.diagnostics.value and "shadowed" in editor.diagnostics.value
    assert editor.cell_text == "tags: gpu,serve -> serve"
    assert "1 edit(s)" in cheap_repr(editor)
    errors, _ = editor.check()                                # the Builder refuses it too
    assert "Another metagraph already has the tag-set" in errors[0]
    assert "Another metagraph" in editor.diagnostics.value


def test_tag_editor_typos_ambiguity_and_empty_sets():
    editor = TagSetEditor(fixture_model("tf1_multi_tags"))
    editor.set_tags(2, "trian")
    assert "misspelled-tag" in codes(editor) and "&#x27;train&#x27;" in editor.diagnostics.value
    editor.set_tags(2, "train").set_tags(0, "serve, cpu")
    assert "ambiguous-serve" in codes(editor)
    editor.set_tags(0, "")
    assert "empty-tag-set" in codes(editor)


def test_tag_editor_clears_the_fixture_duplicate():
    editor = TagSetEditor(fixture_model("tf1_duplicate_tags"))
    assert "duplicate-tag-set" in codes(editor)
    editor.set_tags(1, ["serve", "gpu"])
    assert "duplicate-tag-set" not in codes(editor)
    assert "No tag-set problems" in editor.diagnostics.value or "no-plain-serve" not in codes(editor)


def test_tag_editor_fixes_ambiguous_serve():
    editor = TagSetEditor(fixture_model("tf1_ambiguous_serve"))
    assert "ambiguous-serve" in codes(editor)
    editor.set_tags(1, "serve")
    assert codes(editor) == []


def test_tag_editor_saves(tmp_path):
    editor = TagSetEditor(fixture_model("tf1_multi_tags"), save_to=tmp_path / "out")
    editor.set_tags(1, "serve,gpu,tpu")
    editor.save_bar.save_button.click()
    assert "Saved 1 tag-set change(s)" in editor.save_bar.status.value
    assert sm_notebook.inspect(tmp_path / "out").tag_sets == [
        frozenset({"serve"}), frozenset({"serve", "gpu", "tpu"}), frozenset({"train"})]


def test_tag_editor_fixes_a_duplicate_on_disk(tmp_path):
    editor = TagSetEditor(fixture_model("tf1_duplicate_tags"))
    editor.set_tags(1, "serve,gpu")
    editor.save(tmp_path / "out")
    info = sm_notebook.inspect(tmp_path / "out")
    assert info.tag_sets == [frozenset({"serve"}), frozenset({"serve", "gpu"})]
    assert "second_sig" in info.meta_graph(["serve", "gpu"]).signatures
    assert "duplicate-tag-set" not in info.diagnose().codes()


# ---------------------------------------------------------------- run panel

def test_run_panel_generates_inputs_from_the_signature():
    panel = RunPanel(fixture_model("keras3_mlp"), namespace={})
    assert panel.signature.key == "serving_default"
    panel.batch_field.value = 3
    feeds = panel.inputs()
    assert feeds["features"].shape == (3, 8) and feeds["features"].dtype == np.float32
    assert not feeds["features"].any()
    panel.set_input("features", "random")
    assert panel.inputs()["features"].std() > 0


def test_run_panel_takes_notebook_variables():
    namespace = {"batch": np.ones((2, 8), np.float32), "label": "text", "_hidden": np.zeros(1)}
    panel = RunPanel(fixture_model("keras3_mlp"), namespace=namespace)
    assert "batch" in panel._dropdowns["features"].options and "_hidden" not in panel._dropdowns["features"].options
    panel._dropdowns["features"].value = "batch"             # what choosing in the dropdown does
    assert panel.inputs()["features"] is namespace["batch"]
    with pytest.raises(sm_notebook.SavedModelError, match="no notebook variable 'gone'"):
        panel.set_input("features", "gone").inputs()


def test_generate_input_dtypes_and_unknown_rank():
    from sm_notebook.inspection import TensorSpec
    assert generate_input(TensorSpec("s", "s:0", "DT_STRING", (None,)), "random", 2).tolist() == [b"", b""]
    assert generate_input(TensorSpec("b", "b:0", "DT_BOOL", (4,)), "random").dtype == np.bool_
    assert generate_input(TensorSpec("i", "i:0", "DT_INT64", (None, 2)), "random", 5).shape == (5, 2)
    assert generate_input(TensorSpec("h", "h:0", "DT_HALF", ()), "zeros").dtype == np.float16
    with pytest.raises(sm_notebook.SavedModelError, match="unknown rank"):
        generate_input(TensorSpec("u", "u:0", "DT_FLOAT", None))


def test_run_panel_runs_and_shows_outputs_and_timing():
    path = fixture_model("keras3_mlp")
    namespace = {"batch": np.linspace(0, 1, 16, dtype=np.float32).reshape(2, 8)}
    panel = RunPanel(path, namespace=namespace)
    panel.set_input("features", "batch")
    panel.run_button.click()
    assert panel.result is not None, panel.status.value
    expected = sm_notebook.load(path).signatures["serving_default"](features=namespace["batch"])
    np.testing.assert_allclose(panel.result.outputs["output_0"], expected["output_0"])
    assert "output_0" in panel.result_view.value and "ms" in panel.status.value
    assert "last run" in cheap_repr(panel)


def test_run_panel_reports_errors_in_the_panel_and_clears_the_old_result():
    panel = RunPanel(fixture_model("keras3_mlp"), namespace={"bad": np.ones((2, 3), np.float32),
                                                             "good": np.ones((2, 8), np.float32)})
    panel.set_input("features", "good")
    panel.run_button.click()
    assert panel.result is not None and "output_0" in panel.result_view.value
    panel.set_input("features", "bad")
    panel.run_button.click()
    assert panel.result is None and "var(--jp-error-color1" in panel.status.value
    assert panel.result_view.value == "" and panel.progress_box.children == ()


def test_run_panel_cupy_toggle_without_cupy_says_so():
    try:
        import cupy  # noqa: F401 (only whether it imports)
        pytest.skip("cupy is installed here")
    except ImportError:
        pass
    panel = RunPanel(fixture_model("keras3_mlp"), namespace={})
    panel.backend_toggle.value = "cupy"
    panel.run_button.click()
    assert "cupy" in panel.status.value and panel.result is None


# ---------------------------------------------------------------- progress

def test_progress_steps_and_finish():
    progress = Progress("load", steps=2, show=False)
    with progress:
        progress.step("reading")
        assert progress.bar.value == 0 and "reading" in progress.text.value
        progress.step("running")
        assert progress.bar.value == 1
    assert progress.done and progress.bar.value == 2 and progress.bar.bar_style == "success"
    assert cheap_repr(progress).startswith("<Progress 'load': done")


def test_progress_failure_is_shown():
    progress = Progress("run", show=False)
    with pytest.raises(ValueError):
        with progress:
            progress.step("x")
            raise ValueError("boom")
    assert progress.failed == "ValueError: boom" and progress.bar.bar_style == "danger"


@pytest.mark.parametrize("cls", [ModelBrowser, SignatureEditor, RunPanel])
def test_a_signature_key_alone_opens_the_metagraph_holding_it(cls):
    widget = cls(fixture_model("tf1_multi_tags"), signature="train_step")
    assert widget.meta_graph.index == 2
