import pytest
import torch

from aics.core.ckpt import load_checkpoint
from aics.core.config import load_config
from aics.core.errors import UserError
from aics.tasks.vae.config import VAEConfig
from aics.tasks.vae.infer import infer, score
from aics.tasks.vae.train import train

TINY = [
    "model.hidden=32",
    "train.epochs=2",
    "train.batch_size=64",
    "train.log_every=2",
    "infer.grid_points=5",
]


def cfg(*extra):
    return load_config(VAEConfig, [], [*TINY, *extra])


def test_interrupted_training_resumes_to_identical_weights(mnist_prepared, tmp_path):
    train(cfg(), mnist_prepared, tmp_path / "straight")
    # 500 images / 64 = 8 steps per epoch: stop in the middle of the first epoch, then resume
    train(cfg("train.max_steps=5"), mnist_prepared, tmp_path / "resumed")
    assert not (tmp_path / "resumed" / ".done").exists()
    assert load_checkpoint(tmp_path / "resumed" / "ckpt" / "last.pt")["step"] == 5
    train(cfg(), mnist_prepared, tmp_path / "resumed")
    a = load_checkpoint(tmp_path / "straight" / "ckpt" / "last.pt")
    b = load_checkpoint(tmp_path / "resumed" / "ckpt" / "last.pt")
    assert a["step"] == b["step"] == 16
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    steps = [r["step"] for r in __import__("aics.core.io", fromlist=["x"]).read_jsonl(
        tmp_path / "resumed" / "log" / "metrics.jsonl") if r["split"] == "train"]  # fmt: skip
    assert steps == sorted(set(steps)), "no duplicated metric rows after the resume"


def test_done_training_is_skipped_and_model_change_refused(mnist_prepared, tmp_path):
    exp = tmp_path / "e"
    train(cfg("train.max_steps=3"), mnist_prepared, exp)
    with pytest.raises(UserError, match=r"different model \(model\.zdim\).*--overwrite"):
        train(cfg("model.zdim=3"), mnist_prepared, exp)
    train(cfg("train.epochs=1"), mnist_prepared, exp)
    before = (exp / "ckpt" / "last.pt").stat().st_mtime_ns
    assert train(cfg("train.epochs=1"), mnist_prepared, exp) == {}
    assert (exp / "ckpt" / "last.pt").stat().st_mtime_ns == before


def test_infer_and_score_write_pictures_and_scores(mnist_prepared, tmp_path):
    exp = tmp_path / "z1"
    train(cfg("model.zdim=1", "train.epochs=1"), mnist_prepared, exp)
    out = infer(exp, mnist_prepared, "best", ("valid",))
    for name in ("latent_map.png", "samples.png", "valid/latent_scatter.png", "valid/reconstructions.png"):
        assert (out / name).stat().st_size > 1000, name
    s = score(exp, mnist_prepared)
    assert s["zdim"] == 1 and s["test"]["images"] == 200
    assert s["test"]["loss"] == pytest.approx(s["test"]["recon_bce"] + s["test"]["kl"])
    assert s["test"]["recon_bce"] < s["test_untrained"]["recon_bce"]
    assert "| test |" in (exp / "RESULTS.md").read_text()
