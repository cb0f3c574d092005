"""WaveGlow (Prenger et al. 2019) in plain torch, key-compatible with NVIDIA's DeepLearningExamples
checkpoints, and its denoiser.

A flow from audio to Gaussian noise. The audio is cut into groups of 8 samples (B, 8, T/8); each of 12 flows
mixes the channels with an invertible 1x1 convolution and applies an affine coupling: the first half of the
channels, with the upsampled mel spectrogram, goes through a WaveNet-like stack (WN: dilated convs with gated
tanh x sigmoid units, residual and skip 1x1 convs) that gives a shift b and a log-scale s for the second half,
x_b' = exp(s) * x_b + b. Every 4 flows, 2 channels leave early ("early outputs"). Synthesis runs the flows
backwards from noise of standard deviation sigma.

Weight-normed convolutions keep NVIDIA's ``weight_g`` / ``weight_v`` parameters (and their per-layer
``cond_layers``), so their ``state_dict`` loads as it is; ``remove_weightnorm`` folds them for inference.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class WNConfig:
    n_layers: int = 8
    n_channels: int = 512
    kernel_size: int = 3


@dataclass
class WaveGlowConfig:
    """NVIDIA's ``config`` of a WaveGlow checkpoint (names and defaults)."""

    n_mel_channels: int = 80
    n_flows: int = 12
    n_group: int = 8
    n_early_every: int = 4
    n_early_size: int = 2
    WN_config: WNConfig = field(default_factory=WNConfig)


class WNConv1d(nn.Module):
    """A weight-normed nn.Conv1d: weight = g * v / ||v|| (norm per output channel), parameters ``weight_g``
    (out, 1, 1), ``weight_v`` and ``bias``, as torch's old ``weight_norm`` stored them in NVIDIA's files.
    ``fold()`` computes the weight once for inference."""

    def __init__(self, n_in: int, n_out: int, kernel_size: int = 1, dilation: int = 1, padding: int = 0):
        super().__init__()
        conv = nn.Conv1d(n_in, n_out, kernel_size, dilation=dilation, padding=padding)
        self.dilation, self.padding = dilation, padding
        self.weight_v = nn.Parameter(conv.weight.detach().clone())
        self.weight_g = nn.Parameter(conv.weight.detach().flatten(1).norm(dim=1)[:, None, None].clone())
        self.bias = nn.Parameter(conv.bias.detach().clone())
        self.folded: torch.Tensor | None = None

    def weight(self) -> torch.Tensor:
        if self.folded is not None:
            return self.folded
        v = self.weight_v
        return v * (self.weight_g / v.flatten(1).norm(dim=1)[:, None, None])

    def fold(self) -> None:
        with torch.no_grad():
            self.folded = None
            self.folded = self.weight().detach().clone()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv1d(x, self.weight(), self.bias, dilation=self.dilation, padding=self.padding)


class WN(nn.Module):
    """The coupling network: audio half (B, n_in, T) and upsampled mel (B, 640, T) -> (B, 2 n_in, T)."""

    def __init__(self, n_in: int, n_mel: int, n_layers: int, n_channels: int, kernel_size: int):
        super().__init__()
        if kernel_size % 2 != 1 or n_channels % 2 != 0:
            raise ValueError("WN: kernel_size must be odd and n_channels even")
        self.n_layers, self.n_channels = n_layers, n_channels
        self.in_layers = nn.ModuleList()
        self.res_skip_layers = nn.ModuleList()
        self.cond_layers = nn.ModuleList()
        for i in range(n_layers):
            d = 2**i
            pad = d * (kernel_size - 1) // 2
            self.in_layers.append(WNConv1d(n_channels, 2 * n_channels, kernel_size, dilation=d, padding=pad))
            out = 2 * n_channels if i < n_layers - 1 else n_channels  # the last layer only feeds the skip sum
            self.res_skip_layers.append(WNConv1d(n_channels, out))
            self.cond_layers.append(WNConv1d(n_mel, 2 * n_channels))
        self.start = WNConv1d(n_in, n_channels)
        self.end = nn.Conv1d(n_channels, 2 * n_in, 1)
        self.end.weight.data.zero_()  # each coupling starts as the identity
        self.end.bias.data.zero_()

    def forward(self, audio: torch.Tensor, spect: torch.Tensor) -> torch.Tensor:
        c = self.n_channels
        h = self.start(audio)
        out = 0
        for i in range(self.n_layers):
            z = self.in_layers[i](h) + self.cond_layers[i](spect)
            acts = torch.tanh(z[:, :c]) * torch.sigmoid(z[:, c:])
            rs = self.res_skip_layers[i](acts)
            if i < self.n_layers - 1:
                h = h + rs[:, :c]
                out = out + rs[:, c:]
            else:
                out = out + rs
        return self.end(out)


class Invertible1x1Conv(nn.Module):
    """y = W x over channels, W initialised as a random rotation with det +1."""

    def __init__(self, c: int):
        super().__init__()
        self.conv = nn.Conv1d(c, c, 1, bias=False)
        w = torch.linalg.qr(torch.randn(c, c))[0]
        if torch.det(w) < 0:
            w[:, 0] = -w[:, 0]
        self.conv.weight.data = w[:, :, None].contiguous()
        self._inverse: tuple[tuple, torch.Tensor] | None = None  # (which weight values, W^-1)

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """-> (W z, log|det W| * time steps per item)."""
        w = self.conv.weight.squeeze(-1)
        log_det = z.shape[2] * torch.slogdet(w.float())[1]
        return self.conv(z), log_det

    def inverse(self, z: torch.Tensor) -> torch.Tensor:
        w = self.conv.weight
        # load_state_dict and .to() change the values or the memory in place: key on both, not on the object
        key = (w.data_ptr(), w._version, w.device, z.dtype)
        if self._inverse is None or self._inverse[0] != key:
            self._inverse = (key, torch.linalg.inv(w.detach().squeeze(-1).double()).to(z.dtype)[:, :, None])
        return F.conv1d(z, self._inverse[1])


