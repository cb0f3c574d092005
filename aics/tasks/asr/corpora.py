"""Readers for real speech corpora in their own on-disk layouts: LJSpeech, LibriTTS, LibriSpeech, THCHS-30.

Usage: utts = read_corpus("data/ljspeech/LJSpeech-1.1", "ljspeech"); seconds = check_audio(utts, workers=4)

Every reader returns ``Utterance`` records in a stable order and checks each entry as it reads it. All the
problems of a corpus are collected first; then one ``UserError`` says how many there are and shows the first
few as ``file:line: what`` on a single line, with what to do about them. A reader only checks that each
audio file exists; ``check_audio`` opens every header to find unreadable files and measure durations.

This module imports neither torch nor (until ``check_audio`` runs) soundfile, so reading stays cheap.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
import re
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from aics.core.errors import UserError

FORMATS = ("ljspeech", "libritts", "librispeech", "thchs30")
THCHS30_SPLITS = ("train", "dev", "test")
MAX_PROBLEMS_SHOWN = 3


@dataclasses.dataclass
class Utterance:
    id: str
    wav: Path  # the audio file (a .flac for LibriSpeech)
    text: str  # the transcript the recogniser learns
    speaker: str
    raw_text: str = ""  # the transcript as the corpus writes it (unnormalised; THCHS-30: with word spaces)
    units: tuple[str, ...] | None = None  # THCHS-30: tonal pinyin syllables, e.g. ("lv4", "shi4")
    extra: dict = dataclasses.field(default_factory=dict)  # subset, chapter, gender, phones, split
    source: str = ""  # "file:line" that lists the utterance, named by error messages


class _Problems:
    """Problems of one corpus, collected while reading and raised as one line at the end."""

    def __init__(self, corpus: str, noun: tuple[str, str], advice: str):
        self.corpus, self.noun, self.advice = corpus, noun, advice
        self.items: list[str] = []

    def add(self, where: str | Path, what: str) -> None:
        self.items.append(f"{where}: {what}".replace("\r", " ").replace("\n", " "))

    def raise_if_any(self) -> None:
        n = len(self.items)
        if not n:
            return
        shown = " | ".join(self.items[:MAX_PROBLEMS_SHOWN])
        more = f" (and {n - MAX_PROBLEMS_SHOWN} more)" if n > MAX_PROBLEMS_SHOWN else ""
        noun = self.noun[0] if n == 1 else self.noun[1]
        raise UserError(f"{self.corpus}: {n} {noun}: {shown}{more}; {self.advice}")


# --------------------------------------------------------------------------------------------- helpers
def _need_dir(root: Path) -> None:
    if not root.is_dir():
        raise UserError(f"{root}: no such directory; pass the corpus directory with --src")


def _text_lines(path: Path, problems: _Problems) -> tuple[list[tuple[int, str]], bool]:
    """(line number, line) of a UTF-8 text file, and whether every line decoded. A line that is not UTF-8
    is recorded as a problem and left out; a byte-order mark is dropped; so is a Windows line end."""
    try:
        data = path.read_bytes()
    except OSError as e:
        problems.add(path, f"cannot be read ({e.strerror or e})")
        return [], False
    raw_lines = data.split(b"\n")
    if raw_lines[-1] == b"":
        raw_lines.pop()
    lines, ok = [], True
    for n, raw in enumerate(raw_lines, 1):
        try:
            line = raw.removesuffix(b"\r").decode("utf-8-sig" if n == 1 else "utf-8")
        except UnicodeDecodeError as e:
            problems.add(f"{path}:{n}", f"not UTF-8 ({e.reason} at byte {e.start + 1} of the line)")
            ok = False
            continue
        lines.append((n, line))
    return lines, ok


def _file_text(path: Path, problems: _Problems) -> str | None:
    """The whole text of a small transcript file on one line (lines joined by spaces), or None when it
    cannot be read."""
    lines, ok = _text_lines(path, problems)
    return " ".join(line.strip() for _, line in lines if line.strip()) if ok else None


def _plain_id(uid: str) -> bool:
    """An id that can be a file name and a field of a space-separated list."""
    return bool(uid) and uid not in (".", "..") and not any(c in "/\\" or c.isspace() for c in uid)


def _natural_key(name: str) -> list:
    """A11_2 before A11_10."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def _is_hanzi(c: str) -> bool:
    o = ord(c)
    return (
        0x4E00 <= o <= 0x9FFF  # CJK unified ideographs
        or 0x3400 <= o <= 0x4DBF  # extension A
        or 0x20000 <= o <= 0x2FA1F  # extensions B.. and compatibility supplement
        or 0xF900 <= o <= 0xFAFF  # compatibility ideographs
        or o == 0x3007  # 〇
    )


