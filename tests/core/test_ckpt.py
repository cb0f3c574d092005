import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from aics.core import ckpt as ckpt_mod
from aics.core.ckpt import (
    CheckpointDir,
    load_checkpoint,
    restore_training_state,
    save_checkpoint,
    training_state,
)
from aics.core.errors import UserError
from aics.core.loader import EpochBatchSampler, build_loader
from aics.core.runtime import seed_everything


class ToyData(torch.utils.data.Dataset):
    def __init__(self, n=40):
        g = torch.Generator().manual_seed(123)
        self.x = torch.randn(n, 6, generator=g)
        self.y = self.x @ torch.randn(6, 1, generator=g)

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i], self.y[i]


def make_run(seed):
    seed_everything(seed)
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 1))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=4, gamma=0.5)
    return model, opt, sched


def train_steps(total_steps, stop_at=None, ckpt_path=None, resume=False):
    """A loop built from the core pieces: dropout (torch RNG), numpy and python noise, an LR schedule."""
    data = ToyData()
    model, opt, sched = make_run(seed=0)
    sampler = EpochBatchSampler(len(data), batch_size=8, seed=7)  # 5 batches per epoch
    step = epoch = batch_in_epoch = 0
    if resume:
        # A fresh process would start from other RNG states; restoring must fix all of them.
        seed_everything(999)
        ck = load_checkpoint(ckpt_path, task="toy")
        restore_training_state(ck, model, opt, sched)
        step, epoch, batch_in_epoch = ck["step"], ck["epoch"], ck["batch_in_epoch"]
    while step < total_steps:
        sampler.set_epoch(epoch, batch_in_epoch)
        for x, y in build_loader(data, sampler):
            noise = float(np.random.rand()) * 1e-3 + random.random() * 1e-3
            loss = ((model(x) - y) ** 2).mean() + noise
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            batch_in_epoch += 1
            if step == stop_at:
                state = training_state(
                    task="toy", model=model, optimizer=opt, scheduler=sched, step=step, epoch=epoch,
                    batch_in_epoch=batch_in_epoch,
                )  # fmt: skip
                save_checkpoint(ckpt_path, state)
                return model
            if step == total_steps:
                return model
        epoch += 1
        batch_in_epoch = 0
    return model


@pytest.mark.parametrize("stop_at", [3, 5, 7])  # mid-epoch, exactly at an epoch end, in the second epoch
def test_resume_is_bit_exact(tmp_path, stop_at):
    total = 13
    straight = train_steps(total)
    path = tmp_path / "last.pt"
    train_steps(total, stop_at=stop_at, ckpt_path=path)
    resumed = train_steps(total, ckpt_path=path, resume=True)
    for (name, a), (_, b) in zip(straight.state_dict().items(), resumed.state_dict().items(), strict=True):
        assert torch.equal(a, b), f"{name} differs after resume at step {stop_at}"


def test_resume_changes_result_when_rng_is_not_restored(tmp_path, monkeypatch):
    """Guards the test above: without restoring the RNG the weights do differ."""
    straight = train_steps(13)
    path = tmp_path / "last.pt"
    train_steps(13, stop_at=5, ckpt_path=path)
    monkeypatch.setattr("aics.core.ckpt.restore_rng", lambda rng: None)
    resumed = train_steps(13, ckpt_path=path, resume=True)
    assert not all(
        torch.equal(a, b) for a, b in zip(straight.parameters(), resumed.parameters(), strict=True)
    )


def test_checkpoint_loads_with_weights_only_and_has_the_fields(tmp_path):
    model, opt, sched = make_run(0)
    state = training_state(task="toy", model=model, optimizer=opt, scheduler=sched, step=3, config={"a": 1})
    save_checkpoint(tmp_path / "c.pt", state)
    raw = torch.load(tmp_path / "c.pt", weights_only=True)
    expected = {
        "format",
        "task",
        "model",
        "optimizer",
        "scheduler",
        "scaler",
        "step",
        "epoch",
        "rng",
        "config",
    }
    assert expected <= raw.keys()
    assert len(raw["rng"]) == 1 and set(raw["rng"][0]) >= {"python", "numpy", "torch"}


