"""Offline speech corpora from Debian's speech synthesizers, in the LJSpeech or the LibriTTS layout.

Usage: aics asr synth --out data/asr_synth --layout libritts --minutes 60 --heldout-voice flite-rms

Sentences come from ``text.SentenceGenerator`` (seeded); the synthesizers read their expanded form
(numbers and abbreviations written out), so the audio says exactly the words of the transcript. Each
utterance gets a voice (round robin over the split's voices), a speaking rate and a pitch factor drawn
from ``speed_range`` / ``pitch_range`` (where the engine can change them), and for espeak-ng voices a
variant. The engine's wav (8 to 32 kHz) is trimmed of leading and trailing silence (keeping ``PAD_S``),
resampled to the corpus rate, brought to ``TARGET_DBFS`` RMS (peaks kept under ``PEAK``) and written as
16-bit PCM.

Layouts:

- ``ljspeech`` (one voice, for Tacotron2): ``wavs/<ID>.wav`` at 22050 Hz and ``metadata.csv`` with
  ``ID|raw text|normalised text`` (no header; the normalised text keeps case and punctuation, numbers
  and abbreviations expanded, as LJSpeech's third column). IDs follow LJSpeech's ``LJ001-0001`` pattern
  with the speaker's two letters (``SL001-0001`` for slt).
- ``libritts`` (many voices, for VALL-E and held-out-speaker tests):
  ``<subset>/<reader>/<chapter>/<reader>_<chapter>_<para>_<sent>.wav`` at 24 kHz with
  ``.normalized.txt`` and ``.original.txt`` beside each wav, ``<reader>_<chapter>.trans.tsv`` per chapter
  (``id<TAB>original<TAB>normalized``) and ``speakers.tsv`` (``READER GENDER SUBSET NAME``, tab
  separated). A reader is a recorded speaker (``engines.SPEAKERS``); a chapter is one voice of that speaker
  in one subset (chapter = voice code * 10 + subset number). Subsets: ``train``, ``dev`` and ``test``
  have disjoint sentences and every voice of ``voices`` speaks in each; ``test-heldout`` has the speakers of
  ``heldout_voices`` (never heard in train, dev or test) reading the same sentences as ``test``, so a
  word error rate on it against ``test`` measures the unseen-speaker effect alone.

Both layouts also get ``utterances.tsv`` (every utterance's subset, speaker, voice, variant, speed, pitch and
duration) and ``synth.json`` (every setting, engine and package versions, and the per-subset counts and
durations), and ``.done`` last. Sizes are minutes of audio: each subset synthesises utterances in order
until its duration is reached (and every voice has spoken), so the same settings give the same corpus for
any ``workers``. An interrupted run resumes where it stopped when rerun with the same settings.
"""

from __future__ import annotations

import math
import random
import sys
import tempfile
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from aics.core import lock
from aics.core.errors import UserError
from aics.core.io import read_json, write_json, write_text
from aics.core.log import progress
from aics.core.stage import begin_stage, mark_done
from aics.tasks.asr import engines
from aics.tasks.asr.engines import SPEAKERS, SynthItem, Voice
from aics.tasks.asr.text import SentenceGenerator, derive_seed, expand_text, normalize_text

LAYOUTS = ("ljspeech", "libritts")
DEFAULT_SR = {"ljspeech": 22050, "libritts": 24000}
MIN_SR, MAX_SR = 8000, 48000
SUBSETS = ("train", "dev", "test", "test-heldout")
LJSPEECH_SUBSET = "all"
SUBSET_NUMBER = {"train": 1, "dev": 2, "test": 3, "test-heldout": 4, LJSPEECH_SUBSET: 0}
SENTENCE_STREAM = {"train": 0, "dev": 1, "test": 2, "test-heldout": 2, LJSPEECH_SUBSET: 0}
VARIATION_STREAM = 1000  # + SUBSET_NUMBER: the per-utterance speed / pitch / variant draws

