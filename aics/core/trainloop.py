"""The pieces every trainer shares around its own, written-out loop: opening the experiment on all ranks,
resuming from ``last.pt``, per-rank seeding and RNG capture, and stopping with a checkpoint.

    with session(exp, overwrite, cfg.train) as ctx:   # None: already done
    ckpt = resume(ckpts, cfg_dict, model, optimizer, scheduler, scaler, ctx, task)
    ...
    payload = training_state(..., rng_per_rank=rng_states(ctx))   # on every rank
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

from aics.core.ckpt import CheckpointDir, capture_rng, load_checkpoint, restore_training_state
from aics.core.config import RunOptions, diff_keys
from aics.core.dist import DistContext, broadcast_object, cleanup, gather_objects, init_distributed
from aics.core.errors import UserError
from aics.core.log import get_logger, setup_logging
from aics.core.runtime import seed_everything, set_deterministic
from aics.core.stage import begin_stage

# What a run that died before its first checkpoint leaves behind: it may start again from scratch.
EARLY_LEFTOVERS = {"config.yaml", "log", "tb"}
# Keys whose change makes a mid-epoch resume continue with a different data order.
DATA_ORDER_KEYS = ("train.batch_size", "train.seed", "train.bptt")


def resumable(exp: Path) -> bool:
    return (exp / "ckpt" / "last.pt").is_file() or {p.name for p in exp.iterdir()} <= EARLY_LEFTOVERS


def open_experiment(exp: Path, overwrite: bool, ctx: DistContext) -> bool:
    """Rank 0 decides whether training runs (see ``begin_stage``); every rank gets the decision, or the
    same one-line error, so no rank is left waiting at a barrier."""
    decision: tuple[str, str] = ("run", "")
    if ctx.is_main:
        try:
            decision = ("run", "") if begin_stage(exp, overwrite, "train", resumable) else ("skip", "")
        except UserError as e:
            decision = ("error", str(e))
    kind, message = broadcast_object(decision, ctx)
    if kind == "error":
        raise UserError(message)
    return kind == "run"


@contextmanager
def session(exp: Path, overwrite: bool, run: RunOptions) -> Iterator[DistContext | None]:
    """Join torchrun's process group (if any), open the experiment, set up logging, seeding and
    determinism; yields None when the experiment is already done. On the way out every rank leaves the
    process group (after a barrier when all went well), so no rank exits with gloo/NCCL threads alive."""
    ctx = init_distributed(run.device)
    ok = False
    try:
        if not open_experiment(exp, overwrite, ctx):
            yield None
        else:
            setup_logging(exp / "log" / "train.log", ctx.is_main)
            seed_everything(run.seed)
            set_deterministic(run.deterministic)
            yield ctx
        ok = True
    finally:
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
    config: dict,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler,
    scaler,
    ctx: DistContext,
    task: str,
) -> dict | None:
    """Restore ``last.pt`` if there is one (refusing a different model); returns the checkpoint or None."""
    if not ckpts.last.is_file():
        return None
    log = get_logger()
    ckpt = load_checkpoint(ckpts.last, map_location="cpu", task=task)  # load_state_dict moves to the device
    changed = diff_keys(ckpt["config"], config)
    model_changes = [k for k in changed if k.startswith("model.")]
    if model_changes:
        raise UserError(
            f"{ckpts.last}: was trained with a different model ({', '.join(model_changes)}); "
            "pass --overwrite to start again, or use another --exp"
        )
    exact = restore_training_state(ckpt, model, optimizer, scheduler, scaler, rank=ctx.rank)
    if not exact or ckpt["extra"].get("world_size", 1) != ctx.world_size:
        log.warning("resuming with a different number of processes: training goes on, but not bit-exactly")
    order = [k for k in changed if k in DATA_ORDER_KEYS]
    if order and ckpt["batch_in_epoch"]:
        log.warning(
            f"{', '.join(order)} changed in the middle of an epoch: the rest of it sees another order"
        )
    where = f"step {ckpt['step']} (epoch {ckpt['epoch'] + 1}, batch {ckpt['batch_in_epoch']})"
    log.info(f"resuming from {ckpts.last}: {where}")
    return ckpt


def save_and_stop(ckpts: CheckpointDir, payload: dict, ctx: DistContext, reason: str) -> None:
    if ctx.is_main:
        ckpts.save(payload)
    get_logger().info(
        f"{reason} at step {payload['step']}; {ckpts.last} saved, rerun the same command to resume"
    )
