"""Train a Show, Attend and Tell captioner; resumes from ``<exp>/ckpt/last.pt`` when one is there.

Usage: aics caption train --data data/caption/feats --exp exp/caption/tf --conf recipes/caption/conf/cpu.yaml

Each step takes ``train.batch_size`` images with all their captions (the CNN runs once per image). The loss
is the next-word cross-entropy plus ``train.alpha_c`` times the doubly stochastic attention regulariser.
Scheduled sampling (``sampling.*``) feeds the model's own previous word instead of the reference with
probability 1 - p_i, per caption and step; p_i and the share of reference words actually fed are logged
(``train/tf_prob``, ``train/teacher_share``). The coins come from a generator seeded by the step, so a
resumed run draws the same ones. After every epoch the valid (dev) split is scored: its teacher-forced loss
and the BLEU-4 and CIDEr-D of greedy captions; ``best.pt`` has the best ``train.select`` score.
"""

from __future__ import annotations

import math
from dataclasses import asdict
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
from aics.tasks.caption.config import CaptionConfig, FeatureConfig
from aics.tasks.caption.data import FEATURES_FILE, VOCAB_FILE, CaptionSet, Vocab, check_features, collate
from aics.tasks.caption.model import Captioner, caption_loss, captioner_config, teacher_forcing_probability

TASK = "caption"
SAFE_ON_RESUME = ("train.eval_batch_size",)
# keys added after the first release, with the values that train as runs recorded without them did
ADDED = {"model.encoder": "cnn", "model.encoder_weights": "", "model.freeze_encoder": False}


def check_model(cfg: CaptionConfig) -> None:
    """Settings that cannot work, as one line before anything is opened."""
    mc, sc = cfg.model, cfg.sampling
    if mc.encoder_weights and mc.encoder == "cnn":
        raise UserError(
            "model.encoder_weights is for a torchvision ResNet: set model.encoder=resnet18 (...resnet152) to "
            "match the file, or leave the weights out to train the CNN here"
        )
    if mc.encoder_weights and not Path(mc.encoder_weights).is_file():
        raise UserError(f"model.encoder_weights={mc.encoder_weights}: no such file")
    if mc.encoder != "cnn" and cfg.features.image_size < 32:
        raise UserError(f"features.image_size={cfg.features.image_size}: a ResNet needs 32 x 32 or larger")
    if not mc.encoder_channels or min(mc.encoder_channels) < 1:
        raise UserError("model.encoder_channels needs at least one stage of 1 or more channels")
    stride = 2 ** (len(mc.encoder_channels) - 1)
    if mc.encoder == "cnn" and cfg.features.image_size < stride:
        raise UserError(
            f"features.image_size={cfg.features.image_size} is smaller than the encoder's {stride}x "
            "downsampling; use fewer model.encoder_channels stages or larger images"
        )
    if mc.dropout >= 1:
        raise UserError(f"model.dropout={mc.dropout} must be below 1")
    if sc.min_p > 1:
        raise UserError(f"sampling.min_p={sc.min_p} is a probability: 0 to 1")
    if sc.schedule == "exponential" and not 0 < sc.exp_base < 1:
        raise UserError(
            f"sampling.exp_base={sc.exp_base} must be between 0 and 1 for the exponential schedule"
        )


def tf_probability(sc, step: int, epoch: int) -> float:
    i = step if sc.unit == "step" else epoch
    return teacher_forcing_probability(sc.schedule, i, sc.min_p, sc.linear_decay, sc.exp_base, sc.sigmoid_k)


def step_generator(seed: int, step: int, device: torch.device) -> torch.Generator:
    """The scheduled-sampling coins of one step: seeded by (seed, step), so resuming redraws them exactly."""
    return torch.Generator(device=device).manual_seed(seed * 1_000_003 + step)


