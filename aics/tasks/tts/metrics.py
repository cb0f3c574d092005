"""Synthesis scores: mel cepstral distortion after dynamic time warping (MCD-DTW), and attention health.

Mel cepstral distortion
-----------------------
Kubichek (1993): between two frames of mel cepstra ``c`` and ``c'``,

    MCD = (10 / ln 10) * sqrt(2 * sum_{d=1}^{D} (c_d - c'_d) ** 2)   [dB]

with ``c_0`` (the frame's log gain) left out. With ``log|X(w)| = sum_m c_m cos(m w~)`` this is the RMS
difference of the two log-amplitude spectra in dB over the warped frequency ``w~`` (Parseval), with each
spectrum's mean level removed.

The mel cepstra (``mel_cepstrum``) are the frequency-warped real cepstrum of the STFT power spectrum: what
SPTK's ``sp2mc`` (pysptk) computes from a power spectrum, and the value SPTK's ``mcep`` starts its Newton
iterations from:

1. power spectrum ``P`` (T, F) of a Hann-windowed STFT (``aics.core.audio.spectrogram``: centred frames,
   zero padding; defaults ``n_fft=1024``, ``hop_length=256``: Tacotron2's frame grid at 22.05 kHz);
2. floored at ``floor_db`` (120) dB below the utterance's largest bin: it only guards ``log 0`` for speech,
   and being relative it keeps the cepstra (less ``c_0``) independent of the level;
3. the real cepstrum of the log-amplitude spectrum ``log|X| = log(P) / 2``, one-sided:
   ``a = irfft(log P)[: n_fft // 2 + 1]`` with ``a_0`` and ``a_{n_fft/2}`` halved, so that
   ``log|X(w)| = sum_n a_n cos(n w)``;
4. warped by the first-order all-pass ``z~^-1 = (z^-1 - alpha) / (1 - alpha z^-1)`` (Oppenheim's ``freqt``):
   ``sum_n a_n z^-n = sum_m c_m z~^-m``, truncated after ``c_{order}``. Equivalently ``c_m`` are the cosine
   coefficients of ``log|X|`` as a function of the warped frequency ``w~ = w + 2 atan(alpha sin w /
   (1 - alpha cos w))``. The default ``alpha`` is the all-pass constant that best fits the mel scale at the
   sample rate (``mel_alpha``: 0.455 at 22.05 kHz, 0.41 at 16 kHz, as ``pysptk.util.mcepalpha``).

The default order is 24 (25 coefficients): at 22.05 kHz and ``alpha = 0.455`` the harmonics of a 250 Hz voice
show up near warped quefrency 33, so order 34 would measure pitch as well as the spectral envelope (the
periodogram has no pitch-adaptive smoothing like WORLD's CheapTrick). On a synthetic vowel sequence, raising
F0 by 10 % gives 1.7 dB at order 24 and 3.3 dB at order 34.

Alignment and averaging (``mcd_dtw``): leading and trailing silence is cut from both waveforms first
(``aics.core.audio.trim_silence`` at ``top_db=40`` on the analysis frames; ``None`` keeps it): silences of
different lengths at the ends would otherwise be paired with speech (the path is pinned to both ends) or add
cheap silence pairs to the average. Then an exact DTW over the Euclidean distances of ``c_1 .. c_D``
(steps (1, 0), (0, 1), (1, 1), each of weight 1, from the first pair of frames to the last), and the MCD is
the mean of the frame distances over the path's pairs. This is how ESPnet's ``evaluate_mcd.py`` and pymcd's
``"dtw"`` mode average (the mean over path pairs); Shannon's ``mcd`` package divides the path's total by the
reference's frame count instead. Where this differs from them:

- ESPnet uses SPTK's iterative ``mcep`` (Hamming window, order 34, alpha 0.45) and keeps ``c_0`` in both the
  DTW and the distance; pymcd uses WORLD's envelope (order 13, alpha 0.65) and keeps ``c_0`` in the
  distance but not in the DTW. With ``c_0`` the MCD also measures loudness: a copy at 0.3 times the
  amplitude scores 7.4 dB in ESPnet and 9.4 dB in pymcd, 0 here. ``include_c0=True`` keeps it in the DTW and
  the distance here.
- Both align with fastdtw (an approximation with radius 1); this DTW is exact.
- Neither trims silence.

So the numbers are comparable between runs of this code, not with published ESPnet MCDs (with ESPnet's order,
alpha and ``c_0`` and no trimming, they came within 0.7 dB of ESPnet's on speech-like test signals).

Attention health
----------------
For one decoded utterance's alignment ``(decoder steps T, text positions N)`` (``attention_health``),
restricted to its first ``text_length`` positions and ``n_steps`` steps, with ``p_t`` the argmax position at
step ``t``:

- monotonic: the argmax reaches the start of the text (one of the first ``start_slack + 1`` = 3 symbols) and
  from then on every move ``p_t - p_{t-1}`` lies in ``[-max_back, max_forward]`` (defaults 1 back, 3 forward:
  a character is spoken over several steps, so a larger jump skips text and a larger step back repeats it).
  The steps before it are the leading silence, where a voice may rest its attention on a word boundary
  before it starts on the first symbol: ``first_step`` counts them;
- reaches the end: the last step's argmax is within ``end_slack`` (2) positions of the last symbol,
  ``p_{T-1} >= text_length - 1 - end_slack``;
- focus rate (FastSpeech, Ren et al. 2019): the mean over steps of the largest attention weight, 1.0 for a
  hard alignment.

``attention_summary`` gives, over a test set, the share of monotonic utterances, the share reaching the end,
the mean focus rate and how many decodes hit the decoder's step limit.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence

import numpy as np

# 10 / ln 10 * sqrt(2): the MCD of two frames is this times the Euclidean distance of their cepstra
MCD_SCALE = 10.0 / math.log(10.0) * math.sqrt(2.0)

_CHUNK_ELEMENTS = 1 << 22  # float64 differences per step of the pairwise distances (32 MB)


def _as_array(x, name: str, ndim: int) -> np.ndarray:
    """A float64 numpy copy-or-view of a numpy array, torch tensor or nested list with ``ndim`` dims."""
    if hasattr(x, "detach"):  # a torch tensor (torch itself is not imported for this)
        x = x.detach().cpu().double().numpy()
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimension(s), got shape {a.shape}")
    return a


# ----------------------------------------------------------------------------------------------------------
# Mel cepstra


@functools.lru_cache(maxsize=16)
def mel_alpha(sr: float) -> float:
    """The all-pass constant whose frequency warping best fits the mel scale at sample rate ``sr``.

    Least squares between the warped frequency ``w~(w)`` and Fant's mel scale ``ln(1 + f / 1000)``, on the
    1000 frequencies ``k * sr / 2000`` (k = 0 .. 999), each curve scaled to 1 at the last of them, over alpha
    in steps of 0.001 (the fit of ``pysptk.util.mcepalpha``): 0.410 at 16 kHz, 0.455 at 22.05 kHz, 0.466 at
    24 kHz, 0.544 at 44.1 kHz, 0.554 at 48 kHz.
    """
    if sr <= 0:
        raise ValueError(f"mel_alpha: sr={sr} must be positive")
    f = np.arange(1000) * (sr / 2.0 / 1000)  # (1000,) Hz
    mel = np.log1p(f / 1000.0)
    mel /= mel[-1]
    w = np.pi * f / (sr / 2.0)
    alphas = np.arange(1000) / 1000.0  # (A,)
    warped = _warp_frequency(w[None, :], alphas[:, None])  # (A, 1000)
    warped /= warped[:, -1:]
    return float(alphas[np.argmin(np.square(warped - mel).sum(axis=1))])


def _warp_frequency(w: np.ndarray, alpha: float | np.ndarray) -> np.ndarray:
    """The all-pass's frequency map ``w~ = w + 2 atan(alpha sin w / (1 - alpha cos w))``: 0 -> 0, pi -> pi."""
    return w + 2.0 * np.arctan2(alpha * np.sin(w), 1.0 - alpha * np.cos(w))


