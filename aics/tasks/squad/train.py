"""Fine-tune BERT for SQuAD v1.1 span prediction, or distil a fine-tuned teacher into a smaller student;
resumes from ``<exp>/ckpt/last.pt`` when one is there.

Usage: aics squad train --data data/squad/prepared --exp exp/squad/minilm --init data/squad/pretrained/minilm

The loss is the mean of the cross-entropies of the gold start and end positions over each window's tokens
(windows without the answer point at [CLS]). AdamW with linear warm-up and linear decay, no weight decay on
biases and LayerNorm, gradient accumulation over micro-batches, AMP on CUDA, DDP under torchrun. With a
teacher (``distill.teacher``) the loss is ``alpha * T^2 * KL(teacher || student)`` over the start and end
distributions at temperature T plus ``(1 - alpha)`` times the gold-span loss. After every epoch the dev set is
predicted and scored (EM/F1, the official rules); best.pt is the checkpoint with the best dev F1.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from aics.core.ckpt import CheckpointDir, load_weights, training_state
from aics.core.config import save_config, to_dict
from aics.core.dist import DistContext, any_rank, barrier, broadcast_object, wrap_model
from aics.core.errors import UserError
from aics.core.io import read_json
from aics.core.loader import LengthGroupedSampler, build_loader
from aics.core.log import MetricsLogger, RunMeter, get_logger, progress
from aics.core.paths import resolve_checkpoint as resolve_ckpt
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
from aics.tasks.squad.config import ModelConfig, SquadConfig
from aics.tasks.squad.data import (
    SPLITS,
    WindowSet,
    check_prepared,
    load_features,
    load_tokenizer,
    read_squad,
    vocab_digest,
)
from aics.tasks.squad.infer import decode, load_trained, window_logits
from aics.tasks.squad.metrics import evaluate
from aics.tasks.squad.model import BertForQuestionAnswering, BertShape, layer_subset

TASK = "squad"
MASKED = -1e4  # logit of padding positions: exp() underflows to 0 without inf - inf = nan in the KL
RANDOM_INIT = {"hidden": 128, "layers": 2, "heads": 4}


# ------------------------------------------------------------------------------------------- the model
def resolve_shape(mc: ModelConfig, base: BertShape | None, vocab_size: int, source: str) -> BertShape:
    """The model's shape: ``base`` (pretrained or teacher) where a size key is 0, else the key's value;
    random init fills the 0s with small defaults."""
    if base is None:
        hidden = mc.hidden or RANDOM_INIT["hidden"]
        base = BertShape(
            vocab_size=vocab_size, hidden_size=hidden, num_hidden_layers=mc.layers or RANDOM_INIT["layers"],
            num_attention_heads=mc.heads or RANDOM_INIT["heads"],
            intermediate_size=mc.intermediate or 4 * hidden,
        )  # fmt: skip
    shape = dataclasses.replace(
        base,
        hidden_size=mc.hidden or base.hidden_size,
        num_hidden_layers=mc.layers or base.num_hidden_layers,
        num_attention_heads=mc.heads or base.num_attention_heads,
        intermediate_size=mc.intermediate or base.intermediate_size,
        hidden_dropout_prob=mc.dropout,
        attention_probs_dropout_prob=mc.attention_dropout,
    )
    if shape.hidden_size % shape.num_attention_heads:
        raise UserError(
            f"model.hidden={shape.hidden_size} is not divisible by model.heads={shape.num_attention_heads}"
        )
    if shape.vocab_size != vocab_size:
        raise UserError(
            f"{source}: its embeddings have {shape.vocab_size} rows but the prepared data's vocabulary has "
            f"{vocab_size} tokens; prepare the data with this model's tokenizer"
        )
    return shape


def evenly_spaced(n_keep: int, n_total: int) -> list[int]:
    """The teacher layers a student of ``n_keep`` layers starts from: evenly spaced, ending at the top."""
    return [round((i + 1) * n_total / n_keep) - 1 for i in range(n_keep)]


def build_model(cfg: SquadConfig, vocab_size: int, vocab_sha: str):
    """(model, teacher or None, notes): random init, pretrained weights (model.init), or a student."""
    mc, dc = cfg.model, cfg.distill
    notes: list[str] = []
    teacher = None
    if dc.teacher:
        teacher_path = resolve_ckpt(dc.teacher)
        teacher, tck = load_trained(teacher_path)
        if tck["extra"].get("vocab_sha256") != vocab_sha:
            raise UserError(f"{teacher_path}: the teacher was trained with another vocabulary than --data's")
        tshape = BertShape(**tck["extra"]["shape"])
        if mc.init:
            raise UserError("model.init and distill.teacher are both set; a student starts from the teacher")
        if dc.student_init == "teacher":
            fixed = {"hidden": tshape.hidden_size, "heads": tshape.num_attention_heads,
                     "intermediate": tshape.intermediate_size}  # fmt: skip
            clash = [f"model.{k}={getattr(mc, k)}" for k, v in fixed.items() if getattr(mc, k) not in (0, v)]
            if clash:
                raise UserError(
                    f"distill.student_init=teacher copies the teacher's layers: {', '.join(clash)} must be 0 "
                    f"or the teacher's ({', '.join(f'{k} {v}' for k, v in fixed.items())}); use "
                    "distill.student_init=random for a narrower student"
                )
        shape = resolve_shape(mc, tshape, vocab_size, str(teacher_path))
        if shape.num_hidden_layers > tshape.num_hidden_layers and dc.student_init == "teacher":
            n, t = shape.num_hidden_layers, tshape.num_hidden_layers
            raise UserError(
                f"model.layers={n} is more than the teacher's {t}; use distill.student_init=random"
            )
        model = BertForQuestionAnswering(shape)
        if dc.student_init == "teacher":
            keep = evenly_spaced(shape.num_hidden_layers, tshape.num_hidden_layers)
            load_weights(model, layer_subset(tck["model"], keep), teacher_path)
            notes.append(f"student initialised from teacher layers {keep} of {tshape.num_hidden_layers}")
        for p in teacher.parameters():
            p.requires_grad_(False)
        return model, teacher, shape, notes
    if mc.init:
        from aics.tasks.squad.importer import load_into, read_hf_dir

        base, state, notes = read_hf_dir(mc.init)
        init_vocab = vocab_digest(load_tokenizer(mc.init))
        if init_vocab != vocab_sha:
            raise UserError(
                f"{mc.init}: its vocabulary differs from the one the --data were prepared with; run "
                f"`aics squad prepare --tokenizer {mc.init}`"
            )
        shape = resolve_shape(mc, base, vocab_size, mc.init)
        if mc.random_weights:
            return BertForQuestionAnswering(shape), None, shape, [f"random weights in the shape of {mc.init}"]
        changed = [
            k for k in ("hidden_size", "num_attention_heads", "intermediate_size")
            if getattr(shape, k) != getattr(base, k)
        ]  # fmt: skip
        if changed or shape.num_hidden_layers > base.num_hidden_layers:
            raise UserError(
                f"model.init={mc.init} fixes the sizes: leave model.hidden/heads/intermediate at 0, and "
                f"model.layers at 0 or at most its {base.num_hidden_layers} (they differ in: "
                f"{', '.join(changed) or 'num_hidden_layers'}); model.random_weights=true takes other sizes"
            )
        if shape.num_hidden_layers < base.num_hidden_layers:
            state = layer_subset(state, list(range(shape.num_hidden_layers)))
            notes.append(
                f"the first {shape.num_hidden_layers} of the {base.num_hidden_layers} pretrained layers"
            )
        model = BertForQuestionAnswering(shape)
        load_into(model, state, mc.init)
        return model, None, shape, notes
    shape = resolve_shape(mc, None, vocab_size, "random init")
    return BertForQuestionAnswering(shape), None, shape, ["random init"]


# ------------------------------------------------------------------------------------------ optimisation
def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim < 2 or "LayerNorm" in name else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def linear_schedule(optimizer: torch.optim.Optimizer, warmup_steps: int, total_steps: int):
    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def masked(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return logits.float().masked_fill(~mask, MASKED)


def span_loss(start: torch.Tensor, end: torch.Tensor, gold_start: torch.Tensor, gold_end: torch.Tensor):
    """Mean of the start and end cross-entropies (start/end: masked logits (B, T))."""
    return (F.cross_entropy(start, gold_start) + F.cross_entropy(end, gold_end)) / 2


def soft_loss(student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
    """T^2 * KL(softmax(teacher / T) || softmax(student / T)), mean over windows."""
    t = temperature
    return (
        F.kl_div(
            F.log_softmax(student / t, dim=-1), F.log_softmax(teacher / t, dim=-1),
            log_target=True, reduction="batchmean",
        )
        * t * t
    )  # fmt: skip


# --------------------------------------------------------------------------------------------- dev eval
class DevSet:
    """The prepared dev windows, questions and answers, scored with the official v1.1 rules."""

    def __init__(self, data_dir: Path):
        self.feats = load_features(data_dir, "dev")
        self.examples, _ = read_squad(data_dir / SPLITS["dev"], skip_bad=True)
        self.articles = read_json(data_dir / SPLITS["dev"])["data"]

    def score(self, model: torch.nn.Module, cfg: SquadConfig, device: torch.device) -> dict:
        pc = cfg.predict
        starts, ends, rate = window_logits(model, self.feats, pc.batch_size, device, cfg.train.amp)
        contexts = [e.context for e in self.examples]
        preds, _ = decode(self.feats, contexts, starts, ends, pc.n_best, pc.max_answer_length)
        scores = evaluate(self.articles, preds)
        return {"em": scores["exact_match"], "f1": scores["f1"], "windows_per_s": rate}


# --------------------------------------------------------------------------------------------- training
def train(cfg: SquadConfig, data_dir: str | Path, exp_dir: str | Path, overwrite: bool = False) -> dict:
    """Train (or resume) one experiment; returns the last epoch's dev scores."""
    data_dir, exp = check_prepared(data_dir), Path(exp_dir)
    data = data_fingerprint(data_dir, ("stats.json",))
    spec = RunSpec(TASK, to_dict(cfg), data=data)
    with session(exp, overwrite, cfg.train, spec) as ctx:
        return _fit(cfg, spec, data_dir, exp, ctx) if ctx is not None else {}


