"""Mel spectrogram -> waveform: Griffin-Lim (no weights needed) and WaveGlow with NVIDIA's denoiser.

Griffin-Lim undoes the mel projection with the filterbank's pseudo-inverse, clipped at zero (a magnitude is
never negative), and recovers a phase with the fast (momentum) Griffin-Lim iteration of ``aics.core.audio``.
"""

from __future__ import annotations

import functools

import torch

from aics.core.audio import griffin_lim, istft, stft
from aics.tasks.tts.data import NVIDIA_MEL, MelConfig, mel_basis
from aics.tasks.tts.waveglow import WaveGlow


def _pad_mode(samples: int, mc: MelConfig) -> str:
    """NVIDIA's reflect padding, or zeros for clips shorter than half a window (reflect cannot pad those)."""
    return "reflect" if samples > mc.n_fft // 2 else "constant"


@functools.lru_cache(maxsize=4)
def _pinv(mc: MelConfig) -> torch.Tensor:
    return torch.linalg.pinv(mel_basis(mc).double()).float()  # (F, M)


def mel_to_magnitude(mel: torch.Tensor, mc: MelConfig = NVIDIA_MEL) -> torch.Tensor:
    """Log mel (..., M, T) -> linear STFT magnitude (..., F, T) through the non-negative pseudo-inverse."""
    inv = _pinv(mc).to(mel.device, mel.dtype)
    return torch.clamp(torch.matmul(inv, torch.exp(mel)), min=0.0)


def griffin_lim_vocoder(
    mel: torch.Tensor,
    n_iter: int = 60,
    momentum: float = 0.99,
    mc: MelConfig = NVIDIA_MEL,
    length: int | None = None,
) -> torch.Tensor:
    """Log mel (B, M, T) -> waveform (B, T * hop) (or ``length`` samples)."""
    mag = mel_to_magnitude(mel.float(), mc)
    length = mel.shape[-1] * mc.hop if length is None else length
    return griffin_lim(
        mag,
        mc.n_fft,
        mc.hop,
        mc.win_length,
        n_iter=n_iter,
        momentum=momentum,
        length=length,
        pad_mode=_pad_mode(length, mc),
    )


class Denoiser:
    """NVIDIA's WaveGlow denoiser: the magnitude spectrum WaveGlow gives for an all-zero log mel at sigma 0
    (its characteristic hiss and hum), scaled by ``strength``, is subtracted from every frame's magnitude."""

    def __init__(self, waveglow: WaveGlow, mc: MelConfig = NVIDIA_MEL, frames: int = 88):
        self.mc = mc
        p = next(waveglow.parameters())
        with torch.no_grad():
            bias_audio = waveglow.infer(
                torch.zeros(1, mc.n_mels, frames, device=p.device, dtype=p.dtype), sigma=0.0
            )
        bias_audio = bias_audio.float()
        spec = stft(bias_audio, mc.n_fft, mc.hop, mc.win_length, pad_mode=_pad_mode(bias_audio.shape[-1], mc))
        self.bias = spec.abs()[:, :, :1]  # (1, F, 1): the first frame

    def __call__(self, audio: torch.Tensor, strength: float = 0.01) -> torch.Tensor:
        """(B, samples) -> (B, samples)."""
        mc = self.mc
        pad_mode = _pad_mode(audio.shape[-1], mc)
        spec = stft(audio.float(), mc.n_fft, mc.hop, mc.win_length, pad_mode=pad_mode)
        mag = torch.clamp(spec.abs() - self.bias.to(spec.device) * strength, min=0.0)
        spec = torch.polar(mag, torch.angle(spec))
        return istft(spec, mc.n_fft, mc.hop, mc.win_length, length=audio.shape[-1])
