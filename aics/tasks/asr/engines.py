"""The offline speech synthesizers of Debian's main archive, as voices the corpus generator can use.

``VOICES`` names every voice: its engine (flite, festival, espeak-ng; mbrola through espeak-ng), the engine's
own name for it, its native sample rate, and the recorded speaker behind it. Five genuinely different people
were recorded for these voices -- kal, ked, awb, rms, slt -- and flite and festival share two of them (kal,
slt), so a voice is not a speaker: ``SPEAKERS`` lists the people, and held-out-speaker splits must hold out
speakers. espeak-ng's English accents and its ~100 variants are formant synthesis of one voice model; a
speaker-verification model hears one speaker in all of them, so they count as augmentation of a single
"espeak" speaker. mbrola voices need Debian's contrib/non-free archive: they are listed only as an opt-in
(``opt_in``), never chosen by default.

``synthesize(voice, items)`` writes one wav per item at the voice's native rate (8 to 32 kHz, uneven
loudness: the corpus generator resamples and normalises): flite and espeak-ng run once per sentence (they
start in milliseconds); festival runs once in batch mode for the whole list, because starting it and
loading a voice costs more than synthesising a sentence. Speed and pitch are factors (1.0: the voice's
default); an engine that cannot change one ignores it, and ``Voice.pitch`` / ``Voice.speed`` say which.

Measured on a shared 2-core CPU, one process, sentences of ~12 words, engine start included (seconds of
audio per second of compute): flite kal16 ~360x real time, flite kal (8 kHz) ~300x, flite awb and rms
~70x, flite slt ~55x, festival kal ~185x and ked ~160x (diphone), festival slt ~24x (HTS), espeak-ng ~160x.
"""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from aics.core.errors import UserError

ENGINES = ("flite", "festival", "espeak", "mbrola")
BINARIES = {"flite": "flite", "festival": "festival", "espeak": "espeak-ng", "mbrola": "espeak-ng"}
ESPEAK_RATE = 175  # espeak-ng's default words per minute (-s)
ESPEAK_PITCH = 50  # espeak-ng's default pitch (-p, 0..99); ~1 Hz per step around 100 Hz
FESTIVAL_TIMEOUT_S = 60.0
FESTIVAL_TIMEOUT_PER_ITEM_S = 10.0
SENTENCE_TIMEOUT_S = 60.0
APT = "sudo apt-get install"


@dataclass(frozen=True)
class Speaker:
    label: str
    reader: int  # the LibriTTS-style numeric speaker id
    gender: str  # "F" or "M"
    name: str


@dataclass(frozen=True)
class Voice:
    name: str  # our name: "flite-slt"
    engine: str  # one of ENGINES
    engine_voice: str  # the engine's own name: "slt", "voice_cmu_us_slt_arctic_hts", "en-us", "mb-us1"
    sample_rate: int  # native rate of the engine's output
    speaker: str  # SPEAKERS key
    code: int  # fixed two-digit number (chapter ids of the LibriTTS layout)
    package: str  # the Debian package that ships the voice
    speed: bool = True  # the engine can change the speaking rate
    pitch: bool = True  # the engine can change the pitch
    opt_in: bool = False  # outside Debian main: never a default
    note: str = ""


SPEAKERS = {
    "awb": Speaker("awb", 101, "M", "awb (CMU ARCTIC, Scottish English)"),
    "kal": Speaker("kal", 102, "M", "kal (CMU diphone, American English)"),
    "ked": Speaker("ked", 103, "M", "ked (CSTR diphone, American English)"),
    "rms": Speaker("rms", 104, "M", "rms (CMU ARCTIC, American English)"),
    "slt": Speaker("slt", 105, "F", "slt (CMU ARCTIC, American English)"),
    "espeak": Speaker("espeak", 106, "M", "espeak-ng formant synthesis (accents and variants)"),
    "mbrola-us1": Speaker("mbrola-us1", 107, "F", "mbrola us1 (American English)"),
    "mbrola-us2": Speaker("mbrola-us2", 108, "M", "mbrola us2 (American English)"),
    "mbrola-us3": Speaker("mbrola-us3", 109, "M", "mbrola us3 (American English)"),
    "mbrola-en1": Speaker("mbrola-en1", 110, "M", "mbrola en1 (British English)"),
}

ESPEAK_ACCENTS = {
    "en": "British English",
    "en-us": "American English",
    "en-gb-scotland": "Scottish English",
    "en-gb-x-gbclan": "Lancaster English",
    "en-gb-x-rp": "Received Pronunciation",
    "en-gb-x-gbcwmd": "West Midlands English",
    "en-029": "Caribbean English",
    "en-us-nyc": "New York City English",
}

