"""Whole-process time of `sm-notebook show --all` against `saved_model_cli show --all`.

Runs both on the same fixture N times, interleaved (so machine load hits both
alike) after one untimed warm-up each, checks that their stdout is identical
(same PYTHONHASHSEED), and prints the median wall times and their ratio.
Both console scripts are run directly from the interpreter's bin folder
(not through a pyenv shim, which alone adds ~150 ms to each). sm_notebook runs
from a byte-compiled copy, as an installed package would, even where
PYTHONDONTWRITEBYTECODE is set (TensorFlow's files are compiled at install);
--as-is runs the working tree as it is.

    python benchmarks/bench_cli_show.py [--model DIR] [-n 10] [--as-is]
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
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


def console_script(name: str):
    """The console script next to this interpreter, else on PATH, else None."""
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.is_file() else shutil.which(name)


def sm_notebook_command() -> list[str]:
    """The installed console script, or the exact equivalent of what it runs."""
    script = console_script("sm-notebook")
    if script:
        return [script]
    return [sys.executable, "-c", "import sys; from sm_notebook.cli import main; sys.exit(main())"]


def byte_compiled_copy(folder: str) -> str:
    """Copy the sm_notebook package into `folder` with its .pyc files; returns `folder`."""
    shutil.copytree(REPO / "sm_notebook", Path(folder) / "sm_notebook",
                    ignore=shutil.ignore_patterns("__pycache__", "examples"))
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(Path(folder) / "sm_notebook")],
                   check=True)
    return folder


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
    parser.add_argument("--as-is", action="store_true",
                        help="keep the bytecode settings of the environment")
    args = parser.parse_args()
    model = args.model or default_model()
    saved_model_cli = console_script("saved_model_cli")
    if saved_model_cli is None:
        raise SystemExit("saved_model_cli is not installed (pip install tensorflow-cpu).")

    env = dict(os.environ, PYTHONHASHSEED="0", TF_CPP_MIN_LOG_LEVEL="3")
    copy = None
    package_root = str(REPO)
    if not args.as_is:
        copy = tempfile.TemporaryDirectory(prefix="bench_sm_notebook_")
        package_root = byte_compiled_copy(copy.name)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
    ours = sm_notebook_command() + ["show", "--dir", str(model), "--all"]
    theirs = [saved_model_cli, "show", "--dir", str(model), "--all"]

    timed_run(ours, env)  # warm-up: file cache
    timed_run(theirs, env)
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
    print(f"runs: {args.runs} each, interleaved; stdout {same}; "
          f"sm_notebook {'as is' if args.as_is else 'byte-compiled'}: {' '.join(ours[:1])}")
    print(f"sm-notebook show --all     median {our_median * 1e3:8.1f} ms")
    print(f"saved_model_cli show --all median {their_median * 1e3:8.1f} ms")
    print(f"ratio (saved_model_cli / sm-notebook): {their_median / our_median:.1f}x")
    if copy is not None:
        copy.cleanup()


if __name__ == "__main__":
    main()
