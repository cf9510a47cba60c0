"""Write an export directory atomically, and decide what an overwrite may replace.

Everything (saved_model.pb or .pbtxt, variables/, assets/, fingerprint.pb when it is
still valid, and the source's other files: assets.extra/, keras_metadata.pb) is written
into a staging directory beside the target (publish.Staging), then put in place in one
rename that never replaces a target which appeared meanwhile and never leaves an
existing one absent. Unchanged files (checkpoint shards, assets) are hard-linked where
the filesystem allows, else copied in chunks, so a source directory being replaced
(editing in place) keeps its files until the final rename. Only regular files are
copied, never through a link leading out of the source export (sources.py). New
directories get 0755 and new files 0666, less the umask, as TensorFlow's do.
"""
from __future__ import annotations

import os
import re
import shutil
import stat
from dataclasses import dataclass, field
from pathlib import Path

from google.protobuf import text_format

from ..errors import SavedModelError
from ..format import savedmodel as files
from ..format.bundle import BundleReader, BundleWriter, copy_bundle, data_filename, index_filename
from . import publish
from .sources import checked_source


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
    source_dir: Path | None = None               # the export read from: copies stay inside it


def make_dirs(path: Path):
    """Create ``path`` and missing parents with mode 0755 & ~umask, as TensorFlow's
    RecursivelyCreateDir does (Path.mkdir(parents=True) gives parents 0777 & ~umask)."""
    path = Path(path)
    if path.is_dir():
        return
    make_dirs(path.parent)
    try:
        os.mkdir(path, 0o755)
    except FileExistsError:
        if not path.is_dir():
            raise


def link_or_copy(source: Path, target: Path, source_dir: Path | None = None):
    """Hard-link ``source`` to ``target``, or copy it in chunks where links are refused.

    ``source`` must be a regular file, inside ``source_dir`` (the source export) when it
    lies under it: see sources.checked_source.
    """
    real = checked_source(source, source_dir)
    make_dirs(target.parent)
    try:
        os.link(real, target)
    except OSError:
        shutil.copyfile(real, target)


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


def _checked_checkpoint(source: Path, source_dir: Path | None) -> bool:
    """Whether the source checkpoint exists; its index and shards must be regular files
    inside the source export (checked before any is opened)."""
    index = Path(index_filename(source))
    if not os.path.lexists(index):
        return False
    checked_source(index, source_dir)
    with BundleReader(source) as reader:
        num_shards = reader.header.num_shards
    for shard in range(num_shards):
        data = Path(data_filename(str(source), shard, num_shards))
        if os.path.lexists(data):                 # a missing shard: copy_bundle says so
            checked_source(data, source_dir)
    return True


def write_variables(directory: Path, plan: ExportPlan):
    """variables/: the source checkpoint linked, or a new bundle (old entries streamed)."""
    variables_dir = directory / files.VARIABLES_DIR
    os.mkdir(variables_dir, 0o755)
    prefix = directory / files.VARIABLES_PREFIX
    source = plan.variables_prefix
    has_source = source is not None and _checked_checkpoint(Path(source), plan.source_dir)
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
        make_dirs(assets_dir)
    for name, source in plan.assets.items():
        link_or_copy(Path(source), files.resolve_inside(assets_dir, name), plan.source_dir)
    for name, source in plan.extra_files.items():
        link_or_copy(Path(source), files.resolve_inside(directory, name), plan.source_dir)


def write_export(export_dir, plan: ExportPlan, overwrite: bool = False) -> Path:
    """Write ``plan`` to ``export_dir`` atomically; returns the export path.

    Leftovers of interrupted saves to the same place are cleaned first; an existing
    ``export_dir`` is replaced only with ``overwrite`` and only when it is a SavedModel
    export holding nothing else (see check_target).
    """
    target = Path(export_dir).absolute()
    publish.clean_leftovers(target)
    replace = check_target(target, overwrite, plan)
    try:
        make_dirs(target.parent)
        staging = publish.Staging(target)
    except OSError as exc:
        raise SavedModelError(
            f"Cannot write into {str(target.parent)!r} ({exc.strerror}); a save needs to create "
            "a staging directory beside the target. Choose a directory you can write to.") from None
    try:
        export = staging.export
        write_variables(export, plan)
        write_assets(export, plan)
        write_saved_model_file(export, plan)
        if plan.fingerprint is not None and not plan.as_text:
            _write_bytes(export / files.FINGERPRINT_PB, plan.fingerprint)
        elif plan.fresh_fingerprint and not plan.as_text:
            from ..format.fingerprint import make_fingerprint
            fingerprint = make_fingerprint(export)
            if fingerprint is not None:
                _write_bytes(export / files.FINGERPRINT_PB, fingerprint.SerializeToString())
        for sub in (export / files.VARIABLES_DIR, export / files.ASSETS_DIR, export):
            publish.fsync_dir(sub)
        publish.reached("staged")
        if replace:                               # what is there now is what gets replaced
            replace = check_target(target, overwrite, plan)
        staging.publish(replace)
        publish.fsync_dir(target.parent)
    finally:
        staging.discard()
    return target