def _dup(seen: dict[str, tuple[Path, int]], uid: str, path: Path, line: int) -> str | None:
    """A problem text when ``uid`` was already listed; remembers where it was listed first."""
    if uid not in seen:
        seen[uid] = (path, line)
        return None
    first_path, first_line = seen[uid]
    first = f"on line {first_line}" if first_path == path else f"at {first_path}:{first_line}"
    return f"id {uid} is listed twice (first {first})"


# -------------------------------------------------------------------------------------------- LJSpeech
def _ljspeech_root(root: Path) -> Path:
    _need_dir(root)
    for base in (root, root / "LJSpeech-1.1"):
        if (base / "metadata.csv").is_file():
            return base
    raise UserError(f"{root}: no metadata.csv; pass the LJSpeech-1.1 directory (metadata.csv and wavs/)")


def read_ljspeech(root: str | Path, speaker: str = "LJ") -> list[Utterance]:
    """LJSpeech-1.1: ``metadata.csv`` rows ``id|transcript|normalised transcript`` (UTF-8, no header) and
    ``wavs/<id>.wav``. ``root`` is the LJSpeech-1.1 directory or its parent.

    ``text`` is the normalised transcript (third field), ``raw_text`` the second. Rows are split on ``|``
    only: some transcripts hold quotes, which are text, not CSV quoting.
    """
    root = _ljspeech_root(Path(root))
    meta = root / "metadata.csv"
    problems = _Problems(
        "LJSpeech",
        ("bad row", "bad rows"),
        "fix or delete those rows of metadata.csv, or re-download the corpus",
    )
    lines, _ = _text_lines(meta, problems)
    utts, seen = [], {}
    for n, line in lines:
        if not line.strip():
            continue
        where = f"{meta}:{n}"
        fields = line.split("|")
        if len(fields) != 3:
            problems.add(
                where, f"{len(fields)} fields, expected 3 (id|transcript|normalised transcript, split on '|')"
            )
            continue
        uid, raw, norm = (f.strip() for f in fields)
        bad = []
        if not _plain_id(uid):
            bad.append(f"id {uid!r} cannot name a wav file" if uid else "empty id")
        elif (dup := _dup(seen, uid, meta, n)) is not None:
            bad.append(dup)
        if not norm:
            bad.append("empty normalised transcript (third field)")
        wav = root / "wavs" / f"{uid}.wav"
        if _plain_id(uid) and not wav.is_file():
            bad.append(f"{wav} not found")
        if bad:
            problems.add(where, "; ".join(bad))
            continue
        utts.append(Utterance(uid, wav, norm, speaker, raw_text=raw, source=where))
    problems.raise_if_any()
    if not utts:
        raise UserError(f"{meta}: no rows; the corpus is empty")
    return utts


# ------------------------------------------------------------------------------- LibriTTS / LibriSpeech
def _is_subset(d: Path) -> bool:
    """A subset dir holds speaker dirs (numbers) holding chapter dirs (numbers)."""
    try:
        speaker = next((c for c in sorted(d.iterdir()) if c.name.isdigit() and c.is_dir()), None)
        return speaker is not None and any(c.name.isdigit() and c.is_dir() for c in speaker.iterdir())
    except OSError:
        return False


def _find_subsets(root: Path, top: str) -> tuple[Path, list[Path]]:
    """(corpus dir, its subset dirs): ``root`` is one subset, the corpus dir holding subsets, or the parent
    of the corpus dir ``top`` (LibriTTS, LibriSpeech). No subsets: an empty list."""
    if _is_subset(root):
        return root.parent, [root]
    for base in (root, root / top):
        if base.is_dir():
            found = sorted(d for d in base.iterdir() if not d.name.startswith(".") and _is_subset(d))
            if found:
                return base, found
    return root, []


