"""Builder.save must never lose the user's files (issue 10): what overwrite may replace, file
modes, links and special files in the source, concurrent saves, and kills mid-save."""
import multiprocessing
import os
import signal
import stat

import numpy as np
import pytest

from sm_notebook import SavedModelError
from sm_notebook.builder import Builder, Graph, publish
from sm_notebook.format.savedmodel import read_saved_model

FORK = multiprocessing.get_context("fork")
CHILD_LIMIT_S = 120          # a hang guard only: a child still running after it is a failure


def tiny_builder(value=0.0):
    """A one-variable model whose variable holds ``value`` (tells exports apart)."""
    g = Graph()
    x = g.placeholder("x", "float32", (None,))
    v = g.variable("v", np.array([value], np.float32))
    y = g.op("Mul", x, v, name="y")
    builder = Builder(graph=g)
    builder.add_signature("serving_default", {"x": x}, {"y": y})
    return builder


def variable_value(export):
    from sm_notebook.format.bundle import BundleReader
    with BundleReader(export / "variables" / "variables") as reader:
        return float(reader.read("v")[0])


def snapshot(directory):
    """Every entry under a directory (not following links) with its bytes or link target."""
    result = {}
    for root, dirs, names in os.walk(directory):
        for name in dirs + names:
            path = os.path.join(root, name)
            key = os.path.relpath(path, directory)
            if os.path.islink(path):
                result[key] = "-> " + os.readlink(path)
            elif os.path.isfile(path):
                with open(path, "rb") as handle:
                    result[key] = handle.read()
            else:
                result[key] = "dir"
    return result


def staging_dirs(parent):
    return sorted(name for name in os.listdir(parent) if ".smnb-" in name)


def run_in_child(function, *args):
    """Run ``function(*args)`` in a forked process; its exit code ('ok' -> 0, a
    SavedModelError -> 3, anything else -> 4), or the negative signal that killed it."""
    def main():
        try:
            function(*args)
        except SavedModelError:
            os._exit(3)
        except BaseException:
            os._exit(4)
        os._exit(0)
    child = FORK.Process(target=main)
    child.start()
    child.join(CHILD_LIMIT_S)
    if child.is_alive():
        child.kill()
        child.join()
        pytest.fail(f"{function.__name__} did not finish: it hung")
    return child.exitcode


