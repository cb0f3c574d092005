"""Train a WaveGlow vocoder on the wavs behind a features dir; resumes from ``<exp>/ckpt/last.pt``.

Usage: aics tts train-waveglow --data data/tts/feats --exp exp/tts/waveglow --conf
recipes/tts_tacotron2/conf/waveglow_cpu.yaml

The model is ``aics.tasks.tts.waveglow.WaveGlow``; the training follows NVIDIA's (Prenger et al. 2019,
DeepLearningExamples): every utterance gives one random crop per epoch of ``train.segment_frames`` mel frames
(the features dir's precomputed mels) and the audio samples they describe, read from the utterance's wav at
the features' sample rate; the loss is the negative log-likelihood of the audio under the flow with a
Gaussian prior of standard deviation ``train.sigma``, per audio sample; Adam at a constant learning rate.
Every epoch ends with the valid loss over one fixed (centred) crop per valid utterance (``best.pt`` has the
lowest). Checkpoints carry the network's config (NVIDIA's names) under ``extra["waveglow"]``, so ``aics tts
synth --waveglow EXP/ckpt/best.pt`` reads them. Under ``torchrun`` each rank takes its slice of every global
batch.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from aics.core.audio import audio_info, read_wav
from aics.core.ckpt import CheckpointDir, training_state
from aics.core.config import RunOptions, option, save_config, section, to_dict
from aics.core.dist import DistContext, any_rank, barrier, wrap_model
from aics.core.errors import UserError, raise_problems
from aics.core.io import read_json, read_jsonl
from aics.core.loader import EpochBatchSampler, build_loader
from aics.core.log import MetricsLogger, RunMeter, get_logger, progress
from aics.core.runtime import StopSignal, autocast, clipped_step, grad_scaler
from aics.core.trainloop import (
    RunSpec,
    after_step,
    check_finite_loss,
    data_fingerprint,
    finish,
    resume,
    rng_states,
    seed_ranks,
    session,
)
from aics.tasks.tts.config import FeatureConfig
from aics.tasks.tts.data import (
    FEATURES_FILE,
    check_features,
    mel_config,
    subset_rows,
    training_features,
)
from aics.tasks.tts.model import parameter_count
from aics.tasks.tts.waveglow import WaveGlow, WaveGlowConfig, WNConfig

TASK = "tts"
HOP = 256  # WaveGlow's upsampling layer is a transposed conv of stride 256: one mel frame, 256 samples


# ---------------------------------------------------------------------------------------------- config
@dataclass
class WNOptions:
    n_layers: int = option(2, help="dilated conv layers per coupling network (NVIDIA: 8)", min=1)
    n_channels: int = option(16, help="channels of the coupling networks (NVIDIA: 512; even)", min=2)
    kernel_size: int = option(3, help="width of the dilated convolutions (odd; NVIDIA: 3)", min=1)


@dataclass
class WaveGlowModelOptions:
    n_flows: int = option(4, help="flow steps: invertible 1x1 conv + affine coupling (NVIDIA: 12)", min=1)
    n_group: int = option(
        8, help="audio samples folded into the channels of one time step (NVIDIA: 8)", min=2
    )
    n_early_every: int = option(2, help="every N flows some channels leave early (NVIDIA: 4)", min=1)
    n_early_size: int = option(2, help="channels that leave at each early output (NVIDIA: 2)", min=0)
    WN_config: WNOptions = section(WNOptions, help="the coupling networks (WaveNet-like, NVIDIA's WN_config)")


@dataclass
class WaveGlowTrainOptions(RunOptions):
    epochs: int = option(
        2, help="passes over the training utterances (one random crop of each per pass)", min=1
    )
    batch_size: int = option(4, help="crops per step (per process under torchrun; NVIDIA: 12)", min=1)
    segment_frames: int = option(
        8,
        help="mel frames per training crop, 256 audio samples each (NVIDIA: 16000 samples, about 62 frames)",
        min=1,
    )
    sigma: float = option(
        1.0, help="standard deviation of the Gaussian prior in training (NVIDIA: 1.0)", min=0.01
    )
    train_set: str = option("train", help="subset of the features dir to train on")
    valid_set: str = option("valid", help="subset scored after every epoch (its loss picks best.pt)")
    lr: float = option(1e-4, help="learning rate (Adam, constant, as NVIDIA)", min=0.0)
    weight_decay: float = option(0.0, help="Adam weight decay (NVIDIA: 0)", min=0.0)
    clip: float = option(0.0, help="clip the gradient norm to this (0: no clipping, as NVIDIA)", min=0.0)
    num_workers: int = option(0, help="DataLoader worker processes (each crop reads part of a wav)", min=0)
    keep_epochs: int = option(2, help="keep only the newest N epoch-NNN.pt files (0: keep all)", min=0)
    log_every: int = option(20, help="log the train loss every N steps", min=1)


@dataclass
class WaveGlowTrainConfig:
    features: FeatureConfig = section(
        FeatureConfig, help="mel features (read from the features dir's record)"
    )
    model: WaveGlowModelOptions = section(WaveGlowModelOptions, help="WaveGlow sizes, NVIDIA's names")
    train: WaveGlowTrainOptions = section(WaveGlowTrainOptions, help="crops, optimisation, checkpointing")


def waveglow_config(model: WaveGlowModelOptions, n_mels: int = 80) -> WaveGlowConfig:
    """The model section as the network's ``WaveGlowConfig``."""
    wn = model.WN_config
    return WaveGlowConfig(
        n_mel_channels=n_mels, n_flows=model.n_flows, n_group=model.n_group,
        n_early_every=model.n_early_every, n_early_size=model.n_early_size,
        WN_config=WNConfig(n_layers=wn.n_layers, n_channels=wn.n_channels, kernel_size=wn.kernel_size),
    )  # fmt: skip


