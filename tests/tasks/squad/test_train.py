"""Training: exact resume, gradient accumulation, distillation, prediction and the commands' bad input."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys

import pytest
import torch

from aics.core.config import load_config
from aics.core.errors import UserError
from aics.tasks.squad.config import SquadConfig
from aics.tasks.squad.data import prepare
from aics.tasks.squad.train import evenly_spaced, soft_loss, span_loss, train

PEOPLE = ["alva", "borin", "cesk", "dora", "elun", "fenn", "gisa", "hako"]
TOWNS = ["quessa", "rolt", "sarn", "tivo", "umra", "vesk"]
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
WORDS = SPECIAL + PEOPLE + TOWNS + ["was", "born", "in", "where", "when", "year", "what", ".", "?"]
WORDS += [str(y) for y in range(1800, 1810)]


def paragraph(rng: random.Random, i: int) -> dict:
    people = rng.sample(PEOPLE, 3)
    sentences = [f"{p} was born in {rng.choice(TOWNS)} in {rng.randint(1800, 1809)} ." for p in people]
    context = " ".join(sentences)
    qas = []
    for j, (p, s) in enumerate(zip(people, sentences, strict=True)):
        at = context.index(s)
        town, year = s.split()[4], s.split()[6]
        qas.append({"id": f"{i}-{j}-w", "question": f"where was {p} born ?",
                    "answers": [{"answer_start": at + s.index(town), "text": town}]})  # fmt: skip
        qas.append({"id": f"{i}-{j}-y", "question": f"what year was {p} born ?",
                    "answers": [{"answer_start": at + s.index(year), "text": year}]})  # fmt: skip
    return {"context": context, "qas": qas}


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    root = tmp_path_factory.mktemp("squad")
    (root / "vocab").mkdir()
    (root / "vocab" / "vocab.txt").write_text("\n".join(WORDS) + "\n")
    (root / "raw").mkdir()
    rng = random.Random(0)
    for split, n in (("train", 40), ("dev", 8)):
        doc = {
            "version": "1.1",
            "data": [{"title": "t", "paragraphs": [paragraph(rng, i) for i in range(n)]}],
        }
        (root / "raw" / f"{split}-v1.1.json").write_text(json.dumps(doc))
    prepare(
        root / "raw", root / "vocab", root / "prepared", max_seq_length=32, doc_stride=8, max_query_length=8
    )
    return root


def tiny(*overrides: str) -> SquadConfig:
    base = ("model.hidden=32", "model.layers=2", "model.heads=2", "train.epochs=2", "train.batch_size=16",
            "train.lr=1e-3", "train.log_every=1", "predict.batch_size=32")  # fmt: skip
    return load_config(SquadConfig, (), base + overrides)


def weights(exp) -> dict:
    return torch.load(exp / "ckpt" / "last.pt", weights_only=True)["model"]


def test_an_interrupted_run_resumes_to_the_same_weights(prepared, tmp_path):
    whole = tmp_path / "whole"
    train(tiny(), prepared / "prepared", whole)
    cut = tmp_path / "cut"
    train(tiny("train.max_steps=5"), prepared / "prepared", cut)  # mid first epoch
    assert torch.load(cut / "ckpt" / "last.pt", weights_only=True)["step"] == 5
    train(tiny(), prepared / "prepared", cut)
    a, b = weights(whole), weights(cut)
    assert all(torch.equal(a[k], b[k]) for k in a)
    rows = [json.loads(x) for x in (cut / "log" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if r["split"] == "train"] == list(range(1, 47))  # 23 steps per epoch
    done = json.loads((whole / ".done").read_text())
    assert done["task"] == "squad" and 0 <= done["dev"]["f1"] <= 100


def test_gradient_accumulation_gives_the_same_step(prepared, tmp_path):
    # Adam's first step divides each gradient by its own size, so compare the gradients it saw (exp_avg)
    no_dropout = ("model.dropout=0", "model.attention_dropout=0", "train.max_steps=1")
    train(tiny(*no_dropout), prepared / "prepared", tmp_path / "one")
    train(tiny(*no_dropout, "train.grad_accum=4"), prepared / "prepared", tmp_path / "four")

    def grads(exp):
        state = torch.load(exp / "ckpt" / "last.pt", weights_only=True)["optimizer"]["state"]
        return [state[i]["exp_avg"] for i in sorted(state)]

    a, b = grads(tmp_path / "one"), grads(tmp_path / "four")
    assert len(a) == len(b) > 10
    assert max((x - y).abs().max().item() for x, y in zip(a, b, strict=True)) < 1e-6
    assert max(x.abs().max().item() for x in a) > 1e-4


def test_a_changed_setting_is_refused_on_resume(prepared, tmp_path):
    train(tiny("train.max_steps=2"), prepared / "prepared", tmp_path / "e")
    with pytest.raises(UserError, match="train.lr"):
        train(tiny("train.lr=5e-4"), prepared / "prepared", tmp_path / "e")


def test_losses():
    logits = torch.tensor([[2.0, 0.0, -1e4], [0.0, 1.0, 3.0]])
    gold = torch.tensor([0, 2])
    expected = -(torch.log_softmax(logits, -1)[[0, 1], gold]).mean()
    assert torch.allclose(span_loss(logits, logits, gold, gold), expected)
    assert soft_loss(logits, logits, 2.0).abs() < 1e-6  # no gap to the teacher
    student = torch.tensor([[0.0, 0.0, -1e4], [0.0, 0.0, 0.0]])
    t = 2.0
    p = torch.softmax(logits / t, -1)
    kl = (p * (torch.log_softmax(logits / t, -1) - torch.log_softmax(student / t, -1))).sum(-1).mean() * t * t
    assert torch.allclose(soft_loss(student, logits, t), kl, atol=1e-5)
    assert (
        evenly_spaced(3, 6) == [1, 3, 5]
        and evenly_spaced(6, 6) == list(range(6))
        and evenly_spaced(1, 4) == [3]
    )


def test_distillation_starts_from_the_teachers_layers(prepared, tmp_path):
    teacher = tmp_path / "teacher"
    train(tiny("model.layers=4", "train.epochs=1"), prepared / "prepared", teacher)
    student = tmp_path / "student"
    cfg = tiny(
        "model.layers=2", "train.epochs=1", "train.max_steps=1", "train.lr=0", f"distill.teacher={teacher}"
    )
    train(cfg, prepared / "prepared", student)
    t = torch.load(teacher / "ckpt" / "best.pt", weights_only=True)["model"]
    s = weights(student)
    assert torch.equal(
        s["bert.encoder.layer.0.output.dense.weight"], t["bert.encoder.layer.1.output.dense.weight"]
    )
    assert torch.equal(
        s["bert.encoder.layer.1.output.dense.weight"], t["bert.encoder.layer.3.output.dense.weight"]
    )
    assert "bert.encoder.layer.2.output.dense.weight" not in s
    narrow = tiny("model.hidden=16", f"distill.teacher={teacher}")
    with pytest.raises(UserError, match="student_init=random"):
        train(narrow, prepared / "prepared", tmp_path / "narrow")


def run_aics(*args: str, cwd=None) -> subprocess.CompletedProcess:
    env = {**os.environ, "AICS_DEBUG": ""}
    return subprocess.run(
        [sys.executable, "-m", "aics", *args], capture_output=True, text=True, env=env, cwd=cwd
    )


def test_eval_predicts_and_scores_and_refuses_unknown_ids(prepared, tmp_path):
    exp = tmp_path / "e"
    train(tiny("train.epochs=1"), prepared / "prepared", exp)
    dev = prepared / "raw" / "dev-v1.1.json"
    r = run_aics("squad", "eval", "--ckpt", str(exp), "--data", str(dev))
    assert r.returncode == 0, r.stderr
    out = exp / "predict_best" / "dev-v1.1"
    preds = json.loads((out / "predictions.json").read_text())
    nbest = json.loads((out / "nbest_predictions.json").read_text())
    assert len(preds) == 48 and set(preds) == set(nbest)
    assert all(abs(sum(c["probability"] for c in v) - 1) < 1e-6 and len(v) <= 20 for v in nbest.values())
    scores = json.loads((out / "scores.json").read_text())
    assert scores["total"] == 48 and (exp / "RESULTS.md").is_file()
    again = run_aics("squad", "eval", "--predictions", str(out / "predictions.json"), "--data", str(dev),
                     "--out", str(tmp_path / "rescored"))  # fmt: skip
    assert (
        again.returncode == 0
        and json.loads((tmp_path / "rescored" / "scores.json").read_text())["f1"] == (scores["f1"])
    )
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**preds, "no-such-question": "x"}))
    r = run_aics("squad", "eval", "--predictions", str(bad), "--data", str(dev))
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "no-such-question" in r.stderr
    assert str(bad) in r.stderr


def test_commands_refuse_bad_input_in_one_line(prepared, tmp_path):
    not_squad = tmp_path / "x.json"
    not_squad.write_text('{"version": "1.1", "articles": []}')
    cases = [
        ("squad", "eval", "--predictions", str(not_squad), "--data", str(not_squad)),
        ("squad", "train", "--data", str(tmp_path / "nowhere"), "--exp", str(tmp_path / "e")),
        ("squad", "import", str(tmp_path), "--out", str(tmp_path / "o")),
        ("squad", "train", "--data", str(prepared / "prepared"), "--exp", str(tmp_path / "e2"),
         "--init", str(tmp_path / "missing")),
    ]  # fmt: skip
    for args in cases:
        r = run_aics(*args)
        assert r.returncode == 2 and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr, (
            args,
            r.stderr,
        )


def ddp_worker(rank, world, data, exp, port, batch):
    os.environ.update({"WORLD_SIZE": str(world), "RANK": str(rank), "LOCAL_RANK": str(rank),
                       "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})  # fmt: skip
    torch.set_num_threads(1)
    sets = ("model.dropout=0", "model.attention_dropout=0", "train.max_steps=1", f"train.batch_size={batch}",
            "train.device=cpu")  # fmt: skip
    train(tiny(*sets), data, exp)


def test_two_gloo_ranks_take_the_step_of_one_process_with_double_batch(prepared, tmp_path, free_port):
    import torch.multiprocessing as mp

    ddp_worker(0, 1, prepared / "prepared", tmp_path / "single", 0, 16)
    for key in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        os.environ.pop(key, None)
    mp.spawn(
        ddp_worker, args=(2, prepared / "prepared", tmp_path / "ddp", free_port(), 8), nprocs=2, join=True
    )

    def grads(exp):
        ckpt = torch.load(exp / "ckpt" / "last.pt", weights_only=True)
        return ckpt, [ckpt["optimizer"]["state"][i]["exp_avg"] for i in sorted(ckpt["optimizer"]["state"])]

    (a, ga), (b, gb) = grads(tmp_path / "single"), grads(tmp_path / "ddp")
    assert a["step"] == b["step"] == 1 and len(b["rng"]) == 2
    assert max((x - y).abs().max().item() for x, y in zip(ga, gb, strict=True)) < 1e-6
