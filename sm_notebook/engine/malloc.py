"""Keep freed numpy buffers in the process instead of returning them to the OS (glibc only).

A plan run allocates and frees the same intermediates on every call. With glibc's
defaults, freed memory at the top of the heap is trimmed back to the OS and arrays of
128 KiB or more get their own mmap, so each call pays page faults (and, with BLAS
threads running, TLB shootdowns) for memory it just had; on small models that is most
of the time. TensorFlow avoids it with its own allocator. `keep_freed_memory` raises
glibc's trim and mmap thresholds once per process, when the first model is loaded on
the numpy backend: the peak memory is unchanged, but the process keeps it afterwards.
Set ``SM_NOTEBOOK_MALLOC_DEFAULTS=1`` to leave the allocator as it is.
"""
from __future__ import annotations

import os
import sys

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
TRIM_THRESHOLD = 512 * 2**20  # freed heap memory kept before trimming
MMAP_THRESHOLD = 32 * 2**20   # arrays below this come from the heap (glibc's maximum)

_done = False


def keep_freed_memory() -> bool:
    """Raise glibc's trim and mmap thresholds (once); False where that does not apply."""
    global _done
    if _done:
        return True
    _done = True
    if not sys.platform.startswith("linux") or os.environ.get("SM_NOTEBOOK_MALLOC_DEFAULTS") == "1":
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl, ...)
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)) and bool(
        mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD))
