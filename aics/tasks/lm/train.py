"""Train a language model on a prepared corpus; resumes from ``<exp>/ckpt/last.pt`` when one is there.

Usage: aics lm train --data data/lm/prepared --exp exp/lm/lstm --conf recipes/lm/conf/lstm.yaml

Recurrent models (rnn, gru, lstm) read the training text as ``batch_size`` parallel streams in
truncated-BPTT chunks of ``bptt`` tokens, carrying the hidden state across chunks; window models (ffn,
transformer) read shuffled windows of ``bptt`` tokens. Every epoch ends with valid (and test) perplexity in
TensorBoard and ``log/metrics.jsonl``, ``best.pt`` by valid perplexity, the LR schedule step, and early
stopping. Under ``torchrun`` the data are sharded by rank so N ranks with batch b follow the same
trajectory as one process with batch N*b; rank 0 logs and saves, and resume is exact there too.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import torch
import torch.nn.functional as F

from aics.core.ckpt import (
    CheckpointDir,
    training_state,
)
from aics.core.config import save_config, to_dict
from aics.core.dist import (
    DistContext,
    all_gather_cat,
    any_rank,
    barrier,
    wrap_model,
)
from aics.core.errors import UserError
from aics.core.loader import EpochBatchSampler, build_loader
from aics.core.log import MetricsLogger, RunMeter, get_logger, progress
from aics.core.runtime import StopSignal, autocast, clipped_step, grad_scaler, keep_freed_memory
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
from aics.tasks.lm.config import LMConfig
from aics.tasks.lm.data import (
    WindowSet,
    batch_collate,
    batchify,
    check_prepared,
    lm_pairs,
    load_stream,
    load_vocab,
)
from aics.tasks.lm.metrics import perplexity
from aics.tasks.lm.model import build_lm, detach_state, parameter_breakdown

TASK = "lm"
# Safe to change on resume besides core's list: a size check, not a training setting.
SAFE_ON_RESUME = ("train.max_params",)


def vocab_hash(data_dir: str | Path) -> str:
    """sha256 of ``vocab.txt``: a checkpoint records it, and sample/score refuse data with another one."""
    return hashlib.sha256((Path(data_dir) / "vocab.txt").read_bytes()).hexdigest()


def check_size(model: torch.nn.Module, max_params: int, arch: str) -> dict[str, int]:
    counts = parameter_breakdown(model)
    if counts["total"] > max_params:
        parts = ", ".join(f"{k} {v:,}" for k, v in counts.items() if k != "total")
        raise UserError(
            f"the {arch} model has {counts['total']:,} parameters ({parts}), over train.max_params="
            f"{max_params:,}; make model.emb/hidden/layers smaller"
        )
    return counts


def make_scheduler(cfg: LMConfig, optimizer: torch.optim.Optimizer, steps_per_epoch: int):
    kind = cfg.train.schedule
    if kind == "auto":
        kind = "cosine" if cfg.model.arch == "transformer" else "plateau"
    tc = cfg.train
    if kind == "plateau":
        return kind, torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="min", factor=tc.plateau_factor, patience=tc.plateau_patience
        )
    if kind == "cosine":
        total = max(1, tc.epochs * steps_per_epoch)

        def warmup_cosine(step: int) -> float:
            if step < tc.warmup_steps:
                return (step + 1) / tc.warmup_steps
            progress_ = min(1.0, (step - tc.warmup_steps) / max(1, total - tc.warmup_steps))
            return tc.min_lr_ratio + (1 - tc.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress_))

        return kind, torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine)
    return kind, None


class StreamBatches:
    """Truncated-BPTT chunks of this rank's rows of the batchified training stream."""

    def __init__(self, stream: torch.Tensor, batch_size: int, bptt: int, ctx: DistContext):
        x, y = batchify(*lm_pairs(stream), batch_size * ctx.world_size)
        rows = slice(ctx.rank * batch_size, (ctx.rank + 1) * batch_size)
        self.x, self.y, self.bptt = x[rows], y[rows], bptt  # (B, n) each

    def __len__(self) -> int:
        return math.ceil(self.x.shape[1] / self.bptt)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        cut = slice(i * self.bptt, (i + 1) * self.bptt)
        return self.x[:, cut], self.y[:, cut]


def gather_state(state, ctx: DistContext):
    """The recurrent state of all ranks, rows concatenated (for a checkpoint)."""
    if state is None:
        return None
    if isinstance(state, tuple):
        return tuple(all_gather_cat(s, ctx, dim=1) for s in state)
    return all_gather_cat(state, ctx, dim=1)