SYNTH_JSON, UTTERANCES_TSV, PARTIAL = "synth.json", "utterances.tsv", ".synth-params.json"
METADATA_CSV, SPEAKERS_TSV = "metadata.csv", "speakers.tsv"
LJ_CHAPTER_SIZE = 500  # LJSpeech's chapters hold a few hundred utterances; ids stay XX000-0000
MAX_LJ_UTTERANCES = 999 * LJ_CHAPTER_SIZE

# Audio processing
TRIM_TOP_DB = 40.0
TRIM_FRAME_S = 0.05
PAD_S = 0.1  # silence kept before and after the speech
TARGET_DBFS = -23.0
PEAK = 0.95
SUBTYPE = "PCM_16"

# Scheduling
SECONDS_PER_WORD = 0.36  # typical synthetic speech; only sizes the first batch of a subset
OVERSHOOT = 1.03  # a batch plans this much more audio than is missing, so one batch usually suffices
FESTIVAL_CHUNK = 32  # sentences per festival process
SENTENCE_CHUNK = 8  # sentences per job for the engines that start once per sentence
MAX_DUPLICATES = 2000  # consecutive repeated sentences before the vocabulary is declared too small
SPEED_LIMITS = PITCH_LIMITS = (0.5, 2.0)


@dataclass(frozen=True)
class Utterance:
    subset: str
    index: int  # position in its subset
    id: str
    wav: str  # path relative to the corpus root
    voice: str
    speaker: str
    variant: str  # espeak-ng variant, "" if none
    speed: float
    pitch: float
    original: str
    normalized: str  # expanded text, case and punctuation kept
    transcript: str  # normalize_text: what an ASR model should output


# ------------------------------------------------------------------------------------------------------------
# Arguments


def _check_range(name: str, value: object, limits: tuple[float, float]) -> tuple[float, float]:
    lo_lim, hi_lim = limits
    try:
        lo, hi = (float(x) for x in value)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        raise UserError(f"{name} {value!r}: must be two numbers LOW HIGH") from None
    if not lo_lim <= lo <= hi <= hi_lim:
        raise UserError(f"{name} {lo:g} {hi:g}: need {lo_lim:g} <= LOW <= HIGH <= {hi_lim:g}")
    return lo, hi


def _check_minutes(name: str, value: object, allow_zero: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise UserError(f"{name} {value!r}: must be a number of minutes")
    if value < 0 or (value == 0 and not allow_zero):
        raise UserError(f"{name} {value:g}: must be {'at least 0' if allow_zero else 'more than 0'}")
    return float(value)


def _check_int(name: str, value: object, low: int, high: int | None = None) -> int:
    bounds = f"from {low} to {high}" if high is not None else f"at least {low}"
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or value < low
        or (high is not None and value > high)
    ):
        raise UserError(f"{name} {value!r}: must be a whole number {bounds}")
    return value


def _voice_names(name: str, value: Sequence[str] | str | None) -> list[str]:
    names = [value] if isinstance(value, str) else list(value or ())
    for n in names:
        engines.voice(n)
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise UserError(f"{name}: voice {dup[0]} is listed twice")
    return names


def _espeak_variants(value: Sequence[str] | str | None, ljspeech: bool) -> list[str]:
    """None or empty: the layout's default (every variant for libritts, none for ljspeech); "all"; "none";
    or variant names."""
    names = [value] if isinstance(value, str) else list(value or ())
    if not names:
        names = ["none" if ljspeech else "all"]
    if names == ["all"]:
        return list(engines.ESPEAK_VARIANTS)
    if names == ["none"]:
        return []
    if "all" in names or "none" in names:
        raise UserError(f"espeak_variants {' '.join(names)}: 'all' and 'none' stand alone")
    return list(dict.fromkeys(names))


