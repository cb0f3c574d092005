"""The audio core every audio task uses: wav I/O, resampling, STFT / mel features, Griffin-Lim.

Plain torch + numpy (no torchaudio); soundfile is imported only by the functions that read or write files.
Every transform is batched over leading dimensions (``(..., T)`` in, ``(..., F, frames)`` out), keeps a
floating input's dtype (integer and half inputs become float32) and its device, and follows librosa's
conventions (periodic Hann window, centred frames with zero padding, Slaney mel scale, ``power_to_db``), so
features match librosa numerically: ``tests/core/test_audio.py`` checks each function against it.

Windows, mel filterbanks and resampling kernels are cached; treat what the cached helpers return as read-only.
"""

from __future__ import annotations

import functools
import math
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from aics.core.errors import UserError

__all__ = [
    "FeatureExtractor",
    "audio_info",
    "frame_count",
    "griffin_lim",
    "istft",
    "log_mel",
    "log_spectrogram",
    "loudness_normalize",
    "mel_filterbank",
    "peak_normalize",
    "read_wav",
    "resample",
    "spectrogram",
    "stft",
    "trim_silence",
    "write_wav",
]

# ----------------------------------------------------------------------------------------------------------
# File I/O


def _unreadable(path: Path, reason: object) -> UserError:
    reason = " ".join(str(reason).split()) or "unknown reason"  # one line, whatever libsndfile said
    return UserError(f"{path}: not a readable audio file ({reason}); re-create or remove it")


def _check_audio_path(path: Path) -> None:
    if not path.exists():
        raise UserError(f"{path}: audio file not found; check the path or re-create the file")
    if path.is_dir():
        raise UserError(f"{path}: is a directory, expected an audio file; check the path")


def _empty(path: Path) -> UserError:
    return UserError(f"{path}: audio file has no samples; re-create or remove it")


def audio_info(path: str | os.PathLike) -> tuple[int, int, int]:
    """``(frames, sample_rate, channels)`` read from the header only (cheap).

    A missing, unreadable or empty file raises ``UserError`` naming it, like ``read_wav``.
    """
    import soundfile

    path = Path(path)
    _check_audio_path(path)
    try:
        info = soundfile.info(str(path))
    except (soundfile.SoundFileError, RuntimeError, TypeError, ValueError) as e:
        raise _unreadable(path, getattr(e, "error_string", e)) from None
    if info.frames <= 0:
        raise _empty(path)
    return int(info.frames), int(info.samplerate), int(info.channels)


def read_wav(path: str | os.PathLike, sr: int | None = None, mono: bool = True) -> tuple[torch.Tensor, int]:
    """Read an audio file as float32 in [-1, 1]: ``((T,), sr)`` if ``mono`` (channels averaged), else
    ``((C, T), sr)``; resampled (``resample``) when ``sr`` is given and differs from the file's rate.

    A missing, unreadable or empty file raises ``UserError`` with one line naming it.
    """
    import soundfile

    path = Path(path)
    _check_audio_path(path)
    try:
        data, file_sr = soundfile.read(str(path), dtype="float32", always_2d=True)  # (T, C)
    except (soundfile.SoundFileError, RuntimeError, TypeError, ValueError) as e:
        raise _unreadable(path, getattr(e, "error_string", e)) from None
    if data.shape[0] == 0 or data.shape[1] == 0:
        raise _empty(path)
    wav = torch.from_numpy(np.ascontiguousarray(data.T))  # (C, T)
    if mono:
        wav = wav.mean(dim=0)  # (T,)
    if sr is not None and sr != file_sr:
        wav = resample(wav, int(file_sr), int(sr))
        file_sr = sr
    return wav, int(file_sr)


def write_wav(
    path: str | os.PathLike, wav: torch.Tensor | np.ndarray, sr: int, subtype: str = "PCM_16"
) -> None:
    """Write ``wav`` ((T,) or (C, T), tensor or array) atomically, clipped to [-1, 1].

    The container follows the suffix (``.flac``, ``.ogg``, ...; WAV for ``.wav`` or an unknown suffix);
    ``subtype`` is soundfile's (``PCM_16``, ``PCM_24``, ``FLOAT``, ...).
    """
    import soundfile

    from aics.core.io import atomic_write

    if isinstance(wav, torch.Tensor):
        wav = wav.detach().to("cpu", torch.float32).numpy()
    data = np.asarray(wav, dtype=np.float32)
    if data.ndim not in (1, 2):
        raise ValueError(f"write_wav: expected a (T,) or (C, T) waveform, got shape {tuple(data.shape)}")
    data = np.clip(data, -1.0, 1.0)
    if data.ndim == 2:
        data = np.ascontiguousarray(data.T)  # soundfile wants (T, C)
    suffix = Path(path).suffix[1:].upper()
    fmt = suffix if suffix in soundfile.available_formats() else "WAV"
    if not soundfile.check_format(fmt, subtype):
        raise ValueError(
            f"write_wav: subtype {subtype!r} cannot be written as {fmt}; try PCM_16, PCM_24 or FLOAT"
        )
    with atomic_write(path, "wb") as f:
        soundfile.write(f, data, int(sr), subtype=subtype, format=fmt)


# ----------------------------------------------------------------------------------------------------------
# Small helpers


def _as_float(wav: torch.Tensor | np.ndarray) -> torch.Tensor:
    """A floating tensor (float32 unless already float32/float64): STFT and conv need full precision."""
    if isinstance(wav, np.ndarray):
        wav = torch.from_numpy(wav)
    if wav.dtype not in (torch.float32, torch.float64):
        wav = wav.to(torch.float32)
    return wav


