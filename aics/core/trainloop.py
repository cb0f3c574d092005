"""The pieces every trainer shares around its own, written-out loop: opening the experiment on all ranks
(one process per experiment, a finished run is skipped, a crashed one resumes), checking a resumed run's
config and data against its checkpoint, per-rank seeding and RNG capture, and stopping with a checkpoint.

    spec = RunSpec(TASK, to_dict(cfg), data=data_fingerprint(...))
    with session(exp, overwrite, cfg.train, spec) as ctx:   # None: already done
        ckpt = resume(ckpts, spec, model, optimizer, scheduler, scaler, ctx)
        ...
        payload = training_state(..., rng_per_rank=rng_states(ctx))   # on every rank
        ...
        finish(exp, spec, ctx, {"step": step, ...})                   # .done with the applied config

Changing the config of an experiment that has a checkpoint: only the keys in ``SAFE_ON_RESUME`` (plus a
task's own ``RunSpec.safe``) may differ from the checkpoint's; they take effect from the resumed step on.
Any other changed key, or other data, is refused with the key names; ``--overwrite`` or another ``--exp``
starts afresh. A finished experiment is skipped when rerun with the same config; with a larger
``train.epochs`` it continues training to the new end; with any other change it is refused.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

from aics.core import lock
from aics.core.ckpt import CheckpointDir, capture_rng, load_checkpoint, peek, restore_training_state
from aics.core.config import RunOptions, diff_keys, flatten
from aics.core.dist import DistContext, any_rank, broadcast_object, cleanup, gather_objects, init_distributed
from aics.core.errors import UserError
from aics.core.io import remove_stale_temps
from aics.core.log import get_logger, setup_logging
from aics.core.runtime import seed_everything, set_deterministic
from aics.core.stage import DONE, begin_stage, done_info, is_done, mark_done, overwrite_hint

# Keys that may change when an experiment is resumed: when and how long to train, how often to log and
# save, where to run. They change neither the model nor the data order nor the optimisation so far.
SAFE_ON_RESUME = (
    "train.epochs",
    "train.max_steps",
    "train.log_every",
    "train.save_every_steps",
    "train.keep_epochs",
    "train.device",
    "train.num_workers",
)
# What a run that died before its first checkpoint leaves behind: it may start again from scratch.
EARLY_LEFTOVERS = {"config.yaml", "log", "tb"}


@dataclasses.dataclass
class RunSpec:
    """What a training run is: its task, resolved config (primitives), the data it reads (a fingerprint
    from ``data_fingerprint``), the task's own keys that are safe to change on resume, and the keys a later
    version added (dotted key -> the value that behaves as before): an experiment recorded without such a
    key matches a config holding that value, so upgrading aics does not strand a run."""

    task: str
    config: dict
    data: dict | None = None
    safe: tuple[str, ...] = ()
    added: dict = dataclasses.field(default_factory=dict)

    @property
    def safe_keys(self) -> tuple[str, ...]:
        return SAFE_ON_RESUME + tuple(self.safe)


def data_fingerprint(data_dir: str | Path, files: tuple[str, ...]) -> dict:
    """``{"path", "sha256"}`` of a prepared data directory: the hash of the files that define its content
    (e.g. stats.json and vocab.txt), so moved data still match and regenerated data do not."""
    digest = hashlib.sha256()
    for name in files:
        digest.update(name.encode() + b"\0")
        path = Path(data_dir) / name
        digest.update(path.read_bytes() if path.is_file() else b"(missing)")
    return {"path": str(Path(data_dir).resolve()), "sha256": digest.hexdigest()}


def describe_changes(old: dict, new: dict, keys: list[str]) -> str:
    fo, fn = flatten(old), flatten(new)
    return ", ".join(f"{k} {fo.get(k)!r} -> {fn.get(k)!r}" for k in keys)


def refused_changes(saved: dict, spec: RunSpec) -> list[str]:
    old, new = flatten(saved), flatten(spec.config)

    def added_as_before(key: str) -> bool:
        return key not in old and key in spec.added and new.get(key) == spec.added[key]

    return [k for k in diff_keys(saved, spec.config) if k not in spec.safe_keys and not added_as_before(k)]


def check_data(saved: dict | None, spec: RunSpec, where: Path) -> None:
    if saved is None or spec.data is None or saved.get("sha256") == spec.data.get("sha256"):
        return
    raise UserError(
        f"{where}: was trained on other data ({saved.get('path')}, not {spec.data.get('path')}); pass the "
        f"same --data to continue, or {overwrite_hint()} to start again, or use another --exp"
    )


def experiment_task(exp: Path) -> str | None:
    """The task an existing experiment belongs to (from its .done or its last checkpoint), if known."""
    task = done_info(exp).get("task") if is_done(exp) else None
    if task is None and (exp / "ckpt" / "last.pt").is_file():
        task = (peek(exp / "ckpt" / "last.pt") or {}).get("task")
    return task


def resumable(exp: Path) -> bool:
    """A directory a trainer made (it has checkpoints or a config.yaml), or one a run left before its first
    checkpoint: training goes on there instead of refusing it as half-written."""
    names = {p.name for p in exp.iterdir() if p.name != lock.LOCK}
    return "ckpt" in names or "config.yaml" in names or names <= EARLY_LEFTOVERS


def _check_target(exp: Path, overwrite: bool, spec: RunSpec) -> None:
    """Refuse an --exp that is no experiment of this task: one holding the --data, another stage's output,
    another task's experiment (``--overwrite`` would delete them)."""
    data = Path(spec.data["path"]) if spec.data else None
    if data is not None and (data == exp.resolve() or exp.resolve() in data.parents):
        raise UserError(f"--exp {exp} holds the --data {data}; choose another --exp")
    if not exp.is_dir():
        return
    if is_done(exp) and not (exp / "ckpt").is_dir() and not (exp / "config.yaml").is_file():
        raise UserError(
            f"{exp}: holds the finished output of another stage, not a training run; use another --exp"
        )
    task = None if overwrite else experiment_task(exp)
    if task is not None and task != spec.task:
        raise UserError(f"{exp}: is a '{task}' experiment, not '{spec.task}'; use another --exp")


