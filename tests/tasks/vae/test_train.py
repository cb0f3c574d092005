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
    straight, resumed = epoch_rows(tmp_path / "straight"), epoch_rows(tmp_path / "resumed")
    assert len(straight) == 2 and resumed == straight, "the epoch means cover the batches before the stop"


def test_done_training_is_skipped_and_model_change_refused(mnist_prepared, tmp_path):
    exp = tmp_path / "e"
    train(cfg("train.max_steps=3"), mnist_prepared, exp)
    with pytest.raises(
        UserError, match=r"unfinished run used other settings \(model\.zdim 2 -> 3\).*overwrite"
    ):
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


def epoch_rows(exp, split="train_epoch"):
    rows = read_jsonl(exp / "log" / "metrics.jsonl")
    return [{k: v for k, v in r.items() if k != "time"} for r in rows if r["split"] == split]


def test_a_changed_config_on_resume_is_refused_unless_safe(mnist_prepared, tmp_path):
    exp = tmp_path / "e"
    train(cfg("train.max_steps=3"), mnist_prepared, exp)
    with pytest.raises(UserError, match=r"other settings \(train\.lr 0\.001 -> 0\.5\).*--overwrite.*--exp"):
        train(cfg("train.lr=0.5"), mnist_prepared, exp)
    saved = load_config(VAEConfig, [exp / "config.yaml"])
    assert saved.train.lr == 0.001, "config.yaml states what was applied, not the refused value"
    # safe keys change and take effect: logging every step from now on, a longer run
    train(cfg("train.log_every=1", "train.epochs=3", "train.device=cpu"), mnist_prepared, exp)
    saved = load_config(VAEConfig, [exp / "config.yaml"])
    assert (saved.train.log_every, saved.train.epochs) == (1, 3)
    last = load_checkpoint(exp / "ckpt" / "last.pt")
    assert last["config"]["train"]["epochs"] == 3 and last["epoch"] == 3
    steps = [r["step"] for r in read_jsonl(exp / "log" / "metrics.jsonl") if r["split"] == "train"]
    assert steps[:1] == [2] and steps[1:] == list(range(4, 25)), steps


def test_other_data_on_resume_is_refused(mnist_synth, mnist_prepared, tmp_path):
    from aics.tasks.vae.data import prepare

    other = tmp_path / "other"
    prepare(mnist_synth, other, valid_size=100, seed=1)
    exp = tmp_path / "e"
    train(cfg("train.max_steps=3"), mnist_prepared, exp)
    with pytest.raises(UserError, match=r"trained on other data .*pass the same --data"):
        train(cfg(), other, exp)
    train(cfg("train.epochs=1"), mnist_prepared, exp)
    with pytest.raises(UserError, match=r"trained on other data"):
        train(cfg("train.epochs=1"), other, exp)


def test_a_finished_run_refuses_other_settings_and_goes_on_with_more_epochs(mnist_prepared, tmp_path):
    train(cfg("train.epochs=3"), mnist_prepared, tmp_path / "straight")
    exp = tmp_path / "e"
    train(cfg(), mnist_prepared, exp)  # 2 epochs, finished
    with pytest.raises(UserError, match=r"finished with other settings \(model\.hidden 32 -> 16\)"):
        train(cfg("model.hidden=16"), mnist_prepared, exp)
    with pytest.raises(UserError, match=r"finished with other settings \(train\.batch_size 64 -> 32\)"):
        train(cfg("train.batch_size=32"), mnist_prepared, exp)
    assert train(cfg("train.log_every=1"), mnist_prepared, exp) == {}, "same run: already done"
    train(cfg("train.epochs=3"), mnist_prepared, exp)  # continues from epoch 2 to 3
    a = load_checkpoint(tmp_path / "straight" / "ckpt" / "last.pt")
    b = load_checkpoint(exp / "ckpt" / "last.pt")
    assert a["step"] == b["step"] == 24 and (exp / ".done").is_file()
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"]), "as if trained 3 epochs"


def test_a_crash_in_the_first_epoch_end_save_resumes(mnist_prepared, tmp_path, monkeypatch):
    """epoch-001.pt is written, then the copy to best.pt fails (a full disk): no last.pt yet, a stale
    temporary file from a killed writer. The same command resumes from epoch-001.pt."""
    import errno

    import aics.core.ckpt as ckpt_mod

    train(cfg(), mnist_prepared, tmp_path / "straight")
    exp = tmp_path / "e"
    real_copy = ckpt_mod.atomic_copy

    def full_disk(src, dst):
        (exp / "ckpt" / ".best.pt.x1y2.tmp").write_bytes(b"half")  # what a SIGKILL mid-write leaves
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(ckpt_mod, "atomic_copy", full_disk)
    with pytest.raises(OSError, match="No space left"):
        train(cfg(), mnist_prepared, exp)
    assert (exp / "ckpt" / "epoch-001.pt").is_file() and not (exp / "ckpt" / "last.pt").exists()
    monkeypatch.setattr(ckpt_mod, "atomic_copy", real_copy)
    train(cfg(), mnist_prepared, exp)
    assert not list(exp.rglob("*.tmp")), "stale temporary files are removed"
    a = load_checkpoint(tmp_path / "straight" / "ckpt" / "last.pt")
    b = load_checkpoint(exp / "ckpt" / "last.pt")
    assert a["step"] == b["step"] == 16
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    best_a = load_checkpoint(tmp_path / "straight" / "ckpt" / "best.pt")
    best_b = load_checkpoint(exp / "ckpt" / "best.pt")
    assert best_a["step"] == best_b["step"]
    assert epoch_rows(exp) == epoch_rows(tmp_path / "straight")


