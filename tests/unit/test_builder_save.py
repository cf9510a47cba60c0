"""Builder.save: files written, fingerprints, overwrite rules, in-place edits and atomicity."""
import os

import numpy as np
import pytest

import sm_notebook as sm
from sm_notebook import SavedModelError
from sm_notebook.builder import Builder, Graph, publish, writer
from sm_notebook.format.bundle import BundleReader
from sm_notebook.format.savedmodel import read_saved_model

from conftest import MODELS


def composed_builder():
    g = Graph()
    x = g.placeholder("x", "float32", (None, 3))
    w = g.variable("w", np.arange(6, dtype=np.float32).reshape(3, 2))
    b = g.variable("b", np.array([1.0, -1.0], np.float32))
    y = g.op("Softmax", g.op("BiasAdd", g.op("MatMul", x, w), b), name="probs")
    builder = Builder(graph=g)
    builder.add_signature("serving_default", {"x": x}, {"probs": y})
    return builder


def snapshot(directory):
    """Every file under a directory with its bytes (to prove it was not touched)."""
    return {str(p.relative_to(directory)): p.read_bytes()
            for p in sorted(directory.rglob("*")) if p.is_file()}


def leftovers(parent):
    return [p.name for p in parent.iterdir() if p.name.startswith(".")]


def test_composed_model_has_saver_variables_and_checkpoint(tmp_path):
    path = composed_builder().save(tmp_path / "model")
    assert sorted(os.listdir(path)) == ["saved_model.pb", "variables"]
    model = read_saved_model(path)
    meta_graph = model.meta_graphs[0]
    assert meta_graph.saver_def.restore_op_name == "save/restore_all"
    assert meta_graph.saver_def.filename_tensor_name == "save/Const:0"
    ops = {n.name: n.op for n in meta_graph.graph_def.node}
    assert ops["save/RestoreV2"] == "RestoreV2" and ops["save/SaveV2"] == "SaveV2"
    assert len(meta_graph.collection_def["variables"].bytes_list.value) == 2
    with BundleReader(path / "variables" / "variables") as reader:
        assert sorted(reader.keys()) == ["b", "w"]
        np.testing.assert_array_equal(reader.read("w"), np.arange(6).reshape(3, 2))
    assert not leftovers(tmp_path)


def test_saving_does_not_change_the_composed_graph(tmp_path):
    builder = composed_builder()
    before = len(builder.graph)
    builder.save(tmp_path / "a")
    builder.save(tmp_path / "b")
    assert len(builder.graph) == before


def test_round_trip_without_edits_is_byte_identical(copy_fixture, tmp_path):
    source = copy_fixture("keras3_mlp")
    Builder.from_saved_model(source).save(tmp_path / "copy")
    assert snapshot(tmp_path / "copy") == snapshot(source)


def test_edits_write_a_fresh_fingerprint_never_a_stale_one(copy_fixture, tmp_path):
    from sm_notebook.format.fingerprint import stale_fingerprint_fields
    from sm_notebook.format.savedmodel import read_fingerprint
    source = copy_fixture("keras3_mlp")
    old = read_fingerprint(source)
    builder = Builder.from_saved_model(source)
    builder.rename_signature("serve", "serve2")
    builder.save(tmp_path / "edited")
    new = read_fingerprint(tmp_path / "edited")
    assert new is not None and stale_fingerprint_fields(tmp_path / "edited", new) == []
    assert new.signature_def_hash != old.signature_def_hash
    builder2 = Builder.from_saved_model(source)
    builder2.graph.constant(1.0, name="extra")        # a graph edit counts as an edit too
    builder2.save(tmp_path / "edited2")
    graph_edit = read_fingerprint(tmp_path / "edited2")
    assert stale_fingerprint_fields(tmp_path / "edited2", graph_edit) == []
    assert graph_edit.graph_def_program_hash != old.graph_def_program_hash


