"""Count the engine's host<->device copies during calls, at its two crossing points.

`sm_notebook.engine.backend.Backend.asarray` (host -> backend) and `.to_numpy`
(backend -> host) are where inputs enter, outputs leave and host-only kernels
cross. A kernel that calls ``ctx.xp.asarray`` on a host array directly is not
counted here: the timing comparison in bench_gpu.py covers what this misses.
"""
from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field

from gpu_env import is_host_array, synchronize


@dataclass
class TransferCount:
    to_device: int = 0
    to_host: int = 0
    bytes_to_device: int = 0
    bytes_to_host: int = 0
    seconds: float = 0.0
    where: dict = field(default_factory=dict)   # "to_device <dtype>" -> count

    def as_dict(self, calls: int = 1) -> dict:
        return {"to_device_per_call": self.to_device / calls, "to_host_per_call": self.to_host / calls,
                "bytes_to_device_per_call": self.bytes_to_device / calls,
                "bytes_to_host_per_call": self.bytes_to_host / calls,
                "seconds_per_call": self.seconds / calls, "by_dtype": self.where}


@contextmanager
def counting_transfers(model):
    """Count (and time) Backend.asarray/to_numpy of ``model``'s backend inside the block."""
    backend = model._runtime.ctx.backend
    count = TransferCount()
    original_asarray, original_to_numpy = backend.asarray, backend.to_numpy

    def asarray(value, dtype=None):
        start = time.perf_counter()
        result = original_asarray(value, dtype)
        if not is_host_array(result):
            synchronize(backend.name)
            count.to_device += 1
            count.bytes_to_device += int(getattr(result, "nbytes", 0) or 0)
            key = f"to_device {getattr(result, 'dtype', '?')}"
            count.where[key] = count.where.get(key, 0) + 1
            count.seconds += time.perf_counter() - start
        return result

    def to_numpy(array):
        start = time.perf_counter()
        result = original_to_numpy(array)
        if not is_host_array(array):
            count.to_host += 1
            count.bytes_to_host += int(result.nbytes)
            key = f"to_host {result.dtype}"
            count.where[key] = count.where.get(key, 0) + 1
            count.seconds += time.perf_counter() - start
        return result

    backend.asarray, backend.to_numpy = asarray, to_numpy
    try:
        yield count
    finally:
        del backend.asarray, backend.to_numpy  # back to the class's methods