def _open(exp: Path, overwrite: bool, spec: RunSpec) -> bool:
    """Rank 0's decision: True to train (from scratch or resumed), False when the run is already done."""
    _check_target(exp, overwrite, spec)
    lock.acquire(exp, "training run")
    try:
        if not overwrite and is_done(exp) and not _reopen_finished(exp, spec):
            return begin_stage(exp, False, "train")  # prints "already done" and releases the lock
        # what a killed run was writing (ckpt/ is cleaned by recover() below); we hold the lock
        for d in (exp, exp / "log"):
            remove_stale_temps(d)
        if not begin_stage(exp, overwrite, "train", lambda p: lock.found_stale(p) or resumable(p)):
            return False
        promoted = CheckpointDir(exp).recover()
        if promoted is not None:
            print(f"train: finished an interrupted checkpoint save from {promoted}", file=sys.stderr)
        return True
    except BaseException:
        lock.release(exp)
        raise


def _reopen_finished(exp: Path, spec: RunSpec) -> bool:
    """For a finished experiment: refuse a changed config; True when it should train on (more epochs)."""
    info = done_info(exp)
    saved = info.get("config")
    if saved is None:  # finished before configs were recorded in .done
        return False
    refused = refused_changes(saved, spec)
    if refused:
        raise UserError(
            f"{exp}: finished with other settings ({describe_changes(saved, spec.config, refused)}); "
            f"{overwrite_hint()} to train again with these, or use another --exp"
        )
    check_data(info.get("data"), spec, exp)
    epochs = spec.config.get("train", {}).get("epochs")
    trained = info.get("epoch")
    if info.get("reason", "all epochs done") != "all epochs done" or not isinstance(trained, int):
        return False  # stopped early: more epochs would stop again at once
    if isinstance(epochs, int) and epochs > trained:
        (exp / DONE).unlink()
        print(f"train: {exp} finished {trained} epochs; continuing to train.epochs={epochs}", file=sys.stderr)
        return True
    return False


