"""Tacotron2 (Shen et al. 2018) in plain torch, key-compatible with NVIDIA's DeepLearningExamples checkpoints.

Text ids (B, N) -> encoder (3 x conv + BN + ReLU + dropout, then a BiLSTM) -> memory (B, N, 512). The decoder
emits one 80-band log-mel frame per step: the previous frame goes through the prenet (two ReLU layers whose
dropout stays on at inference, as in the paper and NVIDIA's code: it is the model's only source of variety),
the attention LSTM reads it with the last context, location-sensitive attention

    e_i = v^T tanh(W s + V h_i + U (F * a_cat)_i),   a = masked softmax(e),   context = sum_i a_i h_i

(s the attention LSTM's state, h_i the memory, a_cat the previous and the cumulative attention weights,
F * the location convolution) gives the next context, and the decoder LSTM and two linear layers give the
frame and the stop-token logit (the "gate"). A 5-layer convolutional postnet adds a residual to the frames.

The module and parameter names are NVIDIA's (``encoder.convolutions.0.0.conv.weight``, ``decoder.
attention_layer.location_layer.location_conv.conv.weight``, ...), so their ``state_dict`` loads as it is.

Batched inference masks padded text and keeps decoding until every item's gate fired; an item's frames after
its own stop are cut. Each item's numbers never depend on the others, so a batch gives (up to float rounding)
the same frames as one text at a time when the prenet dropout draws the same masks (``prenet_dropout=False``
switches it off for such comparisons).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class Tacotron2Config:
    """The 22 constructor arguments NVIDIA stores as a checkpoint's ``config`` (their names and defaults)."""

    mask_padding: bool = False
    n_mel_channels: int = 80
    n_symbols: int = 148
    symbols_embedding_dim: int = 512
    encoder_kernel_size: int = 5
    encoder_n_convolutions: int = 3
    encoder_embedding_dim: int = 512
    attention_rnn_dim: int = 1024
    attention_dim: int = 128
    attention_location_n_filters: int = 32
    attention_location_kernel_size: int = 31
    n_frames_per_step: int = 1
    decoder_rnn_dim: int = 1024
    prenet_dim: int = 256
    max_decoder_steps: int = 1000
    gate_threshold: float = 0.5
    p_attention_dropout: float = 0.1
    p_decoder_dropout: float = 0.1
    postnet_embedding_dim: int = 512
    postnet_kernel_size: int = 5
    postnet_n_convolutions: int = 5
    decoder_no_early_stopping: bool = False


class LinearNorm(nn.Module):
    """nn.Linear with Xavier-uniform weights (``linear_layer``: NVIDIA's key level)."""

    def __init__(self, n_in: int, n_out: int, bias: bool = True, gain: str = "linear"):
        super().__init__()
        self.linear_layer = nn.Linear(n_in, n_out, bias=bias)
        nn.init.xavier_uniform_(self.linear_layer.weight, gain=nn.init.calculate_gain(gain))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear_layer(x)


class ConvNorm(nn.Module):
    """'Same' nn.Conv1d with Xavier-uniform weights (``conv``: NVIDIA's key level)."""

    def __init__(self, n_in: int, n_out: int, kernel_size: int = 1, bias: bool = True, gain: str = "linear"):
        super().__init__()
        self.conv = nn.Conv1d(n_in, n_out, kernel_size, padding=(kernel_size - 1) // 2, bias=bias)
        nn.init.xavier_uniform_(self.conv.weight, gain=nn.init.calculate_gain(gain))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


def cpu_linear(w: torch.Tensor, b: torch.Tensor, batch: int):
    """x (batch, in) -> x @ w.T + b in float32 on the CPU, the fastest way found here for a weight read once a
    step: numpy's matrix-vector product for one row; for more, ``w`` packed once for oneDNN, or ``F.linear``
    where that is not available or does not agree with it on a probe input."""
    if batch > 1:
        try:
            packed = torch.ops.mkldnn._reorder_linear_weight(w, batch)

            def dnn(x: torch.Tensor) -> torch.Tensor:
                return torch.ops.mkldnn._linear_pointwise(x, packed, b, "none", [], "")

            probe = torch.linspace(-1, 1, batch * w.shape[1]).reshape(batch, -1)
            if torch.allclose(dnn(probe), F.linear(probe, w, b), rtol=1e-4, atol=1e-4):
                return dnn
        except (AttributeError, RuntimeError):  # a build without oneDNN, or ops renamed in another torch
            pass
        return lambda x: F.linear(x, w, b)
    wn, bn = w.numpy(), b.numpy()
    return lambda x: torch.from_numpy((wn @ x.numpy().T).T + bn)


def lengths_mask(lengths: torch.Tensor, max_len: int | None = None) -> torch.Tensor:
    """(B,) lengths -> (B, T) True at valid positions."""
    max_len = int(lengths.max()) if max_len is None else max_len
    return torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]


