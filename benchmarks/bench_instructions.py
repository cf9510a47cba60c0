"""Instructions per signature call, counted by valgrind (independent of the machine's load).

    python benchmarks/bench_instructions.py keras3_mlp --batch 1
    python benchmarks/bench_instructions.py keras3_transformer --batch 8 --calls 20 120

Runs a child process twice under ``valgrind --tool=cachegrind --cache-sim=no`` (load, three
warm-up calls, then N calls of the fixture's serving_default with one random input) and
prints (I(N2) - I(N1)) / (N2 - N1): what one call costs, load and warm-up cancelled out.
Use ``PYTHONPATH`` to pick the checkout measured. Needs valgrind.
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "models"

CHILD = """
import sys, numpy as np, sm_notebook
fn = sm_notebook.load(sys.argv[1], tags=["serve"]).signatures["serving_default"]
(name, spec), = fn.inputs.items()
x = np.random.default_rng(0).standard_normal([int(sys.argv[2])] + list(spec.shape[1:])).astype(spec.dtype)
for _ in range(3 + int(sys.argv[3])):
    fn(**{name: x})
"""


def instructions(model: Path, batch: int, calls: int) -> int:
    env = {**os.environ, "PYTHONHASHSEED": "0", "OPENBLAS_NUM_THREADS": "1"}
    done = subprocess.run(["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null",
                           sys.executable, "-c", CHILD, str(model), str(batch), str(calls)],
                          env=env, capture_output=True, text=True, check=True,
                          cwd=tempfile.gettempdir())  # not this checkout: PYTHONPATH decides
    found = re.search(r"I\s+refs:\s+([\d,]+)", done.stderr)
    if found is None:
        raise SystemExit(f"no instruction count in valgrind's output:\n{done.stderr[-2000:]}")
    return int(found.group(1).replace(",", ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="a fixture name (tests/fixtures/models) or an export directory")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--calls", type=int, nargs=2, default=(100, 600), metavar=("N1", "N2"))
    args = parser.parse_args()
    model = FIXTURES / args.model if (FIXTURES / args.model).is_dir() else Path(args.model).resolve()
    n1, n2 = args.calls
    per_call = (instructions(model, args.batch, n2) - instructions(model, args.batch, n1)) / (n2 - n1)
    print(f"{model.name} batch {args.batch}: {per_call / 1000:.1f}k instructions per call")


if __name__ == "__main__":
    main()
