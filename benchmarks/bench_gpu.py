"""Signature-call time on the cupy backend vs the numpy backend, on the same machine.

For each model (default: MobileNetV2 alpha 0.35 at batch 64, the keras3_mobilenetv2
fixture; add ResNet50 at batch 32 with --model resnet50=DIR:32, e.g. the export of
tests/gpu/export_resnet50.py) and each backend it reports, as medians over timed calls:

- ``end_to_end``: numpy inputs in, outputs brought back with ``model.numpy`` (what a
  user calling with host arrays sees);
- ``device_resident`` (device backends): inputs already on the device, outputs left
  there, the device synchronised after each call;
- ``batch1``: both of the above at batch 1 (the per-call overhead);
- ``transfers``: copies through the engine's Backend.asarray/to_numpy per call and the
  share of the end-to-end time they take; ``resident_share`` = 1 - resident/end-to-end;
- ``speedup``: numpy's end-to-end time over each device backend's (goal in issue 15: >= 5x).

    python benchmarks/bench_gpu.py --out gpu_results/bench.json              # cupy vs numpy
    python benchmarks/bench_gpu.py --backends numpy,array_api_strict \\
        --model mlp=tests/fixtures/models/keras3_mlp:4 --seconds 2 --out /tmp/b.json  # no GPU

Results go to --out (JSON) and the same path with .txt (a table); the JSON is rewritten
after every case, so a run cut short keeps what it measured.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
import traceback
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "gpu"))
from gpu_env import device_arrays, environment, synchronize, write_json  # noqa: E402
from transfers import counting_transfers  # noqa: E402

DEFAULT_MODELS = ["mobilenetv2_a035=tests/fixtures/models/keras3_mobilenetv2:64"]


def parse_model(text: str) -> tuple[str, Path, int]:
    """NAME=DIR:BATCH -> (name, directory, batch)."""
    name, _, rest = text.partition("=")
    directory, _, batch = rest.rpartition(":")
    if not name or not directory or not batch.isdigit():
        raise SystemExit(f"--model takes NAME=DIR:BATCH, got {text!r}")
    path = Path(directory)
    return name, path if path.is_absolute() else ROOT / path, int(batch)


def feeds_for(signature, batch: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    feeds = {}
    for key, spec in signature.inputs.items():
        shape = [batch if d is None else d for d in spec.shape]
        feeds[key] = rng.standard_normal(shape).astype(spec.dtype)
    return feeds


def timed_calls(call, backend: str, seconds: float, min_calls: int, max_calls: int) -> list:
    """Seconds of each call (device synchronised), until ``seconds`` or ``max_calls``."""
    times, start = [], time.perf_counter()
    while len(times) < max_calls and (len(times) < min_calls or time.perf_counter() - start < seconds):
        begin = time.perf_counter()
        call()
        synchronize(backend)
        times.append(time.perf_counter() - begin)
    return times


def summary(times: list) -> dict:
    return {"median_ms": round(statistics.median(times) * 1e3, 3), "min_ms": round(min(times) * 1e3, 3),
            "calls": len(times)}


def bench_backend(path: Path, batch: int, backend: str, args) -> dict:
    import sm_notebook

    result = {"backend": backend, "batch": batch}
    begin = time.perf_counter()
    model = sm_notebook.load(path, tags="serve", backend=backend)
    synchronize(backend)
    result["load_s"] = round(time.perf_counter() - begin, 3)
    key = "serving_default" if "serving_default" in model.signatures else next(iter(model.signatures))
    signature = model.signatures[key]
    for size, label in ((batch, "batch"), (1, "batch1")):
        feeds = feeds_for(signature, size)
        begin = time.perf_counter()
        model.numpy(signature(**feeds))
        synchronize(backend)
        first = time.perf_counter() - begin
        model.numpy(signature(**feeds))  # one more warm-up call
        end_to_end = timed_calls(lambda: model.numpy(signature(**feeds)), backend, args.seconds,
                                 args.min_calls, args.max_calls)
        entry = {"first_call_ms": round(first * 1e3, 1), "end_to_end": summary(end_to_end)}
        if backend != "numpy":
            resident = device_arrays(feeds, backend)
            try:
                signature(**resident)
                times = timed_calls(lambda: signature(**resident), backend, args.seconds,
                                    args.min_calls, args.max_calls)
                entry["device_resident"] = summary(times)
                entry["resident_share"] = round(1 - statistics.median(times) / statistics.median(end_to_end), 3)
            except Exception as exc:  # recorded: device inputs are part of what is being checked
                entry["device_resident"] = {"error": f"{type(exc).__name__}: {exc}"[:500]}
        with counting_transfers(model) as count:
            begin = time.perf_counter()
            model.numpy(signature(**feeds))
            synchronize(backend)
            one_call = time.perf_counter() - begin
        entry["transfers"] = count.as_dict()
        entry["transfers"]["share_of_call"] = round(count.seconds / one_call, 3) if one_call else None
        result[label] = entry
    return result


def format_table(report: dict) -> str:
    env = report["environment"]
    lines = [f"GPU benchmark {env.get('date_utc')} on {env.get('gpu', 'no GPU')} "
             f"({env.get('cpu_count')} CPUs, numpy {env.get('numpy')}, cupy {env.get('cupy', '-')})",
             f"{'model':18s} {'backend':16s} {'batch':>5s} {'e2e ms':>10s} {'resident ms':>12s} "
             f"{'b1 e2e ms':>10s} {'b1 res ms':>10s} {'xfer share':>10s} {'speedup':>8s}"]
    for case in report["cases"]:
        if "error" in case:
            lines.append(f"{case['model']:18s} {case['backend']:16s} error: {case['error'][:80]}")
            continue
        big, one = case["batch"], case["batch1"]
        lines.append(
            f"{case['model']:18s} {case['backend']:16s} {case['batch_size']:5d} "
            f"{big['end_to_end']['median_ms']:10.2f} "
            f"{big.get('device_resident', {}).get('median_ms', float('nan')):12.2f} "
            f"{one['end_to_end']['median_ms']:10.2f} "
            f"{one.get('device_resident', {}).get('median_ms', float('nan')):10.2f} "
            f"{big['transfers']['share_of_call'] or 0:10.3f} "
            f"{case.get('speedup_vs_numpy', float('nan')):8.2f}")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="cupy,numpy")
    parser.add_argument("--model", action="append", default=None, metavar="NAME=DIR:BATCH")
    parser.add_argument("--seconds", type=float, default=8.0, help="time per measurement (default 8)")
    parser.add_argument("--min-calls", type=int, default=3)
    parser.add_argument("--max-calls", type=int, default=200)
    parser.add_argument("--budget-s", type=float, default=200.0, help="start no new case after this")
    parser.add_argument("--out", default="gpu_results/bench_gpu.json")
    args = parser.parse_args(argv)
    backends = [b for b in args.backends.split(",") if b]
    started = time.perf_counter()
    report = {"environment": environment(backends[0]), "settings": vars(args), "cases": [], "skipped": []}
    for text in args.model or DEFAULT_MODELS:
        name, path, batch = parse_model(text)
        timings = {}
        for backend in backends:
            if time.perf_counter() - started > args.budget_s:
                report["skipped"].append(f"{name} {backend}")
                continue
            case = {"model": name, "path": str(path), "backend": backend, "batch_size": batch}
            try:
                case.update(bench_backend(path, batch, backend, args))
                timings[backend] = case["batch"]["end_to_end"]["median_ms"], case["batch1"]["end_to_end"]["median_ms"]
            except Exception as exc:
                case["error"] = f"{type(exc).__name__}: {exc}"[:2000]
                case["traceback"] = traceback.format_exc()[-3000:]
            report["cases"].append(case)
            print(f"{name} {backend}: {case.get('error') or case['batch']['end_to_end']}", flush=True)
            write_json(args.out, report)
        if "numpy" in timings:
            for case in report["cases"]:
                if case["model"] == name and case["backend"] in timings and "error" not in case:
                    ours = timings[case["backend"]]
                    case["speedup_vs_numpy"] = round(timings["numpy"][0] / ours[0], 2)
                    case["speedup_vs_numpy_batch1"] = round(timings["numpy"][1] / ours[1], 2)
    write_json(args.out, report)
    table = format_table(report)
    Path(args.out).with_suffix(".txt").write_text(table)
    print(table)
    return 0 if report["cases"] and not any("error" in c for c in report["cases"]) and not report["skipped"] else 1


if __name__ == "__main__":
    sys.exit(main())
