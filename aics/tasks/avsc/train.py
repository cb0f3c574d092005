"""Train one scene classifier (``model.system``); resumes from ``<exp>/ckpt/last.pt`` when one is there.

Usage: aics avsc train --data data/avsc/prepared --exp exp/avsc/early --set model.system=early

Cross-entropy over the ten scenes, AdamW with warm-up and cosine decay. After every epoch the valid split
(locations held out of the training fold) is scored: log loss (the challenge's clipping) and accuracy;
``best.pt`` has the lowest valid log loss. Modality dropout (``train.modality_dropout``) is drawn from a
generator seeded by the step, so a resumed run draws the same.
"""

from __future__ import annotations

import math
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from aics.core.ckpt import CheckpointDir, training_state
from aics.core.config import save_config, to_dict
from aics.core.dist import DistContext, wrap_model
from aics.core.errors import UserError
from aics.core.io import read_json
from aics.core.loader import EpochBatchSampler, build_loader
from aics.core.log import MetricsLogger, RunMeter, get_logger, progress
from aics.core.runtime import StopSignal, autocast, clipped_step, grad_scaler
from aics.core.trainloop import (
    RunSpec,
    after_step,
    check_finite_loss,
    close_epoch,
    data_fingerprint,
    finish,
    param_groups,
    resume,
    rng_states,
    seed_ranks,
    session,
    warmup_cosine,
)
from aics.tasks.avsc.config import AvscConfig
from aics.tasks.avsc.data import PREPARE_FILE, SceneSet, check_prepared
from aics.tasks.avsc.labels import SCENES
from aics.tasks.avsc.model import SceneNet, SceneNetConfig, drop_modality

TASK = "avsc"
SAFE_ON_RESUME: tuple[str, ...] = ()


class ClipSet(torch.utils.data.Dataset):
    def __init__(self, ds: SceneSet):
        self.ds = ds

    def __len__(self) -> int:
        return len(self.ds)

    def __getitem__(self, i: int):
        return (
            i,
            torch.from_numpy(self.ds.x["audio"][i]),
            torch.from_numpy(self.ds.x["video"][i]),
            int(self.ds.labels[i]),
        )


def collate(items: list):
    idx = torch.tensor([i for i, *_ in items])
    audio = torch.stack([a for _, a, _, _ in items])
    video = torch.stack([v for _, _, v, _ in items])
    labels = torch.tensor([y for *_, y in items])
    return idx, audio, video, labels


def net_config(cfg: AvscConfig, info: dict) -> SceneNetConfig:
    m = cfg.model
    return SceneNetConfig(system=m.system, audio_dim=info["audio"]["dim"], video_dim=info["video"]["dim"],
                          classes=len(SCENES), hidden=m.hidden, layers=m.layers, dropout=m.dropout,
                          pooling=m.pooling)  # fmt: skip


@torch.no_grad()
def posteriors(model: SceneNet, ds: SceneSet, device, batch_size: int = 256) -> np.ndarray:
    """(N, C) scene probabilities of every clip of ``ds``."""
    was = model.training
    model.eval()
    out = []
    for lo in range(0, len(ds), batch_size):
        a = torch.from_numpy(ds.x["audio"][lo : lo + batch_size]).to(device)
        v = torch.from_numpy(ds.x["video"][lo : lo + batch_size]).to(device)
        out.append(torch.softmax(model(a, v).float(), dim=1).cpu())
    model.train(was)
    return torch.cat(out).numpy() if out else np.zeros((0, len(SCENES)), np.float32)


def evaluate(model: SceneNet, ds: SceneSet, device) -> dict:
    from aics.tasks.avsc.metrics import accuracy, log_loss

    p = posteriors(model, ds, device)
    return {"log_loss": log_loss(ds.labels, p), "accuracy": accuracy(ds.labels, p)}


def train(cfg: AvscConfig, prepared: str | Path, exp_dir: str | Path, overwrite: bool = False) -> dict:
    """Train (or resume) one system; returns the last epoch's valid scores."""
    prepared, exp = check_prepared(prepared), Path(exp_dir)
    info = read_json(prepared / PREPARE_FILE)
    if cfg.model.dropout >= 1:
        raise UserError(f"model.dropout={cfg.model.dropout} must be below 1")
    if cfg.train.modality_dropout > 1:
        raise UserError(f"train.modality_dropout={cfg.train.modality_dropout} is a probability: 0 to 1")
    if info["splits"].get("valid", {}).get("clips", 0) == 0:
        raise UserError(
            f"{prepared}: has no valid clips to pick the best epoch; prepare with --valid-frac > 0"
        )
    data = data_fingerprint(prepared, (PREPARE_FILE, ".done"))
    spec = RunSpec(TASK, to_dict(cfg), data=data, safe=SAFE_ON_RESUME)
    with session(exp, overwrite, cfg.train, spec) as ctx:
        return _fit(cfg, spec, prepared, info, exp, ctx) if ctx is not None else {}