# espeak-ng 1.51's voice variants (espeak-ng-data/voices/!v), less three that do not help an English corpus:
# whisper and whisperf have no voicing at all, Demonic is pitched below speech.
_ESPEAK_VARIANT_NAMES = """
Alex Alicia Andrea Andy Annie AnxiousAndy Denis Diogo Gene Gene2 Henrique Hugo Jacky Lee Marco Mario Michael
Mike Nguyen RicishayMax RicishayMax2 RicishayMax3 Storm Tweaky UniRobot adam anika anikaRobot announcer
antonio aunty belinda benjamin boris caleb croak david ed edward edward2 f1 f2 f3 f4 f5 fast grandma grandpa
gustave iven iven2 iven3 iven4 john kaukovalta klatt klatt2 klatt3 klatt4 klatt5 klatt6 linda m1 m2 m3 m4
m5 m6 m7 m8 marcelo max michel miguel norbert pablo paul pedro quincy rob robert robosoft robosoft2
robosoft3 robosoft4 robosoft5 robosoft6 robosoft7 robosoft8 sandro shelby steph steph2 steph3 travis victor
zac
"""
ESPEAK_VARIANTS = tuple(_ESPEAK_VARIANT_NAMES.split())


def _build_voices() -> dict[str, Voice]:
    voices = [
        Voice("flite-kal16", "flite", "kal16", 16000, "kal", 11, "flite", note="diphone"),
        Voice("flite-kal", "flite", "kal", 8000, "kal", 12, "flite", note="diphone, 8 kHz"),
        Voice("flite-awb", "flite", "awb", 16000, "awb", 13, "flite", note="clustergen"),
        # rms's clustergen voice predicts its own f0 contour (spamf0) and ignores flite's f0 controls
        Voice("flite-rms", "flite", "rms", 16000, "rms", 14, "flite", pitch=False, note="clustergen"),
        Voice("flite-slt", "flite", "slt", 16000, "slt", 15, "flite", note="clustergen"),
        Voice("festival-kal", "festival", "voice_kal_diphone", 16000, "kal", 21, "festvox-kallpc16k"),
        Voice("festival-ked", "festival", "voice_ked_diphone", 16000, "ked", 22, "festvox-kdlpc16k"),
        # festival's HTS engine takes a speaking rate but no pitch shift
        Voice(
            "festival-slt",
            "festival",
            "voice_cmu_us_slt_arctic_hts",
            32000,
            "slt",
            23,
            "festvox-us-slt-hts",
            pitch=False,
            note="HTS",
        ),
    ]
    for code, (accent, what) in enumerate(ESPEAK_ACCENTS.items(), start=31):
        voices.append(
            Voice(f"espeak-{accent}", "espeak", accent, 22050, "espeak", code, "espeak-ng", note=what)
        )
    for code, mb in enumerate(("us1", "us2", "us3", "en1"), start=41):
        voices.append(
            Voice(
                f"mbrola-{mb}", "mbrola", f"mb-{mb}", 16000, f"mbrola-{mb}", code, f"mbrola-{mb}", opt_in=True
            )
        )
    return {v.name: v for v in voices}


VOICES = _build_voices()
# One voice per recorded speaker, from Debian main: the default multi-speaker set.
DEFAULT_VOICES = ("festival-kal", "festival-ked", "flite-awb", "flite-rms", "flite-slt")
# The single-speaker default (LJSpeech layout): a female voice like LJSpeech's, and the smoothest one (HTS,
# 32 kHz) at the cost of speed.
DEFAULT_LJSPEECH_VOICE = "festival-slt"


def voice(name: str) -> Voice:
    if name not in VOICES:
        known = ", ".join(VOICES)
        raise UserError(f"unknown voice {name!r}; choose from {known}")
    return VOICES[name]


# ------------------------------------------------------------------------------------------------------------
# What is installed


def _run(args: Sequence[str], timeout: float = 30.0, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        list(args), input=stdin, capture_output=True, text=True, timeout=timeout, check=False
    )


@functools.cache
def _flite_voices() -> frozenset[str]:
    out = _run(["flite", "-lv"]).stdout
    return frozenset(out.split(":", 1)[-1].split())


@functools.cache
def _festival_voices() -> frozenset[str]:
    out = _run(["festival", "--batch", "(print (voice.list))"]).stdout
    return frozenset(re.findall(r"[\w-]+", out))


@functools.cache
def _espeak_languages() -> frozenset[str]:
    lines = _run(["espeak-ng", "--voices=en"]).stdout.splitlines()[1:]
    return frozenset(line.split()[1] for line in lines if len(line.split()) > 1)


