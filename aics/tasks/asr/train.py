"""Train a DFCNN + CTC recogniser on computed features; resumes from ``<exp>/ckpt/last.pt`` when one is there.

Usage: aics asr train --data data/asr/feats --exp exp/asr/dfcnn --conf recipes/asr_dfcnn/conf/cpu.yaml

Batches hold utterances of similar length (little padding); SpecAugment masks are seeded per utterance and
epoch, so a resumed run continues exactly. Every epoch ends with the valid set's CTC loss and its greedy-
decoded unit error rate (CER for characters, syllable error rate for pinyin) and WER in TensorBoard and
``log/metrics.jsonl``; ``best.pt`` has the lowest valid unit error rate. Under ``torchrun`` each rank takes
its slice of every global batch (the data order of one process with batch N*b); BatchNorm normalises each
rank's slice with its own statistics on CPU, and with synchronised statistics on CUDA (SyncBatchNorm).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Subset

from aics.core.ckpt import CheckpointDir, training_state
from aics.core.config import from_dict, save_config, to_dict
from aics.core.dist import DistContext, wrap_model
from aics.core.errors import UserError
from aics.core.io import read_json
from aics.core.loader import LengthGroupedSampler, build_loader
from aics.core.log import MetricsLogger, RunMeter, get_logger, progress
from aics.core.runtime import StopSignal, autocast, clipped_step, grad_scaler
from aics.core.trainloop import (
    RunSpec,
    after_step,
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
from aics.tasks.asr.config import AsrConfig, FeatureConfig
from aics.tasks.asr.data import FEATURES_FILE, Collate, FeatureSet, check_features, read_units
from aics.tasks.asr.infer import evaluate
from aics.tasks.asr.model import build_model, ctc_feasible, ctc_loss, parameter_count

TASK = "asr"
SAFE_ON_RESUME = ("decode.batch_size",)


def trainable(ds: FeatureSet, model, speed: float = 0.0) -> tuple[list[int], int]:
    """Indices (into ``ds``) of utterances CTC can align after pooling, even when sped up by the largest
    factor ``1 + speed`` of the augmentation, and how many were left out."""
    frames = np.floor(ds.lengths[ds.keep] / (1 + speed)).astype(np.int64)
    out = model.output_lengths(torch.as_tensor(frames)).tolist()
    ok = [i for i, j in enumerate(ds.keep) if ctc_feasible(out[i], ds.targets[j])]
    return ok, len(ds) - len(ok)


def train(cfg: AsrConfig, feats_dir: str | Path, exp_dir: str | Path, overwrite: bool = False) -> dict:
    """Train (or resume) one experiment; returns the last epoch's valid scores."""
    feats_dir, exp = check_features(feats_dir), Path(exp_dir)
    recorded = read_json(feats_dir / FEATURES_FILE)
    check_model(cfg, recorded["dim"])
    if not recorded["subsets"].get(cfg.train.valid_set, {}).get("utterances"):
        raise UserError(
            f"{feats_dir}: has no utterances in the valid subset {cfg.train.valid_set!r}; set "
            f"train.valid_set to one of {', '.join(recorded['subsets'])}"
        )
    cfg.features = from_dict(FeatureConfig, recorded["features"], str(feats_dir / FEATURES_FILE))
    data = data_fingerprint(feats_dir, (FEATURES_FILE, "units.txt", ".done"))
    spec = RunSpec(TASK, to_dict(cfg), data=data, safe=SAFE_ON_RESUME)
    with session(exp, overwrite, cfg.train, spec) as ctx:
        return _fit(cfg, spec, feats_dir, recorded, exp, ctx) if ctx is not None else {}


