"""Loading and running float32 models imports neither ml_dtypes (most of a cold start) nor
anything of TensorFlow's."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

MODELS = Path(__file__).resolve().parents[1] / "fixtures" / "models"


def test_float32_models_run_without_ml_dtypes():
    code = (
        "import sys, numpy as np, sm_notebook\n"
        f"for path in {[str(MODELS / 'keras3_mlp'), str(MODELS / 'keras3_mobilenetv2')]!r}:\n"
        "    f = sm_notebook.load(path, tags=['serve']).signatures['serving_default']\n"
        "    f(**{k: np.ones([2 if d is None else d for d in s.shape], s.dtype)\n"
        "         for k, s in f.inputs.items()})\n"
        "assert 'ml_dtypes' not in sys.modules, 'ml_dtypes imported'\n"
        "assert 'tensorflow' not in sys.modules, 'tensorflow imported'\n")
    root = str(Path(__file__).resolve().parents[2])
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={"PYTHONPATH": root, "PATH": "/usr/bin:/bin"}, cwd=root, check=False)
    assert done.returncode == 0, done.stderr