@functools.cache
def espeak_installed_variants() -> tuple[str, ...]:
    """The variant names espeak-ng can load here (``en-us+<name>``)."""
    lines = _run(["espeak-ng", "--voices=variant"]).stdout.splitlines()[1:]
    files = [p for line in lines for p in line.split() if p.startswith("!v/")]
    return tuple(sorted(f[3:] for f in files))


def _mbrola_voice_installed(mb: str) -> bool:
    db = mb.removeprefix("mb-")
    return any(Path(d, db, db).is_file() for d in ("/usr/share/mbrola", "/usr/local/share/mbrola"))


def _missing(what: str, package: str, why: str = "") -> UserError:
    extra = f" ({why})" if why else ""
    return UserError(f"{what} is not installed{extra}: run '{APT} {package}'")


def check_engines(voices: Sequence[str], espeak_variants: Sequence[str] = ()) -> None:
    """Raise a one-line ``UserError`` naming the Debian package to install for the first voice (or espeak
    variant) that this machine cannot synthesise."""
    for name in voices:
        v = voice(name)
        binary = BINARIES[v.engine]
        if shutil.which(binary) is None:
            package = "espeak-ng" if v.engine == "mbrola" else binary
            raise _missing(binary, package, f"needed by voice {name}")
        if v.engine == "flite" and v.engine_voice not in _flite_voices():
            raise _missing(
                f"flite voice {v.engine_voice}", v.package, f"flite -lv does not list it; voice {name}"
            )
        if v.engine == "festival" and v.engine_voice.removeprefix("voice_") not in _festival_voices():
            raise _missing(
                f"festival voice {v.engine_voice.removeprefix('voice_')}", v.package, f"voice {name}"
            )
        if v.engine == "espeak" and v.engine_voice not in _espeak_languages():
            raise _missing(f"espeak-ng voice {v.engine_voice}", "espeak-ng-data", f"voice {name}")
        if v.engine == "mbrola":
            if shutil.which("mbrola") is None:
                raise _missing("mbrola", "mbrola", f"needed by opt-in voice {name}; Debian contrib/non-free")
            if not _mbrola_voice_installed(v.engine_voice):
                raise _missing(f"mbrola voice {v.engine_voice}", v.package, "Debian contrib/non-free")
    if espeak_variants:
        installed = set(espeak_installed_variants())
        missing = [x for x in espeak_variants if x not in installed]
        if missing:
            raise _missing(f"espeak-ng variant {missing[0]}", "espeak-ng-data", f"{len(missing)} missing")


@functools.cache
def engine_versions(engine: str) -> dict:
    """Versions of an engine's program and Debian packages, for the record (best effort)."""
    binary = BINARIES[engine]
    try:
        line = _run([binary, "--version"]).stdout.strip().splitlines()
    except (OSError, subprocess.SubprocessError):
        line = []
    text = " ".join(line)
    found = re.search(r"(flite-[\w.-]+|\d+\.\d+(?:\.\d+)?)", text)
    packages = {
        "flite": ["flite"],
        "festival": ["festival", "festvox-kallpc16k", "festvox-kdlpc16k", "festvox-us-slt-hts"],
        "espeak": ["espeak-ng", "espeak-ng-data"],
        "mbrola": ["espeak-ng", "mbrola"],
    }[engine]
    return {
        "program": binary,
        "version": found.group(1) if found else text,
        "packages": _package_versions(packages),
    }


def _package_versions(packages: list[str]) -> dict:
    if shutil.which("dpkg-query") is None:
        return {}
    out = _run(["dpkg-query", "-W", "-f", "${Package} ${Version}\\n", *packages]).stdout
    return dict(line.split(" ", 1) for line in out.splitlines() if " " in line)


# ------------------------------------------------------------------------------------------------------------
# Synthesis


@dataclass(frozen=True)
class SynthItem:
    text: str  # what the engine reads (already expanded: numbers and abbreviations written out)
    path: Path  # the wav to write, at the voice's native rate
    speed: float = 1.0  # speaking rate factor (> 1: faster)
    pitch: float = 1.0  # pitch factor (> 1: higher)
    variant: str | None = None  # espeak-ng variant


def _engine_failed(v: Voice, item: SynthItem | None, detail: str) -> UserError:
    detail = " ".join(detail.split())[-300:] or "no message"
    about = f" on {item.text!r}" if item is not None else ""
    return UserError(f"{v.engine} (voice {v.name}) failed{about}: {detail}")


def _check_written(v: Voice, items: Sequence[SynthItem], detail: str) -> None:
    for item in items:
        if not item.path.is_file() or item.path.stat().st_size <= 44:
            raise _engine_failed(v, item, detail or "no audio written")