def check_config(cfg: WaveGlowTrainConfig) -> None:
    """Sizes the network cannot be built with, or a crop it cannot take, as one line each."""
    m, wn = cfg.model, cfg.model.WN_config
    if m.n_group % 2:
        raise UserError(
            f"model.n_group={m.n_group} must be even (the coupling splits the channels in halves)"
        )
    if m.n_early_size % 2:
        raise UserError(f"model.n_early_size={m.n_early_size} must be even (it leaves from both halves)")
    exits = (m.n_flows - 1) // m.n_early_every
    if m.n_group - exits * m.n_early_size < 2:
        raise UserError(
            f"model: {exits} early outputs of {m.n_early_size} channels leave fewer than 2 of the "
            f"n_group={m.n_group}; lower model.n_early_size or raise model.n_early_every"
        )
    if wn.n_channels % 2 or wn.kernel_size % 2 == 0:
        raise UserError(
            f"model.WN_config: n_channels={wn.n_channels} must be even and kernel_size={wn.kernel_size} odd"
        )
    if (cfg.train.segment_frames * HOP) % m.n_group:
        raise UserError(
            f"model.n_group={m.n_group} must divide the {cfg.train.segment_frames * HOP} samples of a crop"
        )


# ---------------------------------------------------------------------------------------------- loss
def waveglow_loss(
    z: torch.Tensor, log_s_sum: torch.Tensor, log_det_sum: torch.Tensor, sigma: float
) -> torch.Tensor:
    """NVIDIA's WaveGlowLoss per audio sample: (sum z^2 / (2 sigma^2) - sum log s - sum log|det W|) / (B T).

    ``z`` (B, T), ``log_s_sum`` and ``log_det_sum`` as ``WaveGlow.forward`` returns them: the sum of the
    coupling log-scales over the whole batch, and the invertible convolutions' log-determinants for ONE item
    (NVIDIA's Invertible1x1Conv multiplies it by the batch size itself); so it counts B times here. This is
    the negative log-likelihood per sample in nats, less the constant log(sigma sqrt(2 pi)).
    """
    b = z.shape[0]
    nll = (z.float() ** 2).sum() / (2 * sigma**2) - log_s_sum.float() - b * log_det_sum.float()
    return nll / z.numel()