class Encoder(nn.Module):
    def __init__(self, c: Tacotron2Config):
        super().__init__()
        dim, k = c.encoder_embedding_dim, c.encoder_kernel_size
        self.convolutions = nn.ModuleList(
            nn.Sequential(ConvNorm(dim, dim, k, gain="relu"), nn.BatchNorm1d(dim))
            for _ in range(c.encoder_n_convolutions)
        )
        self.lstm = nn.LSTM(dim, dim // 2, num_layers=1, batch_first=True, bidirectional=True)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Embedded text (B, C, N) -> memory (B, N, C); the padded positions are zero."""
        mask = lengths_mask(lengths, x.shape[2])[:, None, :].to(x.dtype)
        for conv in self.convolutions:
            # zero the padding before each conv so that a padded item sees what it would see alone
            x = F.dropout(F.relu(conv(x * mask)), 0.5, self.training)
        packed = nn.utils.rnn.pack_padded_sequence(
            x.transpose(1, 2), lengths.cpu(), batch_first=True, enforce_sorted=False
        )
        out, _ = self.lstm(packed)
        out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=x.shape[2])
        return out


class LocationLayer(nn.Module):
    def __init__(self, n_filters: int, kernel_size: int, attention_dim: int):
        super().__init__()
        self.location_conv = ConvNorm(2, n_filters, kernel_size, bias=False)
        self.location_dense = LinearNorm(n_filters, attention_dim, bias=False, gain="tanh")

    def forward(self, weights_cat: torch.Tensor) -> torch.Tensor:
        """(B, 2, N) previous and cumulative weights -> (B, N, attention_dim)."""
        return self.location_dense(self.location_conv(weights_cat).transpose(1, 2))


class Attention(nn.Module):
    """Location-sensitive attention: e = v^T tanh(W s + V h + U (F * [a_prev, a_cum]))."""

    def __init__(
        self, rnn_dim: int, embedding_dim: int, attention_dim: int, n_filters: int, kernel_size: int
    ):
        super().__init__()
        self.query_layer = LinearNorm(rnn_dim, attention_dim, bias=False, gain="tanh")
        self.memory_layer = LinearNorm(embedding_dim, attention_dim, bias=False, gain="tanh")
        self.v = LinearNorm(attention_dim, 1, bias=False)
        self.location_layer = LocationLayer(n_filters, kernel_size, attention_dim)

    def energies(self, query: torch.Tensor, processed_memory: torch.Tensor, weights_cat: torch.Tensor):
        """query (B, rnn_dim), processed memory V h (B, N, A), weights_cat (B, 2, N) -> energies (B, N)."""
        processed_query = self.query_layer(query)[:, None, :]  # (B, 1, A)
        processed_location = self.location_layer(weights_cat)  # (B, N, A)
        return self.v(torch.tanh(processed_query + processed_location + processed_memory)).squeeze(-1)

    def forward(self, query, memory, processed_memory, weights_cat, mask):
        """-> context (B, embedding_dim), weights (B, N). ``mask`` (B, N) is True at valid positions."""
        energies = self.energies(query, processed_memory, weights_cat)
        if mask is not None:
            energies = energies.masked_fill(~mask, float("-inf"))
        weights = F.softmax(energies, dim=1)
        context = torch.bmm(weights[:, None, :], memory).squeeze(1)
        return context, weights


class Prenet(nn.Module):
    def __init__(self, n_in: int, sizes: list[int]):
        super().__init__()
        dims = [n_in, *sizes[:-1]]
        self.layers = nn.ModuleList(LinearNorm(a, b, bias=False) for a, b in zip(dims, sizes, strict=True))
        self.dropout = True  # on at inference too, as NVIDIA's; off only to compare outputs exactly

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        for layer in self.layers:
            x = F.relu(layer(x))
            if self.dropout:
                if generator is None:
                    x = F.dropout(x, 0.5, training=True)
                else:  # seeded masks: the same text and seed give the same audio
                    keep = torch.rand(x.shape, generator=generator, device=generator.device) >= 0.5
                    x = x * keep.to(x.device, x.dtype) * 2.0
        return x


