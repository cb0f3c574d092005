"""Decode a subset with a trained DFCNN and score it; transcribe wavs; compare experiments.

Usage: aics asr decode --exp exp/asr/dfcnn --data data/asr/feats --subset test --method beam --lm lm.arpa

``decode`` writes ``<exp>/decode_<subset>_<tag>/`` with ``hyp.txt`` and ``ref.txt`` (``id text``, Kaldi's
layout), ``per_utt.jsonl`` (reference, hypothesis and error counts per utterance) and ``scores.json``: the
unit error rate (CER for characters, syllable error rate for pinyin), WER for English, and the counts of
substitutions, deletions and insertions. The tag names the method: ``greedy``, ``beam10``, ``beam10_lm``.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from aics.core.ckpt import load_checkpoint, load_weights, require_parts
from aics.core.errors import UserError
from aics.core.io import read_json, write_json, write_jsonl, write_text
from aics.core.log import get_logger, progress
from aics.core.paths import resolve_checkpoint as resolve_ckpt
from aics.core.report import rows_table
from aics.tasks.asr.data import Collate, FeatureSet, features_of, units_text
from aics.tasks.asr.metrics import edit_ops
from aics.tasks.asr.model import BLANK, DFCNN, build_model

TASK = "asr"
UER_NAME = {"char": "CER", "pinyin": "SylER"}  # syllable error rate for tonal pinyin


def load_trained(path: str | Path, device: torch.device | str = "cpu") -> tuple[DFCNN, dict]:
    from aics.core.config import from_dict
    from aics.tasks.asr.config import ModelConfig

    path = Path(path)
    ckpt = load_checkpoint(path, map_location="cpu", task=TASK)
    require_parts(ckpt, path)
    extra = ckpt["extra"]
    for key in ("units", "unit_kind", "features", "dim"):
        if key not in extra:
            raise UserError(f"{path}: not an asr checkpoint (no '{key}'); retrain it with `aics asr train`")
    mc = from_dict(ModelConfig, ckpt["config"]["model"], f"{path}: config.model")
    model = build_model(mc, extra["dim"], len(extra["units"]))
    load_weights(model, ckpt["model"], path)
    return model.to(device).eval(), ckpt


# ---------------------------------------------------------------------------------------------- decoding
@torch.no_grad()
def utterance_log_probs(model: DFCNN, ds: FeatureSet, batch_size: int, device: torch.device):
    """Yields (position in ds, log-probabilities (T', V) float32 numpy, CTC loss or nan) for every
    utterance, in batches of similar length."""
    model.eval()
    pad = Collate()  # no SpecAugment
    order = sorted(range(len(ds)), key=lambda i: ds.lengths[ds.keep[i]])
    for lo in range(0, len(order), batch_size):
        feats, lengths, targets, target_lengths, _ = pad([ds.item(i) for i in order[lo : lo + batch_size]])
        logits, out_lens = model(feats.to(device), lengths.to(device))
        log_probs = F.log_softmax(logits.float(), dim=-1)  # (B, T', V)
        losses = F.ctc_loss(
            log_probs.transpose(0, 1), targets.to(device), out_lens, target_lengths.to(device), blank=BLANK,
            reduction="none",
        ).cpu()  # fmt: skip
        lp = log_probs.cpu().numpy()
        for b, i in enumerate(order[lo : lo + batch_size]):
            loss = float(losses[b])
            yield i, lp[b, : int(out_lens[b])], loss if math.isfinite(loss) else math.nan


def make_decoder(method: str = "greedy", beam: int = 10, lm=None, lm_weight: float = 0.5, bonus: float = 0.0,
                 units: list[str] | None = None):  # fmt: skip
    """A function from log-probabilities (T', V) to unit ids."""
    from aics.tasks.asr import ctc

    if method == "greedy":
        return lambda lp: ctc.greedy_decode(lp, blank=BLANK)
    space = units.index(" ") if units and " " in units else None
    # with an LM every unit could start a prefix: the frame's likeliest 2 x beam are enough in practice
    top_k = max(20, 2 * beam) if lm is not None else None

    def run(lp):
        nbest = ctc.prefix_beam_search(
            lp, beam=beam, blank=BLANK, lm=lm, lm_weight=lm_weight, word_bonus=bonus, space_id=space,
            units=units, top_k=top_k,
        )  # fmt: skip
        return nbest[0][0] if nbest else []

    return run


def counts(ref: list[str], hyp: list[str]) -> dict[str, int]:
    s, d, i, h = edit_ops(ref, hyp)
    return {"S": s, "D": d, "I": i, "H": h, "N": len(ref)}


def evaluate(model: DFCNN, ds: FeatureSet, units: list[str], kind: str, device, batch_size: int = 32,
             decoder=None, show_progress: bool = False) -> dict:  # fmt: skip
    """Loss, unit error rate and (English) WER of a subset; ``hyps`` holds one record per utterance."""
    decoder = decoder or make_decoder("greedy")
    records, losses = [], []
    uer = {"S": 0, "D": 0, "I": 0, "H": 0, "N": 0}
    wer = dict(uer)
    bar = progress(total=len(ds), desc="decode", enabled=show_progress)
    for i, lp, loss in utterance_log_probs(model, ds, batch_size, device):
        row = ds.rows[ds.keep[i]]
        ref_units, hyp_units = row["units"], [units[k] for k in decoder(lp)]
        ref, hyp = units_text(ref_units, kind), units_text(hyp_units, kind)
        c = counts(ref_units if kind == "pinyin" else list(ref), hyp_units if kind == "pinyin" else list(hyp))
        rec = {"id": row["id"], "speaker": row.get("speaker", ""), "ref": ref, "hyp": hyp, "unit_errors": c}
        for k in uer:
            uer[k] += c[k]
        if kind == "char":
            w = counts(ref.split(), hyp.split())
            rec["word_errors"] = w
            for k in wer:
                wer[k] += w[k]
        records.append(rec)
        if not math.isnan(loss):
            losses.append(loss)
        bar.update(1)
    bar.close()
    records.sort(key=lambda r: r["id"])
    out = {
        "utterances": len(records),
        "loss": float(np.mean(losses)) if losses else math.nan,
        "uer_name": UER_NAME[kind],
        "uer": (uer["S"] + uer["D"] + uer["I"]) / max(1, uer["N"]),
        "unit_counts": uer,
        "hyps": records,
    }
    if kind == "char":
        out["wer"] = (wer["S"] + wer["D"] + wer["I"]) / max(1, wer["N"])
        out["word_counts"] = wer
        out["sentence_error_rate"] = sum(r["ref"] != r["hyp"] for r in records) / max(1, len(records))
    return out


def decode_tag(method: str, beam: int, lm: str = "", lm_weight: float = 0.5, bonus: float = 0.0,
               ckpt: str = "best", average: int = 1) -> str:  # fmt: skip
    """The name of a decode's directory, from every setting that changes its result:
    ``greedy``, ``beam10``, ``beam10_lm-char5_w0.5``, ``beam10_lm-word3_w1_b2_last``, ``greedy_avg5``."""
    tag = "greedy" if method == "greedy" else f"beam{beam}"
    if method == "beam" and lm:
        tag += f"_lm-{Path(lm).stem}_w{lm_weight:g}"
    if method == "beam" and bonus:
        tag += f"_b{bonus:g}"
    if ckpt != "best":
        tag += f"_{Path(ckpt).stem}"
    if average > 1:
        tag += f"_avg{average}"
    return tag


def averaged(exp: Path, ck: dict, path: Path, average: int) -> tuple[dict, list[Path]]:
    """The weights of ``average`` epochs ending at checkpoint ``ck``'s epoch, averaged, and their files."""
    from aics.core.ckpt import CheckpointDir, average_weights

    last = ck.get("epoch")
    if not isinstance(last, int) or ck.get("batch_in_epoch"):
        raise UserError(f"{path}: was not saved at the end of an epoch; average from best, last or epoch-NNN")
    if average > last:
        raise UserError(f"--avg {average}: {path} is from epoch {last}; average at most {last} epochs")
    ckpts = CheckpointDir(exp)
    files = [ckpts.epoch_path(e) for e in range(last - average + 1, last + 1)]
    missing = [f.name for f in files if not f.is_file()]
    if missing:
        raise UserError(
            f"{ckpts.dir}: has no {', '.join(missing)} to average; train with train.keep_epochs >= "
            f"{average} (or 0: all), or use a smaller --avg"
        )
    states = [ck["model"] if f.samefile(path) else load_checkpoint(f, task=TASK)["model"] for f in files]
    return average_weights(states, files), files


def decode(
    exp: str | Path,
    feats_dir: str | Path,
    subset: str = "test",
    ckpt: str = "best",
    method: str = "greedy",
    beam: int = 10,
    lm: str = "",
    lm_weight: float = 0.5,
    bonus: float = 0.0,
    batch_size: int = 32,
    device: str = "auto",
    tag: str = "",
    average: int = 1,
) -> dict:
    """Decode ``subset`` with ``exp``'s checkpoint (or the mean of the weights of the ``average`` epochs
    that end at its epoch) and score it; returns the scores."""
    from aics.core.paths import existing_checkpoint
    from aics.core.runtime import pick_device
    from aics.tasks.asr.data import check_features

    exp, feats_dir = Path(exp), check_features(feats_dir)
    path = existing_checkpoint(exp, ckpt)
    dev = pick_device(device)
    model, ck = load_trained(path, dev)
    extra = ck["extra"]
    info = read_json(feats_dir / "features.json")
    if info["features"] != extra["features"]:
        raise UserError(
            f"{feats_dir}: its features ({info['features']}) differ from those {path} was trained on "
            f"({extra['features']}); compute features with the checkpoint's settings"
        )
    units, kind = extra["units"], extra["unit_kind"]
    from aics.tasks.asr.data import read_units

    if read_units(feats_dir / "units.txt") != units:
        raise UserError(
            f"{feats_dir}/units.txt: differs from the units {path} was trained with; use its data"
        )
    files = [path]
    if average > 1:  # once the data is known to fit: it reads `average` checkpoints
        weights, files = averaged(exp, ck, path, average)
        load_weights(model, weights, files[-1])
    ngram = None
    if lm:
        from aics.tasks.asr.ngram import read_arpa

        ngram = read_arpa(lm)
    ds = FeatureSet(feats_dir, subset, units)
    decoder = make_decoder(method, beam, ngram, lm_weight, bonus, units)
    t0 = time.perf_counter()
    result = evaluate(model, ds, units, kind, dev, batch_size, decoder, show_progress=True)
    seconds = time.perf_counter() - t0
    out = exp / f"decode_{subset}_{tag or decode_tag(method, beam, lm, lm_weight, bonus, ckpt, average)}"
    out.mkdir(parents=True, exist_ok=True)
    hyps = result.pop("hyps")
    write_text(out / "hyp.txt", "".join(f"{r['id']} {r['hyp']}\n" for r in hyps))
    write_text(out / "ref.txt", "".join(f"{r['id']} {r['ref']}\n" for r in hyps))
    write_jsonl(out / "per_utt.jsonl", hyps)
    audio_s = float(ds.lengths[ds.keep].sum()) * extra["features"]["hop"] / extra["features"]["sample_rate"]
    scores = {
        **result,
        "subset": subset,
        "checkpoint": str(path),
        "epoch": ck.get("epoch"),
        "averaged": [str(f) for f in files] if average > 1 else None,
        "method": method,
        "beam": beam if method == "beam" else None,
        "lm": lm or None,
        "lm_weight": lm_weight if lm else None,
        "bonus": bonus if method == "beam" else None,
        "decode_seconds": round(seconds, 2),
        "real_time_factor": round(seconds / max(audio_s, 1e-9), 4),
        "per_speaker": per_speaker(hyps),
    }
    write_json(out / "scores.json", scores)
    get_logger().info(f"{out}: {summary(scores)}")
    return scores


def per_speaker(hyps: list[dict]) -> dict:
    """The unit error rate of each speaker (a held-out voice shows here)."""
    out: dict[str, dict] = {}
    for r in hyps:
        s = out.setdefault(r.get("speaker", ""), {"errors": 0, "n": 0, "utterances": 0})
        c = r["unit_errors"]
        s["errors"] += c["S"] + c["D"] + c["I"]
        s["n"] += c["N"]
        s["utterances"] += 1
    return {
        k: {"uer": v["errors"] / max(1, v["n"]), "utterances": v["utterances"]}
        for k, v in sorted(out.items())
    }


def summary(s: dict) -> str:
    parts = [f"{s['uer_name']} {100 * s['uer']:.2f}%"]
    if s.get("wer") is not None:
        parts.append(f"WER {100 * s['wer']:.2f}%")
    parts.append(f"{s['utterances']} utterances")
    return ", ".join(parts)


# ---------------------------------------------------------------------------------------------- wavs
def transcriber(ckpt: str | Path, device: str = "auto", method: str = "greedy", beam: int = 10, lm: str = "",
                lm_weight: float = 0.5, bonus: float = 0.0):  # fmt: skip
    """A function from wav paths to transcripts with a trained DFCNN (the judge's second engine)."""
    from aics.core.audio import read_wav
    from aics.core.runtime import pick_device

    dev = pick_device(device)
    model, ck = load_trained(resolve_ckpt(ckpt), dev)
    extra = ck["extra"]
    units, kind, fc = extra["units"], extra["unit_kind"], extra["features"]
    ngram = None
    if lm:
        from aics.tasks.asr.ngram import read_arpa

        ngram = read_arpa(lm)
    decoder = make_decoder(method, beam, ngram, lm_weight, bonus, units)

    @torch.no_grad()
    def run(paths: list[Path]) -> list[str]:
        out = []
        for p in paths:
            wav, _ = read_wav(p, sr=fc["sample_rate"])
            x = features_of(wav, fc).unsqueeze(0).to(dev)
            logits = model(x)
            lp = F.log_softmax(logits.float(), -1)[0].cpu().numpy()
            out.append(units_text([units[k] for k in decoder(lp)], kind))
        return out

    return run


# ---------------------------------------------------------------------------------------------- report
def summarise(exp: Path) -> list[dict]:
    rows = []
    for s in sorted(exp.glob("decode_*/scores.json")):
        sc = read_json(s)
        rows.append({
            "experiment": exp.name,
            "decode": s.parent.name.removeprefix("decode_"),
            "epoch": sc.get("epoch"),
            "utts": sc["utterances"],
            sc["uer_name"] + " %": 100 * sc["uer"],
            "WER %": 100 * sc["wer"] if sc.get("wer") is not None else "",
            "RTF": sc.get("real_time_factor"),
        })  # fmt: skip
    for s in sorted(exp.glob("judge_*/scores.json")):
        sc = read_json(s)
        rows.append({
            "experiment": exp.name,
            "decode": s.parent.name,
            "epoch": "",
            "utts": sc["n_utts"],
            "CER %": 100 * sc["cer"],
            "WER %": 100 * sc["wer"],
            "RTF": 1 / sc["x_real_time"] if sc.get("x_real_time") else "",
        })  # fmt: skip
    return rows


def report(exps: list[str], out: str | None = None) -> str:
    rows = [r for e in exps for r in summarise(Path(e))]
    if not rows:
        raise UserError(
            "none of these experiments has decode_*/scores.json or judge_*/scores.json; run `aics asr decode`"
        )
    table = rows_table(rows)
    if out:
        write_text(out, table)
        plot_curves([Path(e) for e in exps], Path(out).with_name("curves.png"))
    return table


def plot_curves(exps: list[Path], path: Path) -> Path | None:
    """Train and valid CTC loss, and the valid unit error rate per epoch of every trained experiment."""
    from aics.core.plot import save_training_curves

    panels = [("valid", "loss", "valid CTC loss", 1.0), ("valid", "uer", "valid unit error rate (%)", 100.0)]
    return save_training_curves(exps, panels, path, train_title="train CTC loss")
