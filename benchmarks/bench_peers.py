"""sm_notebook against the CPU runtimes users would pick instead, in one table.

Peers: TensorFlow (the SavedModel itself), OpenVINO (reads the SavedModel, then its own IR
file), ONNX Runtime (after tf2onnx) and LiteRT (after TensorFlow's TFLite converter).
Install them with ``pip install -e ".[bench]"`` in a benchmark environment only (they pin
protobuf and numpy their own way; none is a dependency of sm_notebook). A peer that is not
installed, or that cannot convert a model, is reported as such and skipped.

For each model: convert once (cached under ``--work``), check every peer's batch-8 output
against TensorFlow's (max |difference| / max |TF output|), time rounds of calls at batch 1
and batch 8 with all runtimes interleaved round by round (ratios are medians of per-round
ratios to TensorFlow, so load drifts cancel out), then start each runtime in fresh
processes (alternating) for the cold start (process start to first result, from the
converted file; every side from compiled bytecode, as installed packages are) and the peak
RSS after a batch-8 call. "b8 CPU ms" is the process's CPU time per batch-8 call (all its
threads), which depends less on other processes' load than the wall time. ``--busy`` also
times every round with a competing CPU-bound process and reports busy/idle ratios.

    python benchmarks/bench_peers.py [--repeats R] [--cold-runs N] [--busy] [model ...]

Models: the Keras fixtures (keras3_mlp, keras3_cnn, keras3_mobilenetv2, keras3_rnn,
keras3_transformer) and ``resnet50`` (keras.applications, weights=None, 224x224, exported
under ``--work`` on first use).
"""
from __future__ import annotations

import argparse
import compileall
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_engine import _ratio, _time_rounds, competing_process  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "tests" / "fixtures" / "models"
DEFAULT = ["keras3_mlp", "keras3_cnn", "keras3_mobilenetv2", "keras3_rnn", "keras3_transformer",
           "resnet50"]
RUNTIMES = ["sm_notebook", "tensorflow", "openvino", "onnxruntime", "litert"]
PACKAGES = {"sm_notebook": "sm_notebook", "tensorflow": "tensorflow", "openvino": "openvino",
            "onnxruntime": "onnxruntime", "litert": "ai_edge_litert"}


# --------------------------------------------------------------------------- models and conversion

def saved_model(name: str, work: Path) -> Path:
    if (MODELS / name).is_dir():
        return MODELS / name
    if name != "resnet50":
        raise SystemExit(f"unknown model {name!r}: use a fixture name or resnet50")
    path = work / "resnet50" / "saved_model"
    if not path.is_dir():
        code = ("import keras; keras.applications.ResNet50(weights=None, input_shape=(224, 224, 3))"
                f".export({str(path)!r}, verbose=False)")
        subprocess.run([sys.executable, "-c", code], check=True, env=_quiet_env())
    return path


def _quiet_env():
    return dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")


def convert(runtime: str, model_dir: Path, out: Path) -> Path:
    """The file ``runtime`` loads (converted once); raises with the converter's message."""
    out.mkdir(parents=True, exist_ok=True)
    if runtime in ("sm_notebook", "tensorflow"):
        return model_dir
    target = out / {"openvino": "model.xml", "onnxruntime": "model.onnx", "litert": "model.tflite"}[runtime]
    if target.exists():
        return target
    if runtime == "onnxruntime":
        command = [sys.executable, "-m", "tf2onnx.convert", "--saved-model", str(model_dir),
                   "--output", str(target), "--opset", "17"]
    elif runtime == "openvino":
        command = [sys.executable, "-c", ("import openvino as ov, sys; "
                                          "ov.save_model(ov.convert_model(sys.argv[1]), sys.argv[2])"),
                   str(model_dir), str(target)]
    else:  # the file is written only once the conversion succeeded
        command = [sys.executable, "-c", ("import sys, tensorflow as tf; "
                                          "flat = tf.lite.TFLiteConverter.from_saved_model(sys.argv[1]).convert(); "
                                          "open(sys.argv[2], 'wb').write(flat)"),
                   str(model_dir), str(target)]
    done = subprocess.run(command, capture_output=True, text=True, env=_quiet_env(), check=False)
    if done.returncode or not target.exists():
        lines = [line for line in (done.stderr + done.stdout).splitlines() if line.strip()]
        raise RuntimeError(lines[-1][:160] if lines else f"exit status {done.returncode}")
    return target


# --------------------------------------------------------------------------- loading (parent and child)