def _subset_dirs(root: Path, top: str, subsets: str | Iterable[str] | None) -> tuple[Path, list[Path]]:
    _need_dir(root)
    base, found = _find_subsets(root, top)
    if not found:
        raise UserError(
            f"{root}: no {top} subset (<subset>/<speaker>/<chapter>/); pass the {top} directory or one subset"
        )
    if subsets is None:
        return base, found
    wanted = [subsets] if isinstance(subsets, str) else list(subsets)
    names = {d.name: d for d in found}
    missing = [s for s in wanted if s not in names]
    if missing:
        raise UserError(f"{base}: no subset {', '.join(missing)}; found {', '.join(names)}")
    return base, [names[s] for s in wanted]


def _chapter_dirs(subset: Path) -> list[Path]:
    """<speaker>/<chapter> dirs of a subset, in numeric order (other entries, like README files, skipped)."""

    def numbered(d: Path) -> list[Path]:
        return sorted((c for c in d.iterdir() if c.name.isdigit() and c.is_dir()), key=lambda c: int(c.name))

    return [chapter for speaker in numbered(subset) for chapter in numbered(speaker)]


def _genders(path: Path, sep: str) -> dict[str, str]:
    """Speaker id -> gender from LibriTTS speakers.tsv (``READER\\tGENDER\\tSUBSET\\tNAME``) or LibriSpeech
    SPEAKERS.TXT (``ID | SEX | SUBSET | MINUTES | NAME``, ``;`` comments; a name may itself hold ``|``).
    Optional metadata: a missing file or an odd row is skipped, never an error."""
    if not path.is_file():
        return {}
    genders = {}
    for line in path.read_bytes().decode("utf-8", errors="replace").split("\n"):
        fields = line.split(sep, 4)
        if len(fields) >= 2 and fields[0].strip().isdigit() and fields[1].strip():
            genders[fields[0].strip()] = fields[1].strip()
    return genders


def read_libritts(root: str | Path, subsets: str | Iterable[str] | None = None) -> list[Utterance]:
    """LibriTTS: ``<subset>/<speaker>/<chapter>/<speaker>_<chapter>_<para>_<sent>.wav`` with
    ``.normalized.txt`` and ``.original.txt`` beside each wav; ``root`` is the LibriTTS directory (all its
    subsets, or those named in ``subsets``), its parent, or one subset directory.

    ``text`` is the normalised transcript, ``raw_text`` the original one; ``extra`` has subset, chapter and,
    when speakers.tsv lists the speaker, gender.
    """
    base, dirs = _subset_dirs(Path(root), "LibriTTS", subsets)
    genders = _genders(base / "speakers.tsv", "\t")
    problems = _Problems(
        "LibriTTS",
        ("bad utterance", "bad utterances"),
        "re-download the subset, or delete the utterance's .wav and .txt files",
    )
    utts, seen = [], {}
    norm_ext = ".normalized.txt"
    for sub in dirs:
        for chapter in _chapter_dirs(sub):
            spk, chap = chapter.parent.name, chapter.name
            names = os.listdir(chapter)
            wavs = {n.removesuffix(".wav") for n in names if n.endswith(".wav")}
            texts = {n.removesuffix(norm_ext) for n in names if n.endswith(norm_ext)}
            for uid in sorted(texts - wavs):
                problems.add(chapter / f"{uid}{norm_ext}", f"no {uid}.wav beside it")
            for uid in sorted(wavs):
                wav, norm_path = chapter / f"{uid}.wav", chapter / f"{uid}{norm_ext}"
                if uid not in texts:
                    problems.add(wav, f"no {uid}{norm_ext} beside it (the transcript)")
                    continue
                if not uid.startswith(f"{spk}_{chap}_"):
                    problems.add(wav, f"the name does not start with {spk}_{chap}_ (its speaker and chapter)")
                    continue
                if (dup := _dup(seen, uid, norm_path, 1)) is not None:
                    problems.add(norm_path, dup)
                    continue
                text = _file_text(norm_path, problems)
                if text == "":
                    problems.add(f"{norm_path}:1", "empty transcript")
                orig_path = chapter / f"{uid}.original.txt"
                raw = _file_text(orig_path, problems) if orig_path.is_file() else ""
                if not text or raw is None:
                    continue
                extra = {"subset": sub.name, "chapter": chap}
                if spk in genders:
                    extra["gender"] = genders[spk]
                utts.append(
                    Utterance(uid, wav, text, spk, raw_text=raw, extra=extra, source=f"{norm_path}:1")
                )
    problems.raise_if_any()
    if not utts:
        raise UserError(f"{root}: no utterances (*.wav with *.normalized.txt) in {', '.join(map(str, dirs))}")
    return utts


