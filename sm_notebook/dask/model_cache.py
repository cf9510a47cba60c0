"""The per-process model cache of Dask workers: each model loaded once, counted.

A cache entry is keyed by the export's resolved path, its fingerprint (a digest of the
files, see `model_fingerprint`), the tag-set and the backend. A lock makes loading and
running safe when a worker runs several threads; the engine runs one call at a time
per loaded model.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import threading
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from ..errors import SavedModelError
from ..format import savedmodel as files
from .remote import describing_copy, is_url, local_copy


@dataclass(frozen=True)
class ModelKey:
    """What identifies one loaded model in a worker process."""
    path: str
    fingerprint: str
    tags: tuple | None
    backend: str


class CachedModel:
    """A loaded model and the lock that serialises calls into it."""

    def __init__(self, model):
        self.model = model
        self.lock = threading.Lock()


_CACHE: dict[ModelKey, CachedModel] = {}
_LOADS: Counter = Counter()
_CACHE_LOCK = threading.Lock()


def model_fingerprint(export_dir) -> str:
    """A digest of the files that decide what a model computes.

    saved_model.pb (or .pbtxt), variables/variables.index (which holds every tensor's
    CRC32C, so changed values show), fingerprint.pb when present and each asset file.
    """
    root = Path(export_dir)
    digest = hashlib.blake2b(digest_size=16)
    parts = [files.saved_model_path(root), root / (files.VARIABLES_PREFIX + ".index"),
             root / files.FINGERPRINT_PB]
    parts += [root / files.ASSETS_DIR / name for name in files.list_asset_files(root)]
    for path in parts:
        if path.is_file():
            digest.update(str(path.relative_to(root)).encode() + b"\0")
            digest.update(path.read_bytes())
    return digest.hexdigest()


def get_model(key: ModelKey) -> CachedModel:
    """The model for ``key``, loaded on first use in this process (and counted)."""
    with _CACHE_LOCK:
        cached = _CACHE.get(key)
        if cached is None:
            import sm_notebook
            path = key.path
            if is_url(path):  # copied once into this machine's cache, checked against the fingerprint
                path = str(local_copy(path, key.fingerprint, model_fingerprint))
            elif (here := model_fingerprint(path)) != key.fingerprint:
                raise SavedModelError(
                    f"The model files at {key.path!r} seen by this process ({_where()}) differ from "
                    "those the client read when predict() was called (fingerprint "
                    f"{here} != {key.fingerprint}). Make every worker see the same export, "
                    "or call predict() again after re-exporting.")
            _threads_of_this_worker()
            model = sm_notebook.load(path, tags=list(key.tags) if key.tags is not None else None,
                                     backend=key.backend)
            cached = _CACHE[key] = CachedModel(model)
            _LOADS[key] += 1
        return cached


def model_loads() -> dict[tuple, int]:
    """How many times this process loaded each model: (path, fingerprint, tags, backend) -> n.

    Read it from every worker with ``client.run(sm_notebook.dask.model_loads)``.
    """
    with _CACHE_LOCK:
        return {(k.path, k.fingerprint, k.tags, k.backend): n for k, n in _LOADS.items()}


def clear_model_cache() -> int:
    """Drop this process's cached models (the load counts stay); returns how many were dropped.

    On a cluster: ``client.run(sm_notebook.dask.clear_model_cache)``.
    """
    with _CACHE_LOCK:
        dropped = len(_CACHE)
        _CACHE.clear()
        return dropped


def check_model_files(path: str, fingerprint: str) -> str | None:
    """None when this process reads the same export as the client, else what is wrong
    (run on every worker through ``client.run`` before a job is scheduled)."""
    try:
        if is_url(path):
            described = describing_copy(path)
            try:
                here = model_fingerprint(described)
            finally:
                shutil.rmtree(described, ignore_errors=True)
        else:
            here = model_fingerprint(path)
    except (SavedModelError, OSError) as exc:
        return str(exc)
    if here != fingerprint:
        return f"the files differ from the client's (fingerprint {here} != {fingerprint})"
    return None


def _threads_of_this_worker() -> None:
    """In a distributed worker, let the engine use as many cores as the worker has threads
    (Dask gives each worker its share of the machine; two single-thread workers whose
    engines both spread over every core only compete), unless the user capped it."""
    if os.environ.get("SM_NOTEBOOK_NUM_THREADS"):
        return
    try:
        from distributed import get_worker
        worker = get_worker()
        threads = getattr(getattr(worker, "state", None), "nthreads", None) or worker.nthreads
    except (ImportError, ValueError, AttributeError):
        return
    if not threads:
        return
    import sm_notebook
    sm_notebook.set_num_threads(max(1, int(threads)))


def _where() -> str:
    try:
        from distributed import get_worker
        return f"worker {get_worker().address}"
    except (ImportError, ValueError):
        return f"process {os.getpid()}"
