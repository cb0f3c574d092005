"""Stage 4: score each system's posteriors; the comparison and the conflict analysis.

Usage: aics avsc score --pred exp/avsc/early/predict_evaluate
       aics avsc report exp/avsc/* -o exp/avsc/RESULTS.md

``score`` writes ``<pred>/score/scores.json`` (log loss, accuracy, per scene, the confusion matrix) and
``confusion.png``. ``report`` compares every scored system of a split: the overall table, accuracy and log
loss per scene, and, for each fusion system, where it beats the better single modality, where audio and
video disagree and which one the fusion follows when they do, written out from the numbers.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from aics.core.errors import UserError
from aics.core.io import read_json, write_json, write_text
from aics.core.report import markdown_table
from aics.core.stage import begin_stage, mark_done, require_done
from aics.tasks.avsc.data import SceneSet, checked_probs
from aics.tasks.avsc.labels import SCENES
from aics.tasks.avsc.metrics import accuracy, class_wise, conflict_analysis, confusion, log_loss

FUSIONS = ("early", "intermediate", "late_mean", "late_weighted")


def score(pred_dir: str | Path, overwrite: bool = False) -> dict:
    pred_dir = require_done(pred_dir, "predict", "run `aics avsc predict` (recipe stage 3) first")
    info = read_json(pred_dir / "predict.json")
    ds = SceneSet(info["data"], info["split"])
    if not (ds.labels >= 0).any():
        raise UserError(f"{pred_dir}: the {info['split']} split has no labels to score against")
    probs = checked_probs(pred_dir, ds)
    out = pred_dir / "score"
    if not begin_stage(out, overwrite, what="score", params={"split": info["split"]}):
        return read_json(out / "scores.json")
    m = confusion(ds.labels, probs, len(SCENES))
    record = {
        "system": info["system"],
        "split": info["split"],
        "clips": int((ds.labels >= 0).sum()),
        "log_loss": log_loss(ds.labels, probs),
        "accuracy": accuracy(ds.labels, probs),
        "class_wise": class_wise(ds.labels, probs, SCENES),
        "confusion": m.tolist(),
    }
    confusion_figure(
        m,
        f"{info['system']} on {info['split']}: accuracy {100 * record['accuracy']:.1f}%, "
        f"log loss {record['log_loss']:.3f}",
        out / "confusion.png",
    )
    write_json(out / "scores.json", record)
    mark_done(out)
    return record


def confusion_figure(m: np.ndarray, title: str, path: Path) -> None:
    from aics.core.plot import pyplot, save_figure

    fig, ax = pyplot().subplots(figsize=(7.5, 6.5), constrained_layout=True)
    share = m / np.maximum(1, m.sum(1, keepdims=True))
    im = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for i in range(m.shape[0]):
        for j in range(m.shape[1]):
            if m[i, j]:
                ax.text(
                    j,
                    i,
                    str(m[i, j]),
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if share[i, j] > 0.5 else "black",
                )
    ax.set_xticks(range(len(SCENES)), SCENES, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(SCENES)), SCENES, fontsize=8)
    ax.set(xlabel="predicted", ylabel="true", title=title)
    fig.colorbar(im, ax=ax, label="share of the true scene's clips")
    save_figure(fig, path, dpi=90)


def _scored(exps: list[str], split: str) -> list[tuple[str, Path, dict]]:
    """(label, experiment, scores) of every scored experiment; the label is the experiment's folder name
    (with its parent's when two share a name), so two runs of one system stay apart."""
    found = []
    for exp in map(Path, exps):
        f = exp / f"predict_{split}" / "score" / "scores.json"
        if f.is_file():
            found.append((exp, read_json(f)))
    names = [e.name for e, _ in found]
    return [(e.name if names.count(e.name) == 1 else f"{e.parent.name}/{e.name}", e, r) for e, r in found]


def report(exps: list[str], out: str | None = None, split: str = "evaluate") -> str:
    """The RESULTS.md text for every scored experiment among ``exps`` on ``split``: single modalities first,
    then the fusions; the conflict analysis of each fusion against the one audio and one video system."""
    found = _scored(exps, split)
    if not found:
        raise UserError(f"no scored {split} predictions under {', '.join(exps)}; run `aics avsc score` first")
    rank = {s: k for k, s in enumerate(("audio", "video", *FUSIONS))}
    found.sort(key=lambda x: (rank.get(x[2]["system"], len(rank)), x[0]))
    labels = [label for label, _, _ in found]
    rec = {label: r for label, _, r in found}
    text = [
        f"Split: {split} ({found[0][2]['clips']} clips). Log loss as DCASE2021 task 1B computes it "
        "(probabilities clipped to 1e-15); lower is better.",
        "",
        markdown_table(
            ["experiment", "system", "log loss", "accuracy %"],
            [
                [lb, rec[lb]["system"], f"{rec[lb]['log_loss']:.3f}", f"{100 * rec[lb]['accuracy']:.1f}"]
                for lb in labels
            ],
        ),  # fmt: skip
        "",
        "Accuracy per scene (%):",
        "",
        markdown_table(
            ["scene", *labels],
            [[c, *(100 * rec[lb]["class_wise"][c]["accuracy"] for lb in labels)] for c in SCENES],
            1,
        ),  # fmt: skip
        "",
        "Log loss per scene:",
        "",
        markdown_table(
            ["scene", *labels],
            [[c, *(rec[lb]["class_wise"][c]["log_loss"] for lb in labels)] for c in SCENES],
            3,
        ),  # fmt: skip
    ]
    single = {m: [(lb, e) for lb, e, r in found if r["system"] == m] for m in ("audio", "video")}
    fusions = [(lb, e, r) for lb, e, r in found if r["system"] in FUSIONS]
    if fusions and all(len(v) == 1 for v in single.values()):
        (_, a_exp), (_, v_exp) = single["audio"][0], single["video"][0]
        info = read_json(a_exp / f"predict_{split}" / "predict.json")
        ds = SceneSet(info["data"], split)
        pa = checked_probs(a_exp / f"predict_{split}", ds)
        pv = checked_probs(v_exp / f"predict_{split}", ds)
        for lb, e, _ in fusions:
            pf = checked_probs(e / f"predict_{split}", ds)
            analysis = conflict_analysis(ds.labels, pa, pv, pf, SCENES)
            write_json(e / f"predict_{split}" / "score" / "conflicts.json", analysis)
            text += ["", f"### Conflicts: {lb}", "", *conflict_text(lb, analysis)]
    elif fusions:
        counts = ", ".join(f"{len(v)} {m}" for m, v in single.items())
        text += [
            "",
            f"(No conflict analysis: it needs exactly one audio and one video system; given {counts}.)",
        ]
    body = "\n".join(text) + "\n"
    if out:
        write_text(out, body)
    return body


def conflict_text(system: str, a: dict) -> list[str]:
    """The conflict analysis in sentences and a table, from the numbers."""
    o = a["overall"]
    lines = []
    if o.get("disagree"):
        w = o["when_disagree"]
        lines.append(
            f"Audio and video disagree on {o['disagree']} of {o['clips']} clips "
            f"({100 * o['disagree_share']:.1f}%). There {system} follows audio "
            f"{100 * w['follows_audio']:.0f}% of the time, video "
            f"{100 * w['follows_video']:.0f}%, neither {100 * w['follows_neither']:.0f}%; it is right on "
            f"{100 * w['fused_right']:.0f}% of them, audio on {100 * w['audio_right']:.0f}%, video on "
            f"{100 * w['video_right']:.0f}%."
        )
    gains = sorted(
        ((c, v["fusion_gain"]) for c, v in a["per_class"].items() if v["clips"]), key=lambda x: -x[1]
    )
    better = [f"{c} (+{100 * g:.1f})" for c, g in gains if g > 0]
    worse = [f"{c} ({100 * g:.1f})" for c, g in gains if g < 0]
    lines.append(
        f"{system} beats the better single modality on {len(better)} scene{'' if len(better) == 1 else 's'}"
        + (f": {', '.join(better)}" if better else "")
        + "; "
        + (f"it falls behind it on {', '.join(worse)}." if worse else "it is never behind it.")
    )
    rows = []
    for c, v in a["per_class"].items():
        if not v["clips"]:
            continue
        w = v.get("when_disagree", {})
        rows.append(
            [
                c,
                v["clips"],
                100 * v["accuracy"]["audio"],
                100 * v["accuracy"]["video"],
                100 * v["accuracy"]["fused"],
                100 * v["fusion_gain"],
                100 * v["disagree_share"],
                100 * w["follows_audio"] if w else None,
                100 * w["follows_video"] if w else None,
            ]
        )
    lines += [
        "",
        markdown_table(
            [
                "scene",
                "clips",
                "audio %",
                "video %",
                f"{system} %",
                "gain",
                "disagree %",
                "follows audio %",
                "follows video %",
            ],
            rows,
            1,
        ),
    ]
    return lines
