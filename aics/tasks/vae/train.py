"""Train a VAE on prepared MNIST; resumes from ``<exp>/ckpt/last.pt`` when one is there.

Usage: aics vae train --data data/vae/prepared --exp exp/vae/tiny_mlp_z2 --conf recipes/vae/conf/tiny.yaml

Writes ``<exp>/config.yaml``, ``ckpt/{epoch-NNN,last,best}.pt`` (best = lowest valid negative ELBO),
``tb/`` (TensorBoard: train/valid losses, reconstructions) and ``log/{train.log,metrics.jsonl}``.
Runs under ``torchrun --nproc-per-node N`` too (data sharded by rank, rank 0 logs and saves).
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from aics.core.ckpt import CheckpointDir, training_state
from aics.core.config import save_config, to_dict
from aics.core.dist import DistContext, any_rank, barrier, wrap_model
from aics.core.loader import EpochBatchSampler, build_loader
from aics.core.log import MetricsLogger, RunMeter, get_logger, progress
from aics.core.runtime import StopSignal, autocast, grad_scaler
from aics.core.trainloop import (
    RunSpec,
    after_step,
    data_fingerprint,
    finish,
    resume,
    rng_states,
    seed_ranks,
    session,
)
from aics.tasks.vae.config import VAEConfig
from aics.tasks.vae.data import MnistSplit, batch_collate, check_prepared
from aics.tasks.vae.metrics import evaluate
from aics.tasks.vae.model import VAE, bernoulli_nll, count_parameters, kl_to_standard_normal

TASK = "vae"
LOSS_KEYS = ("loss", "recon_bce", "kl")


def build_model(cfg: VAEConfig, image_shape: tuple[int, int, int]) -> VAE:
    m = cfg.model
    return VAE(m.zdim, arch=m.arch, hidden=m.hidden, channels=m.channels, image_shape=image_shape)


def reconstruction_grid(model: VAE, images: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Originals (top row) over reconstructions from the posterior mean (bottom row).  # (1, 2H, n*W)"""
    with torch.no_grad():
        x = images.to(device)
        recon = torch.sigmoid(model.decode(model.encode(x)[0])).cpu()
    top = torch.cat(list(images[:, 0]), dim=1)
    bottom = torch.cat(list(recon[:, 0]), dim=1)
    return torch.cat([top, bottom], dim=0).unsqueeze(0)


def train(cfg: VAEConfig, data_dir: str | Path, exp_dir: str | Path, overwrite: bool = False) -> dict:
    """Train (or resume) one experiment and return the final valid scores."""
    data_dir, exp = check_prepared(data_dir), Path(exp_dir)
    spec = RunSpec(TASK, to_dict(cfg), data=data_fingerprint(data_dir, ("stats.json",)))
    with session(exp, overwrite, cfg.train, spec) as ctx:
        return _fit(cfg, spec, data_dir, exp, ctx) if ctx is not None else {}


