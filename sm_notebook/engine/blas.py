"""BLAS threads per operation: small matrix products on one thread, large ones split into
parts that a few threads take one at a time, so a busy machine never leaves one thread
waiting for another.

numpy's OpenBLAS splits every product above a small size over all cores in equal parts
and the caller spin-waits for the slowest; when another process holds one of the cores,
that part waits for the scheduler and the call takes many times longer (MobileNetV2 at
batch 8 went from 22 ms to 240 ms on a 2-core machine with one busy core). Here numpy's
BLAS runs on one thread during a plan run; large products (`matmul`, `run_parts`) are cut
into row blocks that the calling thread and a few pool threads pull from a shared
counter, so a thread the scheduler holds back simply takes fewer blocks (TensorFlow's
thread pool degrades the same way); the blocks depend on the product alone, so results
are the same bits at any thread count. A large product that cannot be cut (few rows) uses
OpenBLAS's own threads when other processes leave cores free (``/proc/stat``, sampled at
most twice a second). The thread count is the user's cap (`set_num_threads`, or
``SM_NOTEBOOK_NUM_THREADS``), else the cores this process may use. A plan run ends with
`restore()`, which gives the caller's BLAS thread count back. Without OpenBLAS or MKL in
the process (or without ``/proc``) numpy's BLAS is left as it is.
"""
from __future__ import annotations

import ctypes
import os
import queue
import threading
import time

import numpy as np

from ..errors import SavedModelError

#: m * n * k at or below which OpenBLAS computes a product on one thread anyway
OPENBLAS_SINGLE_THREAD_MNK = 65536 * 4
#: m * n * k from which a product is split over several threads (~0.3 ms on one core:
#: waking and joining the threads is then a few percent of the work)
THREADED_MNK = 1 << 24
#: multiply-adds per part of a split product (~0.2 ms on one core: the part's Python
#: overhead and hand-over stay small), and the most parts of one product (each packs the
#: other operand again: 64 parts made VGG16's 4x4 and 2x2 im2col layers at batch 8 25%
#: slower). The cut depends on the product alone, never on the
#: thread count: each part is the same BLAS call at any count, so results are the same
#: bits at any count.
PART_MNK = 1 << 23
MAX_PARTS = 8
#: fewest rows of a part (columns, for column blocks): each part packs the other operand
#: again, which costs about as much as 1/16 of its rows' multiply-adds at full speed
MIN_PART_ROWS = 128
#: columns of a column block of a split product are a multiple of this (whole SIMD panels)
COLUMN_BLOCK = 16
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


class _Job:
    """One operation's parts: an iterator the threads share (``next`` of a range iterator is
    atomic under the GIL), a count of finished parts and the errors raised."""

    def __init__(self, run, count):
        self.run, self.count = run, count
        self.parts = iter(range(count))
        self.finished = 0
        self.errors: list = []
        self.lock = threading.Lock()
        self.all_done = threading.Event()

    def work(self):
        for i in self.parts:
            try:
                self.run(i)
            except BaseException as exc:  # noqa: BLE001 - raised by the calling thread
                self.errors.append(exc)
                self.finish(1 + sum(1 for _ in self.parts))  # the rest is not run
            else:
                self.finish(1)

    def finish(self, parts):
        with self.lock:
            self.finished += parts
            if self.finished == self.count:
                self.all_done.set()


class _Pool:
    """Daemon threads that help the calling thread through the parts of one operation. The
    caller waits only for parts a helper has started: a helper the scheduler has not run
    yet finds no parts left when it wakes, and nobody waits for it."""

    def __init__(self):
        self.jobs: queue.SimpleQueue = queue.SimpleQueue()
        self.threads: list = []
        self.lock = threading.Lock()

    def _work(self):
        while True:
            self.jobs.get().work()

    def run(self, run, count: int, helpers: int) -> None:
        """``run(i)`` for i in range(count) on this thread and up to ``helpers`` others;
        each thread takes the next part when it finishes one."""
        helpers = min(helpers, count - 1)
        if helpers <= 0 or not self.lock.acquire(blocking=False):  # nested or concurrent: inline
            for i in range(count):
                run(i)
            return
        try:
            while len(self.threads) < helpers:
                thread = threading.Thread(target=self._work, daemon=True,
                                          name=f"sm_notebook-blas-{len(self.threads)}")
                thread.start()
                self.threads.append(thread)
            job = _Job(run, count)
            for _ in range(helpers):
                self.jobs.put(job)
            job.work()
            job.all_done.wait()
            if job.errors:
                raise job.errors[0]
        finally:
            self.lock.release()