@functools.lru_cache(maxsize=8)
def _warp_matrix(n_in: int, order: int, alpha: float) -> np.ndarray:
    """``W`` (order + 1, n_in) with ``c~ = W @ c``: column ``n`` holds the first ``order + 1`` power-series
    coefficients of ``A(z~) ** n``, where ``z^-1 = A(z~) = (alpha + z~^-1) / (1 + alpha z~^-1)``; cached,
    read-only."""
    # A(z~) = alpha + (1 - alpha^2) * sum_{k>=1} (-alpha)^(k-1) z~^-k, as a lower-triangular Toeplitz product
    k = np.arange(order + 1)
    series = np.where(k == 0, alpha, (1.0 - alpha * alpha) * (-alpha) ** np.maximum(k - 1, 0))  # (M+1,)
    lag = k[:, None] - k[None, :]
    times_a = np.where(lag >= 0, series[np.maximum(lag, 0)], 0.0)  # (M+1, M+1): p -> A * p, truncated
    w = np.empty((order + 1, n_in))
    power = np.zeros(order + 1)
    power[0] = 1.0  # A^0
    for n in range(n_in):
        w[:, n] = power
        power = times_a @ power
    w.setflags(write=False)
    return w


def mel_cepstrum_from_power(power, order: int = 24, alpha: float = 0.455) -> np.ndarray:
    """Power spectra ``(T, n_fft // 2 + 1)`` (numpy or torch, positive) -> mel cepstra ``(T, order + 1)``.

    Steps 3 and 4 of the module docstring: the all-pass-warped real cepstrum of ``log(power) / 2``. Equal to
    ``pysptk.sp2mc(power, order, alpha)`` for an even ``n_fft`` (sp2mc also warps the mirrored, negative
    quefrencies, which reach the first coefficients only by ``alpha ** (n_fft / 2)``). ``alpha=0`` gives the
    plain real cepstrum.
    """
    p = _as_array(power, "power", 2)
    if order < 0:
        raise ValueError(f"order={order} must be >= 0")
    if not -1.0 < alpha < 1.0:
        raise ValueError(f"alpha={alpha} must lie in (-1, 1)")
    if p.shape[1] < 2:
        raise ValueError(f"power needs at least 2 frequency bins per frame, got shape {p.shape}")
    if not np.all(p > 0):
        raise ValueError("power must be positive everywhere (floor it before taking the cepstrum)")
    n_fft = 2 * (p.shape[1] - 1)
    cep = np.fft.irfft(np.log(p), n=n_fft, axis=1)[:, : n_fft // 2 + 1]  # (T, n_fft // 2 + 1) of log P
    cep[:, 0] /= 2.0  # log|X| = log(P) / 2 = sum_n a_n cos(n w): a_0 and the Nyquist term count once
    cep[:, -1] /= 2.0
    return cep @ _warp_matrix(cep.shape[1], order, float(alpha)).T  # (T, order + 1)


def mel_cepstrum(
    wav,
    sr: int,
    order: int = 24,
    alpha: float | None = None,
    n_fft: int = 1024,
    hop_length: int = 256,
    floor_db: float = 120.0,
) -> np.ndarray:
    """Mono waveform ``(samples,)`` (numpy or torch) -> mel cepstra ``(frames, order + 1)``, ``c_0`` first.

    The analysis of the module docstring: Hann STFT power (centred frames, ``1 + samples // hop_length`` of
    them), floored ``floor_db`` below the largest bin, warped real cepstrum with ``alpha`` (default
    ``mel_alpha(sr)``). float64 throughout.
    """
    import torch

    from aics.core.audio import spectrogram

    x = _as_array(wav, "wav", 1)
    if x.size == 0:
        raise ValueError("wav has no samples")
    if floor_db <= 0:
        raise ValueError(f"floor_db={floor_db} must be positive")
    alpha = mel_alpha(sr) if alpha is None else alpha
    power = spectrogram(torch.from_numpy(x), n_fft, hop_length, power=2.0).numpy().T  # (T, F)
    floor = max(float(power.max()) * 10.0 ** (-floor_db / 10.0), np.finfo(np.float64).tiny)
    return mel_cepstrum_from_power(np.maximum(power, floor), order, alpha)


# ----------------------------------------------------------------------------------------------------------
# Dynamic time warping


def _pairwise_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distances ``(T1, T2)`` between the rows of ``a`` (T1, D) and ``b`` (T2, D), from the
    differences themselves (no ``|a|^2 + |b|^2 - 2ab``, whose rounding would make equal frames differ)."""
    out = np.empty((a.shape[0], b.shape[0]))
    rows = max(1, _CHUNK_ELEMENTS // max(1, b.shape[0] * a.shape[1]))
    for start in range(0, a.shape[0], rows):
        diff = a[start : start + rows, None, :] - b[None, :, :]  # (rows, T2, D)
        np.sqrt(np.einsum("ijk,ijk->ij", diff, diff), out=out[start : start + rows])
    return out


_DIAGONAL, _UP, _LEFT = 0, 1, 2  # the step into (i, j): from (i-1, j-1), (i-1, j) or (i, j-1)


def dtw_from_cost(cost) -> tuple[np.ndarray, float]:
    """Minimum-cost monotone path through a local cost matrix ``(T1, T2)`` -> (path ``(L, 2)``, total cost).

    The path runs from (0, 0) to (T1 - 1, T2 - 1) by steps (1, 0), (0, 1) and (1, 1); its cost is the sum of
    ``cost`` over its cells. Among paths of equal cost the backtrace prefers the diagonal, then (i - 1, j).
    The total is summed along the returned path.
    """
    c = _as_array(cost, "cost", 2)
    t1, t2 = c.shape
    if t1 == 0 or t2 == 0:
        raise ValueError(f"dtw needs at least one frame on each side, got a cost matrix of shape {c.shape}")
    move = np.empty((t1, t2), dtype=np.int8)  # (T1, T2) the step into each cell
    move[0] = _LEFT
    acc = np.cumsum(c[0])  # (T2,) accumulated cost of row 0
    diag = np.empty(t2)
    diag[0] = np.inf
    for i in range(1, t1):
        # entering row i at column j from row i - 1: diagonally from j - 1 or straight up from j
        diag[1:] = acc[:-1]
        up = acc < diag  # ties go to the diagonal
        enter = np.where(up, acc, diag) + c[i]  # (T2,)
        # then any run of steps to the right: acc[j] = min_{k <= j} enter[k] + c[i, k+1 .. j], a prefix scan
        run = np.cumsum(c[i])
        best = np.minimum.accumulate(enter - run)
        from_left = np.zeros(t2, dtype=bool)
        from_left[1:] = best[:-1] < enter[1:] - run[1:]
        move[i] = np.where(from_left, _LEFT, np.where(up, _UP, _DIAGONAL))
        acc = best + run
    path = []
    i, j = t1 - 1, t2 - 1
    while i or j:
        path.append((i, j))
        step = move[i, j]
        if step != _LEFT:
            i -= 1
        if step != _UP:
            j -= 1
    path.append((0, 0))
    pairs = np.array(path[::-1], dtype=np.int64)  # (L, 2)
    return pairs, float(c[pairs[:, 0], pairs[:, 1]].sum())


def dtw_path(a, b) -> tuple[np.ndarray, float]:
    """Exact DTW of two feature sequences ``a`` (T1, D) and ``b`` (T2, D) (numpy or torch) over Euclidean
    frame distances -> (path ``(L, 2)`` of index pairs ``(i into a, j into b)``, summed distance on it).

    Steps and tie-breaking as ``dtw_from_cost``; O(T1 * T2) time and memory (about 0.1 s for 1000 x 1000).
    """
    a, b = _as_array(a, "a", 2), _as_array(b, "b", 2)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"dtw: frames of {a.shape[1]} and {b.shape[1]} dimensions cannot be compared")
    return dtw_from_cost(_pairwise_distances(a, b))


# ----------------------------------------------------------------------------------------------------------
# Mel cepstral distortion


def mcd(c1, c2, include_c0: bool = False) -> float:
    """Mean MCD in dB between aligned mel cepstra ``c1`` and ``c2``, both ``(T, D + 1)`` with ``c_0`` first.

    ``(10 / ln 10) * sqrt(2 * sum_d (c1_d - c2_d) ** 2)`` per frame over ``d = 1 .. D`` (``0 .. D`` with
    ``include_c0``), averaged over the T frames.
    """
    a, b = _as_array(c1, "c1", 2), _as_array(c2, "c2", 2)
    if a.shape != b.shape:
        raise ValueError(f"mcd: aligned cepstra must have equal shapes, got {a.shape} and {b.shape}")
    if a.shape[0] == 0:
        raise ValueError("mcd: no frames")
    first = 0 if include_c0 else 1
    diff = a[:, first:] - b[:, first:]  # (T, D)
    return float(MCD_SCALE * np.sqrt(np.square(diff).sum(axis=1)).mean())


def mcd_dtw(
    synth_wav,
    ref_wav,
    sr: int,
    order: int = 24,
    alpha: float | None = None,
    n_fft: int = 1024,
    hop_length: int = 256,
    floor_db: float = 120.0,
    top_db: float | None = 40.0,
    include_c0: bool = False,
) -> float:
    """MCD-DTW in dB between a synthesised and a reference mono waveform at the same sample rate ``sr``.

    Both are trimmed of leading and trailing silence (``top_db``; ``None`` keeps it), analysed by
    ``mel_cepstrum`` (``order``, ``alpha``, ``n_fft``, ``hop_length``, ``floor_db``), aligned by ``dtw_path``
    on ``c_1 .. c_D`` (``c_0 .. c_D`` with ``include_c0``), and the frame MCDs are averaged over the path's
    pairs (see the module docstring).
    """
    waves = [_as_array(synth_wav, "synth_wav", 1), _as_array(ref_wav, "ref_wav", 1)]
    for name, w in zip(("synth_wav", "ref_wav"), waves, strict=True):
        if w.size == 0:
            raise ValueError(f"{name} has no samples")
    if top_db is not None:
        import torch

        from aics.core.audio import trim_silence

        waves = [trim_silence(torch.from_numpy(w), top_db, n_fft, hop_length)[0].numpy() for w in waves]
    synth, ref = (mel_cepstrum(w, sr, order, alpha, n_fft, hop_length, floor_db) for w in waves)
    first = 0 if include_c0 else 1
    pairs, _ = dtw_path(synth[:, first:], ref[:, first:])
    return mcd(synth[pairs[:, 0]], ref[pairs[:, 1]], include_c0)


# ----------------------------------------------------------------------------------------------------------
# Attention health


def attention_health(
    alignment,
    text_length: int | None = None,
    n_steps: int | None = None,
    max_back: int = 1,
    max_forward: int = 3,
    end_slack: int = 2,
    start_slack: int = 2,
) -> dict:
    """Health of one utterance's attention ``(decoder steps T, text positions N)`` (numpy or torch).

    Only the first ``text_length`` positions (default N; the rest is padding) and ``n_steps`` steps (default
    T) count. Returns ``monotonic`` and ``reaches_end`` (bools, defined in the module docstring with the
    thresholds ``max_back``, ``max_forward``, ``start_slack`` and ``end_slack``), ``focus_rate`` (float), and
    for diagnosis ``first_step`` (the first step attending within ``start_slack`` of the first symbol; T when
    none does), ``largest_back`` and ``largest_forward`` (the largest argmax moves back and forward from
    then on, >= 0) and ``last_position`` (the last step's argmax).
    """
    a = _as_array(alignment, "alignment", 2)
    text_length = a.shape[1] if text_length is None else int(text_length)
    n_steps = a.shape[0] if n_steps is None else int(n_steps)
    if not 0 < text_length <= a.shape[1]:
        raise ValueError(
            f"text_length={text_length} must be in [1, {a.shape[1]}] (the alignment's positions)"
        )
    if not 0 < n_steps <= a.shape[0]:
        raise ValueError(f"n_steps={n_steps} must be in [1, {a.shape[0]}] (the alignment's steps)")
    if min(max_back, max_forward, end_slack, start_slack) < 0:
        raise ValueError("max_back, max_forward, end_slack and start_slack must be >= 0")
    a = a[:n_steps, :text_length]  # (T, N)
    position = a.argmax(axis=1)  # (T,)
    started = np.flatnonzero(position <= start_slack)
    first = int(started[0]) if started.size else n_steps
    moves = np.diff(position[first:])  # moves from the first step at the start of the text on
    largest_back = int(max(0, -moves.min())) if moves.size else 0
    largest_forward = int(max(0, moves.max())) if moves.size else 0
    last = int(position[-1])
    return {
        "monotonic": first < n_steps and largest_back <= max_back and largest_forward <= max_forward,
        "reaches_end": last >= text_length - 1 - end_slack,
        "focus_rate": float(a.max(axis=1).mean()),
        "first_step": first,
        "largest_back": largest_back,
        "largest_forward": largest_forward,
        "last_position": last,
    }


def attention_summary(healths: Sequence[Mapping], hit_max_steps: Sequence[bool]) -> dict:
    """Over a test set: ``attention_health`` results and, per utterance, whether decoding stopped at the
    step limit -> ``n_utts``, ``monotonic`` and ``reaches_end`` (shares of the utterances), ``focus_rate``
    (mean), ``hit_max_steps`` (a count) and ``healthy`` (the share that is monotonic, reaches the end and
    stopped before the limit)."""
    if len(healths) != len(hit_max_steps):
        raise ValueError(f"{len(healths)} attention results but {len(hit_max_steps)} step-limit flags")
    n = len(healths)
    if n == 0:
        raise ValueError("attention_summary: no utterances")
    healthy = sum(
        bool(h["monotonic"]) and bool(h["reaches_end"]) and not bool(hit)
        for h, hit in zip(healths, hit_max_steps, strict=True)
    )
    return {
        "n_utts": n,
        "monotonic": sum(bool(h["monotonic"]) for h in healths) / n,
        "reaches_end": sum(bool(h["reaches_end"]) for h in healths) / n,
        "focus_rate": sum(float(h["focus_rate"]) for h in healths) / n,
        "hit_max_steps": sum(bool(hit) for hit in hit_max_steps),
        "healthy": healthy / n,
    }
