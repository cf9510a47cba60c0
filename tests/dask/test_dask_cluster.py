"""sm_notebook.dask.predict on a real cluster: 2 worker processes (LocalCluster), one start-up.

Results are compared exactly with single-process `load(...).signatures[k](...)` on the
same batches (`batched_reference`) and with TensorFlow's stored outputs (tests/fixtures/expected) within the engine's
tolerances. The worker-kill test runs last: it restarts a worker.
"""
import os
import shutil
import signal
import time

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")
pd = pytest.importorskip("pandas")

import dask  # noqa: E402

import sm_notebook  # noqa: E402
import sm_notebook.dask as smd  # noqa: E402
from batched_reference import scored_in_batches  # noqa: E402
from conftest import FIXTURES, MODELS  # noqa: E402
from sm_notebook import SavedModelError  # noqa: E402

FLOAT32 = dict(rtol=1e-5, atol=1e-6)  # tests/interop/test_engine_fixtures.py's tolerance


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                                       dashboard_address=None, silence_logs=50)
    with distributed.Client(cluster) as c:
        yield c
    cluster.close()


def expected(name: str, key: str) -> dict:
    data = np.load(FIXTURES / "expected" / f"{name}.npz", allow_pickle=True)
    return {k.split("|", 2)[2]: data[k] for k in data.files if k.startswith(key + "|")}


def single_process(name, signature, tags=None, **inputs) -> dict:
    return sm_notebook.load(MODELS / name, tags=tags).signatures[signature](**inputs).numpy()


