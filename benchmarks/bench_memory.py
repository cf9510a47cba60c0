"""Peak memory of inference: sm_notebook vs TensorFlow, each in its own fresh process.

Each process imports its library, loads the SavedModel, runs the serving signature once
on a batch and reports its peak resident set size (ru_maxrss). Printed per side: the
peak of the whole process, and the part of it added by load + inference (the peak
minus the resident size right after the imports, so TensorFlow's large library
footprint does not count in its favour or against it).

    python benchmarks/bench_memory.py [--batch N] [--runs R] [fixture ...]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "tests" / "fixtures" / "models"

_RSS = """
import resource
def rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20
def peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
"""

OURS = _RSS + """
import json, numpy as np, sm_notebook
base = rss_mb()
m = sm_notebook.load({path!r}, tags=["serve"])
f = m.signatures["serving_default"]
feeds = {{k: np.random.default_rng(0).standard_normal([{batch} if d is None else d for d in s.shape])
          .astype(s.dtype) for k, s in f.inputs.items()}}
f(**feeds)
print(json.dumps({{"base": base, "peak": peak_mb()}}))
"""

THEIRS = _RSS + """
import os
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import json, numpy as np, tensorflow as tf
base = rss_mb()
f = tf.saved_model.load({path!r}).signatures["serving_default"]
feeds = {{k: tf.constant(np.random.default_rng(0).standard_normal(
              [{batch} if d is None else d for d in s.shape]).astype(s.dtype.as_numpy_dtype))
          for k, s in f.structured_input_signature[1].items()}}
f(**feeds)
print(json.dumps({{"base": base, "peak": peak_mb()}}))
"""


def _measure(code: str) -> dict:
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "failed")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("fixtures", nargs="*", default=["keras3_mobilenetv2"])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    env_path = os.environ.get("PYTHONPATH", "")
    os.environ["PYTHONPATH"] = f"{ROOT}{os.pathsep}{env_path}" if env_path else str(ROOT)
    for name in args.fixtures:
        path = str(MODELS / name)
        try:
            ours = [_measure(OURS.format(path=path, batch=args.batch)) for _ in range(args.runs)]
            theirs = [_measure(THEIRS.format(path=path, batch=args.batch)) for _ in range(args.runs)]
        except RuntimeError as exc:
            print(f"{name:22s} could not run: {exc}", flush=True)
            continue

        def summary(runs):
            peak = statistics.median(r["peak"] for r in runs)
            added = statistics.median(r["peak"] - r["base"] for r in runs)
            return peak, added

        (ours_peak, ours_added), (tf_peak, tf_added) = summary(ours), summary(theirs)
        verdict = "ok" if ours_peak <= tf_peak else "HIGHER THAN TF"
        print(f"{name:22s} batch {args.batch}  peak RSS ours {ours_peak:7.1f} MiB  TF {tf_peak:7.1f} MiB "
              f"({verdict}); added by load + inference: ours {ours_added:6.1f} MiB  "
              f"TF {tf_added:6.1f} MiB", flush=True)


if __name__ == "__main__":
    main()
