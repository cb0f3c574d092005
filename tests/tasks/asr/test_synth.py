"""Offline speech corpora (aics.tasks.asr.synth, engines): the LJSpeech and LibriTTS layouts written from
Debian's synthesizers, determinism, resume, and the errors for missing engines and bad arguments."""

from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path

import pytest
import soundfile

from aics.core.errors import UserError
from aics.tasks.asr import engines, synth
from aics.tasks.asr.engines import VOICES, SynthItem
from aics.tasks.asr.text import ENGLISH_CHARS, normalize_text

needs_flite = pytest.mark.skipif(shutil.which("flite") is None, reason="flite is not installed")
needs_festival = pytest.mark.skipif(shutil.which("festival") is None, reason="festival is not installed")
needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")

TINY = {"minutes": 0.25, "dev_minutes": 0.05, "test_minutes": 0.05, "show_progress": False}


def tree_hash(root: Path) -> str:
    """Every file of a corpus but the run records (.done holds a time stamp)."""
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file() and p.name not in (".done", ".lock"):
            h.update(p.relative_to(root).as_posix().encode() + b"\0" + p.read_bytes())
    return h.hexdigest()


def read_tsv(path: Path) -> list[list[str]]:
    return [line.split("\t") for line in path.read_text(encoding="utf-8").splitlines()]


@needs_flite
def test_libritts_layout(tmp_path: Path) -> None:
    out = tmp_path / "corpus"
    info = synth.generate(
        out,
        layout="libritts",
        voices=["flite-slt", "flite-awb"],
        heldout_voices=["flite-rms"],
        seed=1,
        **TINY,
    )
    assert (out / ".done").is_file() and not (out / synth.PARTIAL).exists()
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["dev", "test", "test-heldout", "train"]
    assert info["sample_rate"] == 24000 and info["minutes"]["test-heldout"] == 0.05

    rows = read_tsv(out / synth.UTTERANCES_TSV)
    assert rows[0][:3] == ["id", "subset", "speaker"]
    utts = [dict(zip(rows[0], r, strict=True)) for r in rows[1:]]
    by_subset: dict[str, list[dict]] = {}
    for u in utts:
        by_subset.setdefault(u["subset"], []).append(u)
    for subset, minutes in info["minutes"].items():
        group = by_subset[subset]
        assert sum(float(u["seconds"]) for u in group) >= 60 * minutes - 0.01
        assert info["subsets"][subset]["utterances"] == len(group)
        voices = {"flite-rms"} if subset == "test-heldout" else {"flite-slt", "flite-awb"}
        assert {u["voice"] for u in group} == voices  # every voice speaks in every subset
    # disjoint sentences; the held-out speaker reads the test sentences
    text = {s: {u["transcript"] for u in by_subset[s]} for s in by_subset}
    assert (
        not text["train"] & text["dev"]
        and not text["train"] & text["test"]
        and not text["dev"] & text["test"]
    )
    test_by_index = {u["id"].split("_")[2]: u["transcript"] for u in by_subset["test"]}
    for u in by_subset["test-heldout"]:
        assert u["transcript"] == test_by_index[u["id"].split("_")[2]]

    for u in utts:
        wav = out / u["wav"]
        subset, reader, chapter, name = wav.relative_to(out).parts
        assert (subset, reader) == (u["subset"], u["reader"]) and name == f"{u['id']}.wav"
        assert re.fullmatch(rf"{reader}_{chapter}_\d{{6}}_\d{{6}}", u["id"])
        info_wav = soundfile.info(str(wav))
        assert (info_wav.samplerate, info_wav.channels, info_wav.subtype) == (24000, 1, "PCM_16")
        assert abs(info_wav.duration - float(u["seconds"])) < 0.001
        normalized = wav.with_suffix(".normalized.txt").read_text(encoding="utf-8")
        original = wav.with_suffix(".original.txt").read_text(encoding="utf-8")
        assert normalized and not normalized.endswith("\n") and not re.search(r"\d", normalized)
        assert normalize_text(original) == normalize_text(normalized) == u["transcript"]
        assert set(u["transcript"]) <= set(ENGLISH_CHARS)
        trans = read_tsv(wav.parent / f"{reader}_{chapter}.trans.tsv")
        assert [u["id"], original, normalized] in trans

    speakers = read_tsv(out / "speakers.tsv")
    assert speakers[0] == ["READER", "GENDER", "SUBSET", "NAME"]
    table = {r[0]: r for r in speakers[1:]}
    assert table["105"][1:3] == ["F", "train,dev,test"] and table["104"][1:3] == ["M", "test-heldout"]
    assert set(table) == {u["reader"] for u in utts}
    assert info["engines"]["flite"]["version"] and info["text"]["seed"] == 1


