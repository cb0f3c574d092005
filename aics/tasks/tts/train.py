"""Train Tacotron2 on computed mels; resumes from ``<exp>/ckpt/last.pt`` when one is there.

Usage: aics tts train --data data/tts/feats --exp exp/tts/tacotron2 --conf recipes/tts_tacotron2/conf/cpu.yaml

Teacher forcing (the decoder reads the real previous frame). The loss is NVIDIA's: the mean squared error of
the mel before and after the postnet over the real frames, plus the stop-token ("gate") binary cross-entropy,
its positive class weighted by ``train.gate_pos_weight``; plus, unlike NVIDIA, a guided attention loss
(``train.guided_attention``) that pushes the alignment towards the diagonal so it forms quickly on small data.
Adam with NVIDIA's step annealing (``train.anneal_epochs``), optional warm-up, gradient clipping. Every epoch
ends with the valid set's teacher-forced loss (``best.pt`` has the lowest); every ``train.plot_every`` steps
one valid utterance is decoded free-running and its mel and alignment go to ``plots/`` and TensorBoard.
Under ``torchrun`` each rank takes its slice of every global batch.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from aics.core.ckpt import CheckpointDir, training_state
from aics.core.config import save_config, to_dict
from aics.core.dist import DistContext, wrap_model
from aics.core.errors import UserError
from aics.core.loader import LengthGroupedSampler, build_loader
from aics.core.log import MetricsLogger, RunMeter, get_logger, progress
from aics.core.runtime import StopSignal, autocast, clipped_step, grad_scaler
from aics.core.trainloop import (
    RunSpec,
    after_step,
    check_finite_loss,
    close_epoch,
    data_fingerprint,
    finish,
    resume,
    rng_states,
    seed_ranks,
    session,
)
from aics.tasks.tts.config import TtsConfig, tacotron2_config
from aics.tasks.tts.data import FEATURES_FILE, MelSet, check_features, collate, training_features
from aics.tasks.tts.model import Tacotron2, lengths_mask, parameter_count

TASK = "tts"
SAFE_ON_RESUME = ("train.plot_every",)


def guided_attention_loss(
    alignments: torch.Tensor, text_lengths: torch.Tensor, step_lengths: torch.Tensor, sigma: float
) -> torch.Tensor:
    """Tachibana et al. (2018)'s penalty W_{s,n} = 1 - exp(-(n/N - s/S)^2 / (2 sigma^2)) on attention far from
    the diagonal, as its expectation under each step's attention, sum_n a_{s,n} W_{s,n}, averaged over every
    item's real decoder steps s < S (text positions n < N). The paper (and ESPnet) average a_{s,n} W_{s,n}
    over all (s, n) pairs instead: N times smaller, so its weight would have to grow with the text length.
    alignments (B, S_max, N_max) -> a scalar in [0, 1)."""
    b, s_max, n_max = alignments.shape
    s = torch.arange(s_max, device=alignments.device)[None, :, None] / step_lengths[:, None, None]
    n = torch.arange(n_max, device=alignments.device)[None, None, :] / text_lengths[:, None, None]
    weight = 1 - torch.exp(-((n - s) ** 2) / (2 * sigma**2))
    text_mask = lengths_mask(text_lengths, n_max)[:, None, :]
    per_step = (alignments.float() * weight * text_mask).sum(-1)  # (B, S_max)
    step_mask = lengths_mask(step_lengths, s_max)
    return (per_step * step_mask).sum() / step_mask.sum()


def tacotron2_loss(outputs, batch: dict, r: int, gate_pos_weight: float, guided_weight: float, sigma: float):
    """-> total loss and its parts (floats): mel (before + after postnet) over each item's frames up to
    whole decoder steps (``target_lengths``), gate, guided attention."""
    mel, post, gate, alignments = (o.float() for o in outputs)
    target, lengths = batch["mels"], batch["target_lengths"]
    mask = lengths_mask(lengths, target.shape[2])[:, None, :].to(target.dtype)  # (B, 1, T)
    count = mask.sum() * target.shape[1]
    mel_loss = (((mel - target) ** 2 + (post - target) ** 2) * mask).sum() / count
    pos_weight = torch.tensor(gate_pos_weight, device=gate.device)
    gate_loss = F.binary_cross_entropy_with_logits(gate, batch["gate"], pos_weight=pos_weight)
    total = mel_loss + gate_loss
    parts = {"mel": mel_loss.item(), "gate": gate_loss.item()}
    if guided_weight > 0:
        steps = -(-lengths // r)
        guided = guided_attention_loss(alignments, batch["text_lengths"], steps, sigma)
        total = total + guided_weight * guided
        parts["guided"] = guided.item()
    return total, parts


def anneal_factor(epoch: int, step: int, anneal_epochs, factor: float, warmup: int) -> float:
    """NVIDIA's schedule: the learning rate times ``factor`` per anneal epoch passed; a linear warm-up."""
    passed = sum(epoch >= e for e in anneal_epochs)
    ramp = min(1.0, (step + 1) / warmup) if warmup else 1.0
    return factor**passed * ramp


