"""The WER judge for synthesised speech: transcribe wavs, score them against their texts.

Usage: aics asr judge WAVS --text REFS --out OUT_DIR

Two engines:

- ``pocketsphinx`` (default): CMU PocketSphinx with the English acoustic model and CMUdict that its PyPI
  wheel ships, fully offline. Its language model is a word 3-gram (interpolated Kneser-Ney, ngram.py) built
  from the reference sentences of the whole test set being judged, and its dictionary holds exactly the
  words of those sentences (CMUdict pronunciations; the few words CMUdict lacks get a rough
  letter-to-sound guess and are counted in ``scores.json``). The LM knows the sentences, so the judge asks
  "does the audio let a recogniser pick the right words among the test set's own", a closed-vocabulary
  intelligibility test: a scrambled or mumbled synthesis still loses words, but absolute numbers are far
  below open-vocabulary WERs. Judge the corpus's own recordings the same way: that WER is the reference
  level a synthesiser is held to.
- ``dfcnn``: any ``transcribe_fn(list[Path]) -> list[str]``, e.g. ``aics.tasks.asr.infer.transcriber``.

Outputs (all written atomically): ``hyp.txt`` (``id text`` lines), ``per_utt.jsonl`` (id, ref, hyp, word
and character counts S D I H N) and ``scores.json`` (corpus WER / CER, counts, engine, LM description,
speed).
"""

from __future__ import annotations

import logging
import re
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from aics.core.errors import UserError

ENGINES = ("pocketsphinx", "dfcnn")
SAMPLE_RATE = 16000  # the rate of pocketsphinx's en-us acoustic model
NORMALIZED_SUFFIX = ".normalized.txt"  # LibriTTS transcripts
_SHOWN = 5  # ids listed in a pairing error

log = logging.getLogger("aics")


# ------------------------------------------------------------------------------------------- references
def _read_lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError as e:
        raise UserError(f"{path}: not UTF-8 text ({e.reason}); save the references as UTF-8") from None
    except OSError as e:
        raise UserError(f"{path}: cannot read ({e.strerror})") from None


def read_refs(path: str | Path) -> dict[str, str]:
    """Reference texts by utterance id, from any of:

    - ``id|text`` lines, or LJSpeech's ``metadata.csv`` (``id|raw|normalised``: the last field is used);
    - a Kaldi-style ``text`` file (``id word word ...``);
    - a directory of LibriTTS ``<id>.normalized.txt`` files (searched recursively).

    A file with a ``|`` on its first non-empty line is read as the ``|`` format. Texts are returned as
    written (normalise them before scoring). Duplicate ids and malformed lines are errors with file and line.
    """
    path = Path(path)
    refs: dict[str, str] = {}
    if path.is_dir():
        files = sorted(path.rglob(f"*{NORMALIZED_SUFFIX}"))
        if not files:
            raise UserError(f"{path}: no *{NORMALIZED_SUFFIX} files (LibriTTS transcripts) in this directory")
        where: dict[str, Path] = {}
        for f in files:
            uid = f.name[: -len(NORMALIZED_SUFFIX)]
            if uid in where:
                raise UserError(f"{f}: utterance id {uid} also has a transcript at {where[uid]}")
            where[uid] = f
            refs[uid] = " ".join(_read_lines(f)).strip()
        return refs
    if not path.is_file():
        raise UserError(f"{path}: reference texts not found (give a file or a LibriTTS directory)")
    lines = _read_lines(path)
    first = next((line for line in lines if line.strip()), None)
    if first is None:
        raise UserError(f"{path}: no reference texts in this file")
    piped = "|" in first
    seen_at: dict[str, int] = {}
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        if piped:
            fields = line.split("|")
            if len(fields) < 2:
                raise UserError(f"{path}:{lineno}: expected 'id|text' or 'id|raw|normalised', got {line!r}")
            uid, text = fields[0].strip(), fields[-1].strip()
        else:
            uid, _, text = line.strip().partition(" ")
            text = text.strip()
        if not uid:
            raise UserError(f"{path}:{lineno}: empty utterance id")
        if uid in seen_at:
            raise UserError(f"{path}:{lineno}: utterance id {uid} already appears on line {seen_at[uid]}")
        seen_at[uid] = lineno
        refs[uid] = text
    return refs


