"""Train a YOLOv5 detector three ways: from scratch, from pretrained weights, or resumed.

Usage: aics detect train --data data/shapes/data.yaml --exp exp/yolov5/n --conf recipes/yolov5/conf/tiny.yaml

- direct: random initialisation from the model description (``model.size`` or ``model.description``);
- pretrained: ``--weights CKPT`` copies every tensor whose name and shape match (an aics checkpoint, e.g. a
  previous run's ``best.pt`` or one made by ``aics detect import``) and reports what was skipped;
- resume: rerun the same command (or ``aics detect train --resume EXP``): ``last.pt`` holds the weights,
  EMA, optimizer, LR schedule, the gradients accumulated so far, RNG and the position in the epoch.

Writes ``<exp>/config.yaml``, ``ckpt/{epoch-NNN,last,best}.pt`` (best by fitness = 0.1 mAP@0.5 + 0.9
mAP@0.5:0.95 of the EMA weights), ``tb/``, ``log/{train.log,metrics.jsonl}``, ``labels.png``,
``train_batch0.png``, ``results.png`` and ``RESULTS.md``.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

from aics.core.ckpt import CheckpointDir, load_checkpoint, require_parts, training_state
from aics.core.config import save_config, to_dict
from aics.core.dist import DistContext, any_rank, barrier, broadcast_object, wrap_model
from aics.core.errors import UserError
from aics.core.loader import EpochBatchSampler, build_loader
from aics.core.log import MetricsLogger, RunMeter, get_logger, progress, setup_logging
from aics.core.runtime import StopSignal, autocast, clipped_step, grad_scaler
from aics.core.stage import done_info, is_done
from aics.core.trainloop import (
    RunSpec,
    after_step,
    experiment_task,
    finish,
    resume,
    rng_states,
    seed_ranks,
    session,
)
from aics.tasks.detect.autoanchor import apply_anchors, check_anchors
from aics.tasks.detect.config import DetectConfig
from aics.tasks.detect.data import EpochIndexBatchSampler, YoloDataset
from aics.tasks.detect.dataset_yaml import image_files, label_path, load_data_yaml
from aics.tasks.detect.infer import validate, write_results
from aics.tasks.detect.labels import scan_labels
from aics.tasks.detect.loss import YoloLoss, hyp_for_model
from aics.tasks.detect.metrics import fitness
from aics.tasks.detect.model import DetectionModel, build_model, count_parameters, load_description
from aics.tasks.detect.plots import plot_batch, plot_labels

TASK = "detect"
LOSS_KEYS = ("box", "obj", "cls")
# Safe to change on resume besides core's list: how images are loaded and whether plots are drawn.
SAFE_ON_RESUME = ("data.workers", "data.cache_images", "train.plots")


class ModelEMA:
    """Exponential moving average of the weights (and BN statistics), with a decay that ramps up from 0
    so the average does not remember the random initialisation: d = decay * (1 - exp(-updates / tau))."""

    def __init__(self, model: nn.Module, decay: float = 0.9999, tau: float = 2000.0, updates: int = 0):
        self.ema = copy.deepcopy(model).eval()
        for p in self.ema.parameters():
            p.requires_grad_(False)
        self.decay, self.tau, self.updates = decay, tau, updates

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.updates += 1
        d = self.decay * (1 - math.exp(-self.updates / self.tau))
        current = model.state_dict()
        for name, value in self.ema.state_dict().items():
            if value.dtype.is_floating_point:
                value.mul_(d).add_(current[name].detach(), alpha=1 - d)


def model_from_config(cfg: DetectConfig, nc: int) -> DetectionModel:
    if cfg.model.description:
        description = load_description(cfg.model.description)
        description["nc"] = nc
        return DetectionModel(description)
    return build_model(cfg.model.size, nc=nc)


def transfer_weights(model: nn.Module, source: Path) -> tuple[int, list[str]]:
    """Copy every tensor of ``source`` (EMA weights when present) whose name and shape match; returns how
    many were copied and the names of the model's tensors that were not."""
    ckpt = load_checkpoint(source, map_location="cpu")
    if ckpt.get("task") not in (None, TASK):
        raise UserError(f"{source}: is a '{ckpt.get('task')}' checkpoint, not a detector; pass a detect one")
    require_parts(ckpt, source, ("model",))
    extra = ckpt.get("extra") if isinstance(ckpt.get("extra"), dict) else {}
    weights = extra.get("ema") or ckpt["model"]
    own = model.state_dict()
    matched = {k: v for k, v in weights.items() if k in own and own[k].shape == v.shape}
    own.update({k: v.to(own[k].dtype) for k, v in matched.items()})
    model.load_state_dict(own)
    return len(matched), [k for k in own if k not in matched]


