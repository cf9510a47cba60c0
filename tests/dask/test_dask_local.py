"""sm_notebook.dask without a cluster: laziness, checks made before scheduling, the optional import."""
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
dd = pytest.importorskip("dask.dataframe")
pd = pytest.importorskip("pandas")

import dask  # noqa: E402

import sm_notebook  # noqa: E402
import sm_notebook.dask as smd  # noqa: E402
from batched_reference import scored_in_batches  # noqa: E402
from conftest import MODELS  # noqa: E402
from sm_notebook import SavedModelError  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
MLP = MODELS / "keras3_mlp"


def test_predict_builds_the_result_from_the_signature_without_running(copy_fixture):
    path = copy_fixture("keras3_cnn")
    images = da.zeros((10, 32, 32, 3), dtype="float32", chunks=(4, 16, 32, 3))  # split inner axis too
    lazy = smd.predict(path, images)
    assert (lazy.shape, lazy.dtype, lazy.chunks) == ((10, 5), np.float32, ((4, 4, 2), (5,)))
    assert not [k for k in smd.model_loads() if k[0] == str(path)]  # nothing loaded to infer meta
    with dask.config.set(scheduler="threads"):
        got = lazy.compute()
    np.testing.assert_array_equal(got, sm_notebook.load(path).signatures["serving_default"](
        image=np.zeros((10, 32, 32, 3), "float32"))["output_0"])
    assert [n for k, n in smd.model_loads().items() if k[0] == str(path)] == [1]


def test_unknown_row_counts_and_the_sync_scheduler():
    x = np.random.default_rng(0).normal(size=(30, 8)).astype("float32")
    frame = dd.from_pandas(pd.DataFrame(x), npartitions=3)
    unknown = frame.to_dask_array()  # row chunks are nan until computed
    assert np.isnan(unknown.shape[0])
    lazy = smd.predict(MLP, unknown, batch_size=4)
    got = lazy.compute(scheduler="sync")
    np.testing.assert_array_equal(got, scored_in_batches(MLP, [10, 10, 10], 4, features=x)["output_0"])


def test_uneven_chunks_empty_chunks_and_short_last_batches_match_the_same_batches_exactly():
    x = np.random.default_rng(3).normal(size=(17, 8)).astype("float32")
    chunks = (7, 0, 9, 1)  # batches of 3: 3+3+1, none, 3+3+3, 1
    lazy = smd.predict(MLP, da.from_array(x, chunks=(chunks, 8)), batch_size=3)
    got = lazy.compute(scheduler="sync")
    assert got.shape == (17, 4) and got.flags.c_contiguous
    np.testing.assert_array_equal(got, scored_in_batches(MLP, chunks, 3, features=x)["output_0"])
    words = np.array([b"a", b"bb", b"", b"cccc", b"dd"], dtype=object)  # several outputs, one per dtype
    numbers = np.array([b"1.5", b"-2", b"1e3", b"0", b"7"], dtype=object)
    wanted = ["parsed", "pairs", "lengths"]
    lazy = smd.predict(MODELS / "tf2_module", {"words": da.from_array(words, chunks=((3, 0, 2),)),
                                               "numbers": da.from_array(numbers, chunks=((3, 0, 2),))},
                       signature="string_ops", outputs=wanted, batch_size=2)
    got = dask.compute(lazy, scheduler="sync")[0]
    reference = scored_in_batches(MODELS / "tf2_module", (3, 0, 2), 2, signature="string_ops",
                                  words=words, numbers=numbers)
    for key in wanted:
        assert got[key].dtype == reference[key].dtype and got[key].shape[0] == 5
        np.testing.assert_array_equal(got[key], reference[key])


def test_each_chunk_is_scored_in_the_task_that_makes_it():
    # the scoring task depends on the chunk alone, so Dask fuses the two: a worker never
    # holds a made chunk waiting for its scoring task (no block-number or list tasks either)
    x = da.random.default_rng(0).random((40, 8), chunks=10, dtype="float32")
    lazy = smd.predict(MLP, x, batch_size=4)
    (optimized,) = dask.optimize(lazy)
    names = {key[0] for key in dict(optimized.__dask_graph__())}
    assert [n for n in names if n != lazy.name] == [f"random-sm_notebook-{lazy.name}"], names


