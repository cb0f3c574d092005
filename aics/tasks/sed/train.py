"""Train a CRNN on weakly labelled clips (clip tags, BCE); resumes from ``<exp>/ckpt/last.pt`` when there.

Usage: aics sed train --data data/sed/feats --exp exp/sed/crnn_cpu --conf recipes/sed_crnn/conf/cpu.yaml

Only the clip-level output is trained (the weak labels say which events a clip holds, not when). After
every epoch the strongly labelled valid split is post-processed into events and scored like the test:
macro event-based F1 (sed_eval's DCASE2018 settings), segment-based F1 and error rate, clip tagging F1 and
the clip BCE, all in TensorBoard and ``log/metrics.jsonl``; ``best.pt`` has the best ``train.select`` score.
Augmentation (time shift, SpecAugment, mixup) is drawn per clip and epoch from seeded generators, so a
resumed run continues exactly. Under ``torchrun`` each rank takes its slice of every global batch.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from aics.core.ckpt import CheckpointDir, training_state
from aics.core.config import from_dict, save_config, to_dict
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
from aics.tasks.sed.config import FeatureConfig, SedConfig
from aics.tasks.sed.data import FEATURES_FILE, Collate, SedSet, check_features
from aics.tasks.sed.infer import class_thresholds, evaluate
from aics.tasks.sed.labels import CLASSES
from aics.tasks.sed.model import build_model, parameter_count

TASK = "sed"
SAFE_ON_RESUME = ("train.eval_batch_size",)


def clip_loss(clip_probs: torch.Tensor, tags: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of the clip probabilities against the (possibly mixed) clip tags, in float32
    (outside autocast, where BCE on probabilities is not allowed)."""
    return torch.nn.functional.binary_cross_entropy(clip_probs.float(), tags.float())


def check_model(cfg: SedConfig, n_mels: int) -> None:
    """Settings that cannot work, as one line before anything is opened."""
    mc = cfg.model
    if not (len(mc.channels) == len(mc.time_pool) == len(mc.freq_pool)) or not mc.channels:
        raise UserError(
            f"model.channels, model.time_pool and model.freq_pool need one entry per conv block (have "
            f"{len(mc.channels)}, {len(mc.time_pool)}, {len(mc.freq_pool)})"
        )
    if min((*mc.channels, *mc.time_pool, *mc.freq_pool)) < 1:
        raise UserError("model.channels, model.time_pool and model.freq_pool take whole numbers >= 1")
    if math.prod(mc.freq_pool) > n_mels:
        raise UserError(
            f"model.freq_pool pools the {n_mels} mel bands by {math.prod(mc.freq_pool)}, more than there "
            "are; pool less"
        )
    if mc.dropout >= 1:
        raise UserError(f"model.dropout={mc.dropout} must be below 1")
    if cfg.augment.mixup_prob > 1:
        raise UserError(f"augment.mixup_prob={cfg.augment.mixup_prob} is a share: 0 to 1")
    if cfg.augment.mixup and cfg.augment.mixup_alpha <= 0:
        raise UserError("augment.mixup_alpha must be above 0 for mixup (Beta(alpha, alpha) weights)")
    class_thresholds(cfg.post)


def train(cfg: SedConfig, feats_dir: str | Path, exp_dir: str | Path, overwrite: bool = False) -> dict:
    """Train (or resume) one experiment; returns the last epoch's valid scores."""
    feats_dir, exp = check_features(feats_dir), Path(exp_dir)
    recorded = read_json(feats_dir / FEATURES_FILE)
    check_model(cfg, recorded["dim"])
    for key in ("train_set", "valid_set"):
        name = getattr(cfg.train, key)
        if name not in recorded["splits"]:
            raise UserError(
                f"{feats_dir}: has no split {name!r} for train.{key}; choose one of "
                f"{', '.join(recorded['splits'])}"
            )
    if recorded["splits"][cfg.train.valid_set]["kind"] != "strong":
        raise UserError(f"train.valid_set={cfg.train.valid_set!r} has no strong labels; use test or eval")
    if recorded["splits"][cfg.train.train_set]["kind"] == "unlabelled":
        raise UserError(f"train.train_set={cfg.train.train_set!r} has no labels; train on weak (or test)")
    cfg.features = from_dict(FeatureConfig, recorded["features"], str(feats_dir / FEATURES_FILE))
    data = data_fingerprint(feats_dir, (FEATURES_FILE, ".done"))
    spec = RunSpec(TASK, to_dict(cfg), data=data, safe=SAFE_ON_RESUME)
    with session(exp, overwrite, cfg.train, spec) as ctx:
        return _fit(cfg, spec, feats_dir, recorded, exp, ctx) if ctx is not None else {}


