"""Training on weak tags: the loss falls, valid scores are logged, best.pt is chosen, resume is exact."""

from __future__ import annotations

import json

import pytest
import torch

from aics.core.config import load_config
from aics.core.errors import UserError
from aics.tasks.sed.config import SedConfig
from aics.tasks.sed.data import compute_features, prepare
from aics.tasks.sed.synth import generate
from aics.tasks.sed.train import train

TINY = dict(
    features={"sample_rate": 8000, "n_fft": 512, "hop": 256, "n_mels": 32},
    model={"channels": (8, 8), "freq_pool": (4, 4), "time_pool": (2, 1), "rnn_hidden": 8, "dropout": 0.0},
    augment={"specaugment": True, "time_shift": True, "mixup": True, "mixup_prob": 0.5},
    train={"epochs": 2, "batch_size": 8, "lr": 0.01, "warmup_steps": 2, "log_every": 1, "keep_epochs": 0},
)


@pytest.fixture(scope="module")
def feats(tmp_path_factory):
    root = tmp_path_factory.mktemp("sed")
    generate(root / "ds", n_weak=24, n_unlabel=2, n_test=8, n_eval=8, sample_rate=8000, seed=0)
    prepare(root / "ds", root / "prep")
    cfg = config()
    compute_features(root / "prep", root / "feats", cfg.features, workers=1, show_progress=False)
    return root / "feats"


def config(**train) -> SedConfig:
    sets = [f"{section}.{k}={list(v) if isinstance(v, tuple) else v}" for section, d in TINY.items()
            for k, v in d.items()]  # fmt: skip
    sets += [f"train.{k}={v}" for k, v in train.items()]
    return load_config(SedConfig, (), sets)


def test_training_logs_valid_scores_and_keeps_the_best(feats, tmp_path):
    valid = train(config(), feats, tmp_path / "exp")
    assert {"loss", "event_f1", "segment_f1", "tag_f1", "event_er"} <= set(valid)
    rows = [json.loads(line) for line in (tmp_path / "exp/log/metrics.jsonl").read_text().splitlines()]
    assert sum(r["split"] == "valid" for r in rows) == 2 and sum(r["split"] == "train" for r in rows) == 6
    for f in ("ckpt/best.pt", "ckpt/last.pt", "ckpt/epoch-001.pt", "config.yaml", ".done"):
        assert (tmp_path / "exp" / f).exists()
    best = torch.load(tmp_path / "exp/ckpt/best.pt", weights_only=True)
    assert best["task"] == "sed" and best["metrics"]["select"] == "event_f1"


def test_an_interrupted_run_resumes_exactly(feats, tmp_path):
    train(config(epochs=2), feats, tmp_path / "full")
    train(config(epochs=2, max_steps=5), feats, tmp_path / "cut")  # stops mid-epoch 2 (3 steps per epoch)
    train(config(epochs=2), feats, tmp_path / "cut")
    a = torch.load(tmp_path / "full/ckpt/last.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "cut/ckpt/last.pt", weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_settings_that_cannot_work_are_one_line(feats, tmp_path):
    with pytest.raises(UserError, match="one entry per conv block"):
        train(load_config(SedConfig, (), ["model.time_pool=[1]"]), feats, tmp_path / "a")
    with pytest.raises(UserError, match="has no strong labels"):
        train(config(valid_set="weak"), feats, tmp_path / "b")
    with pytest.raises(UserError, match="no split 'dev'"):
        train(config(valid_set="dev"), feats, tmp_path / "c")
    with pytest.raises(UserError, match="mixup_alpha must be above 0"):
        cfg = config()
        cfg.augment.mixup_alpha = 0.0
        train(cfg, feats, tmp_path / "d")
    assert not any((tmp_path / d).exists() for d in "abcd")
