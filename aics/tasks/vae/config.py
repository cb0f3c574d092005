"""The VAE lab's config tree. Defaults are the tiny CPU preset (seconds); recipes/vae/conf overrides them."""

from __future__ import annotations

from dataclasses import dataclass

from aics.core.config import RunOptions, option, section


@dataclass
class ModelConfig:
    arch: str = option("mlp", help="encoder/decoder pair", choices=("mlp", "conv"))
    zdim: int = option(2, help="latent size (1 and 2 give latent maps you can look at)", min=1)
    hidden: int = option(256, help="hidden units of the fully connected layers", min=1)
    channels: int = option(
        32, help="conv arch: channels of the first conv layer (doubled in the second)", min=1
    )


@dataclass
class TrainConfig(RunOptions):
    epochs: int = option(3, help="passes over the training set", min=1)
    batch_size: int = option(128, help="images per optimizer step (per process under torchrun)", min=1)
    lr: float = option(1e-3, help="Adam learning rate", min=0.0)
    weight_decay: float = option(0.0, help="Adam weight decay", min=0.0)
    beta: float = option(1.0, help="weight of the KL term (1 is the plain VAE, >1 a beta-VAE)", min=0.0)
    num_workers: int = option(0, help="DataLoader worker processes", min=0)


@dataclass
class InferConfig:
    zmin: float = option(-5.0, help="lower end of the latent maps")
    zmax: float = option(5.0, help="upper end of the latent maps")
    grid_points: int = option(15, help="decoded images per latent axis in the maps", min=2)
    n_recon: int = option(16, help="images in the originals-vs-reconstructions picture", min=1)
    scatter_max: int = option(5000, help="at most this many points in the latent scatter", min=1)
    batch_size: int = option(500, help="images per batch when scoring", min=1)


@dataclass
class VAEConfig:
    model: ModelConfig = section(ModelConfig, help="encoder/decoder network")
    train: TrainConfig = section(TrainConfig, help="optimisation and checkpointing")
    infer: InferConfig = section(InferConfig, help="pictures and scoring")