def resolve_settings(
    layout: str = "libritts",
    voices: Sequence[str] | None = None,
    heldout_voices: Sequence[str] | None = None,
    minutes: float = 10.0,
    dev_minutes: float | None = None,
    test_minutes: float | None = None,
    heldout_minutes: float | None = None,
    seed: int = 0,
    vocab_size: int | None = None,
    min_words: int = 4,
    max_words: int = 24,
    speed_range: Sequence[float] = (0.9, 1.1),
    pitch_range: Sequence[float] = (0.9, 1.1),
    espeak_variants: Sequence[str] | str | None = None,
    sr: int | None = None,
) -> dict:
    """Validate the arguments of ``generate`` and fill in the defaults: the settings that define the corpus
    (written to synth.json; equal settings give an identical corpus)."""
    if layout not in LAYOUTS:
        raise UserError(f"layout {layout!r}: choose one of {', '.join(LAYOUTS)}")
    ljspeech = layout == "ljspeech"
    if voices is None or (not isinstance(voices, str) and len(voices) == 0):
        voices = [engines.DEFAULT_LJSPEECH_VOICE] if ljspeech else list(engines.DEFAULT_VOICES)
    voices = _voice_names("voices", voices)
    heldout = _voice_names("heldout_voices", heldout_voices)
    if ljspeech:
        if len(voices) != 1:
            raise UserError(
                f"the ljspeech layout is one voice, got {len(voices)} ({', '.join(voices)}); pass one"
            )
        for name, value in (("dev_minutes", dev_minutes), ("test_minutes", test_minutes)):
            if value:
                raise UserError(
                    f"{name}: the ljspeech layout has no subsets (split it when preparing the data)"
                )
        if heldout or heldout_minutes:
            raise UserError("heldout_voices: only the libritts layout has a held-out-speaker subset")
    seen = {engines.VOICES[v].speaker for v in voices}
    for name in heldout:
        if name in voices:
            raise UserError(f"heldout_voices: {name} is also in voices; a held-out voice must be unseen")
        if engines.VOICES[name].speaker in seen:
            raise UserError(
                f"heldout_voices: {name} is speaker {engines.VOICES[name].speaker}, who also speaks in "
                "voices; hold out a speaker no training voice has"
            )
    minutes = _check_minutes("minutes", minutes, allow_zero=False)
    subsets: dict[str, float] = {}
    if ljspeech:
        subsets[LJSPEECH_SUBSET] = minutes
    else:
        subsets["train"] = minutes
        subsets["dev"] = _check_minutes(
            "dev_minutes", minutes / 10 if dev_minutes is None else dev_minutes, True
        )
        subsets["test"] = _check_minutes(
            "test_minutes", minutes / 10 if test_minutes is None else test_minutes, True
        )
        if heldout:
            default = subsets["test"] or minutes / 10
            subsets["test-heldout"] = _check_minutes(
                "heldout_minutes", default if heldout_minutes is None else heldout_minutes, False
            )
        elif heldout_minutes:
            raise UserError("heldout_minutes: give heldout_voices too (the voices of the held-out subset)")
    uses_espeak = any(engines.VOICES[v].engine == "espeak" for v in voices + heldout)
    variants = _espeak_variants(espeak_variants, ljspeech) if uses_espeak else []
    sr = DEFAULT_SR[layout] if sr is None else _check_int("sr", sr, MIN_SR, MAX_SR)
    # the sentence generator validates seed, vocab_size and the length range
    text = SentenceGenerator(seed, vocab_size, min_words, max_words).settings()
    total = sum(subsets.values())
    if ljspeech and total * 60 / (SECONDS_PER_WORD * min_words) > MAX_LJ_UTTERANCES:
        raise UserError(f"minutes {minutes:g}: too many utterances for LJSpeech ids; ask for fewer minutes")
    return {
        "layout": layout,
        "voices": voices,
        "heldout_voices": heldout,
        "minutes": subsets,
        "seed": seed,
        "text": text,
        "speed_range": list(_check_range("speed_range", speed_range, SPEED_LIMITS)),
        "pitch_range": list(_check_range("pitch_range", pitch_range, PITCH_LIMITS)),
        "espeak_variants": variants,
        "sample_rate": sr,
        "audio": {
            "subtype": SUBTYPE,
            "channels": 1,
            "trim_top_db": TRIM_TOP_DB,
            "pad_s": PAD_S,
            "target_dbfs": TARGET_DBFS,
            "peak": PEAK,
        },
    }


# ------------------------------------------------------------------------------------------------------------
# Planning: what each utterance says, and how


