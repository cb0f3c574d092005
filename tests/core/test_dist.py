"""The distributed seam: 2 gloo processes with batch b end like 1 process with batch 2b."""

import os
from pathlib import Path

import torch
import torch.multiprocessing as mp
from torch import nn

from aics.core.dist import cleanup, init_distributed, wrap_model
from aics.core.loader import EpochBatchSampler, build_loader


def data():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 5, generator=g)
    return torch.utils.data.TensorDataset(x, x.sum(1, keepdim=True))


def train(rank: int, world: int, batch: int, steps: int, out: str, port: int) -> None:
    os.environ.update(
        {"WORLD_SIZE": str(world), "RANK": str(rank), "LOCAL_RANK": str(rank),
         "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}
    )  # fmt: skip
    torch.set_num_threads(1)
    ctx = init_distributed("cpu")
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 1))
    net = wrap_model(model, ctx)
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    ds = data()
    sampler = EpochBatchSampler(len(ds), batch, seed=4, rank=ctx.rank, world_size=ctx.world_size)
    step = epoch = 0
    while step < steps:
        sampler.set_epoch(epoch)
        for x, y in build_loader(ds, sampler):
            loss = ((net(x) - y) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            if step == steps:
                break
        epoch += 1
    if ctx.is_main:
        torch.save(model.state_dict(), out)
    cleanup(ctx)


def test_two_gloo_ranks_match_one_process_with_double_batch(tmp_path, free_port):
    steps = 10  # crosses an epoch boundary: 64 / 16 = 4 global batches per epoch
    single = tmp_path / "single.pt"
    train(0, 1, 16, steps, str(single), 0)
    for key in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        os.environ.pop(key, None)
    ddp = tmp_path / "ddp.pt"
    mp.spawn(train, args=(2, 8, steps, str(ddp), free_port()), nprocs=2, join=True)
    a, b = torch.load(single, weights_only=True), torch.load(ddp, weights_only=True)
    for k in a:
        assert torch.allclose(a[k], b[k], atol=1e-6, rtol=0), f"{k}: max diff {(a[k] - b[k]).abs().max()}"
    assert not torch.equal(a["0.weight"], nn.Linear(5, 8).weight), "training changed the weights"


def open_refused(rank: int, world: int, exp: str, port: int, out: str) -> None:
    from aics.core.errors import UserError
    from aics.core.trainloop import RunSpec, open_experiment

    os.environ.update(
        {"WORLD_SIZE": str(world), "RANK": str(rank), "LOCAL_RANK": str(rank),
         "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}
    )  # fmt: skip
    ctx = init_distributed("cpu")
    try:
        open_experiment(Path(exp), False, ctx, RunSpec("toy", {}))
        message = "no error"
    except UserError as e:
        message = str(e)
    Path(out, f"rank{rank}.txt").write_text(message)
    cleanup(ctx)


def test_a_refused_experiment_fails_on_every_rank_with_one_message(tmp_path, free_port):
    exp = tmp_path / "exp"
    exp.mkdir()
    (exp / "stray.txt").write_text("x")
    mp.spawn(open_refused, args=(2, str(exp), free_port(), str(tmp_path)), nprocs=2, join=True)
    messages = {(tmp_path / f"rank{r}.txt").read_text() for r in (0, 1)}
    assert len(messages) == 1 and "has no .done marker" in messages.pop()