def parameter_groups(model: nn.Module) -> tuple[list, list, list]:
    """YOLOv5's three groups: biases (no decay, own warm-up LR), weights (decay), norm weights (no decay)."""
    biases, weights, norm_weights = [], [], []
    for module in model.modules():
        for name, p in module.named_parameters(recurse=False):
            if name == "bias":
                biases.append(p)
            elif isinstance(module, nn.modules.batchnorm._NormBase):
                norm_weights.append(p)
            else:
                weights.append(p)
    return biases, weights, norm_weights


def build_optimizer(model: nn.Module, cfg: DetectConfig, weight_decay: float) -> torch.optim.Optimizer:
    biases, weights, norm_weights = parameter_groups(model)
    h, name = cfg.hyp, cfg.train.optimizer
    if name == "SGD":
        opt = torch.optim.SGD(biases, lr=h.lr0, momentum=h.momentum, nesterov=True)
    else:
        cls = torch.optim.Adam if name == "Adam" else torch.optim.AdamW
        opt = cls(biases, lr=h.lr0, betas=(h.momentum, 0.999), weight_decay=0.0)
    opt.add_param_group({"params": weights, "weight_decay": weight_decay})
    opt.add_param_group({"params": norm_weights, "weight_decay": 0.0})
    return opt


def lr_lambda(cfg: DetectConfig):
    """The LR factor of epoch e: linear (or cosine) from 1 down to ``lrf`` over the run."""
    epochs, lrf = cfg.train.epochs, cfg.hyp.lrf
    if cfg.train.cos_lr:
        return lambda e: ((1 - math.cos(e * math.pi / epochs)) / 2) * (lrf - 1) + 1
    return lambda e: (1 - e / epochs) * (1.0 - lrf) + lrf


def load_split(spec, split: str, nc: int):
    files = getattr(spec, split)
    if not files:
        raise UserError(f"{spec.yaml_path}: '{split}' lists no images; point it at an images folder")
    return scan_labels(files, nc, split=split)


def dataset_fingerprint(yaml_path: str | Path) -> dict:
    """``{"path", "sha256"}`` of a dataset: its class names and the name and size of every train and val
    image and label file, so the same data under another path match and other data do not."""
    spec = load_data_yaml(yaml_path)
    entries: list = [list(spec.names)]
    for split in ("train", "val"):
        for image in image_files(getattr(spec, split)) if getattr(spec, split) else []:
            label = label_path(image)
            sizes = [p.stat().st_size if p.is_file() else -1 for p in (image, label)]
            entries.append([split, image.name, *sizes])
    digest = hashlib.sha256(json.dumps(entries).encode()).hexdigest()
    return {"path": str(Path(yaml_path).resolve()), "sha256": digest}


