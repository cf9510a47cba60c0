"""Cold start: a fresh Python process that imports, loads a SavedModel and makes the
first signature call, for sm_notebook and for TensorFlow (median of a few runs each,
the two sides alternating run by run).

Both sides start from bytecode caches, as installed packages do: TensorFlow's
site-packages hold them, and sm_notebook's are compiled here first (a source
checkout run with PYTHONDONTWRITEBYTECODE=1 would otherwise recompile every
module in every process).

    python benchmarks/bench_cold_start.py [--runs N] [fixture ...]
"""
from __future__ import annotations

import argparse
import compileall
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "tests" / "fixtures" / "models"
DEFAULT = ["keras3_mlp", "keras3_cnn", "keras3_mobilenetv2", "keras3_transformer", "keras3_rnn",
           "tf1_v1_control_flow"]
TARGET = 15.0  # TF's cold start / ours should be at least this

OURS = """
import numpy as np, sm_notebook
m = sm_notebook.load({path!r}, tags=["serve"])
f = m.signatures["serving_default"]
feeds = {{k: np.ones([1 if d is None else d for d in s.shape], s.dtype) for k, s in f.inputs.items()}}
f(**feeds)
"""

THEIRS = """
import os
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import numpy as np, tensorflow as tf
f = tf.saved_model.load({path!r}).signatures["serving_default"]
feeds = {{k: tf.ones([1 if d is None else d for d in s.shape], s.dtype)
         for k, s in f.structured_input_signature[1].items()}}
f(**feeds)
"""


def _run(code: str) -> float:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "failed")
    return elapsed


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("fixtures", nargs="*", default=DEFAULT)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    env_path = os.environ.get("PYTHONPATH", "")
    os.environ["PYTHONPATH"] = f"{ROOT}{os.pathsep}{env_path}" if env_path else str(ROOT)
    compileall.compile_dir(ROOT / "sm_notebook", quiet=1)
    for name in args.fixtures:
        path = str(MODELS / name)
        try:
            ours_runs, tf_runs = [], []
            for _ in range(args.runs):
                ours_runs.append(_run(OURS.format(path=path)))
                tf_runs.append(_run(THEIRS.format(path=path)))
            ours, theirs = statistics.median(ours_runs), statistics.median(tf_runs)
        except RuntimeError as exc:
            print(f"{name:22s} could not run: {exc}", flush=True)
            continue
        speedup = theirs / ours
        verdict = "ok" if speedup >= TARGET else "BELOW TARGET"
        print(f"{name:22s} ours {ours:6.2f} s  TF {theirs:6.2f} s  TF/ours {speedup:5.1f}x "
              f"(target >= {TARGET:.0f}x)  {verdict}", flush=True)


if __name__ == "__main__":
    main()
