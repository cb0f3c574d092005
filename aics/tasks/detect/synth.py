"""A seeded, offline detection dataset in YOLO format: coloured shapes on textured backgrounds.

Usage: aics detect synth --out data/shapes --n-train 512 --n-val 128 --img-size 320

Six classes, each one shape in its own base colour: circle (red), square (green), triangle (blue), diamond
(yellow), cross (magenta) and star (cyan). Every instance jitters its colour, is shaded by a soft gradient
and drawn with a darker outline; it is stretched in aspect (0.7 to 1.4), scaled to 6 % to 45 % of the short
image side (log-uniform, so small objects are common) and turned a little (polygons whose turned form would
look like another class, square and diamond, only by +/- 15 degrees). An image holds 1 to 8 objects (about
3 % hold none); later objects may cover earlier ones, and an object more than 60 % hidden loses its label.
A label is the tight box of the object's visible pixels. Backgrounds mix low-contrast gradients, stripes,
blurred blobs and noise, so that the detector has to look for shape and colour, not for "anything not flat".
Image sizes vary among 320x320, 320x240, 240x320 and 352x256 (w x h), scaled by ``img_size / 320``.

``generate`` writes what a real YOLO dataset has: ``images/{train,val}/<id>.jpg`` (JPEG quality 90),
``labels/{train,val}/<id>.txt`` (``class cx cy w h`` normalised, an empty file for an image without
objects), ``data.yaml`` (``path: .``, train, val, names) and ``stats.json`` (objects per class and split).
Each image has its own random stream derived from (seed, split, index): the same seed gives byte-identical
files, and the val images do not change when only ``n_train`` does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml
from PIL import Image, ImageDraw, ImageFilter

from aics.core.errors import UserError
from aics.core.io import read_json, write_json, write_text
from aics.core.log import progress
from aics.core.stage import begin_stage, mark_done

FORMAT_VERSION = 1
NAMES = ("circle", "square", "triangle", "diamond", "cross", "star")
BASE_COLORS = (
    (220, 40, 40),  # red
    (40, 180, 60),  # green
    (45, 75, 225),  # blue
    (235, 210, 40),  # yellow
    (210, 50, 200),  # magenta
    (40, 200, 215),  # cyan
)
MAX_TURN_DEGREES = (180.0, 15.0, 30.0, 15.0, 15.0, 180.0)
COLOR_JITTER = 30
OUTLINE_DARKEN = 0.55
BASE_SIZES = ((320, 320), (320, 240), (240, 320), (352, 256))  # (w, h) at img_size 320
SIZE_RANGE = (0.06, 0.45)  # object size as a fraction of the short image side
ASPECT_RANGE = (0.7, 1.4)
MAX_OBJECTS = 8
EMPTY_PROB = 0.03
MIN_VISIBLE = 0.4  # an object with less than this fraction of its pixels visible loses its label
JPEG_QUALITY = 90
SPLITS = ("train", "val")
MIN_IMG_SIZE = 64


@dataclass(frozen=True)
class ObjectSpec:
    """One object: class index, centre and unturned size in pixels, turn in degrees, fill colour (RGB)."""

    cls: int
    cx: float
    cy: float
    w: float
    h: float
    angle: float
    color: tuple[int, int, int]
    shade_angle: float = 0.0  # direction of the shading gradient, radians


def _unit_outline(cls: int) -> np.ndarray:
    """(k, 2) vertices of a class's shape in the unit box [-0.5, 0.5]^2, y down."""
    name = NAMES[cls]
    if name == "circle":
        t = np.linspace(0, 2 * math.pi, 48, endpoint=False)
        return 0.5 * np.stack([np.cos(t), np.sin(t)], 1)
    if name == "square":
        return np.array([[-0.5, -0.5], [0.5, -0.5], [0.5, 0.5], [-0.5, 0.5]])
    if name == "triangle":
        return np.array([[0.0, -0.5], [0.5, 0.5], [-0.5, 0.5]])
    if name == "diamond":
        return np.array([[0.0, -0.5], [0.5, 0.0], [0.0, 0.5], [-0.5, 0.0]])
    if name == "cross":
        a = 1 / 6  # arms one third of the width thick
        return np.array(
            [[-a, -0.5], [a, -0.5], [a, -a], [0.5, -a], [0.5, a], [a, a], [a, 0.5], [-a, 0.5], [-a, a],
             [-0.5, a], [-0.5, -a], [-a, -a]]
        )  # fmt: skip
    # star: five points, inner radius 0.4 of the outer, first point up
    t = -math.pi / 2 + np.arange(10) * math.pi / 5
    r = np.where(np.arange(10) % 2 == 0, 0.5, 0.2)
    return np.stack([r * np.cos(t), r * np.sin(t)], 1)