def test_two_trainings_on_one_experiment_are_refused(mnist_prepared, tmp_path):
    exp = tmp_path / "e"
    args = [sys.executable, "-m", "aics", "vae", "train", "--data", str(mnist_prepared), "--exp", str(exp)]
    args += [a for s in [*TINY, "train.epochs=200"] for a in ("--set", s)]
    proc = subprocess.Popen(args, stderr=subprocess.PIPE, text=True, env={**os.environ, "AICS_PROGRESS": "0"})
    try:
        for line in proc.stderr:
            if "epoch 1/200" in line:
                break
        with pytest.raises(UserError, match=rf"in use by another aics process \(pid {proc.pid}\)"):
            train(cfg("train.epochs=200"), mnist_prepared, exp)
        with pytest.raises(UserError, match=rf"pid {proc.pid}"):
            train(cfg("train.epochs=200"), mnist_prepared, exp, overwrite=True)
        assert (exp / "ckpt" / "last.pt").is_file(), "--overwrite from a second command deleted nothing"
    finally:
        proc.kill()
        proc.wait()
    # killed with SIGKILL: its lock file stays, but does not block
    assert (exp / ".lock").exists()
    train(cfg("train.epochs=200", "train.max_steps=1"), mnist_prepared, exp)


def test_what_a_killed_run_leaves_is_resumed_or_redone(mnist_synth, mnist_prepared, tmp_path):
    # killed while writing its first config.yaml: a temp file and log/, no checkpoint
    exp = tmp_path / "e"
    (exp / "log").mkdir(parents=True)
    (exp / ".config.yaml.abcd1234.tmp").write_text("half")
    train(cfg("train.epochs=1"), mnist_prepared, exp)
    assert (exp / ".done").is_file() and not list(exp.glob("*.tmp"))
    # a prepare killed midway (its lock file left behind, a partial output): the same command redoes it
    from aics.tasks.vae.data import prepare

    out = tmp_path / "prep"
    out.mkdir()
    (out / ".lock").write_text("12345\n")
    (out / ".train-images-idx3-ubyte.x1.tmp").write_bytes(b"half")
    (out / "train-labels-idx1-ubyte").write_bytes(b"half")
    prepare(mnist_synth, out, valid_size=100)
    assert (out / ".done").is_file() and not list(out.glob("*.tmp")) and not (out / ".lock").exists()


def test_an_exp_that_is_no_experiment_is_refused(mnist_prepared, tmp_path):
    with pytest.raises(UserError, match=r"holds the --data"):
        train(cfg(), mnist_prepared, mnist_prepared, overwrite=True)
    with pytest.raises(UserError, match=r"holds the --data"):
        train(cfg(), mnist_prepared, mnist_prepared.parent)
    assert (mnist_prepared / ".done").is_file(), "the data are untouched"
    other = tmp_path / "other_stage"
    other.mkdir()
    (other / ".done").write_text("{}")
    with pytest.raises(UserError, match=r"finished output of another stage, not a training run"):
        train(cfg(), mnist_prepared, other, overwrite=True)
    notes = tmp_path / "proj"
    notes.mkdir()
    (notes / "notes.txt").write_text("important")
    with pytest.raises(UserError, match=r"is not empty and has no \.done marker"):
        train(cfg(), mnist_prepared, notes)


def test_fewer_epochs_than_the_run_is_in_are_refused(mnist_prepared, tmp_path):
    exp = tmp_path / "e"
    train(cfg("train.epochs=3", "train.max_steps=12"), mnist_prepared, exp)  # in epoch 2
    with pytest.raises(UserError, match=r"train\.epochs=1 ends before the epoch the run is in \(2\)"):
        train(cfg("train.epochs=1"), mnist_prepared, exp)


def test_infer_with_other_options_is_refused_not_reused(mnist_prepared, tmp_path):
    exp = tmp_path / "z"
    train(cfg("train.epochs=1"), mnist_prepared, exp)
    infer(exp, mnist_prepared, "best", ("valid",))
    with pytest.raises(UserError, match=r"made with other options \(splits=\['valid'\] -> \['test'\]\)"):
        infer(exp, mnist_prepared, "best", ("test",))
