"""The CRNN of weakly labelled sound event detection: conv blocks, a bidirectional GRU, frame probabilities,
and a pooling head that turns them into the clip probabilities the weak labels train.

Input: normalised log-mel ``(B, T, n_mels)``. Each conv block is a 3x3 convolution, BatchNorm, ReLU, max
pooling by ``(time_pool, freq_pool)`` and dropout; what is left of the frequency axis is flattened into the
channels and read by the GRU. A linear layer and a sigmoid give per-frame class probabilities, repeated back
to the input frame rate. The clip head pools them over time:

- ``max``: the clip is as likely as its most likely frame (only one frame gets a gradient: localises
  sharply but learns slowly);
- ``mean``: every frame counts the same (pushes probability onto every frame of a positive clip: events
  are smeared over the clip);
- ``linear_softmax``: ``sum p^2 / sum p``, frames weighted by their own probability (Wang et al., 2019:
  the best localisation of the fixed heads);
- ``attention``: a second linear layer gives per-class weights, softmax over time; the clip probability is
  the weighted mean of the frame probabilities (Kong et al., 2018; the DCASE2018 baseline's head).
"""

from __future__ import annotations

import torch
from torch import nn

from aics.tasks.sed.config import ModelConfig


class ConvBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, time_pool: int, freq_pool: int, dropout: float):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(c_out)
        self.pool = nn.MaxPool2d((time_pool, freq_pool), ceil_mode=True)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, T, F) -> (B, C', T', F')
        return self.drop(self.pool(torch.relu(self.bn(self.conv(x)))))


def pool_clip(
    frame_probs: torch.Tensor, kind: str, attention_logits: torch.Tensor | None = None
) -> torch.Tensor:
    """Frame probabilities (B, T, C) -> clip probabilities (B, C)."""
    if kind == "max":
        return frame_probs.amax(dim=1)
    if kind == "mean":
        return frame_probs.mean(dim=1)
    if kind == "linear_softmax":
        return (frame_probs * frame_probs).sum(1) / frame_probs.sum(1).clamp_min(1e-7)
    if kind == "attention":
        w = torch.softmax(attention_logits, dim=1)  # (B, T, C), sums to one over time
        return (w * frame_probs).sum(1)
    raise ValueError(f"unknown pooling {kind!r}")


class CRNN(nn.Module):
    def __init__(self, cfg: ModelConfig, n_mels: int, n_classes: int):
        super().__init__()
        self.cfg = cfg
        blocks, c, f = [], 1, n_mels
        for ch, tp, fp in zip(cfg.channels, cfg.time_pool, cfg.freq_pool, strict=True):
            blocks.append(ConvBlock(c, ch, tp, fp, cfg.dropout))
            c, f = ch, -(-f // fp)
        self.blocks = nn.Sequential(*blocks)
        self.time_reduction = 1
        for tp in cfg.time_pool:
            self.time_reduction *= tp
        width = c * f
        if cfg.rnn_layers:
            self.rnn = nn.GRU(width, cfg.rnn_hidden, cfg.rnn_layers, batch_first=True, bidirectional=True)
            width = 2 * cfg.rnn_hidden
        else:
            self.rnn = None
        self.drop = nn.Dropout(cfg.dropout)
        self.frame_out = nn.Linear(width, n_classes)
        self.attention = nn.Linear(width, n_classes) if cfg.pooling == "attention" else None

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T, n_mels) -> (clip probabilities (B, C), frame probabilities (B, T, C))."""
        T = x.shape[1]
        h = self.blocks(x.unsqueeze(1))  # (B, ch, T', F')
        h = h.permute(0, 2, 1, 3).flatten(2)  # (B, T', ch * F')
        if self.rnn is not None:
            h, _ = self.rnn(h)  # (B, T', 2 * hidden)
        h = self.drop(h)
        # the head in float32: under autocast, half precision would round the clamp below to 0 and 1
        frame_probs = torch.sigmoid(self.frame_out(h).float())  # (B, T', C)
        att = self.attention(h).float() if self.attention is not None else None
        clip = pool_clip(frame_probs, self.cfg.pooling, att)
        frames = frame_probs.repeat_interleave(self.time_reduction, dim=1)[:, :T]  # (B, T, C)
        return clip.clamp(1e-7, 1 - 1e-7), frames


def build_model(cfg: ModelConfig, n_mels: int, n_classes: int) -> CRNN:
    return CRNN(cfg, n_mels, n_classes)


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