# ------------------------------------------------------------------------------------------------- wavs
def find_wavs(source: str | Path) -> dict[str, Path]:
    """Wav files by utterance id (the file stem) from a directory (searched recursively), a single wav, or a
    list file (``.scp``, ``.list``, ``.txt``...) of ``id path`` or ``path`` lines; relative paths in a
    list are relative to the list's directory."""
    source = Path(source)
    wavs: dict[str, Path] = {}
    if source.is_dir():
        for p in sorted(source.rglob("*.wav")):
            if p.stem in wavs:
                raise UserError(f"{p}: utterance id {p.stem} also names {wavs[p.stem]}; ids must be unique")
            wavs[p.stem] = p
        if not wavs:
            raise UserError(f"{source}: no .wav files in this directory")
        return wavs
    if not source.is_file():
        raise UserError(f"{source}: not found (give a directory of wavs or a list file of 'id path' lines)")
    if source.suffix.lower() == ".wav":
        return {source.stem: source}
    seen_at: dict[str, int] = {}
    missing: list[str] = []
    for lineno, line in enumerate(_read_lines(source), 1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) > 2 or line.rstrip().endswith("|"):
            raise UserError(
                f"{source}:{lineno}: expected 'id path' or 'path' (no commands, no spaces in paths), "
                f"got {line!r}"
            )
        p = Path(fields[-1])
        if not p.is_absolute():
            p = source.parent / p
        uid = fields[0] if len(fields) == 2 else p.stem
        if uid in seen_at:
            raise UserError(f"{source}:{lineno}: utterance id {uid} already appears on line {seen_at[uid]}")
        seen_at[uid] = lineno
        if not p.is_file():
            missing.append(f"{p} (line {lineno})")
        wavs[uid] = p
    if missing:
        shown = ", ".join(missing[:_SHOWN]) + (", ..." if len(missing) > _SHOWN else "")
        raise UserError(f"{source}: {len(missing)} listed wav files do not exist: {shown}")
    if not wavs:
        raise UserError(f"{source}: no wav files listed")
    return wavs


def _ids(ids: Iterable[str]) -> str:
    ids = sorted(ids)
    return ", ".join(ids[:_SHOWN]) + (", ..." if len(ids) > _SHOWN else "")


def pair_up(
    refs: dict[str, str],
    wavs: dict[str, Path],
    refs_src: str | Path,
    wavs_src: str | Path,
    allow_missing_wavs: bool = False,
    allow_extra_wavs: bool = False,
) -> tuple[list[tuple[str, Path, str]], dict[str, int]]:
    """(id, wav, reference) for every id that has both, in id order, and what was left out.

    A reference without a wav and a wav without a reference are errors (one line: how many, which ids)
    unless ``allow_missing_wavs`` (judge a subset of the references, e.g. a test split of metadata.csv)
    or ``allow_extra_wavs`` (ignore wavs that have no text) says otherwise.
    """
    no_wav = refs.keys() - wavs.keys()
    no_ref = wavs.keys() - refs.keys()
    both = sorted(refs.keys() & wavs.keys())
    if not both:
        raise UserError(
            f"{wavs_src}: none of the {len(wavs)} wav ids appears in {refs_src} ({len(refs)} ids), e.g. "
            f"wav {_ids(wavs)[:60]} vs text {_ids(refs)[:60]}; name each wav after its utterance id"
        )
    if no_ref and not allow_extra_wavs:
        raise UserError(
            f"{wavs_src}: {len(no_ref)} of {len(wavs)} wavs have no text in {refs_src}: {_ids(no_ref)} "
            "(pass --allow-extra-wavs to ignore them)"
        )
    if no_wav and not allow_missing_wavs:
        raise UserError(
            f"{refs_src}: {len(no_wav)} of {len(refs)} references have no wav in {wavs_src}: {_ids(no_wav)} "
            "(pass --allow-missing-wavs to judge only the wavs there are)"
        )
    return [(u, wavs[u], refs[u]) for u in both], {
        "refs_without_wav": len(no_wav),
        "wavs_without_ref": len(no_ref),
    }


