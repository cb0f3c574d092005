"""Checkpoints: atomic writes, ``weights_only`` loads, last/best/epoch files, full resume state.

A checkpoint is a dict of primitives and tensors only (so ``torch.load(weights_only=True)`` reads it)::

    format, task, model, optimizer, scheduler, scaler, step, epoch, batch_in_epoch, rng, config, metrics
"""

from __future__ import annotations

import os
import pickle
import random
import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from aics.core.errors import UserError
from aics.core.io import atomic_copy, atomic_write, remove_stale_temps
from aics.core.paths import checkpoint_file

FORMAT = "aics-ckpt-1"


class _WriteErrors:
    """A file wrapper that remembers the OSError of a failed write: torch.save reports a full disk as a
    RuntimeError of its zip writer, and the caller wants the OSError (ENOSPC) it came from."""

    def __init__(self, f):
        self.f, self.error = f, None

    def write(self, data) -> int:
        try:
            return self.f.write(data)
        except OSError as e:
            self.error = e
            raise

    def flush(self) -> None:
        self.f.flush()


def save_checkpoint(path: str | os.PathLike, payload: dict) -> None:
    """Atomically write ``payload``: a crash mid-write never destroys an existing file at ``path``."""
    with atomic_write(path, "wb") as f:
        sink = _WriteErrors(f)
        try:
            torch.save(payload, sink)
        except RuntimeError:
            if sink.error is not None:
                raise sink.error from None
            raise


# Tasks with an importer for other tools' checkpoints (``aics <task> import``).
IMPORTERS = ("detect",)


def _foreign_hint(task: str | None) -> str:
    if task in IMPORTERS:
        return f"for a foreign format use `aics {task} import`"
    return "for a foreign format use the task's import command, where it has one"


def load_checkpoint(path: str | os.PathLike, map_location: Any = "cpu", task: str | None = None) -> dict:
    """Load an aics checkpoint with ``weights_only=True`` (never executes code from the file)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: checkpoint not found; train first or check the path")
    try:
        with warnings.catch_warnings():  # torch warns about old pickle protocols before refusing them
            warnings.simplefilter("ignore")
            ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError:
        # torch's own message goes on to advise weights_only=False, which would run code from the file
        raise UserError(
            f"{path}: not an aics checkpoint, or it holds objects other than tensors and plain values; "
            f"not loaded ({_foreign_hint(task)})"
        ) from None
    except Exception as e:  # torch's legacy reader fails on random bytes in many ways (KeyError, EOF, ...)
        if isinstance(e, OSError) and not isinstance(e, zipfile.BadZipFile) and e.filename:
            raise
        raise UserError(
            f"{path}: not a loadable checkpoint (empty, truncated or not written by torch); not loaded; "
            "train again or check the path"
        ) from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise UserError(f"{path}: not an aics checkpoint (format tag missing); use the task's import command")
    if task is not None and ckpt.get("task") != task:
        raise UserError(f"{path}: is a '{ckpt.get('task')}' checkpoint, not '{task}'")
    return ckpt


def require_parts(ckpt: dict, path: str | os.PathLike, parts: tuple[str, ...] = ("model", "config", "extra")):
    """Check that a checkpoint has the dict-valued parts a loader reads (a hand-made or damaged file may
    carry the format tag without them)."""
    for part in parts:
        if not isinstance(ckpt.get(part), dict):
            raise UserError(
                f"{path}: an incomplete aics checkpoint (no '{part}'); use one written by `aics <task> train`"
            )


def load_weights(model: torch.nn.Module, state: dict, path: str | os.PathLike) -> None:
    """``model.load_state_dict(state)`` with a one-line error when the weights do not fit the model."""
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError) as e:
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
        raise UserError(f"{path}: its weights do not fit the model its config describes ({reason})") from None


def average_weights(states: list[dict], paths: list | None = None) -> dict:
    """The element-wise mean of model state dicts (the last epochs of one run, as icefall's ``--avg`` and
    ESPnet's checkpoint averaging do). Floating tensors (BatchNorm statistics included) are averaged in
    float64 and cast back; integer ones (BatchNorm's batch counter) are taken from the last state."""
    if not states:
        raise ValueError("nothing to average")
    names = paths or [f"state {i}" for i in range(len(states))]
    out = {}
    for k, last in states[-1].items():
        for s, name in zip(states, names, strict=True):
            if k not in s or s[k].shape != last.shape:
                raise UserError(
                    f"{name}: its weights differ in shape from {names[-1]} ({k}); average one run only"
                )
        if last.is_floating_point():
            out[k] = (sum(s[k].double() for s in states) / len(states)).to(last.dtype)
        else:
            out[k] = last.clone()
    return out


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


def peek(path: str | os.PathLike) -> dict | None:
    """A checkpoint's small fields (step, epoch, task, is_best) without reading its tensors (memory-mapped);
    None when the file is missing or unreadable."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:
        return None
    if not isinstance(ckpt, dict):
        return None
    return {k: ckpt.get(k) for k in ("format", "task", "step", "epoch", "batch_in_epoch", "is_best")}


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

    def epoch_files(self) -> list[Path]:
        """``epoch-NNN.pt`` files, oldest first."""
        files = [p for p in self.dir.glob("epoch-*.pt") if p.stem.split("-")[1].isdigit()]
        return sorted(files, key=lambda p: int(p.stem.split("-")[1]))

    def save(self, payload: dict, epoch_end: bool = False, is_best: bool = False) -> None:
        """Write the epoch file (or best.pt) first, then copy it to best.pt and last.pt. A crash midway
        leaves a newer state in the first file than in last.pt; ``recover`` finishes the copies."""
        payload["is_best"] = is_best  # so recover() knows whether best.pt still needs this state
        first = self.epoch_path(payload["epoch"]) if epoch_end else self.best if is_best else self.last
        save_checkpoint(first, payload)
        if is_best and first != self.best:
            atomic_copy(first, self.best)
        if first != self.last:
            atomic_copy(first, self.last)
        if epoch_end:
            self._prune()

    def recover(self) -> Path | None:
        """Finish a save that a crash (or a full disk) cut short: remove stale temp files and, when the
        newest epoch file or best.pt holds a later step than last.pt (or last.pt is missing), copy it to
        best.pt (if it was a best) and last.pt. Returns the file promoted, if any. Call it while holding
        the experiment's lock."""
        remove_stale_temps(self.dir)
        last = peek(self.last) if self.last.is_file() else None
        last_step = last["step"] if last and isinstance(last.get("step"), int) else -1
        candidates = self.epoch_files()[-1:] + [self.best]
        newest, newest_info = None, None
        for path in candidates:
            info = peek(path) if path.is_file() else None
            step = info.get("step") if info else None
            if not isinstance(step, int) or step <= last_step:
                continue
            if newest_info is None or step > newest_info["step"]:
                newest, newest_info = path, info
        if newest is None:
            return None
        if newest_info.get("is_best") and newest != self.best:
            atomic_copy(newest, self.best)
        atomic_copy(newest, self.last)
        return newest

    def _prune(self) -> None:
        if self.keep_epochs <= 0:
            return
        for old in self.epoch_files()[: -self.keep_epochs]:
            old.unlink()

    def resolve(self, which: str) -> Path:
        """'last', 'best', 'epoch-NNN' or a path."""
        return checkpoint_file(self.dir.parent, which)
