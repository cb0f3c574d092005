"""The YOLOv5 loss and trainer: target assignment by hand, direct / pretrained / resumed training."""

import math

import pytest
import torch

from aics.core.ckpt import load_checkpoint
from aics.core.errors import UserError
from aics.core.io import append_jsonl, read_jsonl, write_json
from aics.core.stage import done_info
from aics.tasks.detect.config import load_detect_config
from aics.tasks.detect.loss import YoloLoss, hyp_for_model
from aics.tasks.detect.model import build_model
from aics.tasks.detect.train import ModelEMA, resume_experiment, train

HYP = {"box": 0.05, "cls": 0.5, "obj": 1.0, "cls_pw": 1.0, "obj_pw": 1.0, "anchor_t": 4.0, "fl_gamma": 0.0}
TINY = ["data.imgsz=64", "data.workers=0", "train.batch_size=4", "train.nbs=8", "train.epochs=2",
        "train.log_every=2", "val.batch_size=8", "hyp.warmup_epochs=1", "model.size=n"]  # fmt: skip


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    from aics.tasks.detect.synth import generate

    out = tmp_path_factory.mktemp("shapes")
    generate(out, n_train=24, n_val=8, img_size=64, seed=0, show_progress=False)
    return out / "data.yaml"


def cfg(data, *extra, hyp=None):
    return load_detect_config([], hyp, [f"data.yaml={data}", *TINY, *extra])