@functools.lru_cache(maxsize=64)
def _window(name: str, win_length: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """Periodic (DFT-even) window as ``scipy.signal.get_window(name, N, fftbins=True)``; cached, read-only."""
    phase = 2.0 * np.pi * np.arange(win_length) / win_length
    if name in ("hann", "hanning"):
        w = 0.5 - 0.5 * np.cos(phase)
    elif name == "hamming":
        w = 0.54 - 0.46 * np.cos(phase)
    elif name == "blackman":
        w = 0.42 - 0.5 * np.cos(phase) + 0.08 * np.cos(2.0 * phase)
    elif name in ("boxcar", "rect", "ones"):
        w = np.ones(win_length)
    else:
        raise ValueError(f"unknown window {name!r}; use hann, hamming, blackman or boxcar")
    return torch.from_numpy(w).to(device=device, dtype=dtype)


def _flatten(x: torch.Tensor, keep: int) -> tuple[torch.Tensor, tuple[int, ...]]:
    """Fold all but the last ``keep`` dims into one batch dim; returns the tensor and the leading shape."""
    lead = tuple(x.shape[: x.dim() - keep])
    return x.reshape((-1, *x.shape[x.dim() - keep :])), lead


def frame_count(num_samples: int, hop_length: int, center: bool = True, n_fft: int | None = None) -> int:
    """The number of STFT frames of ``num_samples`` samples (what ``stft`` / librosa.stft return).

    Centred: ``1 + (num_samples + 2 * (n_fft // 2) - n_fft) // hop_length``, which is
    ``1 + num_samples // hop_length`` for an even or unknown ``n_fft``; not centred:
    ``1 + (num_samples - n_fft) // hop_length``, or 0 if there are fewer than ``n_fft`` samples.
    """
    if center:
        extra = 0 if n_fft is None else 2 * (n_fft // 2) - n_fft  # -1 for an odd n_fft
        return 1 + (num_samples + extra) // hop_length
    if n_fft is None:
        raise ValueError("frame_count: n_fft is needed when center=False")
    return 0 if num_samples < n_fft else 1 + (num_samples - n_fft) // hop_length


# ----------------------------------------------------------------------------------------------------------
# Resampling


@functools.lru_cache(maxsize=32)
def _resample_kernel(
    up: int,
    down: int,
    rolloff: float,
    zero_crossings: int,
    beta: float,
    dtype: torch.dtype,
    device: torch.device,
) -> tuple[torch.Tensor, int]:
    """Polyphase windowed-sinc kernel ``(up, 1, down + 2 * J)`` and its half width ``J`` in input samples.

    Output sample ``n = q * up + p`` sits at input time ``q * down + off_p + frac_p`` with
    ``off_p + frac_p = p * down / up`` (exact integer arithmetic). Phase ``p``'s row holds, at column
    ``off_p + j + J``, the weight of input sample ``q * down + off_p + j``: a Kaiser-windowed sinc of the
    distance ``frac_p - j``, low-passed at ``rolloff`` times the lower of the two Nyquist frequencies.
    """
    cutoff = rolloff * min(1.0, up / down)  # as a fraction of the input's Nyquist frequency
    half_width = zero_crossings / cutoff  # in input samples
    J = math.ceil(half_width)
    p = np.arange(up)
    off = (p * down) // up  # (up,)
    frac = (p * down % up) / up  # (up,) in [0, 1)
    j = np.arange(-J, J + 1)
    dist = frac[:, None] - j[None, :]  # (up, 2J+1)
    u = np.clip(dist / half_width, -1.0, 1.0)
    taper = np.where(np.abs(dist) <= half_width, np.i0(beta * np.sqrt(1.0 - u * u)) / np.i0(beta), 0.0)
    taps = cutoff * np.sinc(cutoff * dist) * taper
    # Unit DC gain for every phase, so a constant stays exactly constant (the raw sums differ by ~1e-5).
    taps /= taps.sum(axis=1, keepdims=True)
    kernel = np.zeros((up, down + 2 * J))
    kernel[p[:, None], off[:, None] + j[None, :] + J] = taps
    return torch.from_numpy(kernel).to(device=device, dtype=dtype).unsqueeze(1), J


def resample(
    wav: torch.Tensor,
    orig_sr: int,
    new_sr: int,
    *,
    rolloff: float = 0.95,
    zero_crossings: int = 48,
    beta: float = 7.86,
) -> torch.Tensor:
    """Band-limited resampling: ``(..., T)`` at ``orig_sr`` -> ``(..., ceil(T * new_sr / orig_sr))``.

    Windowed-sinc polyphase filtering with the gcd-reduced ratio ``up / down``: output sample ``n`` is the
    band-limited interpolation at input time ``n * orig_sr / new_sr`` (no delay, like soxr and librosa), and
    the length convention is librosa's ``ceil(T * new_sr / orig_sr)`` (computed in exact integers). Samples
    beyond the ends count as zeros. The low-pass is centred at ``rolloff`` times the lower Nyquist frequency
    with ``zero_crossings`` sinc zero crossings per side under a Kaiser window (``beta``): with the defaults
    the passband is flat (< 0.01 dB) to about 0.9 and the stopband (-80 dB or less) starts at 1.0 of the lower
    Nyquist frequency, close to soxr's "HQ" setting.
    """
    wav = _as_float(wav)
    if orig_sr <= 0 or new_sr <= 0:
        raise ValueError(f"resample: sample rates must be positive, got {orig_sr} -> {new_sr}")
    if orig_sr == new_sr:
        return wav
    g = math.gcd(int(orig_sr), int(new_sr))
    up, down = int(new_sr) // g, int(orig_sr) // g
    half_width = math.ceil(zero_crossings / (rolloff * min(1.0, up / down)))
    if up * (down + 2 * half_width) > 1 << 24:  # the kernel table would pass 64 MB in float32
        raise ValueError(
            f"resample: {orig_sr} -> {new_sr} Hz reduces to {up}/{down}, too many polyphase filters; "
            "resample through a rate with a simpler ratio"
        )
    x, lead = _flatten(wav, 1)  # (B, T)
    T = x.shape[-1]
    if T == 0:
        return wav.new_zeros(*lead, 0)
    kernel, J = _resample_kernel(
        up, down, float(rolloff), int(zero_crossings), float(beta), wav.dtype, wav.device
    )
    n_out = -(-T * up // down)  # ceil in exact integer arithmetic
    n_blocks = -(-n_out // up)  # q = 0 .. n_blocks-1, each block yields `up` outputs
    needed = (n_blocks - 1) * down + kernel.shape[-1]  # padded input length the last block reads
    x = F.pad(x, (J, max(0, needed - J - T)))  # zeros beyond both ends
    y = F.conv1d(x.unsqueeze(1), kernel, stride=down)  # (B, up, n_blocks)
    y = y[..., :n_blocks].transpose(1, 2).reshape(x.shape[0], -1)[:, :n_out]  # (B, n_out)
    return y.reshape(*lead, n_out)


# ----------------------------------------------------------------------------------------------------------
# STFT and friends

_PAD_MODES = {"constant": "constant", "reflect": "reflect", "edge": "replicate"}


def _spectrum(
    wav: torch.Tensor,
    n_fft: int,
    hop_length: int,
    win_length: int | None,
    window: str,
    center: bool,
    pad_mode: str,
) -> tuple[torch.Tensor, tuple[int, ...]]:
    """Time-major STFT: ``(..., T)`` -> complex ``(B, frames, n_fft // 2 + 1)`` and the leading shape.

    Framing is a strided view and one batched rfft; the time-major layout keeps the power, mel and log steps
    on contiguous memory (and is what models want), so this beats ``torch.stft`` on CPU.
    """
    wav = _as_float(wav)
    win_length = n_fft if win_length is None else win_length
    if not 0 < win_length <= n_fft:
        raise ValueError(f"stft: win_length={win_length} must be in [1, n_fft={n_fft}]")
    if pad_mode not in _PAD_MODES:
        raise ValueError(f"stft: pad_mode={pad_mode!r} must be one of {sorted(_PAD_MODES)}")
    x, lead = _flatten(wav, 1)  # (B, T)
    if center:
        x = F.pad(x, (n_fft // 2, n_fft // 2), mode=_PAD_MODES[pad_mode])
    if x.shape[-1] < n_fft:
        raise ValueError(f"stft: {wav.shape[-1]} samples are too few for n_fft={n_fft} without centring")
    frames = x.unfold(-1, n_fft, hop_length)  # (B, N, n_fft), a view
    frames = frames * _centred_window(window, win_length, n_fft, x.dtype, x.device)  # contiguous copy
    return torch.fft.rfft(frames, dim=-1), lead  # (B, N, F)


def stft(
    wav: torch.Tensor,
    n_fft: int,
    hop_length: int,
    win_length: int | None = None,
    window: str = "hann",
    center: bool = True,
    pad_mode: str = "constant",
) -> torch.Tensor:
    """Short-time Fourier transform: ``(..., T)`` -> complex ``(..., n_fft // 2 + 1, frames)``.

    Equal to librosa.stft (same padding, window and frame positions).

    A periodic window of ``win_length`` (default ``n_fft``) centred in ``n_fft``; with ``center`` the signal
    is padded by ``n_fft // 2`` on both sides (``pad_mode``: constant, reflect or edge), so frame ``t`` is
    centred at sample ``t * hop_length``; ``frame_count`` gives the number of frames. The result is a
    transposed view of time-major memory (call ``.contiguous()`` before ``.view()``).
    """
    spec, lead = _spectrum(wav, n_fft, hop_length, win_length, window, center, pad_mode)  # (B, N, F)
    return spec.transpose(-1, -2).reshape(*lead, spec.shape[-1], spec.shape[-2])


def _power(spec: torch.Tensor, power: float) -> torch.Tensor:
    """``|spec| ** power`` as a new real tensor; may overwrite ``spec`` (callers pass a fresh spectrum)."""
    if power == 2.0:  # re^2 + im^2: abs() would pay for a hypot and a sqrt
        if spec.requires_grad:
            return spec.real.square() + spec.imag.square()
        parts = torch.view_as_real(spec).square_()  # (..., F, 2), one pass over contiguous memory
        return parts[..., 0] + parts[..., 1]
    if power == 1.0:
        return spec.abs()
    return spec.abs().pow_(power)


def _time_major_spectrogram(
    wav: torch.Tensor, n_fft: int, hop_length: int, win_length: int | None, power: float, center: bool
) -> tuple[torch.Tensor, tuple[int, ...]]:
    spec, lead = _spectrum(wav, n_fft, hop_length, win_length, "hann", center, "constant")
    return _power(spec, power), lead  # (B, N, F)


def _unflatten_freq_major(x: torch.Tensor, lead: tuple[int, ...]) -> torch.Tensor:
    """``(B, N, D)`` -> ``(*lead, D, N)`` (a transposed view: librosa's layout)."""
    return x.transpose(-1, -2).reshape(*lead, x.shape[-1], x.shape[-2])


def spectrogram(
    wav: torch.Tensor,
    n_fft: int,
    hop_length: int,
    win_length: int | None = None,
    power: float = 1.0,
    center: bool = True,
    window: str = "hann",
    pad_mode: str = "constant",
) -> torch.Tensor:
    """``|stft(wav)| ** power``: magnitude (``power=1``) or power (``2``) spectrogram ``(..., F, frames)``."""
    spec, lead = _spectrum(wav, n_fft, hop_length, win_length, window, center, pad_mode)
    return _unflatten_freq_major(_power(spec, power), lead)


def _check_log(log: str) -> None:
    if log not in ("db", "ln"):
        raise ValueError(f"log={log!r} must be 'db' or 'ln'")


def _log_(x: torch.Tensor, log: str, floor: float) -> torch.Tensor:
    """In place: ``10 * log10(max(x, floor))`` (``"db"``, librosa.power_to_db with ref=1) or ``ln``."""
    if x.device.type == "cpu" and not x.requires_grad and x.is_contiguous():
        # numpy's float32 log is SIMD-vectorised and ~5x faster than torch's on CPU; same memory, in place
        a = x.numpy()
        np.maximum(a, floor, out=a)
        if log == "db":
            np.log10(a, out=a)
            a *= 10.0
        else:
            np.log(a, out=a)
        return x
    if log == "db":
        return x.clamp_min_(floor).log10_().mul_(10.0)
    return x.clamp_min_(floor).log_()


def log_spectrogram(
    wav: torch.Tensor,
    n_fft: int,
    hop_length: int,
    win_length: int | None = None,
    power: float = 2.0,
    log: str = "db",
    floor: float = 1e-10,
    center: bool = True,
) -> torch.Tensor:
    """``log(max(|stft|^power, floor))`` ``(..., n_fft // 2 + 1, frames)`` (Hann window, zero padding).

    ``log="db"`` is ``10 * log10`` (librosa.power_to_db with ref=1, amin=floor, top_db=None): decibels of
    power when ``power=2``; ``log="ln"`` is the natural log (Kaldi / ESPnet style).
    """
    feats, lead = _log_features(wav, n_fft, hop_length, win_length, power, center, None, log, floor)
    return _unflatten_freq_major(feats, lead)


# ----------------------------------------------------------------------------------------------------------
# Mel scale

_SLANEY_HZ_PER_MEL = 200.0 / 3.0  # linear part, below 1 kHz
_SLANEY_BREAK_HZ = 1000.0
_SLANEY_LOG_STEP = math.log(6.4) / 27.0  # log part: 27 mels per factor 6.4 in frequency


def _hz_to_mel(hz: np.ndarray, htk: bool) -> np.ndarray:
    hz = np.asarray(hz, dtype=np.float64)
    if htk:
        return 2595.0 * np.log10(1.0 + hz / 700.0)
    break_mel = _SLANEY_BREAK_HZ / _SLANEY_HZ_PER_MEL
    log_part = break_mel + np.log(np.maximum(hz, _SLANEY_BREAK_HZ) / _SLANEY_BREAK_HZ) / _SLANEY_LOG_STEP
    return np.where(hz >= _SLANEY_BREAK_HZ, log_part, hz / _SLANEY_HZ_PER_MEL)


def _mel_to_hz(mel: np.ndarray, htk: bool) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    if htk:
        return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)
    break_mel = _SLANEY_BREAK_HZ / _SLANEY_HZ_PER_MEL
    log_part = _SLANEY_BREAK_HZ * np.exp(_SLANEY_LOG_STEP * (mel - break_mel))
    return np.where(mel >= break_mel, log_part, _SLANEY_HZ_PER_MEL * mel)


@functools.lru_cache(maxsize=32)
def _mel_filterbank_cached(
    sr: int,
    n_fft: int,
    n_mels: int,
    fmin: float,
    fmax: float | None,
    htk: bool,
    norm: str | None,
    dtype: torch.dtype,
    device: torch.device,
) -> torch.Tensor:
    if norm not in ("slaney", None):
        raise ValueError(f"mel norm={norm!r} must be 'slaney' or None")
    fmax = sr / 2.0 if fmax is None else fmax
    bins_hz = np.fft.rfftfreq(n_fft, d=1.0 / sr)  # (F,)
    # n_mels + 2 points evenly spaced in mel: filter m rises from edge m to m+1 and falls to m+2
    edges = _mel_to_hz(np.linspace(_hz_to_mel(fmin, htk), _hz_to_mel(fmax, htk), n_mels + 2), htk)
    left, centre, right = edges[:-2, None], edges[1:-1, None], edges[2:, None]  # (M, 1)
    rising = (bins_hz[None, :] - left) / (centre - left)  # (M, F)
    falling = (right - bins_hz[None, :]) / (right - centre)
    weights = np.maximum(0.0, np.minimum(rising, falling))
    if norm == "slaney":
        weights *= 2.0 / (right - left)  # every filter has unit area in Hz
    return torch.from_numpy(weights).to(device=device, dtype=dtype)


def mel_filterbank(
    sr: int,
    n_fft: int,
    n_mels: int,
    fmin: float = 0.0,
    fmax: float | None = None,
    htk: bool = False,
    norm: str | None = "slaney",
) -> torch.Tensor:
    """Triangular mel filters ``(n_mels, n_fft // 2 + 1)`` float32, equal to librosa.filters.mel.

    Slaney's scale (linear below 1 kHz, logarithmic above) or HTK's (``htk=True``); ``norm="slaney"`` gives
    every filter unit area, ``None`` unit peak. ``fmax`` defaults to ``sr / 2``. A fresh copy of a cached
    matrix.
    """
    return _mel_filterbank_cached(
        int(sr),
        int(n_fft),
        int(n_mels),
        float(fmin),
        _opt_float(fmax),
        bool(htk),
        norm,
        torch.float32,
        torch.device("cpu"),
    ).clone()


def log_mel(
    wav: torch.Tensor,
    sr: int,
    n_fft: int,
    hop_length: int,
    win_length: int | None = None,
    n_mels: int = 80,
    fmin: float = 0.0,
    fmax: float | None = None,
    htk: bool = False,
    norm: str | None = "slaney",
    power: float = 2.0,
    log: str = "db",
    floor: float = 1e-10,
    center: bool = True,
) -> torch.Tensor:
    """Log mel spectrogram ``(..., T)`` -> ``(..., n_mels, frames)``.

    With ``log="db"`` this equals ``librosa.power_to_db(librosa.feature.melspectrogram(...), ref=1.0,
    amin=floor, top_db=None)`` (``10 * log10``, whatever ``power`` is); ``log="ln"`` takes the natural log.
    """
    feats, lead = _log_mel_time_major(
        wav, sr, n_fft, hop_length, win_length, n_mels, fmin, fmax, htk, norm, power, log, floor, center
    )
    return _unflatten_freq_major(feats, lead)


def _log_mel_time_major(
    wav: torch.Tensor,
    sr: int,
    n_fft: int,
    hop_length: int,
    win_length: int | None,
    n_mels: int,
    fmin: float,
    fmax: float | None,
    htk: bool,
    norm: str | None,
    power: float,
    log: str,
    floor: float,
    center: bool,
) -> tuple[torch.Tensor, tuple[int, ...]]:
    wav = _as_float(wav)
    bands = _mel_bands(
        int(sr),
        int(n_fft),
        int(n_mels),
        float(fmin),
        _opt_float(fmax),
        bool(htk),
        norm,
        wav.dtype,
        wav.device,
    )
    return _log_features(wav, n_fft, hop_length, win_length, power, center, bands, log, floor)


_MEL_BAND = 16  # filters per product: MKL's small-matrix kernels are fastest at 16 columns


@functools.lru_cache(maxsize=32)
def _mel_bands(
    sr: int,
    n_fft: int,
    n_mels: int,
    fmin: float,
    fmax: float | None,
    htk: bool,
    norm: str | None,
    dtype: torch.dtype,
    device: torch.device,
) -> tuple[tuple[int, int, int, torch.Tensor], ...]:
    """The mel projection split into products over each group's frequency support: ``(lo, hi, drop, W)``
    with ``W`` ``(hi - lo, width)``, whose first ``drop`` output columns repeat the previous group's.

    Each filter covers a few bins only, so on CPU this does about a quarter of the dense product's work
    for the same sums. Elsewhere (GPU) one dense product is cheaper.
    """
    fb = _mel_filterbank_cached(sr, n_fft, n_mels, fmin, fmax, htk, norm, dtype, device)  # (M, F)
    if device.type != "cpu" or n_mels <= _MEL_BAND:
        return ((0, fb.shape[1], 0, fb.T.contiguous()),)
    bands = []
    for start in range(0, n_mels, _MEL_BAND):
        first = min(start, n_mels - _MEL_BAND)  # the last group reaches back to a full width
        group = fb[first : first + _MEL_BAND]  # (16, F)
        bins = torch.nonzero(group.abs().sum(dim=0)).flatten()
        lo, hi = (int(bins[0]), int(bins[-1]) + 1) if bins.numel() else (0, 1)
        bands.append((lo, hi, start - first, group[:, lo:hi].T.contiguous()))
    return tuple(bands)


def _opt_float(x: float | None) -> float | None:
    return None if x is None else float(x)


_MelBands = tuple[tuple[int, int, int, torch.Tensor], ...]


def _mel_project(power: torch.Tensor, bands: _MelBands, out: torch.Tensor | None = None) -> torch.Tensor:
    """``(..., F)`` power -> ``(..., M)`` mel energies through ``_mel_bands``' products."""
    parts = [torch.matmul(power[..., lo:hi], w)[..., drop:] for lo, hi, drop, w in bands]  # (..., <=16) each
    if out is not None:
        return torch.cat(parts, dim=-1, out=out)
    return parts[0] if len(parts) == 1 else torch.cat(parts, dim=-1)


# ----------------------------------------------------------------------------------------------------------
# The feature fast path

_CHUNK_BYTES = 1 << 21  # frames per step, sized so a step's buffers stay in a core's L2 cache


def _power_into(spec: torch.Tensor, power: float, out: torch.Tensor) -> None:
    """``out = |spec| ** power``; may overwrite ``spec``."""
    if power == 2.0:
        parts = torch.view_as_real(spec).square_()  # (..., F, 2)
        torch.add(parts[..., 0], parts[..., 1], out=out)
    else:
        torch.abs(spec, out=out)
        if power != 1.0:
            out.pow_(power)


def _log_features(
    wav: torch.Tensor,
    n_fft: int,
    hop_length: int,
    win_length: int | None,
    power: float,
    center: bool,
    bands: _MelBands | None,
    log: str,
    floor: float,
) -> tuple[torch.Tensor, tuple[int, ...]]:
    """Time-major log power (``bands=None``) or log mel features ``(B, frames, D)``, and the leading shape.

    On CPU without autograd the frames go through window, rfft, power, mel and into the output one
    cache-sized chunk at a time, in buffers allocated once per call. Besides keeping the memory of long
    inputs small, this avoids the page faults that fresh multi-megabyte temporaries cost on every call:
    they doubled the run time inside a VM. On GPU, or with gradients, it is plain whole-tensor code.
    """
    _check_log(log)
    wav = _as_float(wav)
    if wav.device.type != "cpu" or wav.requires_grad:
        spec, lead = _time_major_spectrogram(wav, n_fft, hop_length, win_length, power, center)  # (B, N, F)
        return _log_(spec if bands is None else _mel_project(spec, bands), log, floor), lead
    win_length = n_fft if win_length is None else win_length
    if not 0 < win_length <= n_fft:
        raise ValueError(f"stft: win_length={win_length} must be in [1, n_fft={n_fft}]")
    x, lead = _flatten(wav, 1)  # (B, T)
    B, T = x.shape
    pad = n_fft // 2 if center else 0
    if T + 2 * pad < n_fft:
        raise ValueError(f"stft: {T} samples are too few for n_fft={n_fft} without centring")
    n_frames = 1 + (T + 2 * pad - n_fft) // hop_length
    slots = -(-(T + 2 * pad) // hop_length)  # frame slots per item, >= n_frames
    # The batch in one flat zero-padded buffer, slots * hop samples per item, so that one strided view frames
    # every item: item b's frame t is row b * slots + t; the few rows that straddle two items are dropped.
    flat = x.new_zeros(B * slots * hop_length + n_fft)
    flat[: B * slots * hop_length].view(B, slots * hop_length)[:, pad : pad + T] = x
    frames = flat.unfold(0, n_fft, hop_length)  # (B * slots + 1, n_fft), a view
    window = _centred_window("hann", win_length, n_fft, x.dtype, x.device)
    n_bins = n_fft // 2 + 1
    dim = n_bins if bands is None else sum(w.shape[1] - drop for _, _, drop, w in bands)
    out = x.new_empty(B, n_frames, dim)
    rows = max(1, _CHUNK_BYTES // (4 * n_fft))  # frames per step
    if slots <= rows:  # whole items per step: compute all their slots, copy out the real frames
        per_step = rows // slots
        steps = [
            (b * slots, min(B, b + per_step) * slots, out[b : b + per_step]) for b in range(0, B, per_step)
        ]
    else:  # one long item over several steps, written straight into the output
        steps = [
            (b * slots + t, b * slots + min(n_frames, t + rows), out[b, t : t + rows])
            for b in range(B)
            for t in range(0, n_frames, rows)
        ]
    rows = max(stop - start for start, stop, _ in steps)
    framed = x.new_empty(rows, n_fft)
    spec = torch.empty(rows, n_bins, dtype=torch.complex128 if x.dtype == torch.float64 else torch.complex64)
    power_buf = x.new_empty(rows, n_bins)
    result_buf = x.new_empty(rows, dim)
    for start, stop, dest in steps:
        m = stop - start
        torch.mul(frames[start:stop], window, out=framed[:m])  # (m, n_fft)
        torch.fft.rfft(framed[:m], dim=-1, out=spec[:m])  # (m, F)
        whole_items = dest.dim() == 3
        target = power_buf[:m] if whole_items or bands is not None else dest
        _power_into(spec[:m], power, target)  # (m, F)
        if bands is not None:
            target = _mel_project(target, bands, out=result_buf[:m] if whole_items else dest)  # (m, M)
        if whole_items:
            dest.copy_(target.view(-1, slots, dim)[:, :n_frames])
    return _log_(out, log, floor), lead


# ----------------------------------------------------------------------------------------------------------
# Inverse STFT and Griffin-Lim


@functools.lru_cache(maxsize=16)  # one per signal length in use; Griffin-Lim reuses one
def _window_envelope(
    window: str, win_length: int, n_fft: int, hop_length: int, n_frames: int, dtype: torch.dtype, device
) -> torch.Tensor:
    """Overlap-added squared window ``(n_fft + hop * (n_frames - 1),)``: what istft divides by."""
    sq = _centred_window(window, win_length, n_fft, dtype, device).square()
    return _overlap_add(sq[None, :, None].expand(1, n_fft, n_frames), hop_length)[0]


@functools.lru_cache(maxsize=64)
def _centred_window(
    window: str, win_length: int, n_fft: int, dtype: torch.dtype, device: torch.device
) -> torch.Tensor:
    """``_window`` zero-padded to ``n_fft`` on both sides (librosa's pad_center); cached, read-only."""
    w = _window(window, win_length, dtype, device)
    left = (n_fft - win_length) // 2
    return F.pad(w, (left, n_fft - win_length - left))  # (n_fft,)


def _overlap_add(frames: torch.Tensor, hop_length: int) -> torch.Tensor:
    """``(B, n_fft, N)`` frames -> ``(B, n_fft + hop * (N - 1))`` summed at their offsets ``t * hop``."""
    n_fft, n = frames.shape[-2:]
    length = n_fft + hop_length * (n - 1)
    out = F.fold(frames, output_size=(1, length), kernel_size=(1, n_fft), stride=(1, hop_length))
    return out.reshape(frames.shape[0], length)


def istft(
    spec: torch.Tensor,
    n_fft: int,
    hop_length: int,
    win_length: int | None = None,
    window: str = "hann",
    center: bool = True,
    length: int | None = None,
) -> torch.Tensor:
    """Inverse of ``stft``: complex ``(..., n_fft // 2 + 1, frames)`` -> ``(..., samples)``, as librosa.istft.

    Weighted overlap-add divided by the summed squared window (left as is where that sum is ~0). Without
    ``length`` the output has ``hop * (frames - 1)`` samples (centred, even ``n_fft``); with it, exactly
    ``length`` (frames past the end are ignored, missing samples are zeros).
    """
    if isinstance(spec, np.ndarray):
        spec = torch.from_numpy(spec)
    win_length = n_fft if win_length is None else win_length
    if spec.shape[-2] != n_fft // 2 + 1:
        raise ValueError(f"istft: {spec.shape[-2]} frequency bins do not match n_fft={n_fft}")
    z, lead = _flatten(spec, 2)  # (B, F, N)
    pad = n_fft // 2 if center else 0
    if length is not None:
        z = z[..., : min(z.shape[-1], math.ceil((length + 2 * pad) / hop_length))]
    n_frames = z.shape[-1]
    real_dtype = z.real.dtype
    win = _centred_window(window, win_length, n_fft, real_dtype, z.device)
    frames = torch.fft.irfft(z, n=n_fft, dim=-2) * win[:, None]  # (B, n_fft, N)
    y = _overlap_add(frames, hop_length)  # (B, L_full)
    env = _window_envelope(window, win_length, n_fft, hop_length, n_frames, real_dtype, z.device)
    full = y.shape[-1]
    out_len = full - 2 * pad if length is None else length
    stop = min(full, pad + out_len)
    y, env = y[:, pad:stop], env[pad:stop]
    tiny = torch.finfo(real_dtype).tiny
    y = torch.where(env > tiny, y / torch.where(env > tiny, env, 1.0), y)
    if y.shape[-1] < out_len:
        y = F.pad(y, (0, out_len - y.shape[-1]))
    return y.reshape(*lead, out_len)


def griffin_lim(
    magnitude: torch.Tensor,
    n_fft: int,
    hop_length: int,
    win_length: int | None = None,
    n_iter: int = 32,
    momentum: float = 0.99,
    init: str = "zeros",
    seed: int = 0,
    length: int | None = None,
    window: str = "hann",
    center: bool = True,
    pad_mode: str = "constant",
) -> torch.Tensor:
    """Fast Griffin-Lim: magnitude ``(..., n_fft // 2 + 1, frames)`` -> waveform ``(..., samples)``.

    The same iteration as librosa.griffinlim: start from zero phase (``init="zeros"``, librosa's
    ``init=None``) or uniformly random phase (``"random"``, from a torch generator seeded with ``seed``; it
    cannot reproduce librosa's numpy stream); then ``n_iter`` times: ``x = istft(S * phase)``,
    ``R = stft(x)``, ``phase = angle(R - momentum / (1 + momentum) * R_prev)`` (no momentum term on the
    first iteration), and finally ``istft`` once more. With ``init="zeros"`` the result equals librosa's up
    to floating-point rounding (see the tests for the tolerance).
    """
    if momentum < 0:
        raise ValueError(f"griffin_lim: momentum={momentum} must be >= 0")
    if init not in ("zeros", "random"):
        raise ValueError(f"griffin_lim: init={init!r} must be 'zeros' or 'random'")
    mag = _as_float(magnitude)
    n_frames = mag.shape[-1]
    if init == "random":
        gen = torch.Generator().manual_seed(seed)
        phase = torch.rand(mag.shape, generator=gen, dtype=mag.dtype).to(mag.device)
        angles = torch.polar(mag, 2.0 * math.pi * phase)
    else:
        angles = torch.complex(mag, torch.zeros_like(mag))
    eps = torch.finfo(mag.dtype).tiny
    decay = momentum / (1.0 + momentum)
    rebuilt_prev = None
    for _ in range(n_iter):
        inverse = istft(angles, n_fft, hop_length, win_length, window, center, length)
        rebuilt = stft(inverse, n_fft, hop_length, win_length, window, center, pad_mode)
        if rebuilt.shape[-1] != n_frames:  # a `length` inconsistent with the frame count
            rebuilt = F.pad(rebuilt, (0, max(0, n_frames - rebuilt.shape[-1])))[..., :n_frames]
        angles = rebuilt if rebuilt_prev is None else rebuilt - decay * rebuilt_prev
        angles = angles / (angles.abs() + eps) * mag
        rebuilt_prev = rebuilt
    return istft(angles, n_fft, hop_length, win_length, window, center, length)


# ----------------------------------------------------------------------------------------------------------
# Level and silence


def peak_normalize(wav: torch.Tensor, peak: float = 0.95) -> torch.Tensor:
    """Scale each waveform (last dim) so its largest ``|sample|`` is ``peak``; silence stays as it is."""
    wav = _as_float(wav)
    top = wav.abs().amax(dim=-1, keepdim=True)
    return wav * torch.where(top > 0, peak / top.clamp_min(torch.finfo(wav.dtype).tiny), 1.0)


def loudness_normalize(wav: torch.Tensor, target_dbfs: float = -23.0) -> torch.Tensor:
    """Scale each waveform (over the last dim) to an RMS level of ``target_dbfs`` dB re full scale.

    Near-silent inputs (RMS below -100 dBFS) are returned unscaled rather than blown up. The result is not
    clipped: follow with ``peak_normalize`` or a clamp if peaks must stay within [-1, 1].
    """
    wav = _as_float(wav)
    rms = wav.square().mean(dim=-1, keepdim=True).sqrt()
    gain = torch.where(rms > 1e-5, 10.0 ** (target_dbfs / 20.0) / rms.clamp_min(1e-5), 1.0)
    return wav * gain


def trim_silence(
    wav: torch.Tensor, top_db: float = 40.0, frame_length: int = 2048, hop_length: int = 512
) -> tuple[torch.Tensor, tuple[int, int]]:
    """Cut leading and trailing silence like librosa.effects.trim: ``(wav[..., start:end], (start, end))``.

    A frame (centred, zero padded) is silent when its RMS is more than ``top_db`` below the loudest frame's;
    ``start`` is the first non-silent frame's start ``t * hop_length``, ``end`` the last one's
    ``(t + 1) * hop_length`` (at most the length). Leading dims (channels) count as one signal: a frame is
    non-silent if any channel is. All-zero input is returned whole (no frame is quieter than the loudest).
    The default ``top_db`` is 40, stricter than librosa's 60.
    """
    wav = _as_float(wav)
    x, _ = _flatten(wav, 1)  # (C, T)
    T = x.shape[-1]
    half = frame_length // 2
    padded = F.pad(x.square(), (half, half))  # (C, T + 2 * half): the zero padding of centred frames
    ms = F.avg_pool1d(padded.unsqueeze(1), frame_length, stride=hop_length).squeeze(1)  # (C, N) mean square
    # librosa.amplitude_to_db(rms, ref=max) with amin=1e-5, compared in power (rms^2, amin^2 = 1e-10)
    db = 10.0 * torch.log10(ms.clamp_min(1e-10)) - 10.0 * torch.log10(
        ms.amax(dim=-1, keepdim=True).clamp_min(1e-10)
    )
    loud = torch.nonzero(db.amax(dim=0) > -top_db).flatten()
    if loud.numel() == 0:
        start = end = 0
    else:
        start = int(loud[0]) * hop_length
        end = min(T, (int(loud[-1]) + 1) * hop_length)
    return wav[..., start:end], (start, end)


# ----------------------------------------------------------------------------------------------------------
# Model features


class FeatureExtractor:
    """Waveforms -> time-major model features: ``(..., T)`` -> ``(..., frames, dim)``.

    ``kind="logmel"``: ``log_mel`` features, ``dim = n_mels``; ``kind="logspec"``: ``log_spectrogram``,
    ``dim = n_fft // 2 + 1``. All other arguments mean what they mean there (``sr``, ``fmin``, ``fmax``,
    ``htk`` and ``norm`` only matter for ``logmel``). ``num_frames(num_samples)`` gives the frame count for an
    int or a tensor of lengths (e.g. to turn padded-batch sample lengths into feature lengths); frames of a
    batch padded to ``T`` samples are ``num_frames(T)``. Holds no parameters; build it from the config.
    """

    def __init__(
        self,
        kind: str = "logmel",
        sr: int = 16000,
        n_fft: int = 400,
        hop_length: int = 160,
        win_length: int | None = None,
        n_mels: int = 80,
        fmin: float = 0.0,
        fmax: float | None = None,
        htk: bool = False,
        norm: str | None = "slaney",
        power: float = 2.0,
        log: str = "db",
        floor: float = 1e-10,
        center: bool = True,
    ) -> None:
        if kind not in ("logmel", "logspec"):
            raise ValueError(f"FeatureExtractor: kind={kind!r} must be 'logmel' or 'logspec'")
        if log not in ("db", "ln"):
            raise ValueError(f"FeatureExtractor: log={log!r} must be 'db' or 'ln'")
        self.kind, self.sr, self.n_fft, self.hop_length = kind, sr, n_fft, hop_length
        self.win_length = n_fft if win_length is None else win_length
        self.n_mels, self.fmin, self.fmax, self.htk, self.norm = n_mels, fmin, fmax, htk, norm
        self.power, self.log, self.floor, self.center = power, log, floor, center

    @property
    def dim(self) -> int:
        """Feature size per frame."""
        return self.n_mels if self.kind == "logmel" else self.n_fft // 2 + 1

    def num_frames(self, num_samples: int | torch.Tensor) -> int | torch.Tensor:
        """Frames for ``num_samples`` samples (an int, or a tensor of per-item lengths)."""
        if isinstance(num_samples, torch.Tensor):
            if self.center:
                return 1 + (num_samples + 2 * (self.n_fft // 2) - self.n_fft) // self.hop_length
            return ((num_samples - self.n_fft) // self.hop_length + 1).clamp_min(0)
        return frame_count(int(num_samples), self.hop_length, self.center, self.n_fft)

    def __call__(self, wav: torch.Tensor) -> torch.Tensor:
        if self.kind == "logmel":
            feats, lead = _log_mel_time_major(
                wav,
                self.sr,
                self.n_fft,
                self.hop_length,
                self.win_length,
                self.n_mels,
                self.fmin,
                self.fmax,
                self.htk,
                self.norm,
                self.power,
                self.log,
                self.floor,
                self.center,
            )
        else:
            feats, lead = _log_features(
                wav,
                self.n_fft,
                self.hop_length,
                self.win_length,
                self.power,
                self.center,
                None,
                self.log,
                self.floor,
            )
        return feats.reshape(*lead, *feats.shape[-2:])  # (..., frames, dim), contiguous

    def __repr__(self) -> str:
        extra = (
            f", sr={self.sr}, n_mels={self.n_mels}, fmin={self.fmin}, fmax={self.fmax}, htk={self.htk}, "
            f"norm={self.norm!r}"
            if self.kind == "logmel"
            else ""
        )
        return (
            f"FeatureExtractor(kind={self.kind!r}, n_fft={self.n_fft}, hop_length={self.hop_length}, "
            f"win_length={self.win_length}{extra}, power={self.power}, log={self.log!r}, floor={self.floor}, "
            f"center={self.center})"
        )
