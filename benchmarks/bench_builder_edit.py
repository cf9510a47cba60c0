"""Editing a SavedModel with ~500 MB of variables: wall time and peak memory of the process.

    python benchmarks/bench_builder_edit.py [total_mb]

Writes a TF1-style model whose checkpoint holds ``total_mb`` MB of float32 variables
(Builder + BundleWriter), then, each in a fresh subprocess, reads it with
Builder.from_saved_model, renames a signature and saves it: to a new directory
(shards hard-linked), to a new directory with hard links refused (shards streamed
in chunks), and in place. Peak RSS (ru_maxrss) is compared with the variables' size
and with a process that only imports sm_notebook. The model is made in its own
subprocess: children inherit the peak RSS of the process that starts them.
"""
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CHILD = textwrap.dedent("""
    import os, resource, sys, time
    sys.path.insert(0, {root!r})
    mode, source, target = sys.argv[1], sys.argv[2], sys.argv[3]
    import numpy
    import sm_notebook
    from sm_notebook.builder import Builder, writer
    from sm_notebook.format import bundle
    if mode == "import only":
        print(0.0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
        sys.exit(0)
    if mode == "streamed copy":
        def refuse(*args, **kwargs):
            raise OSError("hard links disabled for this run")
        os.link = refuse
    start = time.perf_counter()
    builder = Builder.from_saved_model(source)
    builder.rename_signature("serving_default", "predict")
    builder.save(target, overwrite=(mode == "in place"))
    elapsed = time.perf_counter() - start
    print(elapsed, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
""")


def make_model(path: Path, total_mb: int) -> int:
    """A model with 8 equal float32 variables adding up to ``total_mb`` MB; returns bytes."""
    from sm_notebook.builder import Builder, Graph
    per_variable = total_mb * 2**20 // 8 // 4
    columns = 1024
    rows = per_variable // columns
    g = Graph()
    x = g.placeholder("x", "float32", (None, columns))
    total = None
    for i in range(8):
        value = np.full((rows, columns), 0.001 * i, np.float32)
        variable = g.variable(f"layer_{i}/kernel", value)
        part = g.op("Sum", g.op("MatMul", x, variable, transpose_b=True), [1])
        total = part if total is None else g.op("AddV2", total, part)
        del value
    builder = Builder(graph=g)
    builder.add_signature("serving_default", {"x": x}, {"y": total})
    builder.save(path)
    return sum(p.stat().st_size for p in (path / "variables").iterdir())


def make_model_in_subprocess(path: Path, total_mb: int) -> int:
    """make_model in a child, so this process (whose peak RSS children inherit) stays small."""
    code = (f"import sys; sys.path.insert(0, {str(ROOT / 'benchmarks')!r}); "
            f"import bench_builder_edit as b; from pathlib import Path; "
            f"print(b.make_model(Path({str(path)!r}), {total_mb}))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    return int(result.stdout.split()[-1])


def run_child(mode: str, source: Path, target: Path) -> tuple[float, int]:
    result = subprocess.run([sys.executable, "-c", CHILD.format(root=str(ROOT)), mode,
                             str(source), str(target)], capture_output=True, text=True, check=True)
    seconds, rss_kib = result.stdout.split()
    return float(seconds), int(rss_kib) * 1024


def main(total_mb: int = 500):
    work = Path(tempfile.mkdtemp(prefix="bench_builder_edit_"))
    try:
        source = work / "model"
        start = time.perf_counter()
        size = make_model_in_subprocess(source, total_mb)
        print(f"wrote a model with {size / 2**20:.0f} MiB of variables in "
              f"{time.perf_counter() - start:.1f} s\n")
        rows = []
        for mode in ("import only", "hard-linked", "streamed copy", "in place"):
            target = source if mode == "in place" else work / mode.replace(" ", "_")
            seconds, rss = run_child(mode, source, target)
            rows.append((mode, seconds, rss))
            if mode != "in place" and target.exists():
                shutil.rmtree(target)
        baseline = rows[0][2]
        print(f"{'save mode':16} {'wall s':>8} {'peak RSS MiB':>13} {'over import MiB':>16} "
              f"{'peak RSS / variables':>21}")
        for mode, seconds, rss in rows:
            print(f"{mode:16} {seconds:8.2f} {rss / 2**20:13.1f} {(rss - baseline) / 2**20:16.1f} "
                  f"{rss / size:21.3f}")
        print(f"\nvariables: {size / 2**20:.0f} MiB; a process that loaded them would peak above "
              f"{(size + baseline) / 2**20:.0f} MiB.")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 500)