def _fit(cfg: SedConfig, spec: RunSpec, feats_dir: Path, info: dict, exp: Path, ctx: DistContext) -> dict:
    log = get_logger()
    device, tc = ctx.device, cfg.train
    train_ds = SedSet(feats_dir, tc.train_set)
    valid_ds = SedSet(feats_dir, tc.valid_set)
    seed_ranks(tc.seed, ctx)
    model = build_model(cfg.model, info["dim"], len(CLASSES)).to(device)
    sampler = EpochBatchSampler(
        len(train_ds), tc.batch_size, shuffle=True, seed=tc.seed, rank=ctx.rank, world_size=ctx.world_size
    )
    steps_per_epoch = sampler.batches_per_epoch()
    optimizer = torch.optim.AdamW(param_groups(model, tc.weight_decay), lr=tc.lr)
    scheduler = warmup_cosine(optimizer, tc.warmup_steps, tc.epochs * steps_per_epoch, tc.min_lr_ratio)
    scaler = grad_scaler(device, tc.amp)
    ckpts = CheckpointDir(exp, keep_epochs=tc.keep_epochs)
    collate = Collate(cfg.augment, seed=tc.seed, frame_seconds=train_ds.frame_seconds)

    step = epoch = batch_in_epoch = 0
    best = -math.inf
    ckpt = resume(ckpts, spec, model, optimizer, scheduler, scaler, ctx)
    if ckpt is not None:
        step, epoch, batch_in_epoch = ckpt["step"], ckpt["epoch"], ckpt["batch_in_epoch"]
        best = ckpt["metrics"].get("best_valid", -math.inf)
    meter = RunMeter.from_state(ckpt["extra"].get("meter") if ckpt else None, mid_epoch=batch_in_epoch > 0)
    if tc.max_steps and step >= tc.max_steps:
        log.info(f"already at train.max_steps={tc.max_steps} (step {step}); rerun without it to continue")
        return {}
    if ctx.is_main:
        save_config(cfg, exp / "config.yaml")
    n_params = parameter_count(model)
    hours = len(train_ds) * cfg.features.clip_seconds / 3600
    log.info(
        f"CRNN: {n_params:,} parameters on {device}; {cfg.model.pooling} pooling; {len(train_ds):,} weakly "
        f"labelled clips ({hours:.2f} h), {steps_per_epoch} steps per epoch; valid: {len(valid_ds)} "
        f"{tc.valid_set} clips"
    )
    if ctx.world_size > 1 and device.type == "cuda":
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    net = wrap_model(model, ctx)
    metrics = MetricsLogger(exp, enabled=ctx.is_main, resume_step=step, resume_epoch=epoch)

    def checkpoint(metrics_now: dict) -> dict:
        return training_state(
            task=TASK, model=model, optimizer=optimizer, scheduler=scheduler, scaler=scaler, step=step,
            epoch=epoch, batch_in_epoch=batch_in_epoch, config=to_dict(cfg),
            metrics={"best_valid": best, "select": tc.select, "parameters": n_params, **metrics_now},
            extra={"features": info["features"], "dim": info["dim"], "classes": list(CLASSES),
                   "mean": info["mean"], "std": info["std"],
                   "frame_seconds": info["frame_seconds"], "data": spec.data, "meter": meter.state(),
                   "world_size": ctx.world_size},
            rng_per_rank=rng_states(ctx),
        )  # fmt: skip

    valid: dict = {}
    with StopSignal() as stop, metrics:
        while epoch < tc.epochs:
            net.train()
            sampler.set_epoch(epoch, batch_in_epoch)
            collate.epoch = epoch
            source = build_loader(train_ds, sampler, num_workers=tc.num_workers, collate_fn=collate)
            bar = progress(
                source, total=len(sampler), desc=f"epoch {epoch + 1}/{tc.epochs}", enabled=ctx.is_main
            )
            meter.start()
            for _, x, y in bar:
                x, y = x.to(device, non_blocking=True), y.to(device)
                with autocast(device, tc.amp):
                    clip_probs, _ = net(x)
                loss = clip_loss(clip_probs, y)
                check_finite_loss(loss.item(), step, scaler, ckpts, ctx)
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                clipped_step(optimizer, scaler, model.parameters(), tc.clip)
                scheduler.step()
                step += 1
                batch_in_epoch += 1
                n = len(x) * ctx.world_size
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
            valid = evaluate(model, valid_ds, device, cfg.post, tc.eval_batch_size) if ctx.is_main else {}
            if train_loss is not None:
                metrics.scalars("train_epoch", step, {"loss": train_loss}, epoch=epoch)
            metrics.scalars("valid", step, valid, epoch=epoch)
            score = -valid.get("loss", math.inf) if tc.select == "loss" else valid.get(tc.select, -math.inf)
            score = -math.inf if score is None or math.isnan(score) else score
            is_best = bool(valid) and score > best
            best = max(best, score)
            line = ""
            if ctx.is_main:
                parts = [f"train loss {train_loss:.4f}"] if train_loss is not None else []
                parts.append(
                    f"valid loss {valid['loss']:.4f}, event F1 {100 * valid['event_f1']:.2f}%, segment F1 "
                    f"{100 * valid['segment_f1']:.2f}%, tagging F1 {100 * valid['tag_f1']:.2f}%"
                )
                parts.append(f"lr {optimizer.param_groups[0]['lr']:.2e}")
                parts.append(f"{meter.rate('clips'):,.1f} clips/s" + (" *best*" if is_best else ""))
                line = f"epoch {epoch}/{tc.epochs} step {step}: " + ", ".join(parts)
            close_epoch(ckpts, checkpoint({"valid": valid}), ctx, stop, epoch, is_best, line)
    finish(exp, spec, ctx, {"step": step, "epoch": epoch, "reason": "all epochs done",
                            "clips_per_s": round(meter.rate("clips"), 2)})  # fmt: skip
    return valid
