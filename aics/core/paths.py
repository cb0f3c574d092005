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


def resolve_checkpoint(ckpt: str | os.PathLike) -> Path:
    """A checkpoint file, or an experiment dir (its ckpt/best.pt, else ckpt/last.pt)."""
    path = Path(ckpt)
    if path.is_dir():
        for name in ("best.pt", "last.pt"):
            if (path / "ckpt" / name).is_file():
                return path / "ckpt" / name
        raise UserError(f"{path}: has no ckpt/best.pt or ckpt/last.pt; train it first, or pass a .pt file")
    if not path.is_file():
        raise UserError(f"{path}: checkpoint not found; pass an experiment dir or a .pt file")
    return path
