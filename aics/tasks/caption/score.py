"""Stage 4: score a decode against the references; the best and worst captions under each metric.

Usage: aics caption score --decode exp/caption/tf/decode_test_beam3

Reads ``captions.jsonl`` of a decode dir and the split's reference captions from the image cache it was
decoded from, and writes ``<decode>/score/``:

- ``scores.json``: BLEU-1..4, METEOR, ROUGE-L, CIDEr-D, SPICE and SPIDEr (or ``unavailable: <reason>``),
  sacrebleu's BLEU-4 on the same tokens beside the COCO one;
- ``per_image.jsonl``: every image's scores, references and caption;
- ``examples.md`` and ``examples/<metric>_{best,worst}.png``: the images each metric likes most and least,
  with their references and the caption, to set the numbers beside what a reader would judge.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from aics.core.errors import UserError
from aics.core.io import read_json, read_jsonl, write_json, write_jsonl, write_text
from aics.core.report import rows_table
from aics.core.stage import begin_stage, mark_done, require_done
from aics.tasks.caption.metrics import METRICS, coco_scores

SCORES = "scores.json"
EXAMPLE_METRICS = ("BLEU-4", "METEOR", "CIDEr-D", "SPICE")


def score(decode_dir: str | Path, data: str | Path | None = None, corenlp: str | Path | None = None,
          examples: int = 3, overwrite: bool = False) -> dict:  # fmt: skip
    from aics.tasks.caption.data import check_features

    decode_dir = require_done(decode_dir, "decode", "run `aics caption decode` (recipe stage 3) first")
    info = read_json(decode_dir / "decode.json")
    feats = check_features(data or info["data"])
    split = info["split"]
    refs_rows = {r["name"]: r for r in read_jsonl(feats / f"{split}.jsonl")}
    hyps = {r["image"]: r["caption"] for r in read_jsonl(decode_dir / "captions.jsonl")}
    unknown = [n for n in hyps if n not in refs_rows]
    if unknown:
        raise UserError(
            f"{decode_dir / 'captions.jsonl'}: captions {len(unknown)} image(s) that the {split} split of "
            f"{feats} lacks (first: {unknown[0]}); score it against the image cache it was decoded from"
        )
    out = decode_dir / "score"
    params = {"data": str(Path(feats).resolve()), "corenlp": str(corenlp or ""), "examples": examples}
    if not begin_stage(out, overwrite, what="score", params=params):
        return read_json(out / SCORES)
    refs = {n: refs_rows[n]["captions"] for n in hyps}
    result = coco_scores(refs, hyps, corenlp_dir=corenlp)
    overall = result["overall"]
    record = {
        "decode": str(decode_dir), "split": split, "images": len(hyps), "beam": info["beam"],
        "scores": overall,
        "unavailable": {k: f"unavailable: {v}" for k, v in result["unavailable"].items()},
        "sacrebleu_bleu4": result["sacrebleu_bleu4"],
        "bleu4_difference": abs(result["sacrebleu_bleu4"] - overall["BLEU-4"]),
        "images_per_s": info.get("images_per_s"),
    }  # fmt: skip
    tok = result["tokenized"]
    per = [{"image": n, "caption": hyps[n], "tokens": tok["hyps"][n][0], "references": refs[n],
            **result["per_image"][n]} for n in hyps]  # fmt: skip
    write_jsonl(out / "per_image.jsonl", per)
    shown = write_examples(out, per, feats, split, examples)
    record["examples"] = shown
    write_json(out / SCORES, record)
    mark_done(out, params=params)
    return record


def extremes(per: list[dict], metric: str, k: int) -> tuple[list[dict], list[dict]]:
    """The ``k`` best and ``k`` worst images under ``metric`` (ties broken by image name)."""
    rows = sorted((r for r in per if metric in r), key=lambda r: (-r[metric], r["image"]))
    return rows[:k], rows[::-1][:k]


def write_examples(out: Path, per: list[dict], feats: Path, split: str, k: int) -> dict:
    """examples.md and one picture per (metric, best/worst); returns the image names shown."""
    names = [r["name"] for r in read_jsonl(feats / f"{split}.jsonl")]
    index = {n: i for i, n in enumerate(names)}
    images = np.load(feats / f"{split}.npy", mmap_mode="r")
    lines = ["# Best and worst captions under each metric", ""]
    shown: dict[str, dict] = {}
    for metric in EXAMPLE_METRICS:
        if not any(metric in r for r in per):
            continue
        best, worst = extremes(per, metric, k)
        shown[metric] = {"best": [r["image"] for r in best], "worst": [r["image"] for r in worst]}
        for kind, rows in (("best", best), ("worst", worst)):
            lines += [f"## {metric}: {kind}", ""]
            for r in rows:
                others = ", ".join(f"{m} {r[m]:.3f}" for m in METRICS if m in r and m != metric)
                lines += [
                    f"**{r['image']}**: {metric} {r[metric]:.3f} ({others})",
                    "",
                    f"- caption: *{r['caption']}*",
                    *[f"- reference: {c}" for c in r["references"]],
                    "",
                ]
            example_figure([np.asarray(images[index[r["image"]]]) for r in rows], rows, metric,
                           out / "examples" / f"{metric}_{kind}.png")  # fmt: skip
            lines += [f"![{metric} {kind}](examples/{metric}_{kind}.png)", ""]
    write_text(out / "examples.md", "\n".join(lines))
    return shown


def example_figure(images: list[np.ndarray], rows: list[dict], metric: str, path: Path) -> None:
    import textwrap

    from aics.core.plot import pyplot, save_figure

    fig, axes = pyplot().subplots(1, len(rows), figsize=(4.2 * len(rows), 4.6), squeeze=False)
    for ax, img, r in zip(axes[0], images, rows, strict=True):
        ax.imshow(img)
        ax.axis("off")
        refs = "\n".join(textwrap.shorten(c, 46) for c in r["references"][:5])
        ax.set_title(f"{metric} {r[metric]:.3f}\n{textwrap.shorten(r['caption'], 46)}", fontsize=8)
        ax.text(0, -0.02, refs, transform=ax.transAxes, va="top", fontsize=6.5, color="dimgray")
    save_figure(fig, path, dpi=90)


def headline(record: dict) -> str:
    s = record["scores"]
    parts = [f"{m} {100 * s[m]:.2f}" for m in ("BLEU-4", "METEOR", "ROUGE-L", "CIDEr-D", "SPICE", "SPIDEr")
             if m in s]  # fmt: skip
    return ", ".join(parts)


def example_lines(record: dict) -> list[str]:
    """The best and the worst caption under each metric, one line each, from a scored decode."""
    per = {r["image"]: r for r in read_jsonl(Path(record["decode"]) / "score" / "per_image.jsonl")}
    lines = []
    for metric, shown in record.get("examples", {}).items():
        for kind in ("best", "worst"):
            r = per[shown[kind][0]]
            lines.append(f"{metric} {kind}: {r[metric]:.3f} {r['image']}: \"{r['caption']}\" "
                         f"(a reference: \"{r['references'][0]}\")")  # fmt: skip
    return lines


def report(exps: list[str], out: str | None = None) -> str:
    """One row per scored decode of each experiment: its sampling schedule, the decoding, every score (x100)
    and the decoding speed."""
    rows = []
    for exp in map(Path, exps):
        cfg = _config(exp)
        for d in sorted(exp.glob("decode_*/score/" + SCORES)):
            r = read_json(d)
            row = {"experiment": exp.name, "scheduled sampling": cfg.get("sampling", {}).get("schedule", "?"),
                   "decoding": "greedy" if r["beam"] == 1 else f"beam {r['beam']}", "split": r["split"],
                   "images": r["images"]}  # fmt: skip
            for m in METRICS:
                row[m] = 100 * r["scores"][m] if m in r["scores"] else "n/a"
            row["sacreBLEU-4"] = 100 * r["sacrebleu_bleu4"]
            row["images/s"] = r.get("images_per_s")
            rows.append(row)
    if not rows:
        raise UserError(f"no scored decodes under {', '.join(exps)}; run `aics caption score` first")
    text = (
        "Scores x100 (CIDEr-D too); n/a: the scorer could not run (see score/scores.json).\n\n"
        + rows_table(rows)
    )
    if out:
        write_text(out, text)
    return text


def _config(exp: Path) -> dict:
    from aics.core.config import load_yaml

    p = exp / "config.yaml"
    return load_yaml(p) if p.is_file() else {}
