"""The captioning lab's config tree. Defaults are the CPU preset; recipes/caption/conf/*.yaml set the rest
(``tiny.yaml`` for CI, ``base.yaml`` for Show, Attend and Tell's sizes on a GPU).

The image size is fixed when images are cached (``aics caption features``, stage 1, records its section);
training, decoding and scoring read that record, so a model always sees what it was trained on.
"""

from __future__ import annotations

from dataclasses import dataclass

from aics.core.config import RunOptions, option, section


@dataclass
class FeatureConfig:
    image_size: int = option(
        112, help="images are resized to this square size when cached (Show, Attend and Tell: 224)", min=16
    )


@dataclass
class ModelConfig:
    encoder_channels: tuple[int, ...] = option(
        (16, 32, 64, 128),
        help="output channels of each conv stage of the CNN encoder trained here (two 3x3 conv + BatchNorm + "
        "ReLU; every stage but the last halves the resolution)",
    )
    encoder: str = option(
        "cnn",
        help="the image encoder: cnn (the CNN of encoder_channels, trained here) or a ResNet with "
        "torchvision's layout (resnet18, resnet34, resnet50, resnet101, resnet152; its ImageNet weights from "
        "encoder_weights, images normalised with ImageNet's mean and deviation)",
        choices=("cnn", "resnet18", "resnet34", "resnet50", "resnet101", "resnet152"),
    )
    encoder_weights: str = option(
        "", help="a torchvision ResNet state dict (.pth or .safetensors) for encoder; empty: random init"
    )
    freeze_encoder: bool = option(
        False, help="keep the encoder's weights and BatchNorm statistics as loaded; train only the decoder"
    )
    grid: int = option(
        14, help="the encoder's feature map is average-pooled to grid x grid positions to attend over", min=1
    )
    embed_dim: int = option(128, help="word embedding size", min=1)
    attention_dim: int = option(128, help="size of the additive (soft) attention's hidden layer", min=1)
    decoder_dim: int = option(256, help="LSTM decoder units", min=1)
    dropout: float = option(0.3, help="dropout before the word classifier", min=0.0)
    gate: bool = option(
        True, help="the gating scalar beta = sigmoid(f(h)) that scales the attended context (paper 4.2.1)"
    )


@dataclass
class SamplingConfig:
    schedule: str = option(
        "none",
        help="scheduled sampling (Bengio et al. 2015): how the teacher-forcing probability p_i falls with "
        "i (training steps or epochs, see unit): none (always the reference word, p = 1), linear "
        "(p = max(min_p, 1 - linear_decay * i)), exponential (p = max(min_p, exp_base^i)) or "
        "inverse_sigmoid (p = max(min_p, k / (k + exp(i / k))) with k = sigmoid_k)",
        choices=("none", "linear", "exponential", "inverse_sigmoid"),
    )
    unit: str = option(
        "step", help="what i counts: training steps or finished epochs", choices=("step", "epoch")
    )
    min_p: float = option(0.0, help="the teacher-forcing probability never falls below this", min=0.0)
    linear_decay: float = option(1e-4, help="linear schedule: p falls by this per unit", min=0.0)
    exp_base: float = option(0.9997, help="exponential schedule: p = exp_base^i (below 1)", min=0.0)
    sigmoid_k: float = option(
        1000.0, help="inverse sigmoid schedule: k (at least 1; larger falls later)", min=1.0
    )
    sample: str = option(
        "argmax",
        help="the model's own word fed back when the coin says so: argmax (its best guess) or sample "
        "(drawn from its softmax, as in the paper)",
        choices=("argmax", "sample"),
    )


@dataclass
class DecodeConfig:
    beam_size: int = option(3, help="beams (1: greedy)", min=1)
    max_len: int = option(20, help="longest caption in words", min=1)
    length_norm: float = option(
        0.0,
        help="beam search ranks finished captions by log p / length^length_norm (0: the plain sum, which "
        "prefers short ones; 1: the mean)",
        min=0.0,
    )


@dataclass
class TrainConfig(RunOptions):
    epochs: int = option(15, help="passes over the training images, each with all its captions", min=1)
    batch_size: int = option(
        16, help="images per step, each with all its captions (per process under torchrun)", min=1
    )
    lr: float = option(2e-3, help="peak learning rate (AdamW)", min=0.0)
    weight_decay: float = option(
        1e-4, help="AdamW weight decay (not on biases, norms and embeddings)", min=0.0
    )
    warmup_steps: int = option(100, help="linear warm-up steps, then cosine decay to the end", min=0)
    min_lr_ratio: float = option(0.05, help="final LR as a fraction of the peak", min=0.0)
    clip: float = option(5.0, help="clip the gradient norm to this (0: no clipping)", min=0.0)
    alpha_c: float = option(
        1.0,
        help="weight of the doubly stochastic attention regulariser (1 - sum_t alpha_ti)^2, averaged over "
        "the image positions i, which asks every position to get attention over the caption (paper 4.2.1)",
        min=0.0,
    )
    max_len: int = option(20, help="training captions are cut to this many words", min=1)
    select: str = option(
        "cider",
        help="valid score that picks best.pt: cider (CIDEr-D of greedy captions), bleu4 or loss",
        choices=("cider", "bleu4", "loss"),
    )
    num_workers: int = option(0, help="DataLoader worker processes (images are cached)", min=0)
    keep_epochs: int = option(2, help="keep only the newest N epoch-NNN.pt files (0: keep all)", min=0)
    log_every: int = option(20, help="log the train loss every N steps", min=1)
    eval_batch_size: int = option(64, help="images per forward pass when decoding the valid split", min=1)


@dataclass
class CaptionConfig:
    features: FeatureConfig = section(FeatureConfig, help="image cache (stage 1 records it)")
    model: ModelConfig = section(ModelConfig, help="CNN encoder, soft attention, LSTM decoder")
    sampling: SamplingConfig = section(SamplingConfig, help="teacher forcing and scheduled sampling")
    decode: DecodeConfig = section(DecodeConfig, help="greedy or beam search")
    train: TrainConfig = section(TrainConfig, help="optimisation, schedule, checkpointing")