def _fit(cfg: SquadConfig, spec: RunSpec, data_dir: Path, exp: Path, ctx: DistContext) -> dict:
    log = get_logger()
    device, tc = ctx.device, cfg.train
    stats = read_json(data_dir / "stats.json")
    tok = load_tokenizer(data_dir / "tokenizer")
    vocab_sha = stats["vocab_sha256"]
    if vocab_digest(tok) != vocab_sha:
        raise UserError(
            f"{data_dir / 'tokenizer'}: does not match stats.json; rerun `aics squad prepare --overwrite`"
        )
    windows = WindowSet(load_features(data_dir, "train"))
    dev = DevSet(data_dir) if cfg.predict.every_epoch else None
    model, teacher, shape, notes = build_model(cfg, tok.get_vocab_size(), vocab_sha)
    if stats["max_seq_length"] > shape.max_position_embeddings:
        raise UserError(
            f"{data_dir}: was prepared with --max-seq-length {stats['max_seq_length']}, over the model's "
            f"{shape.max_position_embeddings} positions; prepare it again with a smaller one"
        )
    model.to(device)
    if teacher is not None:
        teacher.to(device).eval()
    seed_ranks(tc.seed, ctx)
    for note in notes:
        log.info(note)

    sampler = LengthGroupedSampler(
        windows.lengths(), tc.batch_size, seed=tc.seed, rank=ctx.rank, world_size=ctx.world_size
    )
    steps_per_epoch = sampler.batches_per_epoch()
    total_steps = tc.epochs * steps_per_epoch
    optimizer = torch.optim.AdamW(
        param_groups(model, tc.weight_decay), lr=tc.lr, foreach=True if device.type == "cpu" else None
    )
    scheduler = linear_schedule(optimizer, max(1, int(tc.warmup * total_steps)), total_steps)
    scaler = grad_scaler(device, tc.amp)
    if device.type == "cpu":
        keep_freed_memory()  # batches of every length: reuse freed memory instead of page-faulting it again
    ckpts = CheckpointDir(exp, keep_epochs=tc.keep_epochs)

    step = epoch = batch_in_epoch = 0
    best = -1.0
    ckpt = resume(ckpts, spec, model, optimizer, scheduler, scaler, ctx)
    if ckpt is not None:
        step, epoch, batch_in_epoch = ckpt["step"], ckpt["epoch"], ckpt["batch_in_epoch"]
        best = ckpt["metrics"].get("best_dev_f1", -1.0)
    meter = RunMeter.from_state(ckpt["extra"].get("meter") if ckpt else None, mid_epoch=batch_in_epoch > 0)
    if tc.max_steps and step >= tc.max_steps:
        log.info(f"already at train.max_steps={tc.max_steps} (step {step}); rerun without it to continue")
        return {}
    if ctx.is_main:
        save_config(cfg, exp / "config.yaml")
    n_params = sum(p.numel() for p in model.parameters())
    log.info(
        f"BERT QA: {n_params:,} parameters ({shape.num_hidden_layers} layers, hidden {shape.hidden_size}, "
        f"{shape.num_attention_heads} heads) on {device}; {len(windows):,} train windows, "
        f"{steps_per_epoch} steps per epoch" + (", distilling" if teacher is not None else "")
    )
    features = {k: stats[k] for k in ("max_seq_length", "doc_stride", "max_query_length")}
    net = wrap_model(model, ctx)
    metrics = MetricsLogger(exp, enabled=ctx.is_main, resume_step=step, resume_epoch=epoch)

    def checkpoint(metrics_now: dict) -> dict:
        return training_state(
            task=TASK, model=model, optimizer=optimizer, scheduler=scheduler, scaler=scaler, step=step,
            epoch=epoch, batch_in_epoch=batch_in_epoch, config=to_dict(cfg),
            metrics={"best_dev_f1": best, "parameters": n_params, **metrics_now},
            extra={"shape": dataclasses.asdict(shape), "tokenizer": tok.to_str(), "features": features,
                   "vocab_sha256": vocab_sha, "data": spec.data, "data_dir": str(data_dir),
                   "world_size": ctx.world_size, "meter": meter.state()},
            rng_per_rank=rng_states(ctx),
        )  # fmt: skip

    def micro_step(batch: dict, weight: float, sync: bool) -> float:
        mask = batch["attention_mask"].to(device, non_blocking=True)
        ids = batch["input_ids"].to(device, non_blocking=True)
        types = batch["token_type_ids"].to(device, non_blocking=True)
        gold_s, gold_e = batch["start"].to(device), batch["end"].to(device)
        ctx_sync = torch.enable_grad() if sync or not ctx.distributed else net.no_sync()
        with ctx_sync:
            with autocast(device, tc.amp):
                start, end = net(ids, types, mask)
            start, end = masked(start, mask), masked(end, mask)
            loss = span_loss(start, end, gold_s, gold_e)
            if teacher is not None and cfg.distill.alpha > 0:  # alpha 0: gold spans only, no teacher pass
                with torch.no_grad(), autocast(device, tc.amp):
                    t_start, t_end = teacher(ids, types, mask)
                t = cfg.distill.temperature
                soft = (
                    soft_loss(start, masked(t_start, mask), t) + soft_loss(end, masked(t_end, mask), t)
                ) / 2
                loss = cfg.distill.alpha * soft + (1 - cfg.distill.alpha) * loss
            scaler.scale(loss * weight).backward()
        return loss.item()

    dev_scores: dict = {}
    with StopSignal() as stop, metrics:
        while epoch < tc.epochs:
            net.train()
            sampler.set_epoch(epoch, batch_in_epoch)
            source = build_loader(windows, sampler, collate_fn=lambda idx: idx)
            bar = progress(
                source, total=len(sampler), desc=f"epoch {epoch + 1}/{tc.epochs}", enabled=ctx.is_main
            )
            meter.start()
            for idx in bar:
                parts = [p for p in np.array_split(np.asarray(idx), min(tc.grad_accum, len(idx))) if len(p)]
                optimizer.zero_grad(set_to_none=True)
                loss_sum, tokens = 0.0, 0
                for m, part in enumerate(parts):
                    batch = windows.collate(part.tolist())
                    weight = len(part) / len(idx)
                    loss_sum += micro_step(batch, weight, sync=m == len(parts) - 1) * weight
                    tokens += int(batch["attention_mask"].sum())
                clipped_step(optimizer, scaler, model.parameters(), tc.clip)
                scheduler.step()
                step += 1
                batch_in_epoch += 1
                n = len(idx) * ctx.world_size
                meter.add(loss=loss_sum * n, windows=n, tokens=tokens * ctx.world_size)
                if step % tc.log_every == 0:
                    now = {"loss": loss_sum, "lr": optimizer.param_groups[0]["lr"]}
                    metrics.scalars("train", step, now, epoch=epoch + 1)
                    bar.set_postfix(loss=f"{loss_sum:.3f}")
                if after_step(step, tc, ckpts, lambda: checkpoint({}), ctx, stop):
                    return {}
            meter.pause()
            epoch += 1
            batch_in_epoch = 0
            train_loss = meter.epoch_means("windows", "loss").get("loss")
            meter.end_epoch()
            dev_scores = dev.score(model, cfg, device) if dev is not None and ctx.is_main else {}
            dev_scores = broadcast_object(dev_scores, ctx)
            if train_loss is not None:
                metrics.scalars("train_epoch", step, {"loss": train_loss}, epoch=epoch)
            if dev_scores:
                metrics.scalars("dev", step, {"em": dev_scores["em"], "f1": dev_scores["f1"]}, epoch=epoch)
            is_best = bool(dev_scores) and dev_scores["f1"] > best or not dev_scores
            best = max(best, dev_scores.get("f1", best))
            payload = checkpoint({"dev": dev_scores})
            if ctx.is_main:
                ckpts.save(payload, epoch_end=True, is_best=is_best)
            parts_ = [f"train loss {train_loss:.3f}"] if train_loss is not None else []
            if dev_scores:
                parts_.append(f"dev EM {dev_scores['em']:.2f} F1 {dev_scores['f1']:.2f}")
            parts_.append(f"lr {optimizer.param_groups[0]['lr']:.2e}")
            parts_.append(f"{meter.rate('tokens'):,.0f} tok/s" + (" *best*" if is_best else ""))
            log.info(f"epoch {epoch}/{tc.epochs} step {step}: " + ", ".join(parts_))
            barrier(ctx)
            if any_rank(stop.requested, ctx):
                log.info(f"interrupted after epoch {epoch}; rerun the same command to resume")
                raise KeyboardInterrupt
    finish(exp, spec, ctx, {"step": step, "epoch": epoch, "reason": "all epochs done",
                            "tokens_per_s": round(meter.rate("tokens"), 1), "dev": dev_scores,
                            "parameters": n_params})  # fmt: skip
    return dev_scores
