"""`aics sed`: the commands end to end on a handful of clips; bad input gets one line and exit code 2."""

from __future__ import annotations

import json
import shutil

import pytest

from aics.tasks.sed.labels import AUDIO_DIRS, METADATA


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    from aics.tasks.sed.synth import generate

    root = tmp_path_factory.mktemp("sed-cli") / "ds"
    generate(root, n_weak=8, n_unlabel=1, n_test=4, n_eval=4, sample_rate=8000, seed=1, show_progress=False)
    return root


def test_the_commands_chain(aics, dataset, tmp_path):
    aics("sed", "prepare", "--src", dataset, "--out", tmp_path / "prep")
    sets = ["--set", "features.sample_rate=8000", "--set", "features.n_fft=256", "--set", "features.hop=128",
            "--set", "features.n_mels=16"]  # fmt: skip
    aics("sed", "features", "--data", tmp_path / "prep", "--out", tmp_path / "feats", "--workers", 1, *sets)
    model = ["--set", "model.channels=[4]", "--set", "model.freq_pool=[4]", "--set", "model.time_pool=[2]",
             "--set", "model.rnn_hidden=4", "--set", "train.epochs=1",
             "--set", "train.batch_size=4"]  # fmt: skip
    aics("sed", "train", "--data", tmp_path / "feats", "--exp", tmp_path / "exp", *sets, *model)
    out = aics("sed", "predict", "--exp", tmp_path / "exp", "--data", tmp_path / "feats", "--split", "eval",
               "--set", "post.threshold=0.1", "--set", "post.tag_gate=false")  # fmt: skip
    assert "in 4 clips" in out
    pred = tmp_path / "exp/predict_eval_best_threshold0.1_tag_gatefalse"  # the name says what made it
    assert json.loads((pred / "predict.json").read_text())["post"]["threshold"] == 0.1
    out = aics("sed", "score", "--pred", pred, "--data", tmp_path / "feats", "--plots", 1)
    assert "4 clips: event F1" in out and len(list((pred / "score/clips").glob("*.png"))) == 1
    # any event list against any strong metadata file, no model
    out = aics("sed", "score", "--est", pred / "events.tsv", "--ref", dataset / METADATA["eval"], "--out",
               tmp_path / "files")  # fmt: skip
    from_files = json.loads((tmp_path / "files/scores.json").read_text())
    assert from_files["clips"] == 4 and from_files["tags_from"] == "events"
    # the predict dir's tagging score is the clip head's (tags.tsv), not the events' classes
    scored = json.loads((pred / "score/scores.json").read_text())
    assert scored["tags_from"] == "clip head"
    assert scored["event_based"] == from_files["event_based"]
    table = aics("sed", "report", tmp_path / "exp")
    assert "| exp | eval | 4 |" in table
    err = aics.error("sed", "predict", "--exp", tmp_path / "exp", "--data", tmp_path / "feats", "--set",
                     "model.pooling=max")  # fmt: skip
    assert "only post.* settings can change" in err
    # features computed otherwise than the model was trained on, and scoring against other clips
    aics("sed", "features", "--data", tmp_path / "prep", "--out", tmp_path / "feats32", "--workers", 1,
         *sets[:-2], "--set", "features.n_mels=32")  # fmt: skip
    err = aics.error("sed", "predict", "--exp", tmp_path / "exp", "--data", tmp_path / "feats32")
    assert "its features differ from those" in err and "n_mels" in err
    aics("sed", "predict", "--exp", tmp_path / "exp", "--data", tmp_path / "feats", "--split", "test")
    other = tmp_path / "exp/predict_test_best"
    (other / "predict.json").write_text((other / "predict.json").read_text().replace('"test"', '"eval"', 1))
    err = aics.error("sed", "score", "--pred", other, "--data", tmp_path / "feats")
    assert "was predicted on other clips" in err
    err = aics.error("sed", "train", "--data", tmp_path / "prep", "--exp", tmp_path / "exp2")
    assert "not an `aics sed features` output" in err or "features stage has not finished" in err


def test_missing_clips_are_one_line_naming_them(aics, dataset, tmp_path):
    copy = tmp_path / "ds"
    shutil.copytree(dataset, copy)
    victim = sorted((copy / AUDIO_DIRS["eval"]).glob("*.wav"))[0]
    victim.unlink()
    err = aics.error("sed", "prepare", "--src", copy, "--out", tmp_path / "prep")
    assert "1 listed clip is missing" in err and victim.name in err and "--allow-missing" in err
    assert not (tmp_path / "prep").exists()
    aics("sed", "prepare", "--src", copy, "--out", tmp_path / "prep", "--allow-missing")


def test_a_bad_metadata_row_is_one_line_with_file_and_line(aics, dataset, tmp_path):
    copy = tmp_path / "ds"
    shutil.copytree(dataset, copy)
    meta = copy / METADATA["test"]
    lines = meta.read_text().splitlines()
    name, onset, offset, label = lines[1].split("\t")
    lines[1] = "\t".join([name, offset, onset, label])
    meta.write_text("\n".join(lines) + "\n")
    err = aics.error("sed", "prepare", "--src", copy, "--out", tmp_path / "prep")
    assert f"{meta}:2: onset" in err and "is not before offset" in err