def init_weights(model: Tacotron2, path: str | Path) -> None:
    """Copy a Tacotron2's weights into ``model`` (``train.init``), or one line naming what does not fit."""
    from aics.tasks.tts.importer import key_report, read_checkpoint

    if not Path(path).is_file():
        raise UserError(f"train.init={path}: no such file; give a Tacotron2 checkpoint or voice file")
    imp = read_checkpoint(path, "tacotron2")
    report = key_report(model, imp.state_dict)
    if not report.ok:
        raise UserError(
            f"train.init={path}: its weights do not fit this config's model ({report.summary()}); use the "
            "model sizes it was trained with"
        )
    with torch.no_grad():
        for k, v in model.state_dict().items():
            if k in imp.state_dict:
                v.copy_(imp.state_dict[k].to(v.dtype))
    get_logger().info(f"weights from {path} ({imp.layout}); fresh optimizer and learning-rate schedule")


def to_device(batch: dict, device: torch.device) -> dict:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


def check_model(cfg: TtsConfig) -> None:
    m = cfg.model
    if m.symbols_embedding_dim != m.encoder_embedding_dim:
        raise UserError(
            f"model.symbols_embedding_dim={m.symbols_embedding_dim} must equal model.encoder_embedding_dim="
            f"{m.encoder_embedding_dim} (the embedding feeds the encoder's first convolution)"
        )
    if m.encoder_embedding_dim % 2:
        raise UserError(f"model.encoder_embedding_dim={m.encoder_embedding_dim} must be even (a BiLSTM)")
    for key in ("p_attention_dropout", "p_decoder_dropout"):
        if getattr(m, key) >= 1:
            raise UserError(f"model.{key}={getattr(m, key)} must be below 1")
    if cfg.text.arpabet > 1:
        raise UserError(f"text.arpabet={cfg.text.arpabet} is a probability: use 0 to 1")


def train(cfg: TtsConfig, feats_dir: str | Path, exp_dir: str | Path, overwrite: bool = False) -> dict:
    """Train (or resume) one experiment; returns the last epoch's valid scores."""
    feats_dir, exp = check_features(feats_dir), Path(exp_dir)
    check_model(cfg)
    cfg.features = training_features(feats_dir, (cfg.train.train_set, cfg.train.valid_set))
    data = data_fingerprint(feats_dir, (FEATURES_FILE, ".done"))
    spec = RunSpec(TASK, to_dict(cfg), data=data, safe=SAFE_ON_RESUME)
    with session(exp, overwrite, cfg.train, spec) as ctx:
        return _fit(cfg, spec, feats_dir, exp, ctx) if ctx is not None else {}


@torch.no_grad()
def evaluate(model: Tacotron2, ds: MelSet, device, tc, batch_size: int = 16) -> dict:
    """Teacher-forced valid loss (mel + gate, and the guided attention term on its own). The prenet dropout
    (on in eval mode too) draws from a fixed seed, so epochs are compared on the same masks and training's
    random stream is left as it was."""
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(0)
        return _evaluate(model, ds, device, tc, batch_size)


def _evaluate(model: Tacotron2, ds: MelSet, device, tc, batch_size: int) -> dict:
    model.eval()
    sums: dict[str, float] = {}
    n = 0
    for lo in range(0, len(ds), batch_size):
        batch = to_device(collate([ds[i] for i in range(lo, min(len(ds), lo + batch_size))], model.decoder.r),
                          device)  # fmt: skip
        out = model(batch["text"], batch["text_lengths"], batch["mels"], batch["target_lengths"])
        _, parts = tacotron2_loss(out, batch, model.decoder.r, tc.gate_pos_weight, 1.0, tc.guided_sigma)
        k = len(batch["index"])
        for key, v in parts.items():
            sums[key] = sums.get(key, 0.0) + v * k
        n += k
    model.train()
    scores = {k: v / n for k, v in sums.items()}
    scores["loss"] = scores["mel"] + scores["gate"]
    return scores