def load(runtime: str, artifact: str, input_name: str):
    """``call(x) -> first output as numpy`` for one runtime (imports only that runtime)."""
    if runtime == "sm_notebook":
        import sm_notebook
        fn = sm_notebook.load(artifact, tags=["serve"]).signatures["serving_default"]
        return lambda x: next(iter(fn(**{input_name: x}).values()))
    if runtime == "tensorflow":
        import tensorflow as tf
        fn = tf.saved_model.load(artifact).signatures["serving_default"]
        return lambda x: next(iter(fn(**{input_name: tf.constant(x)}).values())).numpy()
    if runtime == "openvino":
        import openvino as ov
        # f32 as the others compute (on CPUs with bfloat16 units OpenVINO defaults to it)
        compiled = ov.Core().compile_model(artifact, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
        output = compiled.output(0)
        return lambda x: compiled([x])[output]
    if runtime == "onnxruntime":
        import onnxruntime as ort
        session = ort.InferenceSession(artifact, providers=["CPUExecutionProvider"])
        feed = session.get_inputs()[0].name
        return lambda x: session.run(None, {feed: x})[0]
    if runtime == "litert":
        from ai_edge_litert.interpreter import Interpreter
        interpreters = {}

        def call(x):
            found = interpreters.get(x.shape)
            if found is None:
                interpreter = Interpreter(model_path=artifact, num_threads=os.cpu_count())
                index = interpreter.get_input_details()[0]["index"]
                interpreter.resize_tensor_input(index, list(x.shape))
                interpreter.allocate_tensors()
                found = interpreters[x.shape] = (interpreter, index,
                                                 interpreter.get_output_details()[0]["index"])
            interpreter, index, output = found
            interpreter.set_tensor(index, x)
            interpreter.invoke()
            return interpreter.get_tensor(output)
        return call
    raise ValueError(runtime)


CHILD = """
import sys, time
start = float(sys.argv[1])
sys.path.insert(0, sys.argv[2])
import numpy as np
from bench_peers import load
runtime, artifact, name, shape = sys.argv[3], sys.argv[4], sys.argv[5], [int(d) for d in sys.argv[6].split(",")]
call = load(runtime, artifact, name)
x = np.ones([1] + shape[1:], np.float32)
call(x)
first = time.time() - start
call(np.ones(shape, np.float32))
peak = next(line for line in open("/proc/self/status") if line.startswith("VmHWM"))
print(first, int(peak.split()[1]) / 1024)  # VmHWM: ru_maxrss would count the parent's
"""


def cold_start(runtime, artifact, input_name, shape) -> tuple[float, float]:
    """(seconds from process start to the first batch-1 result, peak RSS MiB after batch 8)."""
    env = _quiet_env()
    if runtime == "sm_notebook":
        env["PYTHONPATH"] = str(ROOT)
    done = subprocess.run(
        [sys.executable, "-c", CHILD, repr(time.time()), str(Path(__file__).resolve().parent),
         runtime, str(artifact), input_name, ",".join(map(str, shape))],
        capture_output=True, text=True, env=env, cwd="/", check=False)
    if done.returncode:
        raise RuntimeError(done.stderr.strip().splitlines()[-1][:160])
    first, peak = done.stdout.split()[-2:]
    return float(first), float(peak)


# --------------------------------------------------------------------------- the table

def bench_model(name, args, spinner) -> list[dict]:
    model_dir = saved_model(name, args.work)
    import sm_notebook
    fn = sm_notebook.load(str(model_dir), tags=["serve"]).signatures["serving_default"]
    (input_name, spec), = fn.inputs.items()
    rng = np.random.default_rng(0)
    shape8 = [8 if d is None else d for d in spec.shape]
    x8 = rng.standard_normal(shape8).astype(np.float32)
    x1 = np.ascontiguousarray(x8[:1])
    rows, calls = {}, {}
    for runtime in args.runtimes:
        row = rows[runtime] = {"model": name, "runtime": runtime}
        if importlib.util.find_spec(PACKAGES[runtime]) is None:
            row["error"] = "not installed"
            continue
        try:
            row["artifact"] = str(convert(runtime, model_dir, args.work / name))
            calls[runtime] = load(runtime, row["artifact"], input_name)
        except Exception as exc:  # noqa: BLE001 - a peer that cannot convert is reported
            row["error"] = f"cannot convert or load: {str(exc)[:110]}"
    expected = calls["tensorflow"](x8) if "tensorflow" in calls else None
    for runtime, call in list(calls.items()):
        try:
            got = np.asarray(call(x8))
            call(x1)
        except Exception as exc:  # noqa: BLE001 - a peer that cannot run the model is reported
            rows[runtime]["error"] = f"run failed: {str(exc)[:120]}"
            del calls[runtime]
            continue
        if expected is not None:
            rows[runtime]["error_vs_tf"] = float(np.max(np.abs(got - expected)) / (np.max(np.abs(expected)) or 1))
    names = list(calls)
    for batch, x in ((1, x1), (8, x8)):
        sides = [(lambda x=x, call=calls[r]: call(x), {}) for r in names]
        times = _time_rounds(sides, None, args.repeats, spinner)
        reference = times[names.index("tensorflow")] if "tensorflow" in names else None
        for runtime, t in zip(names, times):
            row = rows[runtime]
            row[f"b{batch}_ms"] = statistics.median(t["idle"]) * 1e3
            row[f"b{batch}_cpu_ms"] = statistics.median(t["cpu"]) * 1e3
            if reference is not None:
                row[f"b{batch}_vs_tf"] = _ratio(t["idle"], reference["idle"])
            if spinner is not None:
                row[f"b{batch}_busy_ms"] = statistics.median(t["busy"]) * 1e3
                row[f"b{batch}_busy_vs_idle"] = _ratio(t["busy"], t["idle"])
    del calls
    colds = {r: [] for r in names}
    for _ in range(args.cold_runs):
        for runtime in names:
            try:
                colds[runtime].append(cold_start(runtime, rows[runtime]["artifact"], input_name, shape8))
            except Exception as exc:  # noqa: BLE001 - reported in the row
                rows[runtime]["cold_error"] = str(exc)
    for runtime, runs in colds.items():
        if runs:
            rows[runtime]["cold_s"] = statistics.median(r[0] for r in runs)
            rows[runtime]["peak_rss_mib"] = statistics.median(r[1] for r in runs)
    return list(rows.values())


def _cell(row, key, fmt):
    value = row.get(key)
    return "" if value is None else format(value, fmt)


def print_table(rows, busy):
    header = ["model", "runtime", "b1 ms", "b1 /TF", "b8 ms", "b8 /TF", "b8 CPU ms", "cold s",
              "peak RSS MiB", "max err vs TF"]
    if busy:
        header += ["b1 busy/idle", "b8 busy/idle"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        if "error" in row:
            cells = [row["model"], row["runtime"], row["error"]] + [""] * (len(header) - 3)
        else:
            cells = [row["model"], row["runtime"], _cell(row, "b1_ms", ".3f"), _cell(row, "b1_vs_tf", ".2f"),
                     _cell(row, "b8_ms", ".2f"), _cell(row, "b8_vs_tf", ".2f"),
                     _cell(row, "b8_cpu_ms", ".2f"), _cell(row, "cold_s", ".2f"),
                     _cell(row, "peak_rss_mib", ".0f"), _cell(row, "error_vs_tf", ".1e")]
            if busy:
                cells += [_cell(row, "b1_busy_vs_idle", ".2f"), _cell(row, "b8_busy_vs_idle", ".2f")]
        print("| " + " | ".join(cells) + " |", flush=True)


def main(argv=None):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", default=DEFAULT)
    parser.add_argument("--runtimes", nargs="+", default=RUNTIMES, choices=RUNTIMES)
    parser.add_argument("--repeats", type=int, default=7, help="timed rounds per batch size")
    parser.add_argument("--cold-runs", type=int, default=3, help="fresh processes per runtime")
    parser.add_argument("--busy", action="store_true",
                        help="also time every round with a competing CPU-bound process")
    parser.add_argument("--work", type=Path, default=Path("/tmp/sm_notebook-bench"),
                        help="converted models (and the exported ResNet50) are cached here")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args(argv)
    if "tensorflow" not in args.runtimes:
        args.runtimes.append("tensorflow")  # the reference of every ratio and output check
    # bytecode for sm_notebook's cold starts, as an installed package has (peers have theirs)
    compileall.compile_dir(ROOT / "sm_notebook", quiet=1)
    rows = []
    with competing_process() if args.busy else _no_spinner() as spinner:
        for name in args.models:
            rows.extend(bench_model(name, args, spinner))
            print(f"[{name} done]", file=sys.stderr, flush=True)
    print(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.1f}")
    print_table(rows, args.busy)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


class _no_spinner:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


if __name__ == "__main__":
    main()
