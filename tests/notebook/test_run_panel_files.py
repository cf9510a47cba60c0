"""Run panel inputs from .npy/.npz/image files; top-k labels from a vocabulary asset."""
import numpy as np
import pytest

import sm_notebook
from notebook_fixtures import fixture_model
from sm_notebook.builder import Builder, Graph
from sm_notebook.notebook.input_files import read_input_file
from sm_notebook.notebook.widgets import RunPanel


def labelled_classifier(tmp_path):
    """x (None, 3) -> softmax over 3 classes, with labels.txt (3 lines) as an asset."""
    g = Graph()
    x = g.placeholder("x", "float32", (None, 3))
    probs = g.op("Softmax", x, name="probs")
    builder = Builder(graph=g)
    labels = tmp_path / "labels.txt"
    labels.write_text("cat\ndog\nbird\n")
    builder.add_asset(labels)
    builder.add_signature("serving_default", {"x": x}, {"probs": probs})
    return builder.save(tmp_path / "classifier")


def test_npy_and_npz_inputs_and_labels_from_the_vocabulary_asset(tmp_path):
    path = labelled_classifier(tmp_path)
    np.save(tmp_path / "x.npy", np.array([[0.0, 3.0, 1.0]], np.float32))
    np.savez(tmp_path / "batch.npz", first=np.array([[5.0, 0.0, 0.0]], np.float32),
             second=np.zeros((2, 3), np.float32))
    panel = RunPanel(path, namespace={})
    panel.set_input_file("x", tmp_path / "x.npy")
    panel.run_button.click()
    assert panel.result is not None, panel.status.value
    assert panel.result.labels == ["cat", "dog", "bird"]
    assert "top-3 (row 0): dog" in sm_notebook.render.run_result_text(panel.result)
    panel._file_fields["x"].value = f"{tmp_path / 'batch.npz'}[first]"
    panel.run_button.click()
    assert panel.result.outputs["probs"].argmax() == 0 and "cat" in panel.result_view.value
    panel._file_fields["x"].value = str(tmp_path / "batch.npz")  # two arrays: which one?
    panel.run_button.click()
    assert panel.result is None and "pick one with batch.npz[name]" in panel.status.value


def test_an_image_is_resized_to_the_input_and_batched(tmp_path):
    from PIL import Image
    picture = tmp_path / "photo.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8)).save(picture)
    spec = sm_notebook.inspect(fixture_model("keras3_cnn")).signature("serving_default").inputs["image"]
    pixels = read_input_file(str(picture), spec)
    assert pixels.shape == (1, 32, 32, 3) and pixels.dtype == np.uint8
    panel = RunPanel(fixture_model("keras3_cnn"), namespace={})
    panel.set_input_file("image", picture)
    panel.run_button.click()
    assert panel.result is not None, panel.status.value
    expected = sm_notebook.load(fixture_model("keras3_cnn")).signatures["serving_default"](
        image=pixels.astype(np.float32))
    np.testing.assert_array_equal(panel.result.outputs["output_0"], expected["output_0"])


@pytest.mark.parametrize("name, message", [
    ("missing.npy", "does not exist"), ("notes.txt", "unknown type"), ("pickled.npy", "Cannot read")])
def test_bad_files_are_clear_errors_never_unpickled(tmp_path, name, message):
    if name == "notes.txt":
        (tmp_path / name).write_text("hello")
    if name == "pickled.npy":
        np.save(tmp_path / name, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(sm_notebook.SavedModelError, match=message):
        read_input_file(str(tmp_path / name))
