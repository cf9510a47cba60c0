"""Signature-call latency: sm_notebook's engine vs TensorFlow, side by side in one process.

For each Keras fixture: load with both, warm up, then time rounds of N calls of the
serving signature, alternating ours and TensorFlow's round by round, and print the
median time per call of each and the median of the per-round ratios ours/TF (below 1
means faster than TensorFlow; adjacent rounds share the machine's load).

    python benchmarks/bench_engine.py [--calls N] [--repeats R] [--busy] [fixture or path ...]

``--busy`` adds a competing CPU-bound process (one busy-looping Python process, paused
with SIGSTOP between its rounds): every round is then timed both without it and with it,
and the report adds each side's busy/idle ratio. A fixture argument may also be the
path of a SavedModel directory (``--batch`` gives its batch size).
"""
from __future__ import annotations

import argparse
import contextlib
import os
import signal
import statistics
import subprocess
import sys
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


def _time_rounds(sides, calls, repeats, spinner=None) -> list[dict]:
    """Per side ``{"idle": [seconds per call, ...], "busy": [...], "cpu": [...]}`` over
    ``repeats`` rounds of ``calls`` calls; the sides alternate within each round, and with a
    ``spinner`` (the competing process) each round is run once paused ("idle") and once
    running ("busy"). "cpu": this process's CPU seconds per call in the idle rounds (all
    its threads: less sensitive to other processes' load than the wall time)."""
    for _ in range(3):
        for call, args in sides:
            call(**args)
    if calls is None:  # rounds of about 50 ms of the slowest side
        start = time.perf_counter()
        for call, args in sides:
            call(**args)
        calls = int(min(500, max(5, 0.05 / (time.perf_counter() - start))))
    for _ in range(max(3, calls // 10)):
        for call, args in sides:
            call(**args)
    times = [{"idle": [], "busy": [], "cpu": []} for _ in sides]
    conditions = ("idle",) if spinner is None else ("idle", "busy")
    for _ in range(repeats):
        for condition in conditions:
            if spinner is not None:
                spinner.send_signal(signal.SIGCONT if condition == "busy" else signal.SIGSTOP)
                time.sleep(0.05)
            for (call, args), runs in zip(sides, times):
                cpu, start = _cpu_seconds(), time.perf_counter()
                for _ in range(calls):
                    call(**args)
                runs[condition].append((time.perf_counter() - start) / calls)
                if condition == "idle":
                    runs["cpu"].append((_cpu_seconds() - cpu) / calls)
    if spinner is not None:
        spinner.send_signal(signal.SIGSTOP)
    return times


def _cpu_seconds() -> float:
    return time.process_time()  # all threads of this process, nanosecond clock


def _ratio(a, b) -> float:
    """Median of the per-round ratios a/b (adjacent rounds share the machine's load)."""
    return statistics.median(x / y for x, y in zip(a, b))


@contextlib.contextmanager
def competing_process():
    """A CPU-bound Python process (stopped until a round resumes it); killed on exit."""
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    spinner.send_signal(signal.SIGSTOP)
    try:
        yield spinner
    finally:
        spinner.kill()
        spinner.wait()


def bench(name, calls, repeats, spinner=None, batch=None):
    import tensorflow as tf

    import sm_notebook

    default_batch, target = CASES.get(name, (1, 1.0))
    batch = batch or default_batch
    path = str(MODELS / name) if (MODELS / name).is_dir() else name
    name = Path(path).name
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
    (ours_t, tf_t) = _time_rounds([(fn, feeds), (theirs, tf_feeds)], calls, repeats, spinner)
    ratio = _ratio(ours_t["idle"], tf_t["idle"])
    verdict = "ok" if ratio <= target else "SLOWER THAN TARGET"
    line = (f"{name:22s} batch {batch:2d}  ours {statistics.median(ours_t['idle']) * 1e6:9.1f} us  "
            f"TF {statistics.median(tf_t['idle']) * 1e6:9.1f} us  "
            f"ratio {ratio:5.2f} (target <= {target})  {verdict};  CPU per call: ours "
            f"{statistics.median(ours_t['cpu']) * 1e6:.0f} us  TF {statistics.median(tf_t['cpu']) * 1e6:.0f} us")
    if spinner is not None:
        line += (f"\n{'':22s} busy: ours {statistics.median(ours_t['busy']) * 1e6:9.1f} us  "
                 f"TF {statistics.median(tf_t['busy']) * 1e6:9.1f} us  ratio "
                 f"{_ratio(ours_t['busy'], tf_t['busy']):5.2f};  busy/idle: ours "
                 f"{_ratio(ours_t['busy'], ours_t['idle']):5.2f}  TF "
                 f"{_ratio(tf_t['busy'], tf_t['idle']):5.2f} (target <= 1.5)")
    print(line, flush=True)
    return ratio


def main():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("fixtures", nargs="*", default=list(CASES))
    parser.add_argument("--calls", type=int, default=None,
                        help="calls per round (default: rounds of about 50 ms)")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--batch", type=int, default=None, help="batch size (default: per fixture)")
    parser.add_argument("--busy", action="store_true",
                        help="also time every round with a competing CPU-bound process")
    args = parser.parse_args()
    with competing_process() if args.busy else contextlib.nullcontext() as spinner:
        for name in args.fixtures:
            _bench_reporting(name, args, spinner)


def _bench_reporting(name, args, spinner):
    try:
        bench(name, args.calls, args.repeats, spinner, args.batch)
    except Exception as exc:  # noqa: BLE001 - report and go on with the next fixture
        print(f"{name:22s} could not run: {type(exc).__name__}: {str(exc)[:200]}", flush=True)


if __name__ == "__main__":
    main()