@needs_flite
def test_ljspeech_layout(tmp_path: Path) -> None:
    out = tmp_path / "lj"
    info = synth.generate(out, layout="ljspeech", voices=["flite-kal"], minutes=0.15, show_progress=False)
    lines = (out / "metadata.csv").read_text(encoding="utf-8").splitlines()
    assert len(lines) == info["subsets"]["all"]["utterances"] >= 2
    assert sorted(p.name for p in (out / "wavs").iterdir()) == sorted(
        f"{line.split('|')[0]}.wav" for line in lines
    )
    for line in lines:
        uid, raw, normalized = line.split("|")
        assert re.fullmatch(r"KA\d{3}-\d{4}", uid)
        assert normalized and not re.search(r"\d", normalized) and normalized[-1] in '.?!"'
        assert normalize_text(raw) == normalize_text(normalized)
        i = soundfile.info(str(out / "wavs" / f"{uid}.wav"))
        assert (i.samplerate, i.subtype) == (22050, "PCM_16")  # flite kal speaks at 8 kHz: resampled
    assert info["sample_rate"] == 22050 and info["voice_details"]["flite-kal"]["sample_rate"] == 8000


@needs_flite
def test_same_corpus_for_any_workers_and_after_a_crash(tmp_path: Path, monkeypatch) -> None:
    settings = dict(layout="libritts", voices=["flite-kal16", "flite-slt"], seed=5, **TINY)
    synth.generate(tmp_path / "one", workers=1, **settings)

    real, calls = engines.synthesize, []

    def crash_on_fourth_job(voice, items):
        calls.append(len(items))
        if len(calls) == 4:
            raise KeyboardInterrupt
        real(voice, items)

    monkeypatch.setattr(engines, "synthesize", crash_on_fourth_job)
    with pytest.raises(KeyboardInterrupt):
        synth.generate(tmp_path / "two", workers=2, **settings)
    assert (tmp_path / "two" / synth.PARTIAL).is_file() and not (tmp_path / "two" / ".done").exists()
    before = len(calls)
    info = synth.generate(tmp_path / "two", workers=2, **settings)  # resumes
    assert tree_hash(tmp_path / "one") == tree_hash(tmp_path / "two")
    assert info["subsets"]["train"]["utterances"] > 2
    resumed = sum(calls[before:])
    assert 0 < resumed < sum(info["subsets"][s]["utterances"] for s in info["subsets"])

    # finished: a rerun with the same settings is skipped, other settings are refused
    done = len(calls)
    assert synth.generate(tmp_path / "two", **settings)["subsets"] == info["subsets"]
    assert len(calls) == done
    with pytest.raises(UserError, match="other options"):
        synth.generate(tmp_path / "two", **{**settings, "seed": 6})


@needs_flite
def test_unfinished_corpus_with_other_settings_is_refused(tmp_path: Path, monkeypatch) -> None:
    def crash(voice, items):
        raise KeyboardInterrupt

    monkeypatch.setattr(engines, "synthesize", crash)
    settings = dict(layout="ljspeech", voices=["flite-slt"], minutes=0.05, show_progress=False)
    with pytest.raises(KeyboardInterrupt):
        synth.generate(tmp_path / "c", **settings)
    with pytest.raises(UserError, match="unfinished corpus made with other settings"):
        synth.generate(tmp_path / "c", **{**settings, "seed": 1})


