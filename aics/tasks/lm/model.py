"""Language models in one file: FFN (Bengio n-gram MLP), Elman RNN, GRU, LSTM, causal Transformer.

All of them map token ids to next-token logits with one interface::

    logits, state = model(x, state)   # x: (B, prefix + T) ids -> logits: (B, T, V)

``state`` is the recurrent hidden state carried across truncated-BPTT batches (None for window models);
``prefix`` is how many extra context tokens a window model needs in front of the T scored positions.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from aics.tasks.lm.config import ModelConfig


class OutputLayer(nn.Module):
    """Hidden state -> vocabulary logits; with ``tie`` the softmax weights are the input embedding
    (Press & Wolf, 2017), through a linear bridge when the hidden size differs from the embedding size."""

    def __init__(self, hidden: int, embedding: nn.Embedding, tie: bool):
        super().__init__()
        vocab, emb = embedding.weight.shape
        self.bridge = nn.Linear(hidden, emb) if tie and hidden != emb else None
        self.decoder = nn.Linear(emb if self.bridge is not None else hidden, vocab)
        if tie:
            self.decoder.weight = embedding.weight

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        if self.bridge is not None:
            h = self.bridge(h)
        return self.decoder(h)  # (..., V)


class FFNLM(nn.Module):
    """Bengio et al. (2003): embed the n previous words, concatenate, one tanh layer, softmax."""

    recurrent = False

    def __init__(self, vocab: int, emb: int, hidden: int, context: int, dropout: float, emb_dropout: float,
                 tie_weights: bool):  # fmt: skip
        super().__init__()
        self.context, self.prefix = context, context - 1
        self.embedding = nn.Embedding(vocab, emb)
        self.emb_drop = nn.Dropout(emb_dropout)
        self.hidden = nn.Linear(context * emb, hidden)
        self.drop = nn.Dropout(dropout)
        self.output = OutputLayer(hidden, self.embedding, tie_weights)

    def forward(self, x: torch.Tensor, state=None):
        ctx = x.unfold(1, self.context, 1)  # (B, T, n): the n words before each target
        e = self.emb_drop(self.embedding(ctx)).flatten(2)  # (B, T, n*E)
        h = self.drop(torch.tanh(self.hidden(e)))  # (B, T, H)
        return self.output(h), None  # (B, T, V)


class RecurrentLM(nn.Module):
    """Embedding -> stacked Elman RNN / GRU / LSTM -> linear softmax layer, dropout between the layers."""

    recurrent = True
    prefix = 0
    CELLS = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}

    def __init__(self, cell: str, vocab: int, emb: int, hidden: int, layers: int, dropout: float,
                 emb_dropout: float, tie_weights: bool):  # fmt: skip
        super().__init__()
        self.cell, self.layers, self.hidden_size = cell, layers, hidden
        self.embedding = nn.Embedding(vocab, emb)
        self.emb_drop = nn.Dropout(emb_dropout)
        kwargs = {"nonlinearity": "tanh"} if cell == "rnn" else {}
        between = dropout if layers > 1 else 0.0
        self.rnn = self.CELLS[cell](emb, hidden, layers, dropout=between, batch_first=True, **kwargs)
        self.drop = nn.Dropout(dropout)
        self.output = OutputLayer(hidden, self.embedding, tie_weights)

    def forward(self, x: torch.Tensor, state=None):
        e = self.emb_drop(self.embedding(x))  # (B, T, E)
        out, state = self.rnn(e, state)  # (B, T, H); state: (L, B, H) or a (h, c) pair
        return self.output(self.drop(out)), state  # (B, T, V)


def sinusoidal_positions(length: int, dim: int) -> torch.Tensor:
    """Vaswani et al. (2017): sin on even, cos on odd channels, wavelengths 2pi .. 10000*2pi.  # (T, D)"""
    pos = torch.arange(length, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    table = torch.zeros(length, dim)
    table[:, 0::2] = torch.sin(pos * freq)
    table[:, 1::2] = torch.cos(pos * freq[: dim // 2])
    return table


class CausalSelfAttention(nn.Module):
    def __init__(self, dim: int, heads: int, dropout: float):
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = (
            self.qkv(x).view(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        )  # (B, h, T, d/h)
        y = F.scaled_dot_product_attention(
            q, k, v, dropout_p=self.dropout if self.training else 0.0, is_causal=True
        )
        return self.out(y.transpose(1, 2).reshape(b, t, d))  # (B, T, D)


class Block(nn.Module):
    """Pre-LayerNorm transformer block: x + attn(LN(x)), then x + FFN(LN(x))."""

    def __init__(self, dim: int, heads: int, ff_mult: int, dropout: float):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = CausalSelfAttention(dim, heads, dropout)
        self.ff = nn.Sequential(nn.Linear(dim, ff_mult * dim), nn.GELU(), nn.Linear(ff_mult * dim, dim))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop(self.attn(self.ln1(x)))
        return x + self.drop(self.ff(self.ln2(x)))


class TransformerLM(nn.Module):
    recurrent = False
    prefix = 0

    def __init__(self, vocab: int, dim: int, layers: int, heads: int, ff_mult: int, max_len: int,
                 dropout: float, emb_dropout: float, tie_weights: bool, positional: str):  # fmt: skip
        super().__init__()
        if dim % heads:
            raise ValueError(f"model.emb={dim} must be divisible by model.heads={heads}")
        self.max_len, self.scale = max_len, math.sqrt(dim)
        self.embedding = nn.Embedding(vocab, dim)
        if positional == "learned":
            self.positions = nn.Parameter(torch.zeros(max_len, dim))
            nn.init.normal_(self.positions, std=0.02)
        else:
            self.register_buffer("positions", sinusoidal_positions(max_len, dim), persistent=False)
        self.emb_drop = nn.Dropout(emb_dropout)
        self.blocks = nn.ModuleList(Block(dim, heads, ff_mult, dropout) for _ in range(layers))
        self.ln_f = nn.LayerNorm(dim)
        self.decoder = nn.Linear(dim, vocab)
        if tie_weights:
            self.decoder.weight = self.embedding.weight
        self.apply(self._init)

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=0.02)
        if isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor, state=None):
        t = x.shape[1]
        if t > self.max_len:
            raise ValueError(f"context of {t} tokens is longer than model.max_len={self.max_len}")
        h = self.emb_drop(self.embedding(x) * self.scale + self.positions[:t])  # (B, T, D)
        for block in self.blocks:
            h = block(h)
        return self.decoder(self.ln_f(h)), None  # (B, T, V)


def build_lm(m: ModelConfig, vocab: int) -> nn.Module:
    if m.arch == "ffn":
        return FFNLM(vocab, m.emb, m.hidden, m.context, m.dropout, m.emb_dropout, m.tie_weights)
    if m.arch in RecurrentLM.CELLS:
        return RecurrentLM(m.arch, vocab, m.emb, m.hidden, m.layers, m.dropout, m.emb_dropout, m.tie_weights)
    if m.arch == "transformer":
        return TransformerLM(vocab, m.emb, m.layers, m.heads, m.ff_mult, m.max_len, m.dropout, m.emb_dropout,
                             m.tie_weights, m.positional)  # fmt: skip
    raise ValueError(f"unknown arch {m.arch!r}")


def parameter_breakdown(model: nn.Module) -> dict[str, int]:
    """Parameters per top-level component (shared tensors counted once, where first seen), plus the total."""
    seen: set[int] = set()
    counts: dict[str, int] = {}
    for name, child in model.named_children():
        n = 0
        for p in child.parameters():
            if id(p) not in seen:
                seen.add(id(p))
                n += p.numel()
        if n:
            counts[name] = n
    for name, p in model.named_parameters(recurse=False):
        if id(p) not in seen:
            seen.add(id(p))
            counts[name] = p.numel()
    counts["total"] = sum(v for k, v in counts.items())
    return counts


def detach_state(state):
    """Cut the graph between truncated-BPTT batches."""
    if state is None:
        return None
    if isinstance(state, tuple):
        return tuple(s.detach() for s in state)
    return state.detach()
