"""Put a finished export directory in place in one step; clean up after interrupted saves.

A save builds its export in a staging directory beside the target (same filesystem):
``.<target name>.smnb-<16 hex>.partial/`` holding ``export/`` (the new export) and a
marker file that the saving process keeps locked (``flock``) while it lives. The last
step is a single rename (Linux ``renameat2``):

- a new target: ``RENAME_NOREPLACE``, so a target that appeared meanwhile (another
  process saving there) fails this save instead of being replaced;
- an existing target: ``RENAME_EXCHANGE`` swaps the two directories, so the target is
  never absent; the old export ends up in the staging directory, which is then deleted.

Where ``renameat2`` or its flags are unavailable (not Linux, old kernels, some network
filesystems) the fallbacks are: ``os.mkdir(target)`` claims a new name exclusively and
``rename`` then replaces that empty directory; an existing target is moved into the
staging directory (``old/``) and the new export renamed into place, so a kill between
those two renames leaves the target absent until the next save to the same place.

Before every save, staging directories of earlier saves to the same target whose marker
is not locked (their process is gone) are removed, after putting ``old/`` back when the
target is missing and removing an empty directory a fallback claim left. Nothing is
removed unless its name has the pattern and it holds a marker naming the target.
"""
from __future__ import annotations

import ctypes
import errno
import os
import platform
import re
import secrets
import shutil
import stat
import sys
from pathlib import Path

from ..errors import SavedModelError

try:
    import fcntl
except ImportError:          # not POSIX: leftovers are never judged abandoned
    fcntl = None

MARKER = "SM_NOTEBOOK_PARTIAL_SAVE"
MARKER_MAGIC = b"sm_notebook partial save v1\n"
EXPORT = "export"
OLD = "old"
CLAIMED = "claimed"
_STAGING_NAME = re.compile(r"\A\.(?P<name>.*)\.smnb-[0-9a-f]{16}\.partial\Z", re.DOTALL)

RENAME_NOREPLACE = 1
RENAME_EXCHANGE = 2
_AT_FDCWD = -100
_SYS_RENAMEAT2 = {"x86_64": 316, "aarch64": 276, "arm64": 276}
_UNSUPPORTED = {errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP}


