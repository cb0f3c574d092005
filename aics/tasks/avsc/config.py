"""The audio-visual scene lab's config tree. Defaults are the CPU preset; recipes/avsc/conf/*.yaml set the
rest (``tiny.yaml`` for CI, ``base.yaml`` for openl3's 512-dimensional embeddings on a GPU)."""

from __future__ import annotations

from dataclasses import dataclass

from aics.core.config import RunOptions, option, section

SYSTEMS = ("audio", "video", "early", "intermediate")


@dataclass
class ModelConfig:
    system: str = option(
        "audio",
        help="audio or video (one modality), early (both embeddings concatenated at every time step, one "
        "network), intermediate (an encoder per modality, their pooled outputs concatenated into a joint "
        "head); late fusion combines the audio and video systems' posteriors at prediction",
        choices=SYSTEMS,
    )
    hidden: int = option(128, help="units of each encoder's per-step layers and of the head", min=1)
    layers: int = option(2, help="per-step layers of an encoder (Linear + ReLU + dropout)", min=1)
    dropout: float = option(0.3, help="dropout after every hidden layer", min=0.0)
    pooling: str = option(
        "mean", help="how the time steps of an encoder's output become one vector", choices=("mean", "max")
    )


@dataclass
class TrainConfig(RunOptions):
    epochs: int = option(40, help="passes over the training clips", min=1)
    batch_size: int = option(32, help="clips per step (per process under torchrun)", min=1)
    lr: float = option(1e-3, help="peak learning rate (AdamW)", min=0.0)
    weight_decay: float = option(1e-3, help="AdamW weight decay (not on biases and norms)", min=0.0)
    warmup_steps: int = option(20, help="linear warm-up steps, then cosine decay to the end", min=0)
    min_lr_ratio: float = option(0.05, help="final LR as a fraction of the peak", min=0.0)
    clip: float = option(5.0, help="clip the gradient norm to this (0: no clipping)", min=0.0)
    modality_dropout: float = option(
        0.0,
        help="fusion systems: the chance that a training clip's audio or video (one of them, at random) is "
        "zeroed, so that the network learns to lean on the other when one is missing or misleading",
        min=0.0,
    )
    keep_epochs: int = option(2, help="keep only the newest N epoch-NNN.pt files (0: keep all)", min=0)
    log_every: int = option(20, help="log the train loss every N steps", min=1)


@dataclass
class AvscConfig:
    model: ModelConfig = section(ModelConfig, help="which system and its sizes")
    train: TrainConfig = section(TrainConfig, help="optimisation, schedule, checkpointing")
