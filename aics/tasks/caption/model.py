"""Show, Attend and Tell (Xu et al. 2015): a CNN encoder's feature grid, soft attention with the gating
scalar, an LSTM decoder; teacher forcing with scheduled sampling (Bengio et al. 2015); greedy and beam search.

Shapes: B images, P = grid * grid positions, C encoder channels, T caption steps, V words.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class CaptionerConfig:
    vocab_size: int
    encoder_channels: tuple[int, ...] = (16, 32, 64, 128)
    grid: int = 14
    embed_dim: int = 128
    attention_dim: int = 128
    decoder_dim: int = 256
    dropout: float = 0.3
    gate: bool = True
    encoder: str = "cnn"
    freeze_encoder: bool = False


def conv_bn(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)
    )


class Encoder(nn.Module):
    """The CNN trained here (``name`` "cnn"): conv stages (two 3x3 conv-BN-ReLU; a 2x2 max pool after every
    stage but the last); or a ResNet trunk with torchvision's names (``name`` "resnet18" ... "resnet152",
    aics.tasks.caption.backbone) for the ImageNet weights a user supplies. Then an adaptive average pool to a
    grid x grid map: (B, 3, S, S) -> (B, P, C). A ``frozen`` encoder keeps its weights and its BatchNorm
    statistics (it stays in eval mode while the decoder trains)."""

    def __init__(self, channels: tuple[int, ...], grid: int, name: str = "cnn", frozen: bool = False):
        super().__init__()
        if name == "cnn":
            stages, cin = [], 3
            for k, c in enumerate(channels):
                layers = [conv_bn(cin, c), conv_bn(c, c)]
                if k < len(channels) - 1:
                    layers.append(nn.MaxPool2d(2))
                stages.append(nn.Sequential(*layers))
                cin = c
            self.stages = nn.Sequential(*stages)
        else:
            from aics.tasks.caption.backbone import ResNetTrunk

            self.trunk = ResNetTrunk(name)
            cin = self.trunk.out_channels
        self.pool = nn.AdaptiveAvgPool2d(grid)
        self.out_channels = cin
        self.frozen = frozen
        if frozen:
            self.requires_grad_(False)

    def train(self, mode: bool = True):
        return super().train(mode and not self.frozen)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        body = self.stages if hasattr(self, "stages") else self.trunk
        x = self.pool(body(images))  # (B, C, grid, grid)
        return x.flatten(2).transpose(1, 2)  # (B, P, C)


class SoftAttention(nn.Module):
    """Additive attention: e_i = w^T tanh(W_a a_i + W_h h); alpha = softmax(e) over the P positions."""

    def __init__(self, enc_dim: int, dec_dim: int, att_dim: int):
        super().__init__()
        self.enc = nn.Linear(enc_dim, att_dim)
        self.dec = nn.Linear(dec_dim, att_dim)
        self.score = nn.Linear(att_dim, 1)

    def forward(self, enc_proj: torch.Tensor, feats: torch.Tensor, h: torch.Tensor):
        # enc_proj (B, P, A) = W_a a (computed once per image), feats (B, P, C), h (B, H)
        e = self.score(torch.tanh(enc_proj + self.dec(h)[:, None])).squeeze(2)  # (B, P)
        alpha = e.softmax(dim=1)
        return (alpha[:, :, None] * feats).sum(1), alpha  # (B, C), (B, P)


def teacher_forcing_probability(schedule: str, i: float, min_p: float = 0.0, linear_decay: float = 1e-4,
                                exp_base: float = 0.9997, sigmoid_k: float = 1000.0) -> float:  # fmt: skip
    """Bengio et al. (2015)'s schedules of the probability of feeding the reference word at training
    step (or epoch) ``i``: linear max(min_p, 1 - c i), exponential k^i, inverse sigmoid k / (k + exp(i/k))."""
    if schedule == "none":
        return 1.0
    if schedule == "linear":
        p = 1.0 - linear_decay * i
    elif schedule == "exponential":
        p = exp_base**i
    elif schedule == "inverse_sigmoid":
        z = i / sigmoid_k
        p = sigmoid_k / (sigmoid_k + math.exp(z)) if z < 700 else 0.0
    else:
        raise ValueError(f"unknown schedule {schedule!r}")
    return max(min_p, min(1.0, p))


class Captioner(nn.Module):
    def __init__(self, cfg: CaptionerConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg.encoder_channels, cfg.grid, cfg.encoder, cfg.freeze_encoder)
        c = self.encoder.out_channels
        self.embed = nn.Embedding(cfg.vocab_size, cfg.embed_dim)
        self.attention = SoftAttention(c, cfg.decoder_dim, cfg.attention_dim)
        self.init_h = nn.Linear(c, cfg.decoder_dim)
        self.init_c = nn.Linear(c, cfg.decoder_dim)
        self.f_beta = nn.Linear(cfg.decoder_dim, c) if cfg.gate else None
        self.lstm = nn.LSTMCell(cfg.embed_dim + c, cfg.decoder_dim)
        self.dropout = nn.Dropout(cfg.dropout)
        self.out = nn.Linear(cfg.decoder_dim, cfg.vocab_size)

    # ---------------------------------------------------------------- pieces
    def encode(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, tuple]:
        """(B, 3, S, S) normalised -> features (B, P, C), their attention projection, the initial (h, c)."""
        feats = self.encoder(images)
        mean = feats.mean(1)
        state = (torch.tanh(self.init_h(mean)), torch.tanh(self.init_c(mean)))
        return feats, self.attention.enc(feats), state

    def step(self, word: torch.Tensor, feats, enc_proj, state):
        """One decoder step from the previous word (B,) -> logits (B, V), alpha (B, P), new state."""
        h, c = state
        context, alpha = self.attention(enc_proj, feats, h)
        if self.f_beta is not None:
            context = torch.sigmoid(self.f_beta(h)) * context
        h, c = self.lstm(torch.cat([self.embed(word), context], 1), (h, c))
        return self.out(self.dropout(h)), alpha, (h, c)

    # ---------------------------------------------------------------- training
    def forward(
        self,
        images: torch.Tensor,
        captions: torch.Tensor,
        owner: torch.Tensor | None = None,
        tf_prob: float = 1.0,
        generator: torch.Generator | None = None,
        sample: str = "argmax",
    ):
        """Teacher forcing with scheduled sampling. images (B, 3, S, S); captions (N, T) start with <start>,
        caption n describing image ``owner[n]`` (None: N = B, one each), so that each image is encoded once
        for all its captions. Step t predicts
        captions[:, t + 1] from captions[:, t], or, where a coin with P(heads) = ``tf_prob`` comes up tails,
        from the model's own word at step t - 1 (per caption and step, from ``generator``; the first step
        always reads <start>). Returns logits (N, T-1, V), alphas (N, T-1, P) and the share of steps after
        the first that were fed the reference word."""
        feats, enc_proj, state = self.encode(images)
        if owner is not None:
            feats, enc_proj, state = feats[owner], enc_proj[owner], (state[0][owner], state[1][owner])
        steps = captions.shape[1] - 1
        logits, alphas = [], []
        word = captions[:, 0]
        fed_ref = fed_all = 0
        for t in range(steps):
            if t > 0:
                word = captions[:, t]
                if tf_prob < 1.0:
                    prev = logits[-1].detach().float()
                    own = (torch.multinomial(prev.softmax(-1), 1, generator=generator).squeeze(1)
                           if sample == "sample" else prev.argmax(-1))  # fmt: skip
                    coin = torch.rand(word.shape, generator=generator, device=word.device) < tf_prob
                    word = torch.where(coin, word, own)
                    fed_ref += int(coin.sum())
                else:
                    fed_ref += word.numel()
                fed_all += word.numel()
            out, alpha, state = self.step(word, feats, enc_proj, state)
            logits.append(out)
            alphas.append(alpha)
        share = fed_ref / fed_all if fed_all else 1.0
        return torch.stack(logits, 1), torch.stack(alphas, 1), share

    # ---------------------------------------------------------------- decoding
    @torch.no_grad()
    def greedy(self, images: torch.Tensor, start: int, end: int, max_len: int):
        """-> words (B, max_len) (after <end>: <end>), alphas (B, max_len, P)."""
        feats, enc_proj, state = self.encode(images)
        b = images.shape[0]
        word = torch.full((b,), start, dtype=torch.long, device=images.device)
        done = torch.zeros(b, dtype=torch.bool, device=images.device)
        words, alphas = [], []
        for _ in range(max_len):
            logits, alpha, state = self.step(word, feats, enc_proj, state)
            word = torch.where(done, torch.full_like(word, end), logits.argmax(-1))
            words.append(word)
            alphas.append(alpha)
            done |= word == end
            if bool(done.all()):
                break
        return torch.stack(words, 1), torch.stack(alphas, 1)

    @torch.no_grad()
    def beam_search(self, image: torch.Tensor, start: int, end: int, max_len: int, beam: int = 3,
                    length_norm: float = 0.0):  # fmt: skip
        """One image (3, S, S) -> (words, alphas (n, P), log p) of the best finished caption. A caption
        finishes with <end> (or at ``max_len`` words); finished captions are ranked by
        log p / n^length_norm, n counting <end>."""
        feats, enc_proj, state = self.encode(image[None])
        feats, enc_proj = feats.expand(beam, -1, -1), enc_proj.expand(beam, -1, -1)
        state = (state[0].expand(beam, -1).contiguous(), state[1].expand(beam, -1).contiguous())
        words = torch.full((beam,), start, dtype=torch.long, device=image.device)
        scores = torch.zeros(beam, device=image.device)
        scores[1:] = -math.inf  # all beams start as one hypothesis
        seqs: list[list[int]] = [[] for _ in range(beam)]
        atts: list[list[torch.Tensor]] = [[] for _ in range(beam)]
        finished: list[tuple[float, list[int], list[torch.Tensor], float]] = []
        v = self.cfg.vocab_size
        for t in range(max_len):
            logits, alpha, state = self.step(words, feats, enc_proj, state)
            logp = scores[:, None] + logits.float().log_softmax(-1)  # (beam, V)
            top, flat = logp.flatten().topk(min(2 * beam, logp.numel()))
            new_words, new_from, new_scores = [], [], []
            for s, f in zip(top.tolist(), flat.tolist(), strict=True):
                if s == -math.inf:
                    break
                src, w = divmod(f, v)
                seq, att = seqs[src] + [w], atts[src] + [alpha[src]]
                if w == end or t == max_len - 1:
                    finished.append((s / len(seq) ** length_norm, seq, att, s))
                else:
                    new_words.append(w)
                    new_from.append(src)
                    new_scores.append(s)
                if len(new_words) == beam:
                    break
            best_done = max((f[0] for f in finished), default=-math.inf)
            if not new_words or (length_norm == 0 and best_done >= max(new_scores)):
                break  # log p only falls: no open beam can beat the best finished one
            k = len(new_words)
            idx = torch.tensor(new_from, device=image.device)
            seqs = [seqs[i] + [w] for i, w in zip(new_from, new_words, strict=True)]
            atts = [atts[i] + [alpha[i]] for i in new_from]
            words = torch.tensor(new_words, device=image.device)
            scores = torch.tensor(new_scores, device=image.device)
            state = (state[0][idx], state[1][idx])
            feats, enc_proj = feats[:1].expand(k, -1, -1), enc_proj[:1].expand(k, -1, -1)
        _, seq, att, logp = max(finished, key=lambda f: f[0])
        return seq, torch.stack(att), logp


def captioner_config(mc, vocab_size: int) -> CaptionerConfig:
    return CaptionerConfig(vocab_size=vocab_size, encoder_channels=tuple(mc.encoder_channels), grid=mc.grid,
                           embed_dim=mc.embed_dim, attention_dim=mc.attention_dim, decoder_dim=mc.decoder_dim,
                           dropout=mc.dropout, gate=mc.gate, encoder=mc.encoder,
                           freeze_encoder=mc.freeze_encoder)  # fmt: skip


def caption_loss(logits: torch.Tensor, alphas: torch.Tensor, captions: torch.Tensor, lengths: torch.Tensor,
                 alpha_c: float, pad: int = 0) -> tuple[torch.Tensor, dict]:  # fmt: skip
    """Cross-entropy of the next words (padding ignored) plus alpha_c * the doubly stochastic regulariser
    (1 - sum_t alpha_ti)^2 over each caption's real steps t, averaged over the positions i and the batch (the
    paper sums over i; the mean keeps alpha_c's scale independent of the grid, as common implementations
    do)."""
    targets = captions[:, 1:]
    ce = F.cross_entropy(logits.float().transpose(1, 2), targets, ignore_index=pad)
    steps = (lengths - 1).clamp(min=1)
    mask = torch.arange(alphas.shape[1], device=alphas.device)[None] < steps[:, None]  # (B, T-1)
    cover = (alphas.float() * mask[:, :, None]).sum(1)  # (B, P)
    reg = ((1.0 - cover) ** 2).mean()
    total = ce + alpha_c * reg if alpha_c > 0 else ce
    return total, {"ce": ce.item(), "attention_reg": reg.item()}
