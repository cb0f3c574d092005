"""Training, decoding and judging with the DFCNN (aics.tasks.asr.train, infer, judge) on the synthetic
LibriTTS-layout corpus: artifacts, exact resume, DDP, decode files and scores, a learnability floor, and the
CLI's one-line refusals."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

from aics.core.ckpt import load_checkpoint
from aics.core.config import load_config
from aics.core.errors import UserError
from aics.core.io import read_json, read_jsonl
from aics.tasks.asr.config import AsrConfig
from aics.tasks.asr.data import compute_features, prepare
from aics.tasks.asr.infer import decode
from aics.tasks.asr.train import train, trainable

# The corpus, prepared dir and features are shared with test_data.py: both build them under the session's
# base temp dir with the same settings, so whichever module runs second finds them done and skips the work.
SYNTH = {"layout": "libritts", "voices": ["flite-slt", "flite-awb"], "heldout_voices": ["flite-kal16"],
         "minutes": 1.0, "vocab_size": 40, "seed": 0, "show_progress": False}  # fmt: skip
LOGMEL40 = ["features.kind=logmel", "features.n_mels=40"]
# 14 training utterances, batch 4: 4 steps per epoch
TINY = ["model.channels=[4,8]", "model.time_pool=[2,2]", "model.freq_pool=[2,2]", "model.hidden=32",
        "train.epochs=2", "train.batch_size=4", "train.warmup_steps=2", "train.log_every=2",
        "train.device=cpu", "specaugment.speed=0.1", "specaugment.warp=0.1"]  # fmt: skip


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> tuple[Path, Path]:
    """(prepared dir, logmel-40 features dir) of a minute of flite speech."""
    if shutil.which("flite") is None:
        pytest.skip("flite is not installed")
    from aics.tasks.asr.synth import generate

    base = tmp_path_factory.getbasetemp()
    generate(base / "asr-corpus", **SYNTH)
    prepare(base / "asr-corpus", base / "asr-prepared")
    fc = load_config(AsrConfig, [], LOGMEL40).features
    compute_features(base / "asr-prepared", base / "asr-feats-logmel40", fc, show_progress=False)
    return base / "asr-prepared", base / "asr-feats-logmel40"


def cfg(*extra: str) -> AsrConfig:
    return load_config(AsrConfig, [], [*TINY, *extra])


@pytest.fixture(scope="module")
def trained(data, tmp_path_factory) -> Path:
    """Two epochs of the tiny DFCNN (SpecAugment and dropout on, as by default)."""
    exp = tmp_path_factory.mktemp("asr-exp") / "tiny"
    train(cfg(), data[1], exp)
    return exp


@pytest.fixture(scope="module")
def overfit(data, tmp_path_factory) -> Path:
    """A DFCNN trained for 80 steps on the two dev utterances only, then greedy-decoded on them."""
    exp = tmp_path_factory.mktemp("asr-exp") / "overfit"
    sets = ["model.channels=[8,8]", "model.convs_per_block=1", "model.hidden=128", "model.dropout=0",
            "specaugment.enabled=false", "train.epochs=40", "train.batch_size=1", "train.lr=5e-3",
            "train.warmup_steps=10", "train.log_every=20", "train.train_set=dev",
            "train.valid_set=dev"]  # fmt: skip
    train(cfg(*sets), data[1], exp)
    decode(exp, data[1], "dev", "last")
    return exp


def weights(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)["model"]


# ------------------------------------------------------------------------------------------ training
def test_train_writes_checkpoints_config_logs_and_done(data, trained):
    names = sorted(p.name for p in (trained / "ckpt").iterdir())
    assert names == ["best.pt", "epoch-001.pt", "epoch-002.pt", "last.pt"]
    features = read_json(data[1] / "features.json")
    for name in names:
        ck = torch.load(trained / "ckpt" / name, map_location="cpu", weights_only=True)
        assert ck["task"] == "asr" and ck["config"]["model"]["channels"] == [4, 8]
        assert ck["extra"]["features"] == features["features"] and ck["extra"]["dim"] == 40
        assert ck["extra"]["units"][0] == "<blank>" and len(ck["extra"]["units"]) == 29
        assert ck["extra"]["unit_kind"] == "char"
    last = load_checkpoint(trained / "ckpt" / "last.pt")
    assert (last["step"], last["epoch"], last["batch_in_epoch"]) == (8, 2, 0)
    assert load_checkpoint(trained / "ckpt" / "epoch-001.pt")["step"] == 4
    config = (trained / "config.yaml").read_text()
    assert "channels:" in config and "kind: logmel" in config and "n_mels: 40" in config

    rows = read_jsonl(trained / "log" / "metrics.jsonl")
    valid = [r for r in rows if r["split"] == "valid"]
    assert [(r["epoch"], r["step"]) for r in valid] == [(1, 4), (2, 8)]
    for r in valid:
        assert 0 < r["uer"] <= 1.5 and 0 < r["wer"] <= 1.5 and 0 < r["loss"] < 1e4
    assert [r["epoch"] for r in rows if r["split"] == "train_epoch"] == [1, 2]
    assert [r["step"] for r in rows if r["split"] == "train"] == [2, 4, 6, 8]
    best = load_checkpoint(trained / "ckpt" / "best.pt")
    assert best["metrics"]["best_valid_uer"] == min(r["uer"] for r in valid)
    assert best["metrics"]["valid"]["uer"] == min(r["uer"] for r in valid)
    assert any(p.name.startswith("events.out.tfevents") for p in (trained / "tb").iterdir())
    assert read_json(trained / ".done")["epoch"] == 2

    files = [trained / "ckpt" / "last.pt", trained / "log" / "metrics.jsonl"]
    before = [p.read_bytes() for p in files]
    assert train(cfg(), data[1], trained) == {}, "a finished experiment is not trained again"
    assert [p.read_bytes() for p in files] == before


def test_trainable_leaves_out_what_the_largest_speed_up_makes_unalignable():
    class Set:  # three utterances of 10 distinct-neighbour units: 10 output frames are needed
        lengths, keep, targets = np.array([40, 44, 100]), [0, 1, 2], [[1, 2] * 5] * 3

        def __len__(self):
            return 3

    from aics.tasks.asr.model import DFCNN

    model = DFCNN(8, 3, channels=(2, 2), time_pool=(2, 2), freq_pool=(1, 1), hidden=4)  # time / 4
    assert trainable(Set(), model) == ([0, 1, 2], 0)
    assert trainable(Set(), model, speed=0.1) == ([1, 2], 1)  # 40 / 1.1 -> 36 frames -> 9 outputs


def test_an_interrupted_run_resumes_to_the_same_weights(data, trained, tmp_path):
    exp = tmp_path / "resumed"
    train(cfg("train.max_steps=5"), data[1], exp)  # stops in the second epoch, one batch into it
    ck = load_checkpoint(exp / "ckpt" / "last.pt")
    assert (ck["step"], ck["epoch"], ck["batch_in_epoch"]) == (5, 1, 1) and not (exp / ".done").exists()
    with pytest.raises(UserError, match=r"model\.hidden"):
        train(cfg("model.hidden=16"), data[1], exp)
    train(cfg(), data[1], exp)
    a, b = load_checkpoint(trained / "ckpt" / "last.pt"), load_checkpoint(exp / "ckpt" / "last.pt")
    assert a["step"] == b["step"] == 8
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), f"{k} differs after the resume"
    for i, state in a["optimizer"]["state"].items():
        assert torch.equal(state["exp_avg_sq"], b["optimizer"]["state"][i]["exp_avg_sq"])

    def logged(e):  # what is logged per epoch, the epoch interrupted included
        rows = read_jsonl(e / "log" / "metrics.jsonl")
        return [{k: v for k, v in r.items() if k != "time"} for r in rows if r["split"] != "train"]

    assert logged(exp) == logged(trained)


def ddp_worker(rank, world, feats, exp, port, batch, steps=3):
    os.environ.update({"WORLD_SIZE": str(world), "RANK": str(rank), "LOCAL_RANK": str(rank),
                       "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})  # fmt: skip
    torch.set_num_threads(1)
    train(cfg("model.dropout=0", f"train.max_steps={steps}", f"train.batch_size={batch}"), feats, exp)


def test_two_gloo_ranks_train_one_model(data, tmp_path, free_port):
    """Two ranks with batch 2 take the batches of one process with batch 4 and end with one model. BatchNorm
    normalises each rank's slice with its own statistics on CPU (SyncBatchNorm on CUDA), so the weights are
    close to, not equal to, the single process's."""
    ddp_worker(0, 1, data[1], tmp_path / "single", 0, 4)
    for key in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        os.environ.pop(key, None)
    mp.spawn(ddp_worker, args=(2, data[1], tmp_path / "ddp", free_port(), 2), nprocs=2, join=True)
    a = load_checkpoint(tmp_path / "single" / "ckpt" / "last.pt")
    b = load_checkpoint(tmp_path / "ddp" / "ckpt" / "last.pt")
    assert a["step"] == b["step"] == 3 and len(b["rng"]) == 2
    moved = 0.0
    for k in a["model"]:
        if a["model"][k].is_floating_point():
            assert torch.isfinite(b["model"][k]).all()
            diff = (a["model"][k].double() - b["model"][k].double()).abs().max().item()
            assert diff < 0.05, f"{k}: max diff {diff}"
            moved = max(moved, diff)
    assert moved > 0  # per-rank statistics: not the same numbers