def train(
    cfg: DetectConfig, exp_dir: str | Path, weights: str | Path | None = None, overwrite: bool = False
) -> dict:
    """Train (or resume) one experiment; returns the last validation scores."""
    if not cfg.data.yaml:
        raise UserError("no dataset: pass --data DATA.yaml (or set data.yaml in a --conf file)")
    exp = Path(exp_dir)
    cfg.data.yaml = str(Path(cfg.data.yaml).resolve())  # so --resume works from any directory
    # the yaml's path may change on resume (the same data reached another way); its content may not
    data = dataset_fingerprint(cfg.data.yaml)
    run_spec = RunSpec(TASK, to_dict(cfg), data=data, safe=(*SAFE_ON_RESUME, "data.yaml"))
    with session(exp, overwrite, cfg.train, run_spec) as ctx:
        return _fit(cfg, run_spec, exp, ctx, Path(weights) if weights else None) if ctx is not None else {}


def resume_experiment(exp_dir: str | Path) -> dict:
    """``--resume EXP``: continue EXP with its own saved config to its last epoch (a ``train.max_steps``
    stop of the earlier command is lifted); a finished run says so."""
    exp = Path(exp_dir)
    setup_logging(None, is_main=os.environ.get("RANK", "0") == "0")  # the run itself adds its log file
    task = experiment_task(exp)
    if task not in (None, TASK):
        raise UserError(f"{exp}: is a '{task}' experiment, not a detect one; --resume takes a detect --exp")
    if is_done(exp):
        info = done_info(exp)
        get_logger().info(
            f"{exp} already finished ({info.get('reason', 'all epochs done')}); nothing to resume"
        )
        return {}
    if not (exp / "config.yaml").is_file():
        raise UserError(f"{exp}: no config.yaml; it is not a detect experiment (start it with --data/--exp)")
    from aics.tasks.detect.config import load_detect_config

    cfg = load_detect_config([exp / "config.yaml"])
    if cfg.train.max_steps:
        get_logger().info(f"--resume: continuing past train.max_steps={cfg.train.max_steps} to the end")
        cfg.train.max_steps = 0
    return train(cfg, exp)


