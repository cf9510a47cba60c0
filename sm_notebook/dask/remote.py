"""Exports behind fsspec URLs (``s3://``, ``gs://``, ``abfs://``, ``zip://...::file://...``).

The client reads only what describes the model (saved_model.pb, the variables index,
fingerprint.pb, the assets) to check the signature and fingerprint the export; each
worker copies the whole export once into a local cache directory keyed by the URL and
that fingerprint, then loads it from there like any local path. Copies are made in a
staging directory and renamed into place, so a half-copied export is never loaded;
remote names that would land outside the cache directory are refused.
"""
from __future__ import annotations

import hashlib
import os
import posixpath
import shutil
import tempfile
from pathlib import Path

from ..errors import SavedModelError
from ..format import savedmodel as files

#: The files that describe an export (what `model_fingerprint` reads), relative to its root.
DESCRIBING_FILES = (files.SAVED_MODEL_PB, files.SAVED_MODEL_PBTXT,
                    files.VARIABLES_PREFIX + ".index", files.FINGERPRINT_PB)


def is_url(path) -> bool:
    """True for ``scheme://...`` paths other than ``file://`` (fsspec chains included)."""
    text = os.fspath(path)
    return isinstance(text, str) and "://" in text and not text.startswith("file://")


def cache_root() -> Path:
    """Where remote exports are copied: ``$SM_NOTEBOOK_CACHE`` or ``~/.cache/sm_notebook``."""
    base = os.environ.get("SM_NOTEBOOK_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "sm_notebook")
    return Path(base) / "remote_models"


def _filesystem(url: str):
    try:
        import fsspec
    except ImportError:
        raise SavedModelError(f"model_path {url!r} is a URL; reading it needs fsspec and the "
                              "protocol's package (e.g. pip install s3fs for s3://).") from None
    try:
        return fsspec.core.url_to_fs(url)
    except (ImportError, ValueError) as exc:
        raise SavedModelError(f"model_path {url!r}: fsspec cannot open this URL ({exc}). Install "
                              "the protocol's package (s3fs, gcsfs, adlfs, ...) on the client "
                              "and every worker.") from None


def _relative(root: str, name: str, url: str) -> str:
    """``name`` relative to ``root``, refusing anything that would leave the export."""
    rel = posixpath.relpath(name, root) if root else name
    if rel.startswith("..") or posixpath.isabs(rel) or "\\" in rel or rel in (".", ""):
        raise SavedModelError(f"The export at {url!r} lists {name!r}, which is not inside it; "
                              "refusing to copy it.")
    return rel


def _copy(url: str, target: Path, wanted=None) -> None:
    """Copy the export at ``url`` (or only the relative paths ``wanted`` plus assets/) into
    ``target`` through a staging directory renamed into place."""
    fs, root = _filesystem(url)
    root = root.rstrip("/")
    try:
        if not fs.isdir(root):
            raise SavedModelError(f"model_path {url!r} is not a directory holding a SavedModel.")
        names = fs.find(root, detail=False)
    except (OSError, ValueError) as exc:
        raise SavedModelError(f"Cannot list the export at {url!r}: {exc}.") from None
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=target.parent))
    try:
        for name in names:
            rel = _relative(root, name, url)
            if wanted is not None and rel not in wanted and not rel.startswith(files.ASSETS_DIR + "/"):
                continue
            local = staging.joinpath(*rel.split("/"))
            local.parent.mkdir(parents=True, exist_ok=True)
            with fs.open(name, "rb") as source, open(local, "wb") as sink:
                shutil.copyfileobj(source, sink, 1 << 20)
        try:
            os.rename(staging, target)
        except OSError:  # another process (or thread) placed the same copy first
            if not target.is_dir():
                raise
    except OSError as exc:
        raise SavedModelError(f"Cannot copy the export at {url!r} to {target}: {exc}.") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _url_dir(url: str) -> Path:
    return cache_root() / hashlib.blake2b(url.encode(), digest_size=12).hexdigest()


def describing_copy(url: str) -> Path:
    """A fresh local copy of the files that describe the export at ``url`` (no variable
    data), for reading its signatures and fingerprint on the client."""
    target = _url_dir(url) / f"describe-{os.getpid()}-{os.urandom(4).hex()}"
    _copy(url, target, wanted=set(DESCRIBING_FILES))
    return target


def local_copy(url: str, fingerprint: str, model_fingerprint) -> Path:
    """The whole export at ``url`` in the local cache (copied on first use), checked against
    ``fingerprint``; ``model_fingerprint(path)`` computes a local export's fingerprint."""
    target = _url_dir(url) / fingerprint
    if not target.is_dir():
        _copy(url, target)
    found = model_fingerprint(target)
    if found != fingerprint:
        shutil.rmtree(target, ignore_errors=True)
        raise SavedModelError(
            f"The export at {url!r} changed while it was being read (fingerprint {found} != "
            f"{fingerprint}). Call predict() again once it is complete.")
    return target
