"""The LM lab's config tree. Defaults are the tiny CPU preset; recipes/lm/conf/<arch>.yaml set real sizes."""

from __future__ import annotations

from dataclasses import dataclass

from aics.core.config import RunOptions, option, section

ARCHS = ("ffn", "rnn", "gru", "lstm", "transformer")


@dataclass
class ModelConfig:
    arch: str = option("lstm", help="network family", choices=ARCHS)
    emb: int = option(64, help="word embedding size (the transformer's model width)", min=1)
    hidden: int = option(128, help="hidden units: recurrent state (rnn/gru/lstm), tanh layer (ffn)", min=1)
    layers: int = option(2, help="stacked recurrent layers or transformer blocks (ffn: ignored)", min=1)
    dropout: float = option(0.2, help="dropout between layers and before the output layer", min=0.0)
    emb_dropout: float = option(0.1, help="dropout on the word embeddings", min=0.0)
    tie_weights: bool = option(
        False, help="share input embedding and output layer (a linear bridge is added when hidden != emb)"
    )
    context: int = option(4, help="ffn: number of previous words the n-gram MLP sees", min=1)
    heads: int = option(4, help="transformer: attention heads (emb must divide by it)", min=1)
    ff_mult: int = option(4, help="transformer: feed-forward width as a multiple of emb", min=1)
    max_len: int = option(256, help="transformer: longest context (positions)", min=1)
    positional: str = option("sinusoidal", help="transformer positions", choices=("sinusoidal", "learned"))


@dataclass
class TrainConfig(RunOptions):
    epochs: int = option(3, help="maximum passes over the training text", min=1)
    batch_size: int = option(32, help="sequences per step (per process under torchrun)", min=1)
    bptt: int = option(35, help="tokens per sequence: truncated-BPTT length or context window", min=1)
    optimizer: str = option("adam", help="optimizer", choices=("adam", "adamw", "sgd"))
    lr: float = option(2e-3, help="peak learning rate", min=0.0)
    weight_decay: float = option(0.0, help="weight decay (decoupled for adamw)", min=0.0)
    clip: float = option(0.25, help="clip the gradient norm to this (0: no clipping)", min=0.0)
    schedule: str = option(
        "auto", help="auto: plateau for ffn/rnn/gru/lstm, warmup+cosine for transformer",
        choices=("auto", "plateau", "cosine", "constant"),
    )  # fmt: skip
    plateau_factor: float = option(
        0.25, help="plateau: multiply the LR by this when valid PPL stalls", min=0.0
    )
    plateau_patience: int = option(0, help="plateau: epochs without improvement before the LR drops", min=0)
    warmup_steps: int = option(100, help="cosine: linear warm-up steps", min=1)
    min_lr_ratio: float = option(0.05, help="cosine: final LR as a fraction of the peak", min=0.0)
    early_stop: int = option(
        3, help="stop after this many epochs without a better valid PPL (0: never)", min=0
    )
    keep_epochs: int = option(2, help="keep only the newest N epoch-NNN.pt files (0: keep all)", min=0)
    max_params: int = option(60_000_000, help="refuse models with more parameters than this", min=1)


@dataclass
class EvalConfig:
    batch_size: int = option(10, help="parallel streams (rnn/gru/lstm) or windows (ffn/transformer)", min=1)
    stride: int = option(0, help="transformer: window step when scoring (0: half the context)", min=0)
    test_every_epoch: bool = option(True, help="also score the test set every epoch (for the curves)")


@dataclass
class LMConfig:
    model: ModelConfig = section(ModelConfig, help="the network")
    train: TrainConfig = section(TrainConfig, help="optimisation, schedule, checkpointing")
    eval: EvalConfig = section(EvalConfig, help="perplexity evaluation")
