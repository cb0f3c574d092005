import os
import signal
import subprocess
import sys

import pytest
import torch

from aics.core.ckpt import load_checkpoint
from aics.core.config import load_config
from aics.core.errors import UserError
from aics.core.io import read_jsonl
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


@pytest.mark.parametrize("stop_at", [5, 8])  # mid-epoch, and after the last batch of the first epoch
def test_interrupted_training_resumes_to_identical_weights(mnist_prepared, tmp_path, stop_at):
    train(cfg(), mnist_prepared, tmp_path / "straight")
    # 500 images / 64 = 8 steps per epoch
    train(cfg(f"train.max_steps={stop_at}"), mnist_prepared, tmp_path / "resumed")
    assert not (tmp_path / "resumed" / ".done").exists()
    assert load_checkpoint(tmp_path / "resumed" / "ckpt" / "last.pt")["step"] == stop_at
    train(cfg(), mnist_prepared, tmp_path / "resumed")
    a = load_checkpoint(tmp_path / "straight" / "ckpt" / "last.pt")
    b = load_checkpoint(tmp_path / "resumed" / "ckpt" / "last.pt")
    assert a["step"] == b["step"] == 16
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    rows = read_jsonl(tmp_path / "resumed" / "log" / "metrics.jsonl")
    steps = [r["step"] for r in rows if r["split"] == "train"]
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


def test_ctrl_c_saves_a_consistent_state_and_resumes_exactly(mnist_prepared, tmp_path):
    """A real SIGINT in the middle of training: exit 130, then the rerun ends like an uninterrupted run."""
    sets = [*TINY, "train.epochs=60"]
    train(cfg(*sets[len(TINY) :]), mnist_prepared, tmp_path / "straight")
    args = [sys.executable, "-m", "aics", "vae", "train", "--data", str(mnist_prepared), "--exp",
            str(tmp_path / "stopped")] + [a for s in sets for a in ("--set", s)]  # fmt: skip
    proc = subprocess.Popen(args, stderr=subprocess.PIPE, text=True, env={**os.environ, "AICS_PROGRESS": "0"})
    for line in proc.stderr:
        if "epoch 1/60" in line:
            proc.send_signal(signal.SIGINT)
            break
    rest = proc.stderr.read()
    assert proc.wait() == 130, rest
    assert "interrupted" in rest and "rerun the same command to resume" in rest
    stopped = load_checkpoint(tmp_path / "stopped" / "ckpt" / "last.pt")
    assert 8 <= stopped["step"] < 480, "stopped somewhere in the middle"
    assert subprocess.run(args, capture_output=True).returncode == 0
    a = load_checkpoint(tmp_path / "straight" / "ckpt" / "last.pt")
    b = load_checkpoint(tmp_path / "stopped" / "ckpt" / "last.pt")
    assert a["step"] == b["step"] == 480
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
