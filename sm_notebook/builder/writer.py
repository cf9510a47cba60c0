"""Write an export directory atomically: a temporary sibling directory, then renames.

Everything (saved_model.pb or .pbtxt, variables/, assets/, fingerprint.pb when it
is still valid, and the source's other files: assets.extra/, keras_metadata.pb) is written into a temporary directory
beside the target. Only then is the target replaced: the old directory is moved
aside, the new one renamed into place, and the old one deleted. Unchanged files
(checkpoint shards, assets) are hard-linked where the filesystem allows, else
copied in chunks, so a source directory being replaced (editing in place) keeps
its files until the final rename, and a failure before it leaves the target and
the source as they were.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from google.protobuf import text_format

from ..errors import SavedModelError
from ..format import savedmodel as files
from ..format.bundle import BundleReader, BundleWriter, copy_bundle, index_filename


@dataclass
class ExportPlan:
    """What to write; paths are absolute."""
    saved_model: object                          # the SavedModel proto
    as_text: bool = False
    verbatim_pb: bytes | None = None             # write these bytes instead of serializing
    fingerprint: bytes | None = None             # a fingerprint.pb known to be valid
    fresh_fingerprint: bool = False              # compute fingerprint.pb for the written files
    variables_prefix: Path | None = None         # existing checkpoint to carry over
    new_variables: list = field(default_factory=list)   # (key, array, dtype enum)
    assets: dict = field(default_factory=dict)   # relative name -> source file
    extra_files: dict = field(default_factory=dict)   # other files (assets.extra/, keras_metadata.pb)


def link_or_copy(source: Path, target: Path):
    """Hard-link ``source`` to ``target``, or copy it in chunks where links are refused."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def _fsync_file(path: Path):
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _fsync_dir(path: Path):
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _write_bytes(path: Path, data: bytes):
    with open(path, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def write_saved_model_file(directory: Path, plan: ExportPlan):
    if plan.as_text:
        text = text_format.MessageToString(plan.saved_model)
        _write_bytes(directory / files.SAVED_MODEL_PBTXT, text.encode("utf-8"))
    else:
        data = plan.verbatim_pb
        if data is None:
            data = plan.saved_model.SerializeToString(deterministic=True)
        _write_bytes(directory / files.SAVED_MODEL_PB, data)


def write_variables(directory: Path, plan: ExportPlan):
    """variables/: the source checkpoint linked, or a new bundle (old entries streamed)."""
    variables_dir = directory / files.VARIABLES_DIR
    variables_dir.mkdir()
    prefix = directory / files.VARIABLES_PREFIX
    source = plan.variables_prefix
    has_source = source is not None and Path(index_filename(source)).is_file()
    if not plan.new_variables:
        if has_source:
            copy_bundle(source, prefix)
        return
    with BundleWriter(prefix) as writer:
        if has_source:
            with BundleReader(source) as reader:
                for key in reader.keys():
                    writer.add_from(reader, key)
        for key, array, dtype in plan.new_variables:
            writer.add(key, array, dtype=dtype)


def write_assets(directory: Path, plan: ExportPlan):
    assets_dir = directory / files.ASSETS_DIR
    if plan.assets:
        assets_dir.mkdir(exist_ok=True)
    for name, source in plan.assets.items():
        link_or_copy(Path(source), files.resolve_inside(assets_dir, name))
    for name, source in plan.extra_files.items():
        link_or_copy(Path(source), files.resolve_inside(directory, name))


def write_export(export_dir, plan: ExportPlan, overwrite: bool = False) -> Path:
    """Write ``plan`` to ``export_dir`` atomically; returns the export path."""
    target = Path(export_dir).absolute()
    if target.exists() and not target.is_dir():
        raise SavedModelError(f"{str(target)!r} is a file; a SavedModel is written to a "
                              "directory. Choose another path.")
    if target.exists() and not overwrite:
        raise SavedModelError(
            f"{str(target)!r} already exists. Pass overwrite=True to replace it (the old "
            "export stays intact until the new one is complete), or choose another directory.")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".partial",
                                    dir=target.parent))
    try:
        write_variables(staging, plan)
        write_assets(staging, plan)
        write_saved_model_file(staging, plan)
        if plan.fingerprint is not None and not plan.as_text:
            _write_bytes(staging / files.FINGERPRINT_PB, plan.fingerprint)
        elif plan.fresh_fingerprint and not plan.as_text:
            from ..format.fingerprint import make_fingerprint
            fingerprint = make_fingerprint(staging)
            if fingerprint is not None:
                _write_bytes(staging / files.FINGERPRINT_PB, fingerprint.SerializeToString())
        for sub in (staging / files.VARIABLES_DIR, staging / files.ASSETS_DIR, staging):
            _fsync_dir(sub)
        replace_directory(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def replace_directory(staging: Path, target: Path):
    """Rename ``staging`` to ``target``; an existing target is moved aside first and
    restored if the rename fails, and deleted once the new directory is in place."""
    if not target.exists():
        os.rename(staging, target)
        _fsync_dir(target.parent)
        return
    aside = target.parent / f".{target.name}.{uuid.uuid4().hex[:8]}.old"
    os.rename(target, aside)
    try:
        os.rename(staging, target)
    except BaseException:
        os.rename(aside, target)
        raise
    _fsync_dir(target.parent)
    shutil.rmtree(aside, ignore_errors=True)