def _fit(cfg: DetectConfig, run_spec: RunSpec, exp: Path, ctx: DistContext, weights: Path | None) -> dict:
    log = get_logger()
    device, tc = ctx.device, cfg.train
    spec = load_data_yaml(cfg.data.yaml)
    train_scan, val_scan = load_split(spec, "train", spec.nc), load_split(spec, "val", spec.nc)

    model = model_from_config(cfg, spec.nc)  # the same initial weights on every rank
    model.names = list(spec.names)
    seed_ranks(tc.seed, ctx)
    stride = int(model.stride.max())
    if cfg.data.imgsz % stride:
        raise UserError(f"data.imgsz={cfg.data.imgsz} must be a multiple of the largest stride {stride}")
    ckpts = CheckpointDir(exp, keep_epochs=tc.keep_epochs)
    fresh = not ckpts.last.is_file()
    if weights is not None and fresh:
        copied, skipped = transfer_weights(model, weights)
        log.info(f"pretrained: {copied} tensors from {weights}; {len(skipped)} not transferred")
        if skipped:
            log.info("not transferred: " + ", ".join(skipped[:12]) + (" ..." if len(skipped) > 12 else ""))
    for name, p in model.named_parameters():
        layer = int(name.split(".")[1]) if name.startswith("model.") else 10**9
        p.requires_grad_(layer >= tc.freeze)
    model.to(device)

    train_set = YoloDataset(
        train_scan.samples, img_size=cfg.data.imgsz, batch_size=tc.batch_size, augment=True,
        hyp=to_dict(cfg.hyp), stride=stride, seed=tc.seed, cache_images=cfg.data.cache_images,
    )  # fmt: skip
    val_set = YoloDataset(
        val_scan.samples, img_size=cfg.data.imgsz, batch_size=cfg.val.batch_size, augment=False,
        rect=cfg.val.rect, stride=stride, pad=0.5, seed=tc.seed, cache_images=cfg.data.cache_images,
    )  # fmt: skip
    if fresh and tc.autoanchor:
        wh, shapes = train_set.labels_wh()
        anchors_px = model.detect.anchors.detach().cpu() * model.stride.view(-1, 1, 1).cpu()
        result = check_anchors(wh, shapes, anchors_px, model.stride.cpu(), cfg.data.imgsz, cfg.hyp.anchor_t)
        log.info(
            f"autoanchor: best possible recall {result['bpr']:.4f}, "
            f"{result['aat']:.2f} anchors past threshold"
            + (
                f"; replaced by k-means anchors (recall {result['new_bpr']:.4f})"
                if result["replaced"]
                else ""
            )
        )
        if result["replaced"]:
            apply_anchors(model.detect, torch.as_tensor(result["new_anchors"]).view(-1, 2))

    nb = EpochBatchSampler(len(train_set), tc.batch_size, world_size=ctx.world_size).batches_per_epoch()
    accumulate_max = max(round(tc.nbs / (tc.batch_size * ctx.world_size)), 1)
    weight_decay = cfg.hyp.weight_decay * tc.batch_size * ctx.world_size * accumulate_max / tc.nbs
    optimizer = build_optimizer(model, cfg, weight_decay)
    lf = lr_lambda(cfg)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda=lf)
    scaler = grad_scaler(device, tc.amp)
    hyp = hyp_for_model(to_dict(cfg.hyp), spec.nc, model.detect.nl, cfg.data.imgsz)
    compute_loss = YoloLoss(model.detect, hyp)
    params = count_parameters(model)

    step = epoch = batch_in_epoch = last_opt_step = bad_epochs = 0
    best_fitness = -1.0
    mode, resumes = ("pretrained" if weights is not None else "direct"), 0
    ckpt = resume(ckpts, run_spec, model, optimizer, scheduler, scaler, ctx)
    if ckpt is not None:
        extra = ckpt["extra"]
        step, epoch, batch_in_epoch = ckpt["step"], ckpt["epoch"], ckpt["batch_in_epoch"]
        last_opt_step, bad_epochs = extra["last_opt_step"], extra["bad_epochs"]
        best_fitness, mode, resumes = ckpt["metrics"]["best_fitness"], extra["mode"], extra["resumes"] + 1
    # epoch loss sums, images and training seconds of the run, carried across a resume
    meter = RunMeter.from_state(ckpt["extra"].get("meter") if ckpt else None, mid_epoch=batch_in_epoch > 0)
    ema = ModelEMA(model) if tc.ema else None  # after resume: it starts from the weights being trained
    if ckpt is not None:
        extra = ckpt["extra"]
        if ema is not None and extra.get("ema") is not None:
            ema.ema.load_state_dict(extra["ema"])
            ema.updates = extra["ema_updates"]
        for p, g in zip(model.parameters(), extra["grads"], strict=True):
            p.grad = None if g is None else g.to(device)
    if tc.max_steps and step >= tc.max_steps:
        log.info(f"already at train.max_steps={tc.max_steps} (step {step}); rerun without it to continue")
        return {}
    if ctx.is_main:
        save_config(cfg, exp / "config.yaml")
        if fresh and tc.plots:
            plot_labels(train_scan.samples, spec.names, exp / "labels.png")
    log.info(
        f"yolov5{cfg.model.size if not cfg.model.description else ' ' + cfg.model.description}: "
        f"{params:,} parameters, {spec.nc} classes, on {device}; {len(train_set)} train / {len(val_set)} val "
        f"images at {cfg.data.imgsz}px, {nb} batches per epoch, gradients accumulated to {tc.nbs} images"
    )

    net = wrap_model(model, ctx)
    sampler = EpochIndexBatchSampler(
        len(train_set), tc.batch_size, shuffle=True, seed=tc.seed, rank=ctx.rank, world_size=ctx.world_size
    )
    loader, loader_hyp = None, None  # workers live across epochs; a new loader when the hyp changes
    val_loader = torch.utils.data.DataLoader(
        val_set, batch_size=cfg.val.batch_size, shuffle=False, num_workers=min(cfg.data.workers, 1),
        collate_fn=YoloDataset.collate_fn,
    )  # fmt: skip
    warmup_iters = max(round(cfg.hyp.warmup_epochs * nb), 100) if cfg.hyp.warmup_epochs > 0 else -1
    metrics = MetricsLogger(exp, enabled=ctx.is_main, resume_step=step, resume_epoch=epoch)

    def state(metrics_now: dict) -> dict:
        extra = {
            "description": model.description, "names": list(spec.names), "world_size": ctx.world_size,
            "ema": ema.ema.state_dict() if ema is not None else None,
            "ema_updates": ema.updates if ema is not None else 0,
            "grads": [None if p.grad is None else p.grad.detach().cpu() for p in model.parameters()],
            "last_opt_step": last_opt_step, "bad_epochs": bad_epochs, "meter": meter.state(),
            "mode": mode, "resumes": resumes, "data": run_spec.data,
        }  # fmt: skip
        return training_state(
            task=TASK, model=model, optimizer=optimizer, scheduler=scheduler, scaler=scaler, step=step,
            epoch=epoch, batch_in_epoch=batch_in_epoch, config=to_dict(cfg),
            metrics={"best_fitness": best_fitness, "parameters": params, **metrics_now}, extra=extra,
            rng_per_rank=rng_states(ctx),
        )  # fmt: skip

    scores: dict = {}
    finished = "all epochs done"
    with StopSignal() as stop, metrics:
        while epoch < tc.epochs:
            if tc.close_mosaic and epoch >= tc.epochs - tc.close_mosaic:
                train_set.hyp = {**train_set.hyp, "mosaic": 0.0, "mixup": 0.0}
            train_set.set_epoch(epoch)
            sampler.set_epoch(epoch, batch_in_epoch)
            net.train()
            meter.start()
            if loader is None or loader_hyp != train_set.hyp:
                loader_hyp = dict(train_set.hyp)
                loader = build_loader(
                    train_set, sampler, cfg.data.workers, collate_fn=YoloDataset.collate_fn,
                    persistent_workers=True,
                )  # fmt: skip
            bar = progress(
                loader, total=len(sampler), desc=f"epoch {epoch + 1}/{tc.epochs}", enabled=ctx.is_main
            )
            for imgs, targets, paths, _ in bar:
                if step == 0 and ctx.is_main and tc.plots:
                    plot_batch(imgs, targets, paths, spec.names, exp / "train_batch0.png")
                imgs = imgs.to(device, non_blocking=True).float() / 255  # (B, 3, H, W) in [0, 1]
                if step <= warmup_iters:
                    accumulate = max(1, round(float(np.interp(step, [0, warmup_iters], [1, accumulate_max]))))
                    for j, group in enumerate(optimizer.param_groups):
                        start_lr = cfg.hyp.warmup_bias_lr if j == 0 else 0.0
                        group["lr"] = float(
                            np.interp(step, [0, warmup_iters], [start_lr, group["initial_lr"] * lf(epoch)])
                        )
                        if "momentum" in group:
                            group["momentum"] = float(
                                np.interp(
                                    step, [0, warmup_iters], [cfg.hyp.warmup_momentum, cfg.hyp.momentum]
                                )
                            )
                else:
                    accumulate = accumulate_max
                with autocast(device, tc.amp):
                    preds = net(imgs)
                loss, items = compute_loss([p.float() for p in preds], targets.to(device))
                if ctx.world_size > 1:
                    loss = loss * ctx.world_size  # DDP averages gradients over ranks; YOLOv5 sums them
                scaler.scale(loss).backward()
                step += 1
                batch_in_epoch += 1
                if step - last_opt_step >= accumulate:
                    clipped_step(optimizer, scaler, model.parameters(), 10.0)
                    optimizer.zero_grad(set_to_none=True)
                    if ema is not None:
                        ema.update(model)
                    last_opt_step = step
                meter.add(batches=1, images=imgs.shape[0] * ctx.world_size,
                          **dict(zip(LOSS_KEYS, items.cpu().double().tolist(), strict=True)))  # fmt: skip
                if step % tc.log_every == 0:
                    values = dict(zip(LOSS_KEYS, items.tolist(), strict=True))
                    values["lr"] = optimizer.param_groups[1]["lr"]
                    metrics.scalars("train", step, values, epoch=epoch + 1)
                    bar.set_postfix(
                        box=f"{values['box']:.3f}", obj=f"{values['obj']:.3f}", cls=f"{values['cls']:.3f}"
                    )
                if after_step(step, tc, ckpts, lambda: state({}), ctx, stop):
                    return {}
            meter.pause()
            epoch += 1
            batch_in_epoch = 0
            scheduler.step()
            train_avg = meter.epoch_means("batches", *LOSS_KEYS)
            meter.end_epoch()
            last_epoch = epoch == tc.epochs
            validated = epoch % tc.val_every == 0 or last_epoch
            if validated:
                # Rank 0 validates and shares the scores: the ranks' EMAs differ slightly (BN statistics of
                # their own batches), and they must agree on best and on early stopping.
                scores = None
                if ctx.is_main:
                    scores = validate(
                        ema.ema if ema is not None else model, val_loader, spec.names, cfg.val, device,
                        amp=tc.amp, loss_fn=compute_loss, progress_bar=False,
                    )  # fmt: skip
                scores = broadcast_object(scores, ctx)
                fit = fitness(scores["map50"], scores["map"])
                is_best = fit >= best_fitness  # ties too, like YOLOv5: the later weights are kept
                best_fitness = max(best_fitness, fit)
                bad_epochs = 0 if is_best else bad_epochs + 1
            else:
                is_best = False
            # scores of this epoch's validation only: an epoch without one logs none (the last ones stay in
            # `scores` for the return value)
            now = {k: v for k, v in scores.items() if not isinstance(v, (list, dict))} if validated else {}
            payload = state({"val": now})
            if ctx.is_main:
                # the epoch's rows before its checkpoint: a crash in between redoes them once on resume
                if train_avg:
                    metrics.scalars("train_epoch", step, train_avg, epoch=epoch)
                if validated:
                    metrics.scalars("val", step, val_scalars(scores), epoch=epoch)
                losses = " ".join(f"{k} {train_avg[k]:.4f}" for k in LOSS_KEYS) if train_avg else "(resumed)"
                log.info(
                    f"epoch {epoch}/{tc.epochs} step {step}: loss {losses}; "
                    + (
                        f"val P {scores['mp']:.3f} R {scores['mr']:.3f} mAP50 {scores['map50']:.3f} "
                        f"mAP50-95 {scores['map']:.3f}"
                        if validated else "no val this epoch"
                    )
                    + f"; {meter.rate('images'):.1f} img/s"
                    + (" *best*" if is_best else "")
                )  # fmt: skip
                ckpts.save(payload, epoch_end=True, is_best=is_best)
            barrier(ctx)
            if tc.patience and bad_epochs >= tc.patience:
                finished = f"early stop: no better fitness for {bad_epochs} epochs"
                log.info(finished)
                break
            if any_rank(stop.requested, ctx):
                log.info(f"interrupted after epoch {epoch}; rerun the same command to resume")
                raise KeyboardInterrupt
    if ctx.is_main:
        write_results(exp)
    finish(exp, run_spec, ctx, {
        "step": step, "epoch": epoch, "reason": finished, "best_fitness": round(best_fitness, 5),
        "train_seconds": round(meter.seconds, 1), "images_per_s": round(meter.rate("images"), 2),
        "mode": mode, "resumes": resumes, "parameters": params,
    })  # fmt: skip
    return scores


def val_scalars(scores: dict) -> dict:
    keep = {"mp": "precision", "mr": "recall", "map50": "mAP50", "map": "mAP50-95"}
    out = {name: scores[k] for k, name in keep.items()}
    out.update({f"loss_{k}": v for k, v in scores.get("loss", {}).items()})
    return out