def test_missing_engine_names_the_package(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no synthesizer on the PATH
    with pytest.raises(UserError, match=r"flite is not installed.*apt-get install flite'$"):
        synth.generate(tmp_path / "out", voices=["flite-slt"], layout="ljspeech", show_progress=False)
    with pytest.raises(UserError, match=r"festival is not installed.*apt-get install festival'"):
        engines.check_engines(["festival-ked"])
    with pytest.raises(UserError, match=r"espeak-ng is not installed.*apt-get install espeak-ng'"):
        engines.check_engines(["espeak-en-us"])
    assert not (tmp_path / "out").exists()  # checked before anything is written


def test_mbrola_is_opt_in() -> None:
    mbrola = [v for v in VOICES.values() if v.engine == "mbrola"]
    assert mbrola and all(v.opt_in for v in mbrola)
    assert not any(VOICES[v].opt_in for v in engines.DEFAULT_VOICES)
    assert len({VOICES[v].speaker for v in engines.DEFAULT_VOICES}) == 5  # five recorded people
    assert {VOICES[v].speaker for v in VOICES if v.startswith("espeak-")} == {"espeak"}
    if shutil.which("mbrola") is None:
        with pytest.raises(UserError, match="mbrola"):
            engines.check_engines(["mbrola-us1"])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"layout": "ljspeech", "voices": ["flite-slt", "flite-awb"]}, "one voice"),
        ({"voices": ["flite-slt"], "heldout_voices": ["festival-slt"]}, "speaker slt"),
        ({"voices": ["flite-slt"], "heldout_voices": ["flite-slt"]}, "also in voices"),
        ({"voices": ["flite-nobody"]}, "unknown voice"),
        ({"speed_range": (1.2, 0.8)}, "speed_range"),
        ({"minutes": 0}, "minutes"),
        ({"layout": "ljspeech", "dev_minutes": 1.0}, "no subsets"),
        ({"layout": "wav2vec"}, "layout"),
        ({"vocab_size": 3}, "vocab_size"),
        ({"sr": 1000}, "sr"),
    ],
)
def test_bad_arguments_write_nothing(tmp_path: Path, kwargs: dict, message: str) -> None:
    with pytest.raises(UserError, match=message):
        synth.generate(tmp_path / "out", show_progress=False, **kwargs)
    assert not (tmp_path / "out").exists()


def test_espeak_variant_defaults() -> None:
    def variants(**kwargs) -> list[str]:
        return synth.resolve_settings(**kwargs)["espeak_variants"]

    assert variants(voices=["espeak-en-us", "flite-slt"]) == list(engines.ESPEAK_VARIANTS)
    assert variants(voices=["espeak-en-us"], espeak_variants=()) == list(engines.ESPEAK_VARIANTS)
    assert variants(layout="ljspeech", voices=["espeak-en-us"]) == []
    assert variants(layout="ljspeech", voices=["espeak-en-us"], espeak_variants=["m3", "f2"]) == ["m3", "f2"]
    assert variants(voices=["espeak-en-us"], espeak_variants="none") == []
    assert variants(voices=["flite-slt"], espeak_variants=["m3"]) == []  # no espeak-ng voice: unused
    with pytest.raises(UserError, match="stand alone"):
        variants(voices=["espeak-en-us"], espeak_variants=["all", "m3"])


def _durations(items: list[SynthItem]) -> list[float]:
    return [soundfile.info(str(i.path)).duration for i in items]


@needs_festival
def test_festival_batch(tmp_path: Path) -> None:
    engines.check_engines(["festival-kal", "festival-slt"])
    text = 'She said, "Mister Smith paid three dollars," and left.'
    for name, rate in (("festival-kal", 16000), ("festival-slt", 32000)):
        items = [
            SynthItem(text, tmp_path / f"{name}-slow.wav", speed=0.8, pitch=0.9),
            SynthItem(text, tmp_path / f"{name}-fast.wav", speed=1.25, pitch=1.1),
            SynthItem("How are you?", tmp_path / f"{name}-short.wav"),
        ]
        engines.synthesize(VOICES[name], items)  # one festival process for all three
        assert {soundfile.info(str(i.path)).samplerate for i in items} == {rate}
        slow, fast, short = _durations(items)
        assert slow > 1.3 * fast and short < fast


@needs_espeak
def test_espeak_variants_speed_and_pitch(tmp_path: Path) -> None:
    engines.check_engines(["espeak-en-gb-scotland"], ["m3", "f2"])
    items = [
        SynthItem("The quick brown fox jumps over the lazy dog.", tmp_path / "a.wav", 0.8, 1.1, "m3"),
        SynthItem("The quick brown fox jumps over the lazy dog.", tmp_path / "b.wav", 1.25, 0.9, "f2"),
    ]
    engines.synthesize(VOICES["espeak-en-gb-scotland"], items)
    assert {soundfile.info(str(i.path)).samplerate for i in items} == {22050}
    slow, fast = _durations(items)
    assert slow > 1.3 * fast
    with pytest.raises(UserError, match="espeak-ng variant no-such-variant"):
        engines.check_engines(["espeak-en-us"], ["no-such-variant"])


def test_festival_script_escapes_text() -> None:
    item = SynthItem('a "quoted" back\\slash', Path("/tmp/x.wav"))
    script = engines.festival_script(VOICES["festival-ked"], [item])
    assert '(Utterance Text "a \\"quoted\\" back\\\\slash")' in script
    assert script.startswith("(voice_ked_diphone)")