def slice_state(state, ctx: DistContext, batch_size: int, device: torch.device):
    if state is None:
        return None
    rows = slice(ctx.rank * batch_size, (ctx.rank + 1) * batch_size)
    if isinstance(state, (tuple, list)):
        return tuple(s[:, rows].to(device) for s in state)
    return state[:, rows].to(device)


def train(cfg: LMConfig, data_dir: str | Path, exp_dir: str | Path, overwrite: bool = False) -> dict:
    """Train (or resume) one experiment; returns the last epoch's valid scores."""
    data_dir, exp = check_prepared(data_dir), Path(exp_dir)
    data = data_fingerprint(data_dir, ("vocab.txt", "stats.json"))
    spec = RunSpec(TASK, to_dict(cfg), data=data, safe=SAFE_ON_RESUME)
    with session(exp, overwrite, cfg.train, spec) as ctx:
        return _fit(cfg, spec, data_dir, exp, ctx) if ctx is not None else {}


def _fit(cfg: LMConfig, spec: RunSpec, data_dir: Path, exp: Path, ctx: DistContext) -> dict:
    log = get_logger()
    device, tc, mc = ctx.device, cfg.train, cfg.model

    vocab, vocab_sha256 = load_vocab(data_dir), vocab_hash(data_dir)
    streams = {s: load_stream(data_dir, s) for s in ("train", "valid", "test")}
    model = build_lm(mc, len(vocab)).to(device)
    params = check_size(model, tc.max_params, mc.arch)
    if not model.recurrent and mc.arch == "transformer" and tc.bptt > mc.max_len:
        raise UserError(f"train.bptt={tc.bptt} is longer than model.max_len={mc.max_len}; raise max_len")
    seed_ranks(tc.seed, ctx)

    if model.recurrent:
        batches = StreamBatches(streams["train"], tc.batch_size, tc.bptt, ctx)
        steps_per_epoch = len(batches)
    else:
        windows = WindowSet(*lm_pairs(streams["train"]), length=tc.bptt, prefix=model.prefix)
        sampler = EpochBatchSampler(
            len(windows), tc.batch_size, seed=tc.seed, rank=ctx.rank, world_size=ctx.world_size
        )
        steps_per_epoch = sampler.batches_per_epoch()
    opt_cls = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD}[tc.optimizer]
    # foreach: the same numbers as the per-tensor loop torch picks on CPU, Adam's step in 60% of the time
    foreach = True if device.type == "cpu" else None
    optimizer = opt_cls(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay, foreach=foreach)
    if device.type == "cpu":
        keep_freed_memory()  # the (B, T, V) logits and their gradients reuse memory instead of page-faulting
    schedule, scheduler = make_scheduler(cfg, optimizer, steps_per_epoch)
    scaler = grad_scaler(device, tc.amp)
    ckpts = CheckpointDir(exp, keep_epochs=tc.keep_epochs)

    step = epoch = batch_in_epoch = bad_epochs = 0
    best, state = math.inf, None
    ckpt = resume(ckpts, spec, model, optimizer, scheduler, scaler, ctx)
    if ckpt is not None:
        extra = ckpt["extra"]
        step, epoch, batch_in_epoch = ckpt["step"], ckpt["epoch"], ckpt["batch_in_epoch"]
        best, bad_epochs = ckpt["metrics"].get("best_valid_ppl", math.inf), extra.get("bad_epochs", 0)
        if model.recurrent and batch_in_epoch and extra.get("world_size", 1) == ctx.world_size:
            state = slice_state(extra.get("hidden"), ctx, tc.batch_size, device)
    # epoch sums (loss * tokens, tokens) and the run's tokens and seconds, carried across a resume
    meter = RunMeter.from_state(ckpt["extra"].get("meter") if ckpt else None, mid_epoch=batch_in_epoch > 0)
    if tc.max_steps and step >= tc.max_steps:
        log.info(f"already at train.max_steps={tc.max_steps} (step {step}); rerun without it to continue")
        return {}
    if ctx.is_main:
        save_config(cfg, exp / "config.yaml")
    parts = ", ".join(f"{k} {v:,}" for k, v in params.items() if k != "total")
    log.info(
        f"{mc.arch} LM: {params['total']:,} parameters ({parts}) on {device}; vocabulary {len(vocab):,}, "
        f"{len(streams['train']):,} train tokens, {steps_per_epoch} steps per epoch, {schedule} schedule"
    )

    net = wrap_model(model, ctx)
    metrics = MetricsLogger(exp, enabled=ctx.is_main, resume_step=step, resume_epoch=epoch)

    def checkpoint(metrics_now: dict) -> dict:
        """Called on every rank at the same step (it gathers the hidden state and the RNG of all ranks)."""
        hidden = gather_state(state, ctx) if model.recurrent and batch_in_epoch else None
        return training_state(
            task=TASK, model=model, optimizer=optimizer, scheduler=scheduler, scaler=scaler, step=step,
            epoch=epoch, batch_in_epoch=batch_in_epoch, config=to_dict(cfg),
            metrics={"best_valid_ppl": best, "parameters": params["total"], **metrics_now},
            extra={"vocab_size": len(vocab), "vocab_sha256": vocab_sha256, "data_dir": str(data_dir),
                   "data": spec.data, "hidden": hidden, "world_size": ctx.world_size,
                   "bad_epochs": bad_epochs, "meter": meter.state()},
            rng_per_rank=rng_states(ctx),
        )  # fmt: skip

    def scores(split: str) -> dict:
        return perplexity(model, streams[split], cfg, device)

    valid: dict = {}
    finished_reason = "all epochs done"
    with StopSignal() as stop, metrics:
        while epoch < tc.epochs:
            net.train()
            if model.recurrent:
                order = range(batch_in_epoch, len(batches))
                source = (batches[i] for i in order)
                if batch_in_epoch == 0:
                    state = None
            else:
                sampler.set_epoch(epoch, batch_in_epoch)
                order = range(len(sampler))
                source = iter(build_loader(windows, sampler, collate_fn=batch_collate))
            bar = progress(
                source, total=len(order), desc=f"epoch {epoch + 1}/{tc.epochs}", enabled=ctx.is_main
            )
            meter.start()
            for x, y in bar:
                x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
                state = detach_state(state)
                with autocast(device, tc.amp):
                    logits, state = net(x, state)
                loss = F.cross_entropy(logits.float().flatten(0, 1), y.flatten(), ignore_index=-100)
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                clipped_step(optimizer, scaler, model.parameters(), tc.clip)
                if schedule == "cosine":
                    scheduler.step()
                step += 1
                batch_in_epoch += 1
                n_tok = int((y != -100).sum()) * ctx.world_size
                meter.add(loss=loss.item() * n_tok, tokens=n_tok)
                if step % tc.log_every == 0:
                    now = {
                        "loss": loss.item(),
                        "ppl": math.exp(loss.item()),
                        "lr": optimizer.param_groups[0]["lr"],
                    }
                    metrics.scalars("train", step, now, epoch=epoch + 1)
                    bar.set_postfix(ppl=f"{now['ppl']:.1f}")
                if after_step(step, tc, ckpts, lambda: checkpoint({}), ctx, stop):
                    return {}
            meter.pause()
            epoch += 1
            batch_in_epoch = 0
            state = None
            train_loss = meter.epoch_means("tokens", "loss").get("loss")
            meter.end_epoch()
            valid, test = scores("valid"), scores("test") if cfg.eval.test_every_epoch else {}
            if train_loss is not None:
                metrics.scalars(
                    "train_epoch", step, {"loss": train_loss, "ppl": math.exp(train_loss)}, epoch=epoch
                )
            metrics.scalars("valid", step, {"loss": valid["loss"], "ppl": valid["ppl"]}, epoch=epoch)
            if test:
                metrics.scalars("test", step, {"loss": test["loss"], "ppl": test["ppl"]}, epoch=epoch)
            is_best = valid["ppl"] < best
            best = min(best, valid["ppl"])
            bad_epochs = 0 if is_best else bad_epochs + 1
            if schedule == "plateau":
                scheduler.step(valid["loss"])
            payload = checkpoint({"valid": valid, "test": test})
            if ctx.is_main:
                ckpts.save(payload, epoch_end=True, is_best=is_best)
            parts = [f"train ppl {math.exp(train_loss):.2f}"] if train_loss is not None else []
            parts.append(f"valid ppl {valid['ppl']:.2f}")
            if test:
                parts.append(f"test ppl {test['ppl']:.2f}")
            parts.append(f"lr {optimizer.param_groups[0]['lr']:.2e}")
            parts.append(f"{meter.rate('tokens'):,.0f} tok/s" + (" *best*" if is_best else ""))
            log.info(f"epoch {epoch}/{tc.epochs} step {step}: " + ", ".join(parts))
            barrier(ctx)
            if tc.early_stop and bad_epochs >= tc.early_stop:
                finished_reason = f"early stop: no better valid perplexity for {bad_epochs} epochs"
                log.info(finished_reason)
                break
            if any_rank(stop.requested, ctx):
                log.info(f"interrupted after epoch {epoch}; rerun the same command to resume")
                raise KeyboardInterrupt
    finish(exp, spec, ctx, {"step": step, "epoch": epoch, "reason": finished_reason,
                            "tokens_per_s": round(meter.rate("tokens"), 1)})  # fmt: skip
    return valid
