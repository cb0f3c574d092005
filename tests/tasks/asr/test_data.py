"""Prepared speech data (aics.tasks.asr.data): manifests and units from the synthetic LibriTTS-layout corpus,
LJSpeech and THCHS-30 corpora written by hand, one-line errors for bad input through the CLI, features on
disk, batches with SpecAugment, and the length-grouped sampler (aics.core.loader)."""

from __future__ import annotations

import os
import shutil
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from aics.core.audio import frame_count, read_wav
from aics.core.config import load_config
from aics.core.errors import UserError
from aics.core.io import read_json, read_jsonl
from aics.core.loader import EpochBatchSampler, LengthGroupedSampler
from aics.tasks.asr.config import AsrConfig, SpecAugmentConfig
from aics.tasks.asr.data import (
    BLANK_UNIT,
    SPACE_UNIT,
    Collate,
    FeatureSet,
    compute_features,
    english_units,
    feature_dim,
    features_of,
    prepare,
    read_units,
    spec_augment,
)

needs_flite = pytest.mark.skipif(shutil.which("flite") is None, reason="flite is not installed")

# The corpus, prepared dir and features are shared with test_train.py: both build them under the session's
# base temp dir with the same settings, so whichever module runs second finds them done and skips the work.
SYNTH = {"layout": "libritts", "voices": ["flite-slt", "flite-awb"], "heldout_voices": ["flite-kal16"],
         "minutes": 1.0, "vocab_size": 40, "seed": 0, "show_progress": False}  # fmt: skip