class WaveGlow(nn.Module):
    def __init__(self, config: WaveGlowConfig | None = None):
        super().__init__()
        c = self.config = config or WaveGlowConfig()
        if c.n_group % 2 != 0:
            raise ValueError("n_group must be even")
        self.upsample = nn.ConvTranspose1d(c.n_mel_channels, c.n_mel_channels, 1024, stride=256)
        self.WN = nn.ModuleList()
        self.convinv = nn.ModuleList()
        n_half, n_remaining = c.n_group // 2, c.n_group
        for k in range(c.n_flows):
            if k % c.n_early_every == 0 and k > 0:
                n_half -= c.n_early_size // 2
                n_remaining -= c.n_early_size
            self.convinv.append(Invertible1x1Conv(n_remaining))
            wn = c.WN_config
            self.WN.append(
                WN(n_half, c.n_mel_channels * c.n_group, wn.n_layers, wn.n_channels, wn.kernel_size)
            )
        self.n_remaining_channels = n_remaining

    def condition(self, mel: torch.Tensor) -> torch.Tensor:
        """Mel (B, 80, T) -> upsampled and grouped conditioning (B, 80 * 8, T * 256 / 8)."""
        g = self.config.n_group
        spect = self.upsample(mel)
        spect = spect[:, :, : mel.shape[2] * 256]  # the transposed conv's tail overhangs by 1024 - 256
        b, c, t = spect.shape
        return spect.view(b, c, t // g, g).permute(0, 1, 3, 2).reshape(b, c * g, t // g)

    def forward(self, mel: torch.Tensor, audio: torch.Tensor):
        """Audio (B, T * 256) -> noise z (B, T * 256), and the log-likelihood terms: sum of log s and of
        log|det W| (for the training loss)."""
        c, g = self.config, self.config.n_group
        spect = self.condition(mel)
        b = audio.shape[0]
        audio = audio.view(b, -1, g).transpose(1, 2)  # (B, 8, T/8): sample j of each group in channel j
        outputs, log_s_sum, log_det_sum = [], 0.0, 0.0
        for k in range(c.n_flows):
            if k % c.n_early_every == 0 and k > 0:
                outputs.append(audio[:, : c.n_early_size])
                audio = audio[:, c.n_early_size :]
            audio, log_det = self.convinv[k](audio)
            log_det_sum = log_det_sum + log_det
            n_half = audio.shape[1] // 2
            a0, a1 = audio[:, :n_half], audio[:, n_half:]
            o = self.WN[k](a0, spect)
            log_s, shift = o[:, n_half:], o[:, :n_half]
            a1 = torch.exp(log_s) * a1 + shift
            log_s_sum = log_s_sum + log_s.sum()
            audio = torch.cat([a0, a1], 1)
        outputs.append(audio)
        z = torch.cat(outputs, 1)  # (B, 8, T/8)
        return z.transpose(1, 2).reshape(b, -1), log_s_sum, log_det_sum

    @torch.no_grad()
    def infer(self, mel: torch.Tensor, sigma: float = 1.0, generator: torch.Generator | None = None,
              noise: torch.Tensor | None = None) -> torch.Tensor:  # fmt: skip
        """Mel (B, 80, T) -> audio (B, T * 256) in about [-1, 1]. The noise is drawn from ``generator`` (or
        given as ``noise`` (B, 8, T * 32), the layout ``forward`` returns, for an exact inverse)."""
        c, g = self.config, self.config.n_group
        spect = self.condition(mel)
        b, t = spect.shape[0], spect.shape[2]
        if noise is None:
            noise = torch.randn(
                b, g, t, generator=generator, device=spect.device if generator is None else generator.device
            )
            noise = noise.to(spect.device, spect.dtype) * sigma
        else:
            noise = noise.to(spect.dtype)
        # the channels that left early come back in reverse order, in front of the running ones
        early = [
            noise[:, i : i + c.n_early_size] for i in range(0, g - self.n_remaining_channels, c.n_early_size)
        ]
        audio = noise[:, g - self.n_remaining_channels :]
        for k in reversed(range(c.n_flows)):
            n_half = audio.shape[1] // 2
            a0, a1 = audio[:, :n_half], audio[:, n_half:]
            o = self.WN[k](a0, spect)
            log_s, shift = o[:, n_half:], o[:, :n_half]
            a1 = (a1 - shift) / torch.exp(log_s)
            audio = self.convinv[k].inverse(torch.cat([a0, a1], 1))
            if k % c.n_early_every == 0 and k > 0:
                audio = torch.cat([early.pop(), audio], 1)
        return audio.transpose(1, 2).reshape(b, -1)

    def remove_weightnorm(self) -> WaveGlow:
        """Compute every weight-normed conv's weight once (faster inference; call again after changing the
        parameters). The parameters and keys stay as they are."""
        for m in self.modules():
            if isinstance(m, WNConv1d):
                m.fold()
        return self
