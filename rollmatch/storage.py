"""Crash-safe file writes and the library's writer lock.

A write goes to a temporary file in the same directory, is flushed and fsynced, replaces the target with
``os.replace`` and then the directory is fsynced, so after a crash the target holds either the old or the
new bytes, never a mix. Read-modify-write cycles hold an exclusive ``flock`` on a sidecar lock file, so
concurrent writers (processes or threads) never lose each other's changes.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

from .errors import OutputError

LOCK_NAME = ".rollmatch.lock"
_thread_locks: dict[str, threading.Lock] = {}
_thread_locks_guard = threading.Lock()


def atomic_write(path: Path, data: bytes, *, mode: int | None = None) -> None:
    """Replace ``path`` with ``data`` atomically and durably; ``mode`` sets its permissions (else 0600)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            if mode is not None:
                os.fchmod(handle.fileno(), mode)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_directory(path.parent)


def write_output(path: str | os.PathLike[str], data: bytes) -> None:
    """Write an output file (a picture, a report) atomically, readable as the umask allows like any file a
    program creates, or :class:`OutputError` naming the path."""
    target = Path(path)
    umask = os.umask(0o022)
    os.umask(umask)
    try:
        atomic_write(target, data, mode=0o666 & ~umask)
    except OSError as exc:
        raise OutputError(f"{target}: cannot write: {exc.strerror or exc}") from None


def fsync_directory(path: Path) -> None:
    """Make a rename or unlink inside ``path`` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def exclusive_lock(directory: Path) -> Iterator[None]:
    """Hold the directory's writer lock: across processes by flock, across threads by a mutex."""
    key = str(directory.resolve())
    with _thread_locks_guard:
        mutex = _thread_locks.setdefault(key, threading.Lock())
    with mutex, open(directory / LOCK_NAME, "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