def shape_polygon(obj: ObjectSpec) -> np.ndarray:
    """(k, 2) vertices of ``obj`` in image pixels."""
    pts = _unit_outline(obj.cls) * np.array([obj.w, obj.h])
    a = math.radians(obj.angle)
    turn = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    return pts @ turn.T + np.array([obj.cx, obj.cy])


def random_objects(rng: np.random.Generator, width: int, height: int, n: int) -> list[ObjectSpec]:
    """``n`` random objects that lie wholly inside a ``width`` x ``height`` image."""
    objects = []
    short = min(width, height)
    for _ in range(n):
        cls = int(rng.integers(len(NAMES)))
        size = short * math.exp(rng.uniform(math.log(SIZE_RANGE[0]), math.log(SIZE_RANGE[1])))
        aspect = math.sqrt(rng.uniform(*ASPECT_RANGE))
        w, h = size * aspect, size / aspect
        angle = rng.uniform(-MAX_TURN_DEGREES[cls], MAX_TURN_DEGREES[cls])
        color = np.clip(np.array(BASE_COLORS[cls]) + rng.integers(-COLOR_JITTER, COLOR_JITTER + 1, 3), 0, 255)
        shade = rng.uniform(0, 2 * math.pi)
        # Place the turned shape wholly inside the image (it fits: at most ~0.53 of the short side).
        pts = shape_polygon(ObjectSpec(cls, 0.0, 0.0, w, h, angle, (0, 0, 0)))
        lo, hi = pts.min(0), pts.max(0)
        cx = rng.uniform(-lo[0], max(-lo[0], width - hi[0] - 1))
        cy = rng.uniform(-lo[1], max(-lo[1], height - hi[1] - 1))
        objects.append(ObjectSpec(cls, cx, cy, w, h, angle, tuple(int(c) for c in color), shade))
    return objects