# --- what an overwrite may replace ----------------------------------------------------
#: Entries TensorFlow writes at the top of an export (saved_model.cpb: the chunked format;
#: keras_metadata.pb: tf.keras 2.x), and the directories with their allowed contents.
EXPORT_FILES = frozenset({files.SAVED_MODEL_PB, files.SAVED_MODEL_PBTXT, "saved_model.cpb",
                          files.FINGERPRINT_PB, "keras_metadata.pb"})
EXPORT_DIRS = {
    files.VARIABLES_DIR: re.compile(r"\Avariables\.(index|data-\d{5,}-of-\d{5,})\Z"),
    "debug": re.compile(r"\Asaved_model_debug_info\.pb\Z"),
    files.ASSETS_DIR: None,                        # anything
    files.ASSETS_EXTRA_DIR: None,
}
_GRAPH_FILES = (files.SAVED_MODEL_PB, files.SAVED_MODEL_PBTXT, "saved_model.cpb")


def check_target(target: Path, overwrite: bool, plan: ExportPlan | None = None) -> bool:
    """Whether ``target`` exists and may be replaced; raises SavedModelError when it may not.

    A link or a file is never replaced. A directory is replaced only with ``overwrite``, and
    only when it is empty or a SavedModel export (saved_model.pb, .pbtxt or .cpb) holding
    nothing but what TensorFlow writes into one, apart from files the new export carries
    over (the same files, as when editing in place).
    """
    try:
        info = os.lstat(target)
    except FileNotFoundError:
        return False
    except NotADirectoryError:
        raise SavedModelError(f"{str(target)!r} cannot be created: a part of its parent path "
                              "is a file. Choose another directory.") from None
    if stat.S_ISLNK(info.st_mode):
        raise SavedModelError(
            f"{str(target)!r} is a symbolic link (to {os.readlink(target)!r}); a save never "
            "replaces a link or writes through one. Save to the directory itself, or choose "
            "another path.")
    if not stat.S_ISDIR(info.st_mode):
        raise SavedModelError(f"{str(target)!r} is a file; a SavedModel is written to a "
                              "directory. Choose another path.")
    if not overwrite:
        raise SavedModelError(
            f"{str(target)!r} already exists. Pass overwrite=True to replace it (the old "
            "export stays intact until the new one is complete), or choose another directory.")
    present = sorted(_shown_entry(target, name) for name in os.listdir(target))
    if present and not any(os.path.lexists(target / name) for name in _GRAPH_FILES):
        raise SavedModelError(
            f"overwrite=True replaces only a SavedModel export, and {str(target)!r} is not one "
            f"(it has no {files.SAVED_MODEL_PB} or {files.SAVED_MODEL_PBTXT}); replacing it "
            f"would delete {_listing(present)}. "
            "Choose another directory.")
    lost = _not_export_entries(target, plan)
    if lost:
        raise SavedModelError(
            f"{str(target)!r} holds more than a SavedModel export; overwriting it would delete "
            f"{_listing(lost)}. Move those out of it, or save to another directory.")
    return True


def _shown_entry(directory: Path, name: str) -> str:
    path = directory / name
    return name + "/" if path.is_dir() and not path.is_symlink() else name


def _listing(names: list[str], limit: int = 10) -> str:
    shown = ", ".join(repr(name)[1:-1] if name.isprintable() else repr(name)
                      for name in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _not_export_entries(target: Path, plan: ExportPlan | None) -> list[str]:
    """Entries of ``target`` that are not part of a SavedModel export, less those the new
    export carries over; relative paths, directories with a trailing slash."""
    found = []
    for name in sorted(os.listdir(target)):
        path = target / name
        is_dir = path.is_dir() and not path.is_symlink()
        if name in EXPORT_FILES and not is_dir:
            continue
        if name in EXPORT_DIRS and (is_dir or path.is_symlink()):
            allowed = EXPORT_DIRS[name]
            if allowed is not None and is_dir:
                found.extend(f"{name}/{_shown_entry(path, child)}"
                             for child in sorted(os.listdir(path)) if not allowed.match(child))
            continue
        found.append(_shown_entry(target, name))
    if found and plan is not None and plan.extra_files:
        carried = set()
        for source in plan.extra_files.values():
            try:
                source_info = os.lstat(source)
            except OSError:
                continue
            carried.add((source_info.st_dev, source_info.st_ino))
        found = [entry for entry in found if not _all_carried(target / entry.rstrip("/"), carried)]
    return found


def _all_carried(path: Path, carried: set) -> bool:
    """Whether every file under ``path`` (or ``path`` itself) is one the new export carries."""
    if path.is_symlink() or not path.is_dir():
        info = os.lstat(path)
        return (info.st_dev, info.st_ino) in carried
    for directory, subdirs, names in os.walk(path):
        for name in names + [d for d in subdirs if os.path.islink(os.path.join(directory, d))]:
            info = os.lstat(os.path.join(directory, name))
            if (info.st_dev, info.st_ino) not in carried:
                return False
    return True
