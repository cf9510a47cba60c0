"""Per-family latency of the model zoo: sm_notebook's engine vs TensorFlow at batch 1 and 8.

Reads the zoo cache (tests/zoo/zoo_cache.py; generate it first with
``python tests/zoo/make_zoo.py``). For each entry that sm_notebook runs, the first
signature (serving_default when there is one) is timed with bench_engine's alternating
rounds (medians, median of per-round ratios ours/TF) on the entry's stored inputs, their
rows repeated to the batch size; signatures whose inputs are not all batched along the
first dimension are timed at their stored batch sizes only. The family row is the
geometric mean of its entries' ratios.

    python benchmarks/bench_zoo.py [--repeats R] [--batches 1 8] [--only NAME ...]
"""
from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import warnings
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "zoo"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import zoo_cache  # noqa: E402
from bench_engine import _ratio, _time_rounds  # noqa: E402


def batched_feeds(cases, signature, batch_sizes, batch):
    """The stored inputs with rows repeated to ``batch``; None when not batched on axis 0."""
    stored = {b: cases[(signature, b)]["inputs"] for b in batch_sizes}
    if batch in stored:
        return stored[batch]
    largest = max(batch_sizes)
    if not all(v.ndim and v.shape[0] == b for b, feeds in stored.items() for v in feeds.values()):
        return None
    return {k: np.resize(v, (batch, *v.shape[1:])) for k, v in stored[largest].items()}


def bench_entry(name, batches, repeats):
    """{batch: (ours s, TF s, ratio)} for the entry's first signature, or the reason it did not run."""
    import tensorflow as tf

    import sm_notebook

    record = zoo_cache.read_entry(name)
    export_dir = str(zoo_cache.entry_dir(name) / "saved_model")
    signature = "serving_default" if "serving_default" in record["signatures"] else min(record["signatures"])
    cases = zoo_cache.read_values(name)
    try:
        ours = sm_notebook.load(export_dir).signatures[signature]
        ours(**cases[(signature, record["batch_sizes"][0])]["inputs"])
    except Exception as error:  # noqa: BLE001  (refused or failing entries are listed, not timed)
        return f"not run by sm_notebook: {type(error).__name__}: {str(error)[:100]}"
    if record["tf1"]:
        return "TF1 export: TensorFlow's session API is not timed here"
    theirs = tf.saved_model.load(export_dir).signatures[signature]
    timings = {}
    for batch in batches:
        feeds = batched_feeds(cases, signature, record["batch_sizes"], batch)
        if feeds is None:
            continue
        tf_feeds = {k: tf.constant(v) for k, v in feeds.items()}
        try:  # an entry checked at fewer batch sizes may fail at this one (keras-hub's SAM 3)
            theirs(**tf_feeds)
            ours(**feeds)
        except Exception as error:  # noqa: BLE001
            print(f"{name:34s} b{batch} not timed: {type(error).__name__}: {str(error)[:80]}")
            continue
        ours_runs, tf_runs = (side["idle"] for side in _time_rounds(
            [(ours, feeds), (theirs, tf_feeds)], None, repeats))
        timings[batch] = (statistics.median(ours_runs), statistics.median(tf_runs),
                          _ratio(ours_runs, tf_runs))
    return timings


def main():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", metavar="NAME")
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 8])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    entries = zoo_cache.complete_entries()
    if not entries:
        sys.exit(f"no zoo at {zoo_cache.zoo_dir()}: run python tests/zoo/make_zoo.py")
    ratios = defaultdict(lambda: defaultdict(list))
    warnings.simplefilter("ignore")
    for name in args.only or sorted(entries):
        result = bench_entry(name, args.batches, args.repeats)
        if isinstance(result, str):
            print(f"{name:34s} {result}", flush=True)
            continue
        cells = []
        for batch, (t_ours, t_tf, ratio) in sorted(result.items()):
            ratios[entries[name]["family"]][batch].append(ratio)
            cells.append(f"b{batch}: ours {t_ours * 1e3:8.3f} ms TF {t_tf * 1e3:8.3f} ms ratio {ratio:5.2f}")
        print(f"{name:34s} " + " | ".join(cells), flush=True)
    print("\n| family | " + " | ".join(f"ours/TF batch {b} (entries)" for b in args.batches) + " |")
    print("|---|" + "---|" * len(args.batches))
    for family in sorted(ratios):
        cells = []
        for batch in args.batches:
            found = ratios[family].get(batch, [])
            mean = math.exp(sum(map(math.log, found)) / len(found)) if found else None
            cells.append(f"{mean:.2f} ({len(found)})" if found else "n/a")
        print(f"| {family} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
