"""Models saved by the notebook editors (and %%savedmodel) load and run in TensorFlow."""
import shutil
from pathlib import Path

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from sm_notebook.notebook.edits import parse_edits, preview_edits  # noqa: E402
from sm_notebook.notebook.widgets import SignatureEditor, TagSetEditor  # noqa: E402

pytestmark = pytest.mark.interop
MODELS = Path(__file__).resolve().parents[1] / "fixtures" / "models"


def run_tf1(export_dir, tags, key, feeds):
    """Load with TensorFlow's TF1 loader and run one signature."""
    with tf.Graph().as_default(), tf.compat.v1.Session() as session:
        meta_graph = tf.compat.v1.saved_model.loader.load(session, tags, str(export_dir))
        sig = meta_graph.signature_def[key]
        fetches = {k: v.name for k, v in sig.outputs.items()}
        return session.run(fetches, {sig.inputs[k].name: v for k, v in feeds.items()})


def test_signature_added_in_the_editor_runs_in_tensorflow(tmp_path):
    editor = SignatureEditor(MODELS / "tf1_multi_tags", tags=["serve"], save_to=tmp_path / "out")
    editor.signature_picker.value = None
    editor.key_field.value = "scores"
    editor.add_input("features", "x:0").add_output("probs", "probabilities:0").add_output("logits", "logits:0")
    editor.select("serving_default").rename_output("probabilities", "p")
    editor.save_bar.save_button.click()
    assert "Saved" in editor.save_bar.status.value, editor.save_bar.status.value
    x = np.array([[1.0, 2.0, 3.0], [0.5, -1.0, 0.0]], np.float32)
    new = run_tf1(tmp_path / "out", ["serve"], "scores", {"features": x})
    old = run_tf1(MODELS / "tf1_multi_tags", ["serve"], "serving_default", {"x": x})
    np.testing.assert_allclose(new["probs"], old["probabilities"], rtol=1e-6)
    assert new["logits"].shape == (2, 4)
    renamed = run_tf1(tmp_path / "out", ["serve"], "serving_default", {"x": x})
    np.testing.assert_allclose(renamed["p"], old["probabilities"], rtol=1e-6)


def test_duplicate_tag_set_fixed_in_the_tag_editor_loads_both_metagraphs(tmp_path):
    editor = TagSetEditor(MODELS / "tf1_duplicate_tags")
    editor.set_tags(1, "serve,gpu")
    assert [p.code for p in editor.problems if p.severity == "error"] == []
    editor.save(tmp_path / "out")
    x = np.ones((1, 2), np.float32)
    first = run_tf1(tmp_path / "out", ["serve"], "first_sig", {"x": x})
    second = run_tf1(tmp_path / "out", ["serve", "gpu"], "second_sig", {"x": x})
    assert set(first) == {"y"} and set(second) == {"y"}


def test_cell_edits_written_with_write_load_in_tensorflow(tmp_path):
    source = tmp_path / "model"
    shutil.copytree(MODELS / "tf1_multi_tags", source)
    edits = parse_edits("rename: serving_default -> predict\nrename_input: predict x -> features\n"
                        "tags: serve,gpu -> serve,gpu,tpu", tags="serve")
    builder, diff, _ = preview_edits(source, edits)
    builder.save(tmp_path / "out")
    x = np.zeros((1, 3), np.float32)
    result = run_tf1(tmp_path / "out", ["serve"], "predict", {"features": x})
    before = run_tf1(source, ["serve"], "serving_default", {"x": x})
    np.testing.assert_allclose(result["probabilities"], before["probabilities"], rtol=1e-6)
    run_tf1(tmp_path / "out", ["serve", "gpu", "tpu"], "predict_gpu", {"x": x})