class SentencePool:
    """The distinct sentences of one generator stream, in order, skipping ``exclude`` (transcripts already
    used by another subset) and repeats."""

    def __init__(self, generator: SentenceGenerator, stream: int, exclude: set[str] | None = None):
        self.generator, self.stream = generator, stream
        self.exclude = exclude or set()
        self.sentences: list[str] = []
        self.keys: list[str] = []
        self._seen: set[str] = set()
        self._next = 0

    def __getitem__(self, k: int) -> str:
        while len(self.sentences) <= k:
            for _ in range(MAX_DUPLICATES):
                raw = self.generator.sentence(self._next, self.stream)
                self._next += 1
                key = normalize_text(raw)
                if key not in self._seen and key not in self.exclude:
                    self._seen.add(key)
                    self.sentences.append(raw)
                    self.keys.append(key)
                    break
            else:
                raise UserError(
                    f"the sentence generator repeats itself after {len(self.sentences)} sentences; "
                    "raise vocab_size or max_words, or ask for fewer minutes"
                )
        return self.sentences[k]


def _lj_prefix(speaker: str) -> str:
    letters = "".join(ch for ch in speaker.upper() if ch.isalpha())
    return (letters + "XX")[:2]


def plan_utterance(settings: dict, subset: str, index: int, pool: SentencePool) -> Utterance:
    voices = settings["heldout_voices"] if subset == "test-heldout" else settings["voices"]
    v = engines.VOICES[voices[index % len(voices)]]
    rng = random.Random(derive_seed(settings["seed"], VARIATION_STREAM + SUBSET_NUMBER[subset], index))
    speed = round(rng.uniform(*settings["speed_range"]), 3)
    pitch = round(rng.uniform(*settings["pitch_range"]), 3)
    variants = settings["espeak_variants"]
    variant = variants[rng.randrange(len(variants))] if v.engine == "espeak" and variants else ""
    if not v.speed:
        speed = 1.0
    if not v.pitch:
        pitch = 1.0
    raw = pool[index]
    if settings["layout"] == "ljspeech":
        chapter, number = divmod(index, LJ_CHAPTER_SIZE)
        uid = f"{_lj_prefix(v.speaker)}{chapter + 1:03d}-{number + 1:04d}"
        wav = f"wavs/{uid}.wav"
    else:
        reader = SPEAKERS[v.speaker].reader
        chapter = v.code * 10 + SUBSET_NUMBER[subset]
        uid = f"{reader}_{chapter}_{index:06d}_000000"
        wav = f"{subset}/{reader}/{chapter}/{uid}.wav"
    return Utterance(
        subset=subset,
        index=index,
        id=uid,
        wav=wav,
        voice=v.name,
        speaker=v.speaker,
        variant=variant,
        speed=speed,
        pitch=pitch,
        original=raw,
        normalized=expand_text(raw),
        transcript=normalize_text(raw),
    )


# ------------------------------------------------------------------------------------------------------------
# Audio


