"""Whole-process time of `sm-notebook show --all` against `saved_model_cli show --all`.

Runs both on the same fixture N times, interleaved (so machine load hits both
alike), checks that their stdout is identical (same PYTHONHASHSEED), and
prints the median wall times and their ratio.

    python benchmarks/bench_cli_show.py [--model DIR] [-n 10]
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures" / "models"
PREFERRED_MODELS = ("keras3_mobilenetv2", "keras3_transformer", "tf2_module")


def default_model() -> Path:
    for name in PREFERRED_MODELS:
        if (FIXTURES / name).is_dir():
            return FIXTURES / name
    raise SystemExit(f"No fixture model under {FIXTURES}; pass --model.")


def sm_notebook_command() -> list[str]:
    """The installed console script, or the exact equivalent of what it runs."""
    script = shutil.which("sm-notebook")
    if script:
        return [script]
    return [sys.executable, "-c", "import sys; from sm_notebook.cli import main; sys.exit(main())"]


def timed_run(argv: list[str], env: dict) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{argv[0]} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return elapsed, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None, help="SavedModel directory")
    parser.add_argument("-n", "--runs", type=int, default=10, help="runs of each command")
    args = parser.parse_args()
    model = args.model or default_model()
    if shutil.which("saved_model_cli") is None:
        raise SystemExit("saved_model_cli is not on PATH (pip install tensorflow-cpu).")

    env = dict(os.environ, PYTHONHASHSEED="0", TF_CPP_MIN_LOG_LEVEL="3")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    ours = sm_notebook_command() + ["show", "--dir", str(model), "--all"]
    theirs = ["saved_model_cli", "show", "--dir", str(model), "--all"]

    our_times, their_times = [], []
    for _ in range(args.runs):
        elapsed, our_out = timed_run(ours, env)
        our_times.append(elapsed)
        elapsed, their_out = timed_run(theirs, env)
        their_times.append(elapsed)
    same = "identical" if our_out == their_out else "DIFFERENT"

    our_median = statistics.median(our_times)
    their_median = statistics.median(their_times)
    print(f"model: {model}")
    print(f"runs: {args.runs} each, interleaved; stdout {same}")
    print(f"sm-notebook show --all     median {our_median * 1e3:8.1f} ms")
    print(f"saved_model_cli show --all median {their_median * 1e3:8.1f} ms")
    print(f"ratio (saved_model_cli / sm-notebook): {their_median / our_median:.1f}x")


if __name__ == "__main__":
    main()
