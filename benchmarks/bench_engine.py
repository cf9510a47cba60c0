"""Signature-call latency: sm_notebook's engine vs TensorFlow, side by side in one process.

For each Keras fixture: load with both, warm up, then time rounds of N calls of the
serving signature, alternating ours and TensorFlow's round by round, and print the
median time per call of each and the median of the per-round ratios ours/TF (below 1
means faster than TensorFlow; adjacent rounds share the machine's load).

    python benchmarks/bench_engine.py [--calls N] [--repeats R] [fixture ...]
"""
from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "tests" / "fixtures" / "models"
#: fixture -> (batch size, targets as a ratio ours/TF that the engine should stay under)
CASES = {
    "keras3_mlp": (1, 0.5),
    "keras3_cnn": (8, 1.0),
    "keras3_mobilenetv2": (8, 1.0),
    "keras3_transformer": (8, 1.0),
    "keras3_rnn": (8, 1.5),
    "tfkeras_mlp": (1, 0.5),
}


def _inputs(signature_inputs, batch, rng):
    feeds = {}
    for key, (dtype, shape) in signature_inputs.items():
        dims = [batch if d is None else d for d in shape]
        feeds[key] = rng.standard_normal(dims).astype(dtype)
    return feeds


def _time_pair(ours, feeds, theirs, tf_feeds, calls, repeats) -> tuple[float, float, float]:
    """Seconds per call of each side and their ratio, over ``repeats`` rounds of ``calls``
    calls that alternate ours and TensorFlow's. The ratio is the median of the per-round
    ratios: adjacent rounds see the same machine load, so load drifts cancel out."""
    for _ in range(3):
        ours(**feeds)
        theirs(**tf_feeds)
    if calls is None:  # rounds of about 50 ms
        start = time.perf_counter()
        theirs(**tf_feeds)
        calls = int(min(500, max(5, 0.05 / (time.perf_counter() - start))))
    for _ in range(max(3, calls // 10)):
        ours(**feeds)
        theirs(**tf_feeds)
    ours_runs, tf_runs = [], []
    for _ in range(repeats):
        for call, args, runs in ((ours, feeds, ours_runs), (theirs, tf_feeds, tf_runs)):
            start = time.perf_counter()
            for _ in range(calls):
                call(**args)
            runs.append((time.perf_counter() - start) / calls)
    ratio = statistics.median(a / b for a, b in zip(ours_runs, tf_runs))
    return statistics.median(ours_runs), statistics.median(tf_runs), ratio


def bench(name, calls, repeats):
    import tensorflow as tf

    import sm_notebook

    batch, target = CASES.get(name, (1, 1.0))
    path = str(MODELS / name)
    ours = sm_notebook.load(path, tags=["serve"])
    key = "serving_default" if "serving_default" in ours.signatures else next(iter(ours.signatures))
    fn = ours.signatures[key]
    spec = {k: (s.dtype, s.shape) for k, s in fn.inputs.items()}
    feeds = _inputs(spec, batch, np.random.default_rng(0))
    theirs = tf.saved_model.load(path).signatures[key]
    tf_feeds = {k: tf.constant(v) for k, v in feeds.items()}
    expected = {k: v.numpy() for k, v in theirs(**tf_feeds).items()}
    got = fn(**feeds).numpy()
    for k, v in expected.items():
        np.testing.assert_allclose(got[k], v, rtol=1e-4, atol=1e-5, err_msg=f"{name} output {k}")
    t_ours, t_tf, ratio = _time_pair(fn, feeds, theirs, tf_feeds, calls, repeats)
    verdict = "ok" if ratio <= target else "SLOWER THAN TARGET"
    print(f"{name:22s} batch {batch:2d}  ours {t_ours * 1e6:9.1f} us  TF {t_tf * 1e6:9.1f} us  "
          f"ratio {ratio:5.2f} (target <= {target})  {verdict}", flush=True)
    return ratio


def main():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("fixtures", nargs="*", default=list(CASES))
    parser.add_argument("--calls", type=int, default=None,
                        help="calls per round (default: rounds of about 50 ms)")
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    for name in args.fixtures:
        try:
            bench(name, args.calls, args.repeats)
        except Exception as exc:  # noqa: BLE001 - report and go on with the next fixture
            print(f"{name:22s} could not run: {type(exc).__name__}: {str(exc)[:200]}", flush=True)


if __name__ == "__main__":
    main()