def _fit(cfg: VAEConfig, spec: RunSpec, data_dir: Path, exp: Path, ctx: DistContext) -> dict:
    log = get_logger()
    device, tc = ctx.device, cfg.train

    train_set, valid_set = MnistSplit(data_dir, "train"), MnistSplit(data_dir, "valid")
    image_shape = tuple(train_set.images.shape[1:])
    model = build_model(cfg, image_shape).to(device)
    seed_ranks(tc.seed, ctx)
    optimizer = torch.optim.Adam(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
    scaler = grad_scaler(device, tc.amp)
    ckpts = CheckpointDir(exp, keep_epochs=tc.keep_epochs)
    params = count_parameters(model)

    step = epoch = batch_in_epoch = 0
    best = math.inf
    ckpt = resume(ckpts, spec, model, optimizer, None, scaler, ctx)
    if ckpt is not None:
        step, epoch, batch_in_epoch = ckpt["step"], ckpt["epoch"], ckpt["batch_in_epoch"]
        best = ckpt["metrics"].get("best_valid_loss", math.inf)
    meter = RunMeter.from_state(ckpt["extra"].get("meter") if ckpt else None, mid_epoch=batch_in_epoch > 0)
    if tc.max_steps and step >= tc.max_steps:
        log.info(f"already at train.max_steps={tc.max_steps} (step {step}); rerun without it to continue")
        return {}
    if ctx.is_main:
        save_config(cfg, exp / "config.yaml")
    log.info(
        f"VAE {cfg.model.arch} zdim={cfg.model.zdim}: {params['total']:,} parameters "
        f"(encoder {params['encoder']:,}, decoder {params['decoder']:,}) on {device}, "
        f"{len(train_set)} train / {len(valid_set)} valid images"
    )

    net = wrap_model(model, ctx)
    sampler = EpochBatchSampler(
        len(train_set), tc.batch_size, shuffle=True, seed=tc.seed, rank=ctx.rank, world_size=ctx.world_size
    )
    metrics = MetricsLogger(exp, enabled=ctx.is_main, resume_step=step, resume_epoch=epoch)
    preview = valid_set.images[: cfg.infer.n_recon]

    def state(metrics_now: dict) -> dict:
        return training_state(
            task=TASK, model=model, optimizer=optimizer, scaler=scaler, step=step, epoch=epoch,
            batch_in_epoch=batch_in_epoch, config=to_dict(cfg),
            metrics={"best_valid_loss": best, "parameters": params["total"], **metrics_now},
            extra={"image_shape": list(image_shape), "world_size": ctx.world_size, "data": spec.data,
                   "meter": meter.state()},
            rng_per_rank=rng_states(ctx),
        )  # fmt: skip

    valid: dict = {}
    with StopSignal() as stop, metrics:
        while epoch < tc.epochs:
            sampler.set_epoch(epoch, batch_in_epoch)
            net.train()
            meter.start()
            bar = progress(
                build_loader(train_set, sampler, tc.num_workers, collate_fn=batch_collate),
                total=len(sampler), desc=f"epoch {epoch + 1}/{tc.epochs}", enabled=ctx.is_main,
            )  # fmt: skip
            for x, _ in bar:
                x = x.to(device, non_blocking=True)
                with autocast(device, tc.amp):
                    logits, mu, logvar = net(x)
                recon = bernoulli_nll(logits.float(), x)  # (B,)
                kl = kl_to_standard_normal(mu.float(), logvar.float())  # (B,)
                loss = (recon + tc.beta * kl).mean()
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
                step += 1
                batch_in_epoch += 1
                values = dict(
                    zip(LOSS_KEYS, (loss.item(), recon.mean().item(), kl.mean().item()), strict=True)
                )
                meter.add(batches=1, **values)
                if step % tc.log_every == 0:
                    metrics.scalars("train", step, values, epoch=epoch + 1)
                    bar.set_postfix(loss=f"{values['loss']:.1f}")
                if after_step(step, tc, ckpts, lambda: state({}), ctx, stop):
                    return {}
            meter.pause()
            epoch += 1
            batch_in_epoch = 0
            # Every rank evaluates (fixed-seed noise, so all agree on `best`); only rank 0 writes.
            train_avg = meter.epoch_means("batches", *LOSS_KEYS)
            meter.end_epoch()
            valid = evaluate(model, valid_set.images, cfg.infer.batch_size, device, seed=tc.seed)
            is_best = valid["loss"] < best
            best = min(best, valid["loss"])
            payload = state({"valid": valid})
            if ctx.is_main:
                if train_avg:
                    metrics.scalars("train_epoch", step, train_avg, epoch=epoch)
                shown = {k: valid[k] for k in ("loss", "recon_bce", "kl", "recon_mse")}
                metrics.scalars("valid", step, shown, epoch=epoch)
                metrics.image("valid/reconstructions", reconstruction_grid(model, preview, device), step)
                ckpts.save(payload, epoch_end=True, is_best=is_best)
                log.info(
                    f"epoch {epoch}/{tc.epochs} step {step}: train loss "
                    f"{train_avg.get('loss', math.nan):.2f}, valid loss {valid['loss']:.2f} "
                    f"(recon {valid['recon_bce']:.2f} + KL {valid['kl']:.2f})"
                    + (" *best*" if is_best else "")
                )
            barrier(ctx)
            if any_rank(stop.requested, ctx):
                get_logger().info(f"interrupted after epoch {epoch}; rerun the same command to resume")
                raise KeyboardInterrupt
    finish(exp, spec, ctx, {"step": step, "epoch": epoch, "train_seconds": round(meter.seconds, 1)})
    return valid