# ---------------------------------------------------------------------------------------------- data
def expected_frames(samples: int, native_sr: int, sample_rate: int, n_fft: int, hop: int) -> int:
    """Mel frames ``compute_features`` gives a wav of ``samples`` at ``native_sr`` (resampled as read_wav
    does, to ceil(samples * sample_rate / native_sr) samples; padded by n_fft // 2 at both ends)."""
    n = samples if native_sr == sample_rate else -(-samples * sample_rate // native_sr)
    return (n + 2 * (n_fft // 2) - n_fft) // hop + 1


def read_samples(path: str, start: int, stop: int, native_sr: int, sample_rate: int) -> torch.Tensor:
    """Samples ``[start, stop)`` of a wav at ``sample_rate``, mono float32 in [-1, 1] (int16 / 32768), zeros
    past its end. At its own rate only that part is read; otherwise the whole file is resampled first."""
    import soundfile

    if native_sr == sample_rate:
        data, _ = soundfile.read(path, start=start, stop=stop, dtype="float32", always_2d=True)  # (T, C)
        wav = torch.from_numpy(np.ascontiguousarray(data.T)).mean(dim=0)
    else:
        wav = read_wav(path, sr=sample_rate)[0][start:stop]
    out = torch.zeros(stop - start)
    out[: len(wav)] = wav
    return out


class SegmentSet:
    """One subset of a features dir as WaveGlow crops: item i -> (mel (n_mels, n) float32, audio (n * hop,)
    float32), n = ``segment_frames``. Frame f is centred on sample f * hop; a crop of frames [f, f + n) comes
    with the samples [f * hop, (f + n) * hop), so frame f + k conditions the crop's samples from k * hop on.

    ``random_crop``: the crop of item i starts at a frame drawn from (seed, epoch, i) (set ``epoch`` before
    each epoch), so a resumed run reads the same crops; else the crop is centred (the valid set). An utterance
    shorter than a crop is padded: the audio with zeros, the mel with the log floor (the mel of silence).
    Every wav is checked when the set is opened: it must exist and still give the frames the mels have.
    """

    def __init__(self, feats_dir: str | Path, subset: str, segment_frames: int, random_crop: bool = True,
                 seed: int = 0):  # fmt: skip
        feats_dir = Path(feats_dir)
        path = feats_dir / f"{subset}.npy"
        subset_rows(feats_dir, subset)
        mc = mel_config(read_json(feats_dir / FEATURES_FILE)["features"])
        self.sample_rate, self.hop, self.pad_value = mc.sample_rate, mc.hop, math.log(mc.floor)
        self.mels = np.load(path, mmap_mode="r", allow_pickle=False)
        self.offsets = np.load(feats_dir / f"{subset}.offsets.npy", allow_pickle=False)
        self.rows = read_jsonl(feats_dir / f"{subset}.jsonl")
        self.lengths = np.diff(self.offsets)
        self.segment_frames, self.random_crop, self.seed, self.epoch = segment_frames, random_crop, seed, 0
        self.native_sr: list[int] = []
        problems = []
        for row, frames in zip(self.rows, self.lengths, strict=True):
            try:
                samples, sr, _ = audio_info(row["wav"])
            except UserError as e:
                problems.append(f"{row['source']}: {e}")
                sr = 0
            else:
                got = expected_frames(samples, sr, self.sample_rate, mc.n_fft, self.hop)
                if got != frames:
                    problems.append(
                        f"{row['source']}: {row['wav']} now gives {got} frames, the features have {frames}"
                    )
            self.native_sr.append(sr)
        raise_problems(
            problems, "the wavs changed since `aics tts features`: compute the features again (--overwrite)"
        )

    def __len__(self) -> int:
        return len(self.rows)

    def crop_start(self, i: int) -> int:
        """The first mel frame of item i's crop (this epoch's, for a random crop)."""
        room = int(self.lengths[i]) - self.segment_frames
        if room <= 0:
            return 0
        if not self.random_crop:
            return room // 2
        return int(np.random.default_rng([self.seed, self.epoch, i]).integers(0, room + 1))

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        n, hop = self.segment_frames, self.hop
        f = self.crop_start(i)
        lo, hi = self.offsets[i] + f, min(self.offsets[i] + f + n, self.offsets[i + 1])
        mel = torch.full((n, self.mels.shape[1]), self.pad_value)
        mel[: hi - lo] = torch.from_numpy(np.array(self.mels[lo:hi], dtype=np.float32))
        audio = read_samples(self.rows[i]["wav"], f * hop, (f + n) * hop, self.native_sr[i], self.sample_rate)
        return mel.T.contiguous(), audio


def collate(items: list) -> tuple[torch.Tensor, torch.Tensor]:
    """-> mels (B, n_mels, n), audio (B, n * hop)."""
    return torch.stack([m for m, _ in items]), torch.stack([a for _, a in items])


# ---------------------------------------------------------------------------------------------- training
def train(
    cfg: WaveGlowTrainConfig, feats_dir: str | Path, exp_dir: str | Path, overwrite: bool = False
) -> dict:
    """Train (or resume) one WaveGlow experiment; returns the last epoch's valid scores."""
    feats_dir, exp = check_features(feats_dir), Path(exp_dir)
    cfg.features = training_features(feats_dir, (cfg.train.train_set, cfg.train.valid_set))
    check_config(cfg)
    _refuse_other_model(exp, overwrite)
    tc = cfg.train
    sets = (SegmentSet(feats_dir, tc.train_set, tc.segment_frames, seed=tc.seed),  # checks every wav
            SegmentSet(feats_dir, tc.valid_set, tc.segment_frames, random_crop=False))  # fmt: skip
    data = data_fingerprint(feats_dir, (FEATURES_FILE, ".done"))
    spec = RunSpec(TASK, to_dict(cfg), data=data)
    with session(exp, overwrite, tc, spec) as ctx:
        return _fit(cfg, spec, sets, exp, ctx) if ctx is not None else {}


def _refuse_other_model(exp: Path, overwrite: bool) -> None:
    """Tacotron2 and WaveGlow experiments are both task 'tts': tell them apart by the recorded config."""
    import yaml

    path = exp / "config.yaml"
    if overwrite or not path.is_file():
        return
    try:
        saved = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return  # the session's own checks report a damaged experiment
    if isinstance(saved, dict) and isinstance(saved.get("model"), dict) and "n_flows" not in saved["model"]:
        raise UserError(f"{exp}: is a Tacotron2 experiment, not a WaveGlow one; use another --exp")


@torch.no_grad()
def evaluate(model: WaveGlow, ds: SegmentSet, device, sigma: float, batch_size: int = 8) -> dict:
    """The loss over the valid set's fixed crops (each crop counts by its samples; all have the same)."""
    model.eval()
    total, n = 0.0, 0
    for lo in range(0, len(ds), batch_size):
        mel, audio = collate([ds[i] for i in range(lo, min(len(ds), lo + batch_size))])
        z, log_s_sum, log_det_sum = model(mel.to(device), audio.to(device))
        total += waveglow_loss(z, log_s_sum, log_det_sum, sigma).item() * z.numel()
        n += z.numel()
    model.train()
    return {"loss": total / n}


def _fit(cfg: WaveGlowTrainConfig, spec: RunSpec, sets: tuple, exp: Path, ctx: DistContext) -> dict:
    log = get_logger()
    device, tc = ctx.device, cfg.train
    train_ds, valid_ds = sets
    seed_ranks(tc.seed, ctx)
    net_config = waveglow_config(cfg.model, cfg.features.n_mels)
    model = WaveGlow(net_config).to(device)
    sampler = EpochBatchSampler(
        len(train_ds), tc.batch_size, seed=tc.seed, rank=ctx.rank, world_size=ctx.world_size
    )
    steps_per_epoch = sampler.batches_per_epoch()
    if not steps_per_epoch:
        raise UserError(
            f"{len(train_ds)} training utterances make no batch of {tc.batch_size} x {ctx.world_size} "
            "processes; lower train.batch_size"
        )
    optimizer = torch.optim.Adam(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
    scaler = grad_scaler(device, tc.amp)
    ckpts = CheckpointDir(exp, keep_epochs=tc.keep_epochs)
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
    n_params = parameter_count(model)
    hours = float(train_ds.lengths.sum()) * HOP / cfg.features.sample_rate / 3600
    log.info(
        f"WaveGlow: {n_params:,} parameters on {device}; {len(train_ds):,} training utterances "
        f"({hours:.2f} h), crops of {tc.segment_frames} frames ({tc.segment_frames * HOP} samples), "
        f"{steps_per_epoch} steps per epoch"
    )
    net = wrap_model(model, ctx)
    metrics = MetricsLogger(exp, enabled=ctx.is_main, resume_step=step, resume_epoch=epoch)
    model_config = asdict(net_config)

    def checkpoint(metrics_now: dict) -> dict:
        return training_state(
            task=TASK, model=model, optimizer=optimizer, scaler=scaler, step=step, epoch=epoch,
            batch_in_epoch=batch_in_epoch, config=to_dict(cfg),
            metrics={"best_valid_loss": best, "parameters": n_params, **metrics_now},
            extra={"waveglow": model_config, "features": asdict(cfg.features), "data": spec.data,
                   "meter": meter.state(), "world_size": ctx.world_size},
            rng_per_rank=rng_states(ctx),
        )  # fmt: skip

    valid: dict = {}
    with StopSignal() as stop, metrics:
        while epoch < tc.epochs:
            net.train()
            sampler.set_epoch(epoch, batch_in_epoch)
            train_ds.epoch = epoch
            source = build_loader(train_ds, sampler, num_workers=tc.num_workers, collate_fn=collate)
            bar = progress(
                source, total=len(sampler), desc=f"epoch {epoch + 1}/{tc.epochs}", enabled=ctx.is_main
            )
            meter.start()
            for mel, audio in bar:
                mel, audio = mel.to(device, non_blocking=True), audio.to(device, non_blocking=True)
                with autocast(device, tc.amp):
                    z, log_s_sum, log_det_sum = net(mel, audio)
                loss = waveglow_loss(z, log_s_sum, log_det_sum, tc.sigma)
                value = loss.item()
                check_finite_loss(value, step + 1, scaler, ckpts, ctx)
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                grad_norm = clipped_step(optimizer, scaler, model.parameters(), tc.clip)
                step += 1
                batch_in_epoch += 1
                n_samples = audio.numel() * ctx.world_size
                meter.add(loss=value * n_samples, samples=n_samples)
                if step % tc.log_every == 0:
                    now = {"loss": value, "lr": optimizer.param_groups[0]["lr"]}
                    if grad_norm is not None:
                        now["grad_norm"] = float(grad_norm)
                    metrics.scalars("train", step, now, epoch=epoch + 1)
                    bar.set_postfix(loss=f"{now['loss']:.4f}")
                if after_step(step, tc, ckpts, lambda: checkpoint({}), ctx, stop):
                    return {}
            meter.pause()
            epoch += 1
            batch_in_epoch = 0
            train_loss = meter.epoch_means("samples", "loss").get("loss")
            meter.end_epoch()
            valid = evaluate(model, valid_ds, device, tc.sigma) if ctx.is_main else {}
            if train_loss is not None:
                metrics.scalars("train_epoch", step, {"loss": train_loss}, epoch=epoch)
            metrics.scalars("valid", step, valid, epoch=epoch)
            is_best = bool(valid) and valid["loss"] < best
            best = min(best, valid.get("loss", math.inf))
            payload = checkpoint({"valid": valid})
            if ctx.is_main:
                ckpts.save(payload, epoch_end=True, is_best=is_best)
                parts = [f"train loss {train_loss:.4f}"] if train_loss is not None else []
                parts.append(f"valid loss {valid['loss']:.4f}")
                parts.append(f"{meter.rate('samples'):,.0f} samples/s" + (" *best*" if is_best else ""))
                log.info(f"epoch {epoch}/{tc.epochs} step {step}: " + ", ".join(parts))
            barrier(ctx)
            if any_rank(stop.requested, ctx):
                log.info(f"interrupted after epoch {epoch}; rerun the same command to resume")
                raise KeyboardInterrupt
    finish(exp, spec, ctx, {"step": step, "epoch": epoch, "reason": "all epochs done",
                            "samples_per_s": round(meter.rate("samples"), 1)})  # fmt: skip
    return valid
