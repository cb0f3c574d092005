"""A seeded, offline sound event detection set in the DCASE2018 task 4 layout: domestic events over noise.

Usage: aics sed synth --out data/sed/synth --weak 400 --unlabel 100 --test 100 --eval 100

Each clip is ``duration`` seconds (10 by default) of 16-bit mono PCM at ``sample_rate`` (44.1 kHz by default,
as the real clips): a coloured background noise (a pink/brown mix with a random spectral tilt, a slow level
drift of a few dB and, in some clips, the noise recording alsa-utils ships) and 1 to 4 events of the ten
classes, each at its own event-to-background ratio drawn from ``snr_db``. Events may overlap; two events of
one class never do (they stay 150 ms apart). Every class has its own spectro-temporal shape, varied per
event in pitch, duration, level and filter:

- Alarm_bell_ringing: repeated rings (inharmonic bell partials re-struck 2 to 22 times a second), beeping
  square-wave alarms, or two-tone telephone trills; 0.6 to 5 s.
- Blender: a long motor whine (a harmonic stack on a wandering 120-420 Hz fundamental that spins up) plus
  band noise, its level pulsing with the load; 1.5 to 10 s.
- Cat: one meow, a harmonic stack whose 350-1200 Hz pitch rises and falls and whose timbre brightens midway;
  0.4 to 2 s.
- Dishes: 1 to 6 clinks, each a click plus damped high partials (1.8-9 kHz) ringing 10-80 ms; up to 2.5 s.
- Dog: 1 to 4 barks of 0.1-0.3 s, harmonics on a falling 300-650 Hz pitch mixed with noise.
- Electric_shaver_toothbrush: a long buzz, an 80-250 Hz pulse train band-passed around 1.2-5 kHz,
  sometimes stroked (slow level swings); 1.5 to 10 s.
- Frying: a long crackle, sparse random clicks of heavy-tailed size over high-passed hiss; 2 to 10 s.
- Running_water: long broadband noise with fast random level modulation and rising bubble chirps; 1.5 to 10 s.
- Speech: espeak-ng sentences, the spoken words alsa-utils ships, or a formant synthesiser's babble.
- Vacuum_cleaner: long low-passed broadband noise plus a motor hum (and sometimes a whine) that spins up;
  2 to 10 s.

Event sources. Besides the generated ones above, ``sources="auto"`` uses what Debian packages put on the
machine: sound-theme-freedesktop's bell and telephone rings (Alarm_bell_ringing), alsa-utils' spoken channel
names (Speech; its Noise.wav joins some backgrounds) and a pool of 24 espeak-ng sentences (varied voices,
speeds and pitches), made once per process when ``espeak-ng`` is on PATH. A class with such sources takes
each event from the generated group or one of the recorded groups with equal chance. Recordings get a
random speed (+/- 1 semitone) and are repeated (short rings) or cropped (long ones). ``sources="generated"``
uses generated events only, so the files do not depend on what is installed. ``synth.json`` says which
sources were found and how many events each gave.

Strong labels are exact. Every event, generated or recorded, is cut to its audible part (from the first
to the last sample within 40 dB of its peak, found with ``aics.core.audio.trim_silence`` and refined to the
sample), then trimmed by less than 1 ms so that it spans whole milliseconds: an event labelled ``onset`` to
``offset`` occupies exactly the samples ``round(onset * sr)`` to ``round(offset * sr) - 1``. As DCASE2018's
annotators did, parts of one sound that 150 ms of silence or more separate (barks, clinks, beeps) are
labelled as separate events, and only the labelled parts are mixed in. A sound's level is set so that its
power over its span is ``snr`` dB above the background's power over the same samples. Each clip is then
scaled to a peak of 0.3 to 0.9 (never clipped). Unlike the real annotations (at least 250 ms each), the
labels follow the audio, so a single clink or bark may be shorter.

``generate`` writes the DCASE2018 task 4 ``dataset/`` layout (``aics.tasks.sed.labels``): wavs in
``audio/train/weak``, ``audio/train/unlabel_in_domain``, ``audio/test`` and ``audio/eval``, named like the
real YouTube clips (``Y<11 characters>_<start>.000_<end>.000.wav``), and tab-separated metadata with headers:
``metadata/train/weak.csv`` (filename, comma-separated event_labels), ``metadata/train/unlabel_in_domain.csv``
(filename) and ``metadata/test/test.csv``, ``metadata/eval/eval.csv`` (filename, onset, offset, event_label in
seconds with 3 decimals, one row per event). Beyond the real layout it writes ``synth.json`` (parameters,
sources, event counts) and ``synth_events.tsv``: the strong labels of every split (weak and unlabelled
clips included) with each event's source and SNR, for checking. Each clip has its own random stream derived
from (seed, split, index): the same seed gives byte-identical files, and the test and eval clips do not change
when only ``n_weak`` or ``n_unlabel`` does. The first event of clip ``i`` has class ``order[i % 10]`` for a
per-split permutation ``order``, so every split of 10 clips or more holds every class.
"""

from __future__ import annotations

import functools
import math
import shutil
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from aics.core.errors import UserError
from aics.core.io import read_json, write_json, write_text
from aics.core.log import progress
from aics.core.stage import begin_stage, mark_done
from aics.tasks.sed.labels import (
    AUDIO_DIRS,
    CLASSES,
    METADATA,
    STRONG_HEADER,
    UNLABELLED_HEADER,
    WEAK_HEADER,
)

FORMAT_VERSION = 1
SPLITS = ("weak", "unlabel_in_domain", "test", "eval")  # the index is the split's part of each clip's seed
STRONG_SPLITS = ("test", "eval")
INFO_FILE = "synth.json"
EVENTS_FILE = "synth_events.tsv"
EVENTS_HEADER = ("split", "filename", "onset", "offset", "event_label", "source", "snr_db")
SOURCE_MODES = ("auto", "generated")

SAMPLE_RATE_RANGE = (8000, 96000)
DURATION_RANGE = (1.0, 60.0)  # seconds
SNR_LIMITS = (-30.0, 60.0)  # dB, the widest snr_db range accepted
MAX_CLIPS = 1_000_000  # per split
EVENT_COUNT_P = (0.3, 0.35, 0.22, 0.13)  # P(1 event), ..., P(4 events) in a clip
PLACEMENT_TRIES = 20  # onsets tried for an event before it is dropped (it would overlap its own class)
SAME_CLASS_GAP_MS = 150  # DCASE2018's annotators merged same-class events less than this apart
PEAK_RANGE = (0.3, 0.9)  # clip peak after scaling
TOP_DB = 40.0  # an event's audible part: within this many dB of its peak
MIN_EVENT_MS = 50
ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"  # YouTube ids are url-safe
MAX_START_S = 600  # clip names say where in a (pretend) video the clip starts

# Recordings Debian packages ship (sound-theme-freedesktop, alsa-utils); module attributes so tests can
# point them elsewhere.
FREEDESKTOP_DIR = Path("/usr/share/sounds/freedesktop/stereo")
ALSA_DIR = Path("/usr/share/sounds/alsa")
ALARM_RECORDINGS = ("bell.oga", "phone-incoming-call.oga", "alarm-clock-elapsed.oga")
SPOKEN_CHANNELS = ("Front_Center", "Front_Left", "Front_Right", "Rear_Center", "Rear_Left", "Rear_Right",
                   "Side_Left", "Side_Right")  # fmt: skip
