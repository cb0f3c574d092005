"""Training, decoding and scoring (aics.tasks.caption.train, infer, score) on a few synthetic images: the
loss falls, the logged teacher-forcing share follows the schedule, an interrupted run resumes to the same
weights, and the commands write what they promise."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from aics.core.ckpt import load_checkpoint
from aics.core.config import load_config
from aics.core.errors import UserError
from aics.core.io import read_jsonl
from aics.tasks.caption.config import CaptionConfig, FeatureConfig
from aics.tasks.caption.data import compute_features, prepare
from aics.tasks.caption.model import teacher_forcing_probability
from aics.tasks.caption.synth import generate
from aics.tasks.caption.train import train

TINY = ["model.encoder_channels=[8,16]", "model.grid=4", "model.embed_dim=16", "model.attention_dim=16",
        "model.decoder_dim=32", "model.dropout=0", "train.epochs=4", "train.batch_size=6", "train.lr=0.005",
        "train.warmup_steps=2", "train.log_every=1", "train.device=cpu", "decode.max_len=12"]  # fmt: skip


def cfg(*extra: str) -> CaptionConfig:
    return load_config(CaptionConfig, [], [*TINY, *extra])


@pytest.fixture(scope="module")
def feats(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("caption")
    generate(base / "synth", n_train=36, n_dev=6, n_test=6, width=64, height=48, seed=1, show_progress=False)
    prepare(base / "synth", base / "prep", min_count=1)
    compute_features(base / "prep", base / "feats", FeatureConfig(image_size=32), show_progress=False)
    return base / "feats"


@pytest.fixture(scope="module")
def trained(feats, tmp_path_factory) -> Path:
    exp = tmp_path_factory.mktemp("caption-exp") / "linear"
    train(cfg("sampling.schedule=linear", "sampling.linear_decay=0.04"), feats, exp)
    return exp


def test_training_writes_checkpoints_and_the_loss_falls(trained):
    for name in ("config.yaml", ".done", "ckpt/last.pt", "ckpt/best.pt", "log/metrics.jsonl"):
        assert (trained / name).exists(), name
    rows = read_jsonl(trained / "log/metrics.jsonl")
    steps = [r for r in rows if r["split"] == "train"]
    assert {"ce", "attention_reg", "tf_prob", "teacher_share", "lr"} <= set(steps[0])
    valid = [r for r in rows if r["split"] == "valid"]
    assert len(valid) == 4 and valid[-1]["loss"] < valid[0]["loss"]
    assert {"bleu4", "cider"} <= set(valid[-1])
    ck = load_checkpoint(trained / "ckpt/last.pt")
    assert ck["extra"]["vocab"][:3] == ["<pad>", "<start>", "<end>"] and ck["step"] == 24


def test_logged_teacher_share_follows_the_linear_schedule(trained):
    rows = [r for r in read_jsonl(trained / "log/metrics.jsonl") if r["split"] == "train"]
    for r in rows:
        # logged after step r["step"]: its coins were drawn with p at step - 1
        assert r["tf_prob"] == pytest.approx(
            teacher_forcing_probability("linear", r["step"] - 1, linear_decay=0.04)
        )
    early = [r["teacher_share"] for r in rows if r["tf_prob"] > 0.85]
    late = [r["teacher_share"] for r in rows if r["tf_prob"] < 0.3]
    assert early and late and sum(early) / len(early) > 0.8 and sum(late) / len(late) < 0.35


def test_an_interrupted_run_resumes_to_the_same_weights(feats, trained, tmp_path):
    exp = tmp_path / "resumed"
    extra = ("sampling.schedule=linear", "sampling.linear_decay=0.04")
    train(cfg(*extra, "train.max_steps=9"), feats, exp)
    with pytest.raises(UserError, match=r"model\.decoder_dim"):
        train(cfg(*extra, "model.decoder_dim=8"), feats, exp)
    train(cfg(*extra), feats, exp)
    a, b = load_checkpoint(trained / "ckpt/last.pt"), load_checkpoint(exp / "ckpt/last.pt")
    assert a["step"] == b["step"]
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), f"{k} differs after the resume"


def test_decode_score_and_report_through_the_cli(feats, trained, tmp_path, aics):
    out = aics(
        "caption", "decode", "--exp", trained, "--data", feats, "--beam", "2", "--attention-images", "2"
    )
    assert "6 test images captioned" in out
    d = trained / "decode_test_beam2"
    caps = read_jsonl(d / "captions.jsonl")
    assert len(caps) == 6 and all(c["caption"] == " ".join(c["words"]) for c in caps)
    assert len(list((d / "attention").glob("*.png"))) == 2
    aics("caption", "decode", "--exp", trained, "--data", feats, "--beam", "1")
    out = aics("caption", "score", "--decode", d, "--examples", "2")
    assert "CIDEr-D" in out and "SPICE, SPIDEr: unavailable" in out and "CIDEr-D worst: " in out
    s = json.loads((d / "score/scores.json").read_text())
    assert s["images"] == 6 and s["bleu4_difference"] < 1e-6
    assert (
        set(s["examples"]["CIDEr-D"]) == {"best", "worst"}
        and (d / "score/examples/CIDEr-D_best.png").is_file()
    )
    assert "reference:" in (d / "score/examples.md").read_text()
    aics("caption", "score", "--decode", trained / "decode_test_greedy")
    table = aics("caption", "report", trained)
    assert "| linear | greedy |" in table and "| linear | beam 2 |" in table


def test_bad_settings_are_refused_in_one_line(feats, tmp_path, aics):
    line = aics.error("caption", "train", "--data", feats, "--exp", tmp_path / "e", "--set",
                      "sampling.schedule=exponential", "--set", "sampling.exp_base=1.5")  # fmt: skip
    assert "sampling.exp_base=1.5 must be between 0 and 1" in line
    line = aics.error("caption", "train", "--data", tmp_path / "nothing", "--exp", tmp_path / "e")
    assert "aics caption features" in line
    line = aics.error("caption", "decode", "--exp", tmp_path, "--data", feats)
    assert "checkpoint not found" in line


def test_a_frozen_pretrained_resnet_encoder_keeps_its_weights(feats, tmp_path, aics):
    from aics.tasks.caption.backbone import IMAGENET_MEAN, ResNetTrunk

    torch.manual_seed(2)
    weights = tmp_path / "resnet18.pth"
    source = ResNetTrunk("resnet18").state_dict()
    torch.save(source, weights)
    exp = tmp_path / "r18"
    train(cfg("model.encoder=resnet18", f"model.encoder_weights={weights}", "model.freeze_encoder=true",
              "train.epochs=1"), feats, exp)  # fmt: skip
    ck = load_checkpoint(exp / "ckpt/last.pt")
    for k, v in source.items():  # weights and BatchNorm statistics, as loaded
        assert torch.equal(ck["model"][f"encoder.trunk.{k}"], v), k
    assert ck["extra"]["mean"] == list(IMAGENET_MEAN) and ck["extra"]["captioner"]["encoder"] == "resnet18"
    assert "6 test images captioned" in aics("caption", "decode", "--exp", exp, "--data", feats)
    line = aics.error("caption", "train", "--data", feats, "--exp", tmp_path / "e", "--set",
                      f"model.encoder_weights={weights}")  # fmt: skip
    assert "model.encoder_weights is for a torchvision ResNet" in line