def tiled(value: np.ndarray, rows: int) -> np.ndarray:
    return np.concatenate([value] * -(-rows // len(value)))[:rows]


@pytest.mark.parametrize("name, key, chunks, batch_size", [
    ("keras3_mlp", "features", (37, 0, 50, 16), 16),
    ("keras3_cnn", "image", (9, 0, 12, 3), 5),
])
def test_keras_models_match_single_process_exactly_and_tensorflow(client, name, key, chunks, batch_size):
    tf = expected(name, "serve|serving_default")
    rows = sum(chunks)
    x = tiled(tf[f"inputs|{key}"], rows)
    x[2::3] += np.float32(0.25)  # not only TensorFlow's two rows
    lazy = smd.predict(MODELS / name, da.from_array(x, chunks=(chunks,) + x.shape[1:]),
                       batch_size=batch_size)
    assert lazy.dtype == np.float32 and lazy.shape == (rows, tf["outputs|output_0"].shape[1])
    assert lazy.chunks[0] == chunks
    got = lazy.compute()
    np.testing.assert_array_equal(got, scored_in_batches(MODELS / name, chunks, batch_size, **{key: x})["output_0"])
    kept = np.arange(rows) % 3 != 2
    np.testing.assert_allclose(got[kept], tiled(tf["outputs|output_0"], rows)[kept], **FLOAT32)


def test_string_input_with_vocabulary_asset(client):
    tf = expected("tf1_multi_tags", "serve|lookup")
    tokens = tiled(tf["inputs|tokens"], 22)
    lazy = smd.predict(MODELS / "tf1_multi_tags", da.from_array(tokens, chunks=((7, 0, 0, 10, 5),)),
                       signature="lookup", tags="serve", batch_size=4)
    assert lazy.dtype == np.int64
    got = lazy.compute()
    np.testing.assert_array_equal(got, tiled(tf["outputs|ids"], 22))
    np.testing.assert_array_equal(got, single_process("tf1_multi_tags", "lookup", "serve", tokens=tokens)["ids"])


def test_dict_of_arrays_several_outputs(client):
    tf = expected("tf2_module", "serve|string_ops")
    words, numbers = tiled(tf["inputs|words"], 11), tiled(tf["inputs|numbers"], 11)
    wanted = ["parsed", "pairs", "lengths"]
    lazy = smd.predict(MODELS / "tf2_module", {"words": da.from_array(words, chunks=4),
                                               "numbers": da.from_array(numbers, chunks=(5, 6))},
                       signature="string_ops", outputs=wanted)
    assert sorted(lazy) == sorted(wanted) and lazy["pairs"].dtype == object
    got = dask.compute(lazy)[0]
    reference = single_process("tf2_module", "string_ops", words=words, numbers=numbers)
    for key in wanted:
        np.testing.assert_array_equal(got[key], reference[key])
        np.testing.assert_array_equal(got[key], tiled(tf[f"outputs|{key}"], 11))


def _frame_part(number: int) -> pd.DataFrame:
    rows = [5, 0, 7, 3][number]
    values = np.random.default_rng(number).normal(size=(rows, 8)).astype("float32")
    return pd.DataFrame(values, columns=[f"f{i}" for i in range(8)],
                        index=pd.RangeIndex(number * 100, number * 100 + rows))


def test_dataframe_in_dataframe_out_with_an_empty_partition(client):
    frame = dd.from_map(_frame_part, range(4), meta=_frame_part(1))
    lazy = smd.predict(MODELS / "keras3_mlp", frame, columns={"features": [f"f{i}" for i in range(8)]},
                       batch_size=4)
    assert list(lazy.columns) == [f"output_0_{j}" for j in range(4)]
    got = lazy.compute()
    parts = pd.concat([_frame_part(n) for n in range(4)])
    reference = scored_in_batches(MODELS / "keras3_mlp", [5, 0, 7, 3], 4, features=parts.to_numpy())["output_0"]
    np.testing.assert_array_equal(got.to_numpy(), reference)
    assert list(got.index) == list(parts.index)


def test_each_worker_process_loads_the_model_once(client, tmp_path):
    path = tmp_path / "mlp"
    shutil.copytree(MODELS / "keras3_mlp", path)  # a model no other test has loaded
    x = np.random.default_rng(1).normal(size=(400, 8)).astype("float32")
    lazy = smd.predict(path, da.from_array(x, chunks=20), batch_size=7)
    np.testing.assert_array_equal(lazy.compute(), scored_in_batches(path, lazy.chunks[0], 7, features=x)["output_0"])
    lazy.compute()  # a second job reuses the cached models
    counts = client.run(smd.model_loads)
    per_worker = [n for loads in counts.values() for (p, *_), n in loads.items() if p == str(path)]
    assert per_worker and all(n == 1 for n in per_worker), counts
    # each single-thread worker's engine keeps to one core (the cluster gives it one)
    assert set(client.run(lambda: __import__("sm_notebook.engine.blas").engine.blas.BLAS.cap).values()) == {1}


def test_an_fsspec_url_is_copied_once_per_worker_process(client, tmp_path):
    from test_dask_remote import zipped_export
    cache = tmp_path / "worker_cache"
    client.run(lambda: os.environ.__setitem__("SM_NOTEBOOK_CACHE", str(cache)))
    try:
        url = zipped_export(tmp_path)
        x = np.random.default_rng(2).normal(size=(90, 8)).astype("float32")
        lazy = smd.predict(url, da.from_array(x, chunks=15))
        np.testing.assert_array_equal(lazy.compute(), scored_in_batches(MODELS / "keras3_mlp", lazy.chunks[0],
                                                                        features=x)["output_0"])
        counts = client.run(smd.model_loads)
        per_worker = [n for loads in counts.values() for (p, *_), n in loads.items() if p == url]
        assert per_worker and all(n == 1 for n in per_worker), counts
        assert len([p for p in cache.glob("remote_models/*/*") if p.is_dir()]) == 1  # one machine: one copy
    finally:
        client.run(lambda: os.environ.pop("SM_NOTEBOOK_CACHE", None))


def _bad_dtype_chunk(rows):
    return np.array([["x"] * 8] * rows)


def _bad_shape_chunk(rows):
    return np.zeros((rows, 7), "float32")


@pytest.mark.parametrize("make_chunk, problem", [
    (_bad_dtype_chunk, "got str32 values"),
    (_bad_shape_chunk, "got shape (6, 7)"),
])
def test_bad_partition_fails_on_the_client_naming_it(client, make_chunk, problem):
    good = da.zeros((10, 8), dtype="float32", chunks=5)
    bad = da.from_delayed(dask.delayed(make_chunk)(6), shape=(6, 8), dtype="float32")
    lazy = smd.predict(MODELS / "keras3_mlp", da.concatenate([good, bad]))
    with pytest.raises(SavedModelError) as info:
        lazy.compute()
    assert "Partition 2 (rows 10..15)" in str(info.value) and problem in str(info.value)


def _part_missing_a_column(number: int) -> pd.DataFrame:
    part = _frame_part(number)
    return part.drop(columns="f3") if number == 2 else part


def test_partition_missing_a_column_fails_naming_it(client):
    frame = dd.from_map(_part_missing_a_column, range(4), meta=_frame_part(1))
    lazy = smd.predict(MODELS / "keras3_mlp", frame, columns={"features": [f"f{i}" for i in range(8)]})
    with pytest.raises(SavedModelError, match=r"Partition 2 \(index 200..206\) of the DataFrame: "
                                              r"column\(s\) \['f3'\] are missing"):
        lazy.compute()


def test_unreadable_model_path_fails_before_scheduling(client, tmp_path):
    x = da.zeros((4, 8), dtype="float32", chunks=2)
    with pytest.raises(SavedModelError, match="Cannot read the model .* nor on a worker"):
        smd.predict(tmp_path / "nowhere", x)


def test_model_files_changed_after_predict_are_refused_by_workers(client, tmp_path):
    path = tmp_path / "mlp"
    shutil.copytree(MODELS / "keras3_mlp", path)
    lazy = smd.predict(path, da.zeros((4, 8), dtype="float32", chunks=2))
    shutil.rmtree(path)
    shutil.copytree(MODELS / "keras3_cnn", path)
    with pytest.raises(SavedModelError, match="differ from those the client read"):
        lazy.compute()


def _slow_rows(block):
    time.sleep(0.1)
    return block


def test_a_worker_killed_mid_job_loses_and_duplicates_nothing(client):
    x = np.random.default_rng(2).normal(size=(360, 8)).astype("float32")
    slow = da.from_array(x, chunks=15).map_blocks(_slow_rows, dtype="float32")
    future = client.compute(smd.predict(MODELS / "keras3_mlp", slow, batch_size=8))
    deadline = time.monotonic() + 60
    while not future.done() and time.monotonic() < deadline:
        processing = client.processing()
        if all(processing.values()) and len(processing) == 2:
            break
        time.sleep(0.05)
    pids = client.run(os.getpid)
    victim = sorted(pids)[0]
    assert not future.done(), "the job finished before a worker could be killed"
    os.kill(pids[victim], signal.SIGKILL)
    got = future.result(timeout=120)
    assert got.shape == (360, 4)
    np.testing.assert_array_equal(got, scored_in_batches(MODELS / "keras3_mlp", [15] * 24, 8, features=x)["output_0"])
    client.wait_for_workers(2, timeout=60)
    assert pids[victim] not in client.run(os.getpid).values()  # the nanny started a new process
