"""Corrupt or hostile SavedModel files give a SavedModelError naming the file, nothing else."""
import shutil
import warnings

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import sm_notebook
from conftest import fixture_names, fixture_path
from sm_notebook import SavedModelError

NAMES = fixture_names()
SOURCE = "tf1_multi_tags"


def _inspect_and_diagnose(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            info = sm_notebook.inspect(path)
            str(info.diagnose())
        except SavedModelError as exc:
            assert str(exc)
            return exc
    return None


def test_missing_directory(tmp_path):
    with pytest.raises(SavedModelError, match="does not exist"):
        sm_notebook.inspect(tmp_path / "nope")


def test_file_instead_of_directory(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(SavedModelError, match="is a file"):
        sm_notebook.inspect(tmp_path / "f")


def test_directory_without_saved_model(tmp_path):
    (tmp_path / "model.h5").write_text("x")
    with pytest.raises(SavedModelError, match="model.h5"):
        sm_notebook.inspect(tmp_path)


def test_random_bytes_name_the_file(tmp_path):
    (tmp_path / "saved_model.pb").write_bytes(b"\xff\xfe\x00garbage" * 10)
    with pytest.raises(SavedModelError, match="saved_model.pb"):
        sm_notebook.inspect(tmp_path)


def test_pbtxt_syntax_error_names_the_line(tmp_path):
    (tmp_path / "saved_model.pbtxt").write_text("saved_model_schema_version: 1\nmeta_graphs {\n  oops\n")
    with pytest.raises(SavedModelError, match=r"saved_model.pbtxt.*3"):
        sm_notebook.inspect(tmp_path)


def test_corrupt_fingerprint_is_reported(tmp_path):
    shutil.copytree(fixture_path(SOURCE), tmp_path / "m")
    (tmp_path / "m" / "fingerprint.pb").write_bytes(b"\x0a\xff\xff\xff")
    with pytest.raises(SavedModelError, match="fingerprint.pb"):
        sm_notebook.inspect(tmp_path / "m")


def test_frozen_graph_is_recognised(tmp_path):
    from sm_notebook._proto import graph_pb2
    graph = graph_pb2.GraphDef()
    node = graph.node.add(name="x", op="Placeholder")
    node.attr["dtype"].type = 1
    graph.node.add(name="y", op="Identity", input=["x"])
    (tmp_path / "saved_model.pb").write_bytes(graph.SerializeToString())
    report = sm_notebook.inspect(tmp_path).diagnose()
    assert "frozen-graph" in report.codes()
    with pytest.raises(SavedModelError, match="no MetaGraphDef"):
        sm_notebook.load(tmp_path)


@pytest.fixture(scope="module")
def source_bytes():
    return (fixture_path(SOURCE) / "saved_model.pb").read_bytes()


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_mutated_saved_model_never_crashes(tmp_path_factory, source_bytes, data):
    blob = bytearray(source_bytes)
    kind = data.draw(st.sampled_from(["truncate", "flip", "splice"]))
    if kind == "truncate":
        blob = blob[: data.draw(st.integers(0, len(blob) - 1))]
    elif kind == "flip":
        for _ in range(data.draw(st.integers(1, 20))):
            i = data.draw(st.integers(0, len(blob) - 1))
            blob[i] = data.draw(st.integers(0, 255))
    else:
        i = data.draw(st.integers(0, len(blob)))
        blob[i:i] = data.draw(st.binary(min_size=1, max_size=64))
    target = tmp_path_factory.mktemp("mut")
    shutil.copytree(fixture_path(SOURCE), target, dirs_exist_ok=True)
    (target / "saved_model.pb").write_bytes(bytes(blob))
    _inspect_and_diagnose(target)