def test_build_targets_assigns_centre_cell_and_two_neighbours():
    model = build_model("n", nc=3)
    loss = YoloLoss(model.detect, hyp_for_model(HYP, 3, 3, 256))
    # One 40x40 px box centred at (100, 60) px in a 256x256 image: at stride 8 the centre is (12.5, 7.5).
    targets = torch.tensor([[0, 2, 100 / 256, 60 / 256, 40 / 256, 40 / 256]])
    preds = [torch.zeros(1, 3, 256 // s, 256 // s, 8) for s in (8, 16, 32)]
    tcls, tbox, indices, anch = loss.build_targets(preds, targets)
    b, a, gj, gi = indices[0]
    # stride-8 anchors 10x13, 16x30, 33x23 px: ratios to 40x40 are 4.0/3.1, 2.5/1.3, 1.2/1.7 -> anchors 1, 2
    # pass anchor_t=4 (anchor 0's 40/10 = 4.0 is not < 4)
    assert sorted(set(a.tolist())) == [1, 2]
    cells = sorted(set(zip(gi.tolist(), gj.tolist(), strict=True)))
    # a centre exactly mid-cell is nearer no neighbour than the 0.5 margin: only its own cell
    assert cells == [(12, 7)]
    assert torch.all(tcls[0] == 2)
    # centre (12.3, 7.7): its cell, the left one (x % 1 < .5) and the one below (y % 1 > .5)
    targets[0, 2:4] = torch.tensor([12.3 * 8 / 256, 7.7 * 8 / 256])
    _, tbox, indices, _ = loss.build_targets(preds, targets)
    cells = sorted(set(zip(indices[0][3].tolist(), indices[0][2].tolist(), strict=True)))
    assert cells == [(11, 7), (12, 7), (12, 8)]
    # box targets are offsets from the assigned cell: within (-0.5, 1.5)
    assert tbox[0][:, :2].min() > -0.5 and tbox[0][:, :2].max() < 1.5
    assert torch.allclose(tbox[0][:, 2:], torch.tensor([40 / 8, 40 / 8]).expand_as(tbox[0][:, 2:]))


def test_loss_has_gradients_everywhere_and_overfits_one_batch():
    torch.manual_seed(0)
    model = build_model("n", nc=3).train()
    loss = YoloLoss(model.detect, hyp_for_model(HYP, 3, 3, 128))
    targets = torch.tensor([[0, 1, 0.5, 0.5, 0.3, 0.4], [1, 0, 0.3, 0.6, 0.2, 0.2]])
    x = torch.rand(2, 3, 128, 128)
    total, items = loss(model(x), targets)
    total.backward()
    assert total.item() > 0 and items.shape == (3,) and torch.isfinite(items).all()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None for g in grads) and sum(g.abs().sum() for g in grads) > 0
    # steps on the same batch lower the box and class losses
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    first = None
    for _ in range(20):
        opt.zero_grad()
        total, items = loss(model(x), targets)
        first = first if first is not None else items.clone()
        total.backward()
        opt.step()
    assert items[0] < 0.8 * first[0] and items[2] < 0.5 * first[2]


def test_ema_ramps_up_and_follows_the_model():
    model = torch.nn.Linear(2, 1)
    ema = ModelEMA(model, decay=0.9, tau=1.0)
    with torch.no_grad():
        model.weight.fill_(1.0)
    ema.update(model)
    d = 0.9 * (1 - math.exp(-1))
    assert ema.updates == 1
    before = ema.ema.weight.clone()
    assert not torch.equal(before, model.weight)
    expected = d * before + (1 - d) * 1.0  # the update formula, one step later
    ema.update(model)
    d2 = 0.9 * (1 - math.exp(-2))
    assert torch.allclose(ema.ema.weight, d2 * before + (1 - d2) * 1.0)
    assert expected.shape == before.shape


def test_train_writes_everything_and_val_scores(shapes, tmp_path):
    exp = tmp_path / "direct"
    scores = train(cfg(shapes), exp)
    assert {"mp", "mr", "map50", "map", "per_class", "loss"} <= set(scores)
    for name in ("config.yaml", "RESULTS.md", "results.png", "labels.png", "train_batch0.png", "ckpt/best.pt",
                 "ckpt/last.pt", "log/metrics.jsonl"):  # fmt: skip
        assert (exp / name).is_file(), name
    ckpt = load_checkpoint(exp / "ckpt" / "last.pt", task="detect")
    assert ckpt["epoch"] == 2 and ckpt["extra"]["ema"] is not None and ckpt["extra"]["names"]
    splits = {r["split"] for r in read_jsonl(exp / "log" / "metrics.jsonl")}
    assert {"train", "train_epoch", "val"} <= splits
    info = done_info(exp)
    assert info["mode"] == "direct" and info["epoch"] == 2
    # a finished run: rerunning the command is a no-op, and --resume says so instead of failing
    assert train(cfg(shapes), exp) == {}
    assert resume_experiment(exp) == {}


def test_epochs_without_validation_log_no_val_scores(shapes, tmp_path):
    exp = tmp_path / "e"
    train(cfg(shapes, "train.epochs=3", "train.val_every=2", "train.plots=false"), exp)
    rows = read_jsonl(exp / "log" / "metrics.jsonl")
    assert [r["epoch"] for r in rows if r["split"] == "val"] == [2, 3], "no stale scores at epoch 1"
    assert [r["epoch"] for r in rows if r["split"] == "train_epoch"] == [1, 2, 3]
    assert load_checkpoint(exp / "ckpt" / "epoch-001.pt")["metrics"]["val"] == {}


def test_resume_of_another_tasks_experiment_is_refused(tmp_path):
    exp = tmp_path / "vae_exp"
    exp.mkdir()
    write_json(exp / ".done", {"task": "vae", "epoch": 3})
    with pytest.raises(UserError, match=r"is a 'vae' experiment, not a detect one"):
        resume_experiment(exp)


def test_results_name_the_last_of_equally_fit_epochs(tmp_path):
    from aics.tasks.detect.infer import write_results

    exp = tmp_path / "e"
    rows = [(1, 0.5, 0.3), (2, 0.7, 0.4), (3, 0.6, 0.35), (4, 0.7, 0.4)]  # epochs 2 and 4 tie
    for epoch, m50, m in rows:
        values = {"precision": 0.5, "recall": 0.5, "mAP50": m50, "mAP50-95": m}
        append_jsonl(exp / "log" / "metrics.jsonl", {"split": "val", "step": epoch, "epoch": epoch, **values})
    text = write_results(exp)
    best = next(line for line in text.splitlines() if line.startswith("| best"))
    assert best.split("|")[2].strip() == "4", "best.pt keeps the later of tied epochs, and so does the table"


def test_resumed_run_ends_with_the_same_weights(shapes, tmp_path):
    """Stopped mid-epoch with gradients half accumulated (2 batches of 4 per nominal 8), then resumed:
    bit-exact on CPU, EMA included."""
    whole = tmp_path / "whole"
    train(cfg(shapes, "hyp.warmup_epochs=0"), whole)
    parts = tmp_path / "parts"
    train(cfg(shapes, "hyp.warmup_epochs=0", "train.max_steps=3"), parts)
    stopped = load_checkpoint(parts / "ckpt" / "last.pt")
    assert stopped["step"] == 3 and stopped["batch_in_epoch"] == 3
    assert any(g is not None for g in stopped["extra"]["grads"]), "accumulated gradients are saved"
    resume_experiment(parts)  # the saved config, to the last epoch
    a, b = (load_checkpoint(d / "ckpt" / "last.pt") for d in (whole, parts))
    assert a["step"] == b["step"] == 12
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    for k in a["extra"]["ema"]:
        assert torch.equal(a["extra"]["ema"][k], b["extra"]["ema"][k]), k
    assert done_info(parts)["resumes"] == 1
    rows = [
        [{k: v for k, v in r.items() if k != "time"} for r in read_jsonl(d / "log" / "metrics.jsonl")
         if r["split"] == "train_epoch"]
        for d in (whole, parts)
    ]  # fmt: skip
    assert len(rows[0]) == 2 and rows[0] == rows[1], "the epoch means include the batches before the stop"


def test_resumed_run_with_loader_workers_matches_one_process(shapes, tmp_path):
    """Two loader workers that live across epochs (rebuilt when close_mosaic changes the hyp), stopped
    mid-epoch and resumed, end with the weights of an uninterrupted run that loads in the main process."""
    args = ["hyp.warmup_epochs=0", "train.epochs=3", "train.close_mosaic=1"]
    whole = tmp_path / "whole"
    train(cfg(shapes, *args), whole)
    parts = tmp_path / "parts"
    train(cfg(shapes, *args, "data.workers=2", "train.max_steps=3"), parts)
    resume_experiment(parts)
    a, b = (load_checkpoint(d / "ckpt" / "last.pt") for d in (whole, parts))
    assert a["step"] == b["step"] == 18
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k


def test_pretrained_transfers_matching_tensors_and_handles_other_class_count(shapes, tmp_path):
    src = tmp_path / "src"
    train(cfg(shapes, "train.epochs=1"), src)
    # same classes: every tensor transfers, so the first forward equals the source's EMA model
    dst = tmp_path / "ft"
    train(
        cfg(shapes, "train.epochs=1", "train.max_steps=1", "train.ema=false"),
        dst,
        weights=src / "ckpt/best.pt",
    )
    assert done_info(dst) == {}  # stopped by max_steps
    # another class count: the Detect convs are skipped, the rest is copied
    from aics.tasks.detect.train import transfer_weights

    model = build_model("n", nc=2)
    copied, skipped = transfer_weights(model, src / "ckpt" / "best.pt")
    assert skipped == [f"model.24.m.{i}.{p}" for i in range(3) for p in ("weight", "bias")]
    ema = load_checkpoint(src / "ckpt" / "best.pt")["extra"]["ema"]
    assert torch.equal(model.state_dict()["model.0.conv.weight"], ema["model.0.conv.weight"])
    assert copied == len(model.state_dict()) - 6


def test_hyp_file_and_bad_inputs(shapes, tmp_path):
    hyp = tmp_path / "hyp.yaml"
    hyp.write_text("lr0: 0.02\nmosaic: 0.5\n")
    c = cfg(shapes, hyp=hyp)
    assert c.hyp.lr0 == 0.02 and c.hyp.mosaic == 0.5
    hyp.write_text("lr0: 0.02\nmosiac: 0.5\n")
    with pytest.raises(UserError, match="hyp.yaml.*mosiac"):
        cfg(shapes, hyp=hyp)
    with pytest.raises(UserError, match="multiple of the largest stride"):
        train(cfg(shapes, "data.imgsz=100"), tmp_path / "bad")
    with pytest.raises(UserError, match="--data"):
        train(load_detect_config([], None, TINY), tmp_path / "nodata")


def ddp_worker(rank, world, data, exp, port, *sets):
    import os

    os.environ.update({"WORLD_SIZE": str(world), "RANK": str(rank), "LOCAL_RANK": str(rank),
                       "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})  # fmt: skip
    torch.set_num_threads(1)
    train(cfg(data, "train.device=cpu", "train.epochs=1", *sets), exp)


def test_two_gloo_ranks_train_stop_and_resume(shapes, tmp_path, free_port):
    """Under torchrun-style DDP (2 gloo processes): stopped at step 2, resumed, finished; one rng per rank."""
    import os

    import torch.multiprocessing as mp

    for key in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        os.environ.pop(key, None)
    exp = tmp_path / "ddp"
    mp.spawn(ddp_worker, args=(2, shapes, exp, free_port(), "train.max_steps=2"), nprocs=2, join=True)
    stopped = load_checkpoint(exp / "ckpt" / "last.pt")
    assert stopped["step"] == 2 and len(stopped["rng"]) == 2
    mp.spawn(ddp_worker, args=(2, shapes, exp, free_port()), nprocs=2, join=True)
    info = done_info(exp)
    assert info["epoch"] == 1 and info["resumes"] == 1
    # 24 images, 4 per rank: 3 global batches of 8 per epoch
    assert load_checkpoint(exp / "ckpt" / "last.pt")["step"] == 3


def test_resume_takes_the_same_data_by_another_path_and_refuses_other_data(shapes, tmp_path, monkeypatch):
    import os

    from aics.tasks.detect.synth import generate

    monkeypatch.chdir(shapes.parent.parent)
    exp = tmp_path / "e"
    train(cfg(os.path.relpath(shapes), "train.max_steps=1", "train.plots=false"), exp)
    saved = load_detect_config([exp / "config.yaml"])
    assert saved.data.yaml == str(shapes.resolve()), "config.yaml holds the resolved path (--resume anywhere)"
    generate(tmp_path / "other", n_train=8, n_val=4, img_size=64, seed=1, show_progress=False)
    with pytest.raises(UserError, match=r"trained on other data"):
        train(cfg(tmp_path / "other" / "data.yaml", "train.max_steps=2", "train.plots=false"), exp)
    train(cfg(shapes, "train.max_steps=2", "train.plots=false"), exp)  # the same data, absolute: resumes
    assert load_checkpoint(exp / "ckpt" / "last.pt")["step"] == 2
