"""Scoring at scale with Dask: sm_notebook workers vs TensorFlow workers, same cluster, same run.

For each model, the same dask graph (random inputs made on the workers, chunked by
rows) is scored three ways and timed end to end (rows per second):
  1. sm_notebook, single process: ``sm_notebook.dask.predict(...).compute(scheduler="sync")``
  2. sm_notebook on a LocalCluster of N worker processes (1 thread each)
  3. TensorFlow inside ``map_blocks`` on a second, identical LocalCluster
     (``tf.saved_model.load`` once per worker process, then the signature per batch)
Both clusters' workers are started fresh for each job and stay alive side by side, so each
side's peak RSS per worker (VmHWM of the worker process, read with ``client.run``) is its
own and warm passes alternate (ours, TF, ours, TF, ...): load from other processes falls on
both sides alike. A first "cold" pass includes each worker loading the model; the warm
figure is the median of the warm passes (the MLP's last a fraction of a second each, so it
has 21). The workers' CPU seconds over all passes tell work (rows per CPU-second) from the
share of a busy machine each side got (cores while passing).

    python benchmarks/bench_dask.py                       # 200,000 MLP rows, 20,000 images
    python benchmarks/bench_dask.py --mlp-rows 20000 --images 1000   # a quick look
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
MODELS = ROOT / "tests" / "fixtures" / "models"

JOBS = {  # name -> fixture, signature input, output, rows per chunk, rows per batch, warm passes
    "mlp": ("keras3_mlp", "features", "output_0", 10_000, None, 21),
    # 100 images (11 MB) a chunk, 20 a batch, on both sides: a worker's peak memory is mostly
    # the chunk it scores and one batch's activations, whichever runtime scores them
    "mobilenetv2": ("keras3_mobilenetv2", "keras_tensor_12", "output_0", 100, 20, 3),
}


def _worker_memory():
    """(peak RSS, current RSS) of this worker process in MiB: VmHWM from /proc (Linux),
    the current RSS from psutil."""
    import psutil
    with open("/proc/self/status") as status:
        peak_kib = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    return peak_kib / 1024, psutil.Process().memory_info().rss / 2**20


def _worker_cpu_s() -> float:
    """CPU seconds this worker process has used (every thread, user and system)."""
    times = os.times()
    return times.user + times.system


def _tf_score(block, path, key, input_name, output_name, batch_size):
    """Score a block with TensorFlow, the model loaded once per worker process."""
    import sys
    import types
    cache = sys.modules.get("_bench_dask_tensorflow")
    if cache is None:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        import tensorflow as tf
        cache = types.ModuleType("_bench_dask_tensorflow")
        cache.tf, cache.function = tf, tf.saved_model.load(path).signatures[key]
        sys.modules["_bench_dask_tensorflow"] = cache
    step = batch_size or max(len(block), 1)
    pieces = [cache.function(**{input_name: cache.tf.constant(block[i:i + step])})[output_name].numpy()
              for i in range(0, len(block), step)]
    return np.concatenate(pieces)


def _inputs(path: Path, input_name: str, rows: int, chunk_rows: int):
    import dask.array as da

    import sm_notebook
    spec = sm_notebook.inspect(path).signature("serving_default").inputs[input_name]
    shape = (rows,) + tuple(spec.shape[1:])
    return da.random.default_rng(0).random(shape, chunks=(chunk_rows,) + shape[1:], dtype="float32")


def _timed(compute) -> tuple[float, object]:
    start = time.perf_counter()
    result = compute()
    return time.perf_counter() - start, result


def run_job(clusters: dict, name: str, rows: int, warm_passes: int | None) -> dict:
    import distributed

    import sm_notebook.dask as smd

    fixture, input_name, output_name, chunk_rows, batch_size, default_passes = JOBS[name]
    path = MODELS / fixture
    data = _inputs(path, input_name, rows, min(chunk_rows, rows))
    ours = smd.predict(path, data, batch_size=batch_size, outputs=output_name)
    output_shape = ours.shape[1:]
    theirs = data.map_blocks(_tf_score, str(path), "serving_default", input_name, output_name,
                             batch_size, dtype="float32", drop_axis=list(range(1, data.ndim)),
                             new_axis=list(range(1, 1 + len(output_shape))),
                             chunks=(data.chunks[0],) + tuple((d,) for d in output_shape))
    figures = {"job": name, "rows": rows, "chunk_rows": min(chunk_rows, rows), "batch_size": batch_size,
               "load_before": os.getloadavg()}
    figures["single_s"], single = _timed(lambda: ours.compute(scheduler="sync"))

    clients = {side: distributed.Client(cluster, set_as_default=False) for side, cluster in clusters.items()}
    try:
        for client in clients.values():
            client.restart(timeout=900)
        jobs = {"ours": ours, "tf": theirs}
        for side, client in clients.items():
            figures[f"{side}_base_mib"] = client.run(_worker_memory)
            figures[f"{side}_cpu_s"] = -sum(client.run(_worker_cpu_s).values())
        results = {}
        for side, client in clients.items():
            figures[f"{side}_cold_s"], results[side] = _timed(lambda: client.compute(jobs[side]).result())
        for side in clients:
            figures[f"{side}_warm_s"] = []
        for _ in range(warm_passes or default_passes):
            for side, client in clients.items():
                figures[f"{side}_warm_s"].append(_timed(lambda: client.compute(jobs[side]).result())[0])
        for side, client in clients.items():
            figures[f"{side}_workers_mib"] = client.run(_worker_memory)
            figures[f"{side}_cpu_s"] += sum(client.run(_worker_cpu_s).values())
    finally:
        for client in clients.values():
            client.close()
    # bit for bit against one process with the workers' one engine thread (the split of large
    # products follows the thread count, which can move the last bit), on the first chunks
    import sm_notebook
    head = sum(data.chunks[0][:3])
    sm_notebook.set_num_threads(1)
    try:
        np.testing.assert_array_equal(results["ours"][:head], ours[:head].compute(scheduler="sync"))
    finally:
        sm_notebook.set_num_threads(None)
    figures["max_abs_diff_vs_single"] = float(np.abs(results["ours"] - single).max())
    figures["max_abs_diff_vs_tf"] = float(np.abs(results["tf"] - single).max())
    figures["load_after"] = os.getloadavg()
    return figures


def report(f: dict) -> None:
    rate = {k: f["rows"] / f[f"{k}_s"] for k in ("single", "ours_cold", "tf_cold")}
    for side in ("ours", "tf"):
        rate[f"{side}_warm"] = f["rows"] / float(np.median(f[f"{side}_warm_s"]))
    pairs = [t / o for o, t in zip(f["ours_warm_s"], f["tf_warm_s"])]
    ours_peak = max(p for p, _ in f["ours_workers_mib"].values())
    tf_peak = max(p for p, _ in f["tf_workers_mib"].values())
    base = max(p for p, _ in f["ours_base_mib"].values())
    print(f"\n{f['job']}: {f['rows']} rows, chunks of {f['chunk_rows']}, batch {f['batch_size']}; "
          f"load average {f['load_before'][0]:.1f} before, {f['load_after'][0]:.1f} after")
    print(f"  rows/s  single process (sync)    {rate['single']:10.0f}")
    print(f"  rows/s  sm_notebook, 2 workers   {rate['ours_warm']:10.0f} warm  {rate['ours_cold']:10.0f} cold"
          f"   ({rate['ours_warm'] / rate['single']:.2f}x single process)")
    print(f"  rows/s  TensorFlow, 2 workers    {rate['tf_warm']:10.0f} warm  {rate['tf_cold']:10.0f} cold")
    print(f"  throughput ours / TF: warm {rate['ours_warm'] / rate['tf_warm']:.2f} (median of "
          f"{len(pairs)} alternating passes; pass by pass {min(pairs):.2f}..{max(pairs):.2f}, "
          f"median {float(np.median(pairs)):.2f}), "
          f"cold {rate['ours_cold'] / rate['tf_cold']:.2f}")
    passes = 1 + len(pairs)
    wall = {side: f[f"{side}_cold_s"] + sum(f[f"{side}_warm_s"]) for side in ("ours", "tf")}
    print("  workers' CPU over all passes: " + ", ".join(
        f"{label} {f['rows'] * passes / f[f'{side}_cpu_s']:.0f} rows per CPU-second "
        f"({f[f'{side}_cpu_s'] / wall[side]:.2f} cores while passing)"
        for side, label in (("ours", "sm_notebook"), ("tf", "TensorFlow"))))
    print(f"  peak RSS per worker: sm_notebook {ours_peak:.0f} MiB, TensorFlow {tf_peak:.0f} MiB "
          f"(ratio {ours_peak / tf_peak:.2f}; a fresh worker: {base:.0f} MiB)")
    print(f"  max |ours - TF| = {f['max_abs_diff_vs_tf']:.2e}; max |cluster - single process| = "
          f"{f['max_abs_diff_vs_single']:.2e} (equal bit for bit on the first chunks with one thread)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mlp-rows", type=int, default=200_000)
    parser.add_argument("--images", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--jobs", nargs="*", default=list(JOBS), choices=list(JOBS))
    parser.add_argument("--warm-passes", type=int, help="warm passes per side (default: 21 MLP, 3 MobileNetV2)")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))

    import distributed
    clusters = {side: distributed.LocalCluster(n_workers=args.workers, processes=True,
                                               threads_per_worker=1, dashboard_address=":0",
                                               silence_logs=50) for side in ("ours", "tf")}
    logging.getLogger("distributed").setLevel(logging.CRITICAL)  # the second cluster's start resets it
    results = []
    try:
        for name in args.jobs:
            rows = args.mlp_rows if name == "mlp" else args.images
            results.append(run_job(clusters, name, rows, args.warm_passes))
            report(results[-1])
    finally:
        for cluster in clusters.values():
            cluster.close()
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1, default=str))


if __name__ == "__main__":
    main()