# ------------------------------------------------------------------------------------------ decoding
def speakers(prepared: Path, subset: str) -> set[str]:
    return {r["speaker"] for r in read_jsonl(prepared / f"{subset}.jsonl")}


def test_decode_greedy_and_beam_with_lm_write_files_and_scores(data, trained, tmp_path, aics):
    prepared, feats = data
    exp = tmp_path / "tiny"
    shutil.copytree(trained, exp)
    lm = tmp_path / "lm.arpa"
    assert "char 5-gram" in aics("asr", "ngram", "--data", prepared, "--out", lm)
    aics("asr", "decode", "--exp", exp, "--data", feats, "--subset", "test")
    aics("asr", "decode", "--exp", exp, "--data", feats, "--subset", "test-heldout")
    out = aics("asr", "decode", "--exp", exp, "--data", feats, "--subset", "test", "--method", "beam",
              "--beam", "4", "--lm", lm, "--lm-weight", "0.3")  # fmt: skip
    assert f"{exp} test beam: CER " in out
    for subset, tag in (("test", "greedy"), ("test-heldout", "greedy"), ("test", "beam4_lm-lm_w0.3")):
        d = exp / f"decode_{subset}_{tag}"
        rows = read_jsonl(prepared / f"{subset}.jsonl")
        ids = [r["id"] for r in rows]
        hyp = [line.split(" ", 1) for line in (d / "hyp.txt").read_text().splitlines()]
        ref = [line.split(" ", 1) for line in (d / "ref.txt").read_text().splitlines()]
        assert [h[0] for h in hyp] == [r[0] for r in ref] == ids
        assert [r[1] for r in ref] == [r["text"] for r in rows]
        per_utt = read_jsonl(d / "per_utt.jsonl")
        assert [p["id"] for p in per_utt] == ids
        s = read_json(d / "scores.json")
        n = s["unit_counts"]
        assert s["utterances"] == len(rows) and s["subset"] == subset and s["uer_name"] == "CER"
        assert n["N"] == sum(len(r["text"]) for r in rows) == sum(p["unit_errors"]["N"] for p in per_utt)
        assert s["uer"] == pytest.approx((n["S"] + n["D"] + n["I"]) / n["N"])
        w = s["word_counts"]
        assert w["N"] == sum(len(r["text"].split()) for r in rows)
        assert s["wer"] == pytest.approx((w["S"] + w["D"] + w["I"]) / w["N"])
        assert s["epoch"] in (1, 2) and s["checkpoint"] == str(exp / "ckpt" / "best.pt")
        assert s["real_time_factor"] > 0 and s["decode_seconds"] >= 0
        assert set(s["per_speaker"]) == speakers(prepared, subset)
        assert sum(v["utterances"] for v in s["per_speaker"].values()) == len(rows)
        assert (s["method"], s["beam"], s["lm"]) == (
            ("beam", 4, str(lm)) if tag == "beam4_lm-lm_w0.3" else ("greedy", None, None)
        )
    heldout = speakers(prepared, "test-heldout") - speakers(prepared, "train")
    assert (
        heldout
        and set(read_json(exp / "decode_test-heldout_greedy" / "scores.json")["per_speaker"]) == heldout
    )
    table = (exp / "RESULTS.md").read_text()
    for tag in ("test_greedy", "test-heldout_greedy", "test_beam4_lm-lm_w0.3"):
        assert f"| {tag} |" in table
    assert "CER %" in table and "WER %" in table