class Decoder(nn.Module):
    def __init__(self, c: Tacotron2Config):
        super().__init__()
        if c.n_frames_per_step < 1:
            raise ValueError("n_frames_per_step must be at least 1")
        self.c = c
        self.r = (
            c.n_frames_per_step
        )  # frames per decoder step; the prenet reads the last of the previous step's
        self.prenet = Prenet(c.n_mel_channels, [c.prenet_dim, c.prenet_dim])
        self.attention_rnn = nn.LSTMCell(c.prenet_dim + c.encoder_embedding_dim, c.attention_rnn_dim)
        self.attention_layer = Attention(
            c.attention_rnn_dim, c.encoder_embedding_dim, c.attention_dim, c.attention_location_n_filters,
            c.attention_location_kernel_size,
        )  # fmt: skip
        self.decoder_rnn = nn.LSTMCell(c.attention_rnn_dim + c.encoder_embedding_dim, c.decoder_rnn_dim)
        self.linear_projection = LinearNorm(
            c.decoder_rnn_dim + c.encoder_embedding_dim, c.n_mel_channels * c.n_frames_per_step
        )
        self.gate_layer = LinearNorm(c.decoder_rnn_dim + c.encoder_embedding_dim, 1, gain="sigmoid")

    def initial_state(self, memory: torch.Tensor) -> dict:
        b, n, _ = memory.shape
        zeros, c = memory.new_zeros, self.c
        return {
            "att_h": zeros(b, c.attention_rnn_dim), "att_c": zeros(b, c.attention_rnn_dim),
            "dec_h": zeros(b, c.decoder_rnn_dim), "dec_c": zeros(b, c.decoder_rnn_dim),
            "weights": zeros(b, n), "weights_cum": zeros(b, n), "context": zeros(b, c.encoder_embedding_dim),
        }  # fmt: skip

    def step(self, prenet_out, memory, processed_memory, mask, s: dict):
        """One decoder step from the prenet output (B, prenet_dim); updates ``s``; -> (B, r * 80) frames (r
        consecutive 80-band frames) and (B,) gate logit, the attention weights in ``s["weights"]``."""
        c = self.c
        s["att_h"], s["att_c"] = self.attention_rnn(
            torch.cat([prenet_out, s["context"]], -1), (s["att_h"], s["att_c"])
        )
        att_h = F.dropout(s["att_h"], c.p_attention_dropout, self.training)
        s["att_h"] = att_h
        weights_cat = torch.stack([s["weights"], s["weights_cum"]], dim=1)
        s["context"], s["weights"] = self.attention_layer(att_h, memory, processed_memory, weights_cat, mask)
        s["weights_cum"] = s["weights_cum"] + s["weights"]
        s["dec_h"], s["dec_c"] = self.decoder_rnn(
            torch.cat([att_h, s["context"]], -1), (s["dec_h"], s["dec_c"])
        )
        s["dec_h"] = F.dropout(s["dec_h"], c.p_decoder_dropout, self.training)
        out = torch.cat([s["dec_h"], s["context"]], -1)
        return self.linear_projection(out), self.gate_layer(out).squeeze(-1)

    def cpu_step(self, batch: int = 1):
        """``step`` for inference on the CPU in float32, with the same numbers up to rounding, 2-3 times as
        fast: each LSTM cell's two products are one (its input and hidden weights side by side) and the
        projection and gate are one. These weights are 71 MB, more than the cache holds, and every step reads
        them all; PyTorch's CPU matrix products stream them slowly. For one text numpy's BLAS computes W @ x
        (about 2.5x faster here); for a batch the weights are packed once into oneDNN's blocked layout
        (PyTorch's own ``mkldnn`` linear ops, those ``torch.compile`` uses for frozen CPU models), 2.5-3x
        faster than ``F.linear`` at batch 8. Where the packed ops are missing or disagree with ``F.linear``
        on a probe, the plain products are used."""

        def fused(cell: nn.LSTMCell):
            w = torch.cat([cell.weight_ih, cell.weight_hh], 1).detach().float()  # (4H, I + H)
            return w, (cell.bias_ih + cell.bias_hh).detach().float()

        proj, gate = self.linear_projection.linear_layer, self.gate_layer.linear_layer
        out_w = torch.cat([proj.weight, gate.weight]).detach().float()  # (81, D + C)
        out_b = torch.cat([proj.bias, gate.bias]).detach().float()
        att_lin = cpu_linear(*fused(self.attention_rnn), batch)
        dec_lin = cpu_linear(*fused(self.decoder_rnn), batch)
        out_lin = cpu_linear(out_w, out_b, batch)

        def lstm(x: torch.Tensor, linear, c: torch.Tensor):
            i, f, g, o = linear(x).chunk(4, 1)  # PyTorch's gate order
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            return torch.sigmoid(o) * torch.tanh(c), c

        def step(prenet_out, memory, processed_memory, mask, s: dict):
            x = torch.cat([prenet_out, s["context"], s["att_h"]], -1)
            s["att_h"], s["att_c"] = lstm(x, att_lin, s["att_c"])
            weights_cat = torch.stack([s["weights"], s["weights_cum"]], dim=1)
            s["context"], s["weights"] = self.attention_layer(
                s["att_h"], memory, processed_memory, weights_cat, mask
            )
            s["weights_cum"] = s["weights_cum"] + s["weights"]
            x = torch.cat([s["att_h"], s["context"], s["dec_h"]], -1)
            s["dec_h"], s["dec_c"] = lstm(x, dec_lin, s["dec_c"])
            out = out_lin(torch.cat([s["dec_h"], s["context"]], -1))
            return out[:, :-1], out[:, -1]

        step.uses_numpy = batch == 1
        return step

    def forward(self, memory, memory_lengths, mels):
        """Teacher forcing: memory (B, N, C), target mels (B, 80, T) -> frames (B, 80, T), gate logits (B, S),
        alignments (B, S, N) for S = ceil(T / r) decoder steps. Step t predicts frames t*r .. t*r + r - 1 from
        target frame t*r - 1 (a zero frame first)."""
        mask = lengths_mask(memory_lengths, memory.shape[1])
        processed_memory = self.attention_layer.memory_layer(memory)
        b, n_mel, t_frames = mels.shape
        r, steps = self.r, -(-mels.shape[2] // self.r)
        last_of_step = mels[:, :, r - 1 :: r][:, :, : steps - 1]  # (B, 80, S - 1)
        previous = torch.cat([mels.new_zeros(b, n_mel, 1), last_of_step], 2)
        prenet_out = self.prenet(previous.transpose(1, 2))  # (B, S, prenet_dim), all steps at once
        s = self.initial_state(memory)
        frames, gates, alignments = [], [], []
        for t in range(steps):
            frame, gate = self.step(prenet_out[:, t], memory, processed_memory, mask, s)
            frames.append(frame)
            gates.append(gate)
            alignments.append(s["weights"])
        frames = self.unfold(torch.stack(frames, 1))[:, :, :t_frames]
        return frames, torch.stack(gates, 1), torch.stack(alignments, 1)

    def unfold(self, steps: torch.Tensor) -> torch.Tensor:
        """(B, S, r * 80) step outputs -> (B, 80, S * r) frames."""
        b, n = steps.shape[:2]
        return steps.reshape(b, n * self.r, -1).transpose(1, 2)

    @torch.no_grad()
    def infer(self, memory, memory_lengths, max_steps: int | None = None, stop: bool = True,
              generator: torch.Generator | None = None, fast: bool = True):  # fmt: skip
        """Autoregressive decoding until every item's gate fired (sigmoid > gate_threshold) or ``max_steps``
        (default: the config's max_decoder_steps). -> frames (B, 80, S * r), frame counts (B,) (r per step),
        alignments (B, S, N),
        and whether the step limit cut any item short. ``stop=False`` always runs ``max_steps`` steps.
        ``fast`` uses ``cpu_step`` on the CPU in float32 (eval mode)."""
        c = self.c
        cpu = memory.device.type == "cpu" and memory.dtype == torch.float32 and not self.training
        step = self.cpu_step(memory.shape[0]) if fast and cpu else self.step
        max_steps = c.max_decoder_steps if max_steps is None else max_steps
        b = memory.shape[0]
        mask = lengths_mask(memory_lengths, memory.shape[1])
        processed_memory = self.attention_layer.memory_layer(memory)
        s = self.initial_state(memory)
        frame = memory.new_zeros(b, c.n_mel_channels)
        lengths = torch.zeros(b, dtype=torch.long, device=memory.device)
        running = torch.ones(b, dtype=torch.bool, device=memory.device)
        frames, alignments = [], []
        threshold = math.log(c.gate_threshold / (1 - c.gate_threshold))  # sigmoid(g) > p  <=>  g > logit(p)
        # numpy's BLAS threads and torch's would spin against each other: torch's small per-step ops run on
        # one thread while cpu_step's products take the cores (2.2 instead of 8.6 ms a step on 2 cores)
        threads = torch.get_num_threads()
        if getattr(step, "uses_numpy", False):
            torch.set_num_threads(1)
        try:
            for _ in range(max_steps):
                out, gate = step(self.prenet(frame, generator), memory, processed_memory, mask, s)
                frames.append(out)
                frame = out[:, -c.n_mel_channels :]  # the step's last frame feeds the next
                alignments.append(s["weights"])
                lengths += running
                running &= gate <= threshold
                if stop and not c.decoder_no_early_stopping and not bool(running.any()):
                    break
        finally:
            torch.set_num_threads(threads)
        truncated = bool(running.any()) and stop
        return self.unfold(torch.stack(frames, 1)), lengths * self.r, torch.stack(alignments, 1), truncated


class Postnet(nn.Module):
    def __init__(self, c: Tacotron2Config):
        super().__init__()
        dims = (
            [c.n_mel_channels]
            + [c.postnet_embedding_dim] * (c.postnet_n_convolutions - 1)
            + [c.n_mel_channels]
        )
        last = c.postnet_n_convolutions - 1
        self.convolutions = nn.ModuleList(
            nn.Sequential(
                ConvNorm(dims[i], dims[i + 1], c.postnet_kernel_size, gain="linear" if i == last else "tanh"),
                nn.BatchNorm1d(dims[i + 1]),
            )
            for i in range(c.postnet_n_convolutions)
        )

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """(B, 80, T) -> residual (B, 80, T); with ``mask`` (B, 1, T) the frames past each end are zeroed
        before every conv, so a padded item gets what it would alone."""
        last = len(self.convolutions) - 1
        for i, conv in enumerate(self.convolutions):
            if mask is not None:
                x = x * mask
            x = conv(x)
            x = F.dropout(x if i == last else torch.tanh(x), 0.5, self.training)
        return x


class Tacotron2(nn.Module):
    def __init__(self, config: Tacotron2Config | None = None):
        super().__init__()
        c = self.config = config or Tacotron2Config()
        self.embedding = nn.Embedding(c.n_symbols, c.symbols_embedding_dim)
        bound = math.sqrt(3.0) * math.sqrt(2.0 / (c.n_symbols + c.symbols_embedding_dim))
        nn.init.uniform_(self.embedding.weight, -bound, bound)
        self.encoder = Encoder(c)
        self.decoder = Decoder(c)
        self.postnet = Postnet(c)

    def encode(self, text: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.encoder(self.embedding(text).transpose(1, 2), lengths)

    def forward(self, text, text_lengths, mels, mel_lengths):
        """Teacher-forced: -> mel (B, 80, T), mel + postnet (B, 80, T), gate logits (B, S), alignments
        (B, S, N) for S = ceil(T / r) decoder steps; frames past each ``mel_lengths`` are zeroed
        (``mask_padding``, as NVIDIA trains)."""
        memory = self.encode(text, text_lengths)
        mel, gate, alignments = self.decoder(memory, text_lengths, mels)
        mask = lengths_mask(mel_lengths, mel.shape[2])[:, None, :].to(mel.dtype)
        post = mel + self.postnet(mel, mask)
        if self.config.mask_padding:
            mel, post = mel * mask, post * mask
            steps = -(-mel_lengths // self.decoder.r)
            gate = gate.masked_fill(~lengths_mask(steps, gate.shape[1]), 1e3)
        return mel, post, gate, alignments

    @torch.no_grad()
    def infer(self, text, text_lengths, max_steps: int | None = None, stop: bool = True,
              generator: torch.Generator | None = None, fast: bool = True):  # fmt: skip
        """Text ids (B, N) and lengths (B,) -> mel after the postnet (B, 80, T), frame counts (B,),
        alignments (B, S, N) for S decoder steps (T = S * r). Frames past an item's length are zero. Warns
        when the step limit was reached before a gate fired. ``fast``: ``Decoder.cpu_step`` where it
        applies."""
        memory = self.encode(text, text_lengths)
        mel, lengths, alignments, truncated = self.decoder.infer(
            memory, text_lengths, max_steps, stop, generator, fast
        )
        if truncated:
            limit = self.config.max_decoder_steps if max_steps is None else max_steps
            warnings.warn(
                f"Tacotron2 reached the limit of {limit} decoder steps before the stop token: the audio is "
                "cut (raise --max-decoder-steps, or split the text)",
                stacklevel=2,
            )
        mask = lengths_mask(lengths, mel.shape[2])[:, None, :].to(mel.dtype)
        mel = mel * mask
        post = (mel + self.postnet(mel, mask)) * mask
        step_mask = lengths_mask(lengths // self.decoder.r, alignments.shape[1])[:, :, None]
        return post, lengths, alignments * step_mask.to(alignments.dtype)


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