def test_interrupted_write_keeps_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    save_checkpoint(path, {"format": ckpt_mod.FORMAT, "task": "toy", "step": 1})

    def half_write(obj, f):
        f.write(b"PK\x03\x04 half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(ckpt_mod.torch, "save", half_write)
    with pytest.raises(OSError):
        save_checkpoint(path, {"format": ckpt_mod.FORMAT, "task": "toy", "step": 2})
    assert load_checkpoint(path)["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"], "the temp file is cleaned up"


WRITER = """
import sys, torch
from aics.core.ckpt import FORMAT, save_checkpoint
step = 0
while True:
    step += 1
    w = torch.full((8_000_000,), float(step))
    save_checkpoint(sys.argv[1], {"format": FORMAT, "task": "toy", "step": step, "w": w})
    print(step, flush=True)
"""


def test_killed_writer_never_leaves_a_broken_checkpoint(tmp_path):
    """SIGKILL a process in the middle of 32 MB checkpoint writes: last.pt is always loadable."""
    path = tmp_path / "last.pt"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "1"
        time.sleep(0.35)  # somewhere in a later write
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    ck = load_checkpoint(path)
    assert ck["step"] >= 1 and bool((ck["w"] == ck["step"]).all()), "tensor data matches the file's header"


def test_load_errors_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "none.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match=r"junk\.pt: not an aics checkpoint.*not loaded"):
        load_checkpoint(tmp_path / "junk.pt")
    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(UserError, match=r"empty\.pt: not a loadable checkpoint \(empty, truncated"):
        load_checkpoint(tmp_path / "empty.pt")
    torch.save({"model": {}}, tmp_path / "foreign.pt")
    with pytest.raises(UserError, match="not an aics checkpoint"):
        load_checkpoint(tmp_path / "foreign.pt")
    save_checkpoint(tmp_path / "other.pt", {"format": ckpt_mod.FORMAT, "task": "lm"})
    with pytest.raises(UserError, match="is a 'lm' checkpoint, not 'vae'"):
        load_checkpoint(tmp_path / "other.pt", task="vae")


class Evil:
    def __reduce__(self):
        return (Path.touch, (Path("/tmp/aics-pwned"),))


def test_malicious_pickle_is_not_executed(tmp_path):
    Path("/tmp/aics-pwned").unlink(missing_ok=True)
    torch.save({"format": ckpt_mod.FORMAT, "payload": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(UserError) as err:
        load_checkpoint(tmp_path / "evil.pt", task="detect")
    assert not Path("/tmp/aics-pwned").exists()
    message = str(err.value)
    # our own words: never torch's advice to retry with weights_only=False (which would run the pickle)
    assert "weights_only" not in message and "False" not in message
    assert "holds objects other than tensors" in message and "not loaded" in message
    assert "aics detect import" in message


def test_checkpoint_dir_files(tmp_path):
    cd = CheckpointDir(tmp_path, keep_epochs=2)
    for epoch in (1, 2, 3):
        cd.save(
            {"format": ckpt_mod.FORMAT, "task": "toy", "epoch": epoch}, epoch_end=True, is_best=epoch == 2
        )
    assert sorted(p.name for p in cd.dir.iterdir()) == ["best.pt", "epoch-002.pt", "epoch-003.pt", "last.pt"]
    assert load_checkpoint(cd.best)["epoch"] == 2 and load_checkpoint(cd.last)["epoch"] == 3
    assert cd.resolve("epoch-003") == cd.dir / "epoch-003.pt"


def test_recover_finishes_a_save_cut_short(tmp_path):
    cd = CheckpointDir(tmp_path)

    def state(epoch, step):
        return {
            "format": ckpt_mod.FORMAT,
            "task": "toy",
            "epoch": epoch,
            "step": step,
            "w": torch.full((3,), step),
        }

    cd.save(state(1, 10), epoch_end=True, is_best=True)
    assert cd.recover() is None, "a complete save needs nothing"
    # epoch 2's file was written, then the process died before best.pt and last.pt were updated
    save_checkpoint(cd.epoch_path(2), {**state(2, 20), "is_best": True})
    (cd.dir / ".last.pt.k3j4.tmp").write_bytes(b"half a file")
    assert cd.recover() == cd.epoch_path(2)
    assert load_checkpoint(cd.last)["step"] == 20 and load_checkpoint(cd.best)["step"] == 20
    assert not list(cd.dir.glob("*.tmp")), "stale temporary files are removed"
    # a mid-epoch last.pt is newer than the epoch file: left as it is
    cd.save(state(2, 25))
    assert cd.recover() is None and load_checkpoint(cd.last)["step"] == 25
    # a not-best epoch file newer than last.pt: last.pt follows it, best.pt stays
    save_checkpoint(cd.epoch_path(3), {**state(3, 30), "is_best": False})
    cd.recover()
    assert load_checkpoint(cd.last)["step"] == 30 and load_checkpoint(cd.best)["step"] == 20


def test_run_meter_state_round_trip():
    from aics.core.log import RunMeter

    m = RunMeter()
    m.start()
    m.add(loss=2.0, tokens=4)
    m.add(loss=1.0, tokens=4)
    saved = m.state()
    assert saved["epoch"] == {"loss": 3.0, "tokens": 8.0} and saved["seconds"] > 0
    resumed = RunMeter.from_state(saved, mid_epoch=True)
    assert resumed.epoch_means("tokens", "loss") == {"loss": 3.0 / 8}
    assert RunMeter.from_state(saved, mid_epoch=False).epoch == {}, "at an epoch boundary: a new epoch"
    assert RunMeter.from_state(saved, mid_epoch=False).total["tokens"] == 8.0
    assert RunMeter().epoch_means("tokens", "loss") == {}


@pytest.mark.parametrize("content", [b"hello", b"abc", b"\x80\x02}q\x00.", b"PK\x03\x04broken zip"])
def test_random_bytes_are_one_user_error(tmp_path, content):
    (tmp_path / "x.pt").write_bytes(content)
    with pytest.raises(UserError, match=r"x\.pt: not (a loadable|an aics) checkpoint"):
        load_checkpoint(tmp_path / "x.pt")


def test_incomplete_or_misfitting_checkpoints_are_user_errors(tmp_path):
    from aics.core.ckpt import load_weights, require_parts

    with pytest.raises(UserError, match=r"x\.pt: an incomplete aics checkpoint \(no 'config'\)"):
        require_parts({"model": {}, "config": "nonsense", "extra": {}}, tmp_path / "x.pt")
    with pytest.raises(UserError, match=r"x\.pt: its weights do not fit the model"):
        load_weights(nn.Linear(2, 3), {"weight": torch.zeros(5, 5)}, tmp_path / "x.pt")


def test_average_weights_is_the_mean_of_float_tensors_and_the_last_counter():
    from aics.core.ckpt import average_weights

    torch.manual_seed(0)
    nets = [nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4)).to(torch.float64) for _ in range(3)]
    for i, n in enumerate(nets):
        n[1].num_batches_tracked.fill_(10 * (i + 1))
        n[1].running_var.uniform_(0.5, 2)
    states = [n.state_dict() for n in nets]
    avg = average_weights(states)
    assert list(avg) == list(states[-1])
    for k, v in avg.items():
        if k.endswith("num_batches_tracked"):
            assert v.item() == 30
        else:
            assert v.dtype == torch.float64 and torch.allclose(
                v, (states[0][k] + states[1][k] + states[2][k]) / 3
            )
    half = [{k: v.half() for k, v in s.items() if v.is_floating_point()} for s in states[:2]]
    assert average_weights(half)["0.weight"].dtype == torch.float16
    bad = {**states[1], "0.weight": torch.zeros(5, 3, dtype=torch.float64)}
    with pytest.raises(UserError, match=r"b\.pt: its weights differ in shape from c\.pt \(0\.weight\)"):
        average_weights([states[0], bad, states[2]], ["a.pt", "b.pt", "c.pt"])