# alsa's wavs; freedesktop has the same recordings as .oga (used only when alsa's are missing)
SPEECH_RECORDINGS = tuple(f"{name}.wav" for name in SPOKEN_CHANNELS)
SPEECH_RECORDINGS_OGA = tuple(
    f"audio-channel-{name.lower().replace('_', '-')}.oga" for name in SPOKEN_CHANNELS
)
NOISE_RECORDING, NOISE_RECORDING_OGA = "Noise.wav", "audio-test-signal.oga"
NOISE_RECORDING_P = 0.3  # share of backgrounds that add the noise recording

ESPEAK = "espeak-ng"
ESPEAK_POOL_SIZE = 24
ESPEAK_POOL_SEED = 2018  # the pool is the same for every seed; events vary it
ESPEAK_TIMEOUT_S = 60.0
ESPEAK_VOICES = ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-us-nyc")
ESPEAK_VARIANTS = ("m1", "m2", "m3", "m4", "m7", "f1", "f2", "f3", "f4", "f5")
SENTENCES = (
    "Could you pass me the salt, please?",
    "The kettle is on, would you like some tea?",
    "I left the keys on the kitchen table.",
    "Dinner will be ready in ten minutes.",
    "Have you seen my phone anywhere?",
    "Please turn the music down a little.",
    "We need to buy more milk and bread.",
    "The cat wants to go outside again.",
    "Remember to water the plants tomorrow.",
    "It is raining, take an umbrella.",
    "Who left the window open?",
    "Let us watch a film tonight.",
    "The dishes can wait until the morning.",
    "Yes.",
    "No, thank you.",
    "Come here, quickly!",
    "What time does the train leave?",
    "I will call you back later.",
    "Good morning, did you sleep well?",
    "The washing machine has finished.",
    "Can you help me carry these bags?",
    "Hello, is anybody home?",
    "That smells wonderful, what are you cooking?",
    "Do not forget to lock the door.",
    "Okay, see you soon.",
    "The children are playing in the garden.",
)

TABLE_SIZE = 4096  # wavetable length: harmonics up to 2047
VOWELS = (  # (F1, F2, F3) in Hz of an adult male voice (Peterson and Barney)
    (730, 1090, 2440),
    (530, 1840, 2480),
    (270, 2290, 3010),
    (570, 840, 2410),
    (300, 870, 2240),
    (660, 1720, 2410),
    (490, 1350, 1690),
)


# ----------------------------------------------------------------------------------------------------------
# Signal building blocks (float32 signals; phases in float64 so long tones stay clean)


def _fft_size(n: int) -> int:
    """The smallest 2^a 3^b 5^c >= n: numpy's FFT is fast at these sizes."""
    best = 1 << max(0, (n - 1).bit_length())
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            q = p35
            while q < n:
                q *= 2
            best = min(best, q)
            p35 *= 3
        p5 *= 5
    return best


def _unit_rms(x: np.ndarray) -> np.ndarray:
    rms = float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))
    return (x / rms).astype(np.float32) if rms > 0 else x.astype(np.float32)


def _cap(freq: float, sr: int) -> float:
    """A frequency kept below 0.45 of the sample rate (so nothing aliases at 8 or 16 kHz)."""
    return min(float(freq), 0.45 * sr)


def _band(f: np.ndarray, centre: float, octaves: float) -> np.ndarray:
    """A bump in log frequency: 1 at ``centre``, a Gaussian of ``octaves`` standard deviation."""
    return np.exp(-0.5 * (np.log2(np.maximum(f, 1.0) / centre) / octaves) ** 2)


def _lowpass(f: np.ndarray, cutoff: float, order: int = 2) -> np.ndarray:
    return 1.0 / np.sqrt(1.0 + (np.maximum(f, 0.0) / cutoff) ** (2 * order))


def _highpass(f: np.ndarray, cutoff: float, order: int = 2) -> np.ndarray:
    return 1.0 / np.sqrt(1.0 + (cutoff / np.maximum(f, 1.0)) ** (2 * order))


def _shaped_noise(
    rng: np.random.Generator, n: int, sr: int, gain: Callable[[np.ndarray], np.ndarray]
) -> np.ndarray:
    """(n,) Gaussian noise of unit RMS whose amplitude spectrum is ``gain(freqs_hz)``: drawn in the frequency
    domain, one inverse FFT."""
    size = _fft_size(n)
    freqs = np.fft.rfftfreq(size, 1.0 / sr).astype(np.float32)
    parts = rng.standard_normal((2, freqs.size), dtype=np.float32)
    spec = np.empty(freqs.size, np.complex64)
    spec.real, spec.imag = parts[0], parts[1]
    spec *= np.asarray(gain(freqs), dtype=np.float32)
    return _unit_rms(np.fft.irfft(spec, size)[:n])


def _sine(freq: float, n: int, sr: int, phase: float = 0.0) -> np.ndarray:
    cycles = (np.arange(n) * (freq / sr) + phase) % 1.0
    return np.sin(np.float32(2 * np.pi) * cycles.astype(np.float32))


