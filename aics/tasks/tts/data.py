"""Tacotron2's audio features, identical to NVIDIA's: 22050 Hz, 1024-sample window and FFT, hop 256, 80 Slaney
mel bands over 0-8000 Hz, the natural log of mel *magnitudes* clamped at 1e-5, the signal reflect-padded by
half a window at both ends (frame t is centred on sample 256 t).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from aics.core.audio import log_mel, mel_filterbank


@dataclass(frozen=True)
class MelConfig:
    sample_rate: int = 22050
    n_fft: int = 1024
    win_length: int = 1024
    hop: int = 256
    n_mels: int = 80
    fmin: float = 0.0
    fmax: float = 8000.0
    floor: float = 1e-5


NVIDIA_MEL = MelConfig()


def mel_spectrogram(wav: torch.Tensor, mc: MelConfig = NVIDIA_MEL) -> torch.Tensor:
    """Waveform (..., samples) in [-1, 1] -> log mel (..., n_mels, samples // hop + 1)."""
    x = wav if wav.dim() > 1 else wav[None]
    pad = mc.n_fft // 2
    lead = x.shape[:-1]
    x = F.pad(x.reshape(-1, 1, x.shape[-1]), (pad, pad), mode="reflect").reshape(*lead, -1)
    mel = log_mel(
        x, mc.sample_rate, mc.n_fft, mc.hop, mc.win_length, n_mels=mc.n_mels, fmin=mc.fmin, fmax=mc.fmax,
        htk=False, norm="slaney", power=1.0, log="ln", floor=mc.floor, center=False,
    )  # fmt: skip
    return mel if wav.dim() > 1 else mel[0]


def mel_basis(mc: MelConfig = NVIDIA_MEL) -> torch.Tensor:
    """(n_mels, n_fft // 2 + 1) Slaney filterbank, as librosa.filters.mel gives."""
    return mel_filterbank(mc.sample_rate, mc.n_fft, mc.n_mels, mc.fmin, mc.fmax, htk=False, norm="slaney")