# --- 1. overwrite replaces only a SavedModel export -------------------------------------
def test_overwrite_refuses_a_project_folder_and_lists_what_it_holds(copy_fixture, tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    (project / "notes.txt").write_text("my notes")
    (project / "data").mkdir()
    (project / "data" / "train.csv").write_text("1,2,3")
    model = copy_fixture("tf1_multi_tags").rename(project / "model")
    before = snapshot(project)
    builder = Builder.from_saved_model(model)
    with pytest.raises(SavedModelError, match=r"not one.*would delete data/, model/, notes\.txt"):
        builder.save(project, overwrite=True)
    assert snapshot(project) == before and staging_dirs(tmp_path) == []


def test_overwrite_refuses_an_export_that_holds_other_files(copy_fixture, tmp_path):
    home = copy_fixture("tf1_multi_tags")        # a home-like folder that also holds an export
    (home / ".ssh").mkdir()
    (home / ".ssh" / "id_rsa").write_text("PRIVATE KEY")
    (home / "variables" / "notes").write_text("x")
    before = snapshot(home)
    with pytest.raises(SavedModelError, match=r"holds more than a SavedModel export; "
                       r"overwriting it would delete \.ssh/, variables/notes\."):
        tiny_builder().save(home, overwrite=True)
    assert snapshot(home) == before


def test_the_refusal_lists_ten_entries_then_a_count(tmp_path):
    target = tmp_path / "full"
    target.mkdir()
    for index in range(14):
        (target / f"file{index:02d}").write_text("x")
    with pytest.raises(SavedModelError, match=r"file09 and 4 more\. "):
        tiny_builder().save(target, overwrite=True)


def test_overwrite_replaces_every_entry_tensorflow_writes(tmp_path):
    target = tmp_path / "export"
    tiny_builder(1.0).save(target)
    for name in ("fingerprint.pb", "keras_metadata.pb", "saved_model.pbtxt"):
        (target / name).write_bytes(b"x")
    (target / "variables" / "variables.data-00000-of-00002").write_bytes(b"x")
    for name in ("assets/sub/vocab.txt", "assets.extra/tf_serving_warmup_requests",
                 "debug/saved_model_debug_info.pb"):
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        (target / name).write_bytes(b"x")
    tiny_builder(2.0).save(target, overwrite=True)
    assert sorted(os.listdir(target)) == ["saved_model.pb", "variables"]
    assert variable_value(target) == 2.0 and staging_dirs(tmp_path) == []


def test_an_empty_directory_may_be_overwritten(tmp_path):
    (tmp_path / "empty").mkdir()
    tiny_builder().save(tmp_path / "empty", overwrite=True)
    assert (tmp_path / "empty" / "saved_model.pb").is_file()


@pytest.mark.parametrize("overwrite", [False, True])
def test_a_symlink_target_is_refused(tmp_path, overwrite):
    real = tiny_builder(1.0).save(tmp_path / "real")
    before = snapshot(real)
    (tmp_path / "link").symlink_to(real)
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    for name in ("link", "dangling"):
        with pytest.raises(SavedModelError, match="is a symbolic link"):
            tiny_builder(2.0).save(tmp_path / name, overwrite=overwrite)
    assert snapshot(real) == before and not (tmp_path / "nowhere").exists()
    assert (tmp_path / "link").is_symlink() and (tmp_path / "dangling").is_symlink()


def test_saving_in_place_keeps_the_sources_other_files(copy_fixture):
    source = copy_fixture("tf1_multi_tags")
    (source / "README.txt").write_text("how this model was made")
    (source / "assets.extra").mkdir()
    (source / "assets.extra" / "warmup").write_text("w")
    builder = Builder.from_saved_model(source)
    builder.rename_signature("lookup", "vocab_lookup", tags="serve")
    builder.save(source, overwrite=True)
    assert (source / "README.txt").read_text() == "how this model was made"
    assert (source / "assets.extra" / "warmup").read_text() == "w"
    assert "vocab_lookup" in Builder.from_saved_model(source).signatures("serve")
    assert staging_dirs(source.parent) == []


def test_editor_overwrite_goes_through_the_same_refusal(copy_fixture, tmp_path):
    from sm_notebook.notebook.widgets import SignatureEditor
    model = copy_fixture("tf1_multi_tags")
    project = tmp_path / "project"
    project.mkdir()
    (project / "notes.txt").write_text("mine")
    editor = SignatureEditor(model).select("lookup").set_key("ids")
    with pytest.raises(SavedModelError, match="notes.txt"):
        editor.save(project, overwrite=True)
    editor.save_bar.target.value = str(project)
    editor.save_bar.save_button.click()
    assert editor.save_bar.awaiting_confirmation
    editor.save_bar.confirm_button.click()
    assert "would delete notes.txt" in editor.save_bar.status.value
    assert os.listdir(project) == ["notes.txt"]


# --- 2. file modes follow the umask, as TensorFlow's ------------------------------------
@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_modes_are_tensorflows_under_the_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        exports = [tiny_builder().save(tmp_path / "new" / "m")]
        builder = tiny_builder(3.0)
        builder.add_asset(_write(tmp_path / "vocab.txt", "a\n"), name="deep/vocab.txt")
        exports.append(builder.save(exports[0], overwrite=True))
    finally:
        os.umask(old)
    dir_mode, file_mode = 0o755 & ~umask, 0o666 & ~umask
    assert stat.S_IMODE(os.stat(tmp_path / "new").st_mode) == dir_mode
    for export in exports:
        for root, dirs, names in os.walk(export):
            assert stat.S_IMODE(os.stat(root).st_mode) == dir_mode, root
            for name in names:
                if name == "vocab.txt":              # hard-linked: the source's own mode
                    continue
                assert stat.S_IMODE(os.stat(os.path.join(root, name)).st_mode) == file_mode, name


def _write(path, text):
    path.write_text(text)
    return path


# --- 3. links and special files in the source export -------------------------------------
def test_an_asset_linked_outside_the_export_is_refused(copy_fixture, tmp_path):
    source = copy_fixture("tf1_multi_tags")
    secret = _write(tmp_path / "secret.txt", "root:x:0:0")
    (source / "assets" / "passwd").symlink_to(secret)
    with pytest.raises(SavedModelError, match=r"assets/passwd -> .*secret\.txt \(outside"):
        Builder.from_saved_model(source).save(tmp_path / "out")
    assert not (tmp_path / "out").exists() and staging_dirs(tmp_path) == []


def test_an_assets_directory_linked_outside_is_never_walked(copy_fixture, tmp_path):
    source = copy_fixture("tf2_module")
    outside = tmp_path / "etc"
    (outside / "deep").mkdir(parents=True)
    _write(outside / "deep" / "shadow", "secret")
    if (source / "assets").exists():
        os.rename(source / "assets", tmp_path / "real_assets")
    (source / "assets").symlink_to(outside)
    builder = Builder.from_saved_model(source)
    assert not any("shadow" in name for name in builder._assets)
    with pytest.raises(SavedModelError, match=r"assets -> .*etc \(outside the export\)"):
        builder.save(tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("link", ["variables", "variables/variables.data-00000-of-00001",
                                  "variables/variables.index"])
def test_variables_linked_outside_the_export_are_refused(copy_fixture, tmp_path, link):
    source = copy_fixture("tf1_multi_tags")
    outside = tmp_path / "elsewhere"
    real = source / link
    os.rename(real, outside)
    real.symlink_to(outside)
    with pytest.raises(SavedModelError, match=rf"{link}'.*symbolic link to .*elsewhere.*outside"):
        Builder.from_saved_model(source).save(tmp_path / "out")
    assert not (tmp_path / "out").exists() and staging_dirs(tmp_path) == []


def test_an_extra_file_linked_outside_is_refused(copy_fixture, tmp_path):
    source = copy_fixture("tf1_multi_tags")
    (source / "assets.extra").mkdir()
    (source / "assets.extra" / "key").symlink_to(_write(tmp_path / "id_rsa", "KEY"))
    with pytest.raises(SavedModelError, match=r"assets\.extra/key -> .*id_rsa"):
        Builder.from_saved_model(source).save(tmp_path / "out")


def test_links_inside_the_export_are_followed(copy_fixture, tmp_path):
    source = copy_fixture("tf1_multi_tags")
    (source / "assets" / "alias.txt").symlink_to("vocab.txt")
    (source / "assets" / "loop").symlink_to(".")            # a cycle is not walked for ever
    builder = Builder.from_saved_model(source)
    with pytest.raises(SavedModelError, match="assets/loop .a link to a directory containing it"):
        builder.save(tmp_path / "out")
    os.unlink(source / "assets" / "loop")
    out = Builder.from_saved_model(source).save(tmp_path / "out")
    alias = out / "assets" / "alias.txt"
    assert not alias.is_symlink()
    assert alias.read_bytes() == (source / "assets" / "vocab.txt").read_bytes()


@pytest.mark.parametrize("where", ["assets/pipe", "variables/variables.index",
                                   "variables/variables.data-00000-of-00001"])
def test_a_named_pipe_in_the_source_is_refused_without_blocking(copy_fixture, tmp_path, where):
    source = copy_fixture("tf1_multi_tags")
    if (source / where).exists():
        os.unlink(source / where)
    os.mkfifo(source / where)

    def save():
        Builder.from_saved_model(source).save(tmp_path / "out")
    assert run_in_child(save) == 3                      # refused, not blocked on the pipe
    with pytest.raises(SavedModelError, match="a named pipe"):
        save()
    assert not (tmp_path / "out").exists()


# --- 4. concurrent saves to one new target ---------------------------------------------
def _race(target, index, barrier, results):
    builder = tiny_builder(float(index))
    barrier.wait()
    try:
        builder.save(target)
        results.put((index, "ok"))
    except SavedModelError as exc:
        results.put((index, "refused: " + str(exc)[:80]))
    except BaseException as exc:                    # noqa: BLE001 (reported to the parent)
        results.put((index, f"{type(exc).__name__}: {exc}"))


@pytest.mark.parametrize("native", [True, False], ids=["renameat2", "mkdir-fallback"])
def test_concurrent_saves_to_a_new_target_have_one_winner(tmp_path, monkeypatch, native):
    if not native:
        monkeypatch.setattr(publish, "_renameat2", None)
    elif publish._renameat2 is None:
        pytest.skip("renameat2 is not available here")
    processes, rounds = 8, 4
    for round_index in range(rounds):
        target = tmp_path / f"round{round_index}" / "model"
        barrier, results = FORK.Barrier(processes), FORK.Queue()
        children = [FORK.Process(target=_race, args=(target, i, barrier, results))
                    for i in range(processes)]
        for child in children:
            child.start()
        outcomes = dict(results.get(timeout=CHILD_LIMIT_S) for _ in children)
        for child in children:
            child.join()
        winners = [index for index, outcome in outcomes.items() if outcome == "ok"]
        assert len(winners) == 1, outcomes
        assert all(outcome.startswith("refused") for index, outcome in outcomes.items()
                   if index not in winners), outcomes
        assert variable_value(target) == float(winners[0])
        assert read_saved_model(target).meta_graphs[0].signature_def["serving_default"]
        assert staging_dirs(target.parent) == []


# --- 5. kills mid-save: the target is never lost, leftovers are cleaned -----------------
def _save_and_die_at(stage, target, value, overwrite):
    def die(name):
        if name == stage:
            os.kill(os.getpid(), signal.SIGKILL)
    publish.reached = die
    tiny_builder(value).save(target, overwrite=overwrite)


KILL_CASES = [("staged", True, True), ("swapped", True, True), ("staged", False, True),
              ("moved-aside", True, False), ("claimed", False, False)]


@pytest.mark.parametrize("stage,overwrite,native", KILL_CASES,
                         ids=[f"{s}-{'overwrite' if o else 'new'}-{'native' if n else 'fallback'}"
                              for s, o, n in KILL_CASES])
def test_a_kill_mid_save_never_loses_the_target(tmp_path, monkeypatch, stage, overwrite, native):
    if not native:
        monkeypatch.setattr(publish, "_renameat2", None)
    elif publish._renameat2 is None:
        pytest.skip("renameat2 is not available here")
    target = tmp_path / "model"
    if overwrite:
        tiny_builder(1.0).save(target)
    before = snapshot(target) if overwrite else None
    assert run_in_child(_save_and_die_at, stage, target, 2.0, overwrite) == -signal.SIGKILL
    assert len(staging_dirs(tmp_path)) == 1                 # the kill left a staging directory
    if stage == "moved-aside":                              # the fallback's one window
        assert not target.exists()
    elif overwrite:
        assert variable_value(target) == (2.0 if stage == "swapped" else 1.0)
    if overwrite:
        # The next save to the same place recovers the target first, then refuses.
        with pytest.raises(SavedModelError, match="already exists"):
            tiny_builder(3.0).save(target)
        assert staging_dirs(tmp_path) == []
        assert snapshot(target) == before or stage == "swapped"
        read_saved_model(target)
    tiny_builder(3.0).save(target, overwrite=overwrite)
    assert variable_value(target) == 3.0
    assert [name for name in os.listdir(tmp_path) if name.startswith(".")] == []


def test_only_provably_abandoned_staging_directories_are_removed(tmp_path):
    target = tmp_path / "model"
    tiny_builder(1.0).save(target)
    name = ".model.smnb-0123456789abcdef.partial"
    foreign = [tmp_path / name, tmp_path / ".other.smnb-0123456789abcdef.partial",
               tmp_path / ".model.smnb-fedcba9876543210.partial"]
    for directory in foreign:
        directory.mkdir()
        _write(directory / "data.bin", "user data")
    # No marker; a marker naming another target; a marker held by a living process.
    (foreign[1] / publish.MARKER).write_bytes(publish._marker_content(tmp_path / "other"))
    (foreign[2] / publish.MARKER).write_bytes(publish._marker_content(target))
    held = os.open(foreign[2] / publish.MARKER, os.O_RDONLY)
    try:
        import fcntl
        fcntl.flock(held, fcntl.LOCK_EX)
        tiny_builder(2.0).save(target, overwrite=True)
    finally:
        os.close(held)
    assert all((directory / "data.bin").read_text() == "user data" for directory in foreign)
    tiny_builder(3.0).save(target, overwrite=True)          # the lock is gone: now it is ours
    assert not foreign[2].exists() and foreign[0].exists() and foreign[1].exists()


def test_an_unwritable_parent_is_a_clear_error(tmp_path, monkeypatch):
    from sm_notebook.builder import writer

    def refused(path):
        raise PermissionError(13, "Permission denied", str(path))
    monkeypatch.setattr(writer, "make_dirs", refused)
    with pytest.raises(SavedModelError, match=r"Cannot write into .*\(Permission denied\)"):
        tiny_builder().save(tmp_path / "locked" / "model")
