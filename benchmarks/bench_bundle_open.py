"""Opening a 200 MB variables bundle: sm_notebook's BundleReader vs tf.train.load_checkpoint.

Writes the bundle with BundleWriter into a temporary directory, then times, each
in a fresh subprocess (after imports), opening it and listing every entry with
its dtype and shape, and the resident-memory growth that causes before any value
is read. TensorFlow's side is load_checkpoint + get_variable_to_shape_map +
get_variable_to_dtype_map, skipped when TensorFlow is not installed.

    python benchmarks/bench_bundle_open.py [--size-mb 200] [--entries 400] [--repeat 5]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

_RSS_HELPER = """
def rss_kib():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
"""

OURS = _RSS_HELPER + """
import json, sys, time
sys.path.insert(0, {repo!r})
import numpy
from sm_notebook.format.bundle import BundleReader
before = rss_kib()
start = time.perf_counter()
reader = BundleReader({prefix!r})
listing = [(key, reader.dtype(key), reader.shape(key)) for key in reader.keys()]
elapsed = time.perf_counter() - start
print(json.dumps({{"seconds": elapsed, "rss_growth_kib": rss_kib() - before, "entries": len(listing)}}))
"""

THEIRS = _RSS_HELPER + """
import json, os, time
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import tensorflow as tf
before = rss_kib()
start = time.perf_counter()
reader = tf.train.load_checkpoint({prefix!r})
shapes = reader.get_variable_to_shape_map()
dtypes = reader.get_variable_to_dtype_map()
elapsed = time.perf_counter() - start
print(json.dumps({{"seconds": elapsed, "rss_growth_kib": rss_kib() - before, "entries": len(shapes)}}))
"""


def write_bundle(prefix: str, size_mb: int, entries: int):
    import numpy as np

    sys.path.insert(0, str(REPO))
    from sm_notebook.format.bundle import BundleWriter

    per_entry = size_mb * (1 << 20) // entries // 4
    rng = np.random.default_rng(0)
    with BundleWriter(prefix) as writer:
        for i in range(entries):
            writer.add(f"model/layer_{i:04d}/kernel/.ATTRIBUTES/VARIABLE_VALUE",
                       rng.standard_normal(per_entry, dtype=np.float32))


def measure(template: str, prefix: str, repeat: int) -> dict | None:
    runs = []
    for _ in range(repeat):
        done = subprocess.run([sys.executable, "-c", template.format(repo=str(REPO), prefix=prefix)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            if "No module named 'tensorflow'" in done.stderr:
                return None
            raise RuntimeError(done.stderr[-2000:])
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    return {"seconds": statistics.median(r["seconds"] for r in runs),
            "rss_growth_kib": statistics.median(r["rss_growth_kib"] for r in runs),
            "entries": runs[0]["entries"]}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=200)
    parser.add_argument("--entries", type=int, default=400)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        prefix = os.path.join(tmp, "variables", "variables")
        write_bundle(prefix, args.size_mb, args.entries)
        data_bytes = sum(p.stat().st_size for p in Path(prefix).parent.iterdir())
        ours = measure(OURS, prefix, args.repeat)
        theirs = measure(THEIRS, prefix, args.repeat)
    print(f"bundle: {data_bytes / (1 << 20):.1f} MiB on disk, {args.entries} entries; "
          f"median of {args.repeat} fresh processes, page cache warm")
    print(f"{'reader':<34}{'open+list (ms)':>16}{'RSS growth (MiB)':>18}")
    print(f"{'sm_notebook BundleReader':<34}{ours['seconds'] * 1e3:>16.2f}"
          f"{ours['rss_growth_kib'] / 1024:>18.2f}")
    if theirs is None:
        print("tf.train.load_checkpoint: TensorFlow not installed")
        return
    print(f"{'tf.train.load_checkpoint + maps':<34}{theirs['seconds'] * 1e3:>16.2f}"
          f"{theirs['rss_growth_kib'] / 1024:>18.2f}")
    print(f"ratio (sm_notebook / TensorFlow): {ours['seconds'] / theirs['seconds']:.1f}x the time, "
          f"{ours['rss_growth_kib'] / max(theirs['rss_growth_kib'], 1):.1f}x the memory growth")


if __name__ == "__main__":
    main()