def test_dataframe_columns_default_to_input_names():
    tokens = pd.DataFrame({"tokens": ["the", "mat", "dog", "<unk>", "cat"], "other": range(5)})
    lazy = smd.predict(MODELS / "tf1_multi_tags", dd.from_pandas(tokens, npartitions=2),
                       signature="lookup", tags="serve")
    assert list(lazy.columns) == ["ids"] and lazy.dtypes["ids"] == np.int64
    assert lazy.compute(scheduler="sync")["ids"].tolist() == [1, 5, -1, 0, 2]


@pytest.mark.parametrize("data, message", [
    (da.zeros((4, 7), dtype="float32"), r"expects rows of shape \(8,\) \(float32\[\?,8\]\); the data's rows have shape \(7,\)"),
    (da.from_array(np.array([["a"] * 8] * 4)), "got str32 values"),
    (np.zeros((4, 8), "float32"), "Wrap numpy arrays with dask.array.from_array"),
    ({"features": da.zeros((4, 8)), "extra": da.zeros(4)}, r"unknown input\(s\) \['extra'\]"),
    ({"features": da.zeros((4, 8)), "other": da.zeros(4)}, "unknown input"),
])
def test_bad_requests_fail_before_scheduling(data, message):
    with pytest.raises(SavedModelError, match=message):
        smd.predict(MLP, data)


def test_bad_arguments_are_explained():
    x = da.zeros((4, 8), dtype="float32")
    with pytest.raises(SavedModelError, match="its outputs are: output_0"):
        smd.predict(MLP, x, outputs="probabilities")
    with pytest.raises(SavedModelError, match="batch_size must be a positive integer"):
        smd.predict(MLP, x, batch_size=0)
    with pytest.raises(SavedModelError, match="columns= maps DataFrame columns"):
        smd.predict(MLP, x, columns={"features": "a"})
    with pytest.raises(SavedModelError, match="No signature 'nope'"):
        smd.predict(MLP, x, signature="nope")
    with pytest.raises(SavedModelError, match="No SavedModel at"):
        smd.predict(MLP / "missing", x)
    with pytest.raises(SavedModelError, match="Install s3fs"):  # s3fs is not a test dependency
        smd.predict("s3://bucket/model", x)
    assert smd.predict(f"file://{MLP}", x).compute(scheduler="sync").shape == (4, 4)
    frame = dd.from_pandas(pd.DataFrame({"a": [1.0]}), npartitions=1)
    with pytest.raises(SavedModelError, match=r"no column for input\(s\) features: float32\[\?,8\]"):
        smd.predict(MLP, frame)


def test_outputs_that_are_not_row_wise_are_refused_with_the_candidates():
    path = MODELS / "tf2_module"
    ids = da.from_array(np.array([1, 2, -7, 8]), chunks=2)
    mask = da.from_array(np.array([True, False, True, True]), chunks=2)
    with pytest.raises(SavedModelError, match=r"any_even: bool\[\]; count: int64\[\].*candidates: inverted, selected"):
        smd.predict(path, {"ids": ids, "mask": mask}, signature="int_and_bool")
    inverted = smd.predict(path, {"ids": ids, "mask": mask}, signature="int_and_bool", outputs="inverted")
    assert inverted.compute(scheduler="sync").tolist() == [False, True, False, False]


def test_scalar_inputs_are_fed_whole_to_every_chunk():
    x = np.arange(6, dtype="float32")
    outputs = ["loop", "switched"]
    lazy = smd.predict(MODELS / "tf2_module", {"x": da.from_array(x, chunks=4), "branch": np.int32(1)},
                       signature="control_flow", outputs=outputs)
    got = dask.compute(lazy, scheduler="sync")[0]
    reference = sm_notebook.load(MODELS / "tf2_module").signatures["control_flow"](x=x, branch=np.int32(1))
    for key in outputs:
        np.testing.assert_array_equal(got[key], reference[key])
    with pytest.raises(SavedModelError, match="fed whole to every chunk"):
        smd.predict(MODELS / "tf2_module", {"x": da.from_array(x), "branch": da.from_array(np.int32(1))},
                    signature="control_flow", outputs=outputs)


def test_sm_notebook_imports_without_dask_and_sm_notebook_dask_names_the_extra():
    script = textwrap.dedent("""
        import sys
        sys.modules["dask"] = None  # as if Dask were not installed
        import sm_notebook
        assert sm_notebook.load
        try:
            import sm_notebook.dask
        except ImportError as exc:
            print("MESSAGE:", exc)
    """)
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert 'pip install -e ".[dask]"' in done.stdout
