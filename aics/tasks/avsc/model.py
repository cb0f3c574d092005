"""The scene classifiers: per-modality encoders over embedding sequences, and the fusions.

Shapes: B clips, T time steps, D embedding dims, H hidden units, C = 10 scenes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class SceneNetConfig:
    system: str
    audio_dim: int
    video_dim: int
    classes: int = 10
    hidden: int = 128
    layers: int = 2
    dropout: float = 0.3
    pooling: str = "mean"


class Encoder(nn.Module):
    """Per-step layers (Linear + ReLU + dropout), shared over time, then mean or max over the steps:
    (B, T, D) -> (B, H)."""

    def __init__(self, dim: int, hidden: int, layers: int, dropout: float, pooling: str):
        super().__init__()
        blocks, cin = [], dim
        for _ in range(layers):
            blocks += [nn.Linear(cin, hidden), nn.ReLU(), nn.Dropout(dropout)]
            cin = hidden
        self.net = nn.Sequential(*blocks)
        self.pooling = pooling

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.net(x)  # (B, T, H)
        return h.mean(1) if self.pooling == "mean" else h.amax(1)


def align_steps(video: torch.Tensor, steps: int) -> torch.Tensor:
    """Video steps resampled (nearest) to ``steps``, for early fusion when the two rates differ."""
    if video.shape[1] == steps:
        return video
    idx = torch.linspace(0, video.shape[1] - 1, steps, device=video.device).round().long()
    return video[:, idx]


class SceneNet(nn.Module):
    """``system``: audio | video (one encoder and a linear classifier), early (one encoder over the two
    embeddings concatenated per step), intermediate (an encoder per modality, a joint head over their
    concatenated outputs). forward -> logits (B, C)."""

    def __init__(self, cfg: SceneNetConfig):
        super().__init__()
        self.cfg = cfg
        h, args = cfg.hidden, (cfg.hidden, cfg.layers, cfg.dropout, cfg.pooling)
        if cfg.system == "audio":
            self.audio = Encoder(cfg.audio_dim, *args)
        elif cfg.system == "video":
            self.video = Encoder(cfg.video_dim, *args)
        elif cfg.system == "early":
            self.joint = Encoder(cfg.audio_dim + cfg.video_dim, *args)
        elif cfg.system == "intermediate":
            self.audio = Encoder(cfg.audio_dim, *args)
            self.video = Encoder(cfg.video_dim, *args)
            self.head = nn.Sequential(nn.Linear(2 * h, h), nn.ReLU(), nn.Dropout(cfg.dropout))
        else:
            raise ValueError(f"unknown system {cfg.system!r}")
        self.classifier = nn.Linear(h, cfg.classes)

    def forward(self, audio: torch.Tensor, video: torch.Tensor) -> torch.Tensor:
        s = self.cfg.system
        if s == "audio":
            z = self.audio(audio)
        elif s == "video":
            z = self.video(video)
        elif s == "early":
            z = self.joint(torch.cat([audio, align_steps(video, audio.shape[1])], dim=2))
        else:
            z = self.head(torch.cat([self.audio(audio), self.video(video)], dim=1))
        return self.classifier(z)


def drop_modality(audio: torch.Tensor, video: torch.Tensor, p: float, generator: torch.Generator):
    """Zero one modality (audio or video, even odds) of each clip with probability ``p``."""
    b = audio.shape[0]
    hit = torch.rand(b, generator=generator) < p
    which = torch.rand(b, generator=generator) < 0.5
    keep_a = ~(hit & which)
    keep_v = ~(hit & ~which)
    return audio * keep_a[:, None, None].to(audio), video * keep_v[:, None, None].to(video)


def fit_late_weights(p_audio: torch.Tensor, p_video: torch.Tensor, labels: torch.Tensor, steps: int = 300):
    """Per-class weights w_c in (0, 1) of the late fusion softmax(w log p_audio + (1 - w) log p_video),
    fitted to ``labels`` by minimising the log loss (LBFGS from w = 0.5)."""
    la, lv = p_audio.clamp_min(1e-7).log(), p_video.clamp_min(1e-7).log()
    theta = torch.zeros(p_audio.shape[1], requires_grad=True)
    opt = torch.optim.LBFGS([theta], max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        w = torch.sigmoid(theta)
        loss = F.cross_entropy(w * la + (1 - w) * lv, labels)
        loss.backward()
        return loss

    opt.step(closure)
    return torch.sigmoid(theta).detach()


def late_fusion(p_audio: torch.Tensor, p_video: torch.Tensor, weights: torch.Tensor | None = None):
    """The mean of the two posteriors, or with per-class ``weights`` the softmax of the weighted log
    posteriors (what ``fit_late_weights`` fits)."""
    if weights is None:
        return (p_audio + p_video) / 2
    la, lv = p_audio.clamp_min(1e-7).log(), p_video.clamp_min(1e-7).log()
    return torch.softmax(weights * la + (1 - weights) * lv, dim=1)