class BlasThreads:
    """The thread count numpy's BLAS uses and the split of large products (one per process)."""

    def __init__(self):
        self._lib = None
        self._found = False
        self.cap = _env_cap()
        self.load = _Load()
        self.pool = _Pool()
        self.current = None    # the count last set by this module
        self.caller = None     # the count the caller had before the run changed it

    def _functions(self):
        if not self._found:
            self._found = True
            self._lib = _find_library()
        return self._lib

    def threads(self) -> int:
        """Threads a split operation may use: the cap, else this process's cores."""
        return self.cap if self.cap is not None else self.load.cores

    def threads_for(self, mnk: int) -> int:
        """OpenBLAS threads for a product of m * n * k multiply-adds that is not split."""
        if mnk < THREADED_MNK:
            return 1
        if self.cap is not None:
            return self.cap
        return max(1, min(self.load.cores, int(self.load.free_cores() + SPARE_CORE_SLACK)))

    def _set(self, threads: int) -> None:
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

    def for_product(self, mnk: int) -> None:
        """Set the BLAS thread count for a product of m * n * k multiply-adds (only when it
        changes; products OpenBLAS keeps on one thread anyway are left alone)."""
        if mnk > OPENBLAS_SINGLE_THREAD_MNK:
            self._set(self.threads_for(mnk))

    def for_uncut(self, mnk: int) -> None:
        """`for_product` for a product that `parts` chose not to cut: one thread when it
        was too large (its rows too few to cut), so that it is computed the same way at any
        thread count."""
        if mnk >= THREADED_MNK:
            self._set(1)
        else:
            self.for_product(mnk)

    def parts(self, mnk: int, rows: int, unit_rows: int = 1) -> int:
        """How many blocks to cut a product of m * n * k multiply-adds into, along ``rows``
        units of ``unit_rows`` rows each (1: do not split): one per `PART_MNK`, at most
        `MAX_PARTS`, at least `MIN_PART_ROWS` rows each, whatever the thread count (one
        thread runs the parts one after the other)."""
        if mnk < THREADED_MNK or rows < 2:
            return 1
        return max(1, min(rows, MAX_PARTS, mnk // PART_MNK, rows * unit_rows // MIN_PART_ROWS))

    def run_parts(self, run, count: int, part_mnk: int) -> None:
        """``run(i)`` for each of ``count`` parts of m * n * k multiply-adds each, spread
        over the threads (numpy's BLAS on one thread meanwhile)."""
        if count > 1:
            self._set(1)
            self.pool.run(run, count, self.threads() - 1)
        else:
            self.for_uncut(part_mnk)
            run(0)

    def matmul(self, a, b, finish=None, align: int = 1, out=None):
        """``a @ b`` of 2-D numpy arrays, a large product cut into row blocks of ``a``, or
        into column blocks of ``b`` when ``a`` has fewer rows than ``b`` columns (every part
        packs the whole of the other operand again: the smaller one is repeated).
        ``finish(lo, hi)``, when given, runs on each row block of the result as soon as it is
        computed, on the same thread (its rows lo:hi counted in runs of ``align`` rows, which
        row blocks never split), and on the whole result after column blocks. ``out``: the result's array when given."""
        m, k = a.shape
        n = b.shape[1]
        by_columns = m < n
        units = m // align if align > 1 and m % align == 0 else m
        align = m // units if units else 1
        parts = self.parts(m * k * n, *((n // COLUMN_BLOCK, COLUMN_BLOCK) if by_columns else (units, align)))
        if parts == 1:
            self.for_uncut(m * k * n)
            out = np.matmul(a, b, out=out)
            if finish is not None:
                finish(0, units)
            return out
        if out is None:
            out = np.empty((m, n), dtype=np.result_type(a.dtype, b.dtype))
        if by_columns:
            bounds = [n // COLUMN_BLOCK * i // parts * COLUMN_BLOCK for i in range(parts)] + [n]

            def block(i):
                np.matmul(a, b[:, bounds[i]:bounds[i + 1]], out=out[:, bounds[i]:bounds[i + 1]])
            self.run_parts(block, parts, m * k * bounds[1])
            if finish is not None:  # few rows: the whole result is in cache, and contiguous
                finish(0, units)
            return out
        bounds = [units * i // parts for i in range(parts + 1)]

        def block(i):
            lo, hi = bounds[i] * align, bounds[i + 1] * align
            np.matmul(a[lo:hi], b, out=out[lo:hi])
            if finish is not None:
                finish(bounds[i], bounds[i + 1])
        self.run_parts(block, parts, bounds[1] * align * k * n)
        return out

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


def _after_fork():
    """A forked child has none of the parent's pool threads: start from an empty pool (jobs
    queued for threads that do not exist would keep their arrays alive)."""
    BLAS.pool = _Pool()
    BLAS.current = BLAS.caller = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)


def set_num_threads(threads: int | None) -> None:
    """Cap the threads of large products at ``threads`` (1: everything on one core); ``None``
    (the default): the cores this process may run on for split products, OpenBLAS's own
    threads only on cores other processes leave free. ``SM_NOTEBOOK_NUM_THREADS`` sets the
    starting cap."""
    if threads is not None:
        threads = int(threads)
        if threads < 1:
            raise SavedModelError(f"set_num_threads({threads}): give a count of at least 1, "
                                  "or None to choose from the free cores.")
    BLAS.cap = threads