LOGMEL40 = ["features.kind=logmel", "features.n_mels=40"]
SUBSETS = ["dev", "test", "test-heldout", "train"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    if shutil.which("flite") is None:
        pytest.skip("flite is not installed")
    from aics.tasks.asr.synth import generate

    out = tmp_path_factory.getbasetemp() / "asr-corpus"
    generate(out, **SYNTH)
    return out


@pytest.fixture(scope="module")
def prepared(corpus) -> Path:
    out = corpus.parent / "asr-prepared"
    prepare(corpus, out)
    return out


@pytest.fixture(scope="module")
def feats(prepared) -> Path:
    out = prepared.parent / "asr-feats-logmel40"
    compute_features(prepared, out, features_config(*LOGMEL40), show_progress=False)
    return out


def features_config(*overrides: str):
    return load_config(AsrConfig, [], list(overrides)).features


# ------------------------------------------------------------------------------------ synthetic corpus
@needs_flite
def test_prepare_writes_manifests_units_and_stats(corpus, prepared):
    assert sorted(p.name for p in prepared.iterdir()) == sorted(
        [".done", "stats.json", "units.txt", *(f"{s}.jsonl" for s in SUBSETS)]
    )
    lines = (prepared / "units.txt").read_text(encoding="utf-8").splitlines()
    assert lines[0] == BLANK_UNIT and SPACE_UNIT in lines and " " not in lines and "" not in lines
    assert set(lines[1:]) == set("abcdefghijklmnopqrstuvwxyz'") | {SPACE_UNIT}
    assert read_units(prepared / "units.txt") == english_units()
    assert len(lines) == len(set(lines)) == 29

    stats = read_json(prepared / "stats.json")
    synth = read_json(corpus / "synth.json")
    assert (stats["format"], stats["units"], stats["n_units"]) == ("libritts", "char", 29)
    assert stats["src"] == str(corpus.resolve()) and sorted(stats["subsets"]) == SUBSETS
    speakers = {}
    for s in SUBSETS:
        rows = read_jsonl(prepared / f"{s}.jsonl")
        assert len(rows) == stats["subsets"][s]["utterances"] == synth["subsets"][s]["utterances"] > 0
        assert [r["id"] for r in rows] == sorted(r["id"] for r in rows)
        speakers[s] = {r["speaker"] for r in rows}
        assert stats["subsets"][s]["speakers"] == len(speakers[s])
        assert stats["subsets"][s]["hours"] == pytest.approx(sum(r["seconds"] for r in rows) / 3600, abs=1e-4)
        for r in rows:
            assert set(r) == {"id", "wav", "speaker", "text", "units", "source", "seconds"}
            wav = Path(r["wav"])
            assert wav.is_file() and wav.name == f"{r['id']}.wav" and wav.parts[-4] == s
            assert r["speaker"] == wav.parts[-3] == r["id"].split("_")[0]
            assert "".join(r["units"]) == r["text"] and r["text"] == r["text"].strip()
            assert "  " not in r["text"] and set(r["text"]) <= set("abcdefghijklmnopqrstuvwxyz' ")
            assert r["source"] == f"{wav.with_suffix('')}.normalized.txt:1"
            info = sf.info(r["wav"])
            assert r["seconds"] == pytest.approx(info.frames / info.samplerate, abs=1e-3)
    assert speakers["train"] == speakers["dev"] == speakers["test"] and len(speakers["train"]) == 2
    assert speakers["test-heldout"].isdisjoint(speakers["train"])  # the held-out voice


@needs_flite
def test_prepare_rerun_is_skipped_and_other_options_refused(corpus, tmp_path, capsys):
    out = tmp_path / "p"
    first = prepare(corpus, out, workers=1)
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    capsys.readouterr()
    assert prepare(corpus, out) == first
    assert f"prepare: {out} is already done" in capsys.readouterr().err
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before
    with pytest.raises(UserError, match=r"was made with other options \(seed=0 -> 3\); pass --overwrite"):
        prepare(corpus, out, seed=3)
    with pytest.raises(UserError, match=r"train_set='train' -> 'dev'"):
        prepare(corpus, out, train_set="dev")
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before
    again = prepare(corpus, out, seed=3, overwrite=True)
    assert again["seed"] == 3 and read_json(out / ".done")["params"]["seed"] == 3
    assert read_jsonl(out / "train.jsonl") == read_jsonl(corpus.parent / "asr-prepared" / "train.jsonl")


# -------------------------------------------------------------------------------------------- LJSpeech
def write_noise(path: Path, seconds: float = 0.3, sr: int = 22050, seed: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.random.default_rng(seed).uniform(-0.1, 0.1, int(seconds * sr)).astype(np.float32), sr)


def make_ljspeech(root: Path, rows: list[str], skip_wavs=()) -> Path:
    root.mkdir(parents=True)
    (root / "metadata.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    for i, row in enumerate(rows):
        uid = row.split("|")[0]
        if uid not in skip_wavs:
            write_noise(root / "wavs" / f"{uid}.wav", seconds=0.2 + 0.01 * i, seed=i)
    return root


WORDS = ("one", "two", "three")
LJ_ROWS = [
    f"LJ001-{i:04d}|Mr. Smith's {i} books.|Mister Smith's books, page {WORDS[i % 3]}!" for i in range(20)
]
OK_ROWS = ["LJ001-0001|One.|One.", "LJ001-0002|Two, three.|Two, three.", "LJ001-0003|Four.|Four."]


def test_ljspeech_gets_a_seeded_split(tmp_path):
    src = make_ljspeech(tmp_path / "LJSpeech-1.1", LJ_ROWS)
    stats = prepare(src, tmp_path / "a", valid_frac=0.1, test_frac=0.2, seed=0)
    assert stats["format"] == "ljspeech" and stats["units"] == "char"
    assert {k: v["utterances"] for k, v in stats["subsets"].items()} == {"dev": 2, "test": 4, "train": 14}
    split = {
        s: [r["id"] for r in read_jsonl(tmp_path / "a" / f"{s}.jsonl")] for s in ("train", "dev", "test")
    }
    every = [uid for ids in split.values() for uid in ids]
    assert sorted(every) == sorted(row.split("|")[0] for row in LJ_ROWS)  # each utterance once
    assert all(ids == sorted(ids) for ids in split.values())
    row = read_jsonl(tmp_path / "a" / "dev.jsonl")[0]
    n = int(row["id"][-4:])
    assert row["text"] == f"mister smith's books page {WORDS[n % 3]}" and row["speaker"] == "LJ"
    assert row["source"] == f"{src / 'metadata.csv'}:{n + 1}"
    # the same seed splits the same way (from the corpus's parent dir too); another seed differently
    prepare(tmp_path, tmp_path / "b", valid_frac=0.1, test_frac=0.2, seed=0)
    prepare(src, tmp_path / "c", valid_frac=0.1, test_frac=0.2, seed=1)
    for s in split:
        assert [r["id"] for r in read_jsonl(tmp_path / "b" / f"{s}.jsonl")] == split[s]
    assert [r["id"] for r in read_jsonl(tmp_path / "c" / "test.jsonl")] != split["test"]
    with pytest.raises(UserError, match="20 utterances leave none for training"):
        prepare(src, tmp_path / "d", valid_frac=0.5, test_frac=0.5)
    assert not (tmp_path / "d").exists()


def test_pinyin_units_need_thchs30(tmp_path, aics):
    src = make_ljspeech(tmp_path / "lj", OK_ROWS)
    line = aics.error("asr", "prepare", "--src", src, "--out", tmp_path / "p", "--units", "pinyin")
    assert "pinyin units need THCHS-30 transcripts; use --units char for ljspeech" in line
    assert not (tmp_path / "p").exists()


def garbage_wav(src: Path) -> None:
    (src / "wavs" / "LJ001-0002.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunk" + bytes(range(200)))


# (rows of metadata.csv, wavs left out, a change to the corpus, what the error line says)
BAD_LJSPEECH = {
    "wrong field count": (
        [OK_ROWS[0], "LJ001-0002|Two, three.", OK_ROWS[2]], (), None,
        ["metadata.csv:2: 2 fields, expected 3"],
    ),
    "missing wav": (OK_ROWS, ("LJ001-0003",), None, ["metadata.csv:3: ", "LJ001-0003.wav not found"]),
    "unreadable wav": (
        OK_ROWS, (), garbage_wav, ["wavs/LJ001-0002.wav: cannot be read as audio", "metadata.csv:2"],
    ),
    "digit in the normalised text": (
        [OK_ROWS[0], "LJ001-0002|Two, 3.|Two, 3.", OK_ROWS[2]], (), None,
        ["metadata.csv:2: utterance LJ001-0002 has units outside the output units ('3')"],
    ),
    "empty normalised field": (
        [OK_ROWS[0], OK_ROWS[1], "LJ001-0003|Four.| "], (), None,
        ["metadata.csv:3: empty normalised transcript"],
    ),
    "transcript of punctuation only": (
        [OK_ROWS[0], OK_ROWS[1], "LJ001-0003|...|..."], (), None,
        ["metadata.csv:3: utterance LJ001-0003 has an empty transcript"],
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", list(BAD_LJSPEECH))
def test_bad_ljspeech_is_one_line_naming_file_and_line(tmp_path, aics, case):
    rows, skip, change, expected = BAD_LJSPEECH[case]
    src = make_ljspeech(tmp_path / "lj", rows, skip)
    if change:
        change(src)
    line = aics.error("asr", "prepare", "--src", src, "--out", tmp_path / "out")
    for text in expected:
        assert text in line, line
    assert str(src / "metadata.csv") in line


@pytest.mark.parametrize("case", list(BAD_LJSPEECH))
def test_bad_input_writes_nothing(tmp_path, aics, case):
    rows, skip, change, _ = BAD_LJSPEECH[case]
    src = make_ljspeech(tmp_path / "lj", rows, skip)
    if change:
        change(src)
    aics.error("asr", "prepare", "--src", src, "--out", tmp_path / "out")
    assert not (tmp_path / "out").exists(), sorted(p.name for p in (tmp_path / "out").iterdir())


def test_a_corpus_given_by_a_relative_path_can_be_used_from_elsewhere(tmp_path, monkeypatch):
    """The manifests name each wav so that later stages find it from any working directory."""
    make_ljspeech(tmp_path / "lj", LJ_ROWS)
    monkeypatch.chdir(tmp_path)
    prepare("lj", "prepared")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    info = compute_features(tmp_path / "prepared", "feats", features_config(), workers=1, show_progress=False)
    assert info["subsets"]["train"]["utterances"] == 18


# -------------------------------------------------------------------------------------------- THCHS-30
THCHS = {
    "A11_0": ("他 仅 凭 腰部 的 力量", "ta1 jin3 ping2 yao1 bu4 de5 li4 liang4"),
    "A11_1": ("绿 是 阳春", "lv4 shi4 yang2 chun1"),
    "A11_2": ("他 的 力量", "ta1 de5 li4 liang4"),
    "B2_0": ("是 他 的", "shi4 ta1 de5"),
    "B2_1": ("企业 依靠 技术", "qi3 ye4 yi1 kao4 ji4 shu4"),
}
THCHS_SPLITS = {"train": ["A11_0", "A11_1"], "dev": ["A11_2"], "test": ["B2_0"]}


def make_thchs30(root: Path, splits=THCHS_SPLITS) -> Path:
    """data_thchs30: data/<id>.wav + <id>.wav.trn (characters, pinyin, phones); each split dir links its
    utterances into data/ (a wav symlink and a one-line .trn naming ../data/<id>.wav.trn)."""
    base = root / "data_thchs30"
    for i, (uid, (chars, pinyin)) in enumerate(THCHS.items()):
        write_noise(base / "data" / f"{uid}.wav", sr=16000, seed=i)
        phones = " ".join(p for syl in pinyin.split() for p in ("x", syl))
        (base / "data" / f"{uid}.wav.trn").write_text(f"{chars}\n{pinyin}\n{phones}\n", encoding="utf-8")
    for split, ids in splits.items():
        (base / split).mkdir()
        for uid in ids:
            os.symlink(f"../data/{uid}.wav", base / split / f"{uid}.wav")
            (base / split / f"{uid}.wav.trn").write_text(f"../data/{uid}.wav.trn\n", encoding="utf-8")
    return base


def test_thchs30_pinyin_units_are_the_corpus_syllables(tmp_path):
    base = make_thchs30(tmp_path)
    stats = prepare(tmp_path, tmp_path / "p")
    assert (stats["format"], stats["units"]) == ("thchs30", "pinyin")
    syllables = sorted({s for uids in THCHS_SPLITS.values() for uid in uids for s in THCHS[uid][1].split()})
    assert read_units(tmp_path / "p" / "units.txt") == [BLANK_UNIT, *syllables]
    assert stats["n_units"] == len(syllables) + 1
    dev = read_jsonl(tmp_path / "p" / "dev.jsonl")
    assert [(r["id"], r["speaker"], r["text"]) for r in dev] == [("A11_2", "A11", "ta1 de5 li4 liang4")]
    assert dev[0]["units"] == ["ta1", "de5", "li4", "liang4"]
    assert dev[0]["source"] == f"{base / 'data' / 'A11_2.wav.trn'}:1"
    # a dev syllable the training transcripts never have is still an output unit (never seen in training)
    make_thchs30(tmp_path / "unseen", {**THCHS_SPLITS, "dev": ["A11_2", "B2_1"]})
    stats = prepare(tmp_path / "unseen", tmp_path / "q")
    assert "ji4" in read_units(tmp_path / "q" / "units.txt")
    # the n-gram LM of beam search counts syllables (the units), and refuses words (no space between them)
    from aics.tasks.asr.ngram import read_arpa, train_lm

    train_lm(tmp_path / "p", tmp_path / "lm.arpa", unit="char", order=2)
    lm = read_arpa(tmp_path / "lm.arpa")
    assert {"ta1", "liang4"} <= set(lm.vocab) and lm.score(("ta1",), "jin3") > lm.score(("ta1",), "liang4")
    with pytest.raises(UserError, match="no space between words"):
        train_lm(tmp_path / "p", tmp_path / "w.arpa", unit="word")


def test_thchs30_trn_with_two_lines_is_one_line_error(tmp_path, aics):
    base = make_thchs30(tmp_path)
    trn = base / "data" / "A11_1.wav.trn"
    trn.write_text("\n".join(trn.read_text(encoding="utf-8").splitlines()[:2]) + "\n", encoding="utf-8")
    line = aics.error("asr", "prepare", "--src", base, "--out", tmp_path / "out")
    assert f"{trn}:3: missing; a THCHS-30 .trn needs 3 lines (characters, pinyin, phones), not 2" in line
    assert not (tmp_path / "out").exists()


# -------------------------------------------------------------------------------------------- features
@needs_flite
def test_features_match_the_extractor_frame_for_frame(prepared, feats):
    info = read_json(feats / "features.json")
    fc = features_config(*LOGMEL40)
    assert info["features"] == asdict(fc) == read_json(feats / ".done")["params"]["features"]
    assert info["features"]["kind"] == "logmel" and info["features"]["n_mels"] == 40 and info["dim"] == 40
    assert info["unit_kind"] == "char" and sorted(info["subsets"]) == SUBSETS
    assert (feats / "units.txt").read_bytes() == (prepared / "units.txt").read_bytes()
    units = read_units(feats / "units.txt")
    for s in ("test", "test-heldout"):
        ds = FeatureSet(feats, s, units)
        rows = read_jsonl(prepared / f"{s}.jsonl")
        assert ds.feats.dtype == np.float16 and ds.feats.shape == (info["subsets"][s]["frames"], 40)
        assert [r["frames"] for r in ds.rows] == ds.lengths.tolist()
        assert [{k: v for k, v in r.items() if k != "frames"} for r in ds.rows] == rows
        for i, r in enumerate(rows):
            wav, sr = read_wav(r["wav"], sr=16000)
            assert ds.lengths[i] == frame_count(len(wav), hop_length=160, center=True, n_fft=400)
            j, x, target = ds[i]
            assert j == i and x.dtype == torch.float32 and target == [units.index(u) for u in r["units"]]
            expected = features_of(wav, fc)
            assert x.shape == expected.shape
            torch.testing.assert_close(x, expected, rtol=2e-3, atol=2e-3)  # stored as float16
            # normalised per utterance: zero mean, unit standard deviation in every bin
            assert x.double().mean(0).abs().max() < 1e-3
            assert (x.double().std(0, unbiased=False) - 1).abs().max() < 1e-3
    train = FeatureSet(feats, "train", units)
    limit = int(np.median(train.lengths))
    short = FeatureSet(feats, "train", units, max_frames=limit)
    assert short.keep == [i for i, n in enumerate(train.lengths) if n <= limit] and 0 < len(short) < len(
        train
    )
    assert torch.equal(short[0][1], train[short.keep[0]][1])
    with pytest.raises(UserError, match=r"has no subset 'valid' \(found: dev, test, test-heldout, train\)"):
        FeatureSet(feats, "valid", units)


def small_prepared(prepared: Path, dest: Path, subset: str = "test") -> Path:
    """A prepared dir with one subset of ``prepared`` (features of two utterances compute in a moment)."""
    dest.mkdir()
    for name in (f"{subset}.jsonl", "units.txt", "stats.json", ".done"):
        shutil.copy(prepared / name, dest / name)
    return dest


@needs_flite
def test_logspec_dims_raw_values_and_settings_recorded(prepared, tmp_path):
    data = small_prepared(prepared, tmp_path / "p")
    fc = features_config("features.kind=logspec", "features.max_bins=64", "features.normalize=none")
    info = compute_features(data, tmp_path / "f", fc, workers=1, show_progress=False)
    assert info["dim"] == feature_dim(fc) == 64 and info["features"]["kind"] == "logspec"
    assert read_json(tmp_path / "f" / "features.json")["features"]["max_bins"] == 64
    ds = FeatureSet(tmp_path / "f", "test", read_units(data / "units.txt"))
    row = ds.rows[0]
    wav, _ = read_wav(row["wav"], sr=16000)
    from aics.core.audio import FeatureExtractor

    raw = FeatureExtractor("logspec", sr=16000, n_fft=400, hop_length=160, log="ln")(wav)[:, :64]
    x = ds[0][1]
    torch.testing.assert_close(x, raw, rtol=2e-3, atol=2e-2)  # raw ln |STFT|^2, float16
    assert x.mean() < -3, "not normalised"
    assert features_of(wav, features_config("features.kind=logspec")).shape == (len(x), 201)  # all bins
    assert (
        features_of(
            wav, features_config("features.kind=logspec", "features.n_fft=512", "features.max_bins=300")
        ).shape[1]
        == 257
    )
    assert features_of(wav, features_config(*LOGMEL40, "features.max_bins=8")).shape[1] == 40
    assert feature_dim(features_config("features.kind=logmel")) == 80
    # other settings into the same dir are refused, the same ones skipped
    with pytest.raises(UserError, match="was made with other options"):
        compute_features(data, tmp_path / "f", features_config(), workers=1, show_progress=False)
    assert compute_features(data, tmp_path / "f", fc, workers=1, show_progress=False) == info


# -------------------------------------------------------------------------------------------- batches
SA = SpecAugmentConfig(freq_masks=2, freq_width=8, time_masks=2, time_width=20, time_ratio=0.1)


@needs_flite
def test_collate_pads_and_counts(feats):
    units = read_units(feats / "units.txt")
    ds = FeatureSet(feats, "train", units)
    items = [ds[i] for i in (3, 0, 5)]
    x, lengths, targets, target_lengths, idx = Collate(None)(items)
    assert idx.tolist() == [3, 0, 5] and lengths.tolist() == [ds.lengths[i] for i in (3, 0, 5)]
    assert x.shape == (3, int(lengths.max()), 40) and x.dtype == torch.float32
    for b, (_, xi, _) in enumerate(items):
        assert torch.equal(x[b, : len(xi)], xi) and not x[b, len(xi) :].any()
    assert target_lengths.tolist() == [len(t) for _, _, t in items]
    assert targets.tolist() == [t for _, _, ts in items for t in ts] and targets.dtype == torch.long
    off = Collate(SpecAugmentConfig(enabled=False), seed=0)
    off.epoch = 4
    assert torch.equal(off(items)[0], x), "SpecAugment disabled: the raw features"


@needs_flite
def test_specaugment_masks_depend_on_seed_epoch_and_utterance_only(feats):
    ds = FeatureSet(feats, "train", read_units(feats / "units.txt"))
    items = [ds[i] for i in range(4)]
    raw = Collate(None)(items)[0]

    def masked(batch, epoch=0, seed=0):
        c = Collate(SA, seed=seed)
        c.epoch = epoch
        return c(batch)[0]

    state = torch.get_rng_state()
    a = masked(items)
    assert torch.equal(torch.get_rng_state(), state), "the global RNG is not used"
    assert torch.equal(a, masked(items))
    # utterance 2 gets the same mask in another batch, at another position, padded to another length
    alone = masked([items[2]])
    assert torch.equal(alone[0], a[2, : len(alone[0])])
    for other in (masked(items, epoch=1), masked(items, seed=1)):
        assert not torch.equal(other, a)
    for b, (_, x, _) in enumerate(items):
        t = len(x)
        zero = (a[b, :t] == 0) & (raw[b, :t] != 0)
        assert zero.any(), "something is masked"
        bands = zero.all(0).sum().item()  # bins zero in every frame
        spans = zero.all(1).sum().item()  # frames zero in every bin
        assert 0 < bands <= SA.freq_masks * SA.freq_width
        assert 0 < spans <= SA.time_masks * min(SA.time_width, int(SA.time_ratio * t))
        assert torch.equal(a[b, :t][~zero.all(0).unsqueeze(0) & ~zero.all(1).unsqueeze(1)],
                           raw[b, :t][~zero.all(0).unsqueeze(0) & ~zero.all(1).unsqueeze(1)])  # fmt: skip
        assert not a[b, t:].any(), "padding stays zero"


def test_speed_and_warp_stretch_time_and_frequency_by_a_seeded_factor():
    sa = SpecAugmentConfig(freq_masks=0, time_masks=0, speed=0.2, warp=0.15)
    t, d = 500, 40
    ramp_t = torch.arange(t, dtype=torch.float32)[:, None].expand(t, d).clone()  # value = frame index
    ramp_f = torch.arange(d, dtype=torch.float32)[None, :].expand(t, d).clone()  # value = bin index
    lengths, warped = set(), set()
    for seed in range(30):
        y = spec_augment(ramp_t.clone(), sa, torch.Generator().manual_seed(seed))
        assert y.shape[1] == d and 500 / 1.2 - 1 <= len(y) <= 500 / 0.8 + 1
        # a time ramp stays a ramp from the first frame to the last, the same in every bin
        assert torch.allclose(y[:, 0], torch.linspace(0, t - 1, len(y)), atol=1e-3)
        assert torch.allclose(y, y[:, :1].expand_as(y))
        lengths.add(len(y))
        z = spec_augment(ramp_f.clone(), sa, torch.Generator().manual_seed(seed))
        assert z.shape == y.shape and torch.equal(z, z[:1].expand_as(z)), (
            "the warp is the same in every frame"
        )
        a = z[0, 1].item()  # bin 1 reads bin 1 / a: the factor is the slope at the bottom
        assert 1 / 1.15 - 1e-4 <= a <= 1 / 0.85 + 1e-4 and torch.allclose(z[0, :5], a * torch.arange(5.0))
        assert z[0].max() <= d - 1 and (z[0].diff() >= 0).all(), "bins above the top are cut, not wrapped"
        warped.add(round(a, 4))
    assert len(lengths) > 10 and len(warped) > 10, "the factors vary with the seed"
    # no speed and no warp: nothing changes
    flat = SpecAugmentConfig(freq_masks=0, time_masks=0)
    assert torch.equal(spec_augment(ramp_t.clone(), flat, torch.Generator().manual_seed(0)), ramp_t)


def test_length_grouped_sampler_orders_every_index_once_by_length():
    lengths = np.random.default_rng(0).permutation(np.arange(50, 1000))[:103]  # distinct lengths

    def batches(epoch=0, seed=0, start=0, **kw):
        s = LengthGroupedSampler(lengths, 4, seed=seed, **kw)
        s.set_epoch(epoch, start)
        return list(s)

    first = batches()
    assert len(first) == 26 and [len(b) for b in first] == [4] * 25 + [3]
    assert sorted(i for b in first for i in b) == list(range(103))
    assert batches() == first and batches(start=10) == first[10:]
    assert batches(epoch=1) != first and batches(seed=1) != first
    assert sorted(i for b in batches(epoch=1) for i in b) == list(range(103))
    # every full batch holds neighbours in length order: far less padding than random batches
    srt = np.sort(lengths)[::-1]
    for b in first[:-1]:
        got = sorted(lengths[b].tolist(), reverse=True)
        k = int(np.flatnonzero(srt == got[0])[0])
        assert got == srt[k : k + 4].tolist()

    def padding(bs):
        return sum(int(lengths[b].max() * len(b) - lengths[b].sum()) for b in bs)

    plain = EpochBatchSampler(103, 4, seed=0)
    assert padding(first) < padding(list(plain)) / 10
    # two ranks with batch 2 take the halves of the global batches of one process with batch 4
    ranks = [LengthGroupedSampler(lengths, 2, seed=0, rank=r, world_size=2) for r in (0, 1)]
    assert ranks[0].batches_per_epoch() == 25, "the short last global batch is dropped"
    ranks = [list(r) for r in ranks]
    assert [a + b for a, b in zip(*ranks, strict=True)] == first[:25]


def test_asr_transcripts_drop_case_accents_and_punctuation_but_keep_digits():
    from aics.tasks.asr.data import asr_transcript

    assert (
        asr_transcript("Mr. O\u2019Brien's \"caf\u00e9\" -- na\u00efve, isn't it?")
        == "mr o'brien's cafe naive isn't it"
    )
    assert asr_transcript("  Rock-and-roll  ") == "rock and roll"
    assert asr_transcript("Room 5") == "room 5"  # a digit is reported by prepare, not read out
