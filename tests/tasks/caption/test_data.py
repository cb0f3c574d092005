"""The offline Flickr8k and its readers (aics.tasks.caption.synth, data): the layout, captions that differ
the way annotators do, prepare's vocabulary and splits, the image cache, one-line refusals of bad input."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from aics.core.errors import UserError
from aics.core.io import read_json, read_jsonl
from aics.tasks.caption.config import FeatureConfig
from aics.tasks.caption.data import SPLITS, CaptionSet, Vocab, collate, compute_features, prepare, tokenize
from aics.tasks.caption.synth import COLOURS, SHAPES, generate


@pytest.fixture(scope="module")
def flickr(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("flickr") / "synth"
    generate(out, n_train=40, n_dev=8, n_test=8, seed=3, show_progress=False)
    return out


def copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    (dst / ".done").unlink()
    return dst


def test_synth_writes_the_flickr8k_layout_and_karpathys_split(flickr):
    lines = (flickr / "Flickr8k.token.txt").read_text().splitlines()
    assert len(lines) == 56 * 5
    name, text = lines[0].split("\t")
    assert name.endswith(".jpg#0") and text[0].isupper()
    train = (flickr / "Flickr_8k.trainImages.txt").read_text().split()
    assert len(train) == 40 and len(set(train)) == 40
    with Image.open(flickr / "Flicker8k_Dataset" / train[0]) as im:
        assert im.format == "JPEG" and im.size == (192, 144)
    k = json.loads((flickr / "dataset_flickr8k.json").read_text())
    assert Counter(i["split"] for i in k["images"]) == {"train": 40, "val": 8, "test": 8}
    first = k["images"][0]
    assert first["filename"] == train[0] and len(first["sentences"]) == 5
    assert first["sentences"][0]["tokens"] == tokenize(text)


def test_captions_name_what_is_drawn_and_annotators_disagree(flickr):
    lines = (flickr / "Flickr8k.token.txt").read_text().splitlines()
    by_image: dict[str, list[str]] = {}
    for line in lines:
        key, text = line.split("\t")
        by_image.setdefault(key.split("#")[0], []).append(text.lower())
    distinct = [len(set(c)) for c in by_image.values()]
    assert np.mean(distinct) > 4  # five annotators rarely write the same sentence
    words = Counter(w for caps in by_image.values() for c in caps for w in tokenize(c))
    for w in ("two", "left", "background", "there", "big"):
        assert words[w] > 0, w
    assert sum(words[c] for c in COLOURS) > 100 and any(words[s] for s in SHAPES)
    # the same seed draws the same set
    again = generate(flickr.parent / "again", n_train=40, n_dev=8, n_test=8, seed=3, show_progress=False)
    assert again["seed"] == 3
    assert (flickr.parent / "again/Flickr8k.token.txt").read_text() == "\n".join(lines) + "\n"


def test_prepare_builds_the_vocabulary_from_training_captions_and_the_cache(flickr, tmp_path):
    info = prepare(flickr, tmp_path / "prep", min_count=3)
    vocab = read_json(tmp_path / "prep/vocab.json")["words"]
    assert vocab[:4] == ["<pad>", "<start>", "<end>", "<unk>"]
    counts = Counter(w for r in read_jsonl(tmp_path / "prep/train.jsonl") for t in r["tokens"] for w in t)
    assert set(vocab[4:]) == {w for w, n in counts.items() if n >= 3}
    assert {s: v["images"] for s, v in info["splits"].items()} == {"train": 40, "dev": 8, "test": 8}
    assert info["split_source"] == "official"
    # Karpathy's file gives the same split and captions
    k = copy(flickr, tmp_path / "k")
    for f in ("Flickr8k.token.txt", "Flickr_8k.trainImages.txt", "Flickr_8k.devImages.txt",
              "Flickr_8k.testImages.txt"):  # fmt: skip
        (k / f).unlink()
    prepare(k, tmp_path / "prep_k", min_count=3)
    for s in SPLITS:
        a = [(r["name"], r["tokens"]) for r in read_jsonl(tmp_path / f"prep/{s}.jsonl")]
        b = [(r["name"], r["tokens"]) for r in read_jsonl(tmp_path / f"prep_k/{s}.jsonl")]
        assert a == b
    feats = compute_features(
        tmp_path / "prep", tmp_path / "feats", FeatureConfig(image_size=32), show_progress=False
    )
    assert np.load(tmp_path / "feats/test.npy").shape == (8, 32, 32, 3) and len(feats["mean"]) == 3
    ds = CaptionSet(tmp_path / "feats", "train", Vocab(vocab), max_len=4)
    idx, images, caps, lengths, owner = collate([ds[0], ds[1]])
    assert images.shape == (2, 3, 32, 32) and caps.shape[0] == 10 and owner.tolist() == [0] * 5 + [1] * 5
    assert int(lengths.max()) <= 6 and bool((caps[:, 0] == 1).all())  # <start>, at most 4 words, <end>


def test_bad_input_is_one_line_naming_file_and_line(flickr, tmp_path, aics):
    bad = copy(flickr, tmp_path / "bad")
    token = bad / "Flickr8k.token.txt"
    lines = token.read_text().splitlines()
    lines[3] = lines[3].replace("#3", "")
    lines[7] = lines[7].split("\t")[0] + "\t  . "
    token.write_text("\n".join(lines) + "\n")
    line = aics.error("caption", "prepare", "--src", bad, "--out", tmp_path / "o1")
    assert "Flickr8k.token.txt:4: not '<image>#<n><TAB><caption>'" in line
    assert "Flickr8k.token.txt:8: empty caption" in line
    assert not (tmp_path / "o1").exists()

    gone = copy(flickr, tmp_path / "gone")
    test_names = (gone / "Flickr_8k.testImages.txt").read_text().split()
    (gone / "Flicker8k_Dataset" / test_names[2]).unlink()
    line = aics.error("caption", "prepare", "--src", gone, "--out", tmp_path / "o2")
    assert f"Flickr_8k.testImages.txt:3: {test_names[2]} is not in" in line

    broken = copy(flickr, tmp_path / "broken")
    dev_names = (broken / "Flickr_8k.devImages.txt").read_text().split()
    (broken / "Flicker8k_Dataset" / dev_names[0]).write_bytes(b"not a jpeg")
    line = aics.error("caption", "prepare", "--src", broken, "--out", tmp_path / "o3")
    assert f"{dev_names[0]}: cannot be read as an image" in line

    twice = copy(flickr, tmp_path / "twice")
    token = twice / "Flickr8k.token.txt"
    rows = token.read_text().splitlines()
    token.write_text("\n".join([*rows, rows[2].split("\t")[0] + "\tanother caption"]) + "\n")
    line = aics.error("caption", "prepare", "--src", twice, "--out", tmp_path / "o5")
    assert f"Flickr8k.token.txt:{len(rows) + 1}: {rows[2].split(chr(9))[0]} repeats line 3" in line

    cut = copy(flickr, tmp_path / "cut")
    jpeg = cut / "Flicker8k_Dataset" / test_names[0]
    jpeg.write_bytes(jpeg.read_bytes()[: len(jpeg.read_bytes()) // 2])  # a truncated download
    line = aics.error("caption", "prepare", "--src", cut, "--out", tmp_path / "o6")
    assert f"{test_names[0]}: cannot be read as an image" in line

    karpathy = copy(flickr, tmp_path / "karpathy")
    for f in ("Flickr8k.token.txt", "Flickr_8k.trainImages.txt"):
        (karpathy / f).unlink()
    (karpathy / "dataset_flickr8k.json").write_text('{"images": [{"filename": "a.jpg", "sentences": ["x"]}]}')
    line = aics.error("caption", "prepare", "--src", karpathy, "--out", tmp_path / "o7")
    assert "dataset_flickr8k.json: images[0]: not an image record" in line

    with pytest.raises(UserError, match="Flickr8k.token.txt"):
        empty = tmp_path / "empty"
        (empty / "Flicker8k_Dataset").mkdir(parents=True)
        prepare(empty, tmp_path / "o4")