def _flite(v: Voice, item: SynthItem) -> list[str]:
    args = ["flite", "-voice", v.engine_voice, "--setf", f"duration_stretch={1.0 / item.speed:.4f}"]
    if v.pitch:
        args += ["--setf", f"f0_shift={item.pitch:.4f}"]
    return [*args, "-t", item.text, "-o", str(item.path)]


def _espeak(v: Voice, item: SynthItem) -> list[str]:
    name = v.engine_voice + (f"+{item.variant}" if item.variant else "")
    rate = round(ESPEAK_RATE * item.speed)
    pitch = min(99, max(0, round(ESPEAK_PITCH + 100 * (item.pitch - 1.0))))
    return ["espeak-ng", "-v", name, "-s", str(rate), "-p", str(pitch), "-w", str(item.path), "--stdin"]


def scheme_string(text: str) -> str:
    """``text`` as a Scheme (SIOD) string literal."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def festival_script(v: Voice, items: Sequence[SynthItem]) -> str:
    """A festival batch script that selects the voice once and saves one RIFF wav per item.

    ``Utterance`` does not evaluate its text argument, so each sentence is written into the script as a
    literal. Speed: ``Duration_Stretch`` relative to the voice's own setting (diphone voices), the hts_engine
    ``-r`` rate (HTS voices). Pitch (diphone voices): the intonation model's target mean and spread.
    """
    lines = [
        f"({v.engine_voice})",
        "(set! aics_stretch (Parameter.get 'Duration_Stretch))",
        "(if (not aics_stretch) (set! aics_stretch 1.0))",
        "(set! aics_hts (and (boundp 'hts_engine_params) hts_engine_params))",
        "(set! aics_lr (and (boundp 'int_lr_params) int_lr_params))",
        "(define (aics_lr_get key default) (let ((p (assoc key aics_lr))) (if p (car (cdr p)) default)))",
    ]
    hts = v.engine_voice.endswith("_hts")
    for item in items:
        if hts:
            lines.append(f'(set! hts_engine_params (append aics_hts (list (list "-r" {item.speed:.4f}))))')
        else:
            lines.append(f"(Parameter.set 'Duration_Stretch (* aics_stretch {1.0 / item.speed:.4f}))")
            if v.pitch:
                p = f"{item.pitch:.4f}"
                lines.append(
                    "(set! int_lr_params (list "
                    f"(list 'target_f0_mean (* {p} (aics_lr_get 'target_f0_mean 105))) "
                    f"(list 'target_f0_std (* {p} (aics_lr_get 'target_f0_std 14))) "
                    "(list 'model_f0_mean (aics_lr_get 'model_f0_mean 170)) "
                    "(list 'model_f0_std (aics_lr_get 'model_f0_std 34))))"
                )
        lines.append(f"(set! aics_utt (Utterance Text {scheme_string(item.text)}))")
        lines.append("(utt.synth aics_utt)")
        lines.append(f"(utt.save.wave aics_utt {scheme_string(str(item.path))} 'riff)")
    return "\n".join(lines) + "\n"


def synthesize(v: Voice, items: Sequence[SynthItem]) -> None:
    """Write ``item.path`` for every item: ``v``'s speech of ``item.text`` at ``v.sample_rate``."""
    if not items:
        return
    for item in items:
        item.path.parent.mkdir(parents=True, exist_ok=True)
    if v.engine == "festival":
        with tempfile.TemporaryDirectory(prefix="aics-festival-") as tmp:
            script = Path(tmp) / "synth.scm"
            script.write_text(festival_script(v, items), encoding="utf-8")
            timeout = FESTIVAL_TIMEOUT_S + FESTIVAL_TIMEOUT_PER_ITEM_S * len(items)
            try:
                done = _run(["festival", "--batch", str(script)], timeout=timeout)
            except subprocess.TimeoutExpired:
                raise _engine_failed(
                    v, None, f"no answer in {timeout:.0f} s for {len(items)} sentences"
                ) from None
            # festival --batch exits 0 even when a command fails: the files say whether it worked
            _check_written(v, items, done.stderr + done.stdout)
        return
    for item in items:
        if v.engine == "flite":
            args, stdin = _flite(v, item), None
        else:  # espeak-ng, and mbrola voices through it
            args, stdin = _espeak(v, item), item.text
        try:
            done = _run(args, timeout=SENTENCE_TIMEOUT_S, stdin=stdin)
        except subprocess.TimeoutExpired:
            raise _engine_failed(v, item, f"no answer in {SENTENCE_TIMEOUT_S:.0f} s") from None
        if done.returncode != 0:
            raise _engine_failed(v, item, done.stderr or f"exit code {done.returncode}")
        _check_written(v, [item], done.stderr)