# ------------------------------------------------------------------------------------------ pocketsphinx
# Greedy longest-match spelling -> CMU phones, for the words CMUdict lacks (names, coinages). It only has to
# be close enough for the decoder to pick the word among the test set's own; "" means silent.
_GRAPHEMES = {
    "tion": "SH AH N", "sion": "ZH AH N", "tch": "CH", "igh": "AY", "dge": "JH", "ough": "AO",
    "ch": "CH", "sh": "SH", "th": "TH", "ph": "F", "wh": "W", "ck": "K", "ng": "NG", "qu": "K W",
    "kn": "N", "wr": "R", "gh": "", "ee": "IY", "ea": "IY", "oo": "UW", "ou": "AW", "ow": "OW", "oi": "OY",
    "oy": "OY", "ai": "EY", "ay": "EY", "au": "AO", "aw": "AO", "ie": "IY", "ei": "EY", "ey": "IY",
    "oa": "OW", "ue": "UW", "ew": "UW", "er": "ER", "ir": "ER", "ur": "ER", "ar": "AA R", "or": "AO R",
    "a": "AE", "b": "B", "c": "K", "d": "D", "e": "EH", "f": "F", "g": "G", "h": "HH", "i": "IH", "j": "JH",
    "k": "K", "l": "L", "m": "M", "n": "N", "o": "AA", "p": "P", "q": "K", "r": "R", "s": "S", "t": "T",
    "u": "AH", "v": "V", "w": "W", "x": "K S", "y": "Y", "z": "Z",
}  # fmt: skip
_LONG_VOWEL = {"a": "EY", "e": "IY", "i": "AY", "o": "OW", "u": "UW"}
_VOWELS = set("aeiouy")
_LONGEST = max(map(len, _GRAPHEMES))


def letter_to_sound(word: str) -> list[str]:
    """A rough CMU-phone pronunciation of an English spelling (a fallback, not a G2P model)."""
    w = "".join(c for c in word.lower() if "a" <= c <= "z")
    if len(w) > 2 and w.endswith("e") and w[-2] not in _VOWELS:
        w_core, final_e = w[:-1], True  # a silent final e lengthens the vowel before the last consonant
    else:
        w_core, final_e = w, False
    phones: list[str] = []
    i = 0
    while i < len(w_core):
        for n in range(min(_LONGEST, len(w_core) - i), 0, -1):
            g = w_core[i : i + n]
            if g not in _GRAPHEMES:
                continue
            if n == 1 and g == w_core[i - 1 : i] and g not in _VOWELS:
                break  # a doubled consonant is said once
            if g == "c" and w_core[i + 1 : i + 2] in ("e", "i", "y"):
                out = "S"
            elif g == "g" and w_core[i + 1 : i + 2] in ("e", "i", "y"):
                out = "JH"
            elif g == "y":
                out = "Y" if i == 0 else ("IY" if i == len(w_core) - 1 else "IH")
            elif n == 1 and final_e and g in _LONG_VOWEL and i == len(w_core) - 2:
                out = _LONG_VOWEL[g]
            else:
                out = _GRAPHEMES[g]
            phones.extend(out.split())
            break
        i += n
    return phones


def _dictionary_entries(words: Iterable[str], cmudict: Path) -> tuple[list[str], list[str], list[str]]:
    """Dictionary lines for ``words`` (every CMUdict variant), the words given letter-to-sound
    pronunciations, and the words with no pronunciation at all (nothing to say: skipped)."""
    wanted = set(words)
    lines, found = [], set()
    with open(cmudict, encoding="utf-8") as f:
        for line in f:
            head = line.split(" ", 1)[0]
            base = head.split("(", 1)[0]
            if base in wanted:
                lines.append(line.rstrip("\n"))
                found.add(base)
    guessed, skipped = [], []
    for w in sorted(wanted - found):
        phones = letter_to_sound(w)
        if phones:
            lines.append(f"{w} {' '.join(phones)}")
            guessed.append(w)
        else:
            skipped.append(w)
    return lines, guessed, skipped


def read_pcm16(path: str | Path) -> bytes:
    """16 kHz mono 16-bit samples of a wav: read as they are when already so, else through
    ``aics.core.audio.read_wav`` (down-mix and resampling)."""
    import numpy as np
    import soundfile as sf

    try:
        info = sf.info(str(path))
        if info.samplerate == SAMPLE_RATE and info.channels == 1:
            x, _ = sf.read(str(path), dtype="int16")
            return x.tobytes()
    except (sf.SoundFileError, RuntimeError, TypeError, ValueError) as e:
        raise UserError(f"{path}: cannot read this audio file ({e})") from None
    from aics.core.audio import read_wav

    wav, _ = read_wav(path, sr=SAMPLE_RATE)
    x = wav.numpy()
    return np.clip(np.round(x * 32767.0), -32768, 32767).astype(np.int16).tobytes()


