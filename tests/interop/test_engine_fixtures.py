"""Every signature of every TensorFlow-made fixture, run by the engine on numpy and
array_api_strict, against the outputs TensorFlow computed (tests/fixtures/expected).

float32 outputs within the bound derived from a float64 run of the same graph
(expected/<stem>.ref64.npz, conftest.float32_error_bound); float32 outputs without one
(float16 inputs) within rtol 1e-5 / atol 1e-6, float16 1e-3, everything else exact;
dtypes and shapes exact. Known gaps are xfail with the missing kernel named.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import assert_float32_near_reference, expected_values
from sm_notebook.engine.loader import ModelSource, load_model, start_model
from sm_notebook.format.savedmodel import read_saved_model

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
BACKENDS = ["numpy", "array_api_strict"]
TOLERANCE = {np.dtype("float32"): dict(rtol=1e-5, atol=1e-6),
             np.dtype("float16"): dict(rtol=1e-3, atol=1e-3),
             np.dtype("float64"): dict(rtol=1e-10, atol=1e-12)}

#: (fixture, signature or None for all, backend or None for all) -> why it cannot pass yet
KNOWN_GAPS: dict = {}


def _cases():
    cases = []
    for path in sorted((FIXTURES / "expected").glob("*.npz")):
        if any(part in path.name for part in (".variables.", ".batches.", ".ref64.")):
            continue
        fixture = path.name.split(".")[0]
        data = np.load(path, allow_pickle=True)
        groups = {}
        for key in data.files:
            tags, signature, _, _ = key.split("|")
            groups.setdefault((tags, signature), None)
        for tags, signature in groups:
            for backend in BACKENDS:
                gap = (KNOWN_GAPS.get((fixture, signature, backend))
                       or KNOWN_GAPS.get((fixture, signature, None))
                       or KNOWN_GAPS.get((fixture, None, backend))
                       or KNOWN_GAPS.get((fixture, None, None)))
                marks = [pytest.mark.xfail(reason=gap, strict=False)] if gap else []
                cases.append(pytest.param(path.name, fixture, tags, signature, backend, marks=marks,
                                          id=f"{path.stem}-{tags}-{signature}-{backend}"))
    return cases


def _load(fixture, tags, signature, backend):
    export_dir = FIXTURES / "models" / fixture
    if fixture == "tf1_duplicate_tags" and signature == "second_sig":
        # second_sig lives only in metagraph 1, shadowed for TensorFlow's tag lookup;
        # the engine runs it when that metagraph is picked by index.
        saved_model = read_saved_model(export_dir)
        source = ModelSource(str(export_dir), saved_model, 1, saved_model.meta_graphs[1])
        return start_model(source, backend, False, 8 * 2**30)
    return load_model(export_dir, tags=tags.split(","), backend=backend)


@pytest.mark.interop
@pytest.mark.filterwarnings("ignore::sm_notebook.SavedModelWarning")
@pytest.mark.parametrize("npz_name,fixture,tags,signature,backend", _cases())
def test_fixture_signature(npz_name, fixture, tags, signature, backend):
    pytest.importorskip(backend)
    inputs, expected, ref64 = expected_values(FIXTURES / "expected" / npz_name, tags, signature)
    model = _load(fixture, tags, signature, backend)
    got = model.signatures[signature](**inputs).numpy()
    assert sorted(got) == sorted(expected)
    for key, want in expected.items():
        have = got[key]
        what = f"{fixture} {signature} output {key!r} on {backend}"
        assert have.dtype == want.dtype, f"{what}: dtype {have.dtype} != {want.dtype}"
        assert have.shape == want.shape, f"{what}: shape {have.shape} != {want.shape}"
        tol = TOLERANCE.get(want.dtype)
        if key in ref64:
            assert_float32_near_reference(have, want, ref64[key], what)
        elif tol:
            np.testing.assert_allclose(have, want, err_msg=what, **tol)
        else:
            np.testing.assert_array_equal(have, want, err_msg=what)