def plot_valid(model: Tacotron2, ds: MelSet, device, path: Path, metrics: MetricsLogger, step: int) -> None:
    """Decode the first valid utterance free-running; its target and predicted mels and the alignment, one
    PNG (and a TensorBoard image)."""
    from PIL import Image

    from aics.core.plot import pyplot, save_figure

    j, ids, target = ds[0]
    model.eval()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # an untrained model runs to the step limit
        gen = torch.Generator(device=device).manual_seed(0)
        mel, lengths, align = model.infer(
            ids[None].to(device), torch.tensor([len(ids)], device=device),
            max_steps=max(8, 2 * target.shape[1] // model.decoder.r), generator=gen,
        )  # fmt: skip
    model.train()
    n = int(lengths[0])
    fig, axes = pyplot().subplots(3, 1, figsize=(10, 8), constrained_layout=True)
    axes[0].imshow(target.numpy(), origin="lower", aspect="auto", interpolation="none")
    axes[0].set(title=f"target mel: {ds.rows[j]['text'][:70]}", ylabel="mel band")
    axes[1].imshow(mel[0, :, :n].float().cpu().numpy(), origin="lower", aspect="auto", interpolation="none")
    axes[1].set(title=f"decoded at step {step} (free-running)", ylabel="mel band", xlabel="frame")
    im = axes[2].imshow(align[0, : n // model.decoder.r, : len(ids)].float().cpu().numpy().T, origin="lower",
                        aspect="auto", interpolation="none", vmin=0, vmax=1)  # fmt: skip
    axes[2].set(title="alignment", xlabel="decoder step", ylabel="text symbol")
    fig.colorbar(im, ax=axes[2])
    save_figure(fig, path, dpi=80)
    with Image.open(path) as img:
        rgb = torch.from_numpy(np.array(img.convert("RGB"))).permute(2, 0, 1).float() / 255
    metrics.image("valid/alignment", rgb, step)


def _fit(cfg: TtsConfig, spec: RunSpec, feats_dir: Path, exp: Path, ctx: DistContext) -> dict:
    log = get_logger()
    device, tc = ctx.device, cfg.train
    train_ds = MelSet(
        feats_dir, tc.train_set, max_frames=tc.max_frames, arpabet=cfg.text.arpabet, seed=tc.seed
    )
    valid_ds = MelSet(
        feats_dir, tc.valid_set, arpabet=cfg.text.arpabet, seed=tc.seed
    )  # the same draws each epoch
    if not len(train_ds):
        raise UserError(
            f"no training utterance has at most train.max_frames={tc.max_frames} frames; raise it"
        )
    seed_ranks(tc.seed, ctx)
    model = Tacotron2(tacotron2_config(cfg.model, cfg.features.n_mels)).to(device)
    r = model.decoder.r
    lengths = train_ds.lengths[train_ds.keep]
    sampler = LengthGroupedSampler(
        lengths, tc.batch_size, seed=tc.seed, rank=ctx.rank, world_size=ctx.world_size
    )
    steps_per_epoch = sampler.batches_per_epoch()
    if steps_per_epoch == 0:
        raise UserError(
            f"{feats_dir}: {len(train_ds)} training utterances make no batch of {tc.batch_size} on each of "
            f"{ctx.world_size} processes; lower train.batch_size"
        )
    optimizer = torch.optim.Adam(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
    scaler = grad_scaler(device, tc.amp)
    ckpts = CheckpointDir(exp, keep_epochs=tc.keep_epochs)
    step = epoch = batch_in_epoch = 0
    best = math.inf
    ckpt = resume(ckpts, spec, model, optimizer, None, scaler, ctx)
    if ckpt is None and tc.init:
        init_weights(model, tc.init)
    if ckpt is not None:
        step, epoch, batch_in_epoch = ckpt["step"], ckpt["epoch"], ckpt["batch_in_epoch"]
        best = ckpt["metrics"].get("best_valid_loss", math.inf)
    meter = RunMeter.from_state(ckpt["extra"].get("meter") if ckpt else None, mid_epoch=batch_in_epoch > 0)
    if tc.max_steps and step >= tc.max_steps:
        log.info(f"already at train.max_steps={tc.max_steps} (step {step}); rerun without it to continue")
        return {}
    if ctx.is_main:
        save_config(cfg, exp / "config.yaml")
        (exp / "plots").mkdir(parents=True, exist_ok=True)
    n_params = parameter_count(model)
    hours = float(lengths.sum()) * cfg.features.hop / cfg.features.sample_rate / 3600
    log.info(
        f"Tacotron2: {n_params:,} parameters on {device}; r = {r} frames per step; {len(train_ds):,} "
        f"training utterances ({hours:.2f} h), {steps_per_epoch} steps per epoch"
    )
    net = wrap_model(model, ctx)
    metrics = MetricsLogger(exp, enabled=ctx.is_main, resume_step=step, resume_epoch=epoch)
    model_config = asdict(tacotron2_config(cfg.model, cfg.features.n_mels))

    def checkpoint(metrics_now: dict) -> dict:
        return training_state(
            task=TASK, model=model, optimizer=optimizer, scaler=scaler, step=step, epoch=epoch,
            batch_in_epoch=batch_in_epoch, config=to_dict(cfg),
            metrics={"best_valid_loss": best, "parameters": n_params, **metrics_now},
            extra={"tacotron2": model_config, "features": asdict(cfg.features), "data": spec.data,
                   "meter": meter.state(), "world_size": ctx.world_size},
            rng_per_rank=rng_states(ctx),
        )  # fmt: skip

    def set_lr() -> None:
        f = anneal_factor(epoch, step, tc.anneal_epochs, tc.anneal_factor, tc.warmup_steps)
        for group in optimizer.param_groups:
            group["lr"] = tc.lr * f

    valid: dict = {}
    with StopSignal() as stop, metrics:
        while epoch < tc.epochs:
            net.train()
            sampler.set_epoch(epoch, batch_in_epoch)
            train_ds.epoch = epoch
            source = build_loader(
                train_ds, sampler, num_workers=tc.num_workers, collate_fn=lambda items: collate(items, r)
            )
            bar = progress(
                source, total=len(sampler), desc=f"epoch {epoch + 1}/{tc.epochs}", enabled=ctx.is_main
            )
            meter.start()
            for batch in bar:
                batch = to_device(batch, device)
                set_lr()
                guided = tc.guided_attention if not tc.guided_until or step < tc.guided_until else 0.0
                with autocast(device, tc.amp):
                    out = net(batch["text"], batch["text_lengths"], batch["mels"], batch["target_lengths"])
                loss, parts = tacotron2_loss(out, batch, r, tc.gate_pos_weight, guided, tc.guided_sigma)
                check_finite_loss(loss.item(), step + 1, scaler, ckpts, ctx)
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                grad_norm = clipped_step(optimizer, scaler, model.parameters(), tc.clip)
                step += 1
                batch_in_epoch += 1
                n_utt = len(batch["index"]) * ctx.world_size
                frames = int(batch["mel_lengths"].sum()) * ctx.world_size
                meter.add(loss=loss.item() * n_utt, utterances=n_utt, frames=frames)
                if step % tc.log_every == 0:
                    now = {"loss": loss.item(), **parts, "lr": optimizer.param_groups[0]["lr"]}
                    if grad_norm is not None:
                        now["grad_norm"] = float(grad_norm)
                    metrics.scalars("train", step, now, epoch=epoch + 1)
                    bar.set_postfix(loss=f"{now['loss']:.3f}", mel=f"{parts['mel']:.3f}")
                if ctx.is_main and step % tc.plot_every == 0:
                    plot_valid(model, valid_ds, device, exp / "plots" / f"step{step:07d}.png", metrics, step)
                if after_step(step, tc, ckpts, lambda: checkpoint({}), ctx, stop):
                    return {}
            meter.pause()
            epoch += 1
            batch_in_epoch = 0
            train_loss = meter.epoch_means("utterances", "loss").get("loss")
            meter.end_epoch()
            valid = evaluate(model, valid_ds, device, tc) if ctx.is_main else {}
            if train_loss is not None:
                metrics.scalars("train_epoch", step, {"loss": train_loss}, epoch=epoch)
            metrics.scalars("valid", step, valid, epoch=epoch)
            is_best = bool(valid) and valid["loss"] < best
            best = min(best, valid.get("loss", math.inf))
            line = ""
            if ctx.is_main:
                parts_text = [f"train loss {train_loss:.4f}"] if train_loss is not None else []
                parts_text.append(
                    f"valid loss {valid['loss']:.4f} (mel {valid['mel']:.4f}, gate {valid['gate']:.4f}, "
                    f"guided {valid['guided']:.4f})"
                )
                parts_text.append(f"lr {optimizer.param_groups[0]['lr']:.2e}")
                parts_text.append(f"{meter.rate('frames'):,.0f} frames/s" + (" *best*" if is_best else ""))
                line = f"epoch {epoch}/{tc.epochs} step {step}: " + ", ".join(parts_text)
            close_epoch(ckpts, checkpoint({"valid": valid}), ctx, stop, epoch, is_best, line)
    finish(exp, spec, ctx, {"step": step, "epoch": epoch, "reason": "all epochs done",
                            "frames_per_s": round(meter.rate("frames"), 1)})  # fmt: skip
    return valid
