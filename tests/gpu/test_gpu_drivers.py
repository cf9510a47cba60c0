"""The GPU check kit runs end to end without a GPU: its drivers on numpy and on
array_api_strict (a non-numpy namespace, as cupy is), and the shell script parses."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]


def _run(*argv):
    return subprocess.run([sys.executable, *map(str, argv)], capture_output=True, text=True, timeout=300, cwd=REPO)


@pytest.mark.parametrize("backend", ["numpy", "array_api_strict"])
def test_fixture_checker_writes_every_case_and_the_move_check(tmp_path, backend):
    pytest.importorskip(backend)
    out = tmp_path / "fixtures.json"
    done = _run(HERE / "check_fixtures_cupy.py", "--backend", backend, "--only",
                "keras3_mlp,tf2_module,keras3_mobilenetv2", "--out", out)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    report = json.loads(out.read_text())
    assert report["summary"]["cases"] == report["summary"]["passed"] == 11
    strings = next(c for c in report["cases"] if c["signature"] == "string_ops")["outputs"]["upper"]
    assert strings["placement"] == "host" and not strings["silent_host_fallback"]
    assert strings["host_only_dtype"] == (backend != "numpy")
    moved = report["move_check"]
    assert moved["ok"] and moved["copies_per_call"]["to_device_per_call"] <= 1
    if backend != "numpy":
        assert moved["variable_values_on_device"] == moved["variables"] and moved["output_placement"] == ["device"]
        dense = next(c for c in report["cases"] if c["fixture"] == "keras3_mlp")["outputs"]["output_0"]
        assert dense["placement"] == "device" and dense["vs_numpy"]["ok"]


def test_fixture_checker_reports_a_wrong_output(tmp_path):
    """A case whose stored output is off fails, with the error size (the checker can fail)."""
    import numpy as np
    root = tmp_path / "tree"
    shutil.copytree(REPO / "tests" / "fixtures" / "models" / "keras3_mlp", root / "models" / "keras3_mlp")
    (root / "expected").mkdir()
    stored = np.load(REPO / "tests" / "fixtures" / "expected" / "keras3_mlp.npz", allow_pickle=True)
    arrays = {k: stored[k] + (0.5 if "|outputs|" in k and "serving_default" in k else 0) for k in stored.files}
    np.savez(root / "expected" / "keras3_mlp.npz", **arrays)
    done = _run(HERE / "check_fixtures_cupy.py", "--backend", "numpy", "--fixtures-root", root,
                "--out", tmp_path / "f.json")
    report = json.loads((tmp_path / "f.json").read_text())
    assert done.returncode == 1 and report["summary"]["passed"] == 1 and report["summary"]["cases"] == 2
    bad = next(c for c in report["cases"] if not c["ok"])["outputs"]["output_0"]
    assert abs(bad["max_abs_err"] - 0.5) < 1e-3


def test_benchmark_measures_each_backend(tmp_path):
    pytest.importorskip("array_api_strict")
    out = tmp_path / "bench.json"
    done = _run(REPO / "benchmarks" / "bench_gpu.py", "--backends", "array_api_strict,numpy",
                "--model", "mlp=tests/fixtures/models/keras3_mlp:4", "--seconds", "0.2", "--max-calls", "20",
                "--out", out)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    report = json.loads(out.read_text())
    device, host = report["cases"]
    assert device["backend"] == "array_api_strict" and host["backend"] == "numpy"
    for key in ("end_to_end", "device_resident", "resident_share", "transfers"):
        assert key in device["batch"] and key in device["batch1"]
    assert device["batch"]["transfers"]["to_device_per_call"] == 1 and device["speedup_vs_numpy"] > 0
    assert "mlp" in out.with_suffix(".txt").read_text()


@pytest.mark.parametrize("script", ["run_gpu_checks.sh", "fetch_wheels.sh"])
def test_the_scripts_parse(script):
    done = subprocess.run(["bash", "-n", str(HERE / script)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