def read_librispeech(root: str | Path, subsets: str | Iterable[str] | None = None) -> list[Utterance]:
    """LibriSpeech: ``<subset>/<speaker>/<chapter>/<speaker>-<chapter>.trans.txt`` with lines
    ``<speaker>-<chapter>-<utt> TRANSCRIPT`` and ``<speaker>-<chapter>-<utt>.flac`` beside it (a .wav is
    taken when there is no .flac); ``root`` is the LibriSpeech directory, its parent, or one subset.

    ``text`` is the transcript lowercased, ``raw_text`` as written (uppercase); ``extra`` has subset,
    chapter and, when SPEAKERS.TXT lists the speaker, gender.
    """
    base, dirs = _subset_dirs(Path(root), "LibriSpeech", subsets)
    genders = _genders(base / "SPEAKERS.TXT", "|")
    problems = _Problems(
        "LibriSpeech",
        ("bad transcript line", "bad transcript lines"),
        "re-download the subset, or delete those lines",
    )
    utts, seen = [], {}
    for sub in dirs:
        for chapter in _chapter_dirs(sub):
            spk, chap = chapter.parent.name, chapter.name
            trans = chapter / f"{spk}-{chap}.trans.txt"
            if not trans.is_file():
                problems.add(chapter, f"no {trans.name} (the chapter's transcripts)")
                continue
            lines, _ = _text_lines(trans, problems)
            for n, line in lines:
                if not line.strip():
                    continue
                where = f"{trans}:{n}"
                uid, *words = line.split()
                raw = " ".join(words)
                if not uid.startswith(f"{spk}-{chap}-") or not _plain_id(uid):
                    problems.add(where, f"id {uid!r} does not start with {spk}-{chap}- (this chapter)")
                    continue
                bad = []
                if (dup := _dup(seen, uid, trans, n)) is not None:
                    bad.append(dup)
                if not raw:
                    bad.append(f"no transcript after the id {uid}")
                audio = chapter / f"{uid}.flac"
                if not audio.is_file() and (chapter / f"{uid}.wav").is_file():
                    audio = chapter / f"{uid}.wav"
                if not audio.is_file():
                    bad.append(f"{audio} not found")
                if bad:
                    problems.add(where, "; ".join(bad))
                    continue
                extra = {"subset": sub.name, "chapter": chap}
                if spk in genders:
                    extra["gender"] = genders[spk]
                utts.append(Utterance(uid, audio, raw.lower(), spk, raw_text=raw, extra=extra, source=where))
    problems.raise_if_any()
    if not utts:
        raise UserError(f"{root}: no utterances (*.trans.txt lines) in {', '.join(map(str, dirs))}")
    return utts


# -------------------------------------------------------------------------------------------- THCHS-30
def _thchs30_root(root: Path) -> Path:
    _need_dir(root)
    for base in (root, root / "data_thchs30"):
        if (base / "data").is_dir():
            return base
    raise UserError(
        f"{root}: no data/ directory; pass the data_thchs30 directory (data/*.wav, data/*.wav.trn)"
    )


def _thchs30_lines(
    trn: Path, problems: _Problems, follow: bool = True
) -> tuple[Path, list[tuple[int, str]]] | None:
    """(the file that holds the transcript, its lines up to the last non-blank one). A one-line .trn naming
    another .trn (``../data/A11_0.wav.trn``, how the split dirs point into data/) is followed once."""
    lines, ok = _text_lines(trn, problems)
    if not ok:
        return None
    while lines and not lines[-1][1].strip():
        lines.pop()
    if follow and len(lines) == 1 and lines[0][1].strip().endswith(".trn"):
        target = Path(os.path.normpath(trn.parent / lines[0][1].strip()))
        if not target.is_file():
            problems.add(f"{trn}:1", f"points to {target}, which does not exist")
            return None
        return _thchs30_lines(target, problems, follow=False)
    return trn, lines


