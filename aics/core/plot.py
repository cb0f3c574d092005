"""Matplotlib figures written atomically as PNG (headless Agg backend; imported only when plotting)."""

from __future__ import annotations

import io
from pathlib import Path


def pyplot():
    """matplotlib.pyplot on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: str | Path, dpi: int = 120) -> Path:
    from aics.core.io import atomic_write

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    pyplot().close(fig)
    with atomic_write(path, "wb") as f:
        f.write(buf.getvalue())
    return Path(path)


def save_training_curves(
    exps: list[Path], panels: list[tuple[str, str, str, float]], path: str | Path, train_title: str
) -> Path | None:
    """``training_curves`` with a legend on every panel that has lines, saved to ``path`` (None when no
    experiment has a ``log/metrics.jsonl``)."""
    made = training_curves(exps, panels, train_title=train_title)
    if made is None:
        return None
    fig, axes = made
    for ax in axes:
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    return save_figure(fig, path)


def training_curves(
    exps: list[Path], panels: list[tuple[str, str, str, float]], train_title: str = "train loss"
):
    """The train loss per step, then one panel per ``(split, key, title, scale)`` per epoch, of every
    experiment in ``exps`` with a ``log/metrics.jsonl``: ``(fig, axes)``, or None when none has one."""
    from aics.core.io import read_jsonl

    trained = [Path(e) for e in exps if (Path(e) / "log" / "metrics.jsonl").is_file()]
    if not trained:
        return None
    fig, axes = pyplot().subplots(1, 1 + len(panels), figsize=(5 * (1 + len(panels)), 4.2))
    for exp in trained:
        records = read_jsonl(exp / "log" / "metrics.jsonl")
        train = [(r["step"], r["loss"]) for r in records if r["split"] == "train"]
        if train:
            axes[0].plot(*zip(*train, strict=True), label=exp.name, linewidth=1)
        for ax, (split, key, _, scale) in zip(axes[1:], panels, strict=True):
            points = [(r["epoch"], scale * r[key]) for r in records if r["split"] == split and key in r]
            if points:
                ax.plot(*zip(*points, strict=True), marker="o", label=exp.name)
    for ax, title in zip(axes, (train_title, *(p[2] for p in panels)), strict=True):
        ax.set_title(title)
        ax.set_xlabel("step" if ax is axes[0] else "epoch")
        ax.grid(True, alpha=0.3)
    return fig, axes
