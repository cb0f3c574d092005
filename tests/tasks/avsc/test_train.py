"""Training, prediction, late fusion and scoring (aics.tasks.avsc.train, infer, score) on a small synthetic
set: every system learns, an interrupted run resumes to the same weights, modality dropout repeats, the
commands write what they promise."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from aics.core.ckpt import load_checkpoint
from aics.core.config import load_config
from aics.core.errors import UserError
from aics.core.io import read_json
from aics.tasks.avsc.config import AvscConfig
from aics.tasks.avsc.data import prepare
from aics.tasks.avsc.model import drop_modality
from aics.tasks.avsc.synth import generate
from aics.tasks.avsc.train import train

TINY = ["model.hidden=32", "model.layers=1", "model.dropout=0.1", "train.epochs=15", "train.batch_size=16",
        "train.lr=0.01", "train.warmup_steps=3", "train.log_every=5", "train.device=cpu"]  # fmt: skip


def cfg(*extra: str) -> AvscConfig:
    return load_config(AvscConfig, [], [*TINY, *extra])


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("avsc-train")
    generate(base / "synth", per_class=(24, 6, 2), dims=(24, 24), steps=6, seed=1, show_progress=False)
    prepare(base / "synth", base / "prep", valid_frac=0.2, show_progress=False)
    return base / "prep"


@pytest.fixture(scope="module")
def exps(prepared, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("avsc-exps")
    for s in ("audio", "video", "early", "intermediate"):
        train(cfg(f"model.system={s}", "train.modality_dropout=0.2"), prepared, root / s)
    return root


def test_every_system_learns_above_chance(exps):
    for s in ("audio", "video", "early", "intermediate"):
        ck = load_checkpoint(exps / s / "ckpt/best.pt")
        valid = ck["metrics"]["valid"]
        assert valid["accuracy"] > 0.3 and valid["log_loss"] < 2.2, (s, valid)  # chance: 0.1, log 10 = 2.30
        assert ck["extra"]["net"]["system"] == s


def test_an_interrupted_run_resumes_to_the_same_weights(prepared, exps, tmp_path):
    extra = ("model.system=early", "train.modality_dropout=0.2")
    exp = tmp_path / "resumed"
    train(cfg(*extra, "train.max_steps=7"), prepared, exp)
    with pytest.raises(UserError, match=r"model\.hidden"):
        train(cfg(*extra, "model.hidden=16"), prepared, exp)
    train(cfg(*extra), prepared, exp)
    a, b = load_checkpoint(exps / "early/ckpt/last.pt"), load_checkpoint(exp / "ckpt/last.pt")
    assert a["step"] == b["step"]
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k


def test_modality_dropout_zeroes_one_modality_per_hit_clip():
    audio, video = torch.ones(2000, 3, 4), torch.ones(2000, 3, 5)
    a, v = drop_modality(audio, video, 0.3, torch.Generator().manual_seed(0))
    dropped_a = (a.abs().sum((1, 2)) == 0).float().mean()
    dropped_v = (v.abs().sum((1, 2)) == 0).float().mean()
    assert not bool(((a.abs().sum((1, 2)) == 0) & (v.abs().sum((1, 2)) == 0)).any())  # never both
    assert abs(float(dropped_a) - 0.15) < 0.03 and abs(float(dropped_v) - 0.15) < 0.03
    b, _ = drop_modality(audio, video, 0.3, torch.Generator().manual_seed(0))
    assert torch.equal(a, b)


def test_predict_fuse_score_and_report_through_the_cli(prepared, exps, aics):
    for s in ("audio", "video", "intermediate"):
        for split in ("valid", "evaluate"):
            aics("avsc", "predict", "--exp", exps / s, "--data", prepared, "--split", split)
    rows = (exps / "audio/predict_evaluate/predictions.csv").read_text().splitlines()
    assert rows[0].split("\t")[:3] == ["aid", "scene_pred", "airport"] and len(rows) == 1 + 60
    out = aics("avsc", "fuse", "--audio", exps / "audio", "--video", exps / "video", "--data", prepared,
               "--out", exps)  # fmt: skip
    assert "audio weight per scene" in out and (exps / "late_weighted/predict_valid/weights.json").is_file()
    for s in ("audio", "video", "intermediate", "late_mean", "late_weighted"):
        assert "log loss" in aics("avsc", "score", "--pred", exps / s / "predict_evaluate")
    assert (exps / "intermediate/predict_evaluate/score/confusion.png").is_file()
    table = aics("avsc", "report", *(exps / s for s in ("audio", "video", "intermediate", "late_mean")))
    assert (
        "| intermediate |" in table
        and "### Conflicts: late_mean" in table
        and "Audio and video disagree" in table
    )
    conflicts = read_json(exps / "late_mean/predict_evaluate/score/conflicts.json")
    assert conflicts["overall"]["clips"] == 60
    swapped = ("--audio", exps / "video", "--video", exps / "audio", "--data", prepared, "--out", exps)
    line = aics.error("avsc", "fuse", *swapped)
    assert "is the video system; late fusion takes the audio system there" in line


def test_predictions_of_other_clips_are_refused_and_same_system_runs_stay_apart(
    prepared, exps, tmp_path, aics
):
    other = tmp_path / "other"
    generate(tmp_path / "synth2", per_class=(24, 6, 2), dims=(24, 24), steps=6, seed=9, show_progress=False)
    prepare(tmp_path / "synth2", other, valid_frac=0.2, show_progress=False)
    line = aics.error("avsc", "predict", "--exp", exps / "audio", "--data", other, "--split", "valid")
    assert "is not the prepared data" in line and "was trained on" in line
    for s in ("audio", "video"):
        aics("avsc", "predict", "--exp", exps / s, "--data", prepared, "--split", "valid")
    line = aics.error("avsc", "fuse", "--audio", exps / "audio", "--video", exps / "video", "--data", other,
                      "--out", tmp_path / "fused", "--splits", "valid")  # fmt: skip
    assert "predictions are of other clips" in line
    again = tmp_path / "runs" / "audio_again"
    train(cfg("model.system=audio", "train.epochs=2"), prepared, again)
    aics("avsc", "predict", "--exp", again, "--data", prepared)
    aics("avsc", "score", "--pred", again / "predict_evaluate")
    aics("avsc", "predict", "--exp", exps / "audio", "--data", prepared)
    aics("avsc", "score", "--pred", exps / "audio" / "predict_evaluate", "--overwrite")
    table = aics("avsc", "report", exps / "audio", again)
    assert "| audio | audio |" in table and "| audio_again | audio |" in table
