"""Stage 4: score predicted events against the strong labels.

Usage: aics sed score --pred exp/sed/crnn_cpu/predict_eval_best --data data/sed/feats

Reads a predict dir (``aics sed predict``: events.tsv, tags.tsv, probs.npz, predict.json) and the split's
strong labels from the features dir, and writes in ``<pred>/score/``:

- ``scores.json``: event-based (DCASE2018: 200 ms onset collar, offset collar max(200 ms, 20 % of the
  event), macro over classes first), segment-based (1 s) and clip tagging scores, overall and per class,
  with the exact clip list's size and SHA-256 and the post-processing used;
- ``RESULTS.md``: the headline numbers and the per-class table;
- ``clips/<name>.png``: a few clips' log-mel with the reference and predicted events and the frame
  probabilities beneath.

``score_events`` scores any DCASE event list against any strong metadata file (``aics sed score --est
events.tsv --ref metadata/eval/eval.csv``), no model needed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from aics.core.errors import UserError
from aics.core.io import read_json, write_json, write_text
from aics.core.report import markdown_table, rows_table
from aics.core.stage import begin_stage, mark_done, require_done
from aics.tasks.sed.data import SedSet, check_features, clip_list_hash
from aics.tasks.sed.infer import headline, read_events
from aics.tasks.sed.labels import CLASSES

SCORES = "scores.json"


def score_events(reference: dict, estimated: dict, files: list[str], tags: dict | None = None) -> dict:
    """Every score of ``estimated`` against ``reference`` over the clips ``files``; tagging scores ``tags``
    (the clip head's decisions) when given, else the classes of each clip's events."""
    from aics.tasks.sed.metrics import evaluate_all

    unknown = sorted(set(estimated) - set(files))
    if unknown:
        raise UserError(
            f"the predicted events name {len(unknown)} clip(s) that are not in the reference ({unknown[0]}, "
            "...); score the split they were predicted for"
        )
    scores = evaluate_all(reference, estimated, CLASSES, files=files, estimated_tags=tags)
    return {
        "headline": headline(scores),
        "tags_from": "clip head" if tags is not None else "events",
        "clips": len(files),
        "clip_list_sha256": clip_list_hash(files),
        **scores,
    }


def read_tags(path: Path) -> dict[str, set[str]]:
    """``tags.tsv`` as ``aics sed predict`` writes it: filename -> the clip head's tags."""
    rows = path.read_text(encoding="utf-8").splitlines()[1:]
    return {n: {t for t in tags.split(",") if t} for n, _, tags in (r.partition("\t") for r in rows)}


def per_class_rows(scores: dict) -> list[list]:
    ev, seg, tag = (
        scores["event_based"]["class_wise"],
        scores["segment_based"]["class_wise"],
        scores["tagging"],
    )
    rows = []
    for c in CLASSES:
        e = ev[c]
        rows.append([c, int(e["Nref"]), int(e["Nsys"]), _pct(e["f_measure"]), _pct(e["precision"]),
                     _pct(e["recall"]), _pct(seg[c]["f_measure"]),
                     _pct(tag["class_wise"][c]["f_measure"])])  # fmt: skip
    return rows


def _pct(x) -> float | None:
    return None if x is None or (isinstance(x, float) and np.isnan(x)) else 100 * float(x)


def results_markdown(scores: dict, title: str, note: str = "") -> str:
    h = scores["headline"]
    head = markdown_table(
        ["clips", "event F1 % (macro)", "event F1 % (micro)", "event ER", "segment F1 %", "segment ER",
         "tagging F1 %"],
        [[scores["clips"], _pct(h["event_f1"]), _pct(h["event_f1_micro"]), h["event_er"],
          _pct(h["segment_f1"]), h["segment_er"], _pct(h["tag_f1"])]],
    )  # fmt: skip
    table = markdown_table(
        ["class", "ref events", "sys events", "event F1 %", "event P %", "event R %", "segment F1 %",
         "tagging F1 %"],
        per_class_rows(scores),
    )  # fmt: skip
    return (
        f"# {title}\n\n{note}{head}\nF1 in %, error rates as fractions. Event-based: sed_eval's DCASE2018 "
        "settings (200 ms onset collar, offset collar max(200 ms, 20 % of the event)); segment-based: 1 s "
        f"segments; tagging: clip-level tags (from the {scores['tags_from']}). Clip list SHA-256 "
        f"`{scores['clip_list_sha256']}`.\n\n"
        f"## Per class\n\n{table}"
    )


def plot_clip(path: Path, feats: np.ndarray, frame_probs: np.ndarray, frame_seconds: float, reference: list,
              estimated: list, title: str) -> None:  # fmt: skip
    """Log-mel (T, D), reference and predicted events as bars per class, frame probabilities (T, C)."""
    from aics.core.plot import pyplot, save_figure

    plt = pyplot()
    T = feats.shape[0]
    seconds = (T - 0.5) * frame_seconds
    fig, axes = plt.subplots(3, 1, figsize=(11, 8), sharex=True, gridspec_kw={"height_ratios": [2, 2, 1.5]})
    axes[0].imshow(
        feats.T,
        origin="lower",
        aspect="auto",
        extent=(-frame_seconds / 2, seconds, 0, feats.shape[1]),
        cmap="magma",
    )
    axes[0].set_ylabel("mel band")
    axes[0].set_title(title)
    for row, label in enumerate(CLASSES):
        for on, off, lab in reference:
            if lab == label:
                axes[1].barh(row + 0.2, off - on, left=on, height=0.35, color="tab:green")
        for on, off, lab in estimated:
            if lab == label:
                axes[1].barh(row - 0.2, off - on, left=on, height=0.35, color="tab:orange")
    from matplotlib.patches import Patch

    axes[1].set_yticks(range(len(CLASSES)), CLASSES, fontsize=7)
    axes[1].set_ylim(-0.6, len(CLASSES) - 0.4)
    handles = [Patch(color="tab:green", label="reference"), Patch(color="tab:orange", label="predicted")]
    axes[1].legend(handles=handles, loc="upper right", fontsize=7)
    axes[1].grid(True, axis="x", alpha=0.3)
    t = np.arange(T) * frame_seconds  # frame centres
    present = sorted({lab for *_, lab in reference} | {lab for *_, lab in estimated}, key=CLASSES.index)
    for label in present:
        axes[2].plot(t, frame_probs[:, CLASSES.index(label)], label=label, linewidth=1)
    axes[2].set_ylim(0, 1)
    axes[2].set_ylabel("frame probability")
    axes[2].set_xlabel("seconds")
    if present:
        axes[2].legend(loc="upper right", fontsize=7)
    save_figure(fig, path)


def score_prediction(
    pred_dir: str | Path, feats_dir: str | Path, plots: int = 3, overwrite: bool = False
) -> dict:
    """Stage 4 on a predict dir -> ``<pred>/score/``."""
    pred = require_done(pred_dir, "predict", "run `aics sed predict` (recipe stage 3) first")
    feats_dir = check_features(feats_dir)
    info = read_json(pred / "predict.json")
    ds = SedSet(feats_dir, info["split"])
    if ds.kind != "strong":
        raise UserError(f"{feats_dir}: split {info['split']!r} has no strong labels to score against")
    names = ds.filenames()
    if clip_list_hash(names) != info["clip_list_sha256"]:
        raise UserError(
            f"{pred}: was predicted on other clips than {feats_dir}'s {info['split']} split; score it with "
            f"the features dir it was predicted from ({info['features']})"
        )
    estimated, _ = read_events(pred / "events.tsv")
    scores = score_events(ds.events(), estimated, names, read_tags(pred / "tags.tsv"))
    out = pred / "score"
    params = {"pred": str(pred.resolve()), "data": str(feats_dir.resolve())}
    if not begin_stage(out, overwrite, what="score", params=params):
        return read_json(out / SCORES)
    scores.update(split=info["split"], ckpt=info["ckpt"], epoch=info.get("epoch"), post=info["post"])
    write_json(out / SCORES, scores)
    title = f"Sound event detection: {Path(info['ckpt']).parent.parent.name}, {info['split']} split"
    note = f"Checkpoint `{info['ckpt']}` (epoch {info.get('epoch')}); post-processing {info['post']}.\n\n"
    write_text(out / "RESULTS.md", results_markdown(scores, title, note))
    if plots:
        probs = np.load(pred / "probs.npz", allow_pickle=False)
        busiest = sorted(range(len(names)), key=lambda i: (-len(ds.rows[i]["events"]), names[i]))[:plots]
        for i in busiest:
            plot_clip(out / "clips" / f"{Path(names[i]).stem}.png", np.asarray(ds.feats[i], np.float32),
                      probs["frame"][i].astype(np.float32), ds.frame_seconds, ds.rows[i]["events"],
                      estimated.get(names[i], []), names[i])  # fmt: skip
    mark_done(out, {"event_f1": scores["headline"]["event_f1"]}, params=params)
    return scores


def score_files(
    est: str | Path, ref: str | Path, out: str | Path | None = None, overwrite: bool = False
) -> dict:
    """Score a DCASE event list against a strong metadata file (all the reference's clips); with ``out``,
    write ``scores.json`` and ``RESULTS.md`` there as a stage."""
    for path in (est, ref):
        if not Path(path).is_file():
            raise UserError(f"{path}: no such event list")
    reference, files = read_events(ref)
    estimated, _ = read_events(est)
    scores = score_events(reference, estimated, files)
    params = {"est": str(Path(est).resolve()), "ref": str(Path(ref).resolve())}
    if out and begin_stage(out, overwrite, what="score", params=params):
        write_json(Path(out) / SCORES, scores)
        write_text(Path(out) / "RESULTS.md", results_markdown(scores, f"Sound event detection: {est}"))
        mark_done(out, {"event_f1": scores["headline"]["event_f1"]}, params=params)
    return scores


def summarise(exp: Path) -> list[dict]:
    """One row per scored prediction of an experiment."""
    rows = []
    for path in sorted(exp.glob(f"predict_*/score/{SCORES}")):
        s = read_json(path)
        h = s["headline"]
        rows.append({"experiment": exp.name, "split": s["split"], "clips": s["clips"],
                     "epoch": s.get("epoch"),
                     "event F1 %": _pct(h["event_f1"]), "event ER": h["event_er"],
                     "segment F1 %": _pct(h["segment_f1"]), "segment ER": h["segment_er"],
                     "tagging F1 %": _pct(h["tag_f1"])})  # fmt: skip
    return rows


def report(exps: list[str], out: str | None = None) -> str:
    """Compare experiments (pooling heads, augmentation, depth): their scored predictions, and curves."""
    rows = [r for e in exps for r in summarise(Path(e))]
    if not rows:
        raise UserError("none of these experiments has predict_*/score/scores.json; run `aics sed score`")
    table = rows_table(rows)
    if out:
        write_text(out, table)
        plot_curves([Path(e) for e in exps], Path(out).with_name("curves.png"))
    return table


def plot_curves(exps: list[Path], path: Path) -> Path | None:
    """Train loss per step; valid clip BCE and event / tagging F1 per epoch of every experiment."""
    from aics.core.plot import save_training_curves

    panels = [("valid", "loss", "valid clip BCE", 1.0), ("valid", "event_f1", "valid event F1 (%)", 100.0),
              ("valid", "tag_f1", "valid tagging F1 (%)", 100.0)]  # fmt: skip
    return save_training_curves(exps, panels, path, train_title="train clip BCE")
