import os

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

from aics.core.ckpt import load_checkpoint
from aics.core.config import load_config
from aics.core.errors import UserError
from aics.core.io import read_json, read_jsonl, write_json
from aics.tasks.lm.config import LMConfig
from aics.tasks.lm.data import prepare
from aics.tasks.lm.infer import load_trained, report, sample, score, trained_vocab
from aics.tasks.lm.train import train

TINY = ["model.emb=16", "model.hidden=32", "model.layers=1", "model.heads=2", "model.max_len=32",
        "train.batch_size=4", "train.bptt=12", "train.epochs=2", "train.log_every=5", "train.warmup_steps=5",
        "train.early_stop=0", "eval.batch_size=4"]  # fmt: skip


@pytest.fixture(scope="module")
def lm_data(tmp_path_factory):
    """A small first-order Markov text in the PTB layout."""
    root = tmp_path_factory.mktemp("lm")
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(40)]
    trans = rng.dirichlet(np.full(40, 0.1), size=40)
    src = root / "corpus"
    src.mkdir()
    for split, n in (("train", 300), ("valid", 40), ("test", 40)):
        lines, cur = [], 0
        for _ in range(n):
            s = []
            for _ in range(rng.integers(3, 9)):
                cur = rng.choice(40, p=trans[cur])
                s.append(words[cur])
            lines.append(" " + " ".join(s))
        (src / f"{split}.txt").write_text("\n".join(lines) + "\n")
    prepare(src, root / "prepared")
    return root / "prepared"


def cfg(arch, *extra):
    return load_config(LMConfig, [], [f"model.arch={arch}", *TINY, *extra])


@pytest.mark.parametrize("arch, stop_at", [("lstm", 7), ("transformer", 9), ("ffn", 4)])
def test_resume_mid_epoch_is_exact(lm_data, tmp_path, arch, stop_at):
    train(cfg(arch), lm_data, tmp_path / "straight")
    train(cfg(arch, f"train.max_steps={stop_at}"), lm_data, tmp_path / "resumed")
    ck = load_checkpoint(tmp_path / "resumed" / "ckpt" / "last.pt")
    assert ck["step"] == stop_at and (ck["extra"]["hidden"] is not None) == (arch == "lstm")
    train(cfg(arch), lm_data, tmp_path / "resumed")
    a = load_checkpoint(tmp_path / "straight" / "ckpt" / "last.pt")
    b = load_checkpoint(tmp_path / "resumed" / "ckpt" / "last.pt")
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"]), f"{arch} at {stop_at} differs"
    # what is logged per epoch and the throughput's token count cover the batches before the stop too
    assert epoch_rows(tmp_path / "resumed") == epoch_rows(tmp_path / "straight")
    assert b["extra"]["meter"]["total"]["tokens"] == a["extra"]["meter"]["total"]["tokens"] > 0
    assert b["extra"]["meter"]["seconds"] > 0


def epoch_rows(exp):
    rows = read_jsonl(exp / "log" / "metrics.jsonl")
    return [{k: v for k, v in r.items() if k != "time"} for r in rows if r["split"] == "train_epoch"]


def test_score_sample_and_report(lm_data, tmp_path):
    exp = tmp_path / "gru"
    train(cfg("gru", "train.epochs=3"), lm_data, exp)
    s = score(exp, lm_data)
    assert s["test"]["tokens"] == read_json(lm_data / "stats.json")["splits"]["test"]["tokens"]
    assert s["test"]["ppl"] < s["unigram_test_ppl"], "learns more than word frequencies"
    model, _, _ = load_trained(exp)
    vocab = (lm_data / "vocab.txt").read_text().split("\n")
    text = sample(model, [line.split(" ")[0] for line in vocab if line], "w1 w2", tokens=30, top_k=5)
    assert text.startswith("w1 w2") and len(text.split()) >= 20
    table = report([exp], tmp_path / "RESULTS.md")
    assert "| gru | gru |" in table and (tmp_path / "RESULTS.md").read_text() == table
    assert (tmp_path / "curves.png").stat().st_size > 5000
    # data with another vocabulary: ids would mean other words, so sample and score refuse it
    other = tmp_path / "other"
    prepare(read_json(lm_data / "stats.json")["source"], other, max_size=10)
    before = (exp / "scores.json").read_bytes()
    with pytest.raises(UserError, match=r"other/vocab\.txt: not the vocabulary .* was trained with"):
        score(exp, other)
    assert (exp / "scores.json").read_bytes() == before, "scores.json is not overwritten"
    with pytest.raises(UserError, match="not the vocabulary"):
        trained_vocab(load_trained(exp)[2], other, exp)
    assert len(trained_vocab(load_trained(exp)[2], None, exp)) == len(vocab) - 1


def test_an_experiment_of_another_task_is_refused(lm_data, tmp_path):
    exp = tmp_path / "e"
    (exp / "ckpt").mkdir(parents=True)
    write_json(exp / ".done", {"task": "vae", "epoch": 2})
    with pytest.raises(UserError, match=r"e: is a 'vae' experiment, not 'lm'; use another --exp"):
        train(cfg("lstm"), lm_data, exp)


def ddp_worker(rank, world, arch, data, exp, port, batch, steps=6):
    os.environ.update({"WORLD_SIZE": str(world), "RANK": str(rank), "LOCAL_RANK": str(rank),
                       "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})  # fmt: skip
    torch.set_num_threads(1)
    sets = ["model.dropout=0", "model.emb_dropout=0", f"train.max_steps={steps}", f"train.batch_size={batch}",
            "train.device=cpu"]  # fmt: skip
    train(cfg(arch, *sets), data, exp)


@pytest.mark.parametrize("arch, resume_at", [("lstm", 3), ("transformer", None)])
def test_two_gloo_ranks_match_one_process_with_double_batch(lm_data, tmp_path, arch, resume_at, free_port):
    """Also, for the LSTM, stopped at step 3 and resumed under DDP (the hidden state of both ranks)."""
    ddp_worker(0, 1, arch, lm_data, tmp_path / "single", 0, 4)
    for key in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        os.environ.pop(key, None)
    if resume_at:
        mp.spawn(ddp_worker, args=(2, arch, lm_data, tmp_path / "ddp", free_port(), 2, resume_at), nprocs=2)
        assert load_checkpoint(tmp_path / "ddp" / "ckpt" / "last.pt")["extra"]["hidden"][0].shape[1] == 4
    mp.spawn(ddp_worker, args=(2, arch, lm_data, tmp_path / "ddp", free_port(), 2), nprocs=2, join=True)
    a = load_checkpoint(tmp_path / "single" / "ckpt" / "last.pt")
    b = load_checkpoint(tmp_path / "ddp" / "ckpt" / "last.pt")
    assert a["step"] == b["step"] == 6
    for k in a["model"]:
        diff = (a["model"][k] - b["model"][k]).abs().max().item()
        assert diff <= 1e-6, f"{arch} {k}: max diff {diff}"