_OWN_OPTIONS = ("hmm", "lm", "dict", "samprate", "loglevel")
_FILLER = re.compile(r"^(<.*>|\[.*\]|\+\+.*\+\+)$")


class PocketsphinxJudge:
    """PocketSphinx with a word n-gram of ``refs_for_lm`` and a dictionary of exactly their words.

    ``refs_for_lm``: normalised sentences (lower case words, as CMUdict spells them). The LM and dictionary
    live in a temporary directory until ``close()`` (or the end of a ``with`` block). ``decoder_options``
    go to ``pocketsphinx.Decoder`` as they are (e.g. ``{"beam": 1e-60}``).
    """

    def __init__(self, refs_for_lm: Sequence[str], lm_order: int = 3, decoder_options: dict | None = None):
        try:
            import pocketsphinx
        except ImportError:
            raise UserError(
                "the pocketsphinx judge needs the pocketsphinx package: pip install pocketsphinx"
            ) from None

        from aics.tasks.asr.ngram import train_ngram, word_tokens, write_arpa

        sentences = [word_tokens(s) for s in refs_for_lm]
        if not any(sentences):
            raise UserError("the references have no words to build the judge's language model from")
        model = Path(pocketsphinx.get_model_path())
        self.hmm = model / "en-us" / "en-us"
        cmudict = model / "en-us" / "cmudict-en-us.dict"
        self._tmp = tempfile.TemporaryDirectory(prefix="aics-judge-")
        tmp = Path(self._tmp.name)
        self.lm_path, self.dict_path = tmp / "refs.arpa", tmp / "refs.dict"
        lm = train_ngram(sentences, order=lm_order, unit="word")
        write_arpa(lm, self.lm_path)
        words = lm.vocab - {"</s>", "<unk>"}
        lines, self.guessed_words, self.skipped_words = _dictionary_entries(words, cmudict)
        self.dict_path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
        self.n_words = len(words)
        self.description = (
            f"word {lm_order}-gram (interpolated Kneser-Ney) from the {len(sentences)} reference sentences "
            f"of this test set; dictionary: the {len(words)} words of those sentences, pronunciations from "
            f"the CMUdict of the pocketsphinx wheel ({len(self.guessed_words)} guessed by letter-to-sound, "
            f"{len(self.skipped_words)} unpronounceable)"
        )
        for w in self.guessed_words:
            log.debug("judge: %r is not in CMUdict; letter-to-sound gives %s", w, letter_to_sound(w))
        if self.skipped_words:
            log.warning("judge: no pronunciation for %d words, which cannot be recognised: %s",
                        len(self.skipped_words), _ids(self.skipped_words))  # fmt: skip
        self.options = dict(decoder_options or {})
        _make_decoder(self.decoder_config())  # a bad option or file fails here, not in every worker

    def decoder_config(self) -> dict:
        return {
            "hmm": str(self.hmm),
            "lm": str(self.lm_path),
            "dict": str(self.dict_path),
            "samprate": SAMPLE_RATE,
            "loglevel": "FATAL",
            **self.options,
        }

    def transcribe(self, wav_path: str | Path) -> str:
        return _transcribe(self.decoder_config(), wav_path)

    def transcribe_many(
        self, paths: Sequence[Path], workers: int = 1, show_progress: bool = True
    ) -> list[str]:
        """Transcripts of ``paths`` in order: in this process (``workers=1``) or in a pool of ``workers``
        processes (the decoder holds the GIL, so threads would not help); the same either way."""
        from aics.core.log import progress

        bar = progress(total=len(paths), desc="judge", unit="utt", enabled=show_progress)
        try:
            if workers <= 1 or len(paths) <= 1:
                out = []
                for p in paths:
                    out.append(self.transcribe(p))
                    bar.update(1)
                return out
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            # spawned, not forked: a child forked from a process whose other threads ran OpenMP code (torch
            # from a thread pool, e.g.) can hang on the OpenMP runtime's locks
            spawn = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(min(workers, len(paths)), mp_context=spawn) as pool:
                out = []
                for hyp in pool.map(partial(_transcribe, self.decoder_config()), paths):
                    out.append(hyp)
                    bar.update(1)
                return out
        finally:
            bar.close()

    def close(self) -> None:
        self._tmp.cleanup()

    def __enter__(self) -> PocketsphinxJudge:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _make_decoder(config: dict):
    import pocketsphinx

    try:
        return pocketsphinx.Decoder(**config)
    except (KeyError, ValueError, RuntimeError) as e:
        raise UserError(
            f"pocketsphinx could not start ({e}); check the decoder options "
            f"{ {k: v for k, v in config.items() if k not in _OWN_OPTIONS} }"
        ) from None


