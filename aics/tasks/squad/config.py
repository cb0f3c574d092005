"""The SQuAD lab's config tree. Defaults are the tiny CPU preset; recipes/bert_squad/conf/*.yaml set the rest.

Feature sizes (max_seq_length, doc_stride, max_query_length) belong to ``aics squad prepare``, which records
them with the prepared data; this tree holds the model, the optimisation, prediction and distillation.
"""

from __future__ import annotations

from dataclasses import dataclass

from aics.core.config import RunOptions, option, section


@dataclass
class ModelConfig:
    init: str = option(
        "",
        help="pretrained BERT dir (Hugging Face layout or `aics squad import` output); empty: random init",
    )
    random_weights: bool = option(
        False, help="with model.init: its architecture (sizes below may change it) with fresh random weights"
    )
    hidden: int = option(
        0,
        help="hidden size; 0: that of model.init or of the distillation teacher (128 for random init)",
        min=0,
    )
    layers: int = option(
        0,
        help="encoder layers; 0: as model.init (fewer: its first N) or the teacher (2 for random init)",
        min=0,
    )
    heads: int = option(0, help="attention heads; 0: as model.init or the teacher (4 for random init)", min=0)
    intermediate: int = option(
        0, help="feed-forward width; 0: as model.init or the teacher (4 x hidden for random init)", min=0
    )
    dropout: float = option(0.1, help="dropout on embeddings and sub-layer outputs", min=0.0)
    attention_dropout: float = option(0.1, help="dropout on attention probabilities", min=0.0)


@dataclass
class TrainConfig(RunOptions):
    epochs: int = option(2, help="passes over the training windows", min=1)
    batch_size: int = option(16, help="windows per optimizer step (per process under torchrun)", min=1)
    grad_accum: int = option(
        1, help="split each step's batch into this many micro-batches (same result, less memory)", min=1
    )
    lr: float = option(5e-5, help="peak learning rate (AdamW)", min=0.0)
    weight_decay: float = option(0.01, help="AdamW weight decay (not on biases and LayerNorm)", min=0.0)
    warmup: float = option(0.1, help="linear warm-up as a fraction of all steps, then linear decay", min=0.0)
    clip: float = option(1.0, help="clip the gradient norm to this (0: no clipping)", min=0.0)
    keep_epochs: int = option(2, help="keep only the newest N epoch-NNN.pt files (0: keep all)", min=0)


@dataclass
class PredictConfig:
    batch_size: int = option(64, help="windows per forward pass when predicting", min=1)
    n_best: int = option(20, help="start and end candidates kept per window (n-best)", min=1)
    max_answer_length: int = option(30, help="longest answer in word pieces", min=1)
    every_epoch: bool = option(True, help="predict and score the dev set after every epoch (best.pt by F1)")


@dataclass
class DistillConfig:
    teacher: str = option(
        "", help="fine-tuned teacher: an experiment dir or a checkpoint (empty: no teacher)"
    )
    temperature: float = option(2.0, help="softmax temperature of the soft start/end targets", min=0.0)
    alpha: float = option(0.5, help="weight of the soft (teacher) loss; 1 - alpha on the gold spans", min=0.0)
    student_init: str = option(
        "teacher",
        help="teacher: embeddings and evenly spaced layers copied (same hidden size); random: fresh weights",
        choices=("teacher", "random"),
    )


@dataclass
class SquadConfig:
    model: ModelConfig = section(ModelConfig, help="the network and its starting weights")
    train: TrainConfig = section(TrainConfig, help="optimisation, schedule, checkpointing")
    predict: PredictConfig = section(PredictConfig, help="span decoding")
    distill: DistillConfig = section(DistillConfig, help="knowledge distillation from a fine-tuned teacher")
