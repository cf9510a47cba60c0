"""Every fixture signature with a dynamic batch dimension, at batch 1, 2, 3 and 7, on numpy.

Issue 9's guarantees 1, 2 and 4 on the data of tests/fixtures/make_batch_sweep.py
(expected/<name>.batches.npz, made by TensorFlow; no TensorFlow needed here):
- every input array is read-only, so an in-place write into it raises, and the
  inputs are bit-identical after the call;
- outputs have TensorFlow's dtypes and shapes; float32 outputs are within the bound
  derived from the float64 run of the same graph (conftest.float32_error_bound, with
  TensorFlow's error on that output pooled over the four batch sizes),
  float32 outputs without a float64 run (float16 inputs) within rtol 1e-5 / atol 1e-6,
  float16 within 1e-3, everything else equal;
- the same on the unoptimised plan (`sm_notebook.load(..., optimize=False)`).
"""
from __future__ import annotations

import functools
import json
import warnings

import numpy as np
import pytest

import sm_notebook
from conftest import FIXTURES, MODELS, assert_float32_near_reference, model_digest
from sm_notebook.engine import loader

SWEEP = json.loads((FIXTURES / "manifest.json").read_text()).get("batch_sweep", {})
FIXED_BOUNDS = {np.dtype("float32"): dict(rtol=1e-5, atol=1e-6),
                np.dtype("float16"): dict(rtol=1e-3, atol=1e-3)}

#: (fixture, "<tagset>|<signature>", batch) -> why the engine gets it wrong today (xfail strict)
KNOWN_WRONG: dict = {}


def _cases():
    cases = []
    for fixture, entry in SWEEP.items():
        for pair in entry["signatures"]:
            for batch in entry["batch_sizes"]:
                for optimize in (True, False):
                    why = KNOWN_WRONG.get((fixture, pair, batch))
                    marks = [pytest.mark.xfail(reason=why, strict=True)] if why else []
                    plan = "optimized" if optimize else "unoptimized"
                    cases.append(pytest.param(fixture, pair, batch, optimize, marks=marks,
                                              id=f"{fixture}-{pair}-b{batch}-{plan}"))
    return cases


@functools.lru_cache(maxsize=None)
def _arrays(fixture):
    with np.load(FIXTURES / "expected" / f"{fixture}.batches.npz", allow_pickle=True) as data:
        return {key: data[key] for key in data.files}


def _case_arrays(fixture, pair, batch):
    """{"inputs"|"outputs"|"ref64": {key: array}} of one signature at one batch size."""
    prefix = f"{pair}|b{batch}|"
    groups = {"inputs": {}, "outputs": {}, "ref64": {}}
    for key, value in _arrays(fixture).items():
        if key.startswith(prefix):
            kind, name = key[len(prefix):].split("|")
            groups[kind][name] = value
    assert groups["inputs"] or groups["outputs"], f"{fixture} {pair} b{batch}: no stored arrays"
    return groups


@functools.lru_cache(maxsize=None)
def _model(fixture, tagset, signature, optimize):
    """The loaded model (cached: one load serves every batch size of a signature)."""
    export_dir = MODELS / fixture
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sm_notebook.SavedModelWarning)
        if (fixture, signature) == ("tf1_duplicate_tags", "second_sig"):
            # second_sig lives only in metagraph 1, which TensorFlow's tag lookup shadows.
            from sm_notebook.format.savedmodel import read_saved_model
            saved_model = read_saved_model(export_dir)
            source = loader.ModelSource(str(export_dir), saved_model, 1,
                                        saved_model.meta_graphs[1])
            return loader.start_model(source, "numpy", False, 8 * 2**30, optimize=optimize)
        return sm_notebook.load(export_dir, tags=tagset.split(","), optimize=optimize)


def _tensorflow_runs(fixture, pair, key):
    """(TensorFlow float32, float64) of one output at every batch size: the pooled bound."""
    data = _arrays(fixture)
    return [(data[f"{pair}|b{batch}|outputs|{key}"], data[f"{pair}|b{batch}|ref64|{key}"])
            for batch in SWEEP[fixture]["batch_sizes"]]


def _read_only_copies(arrays):
    copies = {}
    for key, value in arrays.items():
        copy = np.array(value, copy=True)
        copy.flags.writeable = False
        copies[key] = copy
    return copies


