"""The speech lab's config tree. Defaults are the tiny CPU preset; recipes/asr_dfcnn/conf/*.yaml set the rest.

Features are computed once by ``aics asr features`` (stage 1), which records its section with the features
it writes; training and decoding read that record, so a model is always fed what it was trained on.
"""

from __future__ import annotations

from dataclasses import dataclass

from aics.core.config import RunOptions, option, section


@dataclass
class FeatureConfig:
    kind: str = option(
        "logmel", help="logmel: log mel filterbank; logspec: log power spectrogram (the seed's image)",
        choices=("logspec", "logmel"),
    )  # fmt: skip
    sample_rate: int = option(16000, help="audio is resampled to this rate first", min=1000)
    n_fft: int = option(400, help="FFT size in samples (400: 25 ms at 16 kHz)", min=16)
    hop: int = option(160, help="frame shift in samples (160: 10 ms at 16 kHz)", min=1)
    n_mels: int = option(80, help="logmel: mel bands", min=1)
    max_bins: int = option(
        0,
        help="logspec: keep only the lowest N frequency bins (0: all n_fft/2+1)",
        min=0,
    )
    normalize: str = option(
        "utterance", help="utterance: zero mean, unit variance per utterance and bin; none: raw log values",
        choices=("utterance", "none"),
    )  # fmt: skip


@dataclass
class ModelConfig:
    channels: tuple[int, ...] = option(
        (16, 32, 64, 64), help="output channels of each VGG block (3x3 conv + BN + ReLU, twice, then pool)"
    )
    convs_per_block: int = option(2, help="3x3 convolutions in each block", min=1)
    time_pool: tuple[int, ...] = option(
        (2, 2, 1, 1), help="time pooling of each block (their product is the time reduction: 4 or 8)"
    )
    freq_pool: tuple[int, ...] = option((2, 2, 2, 2), help="frequency pooling of each block")
    hidden: int = option(256, help="width of the dense layer before the output units", min=1)
    dropout: float = option(0.1, help="dropout before each dense layer (below 1)", min=0.0)
    context: int = option(
        0,
        help="output frames on each side the first dense layer also sees (0: one frame, as the seed)",
        min=0,
    )


@dataclass
class SpecAugmentConfig:
    enabled: bool = option(True, help="mask random frequency bands and time spans of training inputs")
    freq_masks: int = option(2, help="frequency masks per utterance", min=0)
    freq_width: int = option(15, help="widest frequency mask in bins", min=0)
    time_masks: int = option(2, help="time masks per utterance", min=0)
    time_width: int = option(20, help="longest time mask in frames", min=0)
    time_ratio: float = option(
        0.1, help="no time mask is longer than this fraction of the utterance", min=0.0
    )
    speed: float = option(
        0.0,
        help="stretch each utterance's time axis by a random factor in [1 - speed, 1 + speed] (0: off)",
        min=0.0,
    )
    warp: float = option(
        0.0,
        help="scale each utterance's frequency axis by a random factor in [1 - warp, 1 + warp], a stand-in "
        "for another vocal tract (0: off)",
        min=0.0,
    )


@dataclass
class TrainConfig(RunOptions):
    epochs: int = option(10, help="passes over the training utterances", min=1)
    batch_size: int = option(16, help="utterances per step (per process under torchrun)", min=1)
    train_set: str = option("train", help="subset of the features dir to train on")
    valid_set: str = option("dev", help="subset scored after every epoch (CER picks best.pt)")
    lr: float = option(1e-3, help="peak learning rate (AdamW)", min=0.0)
    weight_decay: float = option(1e-4, help="AdamW weight decay (not on biases and BatchNorm)", min=0.0)
    warmup_steps: int = option(100, help="linear warm-up steps, then cosine decay to the end", min=0)
    min_lr_ratio: float = option(0.05, help="final LR as a fraction of the peak", min=0.0)
    clip: float = option(5.0, help="clip the gradient norm to this (0: no clipping)", min=0.0)
    max_frames: int = option(
        0, help="skip training utterances with more input frames than this (0: keep all)", min=0
    )
    num_workers: int = option(0, help="DataLoader worker processes (features are precomputed)", min=0)
    keep_epochs: int = option(2, help="keep only the newest N epoch-NNN.pt files (0: keep all)", min=0)
    log_every: int = option(20, help="log the train loss every N steps", min=1)


@dataclass
class DecodeConfig:
    batch_size: int = option(32, help="utterances per forward pass when scoring the valid set", min=1)


@dataclass
class AsrConfig:
    features: FeatureConfig = section(FeatureConfig, help="acoustic features (stage 1 records them)")
    model: ModelConfig = section(ModelConfig, help="the DFCNN: VGG-style conv blocks, dense layers, CTC")
    specaugment: SpecAugmentConfig = section(SpecAugmentConfig, help="SpecAugment masks in training")
    train: TrainConfig = section(TrainConfig, help="optimisation, schedule, checkpointing")
    decode: DecodeConfig = section(DecodeConfig, help="decoding during training (greedy)")
