"""Checkpoints: atomic writes, ``weights_only`` loads, last/best/epoch files, full resume state.

A checkpoint is a dict of primitives and tensors only (so ``torch.load(weights_only=True)`` reads it)::

    format, task, model, optimizer, scheduler, scaler, step, epoch, batch_in_epoch, rng, config, metrics
"""

from __future__ import annotations

import os
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from aics.core.errors import UserError
from aics.core.io import atomic_write

FORMAT = "aics-ckpt-1"


def save_checkpoint(path: str | os.PathLike, payload: dict) -> None:
    """Atomically write ``payload``: a crash mid-write never destroys an existing file at ``path``."""
    with atomic_write(path, "wb") as f:
        torch.save(payload, f)


def load_checkpoint(path: str | os.PathLike, map_location: Any = "cpu", task: str | None = None) -> dict:
    """Load an aics checkpoint with ``weights_only=True`` (never executes code from the file)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: checkpoint not found; train first or check the path")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # truncated files, foreign pickles, non-torch files
        reason = (str(e).strip().splitlines() or ["empty or truncated file"])[0][:200]
        raise UserError(
            f"{path}: not a loadable aics checkpoint ({type(e).__name__}: {reason}); "
            "for foreign formats use the task's import command"
        ) from e
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise UserError(f"{path}: not an aics checkpoint (format tag missing); use the task's import command")
    if task is not None and ckpt.get("task") != task:
        raise UserError(f"{path}: is a '{ckpt.get('task')}' checkpoint, not '{task}'")
    return ckpt


def atomic_copy(src: str | os.PathLike, dst: str | os.PathLike) -> None:
    with open(src, "rb") as fin, atomic_write(dst, "wb") as fout:
        shutil.copyfileobj(fin, fout, length=1 << 20)


# ---- RNG state (python, numpy, torch, cuda) as weights_only-safe primitives ----


def capture_rng() -> dict:
    version, mt_state, gauss = random.getstate()
    np_state = np.random.get_state(legacy=False)
    rng = {
        "python": {"version": version, "state": torch.tensor(mt_state, dtype=torch.int64), "gauss": gauss},
        "numpy": {
            "key": torch.from_numpy(np_state["state"]["key"].astype(np.int64)),
            "pos": int(np_state["state"]["pos"]),
            "has_gauss": int(np_state["has_gauss"]),
            "gauss": float(np_state["gauss"]),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        rng["cuda"] = torch.cuda.get_rng_state_all()
    return rng


def restore_rng(rng: dict) -> None:
    """Restore a ``capture_rng`` state (its tensors may have been loaded onto any device)."""
    py = rng["python"]
    random.setstate((py["version"], tuple(int(x) for x in py["state"].tolist()), py["gauss"]))
    nps = rng["numpy"]
    np.random.set_state(
        {
            "bit_generator": "MT19937",
            "state": {"key": nps["key"].cpu().numpy().astype(np.uint32), "pos": nps["pos"]},
            "has_gauss": nps["has_gauss"],
            "gauss": nps["gauss"],
        }
    )
    torch.set_rng_state(rng["torch"].cpu())
    if "cuda" in rng and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in rng["cuda"]])


# ---- training state ----


def training_state(
    *,
    task: str,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any = None,
    scaler: Any = None,
    step: int = 0,
    epoch: int = 0,
    batch_in_epoch: int = 0,
    config: dict | None = None,
    metrics: dict | None = None,
    extra: dict | None = None,
    rng_per_rank: list | None = None,
) -> dict:
    """Everything needed to continue training exactly; ``epoch`` counts finished epochs.

    ``rng`` holds one ``capture_rng`` state per rank (under torchrun, pass ``rng_per_rank`` gathered from
    all ranks; alone, this process's state is taken).
    """
    model = getattr(model, "module", model)  # unwrap DDP
    return {
        "format": FORMAT,
        "task": task,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "scaler": scaler.state_dict() if scaler is not None and scaler.is_enabled() else None,
        "step": step,
        "epoch": epoch,
        "batch_in_epoch": batch_in_epoch,
        "rng": rng_per_rank if rng_per_rank is not None else [capture_rng()],
        "config": config or {},
        "metrics": metrics or {},
        "extra": extra or {},
    }


def restore_training_state(
    ckpt: dict,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any = None,
    scaler: Any = None,
    rank: int = 0,
) -> bool:
    """Load every state into the given objects; returns False when the RNG could not be restored exactly
    (the checkpoint came from a run with another number of ranks: rank 0's state is used)."""
    getattr(model, "module", model).load_state_dict(ckpt["model"])
    if optimizer is not None and ckpt.get("optimizer") is not None:
        optimizer.load_state_dict(ckpt["optimizer"])
    if scheduler is not None and ckpt.get("scheduler") is not None:
        scheduler.load_state_dict(ckpt["scheduler"])
    if scaler is not None and ckpt.get("scaler") is not None:
        scaler.load_state_dict(ckpt["scaler"])
    rngs = ckpt["rng"]
    exact = rank < len(rngs)
    restore_rng(rngs[rank] if exact else rngs[0])
    return exact


class CheckpointDir:
    """``<exp>/ckpt/{epoch-NNN.pt,last.pt,best.pt}``; ``last.pt`` is always the newest state."""

    def __init__(self, exp_dir: str | os.PathLike, keep_epochs: int = 0):
        self.dir = Path(exp_dir) / "ckpt"
        self.keep_epochs = keep_epochs  # 0 keeps every epoch file

    @property
    def last(self) -> Path:
        return self.dir / "last.pt"

    @property
    def best(self) -> Path:
        return self.dir / "best.pt"

    def epoch_path(self, epoch: int) -> Path:
        return self.dir / f"epoch-{epoch:03d}.pt"

    def save(self, payload: dict, epoch_end: bool = False, is_best: bool = False) -> None:
        """``last.pt`` is written last, so a crash midway leaves a last.pt from before this save, whose
        resume redoes the epoch end and rewrites best.pt and the epoch file."""
        first = self.epoch_path(payload["epoch"]) if epoch_end else self.best if is_best else self.last
        save_checkpoint(first, payload)
        if is_best and first != self.best:
            atomic_copy(first, self.best)
        if first != self.last:
            atomic_copy(first, self.last)
        if epoch_end:
            self._prune()

    def _prune(self) -> None:
        if self.keep_epochs <= 0:
            return
        epochs = sorted(self.dir.glob("epoch-*.pt"), key=lambda p: int(p.stem.split("-")[1]))
        for old in epochs[: -self.keep_epochs]:
            old.unlink()

    def resolve(self, which: str) -> Path:
        """'last', 'best', 'epoch-NNN' or a path."""
        if which in ("last", "best"):
            return getattr(self, which)
        if which.startswith("epoch-") and "/" not in which:
            return self.dir / f"{which}.pt"
        return Path(which)