def input_stats(cfg: CaptionConfig, info: dict) -> dict:
    """The encoder's input normalisation: ImageNet's for a ResNet (what its weights expect), else the
    training images' own (stage 1 measured them)."""
    if cfg.model.encoder != "cnn":
        from aics.tasks.caption.backbone import IMAGENET_MEAN, IMAGENET_STD

        return {"mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD)}
    return {"mean": info["mean"], "std": info["std"]}


def normaliser(info: dict, device: torch.device):
    mean = torch.tensor(info["mean"], device=device).view(1, 3, 1, 1)
    std = torch.tensor(info["std"], device=device).view(1, 3, 1, 1)
    return lambda images: (images.to(device, non_blocking=True).float() / 255 - mean) / std


def train(cfg: CaptionConfig, feats_dir: str | Path, exp_dir: str | Path, overwrite: bool = False) -> dict:
    """Train (or resume) one experiment; returns the last epoch's valid scores."""
    feats_dir, exp = check_features(feats_dir), Path(exp_dir)
    info = read_json(feats_dir / FEATURES_FILE)
    cfg.features = from_dict(FeatureConfig, info["features"], str(feats_dir / FEATURES_FILE))
    check_model(cfg)
    data = data_fingerprint(feats_dir, (FEATURES_FILE, ".done"))
    spec = RunSpec(TASK, to_dict(cfg), data=data, safe=SAFE_ON_RESUME, added=ADDED)
    with session(exp, overwrite, cfg.train, spec) as ctx:
        return _fit(cfg, spec, feats_dir, info, exp, ctx) if ctx is not None else {}


@torch.no_grad()
def evaluate(model: Captioner, ds: CaptionSet, device, norm, cfg: CaptionConfig, batch_size: int) -> dict:
    """Teacher-forced loss and the BLEU-4 / CIDEr-D of greedy captions (pycocoevalcap on aics's tokens)."""
    from aics.tasks.caption.infer import decode_split
    from aics.tasks.caption.metrics import bleu_cider

    model.eval()
    ce_sum = n_words = 0.0
    for lo in range(0, len(ds), batch_size):
        _, images, caps, lengths, owner = collate([ds[i] for i in range(lo, min(len(ds), lo + batch_size))])
        caps = caps.to(device)
        logits, _, _ = model(norm(images), caps, owner.to(device))
        words = int((caps[:, 1:] != ds.vocab.pad).sum())
        ce = torch.nn.functional.cross_entropy(logits.float().transpose(1, 2), caps[:, 1:],
                                               ignore_index=ds.vocab.pad, reduction="sum")  # fmt: skip
        ce_sum += float(ce)
        n_words += words
    hyps = decode_split(model, ds, device, norm, cfg.decode.max_len, beam=1, batch_size=batch_size)
    model.train()
    refs = dict(enumerate(ds.references()))
    scores = bleu_cider(refs, {i: [" ".join(h["words"])] for i, h in enumerate(hyps)})
    return {"loss": ce_sum / max(1.0, n_words), "bleu4": scores["BLEU-4"], "cider": scores["CIDEr-D"]}


def _fit(cfg: CaptionConfig, spec: RunSpec, feats_dir: Path, info: dict, exp: Path, ctx: DistContext) -> dict:
    log = get_logger()
    device, tc, sc = ctx.device, cfg.train, cfg.sampling
    vocab = Vocab.load(feats_dir / VOCAB_FILE)
    train_ds = CaptionSet(feats_dir, "train", vocab, tc.max_len)
    valid_ds = CaptionSet(feats_dir, "dev", vocab, tc.max_len)
    seed_ranks(tc.seed, ctx)
    model = Captioner(captioner_config(cfg.model, len(vocab))).to(device)
    stats = input_stats(cfg, info)
    norm = normaliser(stats, device)
    sampler = EpochBatchSampler(
        len(train_ds), tc.batch_size, shuffle=True, seed=tc.seed, rank=ctx.rank, world_size=ctx.world_size
    )
    steps_per_epoch = sampler.batches_per_epoch()
    if steps_per_epoch == 0:
        raise UserError(
            f"{feats_dir}: {len(train_ds)} training images make no batch of {tc.batch_size} on each of "
            f"{ctx.world_size} processes; lower train.batch_size"
        )
    optimizer = torch.optim.AdamW(param_groups(model, tc.weight_decay), lr=tc.lr)
    scheduler = warmup_cosine(optimizer, tc.warmup_steps, tc.epochs * steps_per_epoch, tc.min_lr_ratio)
    scaler = grad_scaler(device, tc.amp)
    ckpts = CheckpointDir(exp, keep_epochs=tc.keep_epochs)

    step = epoch = batch_in_epoch = 0
    best = -math.inf
    ckpt = resume(ckpts, spec, model, optimizer, scheduler, scaler, ctx)
    if ckpt is None and cfg.model.encoder_weights:
        from aics.tasks.caption.backbone import load_trunk_weights

        loaded = load_trunk_weights(model.encoder.trunk, cfg.model.encoder_weights, cfg.model.encoder)
        log.info(f"encoder: {cfg.model.encoder} weights from {loaded['path']} ({loaded['tensors']} tensors)")
    if ckpt is not None:
        step, epoch, batch_in_epoch = ckpt["step"], ckpt["epoch"], ckpt["batch_in_epoch"]
        best = ckpt["metrics"].get("best_valid", -math.inf)
    meter = RunMeter.from_state(ckpt["extra"].get("meter") if ckpt else None, mid_epoch=batch_in_epoch > 0)
    if tc.max_steps and step >= tc.max_steps:
        log.info(f"already at train.max_steps={tc.max_steps} (step {step}); rerun without it to continue")
        return {}
    if ctx.is_main:
        save_config(cfg, exp / "config.yaml")
    n_params = sum(p.numel() for p in model.parameters())
    n_caps = sum(len(e) for e in train_ds.encoded)
    log.info(
        f"Show, Attend and Tell: {n_params:,} parameters on {device}; {len(vocab)} words; {len(train_ds):,} "
        f"training images ({n_caps:,} captions), {steps_per_epoch} steps per epoch; scheduled sampling: "
        f"{sc.schedule}"
    )
    if ctx.world_size > 1 and device.type == "cuda":
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    net = wrap_model(model, ctx)
    metrics = MetricsLogger(exp, enabled=ctx.is_main, resume_step=step, resume_epoch=epoch)
    model_config = asdict(captioner_config(cfg.model, len(vocab)))

    def checkpoint(metrics_now: dict) -> dict:
        return training_state(
            task=TASK, model=model, optimizer=optimizer, scheduler=scheduler, scaler=scaler, step=step,
            epoch=epoch, batch_in_epoch=batch_in_epoch, config=to_dict(cfg),
            metrics={"best_valid": best, "select": tc.select, "parameters": n_params, **metrics_now},
            extra={"captioner": model_config, "vocab": vocab.words, "features": info["features"],
                   "mean": stats["mean"], "std": stats["std"], "data": spec.data, "meter": meter.state(),
                   "world_size": ctx.world_size},
            rng_per_rank=rng_states(ctx),
        )  # fmt: skip

    valid: dict = {}
    with StopSignal() as stop, metrics:
        while epoch < tc.epochs:
            net.train()
            sampler.set_epoch(epoch, batch_in_epoch)
            source = build_loader(train_ds, sampler, num_workers=tc.num_workers, collate_fn=collate)
            bar = progress(
                source, total=len(sampler), desc=f"epoch {epoch + 1}/{tc.epochs}", enabled=ctx.is_main
            )
            meter.start()
            for _, images, caps, lengths, owner in bar:
                caps, lengths, owner = caps.to(device), lengths.to(device), owner.to(device)
                p = tf_probability(sc, step, epoch)
                gen = step_generator(tc.seed * 7919 + ctx.rank, step, device)
                with autocast(device, tc.amp):
                    logits, alphas, share = net(norm(images), caps, owner, p, gen, sc.sample)
                loss, parts = caption_loss(logits, alphas, caps, lengths, tc.alpha_c, vocab.pad)
                check_finite_loss(loss.item(), step, scaler, ckpts, ctx)
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                clipped_step(optimizer, scaler, model.parameters(), tc.clip)
                scheduler.step()
                step += 1
                batch_in_epoch += 1
                n = len(caps) * ctx.world_size
                meter.add(ce=parts["ce"] * n, captions=n, images=len(images) * ctx.world_size)
                if step % tc.log_every == 0:
                    now = {"loss": loss.item(), **parts, "lr": optimizer.param_groups[0]["lr"], "tf_prob": p,
                           "teacher_share": share}  # fmt: skip
                    metrics.scalars("train", step, now, epoch=epoch + 1)
                    bar.set_postfix(loss=f"{now['loss']:.3f}", tf=f"{p:.2f}")
                if after_step(step, tc, ckpts, lambda: checkpoint({}), ctx, stop):
                    return {}
            meter.pause()
            epoch += 1
            batch_in_epoch = 0
            train_ce = meter.epoch_means("captions", "ce").get("ce")
            meter.end_epoch()
            valid = evaluate(model, valid_ds, device, norm, cfg, tc.eval_batch_size) if ctx.is_main else {}
            if train_ce is not None:
                metrics.scalars("train_epoch", step, {"ce": train_ce}, epoch=epoch)
            metrics.scalars("valid", step, valid, epoch=epoch)
            score = -valid.get("loss", math.inf) if tc.select == "loss" else valid.get(tc.select, -math.inf)
            is_best = bool(valid) and score > best
            best = max(best, score)
            line = ""
            if ctx.is_main:
                parts = [f"train CE {train_ce:.4f}"] if train_ce is not None else []
                parts.append(
                    f"valid CE {valid['loss']:.4f}, BLEU-4 {100 * valid['bleu4']:.2f}, CIDEr-D "
                    f"{100 * valid['cider']:.2f}"
                )
                parts.append(f"teacher forcing {tf_probability(sc, step, epoch):.3f}")
                parts.append(f"lr {optimizer.param_groups[0]['lr']:.2e}")
                parts.append(f"{meter.rate('images'):,.1f} images/s" + (" *best*" if is_best else ""))
                line = f"epoch {epoch}/{tc.epochs} step {step}: " + ", ".join(parts)
            close_epoch(ckpts, checkpoint({"valid": valid}), ctx, stop, epoch, is_best, line)
    finish(exp, spec, ctx, {"step": step, "epoch": epoch, "reason": "all epochs done",
                            "images_per_s": round(meter.rate("images"), 2)})  # fmt: skip
    return valid
