"""Same-run A/B of the engine: two checkouts of sm_notebook timed on the same fixtures.

Each round runs one short child process per checkout (alternating A, B, A, B, ...), each
timing ``--calls`` calls of every fixture's serving signature; the report gives, per
fixture, the median ms per call of each side and the median of the per-round ratios B/A
(adjacent rounds share the machine's load, so load drifts cancel out).

    python benchmarks/bench_ab.py --a /path/to/old/checkout [--b .] [--rounds 5] [fixture ...]
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "tests" / "fixtures" / "models"
CASES = {"keras3_mlp": 1, "keras3_cnn": 8, "keras3_mobilenetv2": 8, "keras3_transformer": 8,
         "keras3_rnn": 8, "tfkeras_mlp": 1, "tf1_multi_tags": 1}

CHILD = r"""
import json, sys, time
import numpy as np
sys.path.insert(0, sys.argv[1])
import sm_notebook
assert sm_notebook.__file__.startswith(sys.argv[1]), sm_notebook.__file__
cases, calls = json.loads(sys.argv[2]), int(sys.argv[3])
out = {}
for path, batch in cases.items():
    model = sm_notebook.load(path, tags=["serve"])
    name = "serving_default" if "serving_default" in model.signatures else sorted(model.signatures)[0]
    fn = model.signatures[name]
    rng = np.random.default_rng(0)
    feeds = {k: rng.standard_normal([batch if d is None else d for d in spec.shape]).astype(spec.dtype)
             for k, spec in fn.inputs.items()}
    for _ in range(5):
        fn(**feeds)
    best = []
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(calls):
            fn(**feeds)
        best.append((time.perf_counter() - start) / calls)
    out[path] = min(best)
print(json.dumps(out))
"""


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--a", required=True, help="checkout A (the baseline)")
    parser.add_argument("--b", default=str(ROOT), help="checkout B (default: this one)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("fixtures", nargs="*", default=list(CASES))
    args = parser.parse_args(argv)
    cases = {str(MODELS / name): CASES.get(name, 1) for name in args.fixtures}
    times = {"a": [], "b": []}
    for _ in range(args.rounds):
        for side in ("a", "b"):
            tree = str(Path(getattr(args, side)).resolve())
            done = subprocess.run([sys.executable, "-c", CHILD, tree, json.dumps(cases), str(args.calls)],
                                  capture_output=True, text=True, check=True, cwd="/")
            times[side].append(json.loads(done.stdout))
    print(f"{'fixture':24s} {'batch':>5s} {'A ms':>9s} {'B ms':>9s} {'B/A':>6s}")
    for path, batch in cases.items():
        a = [r[path] for r in times["a"]]
        b = [r[path] for r in times["b"]]
        ratio = statistics.median(y / x for x, y in zip(a, b))
        print(f"{Path(path).name:24s} {batch:5d} {statistics.median(a) * 1e3:9.3f} "
              f"{statistics.median(b) * 1e3:9.3f} {ratio:6.2f}")


if __name__ == "__main__":
    main()
