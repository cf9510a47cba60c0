"""Every fixture signature on one backend (cupy by default) against TensorFlow's stored outputs
(tests/fixtures/expected/*.npz) and against the numpy backend; results to a JSON file.

Per case: pass/fail against TensorFlow with the interop test's rules (float32 outputs within
the bound derived from the float64 reference run, expected/<name>.ref64.npz, as
tests/conftest.float32_error_bound computes it; without one rtol 1e-5 / atol 1e-6; float16
1e-3, float64 1e-10; everything else exact, dtypes and shapes exact),
the largest errors, whether each output stayed on the device or came back on the host
(and whether its dtype is host-only, i.e. a documented fallback), and the same
comparison against the numpy backend. Then three behaviours of issue 15:
`model.to(backend)` moves the variables once (no copies per call beyond the inputs),
outputs stay on the device, `model.numpy(outputs)` brings them back.

    python tests/gpu/check_fixtures_cupy.py --out gpu_results/fixtures.json
    python tests/gpu/check_fixtures_cupy.py --backend numpy --out /tmp/f.json   # no GPU here

The file is rewritten after every case: a run cut short by its timeout keeps what it did.
Exit status 0 when every case passed, 1 otherwise.
"""
from __future__ import annotations

import argparse
import sys
import time
import traceback
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gpu_env import FIXTURES, REPO, environment, is_host_array, synchronize, to_host, write_json  # noqa: E402
from transfers import counting_transfers  # noqa: E402

sys.path.insert(0, str(REPO / "tests"))
from conftest import expected_values, float32_error_bound  # noqa: E402  (shared with the interop tests)

EXTRA_FILES = (".variables.", ".batches.", ".ref64.")  # beside <name>.npz: not signature runs

TOLERANCE = {np.dtype("float32"): dict(rtol=1e-5, atol=1e-6),
             np.dtype("float16"): dict(rtol=1e-3, atol=1e-3),
             np.dtype("float64"): dict(rtol=1e-10, atol=1e-12)}
MOVE_CHECK_FIXTURE = "keras3_mobilenetv2"


def cases(only=(), root=FIXTURES):
    """(npz file, fixture, tags, signature) for every stored signature run under ``root``."""
    found = []
    for path in sorted((root / "expected").glob("*.npz")):
        if any(part in path.name for part in EXTRA_FILES):
            continue
        fixture = path.name.split(".")[0]
        if only and fixture not in only:
            continue
        data = np.load(path, allow_pickle=True)
        groups = dict.fromkeys(tuple(key.split("|")[:2]) for key in data.files)
        found.extend((path, fixture, tags, signature) for tags, signature in groups)
    return found


class Models:
    """Loaded models by (fixture, tags, backend), loaded once."""

    def __init__(self, root=FIXTURES):
        self.cache, self.root = {}, root

    def get(self, fixture, tags, signature, backend):
        from sm_notebook.engine.loader import ModelSource, load_model, start_model
        from sm_notebook.format.savedmodel import read_saved_model

        shadowed = fixture == "tf1_duplicate_tags" and signature == "second_sig"
        key = (fixture, tags, backend, shadowed)
        if key not in self.cache:
            export_dir = self.root / "models" / fixture
            if shadowed:  # as tests/interop/test_engine_fixtures.py: metagraph 1, picked by index
                saved_model = read_saved_model(export_dir)
                source = ModelSource(str(export_dir), saved_model, 1, saved_model.meta_graphs[1])
                self.cache[key] = start_model(source, backend, False, 8 * 2**30)
            else:
                self.cache[key] = load_model(export_dir, tags=tags.split(","), backend=backend)
        return self.cache[key]


