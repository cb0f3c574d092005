"""Predict answer spans with a trained checkpoint, score predictions, compare experiments.

Usage: aics squad eval --ckpt exp/squad/minilm --data data/squad/raw/dev-v1.1.json

A checkpoint carries its tokenizer and feature sizes, so it predicts on any SQuAD v1.1 file by itself.
Decoding follows the reference: per window, the ``n_best`` highest start and end logits; pairs whose start
and end lie in the context, in order, at most ``max_answer_length`` pieces apart, and whose start is in
the window that gives it the most context; the best total logit over all of a question's windows wins.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import torch

from aics.core.ckpt import load_checkpoint, load_weights, require_parts
from aics.core.errors import UserError
from aics.core.io import read_json, write_json, write_text
from aics.core.log import get_logger, progress
from aics.core.report import fmt, markdown_table
from aics.core.runtime import autocast, pick_device
from aics.core.stage import done_info
from aics.tasks.squad.data import Example, build_features, load_json, read_squad
from aics.tasks.squad.metrics import score_files
from aics.tasks.squad.model import BertForQuestionAnswering, BertShape

TASK = "squad"


# ---------------------------------------------------------------------------------------- checkpoints
def load_trained(
    path: str | Path, device: torch.device | str = "cpu"
) -> tuple[BertForQuestionAnswering, dict]:
    path = Path(path)
    ckpt = load_checkpoint(path, map_location="cpu", task=TASK)
    require_parts(ckpt, path)
    extra = ckpt["extra"]
    for key in ("shape", "tokenizer", "features"):
        if key not in extra:
            raise UserError(f"{path}: not a squad checkpoint with its tokenizer (no '{key}'); retrain it")
    model = BertForQuestionAnswering(BertShape(**extra["shape"]))
    load_weights(model, ckpt["model"], path)
    return model.to(device).eval(), ckpt


def checkpoint_tokenizer(ckpt: dict):
    from tokenizers import Tokenizer

    tok = Tokenizer.from_str(ckpt["extra"]["tokenizer"])
    tok.no_truncation()
    tok.no_padding()
    return tok


# ---------------------------------------------------------------------------------------------- logits
@torch.no_grad()
def window_logits(
    model: torch.nn.Module, feats: dict, batch_size: int, device: torch.device, amp: bool = True
) -> tuple[list[np.ndarray], list[np.ndarray], float]:
    """Start and end logits of every window (float32, one array per window, its own length), and the
    windows per second. Windows are batched by length, so little padding is computed."""
    from aics.tasks.squad.data import WindowSet

    windows = WindowSet(feats)
    order = np.argsort(windows.lengths(), kind="stable")
    starts: list = [None] * len(windows)
    ends: list = [None] * len(windows)
    was_training = model.training
    model.eval()
    t0 = time.perf_counter()
    chunks = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    for chunk in progress(chunks, desc="predict", unit="batch"):
        b = windows.collate(chunk.tolist())
        with autocast(device, amp):
            s, e = model(
                b["input_ids"].to(device), b["token_type_ids"].to(device), b["attention_mask"].to(device)
            )
        s, e = s.float().cpu().numpy(), e.float().cpu().numpy()
        lens = b["attention_mask"].sum(1).tolist()
        for r, (i, n) in enumerate(zip(chunk.tolist(), lens, strict=True)):
            starts[i], ends[i] = s[r, :n], e[r, :n]
    if device.type == "cuda":
        torch.cuda.synchronize()
    rate = len(windows) / max(time.perf_counter() - t0, 1e-9)
    model.train(was_training)
    return starts, ends, rate


# ---------------------------------------------------------------------------------------------- decode
def decode(
    feats: dict,
    contexts: list[str],
    starts: list[np.ndarray],
    ends: list[np.ndarray],
    n_best: int = 20,
    max_answer_length: int = 30,
) -> tuple[dict[str, str], dict[str, list[dict]]]:
    """``predictions`` {id: text} and ``nbest`` {id: [{text, probability, start_logit, end_logit}]}."""
    row, cs, ce, mc = feats["row"], feats["char_start"], feats["char_end"], feats["max_context"]
    candidates: list[list[tuple[float, float, float, int, int]]] = [[] for _ in contexts]
    for w, k in enumerate(feats["example"].tolist()):
        lo = row[w]
        s, e = starts[w], ends[w]
        top_s = np.argsort(-s, kind="stable")[:n_best]
        top_e = np.argsort(-e, kind="stable")[:n_best]
        in_ctx = cs[lo : lo + len(s)] >= 0
        ok_start = in_ctx & mc[lo : lo + len(s)]
        i, j = np.meshgrid(top_s, top_e, indexing="ij")  # (n_best, n_best) start x end
        keep = ok_start[i] & in_ctx[j] & (j >= i) & (j - i + 1 <= max_answer_length)
        for a, b in zip(i[keep].tolist(), j[keep].tolist(), strict=True):
            candidates[k].append(
                (float(s[a] + e[b]), float(s[a]), float(e[b]), int(cs[lo + a]), int(ce[lo + b]))
            )
    predictions, nbest = {}, {}
    for k, qid in enumerate(feats["ids"]):
        ranked, seen = [], set()
        for total, sl, el, c0, c1 in sorted(candidates[k], key=lambda c: -c[0]):
            text = contexts[k][c0:c1]
            if text in seen:
                continue
            seen.add(text)
            ranked.append({"text": text, "logit": total, "start_logit": sl, "end_logit": el})
            if len(ranked) == n_best:
                break
        if not ranked:
            ranked = [{"text": "", "logit": 0.0, "start_logit": 0.0, "end_logit": 0.0}]
        top = max(r["logit"] for r in ranked)
        weights = [math.exp(r["logit"] - top) for r in ranked]
        z = sum(weights)
        nbest[qid] = [
            {
                "text": r["text"],
                "probability": w / z,
                "start_logit": r["start_logit"],
                "end_logit": r["end_logit"],
            }
            for r, w in zip(ranked, weights, strict=True)
        ]
        predictions[qid] = ranked[0]["text"]
    return predictions, nbest


def predict_examples(
    model: torch.nn.Module,
    tok,
    examples: list[Example],
    features: dict,
    device: torch.device,
    batch_size: int = 64,
    n_best: int = 20,
    max_answer_length: int = 30,
    amp: bool = True,
) -> tuple[dict, dict, dict]:
    """Windows, logits and decoding for a list of questions: (predictions, nbest, info)."""
    feats = build_features(examples, tok, training=False, **features)
    starts, ends, rate = window_logits(model, feats, batch_size, device, amp)
    preds, nbest = decode(feats, [e.context for e in examples], starts, ends, n_best, max_answer_length)
    return preds, nbest, {"windows": len(starts), "windows_per_s": rate}


# ------------------------------------------------------------------------------------------ commands
def predict(
    ckpt_path: str | Path,
    data_json: str | Path,
    out_dir: str | Path,
    device: str = "auto",
    batch_size: int | None = None,
    n_best: int | None = None,
    max_answer_length: int | None = None,
) -> dict:
    """predictions.json and nbest_predictions.json for every question of ``data_json``."""
    dev = pick_device(device)
    model, ckpt = load_trained(ckpt_path, dev)
    pc = ckpt["config"].get("predict", {})
    examples, _ = read_squad(data_json, need_answers=False)
    tok = checkpoint_tokenizer(ckpt)
    preds, nbest, info = predict_examples(
        model, tok, examples, ckpt["extra"]["features"], dev,
        batch_size=batch_size or pc.get("batch_size", 64), n_best=n_best or pc.get("n_best", 20),
        max_answer_length=max_answer_length or pc.get("max_answer_length", 30),
    )  # fmt: skip
    out = Path(out_dir)
    write_json(out / "predictions.json", preds)
    write_json(out / "nbest_predictions.json", nbest)
    info = {
        "ckpt": str(ckpt_path),
        "data": str(data_json),
        "questions": len(examples),
        **info,
        "parameters": sum(p.numel() for p in model.parameters()),
        "device": str(dev),
    }
    write_json(out / "predict.json", info)
    get_logger().info(f"predicted {len(examples)} questions ({info['windows_per_s']:.1f} windows/s) -> {out}")
    return info


def score(data_json: str | Path, predictions_json: str | Path, out: str | Path | None = None) -> dict:
    """EM/F1 of a predictions file against a SQuAD v1.1 file (the official v1.1 rules), to scores.json
    (``out``, or beside the predictions)."""
    scores = score_files(data_json, predictions_json)
    made_by = Path(predictions_json).parent / "predict.json"  # written by predict(): the model's facts
    if made_by.is_file():
        info = read_json(made_by)
        scores.update({k: info[k] for k in ("ckpt", "windows_per_s", "parameters", "device") if k in info})
    write_json(Path(out) if out else Path(predictions_json).parent / "scores.json", scores)
    return scores


def experiment_of(predictions_json: Path) -> Path | None:
    """The experiment dir when the predictions lie in its ``predict_<ckpt>/<data>/``, else None."""
    run = predictions_json.resolve().parent.parent
    if run.name.startswith("predict_") and (run.parent / "ckpt").is_dir():
        return run.parent
    return None


def eval_checkpoint(
    ckpt_path: str | Path, data_json: str | Path, out_dir: str | Path, device: str = "auto"
) -> dict:
    """Predict with a checkpoint and score: out_dir/{predictions,nbest_predictions,scores}.json."""
    predict(ckpt_path, data_json, out_dir, device)
    return score(data_json, Path(out_dir) / "predictions.json")


def default_out(ckpt_path: Path, data_json: str | Path) -> Path:
    """exp/predict_<ckpt>/<data stem> for a checkpoint inside an experiment, else beside the checkpoint."""
    stem = Path(data_json).name.removesuffix(".json")
    if ckpt_path.parent.name == "ckpt":
        return ckpt_path.parent.parent / f"predict_{ckpt_path.stem}" / stem
    return ckpt_path.parent / f"predict_{ckpt_path.stem}" / stem


# ---------------------------------------------------------------------------------------------- report
def init_name(cfg: dict) -> str:
    model = cfg.get("model", {})
    if cfg.get("distill", {}).get("teacher"):
        return "teacher's layers" if cfg["distill"].get("student_init") == "teacher" else "random"
    if not model.get("init"):
        return "random"
    return Path(model["init"]).name + (" (random weights)" if model.get("random_weights") else "")


def summarise(exp: Path) -> dict | None:
    scores = sorted(exp.glob("predict_*/*/scores.json")) or [p for p in [exp / "scores.json"] if p.is_file()]
    if not scores:
        return None
    s = read_json(scores[0])
    done = done_info(exp)
    cfg = done.get("config", {})
    return {
        "exp": exp.name,
        "init": init_name(cfg) if cfg else "-",
        "teacher": Path(cfg.get("distill", {}).get("teacher", "") or "-").name,
        "parameters": s.get("parameters"),
        "EM": s.get("exact_match"),
        "F1": s.get("f1"),
        "windows/s": s.get("windows_per_s"),
        "train tokens/s": done.get("tokens_per_s"),
        "epochs": done.get("epoch"),
    }


def report(exps: list[str], out: str | None = None) -> str:
    rows = [r for r in (summarise(Path(e)) for e in exps) if r is not None]
    if not rows:
        raise UserError("none of these experiments has predict_*/*/scores.json; run `aics squad eval` first")
    headers = list(rows[0])
    table = markdown_table(headers, [[r[h] for h in headers] for r in rows], digits=2)
    if out:
        write_text(out, table)
        plot_curves([Path(e) for e in exps], rows, Path(out).with_name("curves.png"))
    return table


def plot_curves(exps: list[Path], rows: list[dict], path: Path) -> Path | None:
    """Train loss per step and dev EM / F1 per epoch of every trained experiment, the baselines as lines."""
    from aics.core.plot import save_figure, training_curves

    made = training_curves(exps, [("dev", "em", "dev EM", 1.0), ("dev", "f1", "dev F1", 1.0)])
    if made is None:
        return None
    fig, axes = made
    for row in rows:
        if row["init"] == "-":  # a baseline without training
            for ax, key in zip(axes[1:], ("EM", "F1"), strict=True):
                ax.axhline(row[key], color="black", linestyle="--", linewidth=1, label=row["exp"])
    axes[0].set_yscale("log")
    axes[-1].legend(loc="lower right", fontsize=8)
    return save_figure(fig, path)


def write_results(exp: Path, scores: dict) -> None:
    """exp/scores.json and a RESULTS.md for one experiment."""
    write_json(exp / "scores.json", scores)
    row = summarise(exp)
    lines = ["# SQuAD v1.1 results", "", f"Experiment `{exp}`.", ""]
    if row:
        lines.append(markdown_table(list(row), [[row[h] for h in row]]))
    lines += [
        "",
        f"EM {fmt(scores.get('exact_match'))}, F1 {fmt(scores.get('f1'))} on {scores.get('data')}",
        "",
    ]
    write_text(exp / "RESULTS.md", "\n".join(lines))


# ---------------------------------------------------------------------------------------------- others
def lexical_baseline(data_json: str | Path, out_dir: str | Path) -> dict:
    """The lexical-overlap baseline's predictions and scores on a SQuAD file (the floor to beat)."""
    from aics.tasks.squad.baseline import lexical_predictions

    read_squad(data_json)  # the same checks, and one-line errors, as for a model's predictions
    out = Path(out_dir)
    write_json(out / "predictions.json", lexical_predictions(load_json(Path(data_json))["data"]))
    return score(data_json, out / "predictions.json")


def tokenizer_files(ckpt: dict, out: Path) -> None:
    """tokenizer.json, vocab.txt and tokenizer_config.json of a checkpoint's tokenizer, for transformers."""
    import json

    tok = checkpoint_tokenizer(ckpt)
    spec = json.loads(ckpt["extra"]["tokenizer"])
    lower = bool((spec.get("normalizer") or {}).get("lowercase", False))
    vocab = tok.get_vocab()
    write_text(out / "tokenizer.json", tok.to_str())
    write_text(out / "vocab.txt", "".join(f"{t}\n" for t in sorted(vocab, key=vocab.get)))
    write_json(out / "tokenizer_config.json", {"tokenizer_class": "BertTokenizer", "do_lower_case": lower})


def export(ckpt_path: str | Path, out: str | Path, overwrite: bool = False) -> None:
    """A Hugging Face BertForQuestionAnswering dir from a checkpoint."""
    import tempfile

    from aics.tasks.squad.importer import export_hf

    model, ckpt = load_trained(ckpt_path)
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer_files(ckpt, Path(tmp))
        export_hf(model, BertShape(**ckpt["extra"]["shape"]), tmp, out, overwrite=overwrite)
