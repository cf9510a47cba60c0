"""Files a save copies out of the source export: confined to it, and regular files only.

Models are untrusted input: a link in ``assets/`` or ``variables/`` may point anywhere
(``assets -> /etc``), and a named pipe or device would block or feed a copy for ever.
Links that stay inside the export are followed; anything else is refused by name.
"""
from __future__ import annotations

import os
import stat
from pathlib import Path

from ..errors import SavedModelError

MAX_DIRECTORIES = 100_000
_KINDS = {stat.S_IFIFO: "a named pipe", stat.S_IFCHR: "a character device",
          stat.S_IFBLK: "a block device", stat.S_IFSOCK: "a socket", stat.S_IFDIR: "a directory"}


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _escaping_link(path: Path, root: Path) -> tuple[Path, str] | None:
    """The first link on the way from ``root`` to ``path`` that leads out of ``root``."""
    real_root = os.path.realpath(root)
    current = root
    for part in path.relative_to(root).parts:
        current = current / part
        if os.path.islink(current) and not _inside(os.path.realpath(current), real_root):
            return current, os.readlink(current)
    return None


def describe_kind(mode: int) -> str:
    return _KINDS.get(stat.S_IFMT(mode), "not a regular file")


def checked_source(path, root=None) -> Path:
    """The real path of a file to copy: a regular file and, when ``path`` lies under the
    source export ``root``, inside it after following links. Raises SavedModelError."""
    path = Path(path)
    if root is not None:
        root = Path(root)
        if _inside(os.path.abspath(path), os.path.abspath(root)):
            real_root = os.path.realpath(root)
            real = os.path.realpath(path)
            if not _inside(real, real_root):
                link, points_to = _escaping_link(Path(os.path.abspath(path)),
                                                 Path(os.path.abspath(root))) or (path, real)
                raise SavedModelError(
                    f"{str(link)!r} in the source export is a symbolic link to {points_to!r}, "
                    f"outside the export {str(root)!r}; refusing to copy through it (models "
                    "are untrusted input). Replace the link with the file itself.")
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        raise SavedModelError(f"{str(path)!r} cannot be read ({exc.strerror}); it is needed "
                              "for the export. Restore it, or remove it from the model.") from None
    if not stat.S_ISREG(mode):
        raise SavedModelError(
            f"{str(path)!r} is {describe_kind(mode)}, not a regular file; refusing to copy it "
            "into the export. Replace it with a regular file.")
    return Path(os.path.realpath(path))


def export_files(root, sub: str = "", skip_top=frozenset()) -> tuple[dict[str, Path], list[str]]:
    """Files under ``root/sub`` by path relative to it, and the problems found.

    Follows links whose target stays inside ``root`` (each directory once), never those
    leading out: those, and special files (pipes, devices, sockets), are listed as
    problems, e.g. ``"assets/passwd -> /etc/passwd (outside the export)"``, and never
    opened. ``skip_top`` names entries of ``root/sub`` to leave out.
    """
    root = Path(root)
    real_root = os.path.realpath(root)
    start = root / sub if sub else root
    files: dict[str, Path] = {}
    problems: list[str] = []
    if not os.path.lexists(start):
        return files, problems
    pending = [(start, "", frozenset())]
    walked = 0
    while pending:
        directory, prefix, ancestors = pending.pop()
        real_dir = os.path.realpath(directory)
        if real_dir in ancestors:                    # a link back up: a cycle
            problems.append(f"{_shown(root, directory)} (a link to a directory containing it)")
            continue
        walked += 1
        if walked > MAX_DIRECTORIES:
            raise SavedModelError(
                f"{str(start)!r} holds more than {MAX_DIRECTORIES} directories (counting "
                "those reached through links); refusing to walk it. Remove the links.")
        if not _inside(real_dir, real_root):
            shown = os.readlink(directory) if os.path.islink(directory) else real_dir
            problems.append(f"{_shown(root, directory)} -> {shown} (outside the export)")
            continue
        ancestors = ancestors | {real_dir}
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except NotADirectoryError:
            continue
        except OSError as exc:
            problems.append(f"{_shown(root, directory)} (cannot be listed: {exc.strerror})")
            continue
        for entry in entries:
            if not prefix and entry.name in skip_top:
                continue
            name = prefix + entry.name
            path = Path(entry.path)
            if entry.is_symlink():
                real = os.path.realpath(path)
                if not _inside(real, real_root):
                    problems.append(f"{_shown(root, path)} -> {os.readlink(path)} "
                                    "(outside the export)")
                    continue
                try:
                    mode = os.stat(real).st_mode
                except OSError:
                    problems.append(f"{_shown(root, path)} -> {os.readlink(path)} (dangling)")
                    continue
            else:
                mode = entry.stat(follow_symlinks=False).st_mode
            if stat.S_ISDIR(mode):
                pending.append((path, name + "/", ancestors))
            elif stat.S_ISREG(mode):
                files[name] = path
            else:
                problems.append(f"{_shown(root, path)} ({describe_kind(mode)})")
    return files, problems


def _shown(root: Path, path: Path) -> str:
    return Path(os.path.relpath(path, root)).as_posix()
