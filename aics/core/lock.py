"""One process per experiment or stage directory: an advisory lock file ``<dir>/.lock`` holding the pid.

The lock is an ``flock`` on that file, so the kernel drops it when its holder dies (a stale ``.lock`` left by
a killed process does not block anyone). A process holds a directory's lock once (re-acquiring is a no-op)
until ``release`` or its exit::

    acquire(exp)        # UserError naming the holder's pid when another process has it
    ...
    release(exp)
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from aics.core.errors import UserError

LOCK = ".lock"

try:
    import fcntl
except ImportError:  # Windows: no advisory locks here; runs are not guarded
    fcntl = None  # type: ignore[assignment]

_held: dict[Path, int] = {}  # resolved directory -> fd of its lock file
_stale: dict[Path, bool] = {}  # resolved directory -> a lock file was there already when this process took it


def _key(directory: str | os.PathLike) -> Path:
    return Path(directory).resolve()


def holder(directory: str | os.PathLike) -> str:
    """The pid written in the directory's lock file ('' when unknown)."""
    try:
        return (Path(directory) / LOCK).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return ""


def acquire(directory: str | os.PathLike, what: str = "run") -> None:
    """Lock ``directory`` (created if needed) for this process, or raise a one-line UserError."""
    key = _key(directory)
    if key in _held or fcntl is None:
        return
    key.mkdir(parents=True, exist_ok=True)
    path = key / LOCK
    while True:
        existed = path.exists()
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            pid = holder(key)
            by = f"another aics process (pid {pid})" if pid else "another aics process"
            raise UserError(
                f"{directory}: in use by {by}; wait for that {what} to finish or stop it, "
                "or use another output directory"
            ) from None
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:  # not unlinked by a holder that released it between our open and flock
            break
        os.close(fd)
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    _held[key] = fd
    _stale[key] = existed


def found_stale(directory: str | os.PathLike) -> bool:
    """Whether this process found a lock file that nobody held when it took the lock: an aics process
    worked in the directory and ended without finishing (killed, or stopped by an error)."""
    return _stale.get(_key(directory), False)


def release(directory: str | os.PathLike) -> None:
    """Drop this process's lock on ``directory`` (no-op when it holds none)."""
    key = _key(directory)
    fd = _held.pop(key, None)
    _stale.pop(key, None)
    if fd is None:
        return
    with contextlib.suppress(FileNotFoundError):
        os.unlink(key / LOCK)  # before closing, so a waiter that opened the old file retries
    os.close(fd)


def holds(directory: str | os.PathLike) -> bool:
    return _key(directory) in _held