def _decode(decoder, pcm: bytes) -> str:
    decoder.start_utt()
    decoder.process_raw(pcm, full_utt=True)
    decoder.end_utt()
    hyp = decoder.hyp()
    if hyp is None:
        return ""
    words = (w.split("(", 1)[0] for w in hyp.hypstr.split())  # "read(2)": a pronunciation variant
    return " ".join(w for w in words if not _FILLER.match(w))


def _transcribe(config: dict, path: str | Path) -> str:
    # A new decoder for every utterance (about 10 ms): a decoder adapts its cepstral mean and noise floor
    # from one utterance to the next, which would make a transcript depend on what was decoded before it
    # in the same process, and so on the number of workers.
    return _decode(_make_decoder(config), read_pcm16(path))


# ------------------------------------------------------------------------------------------------ judge
def _duration(path: Path) -> float:
    import soundfile as sf

    try:
        info = sf.info(str(path))
    except (sf.SoundFileError, RuntimeError, TypeError, ValueError) as e:
        raise UserError(f"{path}: cannot read this audio file ({e})") from None
    if info.frames == 0:
        raise UserError(f"{path}: the audio file is empty")
    return info.frames / info.samplerate


def judge(
    wavs: str | Path,
    refs_path: str | Path,
    out_dir: str | Path,
    engine: str = "pocketsphinx",
    workers: int = 2,
    lm_order: int = 3,
    normalize: Callable[[str], str] | None = None,
    transcribe_fn: Callable[[list[Path]], list[str]] | None = None,
    allow_missing_wavs: bool = False,
    allow_extra_wavs: bool = False,
    decoder_options: dict | None = None,
    show_progress: bool = True,
) -> dict:
    """Transcribe the wavs (``find_wavs``) that have references (``read_refs``), score them, and write
    ``hyp.txt``, ``per_utt.jsonl`` and ``scores.json`` into ``out_dir``; returns the scores.

    References and hypotheses both pass through ``normalize`` (default
    ``aics.tasks.asr.text.normalize_text``). ``engine="pocketsphinx"`` builds its LM from the normalised
    references of the judged utterances; ``engine="dfcnn"`` calls ``transcribe_fn(wav_paths)``.
    """

    if engine not in ENGINES:
        raise UserError(f"unknown judge engine {engine!r}; choose one of {', '.join(ENGINES)}")
    if engine == "dfcnn" and transcribe_fn is None:
        raise UserError("the dfcnn engine needs a trained model to transcribe with (transcribe_fn)")
    if engine == "pocketsphinx" and transcribe_fn is not None:
        raise ValueError("transcribe_fn is for engine='dfcnn'; pocketsphinx transcribes by itself")
    if workers < 1:
        raise UserError(f"workers must be at least 1, got {workers}")
    inputs = judge_inputs(wavs, refs_path, normalize, allow_missing_wavs, allow_extra_wavs)
    return run_judge(inputs, out_dir, engine, workers, lm_order, normalize, transcribe_fn, decoder_options,
                     show_progress)  # fmt: skip


@dataclass
class JudgeInputs:
    """What a judge run scores, checked before anything is written: ids, wavs, normalised references."""

    ids: list[str]
    paths: list[Path]
    refs: list[str]
    seconds: float
    left_out: dict
    refs_src: str
    wavs_src: str


