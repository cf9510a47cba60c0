"""Backends: cupy is optional and lazy; GPU runs (marker `gpu`) match TensorFlow where a GPU exists."""
import importlib.util
import subprocess
import sys

import numpy as np
import pytest

import sm_notebook
from conftest import FIXTURES, fixture_path


def _gpu_reason():
    if importlib.util.find_spec("cupy") is None:
        return "cupy is not installed (pip install 'sm_notebook[cupy]' on a CUDA machine)"
    try:
        import cupy
        if cupy.cuda.runtime.getDeviceCount() < 1:
            return "no CUDA device"
    except Exception as exc:  # driver missing, etc.
        return f"no usable CUDA device ({exc})"
    return None


GPU_REASON = _gpu_reason()


def test_cupy_is_never_imported_by_import_load_or_run():
    code = ("import sys, numpy as np, sm_notebook\n"
            f"m = sm_notebook.load({str(fixture_path('keras3_mlp'))!r}, tags='serve')\n"
            "m.signatures['serving_default'](features=np.zeros((1, 8), 'float32'))\n"
            "print(sorted(k for k in sys.modules if k == 'cupy' or k.startswith('cupy.')))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.skipif(GPU_REASON is None, reason="cupy and a GPU are present")
def test_cupy_backend_without_cupy_is_a_clear_error():
    with pytest.raises(sm_notebook.SavedModelError, match="cupy"):
        sm_notebook.load(fixture_path("keras3_mlp"), tags="serve", backend="cupy")


def test_unknown_backend_is_a_clear_error():
    with pytest.raises(sm_notebook.SavedModelError, match="Unknown backend"):
        sm_notebook.load(fixture_path("keras3_mlp"), tags="serve", backend="tpu")


@pytest.mark.gpu
@pytest.mark.skipif(GPU_REASON is not None, reason=f"GPU test: {GPU_REASON}")
@pytest.mark.parametrize("name", ["keras3_mlp", "keras3_cnn", "keras3_mobilenetv2", "tf2_module"])
def test_cupy_matches_tensorflow(name):
    import cupy

    expected = np.load(FIXTURES / "expected" / f"{name}.npz", allow_pickle=True)
    model = sm_notebook.load(fixture_path(name), tags="serve", backend="cupy")
    groups = sorted({tuple(k.split("|")[:2]) for k in expected.files})
    for tags, signature in groups:
        feed = {k.split("|")[3]: expected[k] for k in expected.files if k.startswith(f"{tags}|{signature}|inputs|")}
        outputs = model.signatures[signature](**feed)
        for key, value in outputs.items():
            want = expected[f"{tags}|{signature}|outputs|{key}"]
            got = value.get() if isinstance(value, cupy.ndarray) else np.asarray(value)
            if want.dtype.kind == "f":
                np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
            else:
                np.testing.assert_array_equal(got, want)