def render_background(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """A low-contrast textured background (height, width, 3) uint8: gradient, stripes, blobs, noise."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    base = rng.uniform(70, 190) + rng.uniform(-20, 20, 3)
    img = np.broadcast_to(base.astype(np.float32), (height, width, 3)).copy()
    if rng.random() < 0.7:  # linear gradient towards a second muted colour
        other = base + rng.normal(0, 30, 3)
        a = rng.uniform(0, 2 * math.pi)
        t = xx * math.cos(a) + yy * math.sin(a)
        t = (t - t.min()) / max(float(np.ptp(t)), 1.0)
        img += t[..., None] * (other - base).astype(np.float32)
    if rng.random() < 0.4:  # stripes
        a = rng.uniform(0, math.pi)
        period = rng.uniform(8, 60)
        wave = np.sin(
            2 * math.pi * (xx * math.cos(a) + yy * math.sin(a)) / period + rng.uniform(0, 2 * math.pi)
        )
        img += (rng.uniform(4, 16) * wave)[..., None] * rng.uniform(0.5, 1.0, 3).astype(np.float32)
    if rng.random() < 0.6:  # soft blobs of muted colours
        layer = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))
        draw = ImageDraw.Draw(layer)
        for _ in range(int(rng.integers(3, 11))):
            cx, cy = rng.uniform(0, width), rng.uniform(0, height)
            rx, ry = rng.uniform(0.05, 0.3) * width, rng.uniform(0.05, 0.3) * height
            grey = rng.uniform(60, 200)
            color = tuple(int(np.clip(grey + c, 0, 255)) for c in rng.uniform(-25, 25, 3))
            draw.ellipse((cx - rx, cy - ry, cx + rx, cy + ry), fill=color)
        layer = layer.filter(ImageFilter.GaussianBlur(rng.uniform(4, 15)))
        img = 0.5 * img + 0.5 * np.asarray(layer, dtype=np.float32)
    img += rng.normal(0, rng.uniform(2, 8), img.shape).astype(np.float32)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def draw_objects(
    background: np.ndarray, objects: list[ObjectSpec]
) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Draw ``objects`` in order (later ones cover earlier ones) onto a copy of ``background``.

    Returns the image, the labels (n, 5) ``[cls, cx, cy, w, h]`` normalised (tight boxes of the visible
    pixels, in drawing order) and the indices of the objects dropped as mostly hidden.
    """
    img = background.copy()
    height, width = img.shape[:2]
    owner = np.full((height, width), -1, dtype=np.int16)  # which object each pixel shows
    regions, areas = [], []
    for k, obj in enumerate(objects):
        pts = shape_polygon(obj)
        x0, y0 = (max(0, int(math.floor(v)) - 1) for v in pts.min(0))
        x1, y1 = (int(math.ceil(v)) + 2 for v in pts.max(0))
        x1, y1 = min(x1, width), min(y1, height)
        local = Image.new("L", (x1 - x0, y1 - y0), 0)
        outline = max(1, round(0.05 * min(obj.w, obj.h)))
        ImageDraw.Draw(local).polygon((pts - [x0, y0]).ravel().tolist(), fill=1, outline=2, width=outline)
        mask = np.asarray(local)
        # Soft shading across the object: 0.85 to 1.15 times its colour along a random direction.
        yy, xx = np.mgrid[0 : y1 - y0, 0 : x1 - x0]
        t = xx * math.cos(obj.shade_angle) + yy * math.sin(obj.shade_angle)
        t = (t - t.min()) / max(float(np.ptp(t)), 1.0)
        fill = np.clip(np.array(obj.color) * (0.85 + 0.3 * t)[..., None], 0, 255)
        dark = np.array(obj.color) * OUTLINE_DARKEN
        patch = img[y0:y1, x0:x1]
        patch[mask == 1] = fill[mask == 1].astype(np.uint8)
        patch[mask == 2] = dark.astype(np.uint8)
        owner[y0:y1, x0:x1][mask > 0] = k
        regions.append((x0, y0, x1, y1))
        areas.append(int((mask > 0).sum()))
    labels, dropped = [], []
    for k, (obj, (x0, y0, x1, y1), area) in enumerate(zip(objects, regions, areas, strict=True)):
        rows, cols = np.nonzero(owner[y0:y1, x0:x1] == k)
        if area == 0 or len(rows) < MIN_VISIBLE * area:
            dropped.append(k)
            continue
        bx0, bx1 = x0 + cols.min(), x0 + cols.max() + 1  # pixel edges: the box covers whole pixels
        by0, by1 = y0 + rows.min(), y0 + rows.max() + 1
        labels.append(
            [
                obj.cls,
                (bx0 + bx1) / 2 / width,
                (by0 + by1) / 2 / height,
                (bx1 - bx0) / width,
                (by1 - by0) / height,
            ]
        )
    return img, np.array(labels, dtype=np.float64).reshape(-1, 5), dropped


def render_image(rng: np.random.Generator, width: int, height: int) -> tuple[np.ndarray, np.ndarray, int]:
    """A random image, its labels (n, 5) normalised and how many objects were dropped as hidden."""
    n = 0 if rng.random() < EMPTY_PROB else int(rng.integers(1, MAX_OBJECTS + 1))
    background = render_background(rng, width, height)
    img, labels, dropped = draw_objects(background, random_objects(rng, width, height, n))
    return img, labels, len(dropped)


def image_sizes(img_size: int) -> list[tuple[int, int]]:
    """The (w, h) sizes images are drawn from at ``img_size``."""
    return [(round(w * img_size / 320), round(h * img_size / 320)) for w, h in BASE_SIZES]


def label_text(labels: np.ndarray) -> str:
    return "".join(f"{int(c)} {x:.6f} {y:.6f} {w:.6f} {h:.6f}\n" for c, x, y, w, h in labels.tolist())


def _check_int(name: str, value: object, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise UserError(f"{name} {value!r}: must be a whole number, at least {low}")
    return int(value)


def generate(
    out: str | Path,
    n_train: int = 512,
    n_val: int = 128,
    img_size: int = 320,
    seed: int = 0,
    overwrite: bool = False,
    show_progress: bool = True,
) -> dict:
    """Write the dataset into ``out`` (a stage: skipped when done, ``overwrite`` redoes it).

    Returns stats.json's content: ``names``, ``seed``, ``img_size``, and per split ``images``,
    ``objects``, ``background_images``, ``dropped_hidden`` and ``class_counts``; plus ``out_dir`` and
    ``data_yaml`` (paths as strings).
    """
    counts = {"train": _check_int("--n-train", n_train, 1), "val": _check_int("--n-val", n_val, 1)}
    img_size = _check_int("--img-size", img_size, MIN_IMG_SIZE)
    seed = _check_int("--seed", seed, 0)
    out = Path(out)
    params = {"n_train": counts["train"], "n_val": counts["val"], "img_size": img_size, "seed": seed}
    params["format"] = FORMAT_VERSION
    paths = {"out_dir": str(out), "data_yaml": str(out / "data.yaml")}
    if not begin_stage(out, overwrite, what="synth", params=params):
        return {**read_json(out / "stats.json"), **paths}

    sizes = image_sizes(img_size)
    stats: dict = {"names": list(NAMES), "seed": seed, "img_size": img_size, "splits": {}}
    for split_id, split in enumerate(SPLITS):
        image_dir, label_dir = out / "images" / split, out / "labels" / split
        image_dir.mkdir(parents=True, exist_ok=True)
        label_dir.mkdir(parents=True, exist_ok=True)
        class_counts = np.zeros(len(NAMES), dtype=np.int64)
        background_images = dropped_hidden = 0
        for i in progress(range(counts[split]), desc=f"synth {split}", enabled=show_progress):
            rng = np.random.default_rng((seed, split_id, i))
            width, height = sizes[int(rng.integers(len(sizes)))]
            img, labels, dropped = render_image(rng, width, height)
            name = f"{i:06d}"
            # Plain writes: the .done marker written last is what says the dataset is complete.
            Image.fromarray(img).save(image_dir / f"{name}.jpg", format="JPEG", quality=JPEG_QUALITY)
            (label_dir / f"{name}.txt").write_text(label_text(labels), encoding="utf-8")
            class_counts += np.bincount(labels[:, 0].astype(int), minlength=len(NAMES))
            background_images += len(labels) == 0
            dropped_hidden += dropped
        stats["splits"][split] = {
            "images": counts[split],
            "objects": int(class_counts.sum()),
            "background_images": int(background_images),
            "dropped_hidden": int(dropped_hidden),
            "class_counts": dict(zip(NAMES, class_counts.tolist(), strict=True)),
        }
    data = {"path": ".", "train": "images/train", "val": "images/val", "nc": len(NAMES), "names": list(NAMES)}
    header = (
        f"# Synthetic shapes (aics detect synth, seed {seed}, img_size {img_size}); paths relative to here\n"
    )
    write_text(out / "data.yaml", header + yaml.safe_dump(data, sort_keys=False, default_flow_style=None))
    write_json(out / "stats.json", stats)
    mark_done(out, {split: s["images"] for split, s in stats["splits"].items()}, params=params)
    return {**stats, **paths}
