"""Paths of an experiment that commands check before importing torch (a wrong path fails in milliseconds)."""

from __future__ import annotations

import os
from pathlib import Path

from aics.core.errors import UserError


def checkpoint_file(exp_dir: str | os.PathLike, which: str) -> Path:
    """``<exp>/ckpt/<which>.pt`` for 'last', 'best' or 'epoch-NNN'; any other value is a path."""
    if which in ("last", "best") or (which.startswith("epoch-") and "/" not in which):
        return Path(exp_dir) / "ckpt" / f"{which}.pt"
    return Path(which)


def existing_checkpoint(exp_dir: str | os.PathLike, which: str) -> Path:
    """``checkpoint_file`` that must exist, else a one-line error saying how to make it."""
    path = checkpoint_file(exp_dir, which)
    if not path.is_file():
        raise UserError(f"{path}: checkpoint not found; train {exp_dir} first, or pass --ckpt best|last|PATH")
    return path
