"""Exports behind fsspec URLs: read by the client for the signature, copied once per machine by
the workers, never outside their cache directory."""
import zipfile

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
fsspec = pytest.importorskip("fsspec")

import dask  # noqa: E402

import sm_notebook.dask as smd  # noqa: E402
from batched_reference import scored_in_batches  # noqa: E402
from conftest import MODELS  # noqa: E402
from sm_notebook import SavedModelError  # noqa: E402
from sm_notebook.dask import remote  # noqa: E402


def zipped_export(tmp_path, name="keras3_mlp", extra=None) -> str:
    """The fixture export packed in a zip, as an fsspec chained URL (any process can read it)."""
    archive = tmp_path / f"{name}.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for path in sorted((MODELS / name).rglob("*")):
            if path.is_file():
                z.write(path, f"model/{path.relative_to(MODELS / name)}")
        for entry, data in (extra or {}).items():
            z.writestr(entry, data)
    return f"zip://model::file://{archive}"


def features(rows=23):
    return np.random.default_rng(1).normal(size=(rows, 8)).astype("float32")


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SM_NOTEBOOK_CACHE", str(tmp_path / "cache"))


def test_a_zip_url_scores_exactly_like_the_local_export(tmp_path):
    url = zipped_export(tmp_path)
    x = features()
    lazy = smd.predict(url, da.from_array(x, chunks=10))
    assert list((tmp_path / "cache" / "remote_models").glob("*/describe-*")) == []  # cleaned up
    with dask.config.set(scheduler="threads"):
        got = lazy.compute()
    expected = scored_in_batches(MODELS / "keras3_mlp", lazy.chunks[0], features=x)
    np.testing.assert_array_equal(got, expected["output_0"])
    copies = [p for p in (tmp_path / "cache" / "remote_models").glob("*/*") if p.is_dir()]
    assert len(copies) == 1 and (copies[0] / "variables" / "variables.index").is_file()
    assert [n for k, n in smd.model_loads().items() if k[0] == url] == [1]


def test_a_memory_url_with_the_threaded_scheduler():
    fs = fsspec.filesystem("memory")
    for path in (MODELS / "keras3_mlp").rglob("*"):
        if path.is_file():
            fs.pipe(f"/mlp_copy/{path.relative_to(MODELS / 'keras3_mlp')}", path.read_bytes())
    x = features(5)
    with dask.config.set(scheduler="threads"):
        got = smd.predict("memory://mlp_copy", da.from_array(x, chunks=2)).compute()
    np.testing.assert_array_equal(got, scored_in_batches(MODELS / "keras3_mlp", [2, 2, 1], features=x)["output_0"])


def test_names_leaving_the_export_are_refused():
    with pytest.raises(SavedModelError, match="not inside it"):
        remote._relative("bucket/model", "bucket/other/../../etc/passwd", "s3://bucket/model")
    with pytest.raises(SavedModelError, match="not inside it"):
        remote._relative("bucket/model", "bucket/elsewhere/x", "s3://bucket/model")
    assert remote._relative("bucket/model", "bucket/model/variables/variables.index", "u") == \
        "variables/variables.index"


def test_unreadable_urls_are_clear_errors(tmp_path):
    with pytest.raises(SavedModelError, match="not a directory holding a SavedModel"):
        smd.predict(f"zip://nothing::file://{zipped_export(tmp_path).rsplit('file://', 1)[1]}",
                    da.zeros((2, 8), chunks=1, dtype="float32"))
    with pytest.raises(SavedModelError, match="fsspec cannot open"):
        smd.predict("nosuchprotocol://bucket/model", da.zeros((2, 8), chunks=1, dtype="float32"))
