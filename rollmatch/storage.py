"""Crash-safe file writes and the library's writer lock.

A write goes to a temporary file in the same directory, is flushed and fsynced, replaces the target with
``os.replace`` and then the directory is fsynced, so after a crash the target holds either the old or the
new bytes, never a mix. Every file written gets the permissions a program's new files get, ``0o666`` less the
umask, so a library shared through a group or with everyone stays readable to the others.

Read-modify-write cycles hold an exclusive lock (``flock`` on Unix, ``LockFileEx`` on Windows, through
``filelock``) on a sidecar lock file, so concurrent writers (processes or threads) never lose each other's
changes.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

from filelock import FileLock

from .errors import OutputError

LOCK_NAME = ".rollmatch.lock"
_umask_guard = threading.Lock()


def file_mode() -> int:
    """The permissions of a new file: ``0o666`` less the process's umask."""
    return 0o666 & ~current_umask()


def current_umask() -> int:
    """The process's umask, read without changing it where the system tells it (Linux), else set and restored
    under a lock, so that no other rollmatch thread creates a file in between."""
    with contextlib.suppress(OSError, ValueError):
        with open("/proc/self/status", encoding="ascii", errors="replace") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    with _umask_guard:
        umask = os.umask(0o077)  # the strictest, should a file be created elsewhere in between
        os.umask(umask)
    return umask


def atomic_write(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically and durably, with the permissions of a new file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            # mkstemp creates the file 0600 whatever the umask.
            os.chmod(tmp, file_mode())
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
    """Write an output file (a picture, a report) atomically, or :class:`OutputError` naming the path."""
    target = Path(path)
    try:
        atomic_write(target, data)
    except OSError as exc:
        raise OutputError(f"{target}: cannot write: {exc.strerror or exc}") from None


def fsync_directory(path: Path) -> None:
    """Make a rename or unlink inside ``path`` durable (where directories can be opened: not on Windows)."""
    if os.name == "nt":
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def exclusive_lock(directory: Path) -> Iterator[None]:
    """Hold the directory's writer lock, against other processes and other threads alike.

    Each call opens the lock file anew, and a lock taken through one open file excludes every other, so two
    threads of one process exclude each other as two processes do; no lock is taken twice by one holder, so
    no reentrancy is needed. The lock file stays (it is created following the umask), as older versions,
    which ``flock`` it directly, expect.
    """
    with FileLock(directory / LOCK_NAME, preserve_lock_file=True):
        yield
