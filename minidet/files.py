"""Writing user-visible files so that nothing is ever half-written or silently replaced.

`atomic_write(path)` yields a temporary name in the same directory; the file appears under
`path` (by an atomic rename) only when the block ends without an error, and the temporary
is removed otherwise. A failing write (a full disk, a read-only file system) becomes one
`FileWriteError` naming `path`, which the command line prints as its one-line error.

Temporaries are named `.NAME.XXXXXXXX.tmp` (hidden, beside NAME); a process killed while
writing leaves one, and `remove_stale_temporaries(dir, names)` deletes them at the next
start. `refuse_existing(path, force)` is the "never overwrite without --force" rule.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from .errors import MinidetError


class FileWriteError(MinidetError, OSError):
    """A file could not be written (full disk, read-only file system, a path under a file)."""


def os_error_message(e: OSError, path=None) -> str:
    """'PATH: reason' for an OSError, naming the file even when the error does not."""
    name = e.filename if e.filename is not None else path
    reason = e.strerror or str(e) or type(e).__name__
    if e.filename2 is not None:
        return f"{name} → {e.filename2}: {reason}"
    return f"{name}: {reason}" if name is not None else reason


@contextlib.contextmanager
def atomic_write(path):
    """`with atomic_write(path) as tmp:` write the whole file to `tmp` (a Path); on success it
    replaces `path` atomically. Any error removes `tmp`; an OSError becomes FileWriteError."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
    except OSError as e:
        raise FileWriteError(f"cannot write {os_error_message(e, path)}") from None
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except OSError as e:
        _unlink_quietly(tmp)
        if isinstance(e, MinidetError):
            raise
        raise FileWriteError(f"cannot write {path}: {e.strerror or e}") from None
    except BaseException:
        _unlink_quietly(tmp)
        raise


def write_bytes_atomic(path, data: bytes) -> None:
    with atomic_write(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())


def write_text_atomic(path, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))


def remove_stale_temporaries(directory, names) -> list[Path]:
    """Delete `.NAME.*.tmp` left in `directory` by a killed writer, for each NAME in `names`.
    Returns the removed paths."""
    removed = []
    directory = Path(directory)
    if not directory.is_dir():
        return removed
    for name in names:
        for tmp in directory.glob(f".{name}.*.tmp"):
            if tmp.is_file():
                _unlink_quietly(tmp)
                removed.append(tmp)
    return removed


def refuse_existing(path, force: bool, what: str = "") -> None:
    """MinidetError if `path` exists and `force` is not set (the one rule for every output)."""
    path = Path(path)
    if force or not (path.exists() or path.is_symlink()):
        return
    if path.is_dir():
        raise MinidetError(f"{path}: is a directory{what}; give a file name")
    raise MinidetError(f"{path}: exists{what}; add --force to replace it")


def _unlink_quietly(path) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)
