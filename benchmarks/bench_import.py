"""`import sm_notebook` versus `import tensorflow`, whole interpreter start-up, side by side.

    python benchmarks/bench_import.py [runs]

Runs are interleaved so machine noise hits both equally; medians are reported,
with `python -c pass` as the interpreter's own floor.
"""
import statistics
import subprocess
import sys
import time

COMMANDS = {
    "python -c pass": "pass",
    "import sm_notebook": "import sm_notebook",
    "import sm_notebook (eager)": "import sm_notebook.inspection, sm_notebook.format.bundle, sm_notebook.engine.loader",
    "import tensorflow": "import tensorflow",
}


def time_once(code: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
    return time.perf_counter() - start


def main(runs: int = 7) -> None:
    samples = {name: [] for name in COMMANDS}
    for _ in range(runs):
        for name, code in COMMANDS.items():
            samples[name].append(time_once(code))
    medians = {name: statistics.median(values) for name, values in samples.items()}
    floor = medians["python -c pass"]
    print(f"{'command':22} {'median s':>9} {'minus interpreter':>18}")
    for name, value in medians.items():
        print(f"{name:22} {value:9.3f} {value - floor:18.3f}")
    ours = max(medians["import sm_notebook (eager)"] - floor, 1e-3)
    theirs = medians["import tensorflow"] - floor
    print(f"import sm_notebook: {medians['import sm_notebook'] * 1000:.0f} ms whole process "
          f"(target < 300 ms); with format, inspection and engine modules loaded eagerly "
          f"{ours * 1000:.0f} ms over the interpreter; import tensorflow takes {theirs / ours:.0f}x that")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 7)
