"""Pictures for a training run: a grid of a batch with its boxes, and the statistics of the labels."""

from __future__ import annotations

import colorsys
import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from aics.core.io import atomic_write
from aics.tasks.detect.labels import Sample


def class_color(k: int) -> tuple[int, int, int]:
    """A distinct, saturated RGB colour per class index (hues spread by the golden ratio)."""
    r, g, b = colorsys.hsv_to_rgb((k * 0.618033988749895 + 0.07) % 1.0, 0.85, 0.95)
    return int(r * 255), int(g * 255), int(b * 255)


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def plot_batch(
    imgs,
    targets,
    paths: Sequence[str],
    names: Sequence[str],
    path: str | os.PathLike,
    max_images: int = 16,
    max_side: int = 1920,
    conf_thres: float = 0.25,
) -> Path:
    """A PNG grid of the first ``max_images`` images of a batch with their boxes and class names.

    ``imgs`` (B, 3, H, W) uint8 (or float in [0, 1]); ``targets`` (N, 6) ``[index, cls, cx, cy, w, h]``
    normalised (or in pixels), or (N, 7) with a confidence last (predictions: drawn when >= conf_thres).
    """
    imgs = imgs.detach().cpu().float().numpy() if isinstance(imgs, torch.Tensor) else np.asarray(imgs, float)
    targets = targets.detach().cpu().numpy() if isinstance(targets, torch.Tensor) else np.asarray(targets)
    if imgs.max(initial=0) <= 1.0:
        imgs = imgs * 255
    bs = min(len(imgs), max_images)
    _, _, h, w = imgs.shape
    grid = max(1, math.ceil(math.sqrt(bs)))
    canvas = np.full((grid * h, grid * w, 3), 255, dtype=np.uint8)
    for k in range(bs):
        r, c = divmod(k, grid)
        canvas[r * h : (r + 1) * h, c * w : (c + 1) * w] = imgs[k].transpose(1, 2, 0).clip(0, 255)
    scale = min(1.0, max_side / max(canvas.shape[:2]))
    im = Image.fromarray(canvas)
    if scale < 1:
        im = im.resize((round(canvas.shape[1] * scale), round(canvas.shape[0] * scale)), Image.Resampling.BOX)
    draw = ImageDraw.Draw(im)
    sw, sh = w * scale, h * scale
    font = _font(max(10, round(sh / 25)))
    for k in range(bs):
        r, c = divmod(k, grid)
        x0, y0 = c * sw, r * sh
        draw.rectangle((x0, y0, x0 + sw - 1, y0 + sh - 1), outline=(255, 255, 255), width=2)
        if k < len(paths):
            draw.text((x0 + 4, y0 + 2), Path(paths[k]).name[:40], fill=(220, 220, 220), font=font)
        t = targets[targets[:, 0] == k]
        if not len(t):
            continue
        boxes = t[:, 2:6].astype(np.float64)
        if boxes.max() <= 1.01:  # normalised
            boxes = boxes * np.array([w, h, w, h])
        conf = t[:, 6] if t.shape[1] > 6 else None
        for j, (cx, cy, bw, bh) in enumerate(boxes * scale):
            if conf is not None and conf[j] < conf_thres:
                continue
            cls = int(t[j, 1])
            color = class_color(cls)
            xy = (x0 + cx - bw / 2, y0 + cy - bh / 2, x0 + cx + bw / 2, y0 + cy + bh / 2)
            draw.rectangle(xy, outline=color, width=2)
            text = names[cls] if cls < len(names) else str(cls)
            if conf is not None:
                text += f" {conf[j]:.2f}"
            draw.text((xy[0] + 2, xy[1] + 1), text, fill=color, font=font)
    with atomic_write(path, "wb") as f:
        im.save(f, format="PNG")
    return Path(path)


def plot_labels(samples: Sequence[Sample], names: Sequence[str], path: str | os.PathLike) -> Path:
    """Label statistics as one PNG: instances per class, box centres (x, y) and box sizes (w, h)."""
    from aics.core.plot import pyplot, save_figure

    plt = pyplot()
    labels = [s.labels for s in samples if len(s.labels)]
    lb = np.concatenate(labels, 0) if labels else np.zeros((0, 5), np.float32)
    counts = np.bincount(lb[:, 0].astype(int), minlength=len(names))[: len(names)]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    ax = axes[0]
    ax.bar(range(len(names)), counts, color=[np.array(class_color(k)) / 255 for k in range(len(names))])
    ax.set_ylabel("instances")
    ax.set_title(f"{len(lb)} labels in {len(samples)} images")
    if len(names) <= 30:
        many = len(names) > 8
        ax.set_xticks(range(len(names)), names, rotation=90 if many else 30, ha="center" if many else "right")
    for ax, (a, b), (xl, yl) in zip(
        axes[1:], ((1, 2), (3, 4)), (("x", "y"), ("width", "height")), strict=True
    ):
        if len(lb):
            ax.hist2d(lb[:, a], lb[:, b], bins=50, range=[[0, 1], [0, 1]], cmap="Blues")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel(xl)
        ax.set_ylabel(yl)
        ax.set_aspect("equal")
    axes[1].invert_yaxis()  # image coordinates: y grows downwards
    axes[1].set_title("box centres")
    axes[2].set_title("box sizes (fraction of the image)")
    return save_figure(fig, path)