def _load_renameat2():
    """A ``renameat2(olddirfd, old, newdirfd, new, flags)`` callable, or None off Linux."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None
    function = getattr(libc, "renameat2", None)      # glibc >= 2.28
    if function is not None:
        function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                             ctypes.c_uint]
        function.restype = ctypes.c_int
        return function
    number = _SYS_RENAMEAT2.get(platform.machine())
    if number is None or not hasattr(libc, "syscall"):
        return None
    syscall = libc.syscall
    syscall.restype = ctypes.c_long
    return lambda olddir, old, newdir, new, flags: syscall(
        ctypes.c_long(number), ctypes.c_int(olddir), ctypes.c_char_p(old),
        ctypes.c_int(newdir), ctypes.c_char_p(new), ctypes.c_uint(flags))


_renameat2 = _load_renameat2()


def reached(stage: str):
    """Called at each named stage of a save (tests replace it to kill the process there)."""


class Unsupported(Exception):
    """renameat2 or the flag is not available here; use the fallback."""


def rename2(source: Path, target: Path, flags: int):
    """``renameat2(source, target, flags)``; raises OSError, or Unsupported."""
    if _renameat2 is None:
        raise Unsupported()
    result = _renameat2(_AT_FDCWD, os.fsencode(source), _AT_FDCWD, os.fsencode(target), flags)
    if result != 0:
        code = ctypes.get_errno()
        if code in _UNSUPPORTED:
            raise Unsupported()
        raise OSError(code, os.strerror(code), str(source), None, str(target))


def fsync_dir(path: Path):
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


def _marker_content(target: Path) -> bytes:
    return MARKER_MAGIC + b"target=" + os.fsencode(target.name).hex().encode() + b"\n"


class Staging:
    """The staging directory of one save: ``path/export`` is the export being written."""

    def __init__(self, target: Path):
        self.target = target
        stem = target.name[:120]
        while True:
            self.path = target.parent / f".{stem}.smnb-{secrets.token_hex(8)}.partial"
            try:
                os.mkdir(self.path, 0o700)
                break
            except FileExistsError:
                continue
        self._lock_fd = None
        try:
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
            self._lock_fd = os.open(self.path / MARKER, flags, 0o600)
            if fcntl is not None:
                fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
            os.write(self._lock_fd, _marker_content(target))   # content only once locked
            os.mkdir(self.export, 0o755)                         # 0755 & ~umask, as TensorFlow
        except BaseException:
            self.discard()
            raise

    @property
    def export(self) -> Path:
        return self.path / EXPORT

    def publish(self, replace: bool):
        """Move ``export/`` to the target: exchanged with an existing one when ``replace``,
        else only if the target still does not exist (a SavedModelError otherwise)."""
        if replace and os.path.lexists(self.target):
            try:
                rename2(self.export, self.target, RENAME_EXCHANGE)
            except Unsupported:
                try:
                    self._replace_by_two_renames()
                    return
                except FileNotFoundError:
                    if os.path.lexists(self.target):
                        raise
            except FileNotFoundError:
                if os.path.lexists(self.target):
                    raise
            else:
                reached("swapped")
                return
        self._publish_new()               # no target (any more): never replace one that appears

    def _publish_new(self):
        target = self.target
        try:
            rename2(self.export, target, RENAME_NOREPLACE)
            return
        except Unsupported:
            pass
        except FileExistsError:
            raise _appeared(target) from None
        # Fallback: claim the name with an exclusive mkdir, then replace the empty directory.
        (self.path / CLAIMED).touch()
        try:
            os.mkdir(target, 0o700)
        except FileExistsError:
            raise _appeared(target) from None
        reached("claimed")
        try:
            os.rename(self.export, target)
        except BaseException:
            _remove_empty_dir(target)
            raise

    def _replace_by_two_renames(self):
        target, old = self.target, self.path / OLD
        os.rename(target, old)
        reached("moved-aside")
        try:
            os.rename(self.export, target)
        except BaseException:
            os.rename(old, target)
            raise

    def discard(self):
        """Delete the staging directory (what is left of it) and release the lock."""
        _remove_staging(self.path)
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None


def _appeared(target: Path) -> SavedModelError:
    return SavedModelError(
        f"{str(target)!r} appeared while this export was being written (another save to the "
        "same place?); it was left as it is and nothing was saved. Choose another directory, "
        "or save again with overwrite=True to replace it if it is a SavedModel export.")


def _remove_empty_dir(path: Path):
    try:
        os.rmdir(path)
    except OSError:
        pass


def _remove_staging(path: Path):
    """Delete a staging directory, the marker last (so a failed delete is retried later)."""
    for name in (EXPORT, OLD):
        shutil.rmtree(path / name, ignore_errors=True)
    shutil.rmtree(path, ignore_errors=True)


def _held_marker(directory: Path, target: Path):
    """An fd holding the lock of ``directory``'s marker when it names ``target`` and no
    living process holds it; None otherwise (not ours, or still in use)."""
    if fcntl is None:
        return None
    try:
        fd = os.open(directory / MARKER, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError
        expected = _marker_content(target)
        if os.read(fd, len(expected) + 1) != expected:
            raise OSError
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def abandoned_stagings(target: Path) -> list[Path]:
    """Staging directories of earlier saves to ``target`` whose process is gone."""
    target = Path(target)
    try:
        entries = list(os.scandir(target.parent))
    except OSError:
        return []
    found = []
    for entry in entries:
        match = _STAGING_NAME.match(entry.name)
        if (match is None or not target.name.startswith(match.group("name"))
                or not entry.is_dir(follow_symlinks=False)):
            continue
        fd = _held_marker(Path(entry.path), target)
        if fd is not None:
            os.close(fd)
            found.append(Path(entry.path))
    return sorted(found)


def clean_leftovers(target: Path) -> list[Path]:
    """Recover the target from, then delete, abandoned staging directories of saves to it.

    A target missing after a kill between the fallback's two renames gets its old export
    (``old/``) back; an empty target a fallback claim left is removed. Returns the
    directories deleted.
    """
    target = Path(target)
    removed = []
    for directory in abandoned_stagings(target):
        fd = _held_marker(directory, target)          # hold the lock while recovering
        if fd is None:
            continue
        try:
            old = directory / OLD
            if not os.path.lexists(target) and old.is_dir() and not old.is_symlink():
                try:
                    rename2(old, target, RENAME_NOREPLACE)
                except Unsupported:
                    os.rename(old, target)
                except FileExistsError:
                    pass
            elif (directory / CLAIMED).exists() and target.is_dir() and not target.is_symlink():
                _remove_empty_dir(target)
            _remove_staging(directory)
            removed.append(directory)
        finally:
            os.close(fd)
    if removed:
        fsync_dir(target.parent)
    return removed