def test_unchanged_variables_are_hard_linked(copy_fixture, tmp_path):
    source = copy_fixture("tf1_multi_tags")
    builder = Builder.from_saved_model(source)
    builder.rename_signature("lookup", "vocab_lookup", tags="serve")
    out = builder.save(tmp_path / "out")
    for name in os.listdir(source / "variables"):
        assert os.stat(source / "variables" / name).st_ino == os.stat(out / "variables" / name).st_ino
    assert (out / "assets" / "vocab.txt").read_bytes() == (source / "assets" / "vocab.txt").read_bytes()


def test_existing_export_dir_is_refused_unless_overwrite(tmp_path):
    target = tmp_path / "model"
    builder = composed_builder()
    builder.save(target)
    before = snapshot(target)
    with pytest.raises(SavedModelError, match="already exists.*overwrite=True"):
        builder.save(target)
    assert snapshot(target) == before
    builder.graph.constant(1.0, name="extra")
    builder.save(target, overwrite=True)
    assert sorted(os.listdir(target)) == ["saved_model.pb", "variables"]
    assert snapshot(target) != before
    assert not leftovers(tmp_path)


def test_overwrite_never_deletes_a_directory_that_is_not_only_an_export(tmp_path):
    target = tmp_path / "model"
    target.mkdir()
    (target / "keep.txt").write_text("mine")
    with pytest.raises(SavedModelError, match="not one.*would delete keep.txt"):
        composed_builder().save(target, overwrite=True)
    assert os.listdir(target) == ["keep.txt"] and not leftovers(tmp_path)


