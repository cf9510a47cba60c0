"""BLAS threads per operation: small matrix products single-threaded, large ones on the
cores the machine has free, so a busy machine never leaves numpy's BLAS spin-waiting.

numpy's OpenBLAS splits every product above a small size over all cores in equal parts
and the caller waits for the slowest; when another process holds one of the cores, that
part waits for the scheduler and the call takes many times longer (MobileNetV2 at batch 8
went from 22 ms to 240 ms on a 2-core machine with one busy core). Kernels call
`for_product(m * n * k)` before a large product; a plan run ends with `restore()`, which
gives the caller's thread count back. The count for large products is the user's cap
(`set_num_threads`, or ``SM_NOTEBOOK_NUM_THREADS``), else the cores this process may use
minus the load other processes put on them, sampled from ``/proc/stat`` at most twice a
second. Without OpenBLAS or MKL in the process (or without ``/proc``) nothing changes.
"""
from __future__ import annotations

import ctypes
import os
import time

from ..errors import SavedModelError

#: m * n * k at or below which OpenBLAS computes a product on one thread anyway
OPENBLAS_SINGLE_THREAD_MNK = 65536 * 4
#: m * n * k from which a product is split over several threads (~0.3 ms on one core:
#: waking and joining the threads is then a few percent of the work)
THREADED_MNK = 1 << 24
#: seconds between two samples of the machine's load
SAMPLE_INTERVAL = 0.5
#: load of other processes (in cores) tolerated per extra thread; above it, one thread fewer
SPARE_CORE_SLACK = 0.2

_SETTERS = ("scipy_openblas_set_num_threads64_", "scipy_openblas_set_num_threads",
            "openblas_set_num_threads64_", "openblas_set_num_threads", "MKL_Set_Num_Threads")
_GETTERS = ("scipy_openblas_get_num_threads64_", "scipy_openblas_get_num_threads",
            "openblas_get_num_threads64_", "openblas_get_num_threads", "MKL_Get_Max_Threads")


def _find_library():
    """(set, get) C functions of the BLAS loaded in this process, or None."""
    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if "/" in line
                     and ("openblas" in line.lower() or "mkl_rt" in line)}
    except OSError:
        return None
    for path in sorted(paths):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        setter = next((getattr(lib, n) for n in _SETTERS if hasattr(lib, n)), None)
        getter = next((getattr(lib, n) for n in _GETTERS if hasattr(lib, n)), None)
        if setter is not None and getter is not None:
            setter.argtypes, setter.restype = [ctypes.c_int], None
            getter.argtypes, getter.restype = [], ctypes.c_int
            return setter, getter
    return None


class _Load:
    """Cores free for this process: its CPU affinity minus other processes' recent load."""

    def __init__(self):
        try:
            self.cores = len(os.sched_getaffinity(0))
        except (AttributeError, OSError):
            self.cores = os.cpu_count() or 1
        self.tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        self.last = None      # (wall, machine busy seconds, own cpu seconds, machine cores)
        self.free = 1.0       # until a first interval is measured, one core

    def _sample(self):
        try:
            with open("/proc/stat") as stat:
                lines = stat.read().split("\n")
        except OSError:
            return None
        fields = [int(v) for v in lines[0].split()[1:]]
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
        machine_cores = sum(1 for line in lines[1:] if line.startswith("cpu"))
        own = os.times()
        return (time.monotonic(), (sum(fields[:8]) - idle) / self.tick,
                own.user + own.system, max(machine_cores, 1))

    def free_cores(self) -> float:
        now = time.monotonic()
        if self.last is not None and now - self.last[0] < SAMPLE_INTERVAL:
            return self.free
        sample = self._sample()
        if sample is None:
            self.free = float(self.cores)
            self.last = (now, 0.0, 0.0, 1)
            return self.free
        if self.last is not None and self.last[1]:
            wall = sample[0] - self.last[0]
            others = (sample[1] - self.last[1]) - (sample[2] - self.last[2])
            # other processes' load spread evenly over the machine's cores
            others_here = max(0.0, others / wall) * min(1.0, self.cores / sample[3])
            self.free = max(1.0, self.cores - others_here)
        self.last = sample
        return self.free


class BlasThreads:
    """The thread count numpy's BLAS uses for the product about to run (one per process)."""

    def __init__(self):
        self._lib = None
        self._found = False
        self.cap = _env_cap()
        self.load = _Load()
        self.current = None    # the count last set by this module
        self.caller = None     # the count the caller had before the run changed it

    def _functions(self):
        if not self._found:
            self._found = True
            self._lib = _find_library()
        return self._lib

    def threads_for(self, mnk: int) -> int:
        """Threads a product of m * n * k multiply-adds should use now."""
        if mnk < THREADED_MNK:
            return 1
        if self.cap is not None:
            return self.cap
        return max(1, int(self.load.free_cores() + SPARE_CORE_SLACK))

    def for_product(self, mnk: int) -> None:
        """Set the BLAS thread count for a product of m * n * k multiply-adds (only when it
        changes; products OpenBLAS keeps on one thread anyway are left alone)."""
        if mnk <= OPENBLAS_SINGLE_THREAD_MNK:
            return
        threads = self.threads_for(mnk)
        if threads == self.current:
            return
        functions = self._functions()
        if functions is None:
            return
        setter, getter = functions
        if self.caller is None:
            self.caller = getter()
        setter(threads)
        self.current = threads

    def restore(self) -> None:
        """Give the caller's thread count back after a run that changed it."""
        if self.caller is not None:
            caller, self.caller = self.caller, None
            if caller != self.current:
                self._lib[0](caller)
            self.current = None


def _env_cap():
    text = os.environ.get("SM_NOTEBOOK_NUM_THREADS", "").strip()
    if not text:
        return None
    try:
        value = int(text)
    except ValueError:
        return None
    return value if value >= 1 else None


BLAS = BlasThreads()


def set_num_threads(threads: int | None) -> None:
    """Cap the BLAS threads of large products at ``threads`` (1: everything on one core);
    ``None`` chooses from the cores other processes leave free (the default; the
    environment variable ``SM_NOTEBOOK_NUM_THREADS`` sets the starting cap)."""
    if threads is not None:
        threads = int(threads)
        if threads < 1:
            raise SavedModelError(f"set_num_threads({threads}): give a count of at least 1, "
                                  "or None to choose from the free cores.")
    BLAS.cap = threads