def _fit(cfg: AvscConfig, spec: RunSpec, prepared: Path, info: dict, exp: Path, ctx: DistContext) -> dict:
    log = get_logger()
    device, tc = ctx.device, cfg.train
    train_ds, valid_ds = SceneSet(prepared, "train"), SceneSet(prepared, "valid")
    seed_ranks(tc.seed, ctx)
    model = SceneNet(net_config(cfg, info)).to(device)
    sampler = EpochBatchSampler(
        len(train_ds), tc.batch_size, shuffle=True, seed=tc.seed, rank=ctx.rank, world_size=ctx.world_size
    )
    steps_per_epoch = sampler.batches_per_epoch()
    if steps_per_epoch == 0:
        raise UserError(f"{prepared}: {len(train_ds)} training clips make no batch of {tc.batch_size}")
    optimizer = torch.optim.AdamW(param_groups(model, tc.weight_decay), lr=tc.lr)
    scheduler = warmup_cosine(optimizer, tc.warmup_steps, tc.epochs * steps_per_epoch, tc.min_lr_ratio)
    scaler = grad_scaler(device, tc.amp)
    ckpts = CheckpointDir(exp, keep_epochs=tc.keep_epochs)
    step = epoch = batch_in_epoch = 0
    best = math.inf
    ckpt = resume(ckpts, spec, model, optimizer, scheduler, scaler, ctx)
    if ckpt is not None:
        step, epoch, batch_in_epoch = ckpt["step"], ckpt["epoch"], ckpt["batch_in_epoch"]
        best = ckpt["metrics"].get("best_valid", math.inf)
    meter = RunMeter.from_state(ckpt["extra"].get("meter") if ckpt else None, mid_epoch=batch_in_epoch > 0)
    if tc.max_steps and step >= tc.max_steps:
        log.info(f"already at train.max_steps={tc.max_steps} (step {step}); rerun without it to continue")
        return {}
    if ctx.is_main:
        save_config(cfg, exp / "config.yaml")
    n_params = sum(p.numel() for p in model.parameters())
    log.info(
        f"{cfg.model.system}: {n_params:,} parameters on {device}; {len(train_ds)} training clips, "
        f"{len(valid_ds)} valid, {steps_per_epoch} steps per epoch"
    )
    net = wrap_model(model, ctx)
    metrics = MetricsLogger(exp, enabled=ctx.is_main, resume_step=step, resume_epoch=epoch)
    fusion = cfg.model.system in ("early", "intermediate")

    def checkpoint(metrics_now: dict) -> dict:
        return training_state(
            task=TASK, model=model, optimizer=optimizer, scheduler=scheduler, scaler=scaler, step=step,
            epoch=epoch, batch_in_epoch=batch_in_epoch, config=to_dict(cfg),
            metrics={"best_valid": best, "parameters": n_params, **metrics_now},
            extra={"net": asdict(net_config(cfg, info)), "scenes": list(SCENES), "data": spec.data,
                   "meter": meter.state(), "world_size": ctx.world_size},
            rng_per_rank=rng_states(ctx),
        )  # fmt: skip

    valid: dict = {}
    with StopSignal() as stop, metrics:
        while epoch < tc.epochs:
            net.train()
            sampler.set_epoch(epoch, batch_in_epoch)
            source = build_loader(ClipSet(train_ds), sampler, num_workers=0, collate_fn=collate)
            bar = progress(
                source, total=len(sampler), desc=f"epoch {epoch + 1}/{tc.epochs}", enabled=ctx.is_main
            )
            meter.start()
            for _, audio, video, labels in bar:
                if fusion and tc.modality_dropout > 0:
                    gen = torch.Generator().manual_seed(tc.seed * 1_000_003 + step * 101 + ctx.rank)
                    audio, video = drop_modality(audio, video, tc.modality_dropout, gen)
                audio, video, labels = audio.to(device), video.to(device), labels.to(device)
                with autocast(device, tc.amp):
                    logits = net(audio, video)
                loss = torch.nn.functional.cross_entropy(logits.float(), labels)
                check_finite_loss(loss.item(), step, scaler, ckpts, ctx)
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                clipped_step(optimizer, scaler, model.parameters(), tc.clip)
                scheduler.step()
                step += 1
                batch_in_epoch += 1
                n = len(labels) * ctx.world_size
                meter.add(loss=loss.item() * n, clips=n)
                if step % tc.log_every == 0:
                    now = {"loss": loss.item(), "lr": optimizer.param_groups[0]["lr"]}
                    metrics.scalars("train", step, now, epoch=epoch + 1)
                    bar.set_postfix(loss=f"{now['loss']:.3f}")
                if after_step(step, tc, ckpts, lambda: checkpoint({}), ctx, stop):
                    return {}
            meter.pause()
            epoch += 1
            batch_in_epoch = 0
            train_loss = meter.epoch_means("clips", "loss").get("loss")
            meter.end_epoch()
            valid = evaluate(model, valid_ds, device) if ctx.is_main else {}
            if train_loss is not None:
                metrics.scalars("train_epoch", step, {"loss": train_loss}, epoch=epoch)
            metrics.scalars("valid", step, valid, epoch=epoch)
            is_best = bool(valid) and valid["log_loss"] < best
            best = min(best, valid.get("log_loss", math.inf))
            line = ""
            if ctx.is_main:
                parts = [f"train loss {train_loss:.4f}"] if train_loss is not None else []
                parts.append(
                    f"valid log loss {valid['log_loss']:.4f}, accuracy {100 * valid['accuracy']:.2f}%"
                )
                parts.append(f"lr {optimizer.param_groups[0]['lr']:.2e}" + (" *best*" if is_best else ""))
                line = f"epoch {epoch}/{tc.epochs} step {step}: " + ", ".join(parts)
            close_epoch(ckpts, checkpoint({"valid": valid}), ctx, stop, epoch, is_best, line)
    finish(exp, spec, ctx, {"step": step, "epoch": epoch, "reason": "all epochs done"})
    return valid