def _fit(cfg: AsrConfig, spec: RunSpec, feats_dir: Path, info: dict, exp: Path, ctx: DistContext) -> dict:
    log = get_logger()
    device, tc = ctx.device, cfg.train
    units = read_units(feats_dir / "units.txt")
    kind = info["unit_kind"]
    train_ds = FeatureSet(feats_dir, tc.train_set, units, max_frames=tc.max_frames)
    valid_ds = FeatureSet(feats_dir, tc.valid_set, units)
    seed_ranks(tc.seed, ctx)
    model = build_model(cfg.model, info["dim"], len(units)).to(device)
    sa = cfg.specaugment
    positions, dropped = trainable(train_ds, model, speed=sa.speed if sa.enabled else 0.0)
    if not positions:
        raise UserError(
            f"no training utterance is long enough for its transcript after the model's time reduction of "
            f"{model.time_reduction}; use smaller model.time_pool values or a smaller features.hop"
        )
    train_set = Subset(train_ds, positions)  # the utterances CTC can align
    lengths = train_ds.lengths[[train_ds.keep[p] for p in positions]]
    sampler = LengthGroupedSampler(
        lengths, tc.batch_size, seed=tc.seed, rank=ctx.rank, world_size=ctx.world_size
    )
    steps_per_epoch = sampler.batches_per_epoch()
    optimizer = torch.optim.AdamW(param_groups(model, tc.weight_decay), lr=tc.lr)
    scheduler = warmup_cosine(optimizer, tc.warmup_steps, tc.epochs * steps_per_epoch, tc.min_lr_ratio)
    scaler = grad_scaler(device, tc.amp)
    ckpts = CheckpointDir(exp, keep_epochs=tc.keep_epochs)
    collate = Collate(cfg.specaugment, seed=tc.seed)

    step = epoch = batch_in_epoch = 0
    best = math.inf
    ckpt = resume(ckpts, spec, model, optimizer, scheduler, scaler, ctx)
    if ckpt is not None:
        step, epoch, batch_in_epoch = ckpt["step"], ckpt["epoch"], ckpt["batch_in_epoch"]
        best = ckpt["metrics"].get("best_valid_uer", math.inf)
    meter = RunMeter.from_state(ckpt["extra"].get("meter") if ckpt else None, mid_epoch=batch_in_epoch > 0)
    if tc.max_steps and step >= tc.max_steps:
        log.info(f"already at train.max_steps={tc.max_steps} (step {step}); rerun without it to continue")
        return {}
    if ctx.is_main:
        save_config(cfg, exp / "config.yaml")
    n_params = parameter_count(model)
    hours = float(lengths.sum()) * cfg.features.hop / cfg.features.sample_rate / 3600
    log.info(
        f"DFCNN: {n_params:,} parameters on {device}; {len(units) - 1} {kind} units + blank; time reduction "
        f"{model.time_reduction}; {len(train_set):,} training utterances ({hours:.2f} h), {steps_per_epoch} "
        f"steps per epoch"
        + (f"; {dropped} too short for their transcript after pooling left out" if dropped else "")
    )
    if ctx.world_size > 1 and device.type == "cuda":
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    net = wrap_model(model, ctx)
    metrics = MetricsLogger(exp, enabled=ctx.is_main, resume_step=step, resume_epoch=epoch)

    def checkpoint(metrics_now: dict) -> dict:
        return training_state(
            task=TASK, model=model, optimizer=optimizer, scheduler=scheduler, scaler=scaler, step=step,
            epoch=epoch, batch_in_epoch=batch_in_epoch, config=to_dict(cfg),
            metrics={"best_valid_uer": best, "parameters": n_params, **metrics_now},
            extra={"units": units, "unit_kind": kind, "features": info["features"], "dim": info["dim"],
                   "data": spec.data, "meter": meter.state(), "dropped_short": dropped,
                   "world_size": ctx.world_size},
            rng_per_rank=rng_states(ctx),
        )  # fmt: skip

    valid: dict = {}
    with StopSignal() as stop, metrics:
        while epoch < tc.epochs:
            net.train()
            sampler.set_epoch(epoch, batch_in_epoch)
            collate.epoch = epoch
            source = build_loader(train_set, sampler, num_workers=tc.num_workers, collate_fn=collate)
            bar = progress(
                source, total=len(sampler), desc=f"epoch {epoch + 1}/{tc.epochs}", enabled=ctx.is_main
            )
            meter.start()
            for feats, lens, targets, target_lens, _ in bar:
                feats, lens = feats.to(device, non_blocking=True), lens.to(device)
                with autocast(device, tc.amp):
                    logits, out_lens = net(feats, lens)
                loss = ctc_loss(logits, out_lens, targets.to(device), target_lens.to(device))
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                clipped_step(optimizer, scaler, model.parameters(), tc.clip)
                scheduler.step()
                step += 1
                batch_in_epoch += 1
                n_utt = len(lens) * ctx.world_size
                meter.add(loss=loss.item() * n_utt, utterances=n_utt, frames=int(lens.sum()) * ctx.world_size)
                if step % tc.log_every == 0:
                    now = {"loss": loss.item(), "lr": optimizer.param_groups[0]["lr"]}
                    metrics.scalars("train", step, now, epoch=epoch + 1)
                    bar.set_postfix(loss=f"{now['loss']:.2f}")
                if after_step(step, tc, ckpts, lambda: checkpoint({}), ctx, stop):
                    return {}
            meter.pause()
            epoch += 1
            batch_in_epoch = 0
            train_loss = meter.epoch_means("utterances", "loss").get("loss")
            meter.end_epoch()
            valid = (
                evaluate(model, valid_ds, units, kind, device, cfg.decode.batch_size) if ctx.is_main else {}
            )
            if train_loss is not None:
                metrics.scalars("train_epoch", step, {"loss": train_loss}, epoch=epoch)
            shown = {k: valid[k] for k in ("loss", "uer", "wer") if k in valid}
            metrics.scalars("valid", step, shown, epoch=epoch)
            is_best = bool(valid) and valid["uer"] < best
            best = min(best, valid.get("uer", math.inf))
            line = ""
            if ctx.is_main:
                parts = [f"train loss {train_loss:.3f}"] if train_loss is not None else []
                parts.append(f"valid loss {valid['loss']:.3f}, {valid['uer_name']} {100 * valid['uer']:.2f}%")
                if "wer" in valid:
                    parts.append(f"WER {100 * valid['wer']:.2f}%")
                parts.append(f"lr {optimizer.param_groups[0]['lr']:.2e}")
                parts.append(f"{meter.rate('frames'):,.0f} frames/s" + (" *best*" if is_best else ""))
                line = f"epoch {epoch}/{tc.epochs} step {step}: " + ", ".join(parts)
            close_epoch(ckpts, checkpoint({"valid": shown}), ctx, stop, epoch, is_best, line)
    finish(exp, spec, ctx, {"step": step, "epoch": epoch, "reason": "all epochs done",
                            "frames_per_s": round(meter.rate("frames"), 1)})  # fmt: skip
    return valid


def check_model(cfg: AsrConfig, dim: int) -> None:
    """Model settings that cannot work, as one line before anything is opened."""
    mc = cfg.model
    if not (len(mc.channels) == len(mc.time_pool) == len(mc.freq_pool)):
        raise UserError(
            f"model.channels, model.time_pool and model.freq_pool need one entry per block (have "
            f"{len(mc.channels)}, {len(mc.time_pool)}, {len(mc.freq_pool)})"
        )
    if min((*mc.channels, *mc.time_pool, *mc.freq_pool)) < 1:
        raise UserError("model.channels, model.time_pool and model.freq_pool take whole numbers >= 1")
    if dim // math.prod(mc.freq_pool) < 1:
        raise UserError(
            f"model.freq_pool shrinks the {dim} feature bins by {math.prod(mc.freq_pool)}: none is left; "
            "pool less"
        )
    if mc.dropout >= 1:
        raise UserError(f"model.dropout={mc.dropout} must be below 1")
    for key in ("speed", "warp"):
        if getattr(cfg.specaugment, key) >= 0.5:
            raise UserError(f"specaugment.{key}={getattr(cfg.specaugment, key)} must be below 0.5")