def open_experiment(exp: Path, overwrite: bool, ctx: DistContext, spec: RunSpec) -> bool:
    """Rank 0 decides whether training runs; every rank gets the decision, or the same one-line error, so
    no rank is left waiting at a barrier."""
    decision: tuple[str, str] = ("run", "")
    if ctx.is_main:
        try:
            decision = ("run", "") if _open(exp, overwrite, spec) else ("skip", "")
        except UserError as e:
            decision = ("error", str(e))
    kind, message = broadcast_object(decision, ctx)
    if kind == "error":
        raise UserError(message)
    return kind == "run"


@contextmanager
def session(exp: Path, overwrite: bool, run: RunOptions, spec: RunSpec) -> Iterator[DistContext | None]:
    """Join torchrun's process group (if any), open (and lock) the experiment, set up logging, seeding and
    determinism; yields None when the experiment is already done. On the way out every rank leaves the
    process group (after a barrier when all went well), so no rank exits with gloo/NCCL threads alive."""
    ctx = init_distributed(run.device)
    ok = False
    try:
        if not open_experiment(exp, overwrite, ctx, spec):
            yield None
        else:
            setup_logging(exp / "log" / "train.log", ctx.is_main)
            seed_everything(run.seed)
            set_deterministic(run.deterministic)
            yield ctx
        ok = True
    finally:
        lock.release(exp)
        cleanup(ctx, sync=ok)


def seed_ranks(seed: int, ctx: DistContext) -> None:
    """After the model is built: each rank draws its own dropout/noise (weights come from rank 0 via DDP)."""
    if ctx.rank:
        seed_everything(seed + ctx.rank)


def rng_states(ctx: DistContext) -> list:
    """Every rank's RNG state, for the checkpoint (a collective: call it on every rank at the same step)."""
    return gather_objects(capture_rng(), ctx)


def resume(
    ckpts: CheckpointDir,
    spec: RunSpec,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler,
    scaler,
    ctx: DistContext,
) -> dict | None:
    """Restore ``last.pt`` if there is one, refusing a changed config (other than the safe keys) or other
    data; returns the checkpoint or None."""
    if not ckpts.last.is_file():
        return None
    log = get_logger()
    ckpt = load_checkpoint(ckpts.last, map_location="cpu", task=spec.task)  # load_state_dict moves it
    refused = refused_changes(ckpt["config"], spec)
    if refused:
        raise UserError(
            f"{ckpts.dir.parent}: its unfinished run used other settings "
            f"({describe_changes(ckpt['config'], spec.config, refused)}); rerun with the same settings to "
            f"resume, {overwrite_hint()} to start again with these, or use another --exp "
            f"(safe to change on resume: {', '.join(spec.safe_keys)})"
        )
    check_data(ckpt["extra"].get("data"), spec, ckpts.dir.parent)
    epochs = spec.config.get("train", {}).get("epochs")
    in_progress = ckpt["epoch"] + (1 if ckpt["batch_in_epoch"] else 0)
    if isinstance(epochs, int) and epochs < in_progress:
        raise UserError(
            f"{ckpts.dir.parent}: train.epochs={epochs} ends before the epoch the run is in ({in_progress}); "
            f"pass train.epochs={in_progress} or more to resume it, or {overwrite_hint()} to start again"
        )
    changed = diff_keys(ckpt["config"], spec.config)
    if changed:
        log.info(f"resuming with {describe_changes(ckpt['config'], spec.config, changed)}")
    exact = restore_training_state(ckpt, model, optimizer, scheduler, scaler, rank=ctx.rank)
    if not exact or ckpt["extra"].get("world_size", 1) != ctx.world_size:
        log.warning("resuming with a different number of processes: training goes on, but not bit-exactly")
    where = f"step {ckpt['step']} (epoch {ckpt['epoch'] + 1}, batch {ckpt['batch_in_epoch']})"
    log.info(f"resuming from {ckpts.last}: {where}")
    return ckpt


