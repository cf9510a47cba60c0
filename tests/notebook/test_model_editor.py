"""The model editor: signatures, tag-sets and assets as tabs, one Save, a full diff preview."""
import os

import pytest

import sm_notebook
from notebook_fixtures import copy_model  # noqa: F401 (fixture)
from sm_notebook.notebook.widgets import ModelEditor


def test_edits_from_every_tab_are_saved_together_to_a_new_directory(copy_model, tmp_path):
    path = copy_model("tf1_multi_tags")
    vocab = tmp_path / "labels.txt"
    vocab.write_text("cat\ndog\n")
    editor = ModelEditor(path)
    assert editor.save_bar.save_button.disabled and "No changes" in editor.summary.value
    editor.signatures.select("lookup").set_key("tokens_to_ids")
    editor.assets.add_asset(vocab, tags="serve")
    editor.tags.set_tags(2, "train,eval")
    assert [e.kind for e in editor.edits] == ["rename", "add_asset", "tags"]
    assert "3 edit(s)" in editor.summary.value and not editor.save_bar.save_button.disabled
    editor.diff_button.click()
    assert "tokens_to_ids" in editor.diff_view.value and "labels.txt" in editor.diff_view.value
    before = {p: p.read_bytes() for p in path.rglob("*") if p.is_file()}
    editor.save_bar.save_button.click()
    assert "Saved 3 edit(s)" in editor.save_bar.status.value
    assert {p: p.read_bytes() for p in path.rglob("*") if p.is_file()} == before  # source untouched
    saved = sm_notebook.inspect(path.with_name("tf1_multi_tags_edited"))
    assert "tokens_to_ids" in saved.meta_graph("serve").signatures
    assert frozenset({"train", "eval"}) in saved.tag_sets
    assert any(a.filename == "labels.txt" and a.exists for a in saved.meta_graph("serve").assets)


def test_save_is_disabled_while_an_edit_is_invalid(copy_model):
    editor = ModelEditor(copy_model("tf1_multi_tags"))
    editor.signatures.select("lookup").set_key("serving_default")  # collides
    assert editor.save_bar.save_button.disabled
    assert "already called &#x27;serving_default&#x27;" in editor.summary.value
    with pytest.raises(sm_notebook.SavedModelError, match="not valid"):
        editor.save()
    editor.signatures.set_key("ids")
    assert not editor.save_bar.save_button.disabled


def test_a_stale_status_is_cleared_by_the_next_edit(copy_model):
    editor = ModelEditor(copy_model("tf1_multi_tags"))
    editor.signatures.select("lookup").set_key("ids")
    editor.save_bar.save_button.click()
    assert "Saved" in editor.save_bar.status.value
    editor.tags.set_tags(2, "train,eval")
    assert editor.save_bar.status.value == ""


@pytest.mark.parametrize("problem", ["file", "other_directory", "read_only"])
def test_write_errors_are_shown_in_the_widget(copy_model, tmp_path, problem):
    editor = ModelEditor(copy_model("tf1_multi_tags"))
    editor.signatures.select("lookup").set_key("ids")
    if problem == "file":
        target = tmp_path / "a_file"
        target.write_text("x")
    elif problem == "other_directory":
        target = tmp_path / "photos"
        target.mkdir()
        (target / "holiday.jpg").write_bytes(b"\xff\xd8")
    else:
        if os.geteuid() == 0:
            pytest.skip("root ignores directory permissions")
        parent = tmp_path / "locked"
        parent.mkdir()
        parent.chmod(0o500)
        target = parent / "model"
    editor.save_bar.target.value = str(target)
    editor.save_bar.save_button.click()
    if editor.save_bar.awaiting_confirmation:
        editor.save_bar.confirm_button.click()
    assert "var(--jp-error-color1" in editor.save_bar.status.value
    if problem == "other_directory":
        assert (target / "holiday.jpg").read_bytes() == b"\xff\xd8"


def test_an_asset_that_does_not_exist_is_refused_in_the_tab(copy_model, tmp_path):
    editor = ModelEditor(copy_model("tf1_multi_tags"))
    editor.assets.file_field.value = str(tmp_path / "missing.txt")
    editor.assets.add_button.click()
    assert "no such file" in editor.assets.status.value and editor.edits == []


def test_an_os_error_while_writing_is_shown_in_the_widget(copy_model, tmp_path, monkeypatch):
    """Permission denied (or a full disk) during the write: shown in the bar, nothing raised
    (works as root too, where directory permissions do not stop writes)."""
    from sm_notebook.builder import Builder

    def refuse(self, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(tmp_path / "target"))

    editor = ModelEditor(copy_model("tf1_multi_tags"))
    editor.signatures.select("lookup").set_key("ids")
    monkeypatch.setattr(Builder, "save", refuse)
    editor.save_bar.target.value = str(tmp_path / "target")
    editor.save_bar.save_button.click()
    assert "Permission denied" in editor.save_bar.status.value
    assert "var(--jp-error-color1" in editor.save_bar.status.value