def test_saving_onto_a_file_is_refused(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(SavedModelError, match="is a file"):
        composed_builder().save(tmp_path / "file", overwrite=True)


def test_in_place_edit_replaces_the_source_safely(copy_fixture):
    source = copy_fixture("tf1_multi_tags")
    data_before = {p.name: p.read_bytes() for p in (source / "variables").iterdir()}
    builder = Builder.from_saved_model(source)
    builder.rename_signature("serving_default", "predict", tags="serve")
    builder.save(source, overwrite=True)
    assert "predict" in builder.signatures("serve")
    reread = Builder.from_saved_model(source)
    assert sorted(reread.signatures("serve")) == ["lookup", "predict"]
    assert {p.name: p.read_bytes() for p in (source / "variables").iterdir()} == data_before
    assert (source / "assets" / "vocab.txt").is_file()
    assert not leftovers(source.parent)


def test_failure_mid_save_leaves_target_and_source_untouched(copy_fixture, monkeypatch):
    source = copy_fixture("tf1_multi_tags")
    before = snapshot(source)
    builder = Builder.from_saved_model(source)
    builder.rename_signature("serving_default", "predict", tags="serve")

    def explode(directory, plan):
        assert (directory / "variables" / "variables.index").is_file()   # variables already in
        raise OSError("disk full")

    monkeypatch.setattr(writer, "write_saved_model_file", explode)
    with pytest.raises(OSError, match="disk full"):
        builder.save(source, overwrite=True)
    assert snapshot(source) == before
    assert not leftovers(source.parent)


def test_failure_of_the_fallbacks_second_rename_restores_the_old_export(copy_fixture, monkeypatch):
    source = copy_fixture("tf1_multi_tags")
    before = snapshot(source)
    builder = Builder.from_saved_model(source)
    builder.remove_signature("lookup", tags="serve")
    real_rename = os.rename
    calls = []

    def failing_second_rename(src, dst):
        calls.append((src, dst))
        if len(calls) == 2:
            raise OSError("rename failed")
        return real_rename(src, dst)

    monkeypatch.setattr(publish, "_renameat2", None)       # the two-rename fallback
    monkeypatch.setattr(publish.os, "rename", failing_second_rename)
    with pytest.raises(OSError, match="rename failed"):
        builder.save(source, overwrite=True)
    monkeypatch.undo()
    assert snapshot(source) == before
    assert not leftovers(source.parent)


def test_failure_in_a_new_location_leaves_nothing(tmp_path, monkeypatch):
    builder = composed_builder()
    monkeypatch.setattr(writer, "write_saved_model_file",
                        lambda directory, plan: (_ for _ in ()).throw(RuntimeError("boom")))
    with pytest.raises(RuntimeError):
        builder.save(tmp_path / "new")
    assert os.listdir(tmp_path) == []


def test_as_text_writes_pbtxt_that_reads_back(copy_fixture, tmp_path):
    source = copy_fixture("tf1_multi_tags")
    builder = Builder.from_saved_model(source)
    out = builder.save(tmp_path / "text", as_text=True)
    assert (out / "saved_model.pbtxt").is_file() and not (out / "saved_model.pb").exists()
    assert not (out / "fingerprint.pb").exists()
    again = Builder.from_saved_model(out)
    assert again.tag_sets == builder.tag_sets
    assert sorted(again.signatures("serve")) == ["lookup", "serving_default"]


def test_pbtxt_source_round_trips(copy_fixture, tmp_path):
    source = copy_fixture("tf1_pbtxt")
    out = Builder.from_saved_model(source).save(tmp_path / "binary")
    assert (out / "saved_model.pb").is_file()
    assert sm.inspect(out).tag_sets == sm.inspect(source).tag_sets


def test_added_assets_are_copied(copy_fixture, tmp_path):
    vocab = tmp_path / "labels.txt"
    vocab.write_text("cat\ndog\n")
    builder = Builder.from_saved_model(copy_fixture("tf1_multi_tags"))
    builder.add_asset(vocab, name="extra/labels.txt", tags="serve")
    out = builder.save(tmp_path / "out")
    assert (out / "assets" / "extra" / "labels.txt").read_text() == "cat\ndog\n"
    assert (out / "assets" / "vocab.txt").is_file()


def test_new_variables_in_a_model_with_a_checkpoint_are_refused(copy_fixture, tmp_path):
    builder = Builder.from_saved_model(copy_fixture("tf1_multi_tags"))
    builder.get_graph("serve").variable("new_var", np.zeros(3, np.float32))
    with pytest.raises(SavedModelError, match="already has a saver"):
        builder.save(tmp_path / "out")


def test_nothing_to_save_is_an_error(tmp_path):
    with pytest.raises(SavedModelError, match="no metagraph"):
        Builder().save(tmp_path / "empty")


def test_empty_builder_composes_then_adds_metagraphs(tmp_path):
    builder = Builder()
    x = builder.graph.placeholder("x", "float32", (None,))
    y = builder.graph.op("Square", x, name="y")
    builder.add_meta_graph(["serve"], signatures={"square": sm.signature({"x": x}, {"y": y})})
    builder.add_meta_graph(["serve", "gpu"], signatures={"square": {"inputs": {"x": x},
                                                                    "outputs": {"y": y}}})
    out = builder.save(tmp_path / "m")
    info = sm.inspect(out)
    assert info.tag_sets == [frozenset({"serve"}), frozenset({"serve", "gpu"})]
    assert not (out / "variables" / "variables.index").exists()


@pytest.mark.parametrize("name", sorted(p.name for p in MODELS.iterdir() if p.is_dir()))
def test_every_fixture_round_trips(name, tmp_path):
    source = MODELS / name
    if name == "tf1_duplicate_tags":
        with pytest.raises(SavedModelError, match="both have the tag-set"):
            Builder.from_saved_model(source).save(tmp_path / "same")
        return
    same = Builder.from_saved_model(source).save(tmp_path / "same", as_text=name == "tf1_pbtxt")
    assert snapshot(same) == snapshot(source) or name == "tf1_pbtxt"
    builder = Builder.from_saved_model(source)
    builder._changed = True                      # force re-serialisation
    rewritten = builder.save(tmp_path / "rewritten")
    assert read_saved_model(rewritten) == read_saved_model(source)
    text = Builder.from_saved_model(source).save(tmp_path / "text", as_text=True)
    assert read_saved_model(text) == read_saved_model(source)
