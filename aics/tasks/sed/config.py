"""The sound event detection lab's config tree. Defaults are the CPU preset; recipes/sed_crnn/conf/*.yaml
set the rest (``tiny.yaml`` for CI, ``base.yaml`` for the DCASE2018 baseline's 44.1 kHz features).

Features are computed once by ``aics sed features`` (stage 1), which records its section (and the per-band
normalisation statistics of the training clips) beside the features; training, prediction and scoring read
that record, so a model always sees what it was trained on.
"""

from __future__ import annotations

from dataclasses import dataclass

from aics.core.config import RunOptions, option, section


@dataclass
class FeatureConfig:
    sample_rate: int = option(
        16000, help="clips are resampled to this rate first (the real set is 44.1 kHz)", min=1000
    )
    clip_seconds: float = option(10.0, help="clips are cut or zero-padded to this length", min=0.1)
    n_fft: int = option(1024, help="FFT size in samples (1024: 64 ms at 16 kHz)", min=16)
    hop: int = option(320, help="frame shift in samples (320: 20 ms at 16 kHz)", min=1)
    win: int = option(0, help="window length in samples, at most n_fft (0: n_fft)", min=0)
    n_mels: int = option(64, help="mel bands", min=1)
    fmin: float = option(0.0, help="lowest mel band edge in Hz", min=0.0)
    fmax: float = option(0.0, help="highest mel band edge in Hz (0: half the sample rate)", min=0.0)


@dataclass
class ModelConfig:
    channels: tuple[int, ...] = option(
        (32, 64, 64), help="output channels of each conv block (3x3 conv + BatchNorm + ReLU, then pool)"
    )
    freq_pool: tuple[int, ...] = option(
        (4, 4, 4), help="frequency pooling of each block (their product should not exceed features.n_mels)"
    )
    time_pool: tuple[int, ...] = option(
        (2, 2, 1),
        help="time pooling of each block; frame outputs are repeated back to the feature frame rate",
    )
    rnn_hidden: int = option(64, help="hidden units of the bidirectional GRU per direction", min=1)
    rnn_layers: int = option(1, help="stacked bidirectional GRU layers (0: none, a CNN)", min=0)
    dropout: float = option(0.2, help="dropout after each conv block and before the output layer", min=0.0)
    pooling: str = option(
        "linear_softmax",
        help="clip-level pooling of the frame probabilities: linear_softmax (sum p^2 / sum p), attention "
        "(learned softmax weights over time), max or mean",
        choices=("linear_softmax", "attention", "max", "mean"),
    )


@dataclass
class AugmentConfig:
    specaugment: bool = option(True, help="mask random mel bands and time spans of training clips")
    freq_masks: int = option(1, help="frequency masks per clip", min=0)
    freq_width: int = option(8, help="widest frequency mask in mel bands", min=0)
    time_masks: int = option(2, help="time masks per clip", min=0)
    time_width: int = option(25, help="longest time mask in frames", min=0)
    time_shift: bool = option(True, help="roll each training clip in time by a random offset (wrapping)")
    max_shift: float = option(2.0, help="largest time shift in seconds", min=0.0)
    mixup: bool = option(False, help="mix pairs of training clips and their tags (mixup)")
    mixup_alpha: float = option(0.2, help="mixup weights are drawn from Beta(alpha, alpha)", min=0.0)
    mixup_prob: float = option(0.5, help="share of the batch that is mixed", min=0.0)


@dataclass
class PostConfig:
    threshold: float = option(0.5, help="frame probability above which a class is active", min=0.0)
    thresholds: tuple[float, ...] = option(
        (), help="per-class thresholds in the class order (empty: `threshold` for every class)"
    )
    low_threshold: float = option(
        0.0,
        help="hysteresis: an event that crossed the threshold lasts while its probability stays above "
        "this (0: off, plain thresholding)",
        min=0.0,
    )
    median_seconds: float = option(
        0.45, help="median filter on the binarised frame decisions, in seconds (0: none)", min=0.0
    )
    median_per_class: tuple[float, ...] = option(
        (),
        help="per-class median filter lengths in seconds, in the class order (empty: median_seconds for "
        "every class); long stationary classes often want longer ones",
    )
    tag_gate: bool = option(
        True, help="only report events of classes whose clip-level probability passes the threshold"
    )
    min_event_seconds: float = option(0.0, help="drop events shorter than this", min=0.0)
    merge_gap_seconds: float = option(0.0, help="join events of a class closer than this", min=0.0)


@dataclass
class TrainConfig(RunOptions):
    epochs: int = option(30, help="passes over the weakly labelled training clips", min=1)
    batch_size: int = option(8, help="clips per step (per process under torchrun)", min=1)
    train_set: str = option("weak", help="split of the features dir to train on (clip tags)")
    valid_set: str = option("test", help="strongly labelled split scored after every epoch (picks best.pt)")
    lr: float = option(2e-3, help="peak learning rate (AdamW)", min=0.0)
    weight_decay: float = option(1e-4, help="AdamW weight decay (not on biases and BatchNorm)", min=0.0)
    warmup_steps: int = option(50, help="linear warm-up steps, then cosine decay to the end", min=0)
    min_lr_ratio: float = option(0.05, help="final LR as a fraction of the peak", min=0.0)
    clip: float = option(5.0, help="clip the gradient norm to this (0: no clipping)", min=0.0)
    select: str = option(
        "event_f1",
        help="valid score that picks best.pt: event_f1 (macro event-based F1), tag_f1 (clip tagging) or loss",
        choices=("event_f1", "tag_f1", "loss"),
    )
    num_workers: int = option(0, help="DataLoader worker processes (features are precomputed)", min=0)
    keep_epochs: int = option(2, help="keep only the newest N epoch-NNN.pt files (0: keep all)", min=0)
    log_every: int = option(20, help="log the train loss every N steps", min=1)
    eval_batch_size: int = option(64, help="clips per forward pass when scoring", min=1)


@dataclass
class SedConfig:
    features: FeatureConfig = section(FeatureConfig, help="log-mel features (stage 1 records them)")
    model: ModelConfig = section(ModelConfig, help="the CRNN: conv blocks, BiGRU, frame and clip outputs")
    augment: AugmentConfig = section(AugmentConfig, help="training augmentation, each part switchable")
    post: PostConfig = section(PostConfig, help="frame probabilities -> events")
    train: TrainConfig = section(TrainConfig, help="optimisation, schedule, checkpointing")