def read_thchs30(root: str | Path, split: str | None = None, check_pinyin: bool = True) -> list[Utterance]:
    """THCHS-30 (``data_thchs30``): ``data/<id>.wav`` and ``data/<id>.wav.trn``, three lines each: the
    Chinese characters (words separated by spaces), the tonal pinyin syllables, the phones. The ``train``,
    ``dev`` and ``test`` dirs list a split with links into data/ (symlinks, or one-line .trn files that
    name ../data/<id>.wav.trn; a .trn there with the three lines itself is read as it is). ``root`` is
    data_thchs30 or its parent; ``split`` None reads all of data/.

    ``text`` is the characters without the word spaces, ``raw_text`` the line as written, ``units`` the
    pinyin syllables, ``extra["phones"]`` the phones. Speaker: the id up to ``_`` (A11 of A11_0). With
    ``check_pinyin``, line 2 must hold one syllable per Chinese character of line 1.
    """
    base = _thchs30_root(Path(root))
    data = base / "data"
    if split is None:
        listing = data
    elif split not in THCHS30_SPLITS:
        raise UserError(f"split {split!r}: THCHS-30 has the splits {', '.join(THCHS30_SPLITS)}")
    else:
        listing = base / split
        if not listing.is_dir():
            raise UserError(f"{listing}: not found; is {base} a complete data_thchs30 directory?")
    names = os.listdir(listing)
    ids = {n.removesuffix(".wav") for n in names if n.endswith(".wav")}
    ids |= {n.removesuffix(".wav.trn") for n in names if n.endswith(".wav.trn")}
    problems = _Problems(
        "THCHS-30",
        ("bad transcript", "bad transcripts"),
        "re-download the corpus, or delete the utterance's .wav and .wav.trn",
    )
    utts = []
    for uid in sorted(ids, key=_natural_key):
        trn = listing / f"{uid}.wav.trn"
        if trn.is_symlink():  # name the file the link points to: that is the one to fix
            target = Path(os.path.normpath(trn.parent / os.readlink(trn)))
            if not target.is_file():
                problems.add(trn, f"a broken link (to {target})")
                continue
            trn = target
        if not trn.is_file():
            trn = data / f"{uid}.wav.trn"
            if not trn.is_file():
                problems.add(
                    listing / f"{uid}.wav", f"no transcript: {uid}.wav.trn is in neither {listing} nor {data}"
                )
                continue
        found = _thchs30_lines(trn, problems)
        if found is None:
            continue
        trn, lines = found
        if len(lines) < 3:
            problems.add(
                f"{trn}:{len(lines) + 1}",
                f"missing; a THCHS-30 .trn needs 3 lines (characters, pinyin, phones), not {len(lines)}",
            )
            continue
        chars, pinyin, phones = (line.strip() for _, line in lines[:3])
        bad = [
            (f"{trn}:{n}", f"empty {what} line")
            for n, what, line in ((1, "characters", chars), (2, "pinyin", pinyin), (3, "phones", phones))
            if not line
        ]
        syllables = tuple(pinyin.split())
        n_hanzi = sum(map(_is_hanzi, chars))
        if check_pinyin and not bad and len(syllables) != n_hanzi:
            bad.append(
                (f"{trn}:2", f"{len(syllables)} pinyin syllables for {n_hanzi} Chinese characters on line 1")
            )
        wav = data / f"{uid}.wav"
        if not wav.is_file():
            wav = listing / f"{uid}.wav"
        if not wav.is_file():
            bad.append((str(trn), f"no audio: {uid}.wav is in neither {data} nor {listing}"))
        for where, what in bad:
            problems.add(where, what)
        if bad:
            continue
        extra = {"phones": tuple(phones.split()), "split": split or ""}
        speaker = uid.split("_")[0]
        utts.append(
            Utterance(uid, wav, "".join(chars.split()), speaker, chars, syllables, extra, source=f"{trn}:1")
        )
    problems.raise_if_any()
    if not utts:
        raise UserError(f"{listing}: no utterances (*.wav with *.wav.trn)")
    return utts