def finish_audio(native: Path, out: Path, sr: int) -> int:
    """Trim, resample, normalise and write ``native`` (an engine's wav) as ``out``; returns its samples."""
    from aics.core.audio import loudness_normalize, read_wav, resample, trim_silence, write_wav

    wav, native_sr = read_wav(native)
    frame = max(16, round(TRIM_FRAME_S * native_sr))
    _, (start, end) = trim_silence(wav, top_db=TRIM_TOP_DB, frame_length=frame, hop_length=frame // 4)
    if end <= start:
        raise UserError(f"{out.name}: the synthesizer produced silence; try another voice or sentence")
    pad = round(PAD_S * native_sr)
    wav = wav[max(0, start - pad) : min(len(wav), end + pad)]
    wav = loudness_normalize(resample(wav, native_sr, sr), TARGET_DBFS)
    peak = float(wav.abs().max())
    if peak > PEAK:
        wav = wav * (PEAK / peak)
    write_wav(out, wav, sr, subtype=SUBTYPE)
    return int(wav.shape[-1])


def _wav_samples(path: Path) -> int:
    from aics.core.audio import audio_info

    return audio_info(path)[0]


def _run_job(root: Path, sr: int, voice: Voice, utts: list[Utterance]) -> list[int]:
    """Synthesise ``utts`` (all of one voice) into the corpus; a wav already there (a resumed run) is kept."""
    todo = [u for u in utts if not (root / u.wav).is_file()]
    if todo:
        with tempfile.TemporaryDirectory(prefix="aics-synth-") as tmp:
            items = [
                SynthItem(u.normalized, Path(tmp) / f"{k}.wav", u.speed, u.pitch, u.variant or None)
                for k, u in enumerate(todo)
            ]
            engines.synthesize(voice, items)
            for item, u in zip(items, todo, strict=True):
                finish_audio(item.path, root / u.wav, sr)
    return [_wav_samples(root / u.wav) for u in utts]


def _jobs(utts: list[Utterance]) -> list[tuple[Voice, list[Utterance]]]:
    by_voice: dict[str, list[Utterance]] = {}
    for u in utts:
        by_voice.setdefault(u.voice, []).append(u)
    jobs = []
    for name, group in by_voice.items():
        v = engines.VOICES[name]
        size = FESTIVAL_CHUNK if v.engine == "festival" else SENTENCE_CHUNK
        jobs += [(v, group[i : i + size]) for i in range(0, len(group), size)]
    # festival's long jobs first, so the workers finish together
    return sorted(jobs, key=lambda job: -len(job[1]) * (3 if job[0].engine == "festival" else 1))


def synth_subset(
    root: Path,
    settings: dict,
    subset: str,
    pool: SentencePool,
    pool_executor: ThreadPoolExecutor,
    on_audio: Callable[[float], None],
) -> list[tuple[Utterance, int]]:
    """Utterances 0, 1, 2, ... of ``subset`` until its minutes are reached and each voice has spoken:
    ``[(utterance, samples)]``. Batches are planned from the durations so far; any surplus utterance of the
    last batch is dropped (its wav deleted), so the result does not depend on the batch sizes."""
    sr = settings["sample_rate"]
    target = settings["minutes"][subset] * 60 * sr
    n_voices = len(settings["heldout_voices"] if subset == "test-heldout" else settings["voices"])
    kept: list[tuple[Utterance, int]] = []
    total, index = 0, 0
    while total < target or len(kept) < n_voices:
        remaining = max(0.0, target - total)
        per_utt = total / len(kept) if kept else SECONDS_PER_WORD * sr * pool.generator.max_words * 0.6
        count = max(n_voices - len(kept), math.ceil(OVERSHOOT * remaining / per_utt), 1)
        batch = [plan_utterance(settings, subset, i, pool) for i in range(index, index + count)]
        index += count
        jobs = _jobs(batch)
        samples: dict[str, int] = {}
        for (_, group), result in zip(
            jobs, pool_executor.map(lambda j: _run_job(root, sr, *j), jobs), strict=True
        ):
            for u, n in zip(group, result, strict=True):
                samples[u.id] = n
                on_audio(n / sr)
        for k, u in enumerate(batch):
            if total >= target and len(kept) >= n_voices:
                for surplus in batch[k:]:
                    (root / surplus.wav).unlink(missing_ok=True)
                break
            kept.append((u, samples[u.id]))
            total += samples[u.id]
    return kept


# ------------------------------------------------------------------------------------------------------------
# Layout files


def _write_ljspeech(root: Path, utts: list[tuple[Utterance, int]]) -> None:
    lines = [f"{u.id}|{u.original}|{u.normalized}\n" for u, _ in utts]
    write_text(root / METADATA_CSV, "".join(lines))


def _write_libritts(root: Path, utts: list[tuple[Utterance, int]]) -> None:
    chapters: dict[Path, list[Utterance]] = {}
    for u, _ in utts:
        wav = root / u.wav
        # LibriTTS's text files hold the text alone, without a final newline
        write_text(wav.with_suffix(".normalized.txt"), u.normalized)
        write_text(wav.with_suffix(".original.txt"), u.original)
        chapters.setdefault(wav.parent, []).append(u)
    for folder, group in chapters.items():
        reader, chapter = folder.parent.name, folder.name
        rows = "".join(f"{u.id}\t{u.original}\t{u.normalized}\n" for u in group)
        write_text(folder / f"{reader}_{chapter}.trans.tsv", rows)
    subsets: dict[str, list[str]] = {}
    for u, _ in utts:
        names = subsets.setdefault(u.speaker, [])
        if u.subset not in names:
            names.append(u.subset)
    rows = ["READER\tGENDER\tSUBSET\tNAME\n"]
    for label in sorted(subsets, key=lambda s: SPEAKERS[s].reader):
        s = SPEAKERS[label]
        rows.append(f"{s.reader}\t{s.gender}\t{','.join(subsets[label])}\t{s.name}\n")
    write_text(root / SPEAKERS_TSV, "".join(rows))


def _write_utterances(root: Path, utts: list[tuple[Utterance, int]], sr: int) -> None:
    rows = ["id\tsubset\tspeaker\treader\tvoice\tvariant\tspeed\tpitch\tseconds\twav\ttranscript\n"]
    for u, n in utts:
        reader = SPEAKERS[u.speaker].reader
        rows.append(
            f"{u.id}\t{u.subset}\t{u.speaker}\t{reader}\t{u.voice}\t{u.variant}\t{u.speed:g}\t{u.pitch:g}\t"
            f"{n / sr:.3f}\t{u.wav}\t{u.transcript}\n"
        )
    write_text(root / UTTERANCES_TSV, "".join(rows))


def _remove_strays(root: Path, keep: set[str]) -> None:
    """Wavs of an interrupted run that the finished corpus does not use, and temp files."""
    for path in root.rglob("*"):
        if not path.is_file():
            continue
        rel = path.relative_to(root).as_posix()
        stray_wav = path.suffix == ".wav" and rel not in keep
        if stray_wav or (path.name.startswith(".") and path.name.endswith(".tmp")):
            path.unlink()


def _summary(utts: list[tuple[Utterance, int]], sr: int) -> dict:
    subsets: dict[str, dict] = {}
    for u, n in utts:
        s = subsets.setdefault(u.subset, {"utterances": 0, "seconds": 0.0, "words": 0, "voices": {}})
        s["utterances"] += 1
        s["seconds"] += n / sr
        s["words"] += len(u.transcript.split())
        s["voices"][u.voice] = s["voices"].get(u.voice, 0) + 1
    for s in subsets.values():
        s["seconds"] = round(s["seconds"], 3)
        s["minutes"] = round(s["seconds"] / 60, 3)
    return subsets


# ------------------------------------------------------------------------------------------------------------
# The corpus


def _order(settings: dict) -> list[str]:
    if settings["layout"] == "ljspeech":
        return [LJSPEECH_SUBSET]
    # test first: its sentences stay the same when only the training size changes
    return [s for s in ("test", "test-heldout", "dev", "train") if settings["minutes"].get(s)]


def generate(
    out: str | Path,
    layout: str = "libritts",
    voices: Sequence[str] | None = None,
    heldout_voices: Sequence[str] | None = None,
    minutes: float = 10.0,
    dev_minutes: float | None = None,
    test_minutes: float | None = None,
    heldout_minutes: float | None = None,
    seed: int = 0,
    vocab_size: int | None = None,
    min_words: int = 4,
    max_words: int = 24,
    speed_range: Sequence[float] = (0.9, 1.1),
    pitch_range: Sequence[float] = (0.9, 1.1),
    espeak_variants: Sequence[str] | str | None = None,
    sr: int | None = None,
    workers: int = 2,
    overwrite: bool = False,
    show_progress: bool = True,
) -> dict:
    """Write a speech corpus into ``out``; return the content of its synth.json plus ``out``.

    ``voices``: names from ``engines.VOICES`` (default: festival-slt for ljspeech, the five recorded speakers
    ``engines.DEFAULT_VOICES`` for libritts). ``minutes``: the audio of the whole ljspeech corpus or of the
    libritts train subset; ``dev_minutes`` / ``test_minutes`` default to a tenth of it (0: no such subset),
    ``heldout_minutes`` to ``test_minutes``. ``espeak_variants``: drawn per utterance for espeak-ng voices:
    variant names, "all" (``engines.ESPEAK_VARIANTS``) or "none"; None or empty: "all" for libritts, "none"
    for ljspeech. ``sr``: default 22050 (ljspeech) or 24000 (libritts). ``workers`` changes the speed only,
    never the corpus.
    """
    settings = resolve_settings(
        layout=layout,
        voices=voices,
        heldout_voices=heldout_voices,
        minutes=minutes,
        dev_minutes=dev_minutes,
        test_minutes=test_minutes,
        heldout_minutes=heldout_minutes,
        seed=seed,
        vocab_size=vocab_size,
        min_words=min_words,
        max_words=max_words,
        speed_range=speed_range,
        pitch_range=pitch_range,
        espeak_variants=espeak_variants,
        sr=sr,
    )
    workers = _check_int("workers", workers, 1, 64)
    engines.check_engines(settings["voices"] + settings["heldout_voices"], settings["espeak_variants"])
    root = Path(out)
    params = {k: settings[k] for k in sorted(settings)}

    def resumable(path: Path) -> bool:
        return (path / PARTIAL).is_file()

    if not begin_stage(root, overwrite, what="asr synth", resumable=resumable, params=params):
        return {**read_json(root / SYNTH_JSON), "out": str(root)}
    try:
        info = _synthesize_corpus(root, settings, params, workers, show_progress)
    except BaseException:
        lock.release(root)  # the directory stays resumable: rerun with the same settings to continue
        raise
    mark_done(root, {"utterances": sum(s["utterances"] for s in info["subsets"].values())}, params=params)
    return {**info, "out": str(root)}


def _synthesize_corpus(root: Path, settings: dict, params: dict, workers: int, show_progress: bool) -> dict:
    if (root / PARTIAL).is_file():
        if read_json(root / PARTIAL) != params:
            raise UserError(
                f"{root}: holds an unfinished corpus made with other settings; pass the same settings to "
                "resume it, or overwrite to start again"
            )
        print(f"asr synth: {root}: resuming an unfinished corpus", file=sys.stderr)
    write_json(root / PARTIAL, params)

    generator = SentenceGenerator(
        settings["seed"],
        settings["text"]["vocab_size"],
        settings["text"]["min_words"],
        settings["text"]["max_words"],
    )
    sr = settings["sample_rate"]
    all_voices = settings["voices"] + settings["heldout_voices"]
    used: set[str] = set()
    pools: dict[str, SentencePool] = {}
    results: list[tuple[Utterance, int]] = []
    total_minutes = sum(settings["minutes"].values())
    with (
        progress(total=round(total_minutes * 60), desc="asr synth", unit="s", enabled=show_progress) as bar,
        ThreadPoolExecutor(max_workers=workers) as executor,
    ):
        for subset in _order(settings):
            stream = SENTENCE_STREAM[subset]
            if subset == "test-heldout" and "test" in pools:
                pool = pools["test"]
            else:
                pool = SentencePool(generator, stream, exclude=set(used))
            pools[subset] = pool
            bar.set_description(f"asr synth {subset}")
            kept = synth_subset(root, settings, subset, pool, executor, lambda s: bar.update(round(s)))
            used.update(u.transcript for u, _ in kept)
            results += kept

    results.sort(key=lambda r: (SUBSETS.index(r[0].subset) if r[0].subset in SUBSETS else -1, r[0].index))
    _remove_strays(root, {u.wav for u, _ in results})
    if settings["layout"] == "ljspeech":
        _write_ljspeech(root, results)
    else:
        _write_libritts(root, results)
    _write_utterances(root, results, sr)
    info = {
        **settings,
        "subsets": _summary(results, sr),
        "speakers": {
            label: asdict(SPEAKERS[label])
            for label in dict.fromkeys(engines.VOICES[v].speaker for v in all_voices)
        },
        "voice_details": {name: asdict(engines.VOICES[name]) for name in all_voices},
        "engines": {
            e: engines.engine_versions(e) for e in sorted({engines.VOICES[v].engine for v in all_voices})
        },
        "generator": "aics.tasks.asr.synth",
    }
    from aics import __version__

    info["aics_version"] = __version__
    write_json(root / SYNTH_JSON, info)
    (root / PARTIAL).unlink()
    return info
