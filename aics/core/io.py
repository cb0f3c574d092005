"""Atomic file writes and small structured-file helpers (json, jsonl, yaml)."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from aics.core.errors import UserError


def fsync_path(path: str | os.PathLike) -> None:
    """fsync a file or a directory (a directory: so that a rename in it survives a crash); best effort."""
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


@functools.cache
def _umask() -> int:
    mask = os.umask(0)  # reading the umask means setting it; done once per process
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w", encoding: str | None = None) -> Iterator[IO]:
    """Write to a temp file in the same directory, fsync, then rename over ``path``.

    A crash (or exception) midway leaves any previous ``path`` untouched and removes the temp file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if "b" not in mode and encoding is None:
        encoding = "utf-8"
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; outputs get the usual permissions
        with os.fdopen(fd, mode, encoding=encoding) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        fsync_path(path.parent)
    except BaseException as e:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(e, OSError) and e.filename is None:
            e.filename = str(path)  # a full disk while writing: say which file
        raise


def atomic_copy(src: str | os.PathLike, dst: str | os.PathLike) -> None:
    with open(src, "rb") as fin, atomic_write(dst, "wb") as fout:
        shutil.copyfileobj(fin, fout, length=1 << 20)


def remove_stale_temps(directory: str | os.PathLike) -> list[Path]:
    """Delete the ``.NAME.XXXX.tmp`` files an interrupted ``atomic_write`` left in ``directory`` (call it only
    while holding the directory's lock, so no running write is touched)."""
    removed = []
    d = Path(directory)
    if d.is_dir():
        for p in d.glob(".*.tmp"):
            if p.is_file():
                p.unlink()
                removed.append(p)
    return removed


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_write(path, "w") as f:
        f.write(text)


def save_npy(path: str | os.PathLike, array) -> None:
    """A numpy array as ``.npy`` (no pickles), written atomically."""
    import numpy as np

    with atomic_write(path, "wb") as fh:
        np.save(fh, array, allow_pickle=False)


def save_npz(path: str | os.PathLike, **arrays) -> None:
    """Named numpy arrays as a compressed ``.npz`` (no pickles: object arrays are refused), atomically."""
    import numpy as np

    for name, a in arrays.items():
        if np.asarray(a).dtype == object:
            raise ValueError(f"save_npz: {name} is an object array, which would need pickles")
    with atomic_write(path, "wb") as fh:
        np.savez_compressed(fh, **arrays)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    with atomic_write(path, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=False)
        f.write("\n")


def read_json(path: str | os.PathLike) -> Any:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: file not found")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as e:
        raise UserError(f"{path}: not UTF-8 text ({e.reason}); fix or regenerate the file") from None
    except json.JSONDecodeError as e:
        raise UserError(f"{path}:{e.lineno}: invalid JSON ({e.msg}); fix or regenerate the file") from e


def append_jsonl(path: str | os.PathLike, record: dict) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    path = Path(path)
    records = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise UserError(f"{path}:{lineno}: invalid JSON line ({e.msg})") from e
    return records


def write_jsonl(path: str | os.PathLike, records: list[dict]) -> None:
    with atomic_write(path, "w") as f:
        for r in records:
            f.write(json.dumps(r) + "\n")
