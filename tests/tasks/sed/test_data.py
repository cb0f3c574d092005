"""DCASE2018 task 4 metadata validation (stage 0), features (stage 1) and augmented batches."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
import torch

from aics.core.errors import UserError
from aics.tasks.sed.config import AugmentConfig, FeatureConfig
from aics.tasks.sed.data import Collate, SedSet, clip_list_hash, compute_features, prepare, read_metadata
from aics.tasks.sed.labels import AUDIO_DIRS, CLASSES, METADATA

SR = 8000


def _wav(path, seconds=2.0, freq=440.0):
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * SR)) / SR
    sf.write(path, 0.3 * np.sin(2 * np.pi * freq * t), SR, subtype="PCM_16")


def make_dataset(root, weak=None, test=None):
    """A small dataset in the real layout: a wav for every listed clip, the metadata rows as given."""
    weak = weak if weak is not None else ["a.wav\tDog,Speech", "b.wav\tCat"]
    test = (
        test
        if test is not None
        else ["t1.wav\t0.5\t1.2\tDog", "t1.wav\t0.0\t2.0\tFrying", "t2.wav\t0.1\t0.9\tCat"]
    )
    files = {"weak": ("filename\tevent_labels", weak), "test": ("filename\tonset\toffset\tevent_label", test)}
    for split, (header, rows) in files.items():
        meta = root / METADATA[split]
        meta.parent.mkdir(parents=True, exist_ok=True)
        meta.write_text("\n".join([header, *rows]) + "\n")
        for row in rows:
            name = row.split("\t")[0]
            if name.endswith(".wav"):
                _wav(root / AUDIO_DIRS[split] / name, freq=300 + 100 * len(name))
    return root


def test_prepare_writes_manifests_and_the_clip_list_hash(tmp_path):
    root = make_dataset(tmp_path / "ds")
    info = prepare(root, tmp_path / "prep")
    assert info["splits"]["weak"]["clips"] == 2 and info["splits"]["test"]["events"] == 3
    rows = [json.loads(line) for line in (tmp_path / "prep" / "test.jsonl").read_text().splitlines()]
    t1 = next(r for r in rows if r["filename"] == "t1.wav")
    assert t1["events"] == [[0.5, 1.2, "Dog"], [0.0, 2.0, "Frying"]] and t1["labels"] == ["Dog", "Frying"]
    assert info["splits"]["test"]["sha256"] == clip_list_hash(["t2.wav", "t1.wav"])
    assert clip_list_hash(["t1.wav"]) != clip_list_hash(["t1.wav", "t2.wav"])
    weak = [json.loads(line) for line in (tmp_path / "prep" / "weak.jsonl").read_text().splitlines()]
    assert weak[0]["labels"] == ["Dog", "Speech"]


@pytest.mark.parametrize(
    ("row", "says"),
    [
        ("t1.wav\t1.5\t1.2\tDog", "onset 1.5 s is not before offset 1.2 s"),
        ("t1.wav\t1.0\t1.0\tDog", "is not before"),
        ("t1.wav\t0.5\t1.2\tHorse", "unknown class 'Horse'"),
        ("t1.wav\tsoon\t1.2\tDog", "onset 'soon' is not a number"),
        ("t1.wav\t0.5\t1.2", "expected 4 tab-separated fields"),
    ],
)
def test_a_bad_strong_row_is_named_by_file_and_line(tmp_path, row, says):
    root = make_dataset(tmp_path / "ds", test=["t2.wav\t0.1\t0.9\tCat", row])
    with pytest.raises(UserError) as e:
        prepare(root, tmp_path / "prep")
    assert f"{root / METADATA['test']}:3: " in str(e.value) and says in str(e.value)
    assert not (tmp_path / "prep").exists()  # nothing written before the data is valid


def test_an_unknown_weak_label_and_a_duplicate_are_reported_together(tmp_path):
    root = make_dataset(tmp_path / "ds", weak=["a.wav\tDog,Horse", "b.wav\tCat", "b.wav\tCat"])
    with pytest.raises(UserError) as e:
        prepare(root, tmp_path / "prep")
    msg = str(e.value)
    assert f"{METADATA['weak']}:2: unknown class 'Horse'" in msg and ":4: b.wav is listed twice" in msg
    assert "\n" not in msg


def test_missing_clips_are_listed_together_and_can_be_left_out(tmp_path):
    root = make_dataset(tmp_path / "ds")
    (root / AUDIO_DIRS["weak"] / "a.wav").unlink()
    (root / AUDIO_DIRS["test"] / "t2.wav").unlink()
    with pytest.raises(UserError) as e:
        prepare(root, tmp_path / "prep")
    assert "2 listed clips are missing" in str(e.value) and "--allow-missing" in str(e.value)
    assert "audio/train/weak/a.wav" in str(e.value) and "audio/test/t2.wav" in str(e.value)
    info = prepare(root, tmp_path / "prep", allow_missing=True)
    assert info["missing"] == 2 and info["splits"]["test"]["clips"] == 1
    assert (tmp_path / "prep" / "missing.txt").read_text().split() == [
        "audio/train/weak/a.wav",
        "audio/test/t2.wav",
    ]


def test_an_unreadable_clip_is_named(tmp_path):
    root = make_dataset(tmp_path / "ds")
    (root / AUDIO_DIRS["test"] / "t2.wav").write_bytes(b"not a wav")
    with pytest.raises(UserError, match=r"t2.wav: not a readable audio file"):
        prepare(root, tmp_path / "prep")


def test_a_wrong_header_and_a_missing_required_file_are_refused(tmp_path):
    root = make_dataset(tmp_path / "ds")
    meta = root / METADATA["weak"]
    meta.write_text(meta.read_text().replace("event_labels", "labels", 1))
    with pytest.raises(UserError, match=r"weak.csv:1: expected the tab-separated header"):
        prepare(root, tmp_path / "prep")
    meta.unlink()
    with pytest.raises(UserError, match=r"has no metadata/train/weak.csv"):
        prepare(root, tmp_path / "prep")


def test_unreadable_text_and_an_empty_split_are_one_line(tmp_path):
    root = make_dataset(tmp_path / "ds")
    (root / METADATA["test"]).write_bytes(b"filename\tonset\toffset\tevent_label\n\xff\xfe\n")
    with pytest.raises(UserError, match=r"test.csv: not UTF-8 text"):
        prepare(root, tmp_path / "prep")
    (root / METADATA["test"]).write_text("filename\tonset\toffset\tevent_label\n")
    with pytest.raises(UserError, match=r"the test split is empty \(it lists no clip\)"):
        prepare(root, tmp_path / "prep")
    assert not (tmp_path / "prep").exists()


def test_a_features_dir_of_another_task_is_refused(tmp_path):
    from aics.core.stage import mark_done
    from aics.tasks.sed.data import check_features

    (tmp_path / "feats").mkdir()
    (tmp_path / "feats/features.json").write_text('{"features": {}, "dim": 80, "subsets": {}}')
    mark_done(tmp_path / "feats")
    with pytest.raises(UserError, match="is not an `aics sed features` output"):
        check_features(tmp_path / "feats")


def test_a_strong_row_without_events_is_a_clip_without_events(tmp_path):
    path = tmp_path / "test.csv"
    path.write_text("filename\tonset\toffset\tevent_label\nx.wav\t\t\t\ny.wav\t1\t2\tDog\n")
    clips, problems = read_metadata(path, "strong")
    assert (
        problems == [] and clips["x.wav"]["events"] == [] and clips["y.wav"]["events"] == [[1.0, 2.0, "Dog"]]
    )


def test_features_have_fixed_frames_and_training_statistics(tmp_path):
    root = make_dataset(tmp_path / "ds")
    prepare(root, tmp_path / "prep")
    fc = FeatureConfig(sample_rate=SR, clip_seconds=3.0, n_fft=256, hop=80, n_mels=16)
    info = compute_features(tmp_path / "prep", tmp_path / "feats", fc, workers=1, show_progress=False)
    assert info["frames"] == 3 * SR // 80 + 1 and info["frame_seconds"] == 0.01
    feats = np.load(tmp_path / "feats" / "weak.npy")
    assert feats.shape == (2, info["frames"], 16) and feats.dtype == np.float16
    # the padded last second is silence: far below the tone
    assert feats[0, -10:].mean() < feats[0, :100].mean() - 30
    ds = SedSet(tmp_path / "feats", "weak")
    _, x, y = ds[0]
    assert x.shape == (info["frames"], 16) and y[CLASSES.index("Dog")] == 1 and y.sum() == 2
    all_x = torch.stack([ds[i][1] for i in range(len(ds))]).reshape(-1, 16)
    assert torch.allclose(all_x.mean(0), torch.zeros(16), atol=1e-2)
    assert SedSet(tmp_path / "feats", "test").events()["t1.wav"] == [(0.5, 1.2, "Dog"), (0.0, 2.0, "Frying")]
    with pytest.raises(UserError, match="has no split 'eval'"):
        SedSet(tmp_path / "feats", "eval")


def _items(n=6, T=50, D=8):
    g = torch.Generator().manual_seed(0)
    return [(i, torch.randn(T, D, generator=g), torch.eye(len(CLASSES))[i % len(CLASSES)]) for i in range(n)]


def test_augmentation_is_seeded_per_clip_and_epoch():
    ac = AugmentConfig(specaugment=True, time_shift=True, max_shift=0.2, mixup=True, mixup_prob=1.0)
    a = Collate(ac, seed=1, frame_seconds=0.01)
    items = _items()
    _, x1, y1 = a(items)
    _, x2, y2 = a(items)
    assert torch.equal(x1, x2) and torch.equal(y1, y2)
    a.epoch = 1
    _, x3, _ = a(items)
    assert not torch.equal(x1, x3)
    # mixup keeps each clip's own tag the larger share, and the tags stay probabilities
    assert (y1.max(1).values >= 0.5).all() and (y1 >= 0).all() and (y1 <= 1).all()
    _, xp, yp = Collate(None)(items)
    assert torch.equal(xp, torch.stack([f for _, f, _ in items])) and torch.equal(
        yp[:, 0], torch.tensor([1.0, 0, 0, 0, 0, 0])
    )


def test_specaugment_masks_and_time_shift_rolls():
    items = _items(n=1)
    ac = AugmentConfig(
        specaugment=True, time_shift=False, freq_masks=1, freq_width=8, time_masks=1, time_width=10
    )
    _, x, _ = Collate(ac, seed=3)(items)
    g = np.random.default_rng((3, 0, 0))  # the clip's own stream: the same draws, in the same order
    w = int(g.integers(0, 9))
    f0 = int(g.integers(0, 8 - w + 1))
    wt = int(g.integers(0, 11))
    t0 = int(g.integers(0, 50 - wt + 1))
    assert w > 0 and wt > 0  # this seed masks something
    expected = items[0][1].clone()
    expected[:, f0 : f0 + w] = 0
    expected[t0 : t0 + wt] = 0
    assert torch.equal(x[0], expected)
    shift = Collate(
        AugmentConfig(specaugment=False, time_shift=True, max_shift=0.2), seed=3, frame_seconds=0.01
    )
    _, xs, _ = shift(items)
    k = int(np.random.default_rng((3, 0, 0)).integers(-20, 21))
    assert k != 0 and torch.equal(xs[0], torch.roll(items[0][1], k, 0))