def test_decode_refuses_other_features_and_bad_options(data, trained, tmp_path, aics):
    prepared, feats = data
    small = tmp_path / "p"
    small.mkdir()
    for name in ("test.jsonl", "units.txt", "stats.json", ".done"):
        shutil.copy(prepared / name, small / name)
    fc = load_config(AsrConfig, [], ["features.kind=logmel", "features.n_mels=32"]).features
    compute_features(small, tmp_path / "f32", fc, workers=1, show_progress=False)
    exp = tmp_path / "tiny"
    shutil.copytree(trained, exp)
    line = aics.error("asr", "decode", "--exp", exp, "--data", tmp_path / "f32")
    assert f"{tmp_path / 'f32'}: its features" in line and "differ from those" in line and "n_mels" in line
    assert "compute features with the checkpoint's settings" in line
    line = aics.error("asr", "decode", "--exp", exp, "--data", feats, "--lm", tmp_path / "none.arpa",
                     "--method", "beam")  # fmt: skip
    assert "none.arpa: LM not found" in line
    (tmp_path / "lm.arpa").write_text("\\data\\\n")
    line = aics.error("asr", "decode", "--exp", exp, "--data", feats, "--lm", tmp_path / "lm.arpa")
    assert "--lm needs --method beam" in line
    line = aics.error("asr", "decode", "--exp", exp, "--data", feats, "--subset", "valid")
    assert "has no subset 'valid'" in line
    assert not list(exp.glob("decode_*")), "a refused decode writes nothing"