def save_and_stop(ckpts: CheckpointDir, payload: dict, ctx: DistContext, reason: str) -> None:
    if ctx.is_main:
        ckpts.save(payload)
    get_logger().info(
        f"{reason} at step {payload['step']}; {ckpts.last} saved, rerun the same command to resume"
    )


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """AdamW groups: weight decay on weight matrices and kernels, none on biases and norm scales."""
    decay = [p for p in model.parameters() if p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.ndim <= 1]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def warmup_cosine(optimizer, warmup: int, total: int, min_ratio: float):
    """Linear warm-up over ``warmup`` steps, then a cosine decay to ``min_ratio`` of the peak at ``total``."""

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        done = min(1.0, (step - warmup) / max(1, total - warmup))
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * done))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def after_step(
    step: int, run: RunOptions, ckpts: CheckpointDir, state: Callable[[], dict], ctx: DistContext, stop
) -> bool:
    """What every trainer does after an optimizer step, on every rank at the same step: at
    ``train.max_steps`` save ``last.pt`` and return True (the caller stops); on a signal (``stop``, a
    ``StopSignal``) on any rank save and raise KeyboardInterrupt; every ``train.save_every_steps`` save.
    ``state()`` builds the checkpoint payload (a collective under DDP: it gathers every rank's RNG)."""
    if run.max_steps and step >= run.max_steps:
        save_and_stop(ckpts, state(), ctx, f"train.max_steps={run.max_steps} reached")
        return True
    if any_rank(stop.requested, ctx):
        save_and_stop(ckpts, state(), ctx, "interrupted")
        raise KeyboardInterrupt
    if run.save_every_steps and step % run.save_every_steps == 0:
        payload = state()
        if ctx.is_main:
            ckpts.save(payload)
    return False


def close_epoch(
    ckpts: CheckpointDir, payload: dict, ctx: DistContext, stop, epoch: int, is_best: bool, line: str
) -> None:
    """What every trainer does once an epoch is scored: the main rank saves the epoch's checkpoint (and
    ``best.pt`` when ``is_best``) and logs ``line``, the epoch's summary; then every rank waits, and all stop
    together (KeyboardInterrupt) when a signal reached any of them during the epoch. ``payload`` is built on
    every rank (it gathers their RNG states)."""
    from aics.core.dist import barrier

    if ctx.is_main:
        ckpts.save(payload, epoch_end=True, is_best=is_best)
        get_logger().info(line)
    barrier(ctx)
    if any_rank(stop.requested, ctx):
        get_logger().info(f"interrupted after epoch {epoch}; rerun the same command to resume")
        raise KeyboardInterrupt


def check_finite_loss(value: float, step: int, scaler, ckpts: CheckpointDir, ctx: DistContext) -> None:
    """Stop, on every rank at once, before an update with a non-finite loss (which would turn every weight
    into NaN), in one line naming the last saved state. Not with fp16's scaler: it skips such steps itself."""
    import math

    if not scaler.is_enabled() and any_rank(not math.isfinite(value), ctx):
        raise UserError(
            f"step {step}: the loss is not finite ({value}); stopped before the update ({ckpts.last} holds "
            f"the last saved state): lower train.lr or set train.clip, and train again ({overwrite_hint()}, "
            "or use another --exp)"
        )


def finish(exp: Path, spec: RunSpec, ctx: DistContext, info: dict) -> None:
    """Rank 0 writes ``.done`` with the task, the applied config and the data, and releases the lock."""
    if ctx.is_main:
        mark_done(exp, {"task": spec.task, **info, "config": spec.config, "data": spec.data})