def _assert_unchanged(before, after, what):
    assert after.dtype == before.dtype and after.shape == before.shape, what
    if before.dtype == object:
        assert before.tolist() == after.tolist(), what
    else:
        assert before.tobytes() == after.tobytes(), what


@pytest.mark.parametrize("fixture,pair,batch,optimize", _cases())
def test_signature_at_batch_size(fixture, pair, batch, optimize):
    tagset, signature = pair.split("|")
    arrays = _case_arrays(fixture, pair, batch)
    inputs = _read_only_copies(arrays["inputs"])
    got = _model(fixture, tagset, signature, optimize).signatures[signature](**inputs).numpy()
    for key, value in arrays["inputs"].items():
        _assert_unchanged(value, inputs[key], f"{fixture} {pair} b{batch}: input {key!r} changed")
    assert sorted(got) == sorted(arrays["outputs"])
    for key, want in arrays["outputs"].items():
        have = got[key]
        what = f"{fixture} {pair} b{batch} output {key!r}"
        assert have.dtype == want.dtype, f"{what}: dtype {have.dtype} != {want.dtype}"
        assert have.shape == want.shape, f"{what}: shape {have.shape} != {want.shape}"
        if key in arrays["ref64"]:
            assert_float32_near_reference(have, want, arrays["ref64"][key], what,
                                          pooled=_tensorflow_runs(fixture, pair, key))
        elif want.dtype in FIXED_BOUNDS:
            np.testing.assert_allclose(have, want, err_msg=what, **FIXED_BOUNDS[want.dtype])
        else:
            np.testing.assert_array_equal(have, want, err_msg=what)


def test_every_float32_output_has_a_float64_reference_or_a_reason():
    """A float32 output without ref64 must be one the manifest explains (float16 inputs)."""
    for fixture, entry in SWEEP.items():
        for pair, record in entry["signatures"].items():
            for batch in entry["batch_sizes"]:
                arrays = _case_arrays(fixture, pair, batch)
                unreferenced = [k for k, v in arrays["outputs"].items()
                                if v.dtype == np.float32 and k not in arrays["ref64"]]
                if unreferenced:
                    assert record.get("ref64_missing_because"), (fixture, pair, unreferenced)


def test_sweep_covers_every_fixture_and_batched_signature():
    """Each fixture with expected values is swept; the sweep data matches the model files."""
    models = json.loads((FIXTURES / "manifest.json").read_text())["models"]
    assert sorted(SWEEP) == sorted(models)
    for fixture, entry in SWEEP.items():
        assert entry["batch_sizes"] == [1, 2, 3, 7]
        assert model_digest(MODELS / fixture) == entry["model_sha256"], (
            f"models/{fixture} changed after its batch sweep: "
            "rerun python tests/fixtures/make_batch_sweep.py " + fixture)
        for meta_graph in models[fixture]["meta_graphs"]:
            tagset = ",".join(sorted(set(meta_graph["tags"])))
            for signature, spec in meta_graph["signatures"].items():
                shapes = [info["shape"] for info in spec["inputs"].values()]
                batched = [s for s in shapes if s]
                dynamic = (batched and all(s is not None for s in shapes)
                           and all(s[0] == -1 for s in batched))
                if dynamic and f"{tagset}|{signature}" in models[fixture]["expected"]:
                    assert f"{tagset}|{signature}" in entry["signatures"], (fixture, signature)


def test_the_float32_bound_rejects_what_it_should():
    """TensorFlow's own answer passes; a few ulps more pass; a lost bias, a NaN, or an
    error 5 times TensorFlow's fail."""
    rng = np.random.default_rng(20)
    ref64 = rng.standard_normal((3, 10))
    tf32 = ref64.astype(np.float32)
    tf_error = np.max(np.abs(tf32 - ref64))
    assert_float32_near_reference(tf32, tf32, ref64)
    assert_float32_near_reference(np.nextafter(tf32, np.float32(np.inf)), tf32, ref64)
    worse = (ref64 + 5 * tf_error + 8 * np.finfo(np.float32).eps * np.abs(ref64).max())
    failures = [worse.astype(np.float32), tf32 + np.float32(0.01),
                np.where(np.arange(10) == 3, np.float32(np.nan), tf32)]
    for wrong in failures:
        with pytest.raises(AssertionError):
            assert_float32_near_reference(wrong, tf32, ref64)