def test_decode_averages_the_last_epochs_weights(data, trained, tmp_path, aics):
    from aics.core.ckpt import save_checkpoint

    feats = data[1]
    exp = tmp_path / "tiny"
    shutil.copytree(trained, exp)
    decode = ("asr", "decode", "--exp", exp, "--data", feats, "--subset", "dev", "--ckpt")
    aics(*decode, "last", "--avg", "2")
    avg = exp / "decode_dev_greedy_last_avg2"
    s = read_json(avg / "scores.json")
    assert s["averaged"] == [str(exp / "ckpt" / f"epoch-00{e}.pt") for e in (1, 2)]
    # the same as decoding a checkpoint whose weights are the plain mean of the two epochs'
    a, b = (load_checkpoint(exp / "ckpt" / f"epoch-00{e}.pt") for e in (1, 2))
    assert any(not torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    mean = dict(b)
    mean["model"] = {k: (a["model"][k] + b["model"][k]) / 2 if v.is_floating_point() else v
                     for k, v in b["model"].items()}  # fmt: skip
    save_checkpoint(tmp_path / "mean.pt", mean)
    aics(*decode, tmp_path / "mean.pt")
    m = read_json(exp / "decode_dev_greedy_mean" / "scores.json")
    assert m["loss"] == pytest.approx(s["loss"], rel=1e-5)
    assert (exp / "decode_dev_greedy_mean" / "hyp.txt").read_text() == (avg / "hyp.txt").read_text()
    line = aics.error("asr", "decode", "--exp", exp, "--data", feats, "--ckpt", "last", "--avg", "3")
    assert "last.pt is from epoch 2; average at most 2 epochs" in line
    (exp / "ckpt" / "epoch-001.pt").unlink()
    line = aics.error("asr", "decode", "--exp", exp, "--data", feats, "--ckpt", "last", "--avg", "2")
    assert "has no epoch-001.pt to average; train with train.keep_epochs >= 2" in line


def test_log_probs_do_not_depend_on_the_batch(data, trained):
    from aics.tasks.asr.data import FeatureSet
    from aics.tasks.asr.infer import load_trained, utterance_log_probs

    model, ck = load_trained(trained / "ckpt" / "last.pt")
    ds = FeatureSet(data[1], "train", ck["extra"]["units"])
    alone = {i: lp for i, lp, _ in utterance_log_probs(model, ds, 1, torch.device("cpu"))}
    for i, lp, _ in utterance_log_probs(model, ds, 8, torch.device("cpu")):
        assert lp.shape == alone[i].shape
        gap = float(abs(lp - alone[i]).max())
        assert gap < 1e-4, f"utterance {i}: log-probabilities differ by up to {gap:.3g}"


def test_a_hypothesis_has_single_spaces(data, trained):
    from aics.tasks.asr.data import FeatureSet
    from aics.tasks.asr.infer import evaluate, load_trained

    model, ck = load_trained(trained / "ckpt" / "last.pt")
    units = ck["extra"]["units"]
    ds = FeatureSet(data[1], "test", units)
    ids = [units.index(c) for c in "a  b"]
    out = evaluate(model, ds, units, "char", torch.device("cpu"), decoder=lambda lp: ids)
    assert [r["hyp"] for r in out["hyps"]] == ["a b", "a b"]


# ------------------------------------------------------------------------------------------ learnability
def test_learns_the_training_set(data, tmp_path):
    """Empty output scores CER 100%; 140 steps over the 14 training utterances bring their greedy CER to
    about 60% (learning to spell from a minute of speech takes longer)."""
    exp = tmp_path / "e"
    sets = ["model.channels=[8,8]", "model.convs_per_block=1", "model.hidden=128", "model.dropout=0",
            "specaugment.enabled=false", "train.epochs=20", "train.batch_size=2", "train.lr=1e-2",
            "train.warmup_steps=10", "train.log_every=20"]  # fmt: skip
    train(cfg(*sets), data[1], exp)
    s = decode(exp, data[1], "train", "last")
    assert s["uer"] < 0.8, f"greedy CER {s['uer']:.1%} on the training utterances"
    assert s["utterances"] == 14 and s["unit_counts"]["H"] > 0.3 * s["unit_counts"]["N"]


def test_overfits_a_handful_of_utterances(overfit):
    """Empty output scores CER 100%; 80 steps on two utterances bring their greedy CER to about 38%."""
    s = read_json(overfit / "decode_dev_greedy_last" / "scores.json")
    assert s["uer"] < 0.6, f"greedy CER {s['uer']:.1%} on the utterances it was trained on"
    valid = [r for r in read_jsonl(overfit / "log" / "metrics.jsonl") if r["split"] == "valid"]
    assert valid[-1]["loss"] < valid[0]["loss"] / 2
    assert valid[-1]["uer"] == pytest.approx(s["uer"])  # valid set = training set here


# ------------------------------------------------------------------------------------------ judge
def test_judge_with_the_trained_dfcnn(data, overfit, tmp_path, aics):
    rows = read_jsonl(data[0] / "dev.jsonl")
    (tmp_path / "wav.scp").write_text("".join(f"{r['id']} {r['wav']}\n" for r in rows))
    (tmp_path / "refs.txt").write_text("".join(f"{r['id']}|{r['text']}\n" for r in rows))
    out = tmp_path / "judge"
    args = ["asr", "judge", tmp_path / "wav.scp", "--text", tmp_path / "refs.txt", "--engine", "dfcnn"]
    assert "needs --ckpt" in aics.error(*args, "--out", out)
    printed = aics(*args, "--ckpt", overfit, "--out", out)
    assert printed.startswith(f"{out}: dfcnn WER ") and "on 2 utterances" in printed
    s = read_json(out / "scores.json")
    assert s["engine"] == "dfcnn" and s["n_utts"] == 2 and (out / ".done").is_file()
    # features from the wav in float32 instead of the stored float16 ones: nearly the decode's CER
    decoded = read_json(overfit / "decode_dev_greedy_last" / "scores.json")
    assert abs(s["cer"] - decoded["uer"]) < 0.05 and s["wer"] < 1.0


def test_judge_manifest_with_pocketsphinx(data, tmp_path, aics):
    """pocketsphinx with a word LM of the test sentences judges flite's own recordings nearly error-free
    (measured: WER 0% on the two test utterances)."""
    pytest.importorskip("pocketsphinx")
    out = tmp_path / "judge"
    aics("asr", "judge", "--manifest", data[0] / "test.jsonl", "--out", out)
    s = read_json(out / "scores.json")
    assert s["engine"] == "pocketsphinx" and s["n_utts"] == 2 and s["refs_without_wav"] == 0
    assert s["wer"] < 0.2 and s["cer"] < 0.15
    hyp = dict(line.split(" ", 1) for line in (out / "hyp.txt").read_text().splitlines())
    assert set(hyp) == {r["id"] for r in read_jsonl(data[0] / "test.jsonl")}