def compare(have: np.ndarray, want: np.ndarray, ref64=None) -> dict:
    result = {"dtype": str(have.dtype), "shape": list(have.shape), "want_dtype": str(want.dtype),
              "want_shape": list(want.shape)}
    if have.dtype != want.dtype or have.shape != want.shape:
        result["ok"] = False
        return result
    if ref64 is not None:  # float32 against the float64 answer, as the interop tests judge it
        ref64 = np.asarray(ref64, np.float64)
        special = ~np.isfinite(want)
        exact = np.isfinite(ref64) & ~special
        error = float(np.max(np.abs(have[exact].astype(np.float64) - ref64[exact]), initial=0.0))
        bound = float32_error_bound([(want, ref64)])
        result.update(max_err_vs_float64=error, bound_vs_float64=bound,
                      max_abs_err=float(np.max(np.abs(have[exact].astype(np.float64) - want[exact]), initial=0.0)),
                      ok=bool(error <= bound and np.array_equal(have[special], want[special])))
        return result
    tol = TOLERANCE.get(want.dtype)
    if tol is None:
        result["ok"] = bool(np.array_equal(have, want))
        return result
    wide_have, wide_want = have.astype(np.float64), want.astype(np.float64)
    finite = np.isfinite(wide_want)
    error = np.abs(wide_have - wide_want)
    result["max_abs_err"] = float(error[finite].max()) if finite.any() else 0.0
    result["max_rel_err"] = float((error[finite] / np.maximum(np.abs(wide_want[finite]), 1e-30)).max()) \
        if finite.any() else 0.0
    result["ok"] = bool(np.allclose(have, want, equal_nan=True, **tol))
    return result


def run_case(models, path, fixture, tags, signature, backend, reference):
    from sm_notebook.engine.backend import get_backend

    inputs, expected, ref64 = expected_values(path, tags, signature)
    backend_info = get_backend(backend)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = models.get(fixture, tags, signature, backend)
        start = time.perf_counter()
        outputs = model.signatures[signature](**inputs)
        synchronize(backend)
        seconds = time.perf_counter() - start
    case = {"fixture": fixture, "npz": path.name, "tags": tags, "signature": signature,
            "first_call_seconds": round(seconds, 4), "warnings": sorted({str(w.message)[:300] for w in caught}),
            "outputs": {}}
    if sorted(outputs) != sorted(expected):
        case["error"] = f"output keys {sorted(outputs)} != TensorFlow's {sorted(expected)}"
    ref_outputs = None
    if reference:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref_model = models.get(fixture, tags, signature, reference)
        ref_outputs = ref_model.signatures[signature](**inputs).numpy()
    for key, want in expected.items():
        if key not in outputs:
            continue
        value = outputs[key]
        have = to_host(value)
        entry = compare(have, want, ref64.get(key))
        entry["placement"] = "host" if is_host_array(value) else "device"
        entry["host_only_dtype"] = not backend_info.supports(have.dtype)
        entry["silent_host_fallback"] = (backend != "numpy" and entry["placement"] == "host"
                                         and not entry["host_only_dtype"])
        if ref_outputs is not None:
            # as close to the float64 answer as the reference backend's float32 is (same bound rule)
            vs_ref = compare(have, np.asarray(ref_outputs[key]), ref64.get(key))
            entry[f"vs_{reference}"] = {k: v for k, v in vs_ref.items()
                                        if k in ("ok", "max_abs_err", "max_rel_err", "bound_vs_float64")}
        case["outputs"][key] = entry
    case["ok"] = "error" not in case and all(
        o["ok"] and o.get(f"vs_{reference}", {"ok": True})["ok"] for o in case["outputs"].values())
    return case


