"""Opening an export's files as untrusted input: regular files only, never through a link
that leaves the export directory, never more bytes than a limit allows.

A named pipe or device opened for reading blocks (or streams) for ever, so every file
is opened with O_NONBLOCK and checked with fstat before a byte is read. Links that
stay inside the export are followed; a link out of it is refused, as is a file too
large for what it claims to be.
"""
from __future__ import annotations

import errno
import fcntl
import os
import stat
from pathlib import Path

from ..errors import CorruptFileError, SavedModelError

#: TensorFlow parses a SavedModel or GraphDef only below 2 GiB (protobuf's INT_MAX limit).
MAX_PROTO_BYTES = 2**31 - 1

_KINDS = [(stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a named pipe (FIFO)"),
          (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device")]


def file_kind(mode: int) -> str:
    """'a regular file', 'a named pipe (FIFO)', ... for an st_mode."""
    if stat.S_ISREG(mode):
        return "a regular file"
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def _os_problem(path, exc: OSError) -> SavedModelError:
    if exc.errno == errno.ENOENT:
        return CorruptFileError(path, "does not exist (or is a link to nothing).")
    if exc.errno == errno.ENAMETOOLONG:
        return SavedModelError(f"The path {str(path)[:200]!r}... is too long for the file "
                               f"system ({len(str(path))} characters); the model names a file "
                               "that cannot exist.")
    if exc.errno == errno.ELOOP:
        return CorruptFileError(path, "is a symbolic link loop.")
    if exc.errno == errno.ENOTDIR:
        return CorruptFileError(path, "lies under something that is not a directory.")
    return CorruptFileError(path, f"cannot be read: {exc.strerror or exc}.")


def _real(path) -> str:
    try:
        return os.path.realpath(os.fspath(path))
    except ValueError:
        raise SavedModelError(f"The path {str(path)!r} contains a NUL byte; no file can have "
                              "that name.") from None
    except OSError as exc:
        raise _os_problem(path, exc) from None


def inside(path, root) -> Path:
    """The real path of ``path``, refusing one that leaves ``root``'s real path through
    a symbolic link (or ``..``): models are untrusted and must not read elsewhere."""
    real_root = _real(root)
    real = _real(path)
    if real != real_root and not real.startswith(real_root.rstrip(os.sep) + os.sep):
        raise SavedModelError(
            f"{str(path)!r} lies outside its export directory {real_root!r} (it leads to "
            f"{real!r}); refusing to read it, as models are untrusted input. If you trust "
            "it, copy the real file into the export (e.g. cp -L) instead of linking it.")
    return Path(real)


def open_regular(path, *, root=None) -> int:
    """A read-only descriptor of ``path`` after checking it is a regular file (inside
    ``root`` when given). Never blocks: pipes and devices are refused, not read."""
    target = inside(path, root) if root is not None else path
    try:
        fd = os.open(target, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except ValueError:
        raise SavedModelError(f"The path {str(path)!r} contains a NUL byte; no file can have "
                              "that name.") from None
    except OSError as exc:
        if exc.errno in (errno.ENXIO, errno.EWOULDBLOCK):
            raise CorruptFileError(path, "is not a regular file (a socket or device); "
                                   "SavedModel files must be regular files.") from None
        raise _os_problem(path, exc) from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise CorruptFileError(path, f"is {file_kind(mode)}, not a regular file; SavedModel "
                                   "files must be regular files. Replace it with the real file.")
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_regular(path, *, root=None, max_bytes: int | None = None, what: str = "file",
                 advice: str = "TensorFlow refuses larger ones too.") -> bytes:
    """The bytes of a regular file, refusing it before reading when above ``max_bytes``
    (the message names ``what`` and ends with ``advice``)."""
    fd = open_regular(path, root=root)
    try:
        size = os.fstat(fd).st_size
        if max_bytes is not None and size > max_bytes:
            raise CorruptFileError(path, f"is {size:,} bytes; a {what} can be at most "
                                   f"{max_bytes:,} bytes. {advice}")
        chunks, remaining = [], size
        while remaining > 0:
            chunk = os.read(fd, min(remaining, 1 << 26))
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
        return b"".join(chunks)
    except MemoryError:
        raise CorruptFileError(path, f"is too large to read into memory ({size:,} bytes).") from None
    except OSError as exc:
        raise _os_problem(path, exc) from None
    finally:
        os.close(fd)


def present(path, *, root=None) -> bool:
    """Whether ``path`` names something: False when nothing is there (not even a link);
    True for a regular file (inside ``root`` when given); anything else (a pipe, a
    directory, a dangling link, a link out of the export) is refused."""
    try:
        os.lstat(path)
    except ValueError:
        raise SavedModelError(f"The path {str(path)!r} contains a NUL byte; no file can have "
                              "that name.") from None
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            return False
        raise _os_problem(path, exc) from None
    target = inside(path, root) if root is not None else Path(path)
    try:
        mode = os.stat(target).st_mode
    except OSError as exc:
        raise _os_problem(path, exc) from None
    if not stat.S_ISREG(mode):
        raise CorruptFileError(path, f"is {file_kind(mode)}, not a regular file; SavedModel "
                               "files must be regular files. Replace it with the real file.")
    return True
