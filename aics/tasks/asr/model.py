"""DFCNN: a spectrogram read as an image by a deep VGG-style CNN, dense layers on top, CTC outputs.

The input (B, T, F) is one-channel image (B, 1, T, F). Each block is ``convs_per_block`` x (3x3 conv + BN +
ReLU) and a max-pool of (time_pool, freq_pool); the time axis shrinks by the product of the time pools (4 or
8), the frequency axis by the product of the frequency pools. Each remaining frame's (C x F') values go
through dense layers to ``n_units`` logits (blank included, id 0); with ``context`` > 0 the first dense layer
sees that many neighbouring frames on each side too.

The model returns raw logits. :func:`ctc_loss` applies the one and only log-softmax: a softmax applied before
the CTC loss (the bug that cost the seed project's author days) silently trains a model that never learns.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

BLANK = 0


class DFCNN(nn.Module):
    def __init__(
        self,
        n_feats: int,
        n_units: int,
        channels: tuple[int, ...] = (16, 32, 64, 64),
        convs_per_block: int = 2,
        time_pool: tuple[int, ...] = (2, 2, 1, 1),
        freq_pool: tuple[int, ...] = (2, 2, 2, 2),
        hidden: int = 256,
        dropout: float = 0.1,
        context: int = 0,
    ):
        super().__init__()
        if not (len(channels) == len(time_pool) == len(freq_pool)):
            raise ValueError("channels, time_pool and freq_pool need one entry per block")
        self.time_pool, self.freq_pool = tuple(time_pool), tuple(freq_pool)
        layers: list[nn.Module] = []
        c_in, f = 1, n_feats
        for c_out, tp, fp in zip(channels, time_pool, freq_pool, strict=True):
            for _ in range(convs_per_block):
                layers += [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]
                c_in = c_out
            if tp > 1 or fp > 1:
                layers.append(nn.MaxPool2d((tp, fp), ceil_mode=False))
            f //= fp
        if f < 1:
            raise ValueError(f"{n_feats} feature bins cannot be pooled by {math.prod(freq_pool)}")
        self.cnn = nn.Sequential(*layers)
        self.context = context
        self.dropout = nn.Dropout(dropout)
        # the first dense layer sees 2 * context + 1 neighbouring frames (a dense layer over stacked frames,
        # written as a 1-D convolution over time; context 0 is the seed's dense layer per frame)
        self.dense = nn.Conv1d(c_in * f, hidden, 2 * context + 1, padding=context)
        self.out = nn.Sequential(nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, n_units))
        self.n_feats, self.n_units = n_feats, n_units

    @property
    def time_reduction(self) -> int:
        return math.prod(self.time_pool)

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """Output frames of inputs of ``lengths`` frames: each pool floors, as MaxPool2d does."""
        out = lengths.clone()
        for p in self.time_pool:
            out = torch.div(out, p, rounding_mode="floor")
        return out

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor | None = None):
        """feats (B, T, F) -> logits (B, T', n_units) and, if lengths were given, the output lengths (B,).

        With ``lengths``, the frames past each utterance's end are set to zero after every activation, so
        the next convolution sees what it would see at the end of the utterance alone: an utterance gets
        the same outputs whatever it is batched with (in eval mode).
        """
        x = feats.unsqueeze(1)  # (B, 1, T, F)
        if lengths is None:
            x = self.cnn(x)
        else:
            valid = lengths.to(x.device)
            for layer in self.cnn:
                x = layer(x)
                if isinstance(layer, nn.MaxPool2d):
                    valid = torch.div(valid, layer.kernel_size[0], rounding_mode="floor")
                if isinstance(layer, (nn.MaxPool2d, nn.ReLU)):
                    frames = torch.arange(x.shape[2], device=x.device)
                    x = x * (frames[None, :] < valid[:, None]).to(x.dtype)[:, None, :, None]
        x = x.permute(0, 1, 3, 2).flatten(1, 2)  # (B, C*F', T')
        x = self.dense(self.dropout(x)).transpose(1, 2)  # (B, T', hidden)
        logits = self.out(x)  # (B, T', n_units)
        if lengths is None:
            return logits
        return logits, self.output_lengths(lengths)


def build_model(mc, n_feats: int, n_units: int) -> DFCNN:
    """The DFCNN of a ``ModelConfig`` (or anything with its fields)."""
    return DFCNN(
        n_feats, n_units, channels=tuple(mc.channels), convs_per_block=mc.convs_per_block,
        time_pool=tuple(mc.time_pool), freq_pool=tuple(mc.freq_pool), hidden=mc.hidden, dropout=mc.dropout,
        context=mc.context,
    )  # fmt: skip


def ctc_loss(
    logits: torch.Tensor,
    out_lengths: torch.Tensor,
    targets: torch.Tensor,
    target_lengths: torch.Tensor,
) -> torch.Tensor:
    """Mean over utterances of the CTC negative log-likelihood, from raw logits (B, T', V).

    The log-softmax is taken here, in float32, and nowhere else. ``targets`` are the concatenated unit ids
    (sum(target_lengths),) without blanks.
    """
    log_probs = F.log_softmax(logits.float(), dim=-1).transpose(0, 1)  # (T', B, V)
    loss = F.ctc_loss(
        log_probs, targets, out_lengths, target_lengths, blank=BLANK, reduction="sum", zero_infinity=False
    )
    return loss / logits.shape[0]


def ctc_feasible(out_len: int, target: list[int]) -> bool:
    """Whether CTC can align ``target`` to ``out_len`` frames: one frame per unit, plus a blank between
    two equal neighbours."""
    repeats = sum(1 for a, b in zip(target, target[1:], strict=False) if a == b)
    return out_len >= len(target) + repeats


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