def check_moves(backend: str, fixture: str = MOVE_CHECK_FIXTURE, calls: int = 3) -> dict:
    """`load(numpy).to(backend)`: variables on the device, copies per call, output placement."""
    import sm_notebook

    path = FIXTURES / "models" / fixture
    host_model = sm_notebook.load(path, tags="serve")
    moved = host_model.to(backend)
    variables = moved.variables
    on_device = sum(1 for v in variables.values() if v.value is not None and not is_host_array(v.value))
    signature = moved.signatures["serving_default"]
    spec = next(iter(signature.inputs.values()))
    shape = [2 if d is None else d for d in spec.shape]
    feed = {next(iter(signature.inputs)): np.random.default_rng(0).standard_normal(shape).astype(spec.dtype)}
    signature(**feed)  # compiles the plan
    with counting_transfers(moved) as count:
        for _ in range(calls):
            outputs = signature(**feed)
        synchronize(backend)
    placements = sorted({"host" if is_host_array(v) else "device" for v in outputs.values()})
    as_numpy = moved.numpy(outputs)
    input_bytes = sum(v.nbytes for v in feed.values())
    # Variables moved once: per call only the inputs go to the device. Small device->host
    # reads (shape tensors read by host kernels) are reported, not failed: each is a sync point.
    return {"fixture": fixture, "backend": moved.backend, "variables": len(variables),
            "variable_values_on_device": on_device, "inputs_per_call": len(feed), "input_bytes_per_call": input_bytes,
            "copies_per_call": count.as_dict(calls), "output_placement": placements,
            "numpy_gives_numpy": all(isinstance(v, np.ndarray) for v in as_numpy.values()),
            "ok": (backend == "numpy" or (on_device == len(variables) and placements == ["device"]))
            and count.to_device <= calls * len(feed) and count.bytes_to_device <= calls * input_bytes}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="cupy", help="cupy (default), numpy or array_api_strict")
    parser.add_argument("--reference", default="numpy",
                        help="also compare against this backend ('' to skip; skipped when equal to --backend)")
    parser.add_argument("--out", default="gpu_results/fixtures_cupy.json")
    parser.add_argument("--only", default="", help="comma-separated fixture names (default: all)")
    parser.add_argument("--fixtures-root", type=Path, default=FIXTURES,
                        help="a tree of models/<name>/ and expected/<name>.npz (default: tests/fixtures)")
    parser.add_argument("--budget-s", type=float, default=240.0,
                        help="start no new case after this many seconds (the rest are marked skipped)")
    args = parser.parse_args(argv)
    reference = args.reference if args.reference and args.reference != args.backend else None
    started = time.perf_counter()
    report = {"environment": environment(args.backend), "reference": reference,
              "tolerances": {str(k): v for k, v in TOLERANCE.items()}, "cases": [], "skipped": []}
    models = Models(args.fixtures_root)
    todo = cases([n for n in args.only.split(",") if n], args.fixtures_root)
    for index, (path, fixture, tags, signature) in enumerate(todo):
        if time.perf_counter() - started > args.budget_s:
            report["skipped"] = [f"{f} {t} {s}" for _, f, t, s in todo[index:]]
            break
        try:
            case = run_case(models, path, fixture, tags, signature, args.backend, reference)
        except Exception as exc:
            case = {"fixture": fixture, "npz": path.name, "tags": tags, "signature": signature, "ok": False,
                    "error": f"{type(exc).__name__}: {exc}"[:2000], "traceback": traceback.format_exc()[-3000:]}
        report["cases"].append(case)
        status = "ok  " if case["ok"] else "FAIL"
        print(f"{status} {fixture:24s} {tags:12s} {signature:20s} {case.get('error', '')[:150]}", flush=True)
        write_json(args.out, report)
    if args.fixtures_root == FIXTURES and (not args.only or MOVE_CHECK_FIXTURE in args.only.split(",")):
        try:
            report["move_check"] = check_moves(args.backend)
        except Exception as exc:
            report["move_check"] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:2000],
                                    "traceback": traceback.format_exc()[-3000:]}
        print(f"move check: {report['move_check']}", flush=True)
    passed = sum(1 for c in report["cases"] if c["ok"])
    report["summary"] = {"cases": len(report["cases"]), "passed": passed, "skipped": len(report["skipped"]),
                         "silent_host_fallbacks": sorted({f"{c['fixture']} {c['signature']} {k}"
                                                          for c in report["cases"]
                                                          for k, o in c.get("outputs", {}).items()
                                                          if o.get("silent_host_fallback")}),
                         "seconds": round(time.perf_counter() - started, 1)}
    write_json(args.out, report)
    print(f"{passed}/{len(report['cases'])} cases passed, {len(report['skipped'])} skipped -> {args.out}")
    ok = passed == len(report["cases"]) and not report["skipped"] and report.get("move_check", {}).get("ok", True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