def judge_inputs(
    wavs: str | Path | dict[str, Path],
    refs: str | Path | dict[str, str],
    normalize: Callable[[str], str] | None = None,
    allow_missing_wavs: bool = False,
    allow_extra_wavs: bool = False,
    source: str = "",
) -> JudgeInputs:
    """Pair the wavs (``find_wavs``, or a dict id -> path) with the references (``read_refs``, or a dict id
    -> text), normalise the references and read every wav's header: every error comes here, as one line."""
    if normalize is None:
        from aics.tasks.asr.text import normalize_text as normalize
    refs_src = source or str(refs)
    wavs_src = source or str(wavs)
    ref_map = refs if isinstance(refs, dict) else read_refs(Path(refs))
    wav_map = wavs if isinstance(wavs, dict) else find_wavs(Path(wavs))
    pairs, left_out = pair_up(
        ref_map, wav_map, Path(refs_src), Path(wavs_src), allow_missing_wavs, allow_extra_wavs
    )
    paths = [p for _, p, _ in pairs]
    seconds = sum(_duration(p) for p in paths)  # also checks that every wav can be read, before any output
    return JudgeInputs(
        [u for u, _, _ in pairs], paths, [normalize(r) for _, _, r in pairs], seconds, left_out, refs_src,
        wavs_src,
    )  # fmt: skip


def run_judge(
    inputs: JudgeInputs,
    out_dir: str | Path,
    engine: str = "pocketsphinx",
    workers: int = 2,
    lm_order: int = 3,
    normalize: Callable[[str], str] | None = None,
    transcribe_fn: Callable[[list[Path]], list[str]] | None = None,
    decoder_options: dict | None = None,
    show_progress: bool = True,
) -> dict:
    """Transcribe and score checked inputs; writes hyp.txt, per_utt.jsonl and scores.json in ``out_dir``."""
    from aics.core.io import write_json, write_jsonl, write_text
    from aics.tasks.asr.metrics import error_counts, score_corpus

    if normalize is None:
        from aics.tasks.asr.text import normalize_text as normalize
    out_dir = Path(out_dir)
    ids, paths, refs, seconds = inputs.ids, inputs.paths, inputs.refs, inputs.seconds

    t0 = time.perf_counter()
    extra: dict = {}
    if engine == "pocketsphinx":
        with PocketsphinxJudge(refs, lm_order=lm_order, decoder_options=decoder_options) as ps:
            hyps = ps.transcribe_many(paths, workers=workers, show_progress=show_progress)
            extra = {
                "lm": ps.description,
                "lm_order": lm_order,
                "n_lm_words": ps.n_words,
                "oov_words": len(ps.guessed_words) + len(ps.skipped_words),
                "letter_to_sound_words": ps.guessed_words,
                "unpronounceable_words": ps.skipped_words,
            }
    else:
        hyps = list(transcribe_fn(paths))
        if len(hyps) != len(paths):
            raise ValueError(f"transcribe_fn returned {len(hyps)} transcripts for {len(paths)} wavs")
        extra = {"lm": "the model's own decoding"}
    wall = time.perf_counter() - t0
    hyps = [normalize(h) for h in hyps]

    per_utt = []
    for uid, ref, hyp in zip(ids, refs, hyps, strict=True):
        w, c = error_counts(ref, hyp, "word"), error_counts(ref, hyp, "char")
        per_utt.append({"id": uid, "ref": ref, "hyp": hyp, "word": w, "char": c})
    scores = {
        "engine": engine,
        **score_corpus(zip(refs, hyps, strict=True)),
        **extra,
        "refs": inputs.refs_src,
        "wavs": inputs.wavs_src,
        **inputs.left_out,
        "audio_seconds": round(seconds, 3),
        "decode_seconds": round(wall, 3),
        "x_real_time": round(seconds / wall, 2) if wall > 0 else None,
        "workers": workers if engine == "pocketsphinx" else None,
    }
    write_text(out_dir / "hyp.txt", "".join(f"{u} {h}\n" for u, h in zip(ids, hyps, strict=True)))
    write_jsonl(out_dir / "per_utt.jsonl", per_utt)
    write_json(out_dir / "scores.json", scores)
    return scores


def manifest_inputs(manifest: str | Path) -> tuple[dict[str, Path], dict[str, str]]:
    """The wavs and transcripts of a prepared subset's manifest (``aics asr prepare``'s ``<subset>.jsonl``):
    the subset's own recordings, for ``judge_inputs``."""
    from aics.core.io import read_json, read_jsonl

    manifest = Path(manifest)
    rows = read_jsonl(manifest)
    if not rows:
        raise UserError(f"{manifest}: no utterances in this manifest")
    stats = manifest.with_name("stats.json")
    if stats.is_file() and read_json(stats).get("units") != "char":
        raise UserError(f"{manifest}: the judge scores English words, and this corpus is not English")
    return {r["id"]: Path(r["wav"]) for r in rows}, {r["id"]: r["text"] for r in rows}
