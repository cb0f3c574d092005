"""The offline TAU Urban Audio-Visual Scenes 2021 and its readers (aics.tasks.avsc.synth, data): the layout,
npy and HDF5 embeddings read alike, the valid split by location, and one-line refusals of bad input."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from aics.core.io import read_json, read_jsonl
from aics.tasks.avsc.data import SceneSet, prepare
from aics.tasks.avsc.labels import SCENES
from aics.tasks.avsc.synth import generate


@pytest.fixture(scope="module")
def sets(tmp_path_factory) -> dict[str, Path]:
    pytest.importorskip("h5py")
    base = tmp_path_factory.mktemp("avsc")
    out = {}
    for fmt in ("npy", "h5"):
        generate(
            base / fmt, per_class=(8, 3, 2), dims=(12, 10), steps=5, fmt=fmt, seed=4, show_progress=False
        )
        out[fmt] = base / fmt
    return out


def copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    (dst / ".done").unlink()
    return dst


def test_synth_writes_the_dcase_layout_and_its_design(sets):
    root = sets["npy"]
    train = (root / "evaluation_setup/fold1_train.csv").read_text().splitlines()
    assert train[0] == "filename_audio\tfilename_video\tscene_label" and len(train) == 1 + 80
    audio, video, scene = train[1].split("\t")  # as the real folds; meta.csv has the identifiers
    assert audio.startswith("audio/") and video == audio.replace("audio/", "video/").replace(".wav", ".mp4")
    meta = (root / "meta.csv").read_text().splitlines()
    assert meta[0] == "filename_audio\tfilename_video\tscene_label\tidentifier" and len(meta) == 1 + 130
    ident = next(r.split("\t")[3] for r in meta if r.startswith(audio + "\t"))
    assert scene in SCENES and Path(audio).stem.startswith(f"{scene}-{ident}-")
    assert (root / "evaluation_setup/fold1_test.csv").read_text().splitlines()[
        0
    ] == "filename_audio\tfilename_video"
    design = read_json(root / "design.json")
    assert design["audio_confusable"] == [
        ["airport", "shopping_mall"],
        ["street_pedestrian", "public_square"],
    ]
    stem = Path(audio).stem
    assert np.load(root / f"embeddings/audio/{stem}.npy").shape == (5, 12)
    assert np.load(root / f"embeddings/video/{stem}.npy").shape == (5, 10)
    corrupted = (root / "clip_design.csv").read_text().splitlines()[1:]
    assert len(corrupted) == design["corrupted_clips"] and all(r.split("\t")[3] in ("audio", "video")
                                                               for r in corrupted)  # fmt: skip


def test_npy_and_hdf5_embeddings_prepare_to_the_same_arrays(sets, tmp_path):
    a = prepare(sets["npy"], tmp_path / "a", show_progress=False)
    prepare(sets["h5"], tmp_path / "b", show_progress=False)
    for split in ("train", "valid", "evaluate", "test"):
        for m in ("audio", "video"):
            assert np.array_equal(
                np.load(tmp_path / f"a/{split}.{m}.npy"), np.load(tmp_path / f"b/{split}.{m}.npy")
            )
    train_locs = {r["identifier"] for r in read_jsonl(tmp_path / "a/train.jsonl")}
    valid_locs = {r["identifier"] for r in read_jsonl(tmp_path / "a/valid.jsonl")}
    assert valid_locs and not train_locs & valid_locs
    assert a["audio"]["dim"] == 12 and a["video"]["steps"] == 5
    no_meta = copy(sets["npy"], tmp_path / "no_meta")  # locations read off the TAU file names instead
    (no_meta / "meta.csv").unlink()
    prepare(no_meta, tmp_path / "c", show_progress=False)
    assert read_jsonl(tmp_path / "c/valid.jsonl") == read_jsonl(tmp_path / "a/valid.jsonl")
    ds = SceneSet(tmp_path / "a", "train")
    assert abs(float(ds.x["audio"].mean())) < 0.05 and ds.labels.min() >= 0
    assert (SceneSet(tmp_path / "a", "test").labels == -1).all()


def test_bad_input_is_one_line_naming_file_and_row(sets, tmp_path, aics):
    bad = copy(sets["npy"], tmp_path / "bad")
    fold = bad / "evaluation_setup/fold1_evaluate.csv"
    lines = fold.read_text().splitlines()
    lines[2] = "\t".join([*lines[2].split("\t")[:2], "beach"])
    lines[4] = "\t".join(lines[4].split("\t")[:2])
    fold.write_text("\n".join(lines) + "\n")
    line = aics.error("avsc", "prepare", "--src", bad, "--out", tmp_path / "o1")
    assert "fold1_evaluate.csv:3: unknown scene 'beach'" in line and "fold1_evaluate.csv:5: 2 fields" in line
    assert not (tmp_path / "o1").exists()

    gone = copy(sets["npy"], tmp_path / "gone")
    row = (gone / "evaluation_setup/fold1_train.csv").read_text().splitlines()[6]
    (gone / "embeddings/video" / f"{Path(row.split(chr(9))[0]).stem}.npy").unlink()
    line = aics.error("avsc", "prepare", "--src", gone, "--out", tmp_path / "o2")
    assert "fold1_train.csv:7: no video embedding for" in line

    wide = copy(sets["npy"], tmp_path / "wide")
    stem = Path((wide / "evaluation_setup/fold1_train.csv").read_text().splitlines()[3].split("\t")[0]).stem
    np.save(wide / f"embeddings/audio/{stem}.npy", np.zeros((5, 13), np.float32))
    assert "dimension 13, most audio embeddings have 12" in aics.error(
        "avsc", "prepare", "--src", wide, "--out", tmp_path / "o3")  # fmt: skip

    long = copy(sets["npy"], tmp_path / "long")
    np.save(long / f"embeddings/audio/{stem}.npy", np.zeros((7, 12), np.float32))
    line = aics.error("avsc", "prepare", "--src", long, "--out", tmp_path / "o4")
    assert "7 time steps, most audio embeddings have 5; pass --steps N" in line
    assert "prepared" in aics("avsc", "prepare", "--src", long, "--out", tmp_path / "o5", "--steps", "5")


def test_the_odd_clip_is_named_even_when_it_comes_first_and_nothing_is_written(sets, tmp_path, aics):
    first = copy(sets["npy"], tmp_path / "first")
    rows = (first / "evaluation_setup/fold1_train.csv").read_text().splitlines()
    stem = Path(rows[1].split("\t")[0]).stem  # the very first clip read
    np.save(first / f"embeddings/video/{stem}.npy", np.zeros((5, 11), np.float32))
    late = Path(
        (first / "evaluation_setup/fold1_evaluate.csv").read_text().splitlines()[2].split("\t")[0]
    ).stem
    np.save(first / f"embeddings/audio/{late}.npy", np.full((5, 12), np.nan, np.float32))
    line = aics.error("avsc", "prepare", "--src", first, "--out", tmp_path / "o")
    assert "fold1_evaluate.csv:3:" in line and "NaN" in line  # unreadable values first, then shapes
    np.save(first / f"embeddings/audio/{late}.npy", np.zeros((5, 12), np.float32))
    line = aics.error("avsc", "prepare", "--src", first, "--out", tmp_path / "o")
    assert "fold1_train.csv:2:" in line and "dimension 11, most video embeddings have 10" in line
    assert not (tmp_path / "o").exists()
