"""What the GPU drivers share: the backend under test, device facts, result files.

Backends: "cupy" (the GPU), or "numpy" / "array_api_strict" to run a driver end to
end on a machine without a GPU (array_api_strict stands in for a device namespace:
its arrays are not numpy arrays, as cupy's are not).
"""
from __future__ import annotations

import datetime
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures"
sys.path.insert(0, str(REPO))  # the checkout's sm_notebook, as the tests use it


def synchronize(backend: str) -> None:
    """Wait for queued device work (timings of asynchronous cupy calls need it)."""
    if backend == "cupy":
        import cupy
        cupy.cuda.Device().synchronize()


def is_host_array(value) -> bool:
    return isinstance(value, (np.ndarray, np.generic))


def to_host(value) -> np.ndarray:
    if is_host_array(value):
        return np.asarray(value)
    if hasattr(value, "get"):  # cupy
        return value.get()
    return np.asarray(value)


def device_arrays(feeds: dict, backend: str) -> dict:
    """The feeds moved onto the backend's device (numpy: unchanged)."""
    if backend == "cupy":
        import cupy
        return {k: cupy.asarray(v) for k, v in feeds.items()}
    if backend == "array_api_strict":
        import array_api_strict
        return {k: array_api_strict.asarray(v) for k, v in feeds.items()}
    return dict(feeds)


def environment(backend: str) -> dict:
    """Machine, versions and GPU facts for the result files (GPU model and date included)."""
    info = {"date_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "backend": backend, "python": platform.python_version(), "numpy": np.__version__,
            "machine": platform.machine(), "cpu_count": os.cpu_count()}
    try:
        import sm_notebook
        info["sm_notebook"] = f"{sm_notebook.__version__} ({Path(sm_notebook.__file__).parent})"
    except Exception as exc:  # recorded, not fatal
        info["sm_notebook"] = f"import failed: {exc}"
    try:
        info["git_commit"] = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True,
                                            text=True, timeout=10).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        info["git_commit"] = None
    if backend == "cupy":
        try:
            import cupy
            props = cupy.cuda.runtime.getDeviceProperties(0)
            name = props["name"]
            info.update(cupy=cupy.__version__, gpu=name.decode() if isinstance(name, bytes) else name,
                        gpu_memory_gib=round(props["totalGlobalMem"] / 2**30, 1),
                        cuda_runtime=cupy.cuda.runtime.runtimeGetVersion(),
                        cuda_driver=cupy.cuda.runtime.driverGetVersion())
        except Exception as exc:
            info["gpu"] = f"unavailable: {type(exc).__name__}: {exc}"
    return info


def write_json(path, payload) -> None:
    """Write atomically, so a driver killed by its timeout leaves the last complete file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(path.suffix + ".partial")
    partial.write_text(json.dumps(payload, indent=1, default=str))
    os.replace(partial, path)
