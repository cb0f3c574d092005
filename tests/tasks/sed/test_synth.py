"""The synthetic DCASE2018 task 4 set: layout and metadata, exact labels that line up with the audio,
determinism, independent splits, and working without any recorded source."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile

from aics.core.errors import UserError
from aics.tasks.sed import synth
from aics.tasks.sed.labels import (
    AUDIO_DIRS,
    CLASSES,
    METADATA,
    STRONG_HEADER,
    UNLABELLED_HEADER,
    WEAK_HEADER,
)

SR = 16000
NAME = re.compile(r"^Y[A-Za-z0-9_-]{11}_(\d+)\.000_(\d+)\.000\.wav$")
TIME = re.compile(r"^\d+\.\d{3}$")


def read_tsv(path):
    lines = path.read_text(encoding="utf-8").splitlines()
    return tuple(lines[0].split("\t")), [line.split("\t") for line in lines[1:]]


def files(root):
    return {
        p.relative_to(root): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != ".done"
    }


def events_by_clip(root, split):
    _, rows = read_tsv(root / synth.EVENTS_FILE)
    out = {}
    for r in rows:
        if r[0] == split:
            out.setdefault(r[1], []).append((r[2], r[3], r[4]))
    return out


def no_sources(monkeypatch, tmp_path):
    """No freedesktop or alsa sounds and no espeak-ng."""
    empty = tmp_path / "no_sounds"
    empty.mkdir(exist_ok=True)
    monkeypatch.setattr(synth, "FREEDESKTOP_DIR", empty)
    monkeypatch.setattr(synth, "ALSA_DIR", empty)
    monkeypatch.setenv("PATH", str(empty))


@pytest.fixture(scope="module")
def small_set(tmp_path_factory):
    out = tmp_path_factory.mktemp("sed") / "ds"
    info = synth.generate(
        out, n_weak=12, n_unlabel=3, n_test=10, n_eval=10, sample_rate=SR, show_progress=False
    )
    return out, info


def test_layout_headers_and_rows(small_set):
    out, info = small_set
    assert (out / ".done").is_file()
    assert json.loads((out / synth.INFO_FILE).read_text()) == {
        k: v for k, v in info.items() if k not in ("out_dir", "events")
    }
    counts = {"weak": 12, "unlabel_in_domain": 3, "test": 10, "eval": 10}
    headers = {"weak": WEAK_HEADER, "unlabel_in_domain": UNLABELLED_HEADER, "test": STRONG_HEADER}
    for split, n in counts.items():
        wavs = sorted((out / AUDIO_DIRS[split]).glob("*.wav"))
        assert len(wavs) == n
        for wav in wavs:
            m = NAME.match(wav.name)
            assert m and int(m.group(2)) - int(m.group(1)) == 10
            meta = soundfile.info(str(wav))
            assert (meta.samplerate, meta.channels, meta.frames, meta.subtype) == (SR, 1, 10 * SR, "PCM_16")
        header, rows = read_tsv(out / METADATA[split])
        assert header == headers.get(split, STRONG_HEADER)
        assert {r[0] for r in rows} == {w.name for w in wavs}
        placed = events_by_clip(out, split)
        assert set(placed) == {w.name for w in wavs}  # every clip has at least one event
        if split == "weak":
            assert len(rows) == n
            for name, tags in rows:
                assert tags.split(",") == [c for c in CLASSES if c in {e[2] for e in placed[name]}]
        elif split == "unlabel_in_domain":
            assert all(len(r) == 1 for r in rows) and len(rows) == n
        else:
            for _, onset, offset, label in rows:
                assert TIME.match(onset) and TIME.match(offset) and label in CLASSES
                assert 0.0 <= float(onset) < float(offset) <= 10.0
            assert sorted(tuple(r) for r in rows) == sorted((k, *e) for k, v in placed.items() for e in v)
            for name in {r[0] for r in rows}:  # one class's events are >= 150 ms apart (DCASE's rule)
                for label in CLASSES:
                    times = sorted((float(r[1]), float(r[2])) for r in rows if r[0] == name and r[3] == label)
                    assert all(b[0] - a[1] >= 0.150 - 1e-9 for a, b in zip(times, times[1:], strict=False))
            assert {r[3] for r in rows} == set(CLASSES)  # 10 clips: every class (first events cycle)
        stats = info["splits"][split]
        assert stats["clips"] == n and stats["events"] == sum(len(v) for v in placed.values())
        assert sum(stats["events_per_class"].values()) == stats["events"]
    assert info["total_seconds"] == 350.0 and info["params"]["format"] == synth.FORMAT_VERSION
    used = info["sources"]["classes"]
    assert sum(sum(c["used"].values()) for c in used.values()) == sum(
        s["events"] for s in info["splits"].values()
    )


def test_rerun_is_skipped_and_other_params_refused(small_set):
    out, info = small_set
    again = synth.generate(
        out, n_weak=12, n_unlabel=3, n_test=10, n_eval=10, sample_rate=SR, show_progress=False
    )
    assert again == info
    with pytest.raises(UserError, match="other options"):
        synth.generate(out, n_weak=13, n_unlabel=3, n_test=10, n_eval=10, sample_rate=SR, show_progress=False)


def test_same_seed_same_bytes_and_splits_independent(tmp_path):
    def make(name, **kw):
        args = {"n_weak": 3, "n_unlabel": 1, "n_test": 2, "n_eval": 2, "sample_rate": SR, "duration": 4.0}
        synth.generate(tmp_path / name, **{**args, **kw}, show_progress=False)
        return files(tmp_path / name)

    a, b, c, d = (
        make("a", seed=3),
        make("b", seed=3),
        make("c", seed=4),
        make("d", seed=3, n_weak=5, n_unlabel=0),
    )
    assert a == b
    wavs = [k for k in a if k.suffix == ".wav"]
    assert len(wavs) == 8 and not set(wavs) & set(c)  # another seed: other clips
    strong = [k for k in a if len(k.parts) > 2 and k.parts[1] in ("test", "eval")]  # wavs and csvs
    assert len(strong) == 6 and all(a[k] == d[k] for k in strong)  # test/eval do not depend on n_weak
    assert len([k for k in d if k.suffix == ".wav"]) == 9


@pytest.mark.parametrize("sample_rate", [SR, 44100])
def test_labels_line_up_with_the_audio(tmp_path, sample_rate):
    """At 60 dB SNR every labelled window is far louder than the background, and the audio changes right
    at each label edge: the 10 ms just inside an edge peak above the 10 ms outside (where no event is)."""
    out = tmp_path / "ds"
    n_test = 10 if sample_rate == SR else 4
    synth.generate(out, n_weak=0, n_unlabel=0, n_test=n_test, n_eval=0, sample_rate=sample_rate,
                   snr_db=(60.0, 60.0), show_progress=False)  # fmt: skip
    edges = 0
    for name, events in events_by_clip(out, "test").items():
        x, sr = soundfile.read(str(out / AUDIO_DIRS["test"] / name), dtype="float64")
        assert sr == sample_rate and len(x) == 10 * sr
        spans = [(round(float(on) * sr), round(float(off) * sr)) for on, off, _ in events]
        busy = np.zeros(len(x), bool)
        for s, e in spans:
            busy[s:e] = True
        quiet = x[~busy]
        if len(quiet) > sr // 2:
            floor = np.sqrt(np.mean(quiet**2))
            for s, e in spans:
                assert np.sqrt(np.mean(x[s:e] ** 2)) > 30 * floor
        w = sr // 100
        for s, e in spans:
            for inside, outside in ((slice(s, s + w), slice(s - w, s)), (slice(e - w, e), slice(e, e + w))):
                if outside.start >= 0 and outside.stop <= len(x) and not busy[outside].any():
                    assert np.abs(x[inside]).max() > 2 * np.abs(x[outside]).max()
                    edges += 1
    assert edges >= 5


def test_works_without_any_recorded_source(tmp_path, monkeypatch):
    args = {"n_weak": 4, "n_unlabel": 1, "n_test": 3, "n_eval": 1, "sample_rate": 8000, "duration": 3.0}
    generated = synth.generate(tmp_path / "gen", **args, sources="generated", show_progress=False)
    no_sources(monkeypatch, tmp_path)
    info = synth.generate(tmp_path / "auto", **args, show_progress=False)
    sources = info["sources"]
    assert sources["espeak_ng"] is None and sources["background_recordings"] == []
    assert all(c["found"] == [] and set(c["used"]) <= {"generated"} for c in sources["classes"].values())
    assert generated["sources"]["classes"] == sources["classes"]
    # with nothing found, "auto" makes exactly what "generated" makes
    made, found_nothing = files(tmp_path / "gen"), files(tmp_path / "auto")
    made.pop(Path(synth.INFO_FILE)), found_nothing.pop(Path(synth.INFO_FILE))
    assert made == found_nothing and len(made) == 9 + 4 + 1


def test_recorded_sources_are_used_when_present():
    pool = synth.load_sources(SR)
    if not pool.events:
        pytest.skip("no freedesktop/alsa sounds and no espeak-ng on this machine")
    for label, groups in pool.events.items():
        assert label in CLASSES
        for recordings in groups.values():
            for rec in recordings:
                assert rec.wav.dtype == np.float32 and not rec.wav.flags.writeable
                assert abs(np.sqrt(np.mean(rec.wav.astype(np.float64) ** 2)) - 1) < 1e-3
                assert synth.audible_span(rec.wav, SR) == (0, len(rec.wav))  # already cut to its audible part
    rng = np.random.default_rng(0)
    label = sorted(pool.events)[0]
    sources = {synth.render_event(rng, label, SR, 10 * SR, pool)[1] for _ in range(30)}
    assert "generated" in sources and len(sources) > 1


@pytest.mark.parametrize("sample_rate", [8000, 44100])
def test_every_generator_gives_a_clean_event(sample_rate):
    for label, make in synth.GENERATORS.items():
        for seed in range(3):
            x = make(np.random.default_rng(seed), sample_rate, 3.0)
            assert x.ndim == 1 and np.isfinite(x).all(), label
            assert 0.05 * sample_rate <= len(x) <= 3 * sample_rate, label
            start, end = synth.audible_span(x, sample_rate)
            assert end - start >= 0.05 * sample_rate, label


def test_audible_segments_split_at_long_pauses():
    sr = 16000
    burst = np.sin(np.arange(1600) * 0.5).astype(np.float32)
    burst[0] = burst[-1] = 1.0
    for pause_ms, expected in ((100, [(0, 4800)]), (200, [(0, 1600), (4800, 6400)])):
        x = np.concatenate([burst, np.zeros(pause_ms * 16, np.float32), burst])
        assert synth.audible_segments(x, sr) == expected
    tail = np.concatenate([burst, 1e-3 * np.ones(3200, np.float32), burst])  # -60 dB: silence too
    assert synth.audible_segments(tail, sr) == [(0, 1600), (4800, 6400)]


def test_audible_span_is_sample_exact():
    x = np.zeros(16000, np.float32)
    x[3001:9000] = np.sin(np.arange(5999) * 0.3) * np.linspace(1, 0.5, 5999) + 0.0
    x[3001] = 0.8  # the sine starts at 0: make the first sample audible
    x[100] = 0.001  # a lone click far below the event
    assert synth.audible_span(x, 16000) == (3001, 9000)
    assert synth.audible_span(np.zeros(100, np.float32), 16000) == (0, 0)
    assert synth.ms_to_sample(1, 44100) == 44 and synth.ms_to_sample(3, 44100) == 132
    assert synth.ms_to_sample(10000, 44100) == 441000 and synth.format_ms(9050) == "9.050"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"n_weak": -1}, "n_weak"),
        ({"n_test": 2.5}, "n_test"),
        ({"n_weak": 0, "n_unlabel": 0, "n_test": 0, "n_eval": 0}, "at least one clip"),
        ({"sample_rate": 4000}, "sample_rate"),
        ({"duration": 0.5}, "duration"),
        ({"duration": 2.0005}, "whole number of milliseconds"),
        ({"snr_db": (10.0, 5.0)}, "snr_db"),
        ({"snr_db": 5.0}, "snr_db"),
        ({"seed": -1}, "seed"),
        ({"sources": "web"}, "sources"),
    ],
)
def test_bad_arguments_are_refused_before_writing(tmp_path, kwargs, message):
    out = tmp_path / "ds"
    with pytest.raises(UserError, match=message):
        synth.generate(out, **kwargs)
    assert not out.exists()