# -------------------------------------------------------------------------------------------- dispatch
READERS = {
    "ljspeech": read_ljspeech,
    "libritts": read_libritts,
    "librispeech": read_librispeech,
    "thchs30": read_thchs30,
}


def detect_format(root: str | Path) -> str:
    """The corpus format of ``root`` guessed from its layout: metadata.csv + wavs/ (ljspeech), data/*.wav.trn
    (thchs30), <subset>/<speaker>/<chapter>/ with *.normalized.txt (libritts) or *.trans.txt (librispeech)."""
    root = Path(root)
    _need_dir(root)
    for base in (root, root / "LJSpeech-1.1"):
        if (base / "metadata.csv").is_file() and (base / "wavs").is_dir():
            return "ljspeech"
    for base in (root, root / "data_thchs30"):
        if (base / "data").is_dir() and next((base / "data").glob("*.wav.trn"), None) is not None:
            return "thchs30"
    for top, fmt, ext in (
        ("LibriTTS", "libritts", ".normalized.txt"),
        ("LibriSpeech", "librispeech", ".trans.txt"),
    ):
        _, subsets = _find_subsets(root, top)
        chapters = _chapter_dirs(subsets[0]) if subsets else []
        if chapters and any(n.endswith(ext) for n in os.listdir(chapters[0])):
            return fmt
    raise UserError(
        f"{root}: not a corpus layout I know: LJSpeech (metadata.csv, wavs/), LibriTTS (*.normalized.txt), "
        "LibriSpeech (*.trans.txt) or THCHS-30 (data/*.wav.trn); point at the corpus directory or pass "
        "--format"
    )


def read_corpus(root: str | Path, fmt: str | None = None, **options) -> list[Utterance]:
    """Read ``root`` with the reader of ``fmt`` (one of FORMATS; None or "auto": ``detect_format``).
    ``options`` go to that reader: ``speaker`` (ljspeech), ``subsets`` (libritts, librispeech), ``split``
    and ``check_pinyin`` (thchs30)."""
    if fmt is None or fmt == "auto":
        fmt = detect_format(root)
    if fmt not in READERS:
        raise UserError(f"--format {fmt}: unknown; use one of {', '.join(FORMATS)}")
    reader = READERS[fmt]
    accepted = list(inspect.signature(reader).parameters)[1:]
    for key in options:
        if key not in accepted:
            raise UserError(f"{key}: not an option of the {fmt} reader, which takes {', '.join(accepted)}")
    return reader(root, **options)


# ---------------------------------------------------------------------------------------------- audio
def check_audio(utts: list[Utterance], workers: int = 1) -> list[float]:
    """Open the header of every utterance's audio file (soundfile.info, ``workers`` threads); returns the
    durations in seconds in the order of ``utts``. A missing, unreadable or empty file is a problem named
    with the file:line that lists it; all are collected, then raised as one line."""
    import soundfile

    def probe(u: Utterance) -> float | str:
        if not u.wav.is_file():
            return "not found"
        try:
            info = soundfile.info(str(u.wav))
        except (soundfile.SoundFileError, RuntimeError, OSError) as e:
            reason = getattr(e, "error_string", "") or getattr(e, "strerror", "") or str(e)
            reason = str(reason).strip().rstrip(".")
            return f"cannot be read as audio ({reason[:1].lower()}{reason[1:]})"
        if info.frames <= 0 or info.samplerate <= 0:
            return "holds no samples"
        return info.frames / info.samplerate

    if workers > 1 and len(utts) > 1:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(probe, utts))
    else:
        results = [probe(u) for u in utts]
    problems = _Problems(
        "audio", ("bad file", "bad files"), "re-download the corpus, or delete the rows that list those files"
    )
    for u, r in zip(utts, results, strict=True):
        if isinstance(r, str):
            problems.add(u.wav, f"{r}; listed at {u.source or u.id}")
    problems.raise_if_any()
    return [float(r) for r in results]