def _wavetable(amps: np.ndarray, rng: np.random.Generator | None) -> np.ndarray:
    """One period (TABLE_SIZE + 1 samples, the last repeating the first) with harmonic ``k`` at ``amps[k-1]``,
    peak 1; random phases (smooth tone) or, without ``rng``, zero phases (a pulse train's peaky buzz)."""
    k = min(len(amps), TABLE_SIZE // 2 - 1)
    spec = np.zeros(TABLE_SIZE // 2 + 1, np.complex128)
    phases = rng.random(k) if rng is not None else np.zeros(k)
    spec[1 : k + 1] = np.asarray(amps[:k]) * np.exp(2j * np.pi * phases)
    table = np.fft.irfft(spec, TABLE_SIZE)
    table /= max(float(np.abs(table).max()), 1e-12)
    return np.append(table, table[0]).astype(np.float32)


def _play(table: np.ndarray, cycles: np.ndarray) -> np.ndarray:
    """A wavetable read at ``cycles`` (float64 periods elapsed per sample), linearly interpolated."""
    pos = (cycles % 1.0) * TABLE_SIZE
    idx = pos.astype(np.int32)
    frac = (pos - idx).astype(np.float32)
    lo = table[idx]
    return lo + frac * (table[idx + 1] - lo)


def _cycles(f0: np.ndarray, sr: int) -> np.ndarray:
    """Periods elapsed at each sample of a tone whose frequency is ``f0`` (Hz per sample)."""
    return np.cumsum(np.asarray(f0, dtype=np.float64) / sr)


def _harmonics(
    f0_max: float, sr: int, weight: Callable[[np.ndarray], np.ndarray], f0_ref: float
) -> np.ndarray:
    """Amplitudes of the harmonics that stay below 0.45 * sr at ``f0_max``, ``weight`` evaluated at the
    harmonic frequencies of ``f0_ref``."""
    count = int(np.clip(0.45 * sr // max(f0_max, 1.0), 1, TABLE_SIZE // 2 - 1))
    return weight(np.arange(1, count + 1) * f0_ref)


def _curve(points: np.ndarray, n: int) -> np.ndarray:
    """(n,) piecewise-linear curve through ``points`` spread evenly over ``n`` samples (one value per 16)."""
    m = -(-n // 16) + 1
    coarse = np.interp(np.linspace(0.0, len(points) - 1.0, m), np.arange(len(points)), points)
    return np.repeat(coarse.astype(np.float32), 16)[:n]


def _wobble(rng: np.random.Generator, n: int, sr: int, rate_hz: float, depth_db: float) -> np.ndarray:
    """(n,) gain around 1 that wanders randomly by about ``depth_db`` dB, ``rate_hz`` turns a second."""
    k = int(n / sr * rate_hz) + 2
    return _curve(10.0 ** (rng.normal(0.0, depth_db, k) / 20.0), n)


def _fade(x: np.ndarray, sr: int, attack_s: float, release_s: float) -> np.ndarray:
    """Raised-cosine fade in and out, in place (the first and last samples stay non-zero)."""
    for length, sl in ((attack_s, slice(None)), (release_s, slice(None, None, -1))):
        m = min(len(x), max(1, int(length * sr)))
        ramp = (0.5 - 0.5 * np.cos(np.pi * np.arange(1, m + 1) / m)).astype(np.float32)
        x[sl][:m] *= ramp
    return x


def _gate(n: int, sr: int, period_s: float, on_s: float, ramp_s: float = 0.004) -> np.ndarray:
    """(n,) on/off pattern: on for ``on_s`` at the start of every ``period_s``, with linear ramps."""
    pos = (np.arange(n) / sr) % period_s
    return np.clip(np.minimum(pos, on_s - pos) / ramp_s, 0.0, 1.0).astype(np.float32)


def _scatter(n: int, starts: np.ndarray, grains: np.ndarray) -> np.ndarray:
    """(n,) sum of the rows of ``grains`` (m, g) added at sample offsets ``starts`` (m,) (each <= n - g)."""
    idx = starts[:, None] + np.arange(grains.shape[1])
    return np.bincount(idx.ravel(), weights=grains.ravel(), minlength=n)[:n].astype(np.float32)


def _duration(rng: np.random.Generator, low_s: float, high_s: float, max_s: float) -> float:
    high_s = min(high_s, max_s)
    return float(rng.uniform(min(low_s, high_s), high_s))


def _n(seconds: float, sr: int) -> int:
    return max(1, int(round(seconds * sr)))


# ----------------------------------------------------------------------------------------------------------
# Generated events, one function per class: (rng, sample rate, longest duration in s) -> (T,) float32


def alarm_bell(rng: np.random.Generator, sr: int, max_s: float) -> np.ndarray:
    """Electric or struck bell, beeping alarm or telephone trill, repeated."""
    style = int(rng.integers(3))
    n = _n(_duration(rng, 0.6, 5.0, max_s), sr)
    if style == 0:  # a bell: inharmonic partials, struck 10-22 times a second (electric) or 2-5 (by hand)
        rate = rng.uniform(10, 22) if rng.random() < 0.6 else rng.uniform(2, 5)
        base = rng.uniform(500, 2000)
        tau = rng.uniform(0.5, 1.2) / rate if rate > 6 else rng.uniform(0.12, 0.4)
        x = sum(
            amp * rng.uniform(0.6, 1.0) * _sine(_cap(base * ratio, sr), n, sr, rng.random())
            for ratio, amp in ((1.0, 1.0), (2.76, 0.6), (5.40, 0.35), (8.93, 0.2))
        )
        since_strike = (np.arange(n) / sr) % (1.0 / rate)
        return x * np.exp(-since_strike / tau).astype(np.float32)
    if style == 1:  # a beeping alarm: a square-ish tone switched on and off
        freq = _cap(rng.uniform(1500, 4000), sr)
        amps = np.array([1.0 / k if k % 2 else 0.0 for k in range(1, 8)])
        table = _wavetable(_harmonics(freq, sr, lambda f: amps[: len(f)], freq), rng)
        period = rng.uniform(0.2, 1.0)
        on = period * rng.uniform(0.3, 0.65)
        n = _n(math.floor(n / sr / period) * period + on, sr)  # end on a beep
        return _play(table, np.arange(n) * (freq / sr)) * _gate(n, sr, period, on)
    # a telephone: two tones alternating 12-25 times a second, in 1-3 bursts
    f1 = _cap(rng.uniform(700, 1500), sr)
    f2 = _cap(f1 * rng.uniform(1.15, 1.4), sr)
    burst, gap = rng.uniform(0.6, 1.6), rng.uniform(0.3, 1.5)
    bursts = int(rng.integers(1, 4))
    n = min(_n((bursts - 1) * (burst + gap) + burst, sr), _n(max_s, sr))
    t = np.arange(n) / sr
    high = ((t * rng.uniform(12, 25)) % 1.0) < 0.5
    x = np.where(high, _sine(f2, n, sr), _sine(f1, n, sr)) + 0.3 * np.where(
        high, _sine(3 * f2 / 2, n, sr), 0.0
    )
    return (x * _gate(n, sr, burst + gap, burst)).astype(np.float32)


def blender(rng: np.random.Generator, sr: int, max_s: float) -> np.ndarray:
    """Motor whine (harmonic stack, wandering pitch, spin-up) plus band noise, pulsing with the load."""
    n = _n(_duration(rng, 1.5, 10.0, max_s), sr)
    f0 = rng.uniform(120, 420)
    spin = min(0.5 * n / sr, rng.uniform(0.1, 0.6))
    ramp = np.minimum(1.0, np.arange(n) / (spin * sr)).astype(np.float32)
    track = f0 * (0.55 + 0.45 * ramp) * _wobble(rng, n, sr, rng.uniform(0.5, 3.0), rng.uniform(0.2, 1.0))
    rolloff = rng.uniform(0.4, 1.1)
    amps = _harmonics(1.2 * f0, sr, lambda f: (f / f0) ** -rolloff * rng.uniform(0.5, 1.5, f.size), f0)
    whine = _play(_wavetable(amps, rng), _cycles(track, sr))
    centre, width = rng.uniform(1000, 5000), rng.uniform(0.8, 1.6)
    noise = _shaped_noise(rng, n, sr, lambda f: _band(f, _cap(centre, sr), width) + 0.05)
    x = _unit_rms(whine) + rng.uniform(0.3, 1.0) * noise
    x *= _wobble(rng, n, sr, rng.uniform(1.0, 4.0), rng.uniform(1.5, 4.0)) * (0.3 + 0.7 * ramp)
    return _fade(x, sr, 0.02, rng.uniform(0.05, 0.3))


def cat(rng: np.random.Generator, sr: int, max_s: float) -> np.ndarray:
    """A meow: harmonics on a rising then falling pitch, brightest midway, with some breath."""
    n = _n(_duration(rng, 0.4, 2.0, max_s), sr)
    start, peak, end = rng.uniform(350, 700), rng.uniform(600, 1200), rng.uniform(300, 700)
    top = rng.uniform(0.25, 0.6)
    u = np.linspace(0.0, 1.0, n)
    track = np.interp(u, [0.0, top, 1.0], [start, peak, end])
    track *= 1.0 + rng.uniform(0.005, 0.03) * np.sin(2 * np.pi * rng.uniform(5, 8) * u * n / sr)
    f_ref = float(np.median(track))
    dark = _harmonics(peak, sr, lambda f: (f / f_ref) ** -1.5, f_ref)
    formant = rng.uniform(1500, 3000)
    bright = _harmonics(
        peak, sr, lambda f: 0.3 * (f / f_ref) ** -0.7 + _band(f, _cap(formant, sr), 0.5), f_ref
    )
    cycles = _cycles(track, sr)
    mix = (np.sin(np.pi * u) ** rng.uniform(0.7, 2.0)).astype(np.float32)
    x = (1 - mix) * _play(_wavetable(dark, rng), cycles) + mix * _play(_wavetable(bright, rng), cycles)
    breath = _shaped_noise(rng, n, sr, lambda f: _highpass(f, _cap(3000, sr)))
    x = _unit_rms(x) + 10 ** (rng.uniform(-30, -18) / 20) * breath
    return _fade(x, sr, rng.uniform(0.03, 0.08), rng.uniform(0.08, 0.25))


def dishes(rng: np.random.Generator, sr: int, max_s: float) -> np.ndarray:
    """1 to 6 clinks: a short click, then damped high partials."""
    clinks = int(rng.integers(1, 7))
    starts = np.concatenate([[0.0], np.cumsum(rng.uniform(0.04, 0.45, clinks - 1))])
    parts = []
    for onset in starts:
        count = int(rng.integers(3, 6))
        freqs = np.minimum(rng.uniform(1800, 9000, count), 0.45 * sr)
        taus = np.concatenate([[rng.uniform(0.02, 0.08)], rng.uniform(0.01, 0.08, count - 1)])
        m = _n(taus.max() * math.log(100.0), sr)  # until the slowest partial is 40 dB down
        t = np.arange(m) / sr
        ring = (rng.uniform(0.3, 1.0, count)[:, None] * np.exp(-t / taus[:, None])
                * np.sin(2 * np.pi * (freqs[:, None] * t + rng.random((count, 1))))).sum(0)  # fmt: skip
        click = min(m, _n(rng.uniform(0.001, 0.003), sr))
        ring[:click] += rng.uniform(0.3, 1.0) * rng.standard_normal(click) * np.linspace(1, 0, click)
        parts.append((int(onset * sr), ring * 10 ** (rng.uniform(-6, 0) / 20)))
    n = min(max(s + len(p) for s, p in parts), _n(min(max_s, 2.5), sr))
    x = np.zeros(n, np.float32)
    for s, p in parts:
        if s < n:
            x[s : s + len(p)] += p[: n - s]
    return x


def dog(rng: np.random.Generator, sr: int, max_s: float) -> np.ndarray:
    """1 to 4 barks: harmonics on a falling pitch plus noise, sharp attack."""
    barks = int(rng.choice(4, p=(0.35, 0.35, 0.2, 0.1))) + 1
    formant, noise_band = rng.uniform(800, 1800), rng.uniform(800, 2500)
    parts = []
    for _ in range(barks):
        m = _n(rng.uniform(0.1, 0.3), sr)
        f0 = rng.uniform(300, 650)
        u = np.linspace(0.0, 1.0, m)
        track = f0 * np.interp(u, [0.0, 0.2, 1.0], [1.0, rng.uniform(1.0, 1.12), rng.uniform(0.7, 0.85)])
        amps = _harmonics(
            1.12 * f0, sr, lambda f, f0=f0: (f / f0) ** -0.7 * (_band(f, formant, 0.8) + 0.15), f0
        )
        voice = _unit_rms(_play(_wavetable(amps, rng), _cycles(track, sr)))
        noise = _shaped_noise(rng, m, sr, lambda f: _band(f, _cap(noise_band, sr), 1.5))
        bark = (voice + rng.uniform(0.3, 0.8) * noise) * np.exp(-u / rng.uniform(0.3, 0.7)).astype(np.float32)
        parts.append(_fade(bark, sr, rng.uniform(0.004, 0.012), 0.02) * 10 ** (rng.uniform(-4, 0) / 20))
        parts.append(np.zeros(_n(rng.uniform(0.12, 0.45), sr), np.float32))
    x = np.concatenate(parts[:-1])
    return x[: _n(max_s, sr)]


def shaver(rng: np.random.Generator, sr: int, max_s: float) -> np.ndarray:
    """A buzz: an 80-250 Hz pulse train band-passed around 1.2-5 kHz; a toothbrush's strokes sometimes."""
    n = _n(_duration(rng, 1.5, 10.0, max_s), sr)
    f0 = rng.uniform(80, 250)
    centre, width = _cap(rng.uniform(1200, 5000), sr), rng.uniform(0.5, 1.2)
    amps = _harmonics(1.05 * f0, sr, lambda f: _band(f, centre, width) + 0.03, f0)
    track = f0 * _wobble(rng, n, sr, rng.uniform(2, 6), rng.uniform(0.05, 0.2))
    x = _play(_wavetable(amps, None), _cycles(track, sr))
    if rng.random() < 0.5:  # a toothbrush's strokes
        x = x * _wobble(rng, n, sr, rng.uniform(1, 3), rng.uniform(3, 8))
    return _fade(x, sr, rng.uniform(0.02, 0.1), rng.uniform(0.02, 0.1))


def frying(rng: np.random.Generator, sr: int, max_s: float) -> np.ndarray:
    """A crackle: sparse clicks of heavy-tailed size over high-passed hiss."""
    n = _n(_duration(rng, 2.0, 10.0, max_s), sr)
    count = max(2, int(rng.poisson(rng.uniform(30, 300) * n / sr)))
    width = max(4, _n(rng.uniform(0.0015, 0.004), sr))
    kernel = np.diff(rng.standard_normal(width + 1)) * np.exp(-np.arange(width) / (width / 4))
    starts = rng.integers(0, max(1, n - width), count)
    sizes = rng.lognormal(0.0, rng.uniform(0.6, 1.0), count) * rng.choice((-1.0, 1.0), count)
    crackle = _unit_rms(_scatter(n, starts, sizes[:, None] * kernel))
    cutoff = _cap(rng.uniform(1500, 4500), sr)
    hiss = _shaped_noise(rng, n, sr, lambda f: _highpass(f, cutoff) * _lowpass(f, _cap(12000, sr), 1))
    x = crackle + 10 ** (rng.uniform(-12, -4) / 20) * hiss * _wobble(rng, n, sr, 0.5, 1.5)
    return _fade(x, sr, rng.uniform(0.01, 0.2), rng.uniform(0.01, 0.2))


def running_water(rng: np.random.Generator, sr: int, max_s: float) -> np.ndarray:
    """Broadband noise, its level flickering 8-30 times a second, with rising bubble chirps."""
    n = _n(_duration(rng, 1.5, 10.0, max_s), sr)
    centre, width, tilt = _cap(rng.uniform(700, 2500), sr), rng.uniform(0.8, 1.5), rng.uniform(-0.3, 0.2)
    noise = _shaped_noise(rng, n, sr, lambda f: _band(f, centre, width) * (np.maximum(f, 20) / 1000) ** tilt)
    x = noise * _wobble(rng, n, sr, rng.uniform(8, 30), rng.uniform(2, 5))
    count = min(400, int(rng.poisson(rng.uniform(5, 40) * n / sr)))
    grain = min(_n(0.03, sr), n)
    if count:
        t = np.arange(grain) / sr
        f_start = np.minimum(rng.uniform(500, 2500, count), 0.3 * sr)[:, None]
        sweep = f_start * (rng.uniform(1.1, 1.6, count)[:, None] - 1) / (grain / sr)
        chirps = np.sin(2 * np.pi * (f_start * t + 0.5 * sweep * t * t)) * np.exp(
            -t / rng.uniform(0.004, 0.012, count)[:, None]
        )
        sizes = rng.lognormal(0.0, 0.5, count)[:, None] * rng.uniform(1.0, 3.0)
        x = x + _scatter(n, rng.integers(0, n - grain + 1, count), sizes * chirps)
    return _fade(x, sr, rng.uniform(0.05, 0.4), rng.uniform(0.05, 0.4))


def _formant_filter(x: np.ndarray, sr: int, formants: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Filter ``x`` by a vocal tract that changes over time: 50 %-overlapped frames of ~32 ms (sqrt-Hann in
    and out, which sum to one), each multiplied by the resonances ``formants(frame_times) -> (frames, 3)``."""
    size = 1 << int(round(math.log2(0.032 * sr)))
    hop = size // 2
    frames_n = -(-len(x) // hop) + 1
    padded = np.zeros((frames_n + 1) * hop, np.float32)
    padded[hop : hop + len(x)] = x
    frames = np.lib.stride_tricks.sliding_window_view(padded, size)[::hop][:frames_n]  # (F, size)
    window = np.sqrt(0.5 - 0.5 * np.cos(2 * np.pi * np.arange(size) / size)).astype(np.float32)
    spec = np.fft.rfft(frames * window, axis=1)  # (F, size // 2 + 1)
    f = np.fft.rfftfreq(size, 1.0 / sr)[None, :]
    centres = formants(np.arange(frames_n) * hop / sr)  # (F, 3)
    gain = 0.02 + sum(
        level / (1.0 + ((f - centres[:, j : j + 1]) / bw) ** 2)
        for j, (level, bw) in enumerate(((1.0, 80.0), (0.7, 100.0), (0.35, 140.0)))
    )
    out = np.fft.irfft(spec * gain, size, axis=1).astype(np.float32) * window  # (F, size)
    y = np.zeros((frames_n + 1) * hop, np.float32)
    y[: frames_n * hop] += out[:, :hop].ravel()
    y[hop : (frames_n + 1) * hop] += out[:, hop:].ravel()
    return y[hop : hop + len(x)]


def speech(rng: np.random.Generator, sr: int, max_s: float) -> np.ndarray:
    """Babble from a formant synthesiser: voiced syllables (vowel formants gliding between syllables),
    some led by a fricative, in words with short pauses, on a falling intonation."""
    f0, scale = rng.uniform(95, 240), rng.uniform(0.95, 1.2)
    limit = min(max_s, rng.uniform(0.8, 4.5))
    voiced, fricatives, centres, targets = [], [], [], []
    t = 0.0
    for k in range(int(rng.integers(3, 16))):
        if k and rng.random() < 0.25:
            t += rng.uniform(0.05, 0.2)  # between words
        if rng.random() < 0.4:
            fric = rng.uniform(0.04, 0.09)
            fricatives.append((t, t + fric))
            t += fric
        length = rng.uniform(0.1, 0.25)
        if t + length > limit and voiced:
            break
        voiced.append((t, t + length))
        centres.append(t + length / 2)
        targets.append(np.array(VOWELS[int(rng.integers(len(VOWELS)))]) * scale)
        t += length
    n = _n(voiced[-1][1], sr)
    voicing = np.zeros(n, np.float32)
    for a, b in voiced:
        i, j = int(a * sr), min(n, _n(b, sr))
        voicing[i:j] = _fade(np.full(j - i, rng.uniform(0.6, 1.0), np.float32), sr, 0.015, 0.03)
    u = np.arange(n) / n
    track = f0 * (1.1 - 0.25 * u) * _wobble(rng, n, sr, 4.0, 0.6)
    source = _play(
        _wavetable(_harmonics(1.2 * f0, sr, lambda f: (f / f0) ** -1.0, f0), rng), _cycles(track, sr)
    )
    targets = np.array(targets)  # (syllables, 3)
    x = _formant_filter(
        source * voicing,
        sr,
        lambda times: np.stack([np.interp(times, centres, targets[:, j]) for j in range(3)], 1),
    )
    x = _unit_rms(x)
    if fricatives:
        cutoff = _cap(rng.uniform(3000, 6000), sr)
        hiss = _shaped_noise(rng, n, sr, lambda f: _highpass(f, cutoff, 3))
        gate = np.zeros(n, np.float32)
        for a, b in fricatives:
            i, j = int(a * sr), min(n, _n(b, sr))
            if j > i:
                gate[i:j] = _fade(np.full(j - i, rng.uniform(0.2, 0.5), np.float32), sr, 0.01, 0.01)
        x = x + hiss * gate
    return x


def vacuum_cleaner(rng: np.random.Generator, sr: int, max_s: float) -> np.ndarray:
    """Low-passed broadband noise plus a motor hum (and sometimes a whine) that spins up."""
    n = _n(_duration(rng, 2.0, 10.0, max_s), sr)
    slope, cutoff = rng.uniform(0.2, 0.8), _cap(rng.uniform(2500, 9000), sr)
    resonance, boost = _cap(rng.uniform(800, 3000), sr), rng.uniform(0.5, 2.0)
    noise = _shaped_noise(
        rng,
        n,
        sr,
        lambda f: (
            (np.maximum(f, 50) / 500) ** -slope * _lowpass(f, cutoff) * (1 + boost * _band(f, resonance, 0.4))
        ),
    )
    spin = min(0.5 * n / sr, rng.uniform(0.2, 0.8))
    ramp = np.minimum(1.0, np.arange(n) / (spin * sr)).astype(np.float32)
    f_hum = rng.uniform(90, 300)
    hum = _play(
        _wavetable(_harmonics(f_hum, sr, lambda f: rng.uniform(0.2, 1.0, f.size)[:8], f_hum), rng),
        _cycles(f_hum * (0.4 + 0.6 * ramp), sr),
    )
    x = noise + 10 ** (rng.uniform(-12, -3) / 20) * _unit_rms(hum)
    if rng.random() < 0.5:
        x += 10 ** (rng.uniform(-18, -8) / 20) * np.sqrt(2) * _sine(_cap(rng.uniform(1500, 6000), sr), n, sr)
    x *= (0.2 + 0.8 * ramp) * _wobble(rng, n, sr, 0.5, 0.5)
    return _fade(x, sr, 0.02, rng.uniform(0.05, 0.5))


GENERATORS: dict[str, Callable[[np.random.Generator, int, float], np.ndarray]] = {
    "Alarm_bell_ringing": alarm_bell,
    "Blender": blender,
    "Cat": cat,
    "Dishes": dishes,
    "Dog": dog,
    "Electric_shaver_toothbrush": shaver,
    "Frying": frying,
    "Running_water": running_water,
    "Speech": speech,
    "Vacuum_cleaner": vacuum_cleaner,
}


# ----------------------------------------------------------------------------------------------------------
# Recorded sources


@dataclass(frozen=True)
class Recording:
    """A recorded event or background: a name for synth.json and its audible part at the sample rate, unit
    RMS, read-only."""

    name: str
    wav: np.ndarray


@dataclass(frozen=True)
class SourcePool:
    """What the recorded sources gave: per class, groups (``recordings``, ``espeak-ng``) of events; the
    background noise recordings; the paths found per class (``background`` too); espeak-ng's details."""

    events: dict[str, dict[str, tuple[Recording, ...]]]
    background: tuple[Recording, ...]
    found: dict[str, list[str]]
    espeak: dict | None


def audible_span(wav: np.ndarray, sr: int, top_db: float = TOP_DB) -> tuple[int, int]:
    """``(start, end)``: the first and one past the last sample of ``wav``'s audible part; ``(0, 0)`` if
    silent.

    ``aics.core.audio.trim_silence`` finds the frames within ``top_db`` of the loudest one; the span then runs
    from the first to the last sample near them whose size is within ``top_db`` of the peak sample.
    """
    import torch

    from aics.core.audio import trim_silence

    frame = 1 << max(6, int(round(math.log2(0.02 * sr))))
    _, (start, end) = trim_silence(torch.from_numpy(np.array(wav, np.float32)), top_db, frame, frame // 4)
    lo, hi = max(0, start - frame // 2), min(len(wav), end + frame // 2)
    size = np.abs(wav[lo:hi])
    peak = float(size.max()) if size.size else 0.0
    if end <= start or peak <= 0:
        return 0, 0
    loud = np.flatnonzero(size >= peak * 10 ** (-top_db / 20))
    return lo + int(loud[0]), lo + int(loud[-1]) + 1


def audible_segments(
    wav: np.ndarray, sr: int, top_db: float = TOP_DB, min_gap_ms: int = SAME_CLASS_GAP_MS
) -> list[tuple[int, int]]:
    """``(start, end)`` sample ranges of the parts of an event (already cut to its audible part) that at
    least ``min_gap_ms`` of silence separates, in order; together they span ``(0, len(wav))``.

    DCASE2018's annotators labelled such parts as separate events (a dog's barks half a second apart), and
    merged sounds of one class with shorter pauses. Silence is a run of 10 ms frames more than ``top_db``
    below the loudest frame; a split runs from the last sample before the run's middle to the first one
    after it that is within ``top_db`` of the peak sample, and needs those to be ``min_gap_ms`` apart.
    """
    hop = max(1, sr // 100)
    frames = len(wav) // hop
    if frames < 3:
        return [(0, len(wav))]
    power = np.mean(np.square(wav[: frames * hop].reshape(frames, hop), dtype=np.float64), axis=1)
    quiet = np.concatenate([[0], (power < power.max() * 10 ** (-top_db / 10)).astype(np.int8), [0]])
    loud = np.abs(wav) >= np.abs(wav).max() * 10 ** (-top_db / 20)
    gap = math.ceil(min_gap_ms * sr / 1000)
    segments, start = [], 0
    runs = np.diff(quiet)
    for first, stop in zip(np.flatnonzero(runs == 1), np.flatnonzero(runs == -1), strict=True):
        middle = (first + stop) * hop // 2
        if (stop - first) * hop < gap or middle <= start:
            continue
        before, after = np.flatnonzero(loud[start:middle]), np.flatnonzero(loud[middle:])
        if before.size and after.size and middle + after[0] - (start + before[-1] + 1) >= gap:
            segments.append((start, start + int(before[-1]) + 1))
            start = middle + int(after[0])
    segments.append((start, len(wav)))
    return segments


def _to_rate(wav: np.ndarray, orig_sr: int, sr: int) -> np.ndarray:
    from aics.core.audio import resample

    if orig_sr == sr:
        return wav
    try:
        return resample(wav, orig_sr, sr).numpy()
    except ValueError:  # a ratio too awkward for the polyphase filter: linear interpolation will do
        n = int(math.ceil(len(wav) * sr / orig_sr))
        return np.interp(np.arange(n) * (orig_sr / sr), np.arange(len(wav)), wav).astype(np.float32)


def _recording(path: Path, name: str, sr: int) -> Recording | None:
    """A file's audible part at ``sr``, unit RMS; None when it cannot be read or is (nearly) silent."""
    from aics.core.audio import read_wav

    try:
        wav, file_sr = read_wav(path)
    except UserError:
        return None
    wav = _to_rate(wav.numpy(), file_sr, sr)
    start, end = audible_span(wav, sr)
    if (end - start) * 1000 < MIN_EVENT_MS * sr:
        return None
    audible = _unit_rms(wav[start:end])
    audible.setflags(write=False)
    return Recording(name, audible)


def _espeak_pool(exe: str, sr: int) -> tuple[tuple[Recording, ...], dict]:
    """ESPEAK_POOL_SIZE sentences spoken by espeak-ng (one run each, in parallel, into a temp dir)."""
    rng = np.random.default_rng(ESPEAK_POOL_SEED)
    order = rng.permutation(len(SENTENCES))
    recordings, settings = [], []
    with tempfile.TemporaryDirectory(prefix="aics-sed-espeak-") as tmp:
        runs = []
        for j in range(ESPEAK_POOL_SIZE):
            variant = ESPEAK_VARIANTS[int(rng.integers(len(ESPEAK_VARIANTS)))]
            voice = f"{ESPEAK_VOICES[j % len(ESPEAK_VOICES)]}+{variant}"
            speed, pitch = int(rng.integers(120, 200)), int(rng.integers(20, 80))
            path = Path(tmp) / f"utt{j:02d}.wav"
            cmd = [
                exe,
                "-v",
                voice,
                "-s",
                str(speed),
                "-p",
                str(pitch),
                "-w",
                str(path),
                SENTENCES[order[j % len(order)]],
            ]
            try:
                proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            except OSError:
                break
            runs.append((j, voice, speed, pitch, path, proc))
        deadline = time.monotonic() + ESPEAK_TIMEOUT_S
        for j, voice, speed, pitch, path, proc in runs:
            try:
                ok = proc.wait(timeout=max(0.1, deadline - time.monotonic())) == 0
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                ok = False
            rec = _recording(path, f"espeak-ng/utt{j:02d}", sr) if ok and path.is_file() else None
            if rec is not None:
                recordings.append(rec)
                settings.append({"name": rec.name, "voice": voice, "speed": speed, "pitch": pitch})
    try:
        version = subprocess.run(
            [exe, "--version"], capture_output=True, text=True, timeout=10
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        version = ""
    return tuple(recordings), {"path": exe, "version": version, "utterances": settings}


@functools.lru_cache(maxsize=2)
def _load_pool(sr: int, freedesktop: str, alsa: str, espeak: str | None) -> SourcePool:
    fd, al = Path(freedesktop), Path(alsa)
    events: dict[str, dict[str, tuple[Recording, ...]]] = {}
    found: dict[str, list[str]] = {}

    def load(cls: str, group: str, folder: Path, tag: str, names: tuple[str, ...]) -> None:
        paths = [folder / name for name in names if (folder / name).is_file()]
        found.setdefault(cls, []).extend(str(p) for p in paths)
        recs = tuple(r for r in (_recording(p, f"{tag}/{p.name}", sr) for p in paths) if r is not None)
        if recs:
            events.setdefault(cls, {})[group] = recs

    load("Alarm_bell_ringing", "recordings", fd, "freedesktop", ALARM_RECORDINGS)
    load("Speech", "recordings", al, "alsa", SPEECH_RECORDINGS)
    if "Speech" not in events:
        load("Speech", "recordings", fd, "freedesktop", SPEECH_RECORDINGS_OGA)
    noise_files = ((al / NOISE_RECORDING, "alsa"), (fd / NOISE_RECORDING_OGA, "freedesktop"))
    noise_path, tag = next(((p, tag) for p, tag in noise_files if p.is_file()), (None, ""))
    found["background"] = [str(noise_path)] if noise_path else []
    noise = _recording(noise_path, f"{tag}/{noise_path.name}", sr) if noise_path else None
    espeak_info = None
    if espeak:
        utterances, espeak_info = _espeak_pool(espeak, sr)
        found.setdefault("Speech", []).append(espeak)
        if utterances:
            events.setdefault("Speech", {})["espeak-ng"] = utterances
    return SourcePool(events, (noise,) if noise else (), found, espeak_info)


def load_sources(sample_rate: int, mode: str = "auto") -> SourcePool:
    """The recorded sources on this machine (``mode="auto"``, cached per process), or none (``generated``)."""
    if mode == "generated":
        return SourcePool({}, (), {}, None)
    return _load_pool(int(sample_rate), str(FREEDESKTOP_DIR), str(ALSA_DIR), shutil.which(ESPEAK))


def _vary_recording(
    rng: np.random.Generator, label: str, pool: SourcePool, group: str, sr: int, max_s: float
) -> tuple[np.ndarray, str]:
    """A recorded event with a random speed, repeated (short rings), cropped (long ones) or, for speech,
    sometimes two utterances in a row. Returns (wav, source name)."""
    items = pool.events[label][group]
    rec = items[int(rng.integers(len(items)))]
    rate = 2 ** (rng.uniform(-1, 1) / 12)

    def speed(wav: np.ndarray) -> np.ndarray:
        n = int(len(wav) / rate)
        return np.interp(np.arange(n) * rate, np.arange(len(wav)), wav).astype(np.float32)

    x = speed(rec.wav)
    parts = [x]
    length = len(x) / sr
    if label == "Alarm_bell_ringing" and length < 2.0:
        repeats = int(rng.integers(2, 9)) if length < 1.0 else int(rng.integers(1, 4))
        for _ in range(repeats - 1):
            parts += [np.zeros(_n(rng.uniform(0.05, 0.5) if length < 1.0 else rng.uniform(0.2, 1.0), sr)), x]
    elif label == "Alarm_bell_ringing" and length > 2.0:
        parts = [x[: _n(rng.uniform(1.5, min(length, 6.0)), sr)]]
    elif label == "Speech" and rng.random() < 0.35:
        other = speed(items[int(rng.integers(len(items)))].wav)
        parts += [np.zeros(_n(rng.uniform(0.15, 0.45), sr)), other]
    return np.concatenate(parts).astype(np.float32)[: _n(max_s, sr)], rec.name


# ----------------------------------------------------------------------------------------------------------
# Clips


@dataclass(frozen=True)
class Event:
    """One placed event: times in whole milliseconds, its class, where it came from and its SNR in dB."""

    onset_ms: int
    offset_ms: int
    label: str
    source: str
    snr_db: float


def ms_to_sample(ms: int, sr: int) -> int:
    """The sample at ``ms`` milliseconds, ``round(ms * sr / 1000)`` in exact integer arithmetic."""
    return (ms * sr + 500) // 1000


def _ms_at_or_after(sample: int, sr: int) -> int:
    """The first whole millisecond whose sample (``ms_to_sample``) is ``sample`` or later."""
    ms = sample * 1000 // sr
    while ms_to_sample(ms, sr) < sample:
        ms += 1
    return ms


def _ms_at_or_before(sample: int, sr: int) -> int:
    """The last whole millisecond whose sample is ``sample`` or earlier."""
    ms = -(-sample * 1000 // sr)
    while ms_to_sample(ms, sr) > sample:
        ms -= 1
    return ms


def format_ms(ms: int) -> str:
    """Milliseconds as seconds with 3 decimals, exactly (no float rounding)."""
    return f"{ms // 1000}.{ms % 1000:03d}"


def render_event(
    rng: np.random.Generator, label: str, sr: int, max_n: int, pool: SourcePool
) -> tuple[np.ndarray, str]:
    """An event of class ``label``, at most ``max_n`` samples, cut to its audible part; and its source."""
    groups = ["generated", *sorted(pool.events.get(label, {}))]
    wav, source = np.zeros(0, np.float32), "generated"
    for attempt in range(20):  # a recording cropped into near silence: draw again (generated after 5 tries)
        group = groups[int(rng.integers(len(groups)))] if attempt < 5 else "generated"
        if group == "generated":
            wav, source = GENERATORS[label](rng, sr, max_n / sr)[:max_n], "generated"
        else:
            wav, source = _vary_recording(rng, label, pool, group, sr, max_n / sr)
        start, end = audible_span(wav, sr)
        wav = wav[start:end]
        if len(wav) * 1000 >= (MIN_EVENT_MS + 1) * sr:
            break
    return wav.astype(np.float32), source


def background(rng: np.random.Generator, n: int, sr: int, pool: SourcePool) -> np.ndarray:
    """(n,) unit-RMS coloured noise: pink/brown mix, random tilt and band edges, slow level drift, and
    sometimes a noise recording looped underneath."""
    pink = rng.uniform(0.0, 1.0)
    tilt, high, low = rng.uniform(-0.3, 0.3), _cap(rng.uniform(3000, 16000), sr), rng.uniform(20, 80)

    def gain(f: np.ndarray) -> np.ndarray:
        f = np.maximum(f, 1.0)
        power = pink / f + (1 - pink) * 100.0 / (f * f)
        return np.sqrt(power) * (f / 1000) ** tilt * _lowpass(f, high, 1) * _highpass(f, low)

    x = _shaped_noise(rng, n, sr, gain) * _wobble(rng, n, sr, rng.uniform(0.3, 1.0), rng.uniform(0.7, 2.0))
    if pool.background and rng.random() < NOISE_RECORDING_P:
        rec = pool.background[int(rng.integers(len(pool.background)))].wav
        looped = rec[(int(rng.integers(len(rec))) + np.arange(n)) % len(rec)]
        x = x + 10 ** (rng.uniform(-10, -2) / 20) * looped
    return _unit_rms(x)


def clip_name(rng: np.random.Generator, duration_ms: int) -> str:
    """``Y<11 url-safe characters>_<start>.000_<end>.000.wav``, as the real clips (YouTube id, seconds)."""
    ytid = "".join(ID_ALPHABET[i] for i in rng.integers(len(ID_ALPHABET), size=11))
    start = int(rng.integers(0, MAX_START_S)) * 1000
    return f"Y{ytid}_{format_ms(start)}_{format_ms(start + duration_ms)}.wav"


def render_clip(
    rng: np.random.Generator,
    first_label: str,
    sr: int,
    duration_ms: int,
    snr_db: tuple[float, float],
    pool: SourcePool,
) -> tuple[np.ndarray, list[Event]]:
    """One clip: ``(pcm int16 (T,), events sorted by onset)``; its first event has class ``first_label``."""
    n = ms_to_sample(duration_ms, sr)
    bg = background(rng, n, sr, pool)
    mix = bg.copy()
    count = int(rng.choice(len(EVENT_COUNT_P), p=EVENT_COUNT_P)) + 1
    labels = [first_label] + [CLASSES[int(k)] for k in rng.integers(len(CLASSES), size=count - 1)]
    events: list[Event] = []
    blocks: list[tuple[str, int, int]] = []  # (label, onset, offset) of each rendered event
    for label in labels:
        wav, source = render_event(rng, label, sr, n, pool)
        length_ms = min(duration_ms, (len(wav) - 1) * 1000 // sr)  # whole ms that fit in the samples
        if length_ms < MIN_EVENT_MS:
            continue
        same = [(a, b) for other, a, b in blocks if other == label]
        gap = SAME_CLASS_GAP_MS
        for _ in range(PLACEMENT_TRIES):
            onset = int(rng.integers(0, duration_ms - length_ms + 1))
            if all(onset + length_ms + gap <= a or onset >= b + gap for a, b in same):
                break
        else:
            continue  # no room beside its own class: drop it
        blocks.append((label, onset, onset + length_ms))
        start, end = ms_to_sample(onset, sr), ms_to_sample(onset + length_ms, sr)
        snr = float(rng.uniform(*snr_db))
        power_bg = float(np.mean(np.square(bg[start:end], dtype=np.float64)))
        power_ev = float(np.mean(np.square(wav[: end - start], dtype=np.float64)))
        part = wav[: end - start] * np.float32(math.sqrt(power_bg * 10 ** (snr / 10) / max(power_ev, 1e-20)))
        # Only the labelled parts are mixed in: what lies between them (below the audible threshold, yet
        # above the background at a high SNR) and the slivers (< 1 ms) that inner edges lose when they move
        # onto the ms grid are left out.
        for a, b in audible_segments(part, sr):
            on = onset if a == 0 else _ms_at_or_after(start + a, sr)
            off = onset + length_ms if b == len(part) else _ms_at_or_before(start + b, sr)
            if off > on:
                lo, hi = ms_to_sample(on, sr), ms_to_sample(off, sr)
                mix[lo:hi] += part[lo - start : hi - start]
                events.append(Event(on, off, label, source, round(snr, 2)))
    mix *= np.float32(rng.uniform(*PEAK_RANGE) / max(float(np.abs(mix).max()), 1e-12))
    pcm = np.round(mix * 32767.0).astype(np.int16)
    return pcm, sorted(events, key=lambda e: (e.onset_ms, e.offset_ms, e.label))


# ----------------------------------------------------------------------------------------------------------
# The dataset


def _check_count(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= value <= MAX_CLIPS:
        raise UserError(f"{name} {value!r}: must be a whole number from 0 to {MAX_CLIPS}")
    return int(value)


def _check_args(
    counts: dict[str, int],
    sample_rate: object,
    duration: object,
    snr_db: object,
    seed: object,
    sources: object,
) -> tuple[int, int, tuple[float, float], int]:
    """The checked ``(sample_rate, duration in ms, snr_db, seed)``; a UserError names the first bad one."""
    if sum(counts.values()) == 0:
        raise UserError("n_weak, n_unlabel, n_test and n_eval are all 0: ask for at least one clip")
    lo_sr, hi_sr = SAMPLE_RATE_RANGE
    if (
        isinstance(sample_rate, bool)
        or not isinstance(sample_rate, (int, np.integer))
        or not lo_sr <= sample_rate <= hi_sr
    ):
        raise UserError(f"sample_rate {sample_rate!r}: must be a whole number of Hz from {lo_sr} to {hi_sr}")
    lo_d, hi_d = DURATION_RANGE
    if isinstance(duration, bool) or not isinstance(duration, (int, float)) or not lo_d <= duration <= hi_d:
        raise UserError(f"duration {duration!r}: must be a number of seconds from {lo_d:g} to {hi_d:g}")
    duration_ms = round(duration * 1000)
    if abs(duration * 1000 - duration_ms) > 1e-6:
        raise UserError(f"duration {duration!r}: must be a whole number of milliseconds (e.g. 10.0)")
    try:
        lo, hi = (float(v) for v in snr_db)
    except (TypeError, ValueError):
        raise UserError(f"snr_db {snr_db!r}: must be two numbers (low, high) in dB") from None
    lo_l, hi_l = SNR_LIMITS
    if not (lo_l <= lo <= hi <= hi_l):
        raise UserError(f"snr_db {snr_db!r}: needs {lo_l:g} <= low <= high <= {hi_l:g} (dB)")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise UserError(f"seed {seed!r}: must be a whole number, at least 0")
    if sources not in SOURCE_MODES:
        raise UserError(f"sources {sources!r}: must be one of {', '.join(SOURCE_MODES)}")
    return int(sample_rate), duration_ms, (lo, hi), int(seed)


def _tsv(header: tuple[str, ...], rows: list[tuple]) -> str:
    return "".join("\t".join(str(v) for v in row) + "\n" for row in [header, *rows])


def generate(
    out: str | Path,
    n_weak: int = 200,
    n_unlabel: int = 50,
    n_test: int = 60,
    n_eval: int = 60,
    sample_rate: int = 44100,
    duration: float = 10.0,
    snr_db: tuple[float, float] = (0.0, 15.0),
    seed: int = 0,
    overwrite: bool = False,
    sources: str = "auto",
    show_progress: bool = True,
) -> dict:
    """Write the dataset into ``out`` (a stage: skipped when done, ``overwrite`` redoes it).

    ``n_weak``, ``n_unlabel``, ``n_test``, ``n_eval``: clips per split (0 writes a header-only metadata
    file). ``sample_rate`` (Hz) and ``duration`` (s, whole ms) of every clip. ``snr_db``: the (low, high)
    range each event's event-to-background ratio is drawn from, uniformly. ``sources``: ``"auto"`` (the
    recordings and espeak-ng found on this machine, plus generated events) or ``"generated"`` (generated
    only: the same files on every machine). Returns synth.json's content plus ``out_dir`` and ``events``
    (the path of synth_events.tsv).
    """
    counts = {
        "weak": _check_count("n_weak", n_weak),
        "unlabel_in_domain": _check_count("n_unlabel", n_unlabel),
        "test": _check_count("n_test", n_test),
        "eval": _check_count("n_eval", n_eval),
    }
    sr, duration_ms, snr, seed = _check_args(counts, sample_rate, duration, snr_db, seed, sources)
    out = Path(out)
    params = {
        "n_weak": counts["weak"],
        "n_unlabel": counts["unlabel_in_domain"],
        "n_test": counts["test"],
        "n_eval": counts["eval"],
        "sample_rate": sr,
        "duration": duration_ms / 1000,
        "snr_db": list(snr),
        "seed": seed,
        "sources": sources,
        "format": FORMAT_VERSION,
    }
    paths = {"out_dir": str(out), "events": str(out / EVENTS_FILE)}
    if not begin_stage(out, overwrite, what="synth", params=params):
        return {**read_json(out / INFO_FILE), **paths}

    import soundfile

    pool = load_sources(sr, sources)
    used = {label: Counter() for label in CLASSES}
    per_split: dict[str, dict] = {}
    all_events: list[tuple] = []
    for split_id, split in enumerate(SPLITS):
        audio_dir = out / AUDIO_DIRS[split]
        audio_dir.mkdir(parents=True, exist_ok=True)
        order = np.random.default_rng((seed, 1000 + split_id)).permutation(len(CLASSES))
        rows: list[tuple] = []
        class_counts = Counter()
        names: set[str] = set()
        for i in progress(range(counts[split]), desc=f"synth {split}", enabled=show_progress):
            rng = np.random.default_rng((seed, split_id, i))
            name = clip_name(rng, duration_ms)
            while name in names:  # never in practice (64^11 ids), but a clash would overwrite a clip
                name = clip_name(rng, duration_ms)
            names.add(name)
            pcm, events = render_clip(rng, CLASSES[order[i % len(CLASSES)]], sr, duration_ms, snr, pool)
            # Plain writes: the .done marker written last is what says the dataset is complete.
            soundfile.write(str(audio_dir / name), pcm, sr, subtype="PCM_16", format="WAV")
            for e in events:
                used[e.label][e.source] += 1
                class_counts[e.label] += 1
                all_events.append(
                    (split, name, format_ms(e.onset_ms), format_ms(e.offset_ms), e.label, e.source, e.snr_db)
                )
            if split in STRONG_SPLITS:
                rows += [(name, format_ms(e.onset_ms), format_ms(e.offset_ms), e.label) for e in events]
            elif split == "weak":
                present = {e.label for e in events}
                rows.append((name, ",".join(c for c in CLASSES if c in present)))
            else:
                rows.append((name,))
        header = (
            STRONG_HEADER if split in STRONG_SPLITS else WEAK_HEADER if split == "weak" else UNLABELLED_HEADER
        )
        write_text(out / METADATA[split], _tsv(header, rows))
        per_split[split] = {
            "clips": counts[split],
            "events": sum(class_counts.values()),
            "seconds": counts[split] * duration_ms / 1000,
            "events_per_class": {c: class_counts[c] for c in CLASSES},
        }
    write_text(out / EVENTS_FILE, _tsv(EVENTS_HEADER, all_events))
    info = {
        "format": FORMAT_VERSION,
        "params": params,
        "classes": list(CLASSES),
        "sources": {
            "mode": sources,
            "espeak_ng": pool.espeak,
            "background_recordings": pool.found.get("background", []),
            "classes": {
                c: {"found": pool.found.get(c, []), "used": dict(sorted(used[c].items()))} for c in CLASSES
            },
        },
        "splits": per_split,
        "total_clips": sum(counts.values()),
        "total_seconds": sum(counts.values()) * duration_ms / 1000,
        "events_file": EVENTS_FILE,
    }
    write_json(out / INFO_FILE, info)
    mark_done(out, {split: s["clips"] for split, s in per_split.items()}, params=params)
    return {**info, **paths}
