"""A seeded, offline stand-in for MNIST: handwritten-looking digits drawn from strokes, written as IDX files.

Usage: aics vae synth --out data/mnist_synth --n-train 12000 --n-test 2000

Each digit 0-9 is a few pen strokes (straight pieces and smooth cubic Bezier curves through key points) in a
unit box. Every image draws its own variant of that skeleton: key points jittered (the writer's hand),
optional alternative forms (open or closed 4, flag and foot on 1, crossed 7, looped 2, ...), then aspect,
scale, slant, rotation and a smooth random displacement field (elastic distortion), and a random pen width.
The strokes are rasterised at 4x with Pillow and box-filtered down, so the edges are antialiased.

Placement follows the original MNIST recipe: the ink's bounding box is scaled to fit 20x20 keeping its aspect
ratio, and the result is put in a 28x28 frame with its center of mass at the center. Images are white ink on
black (0 background, up to 255).

``generate`` writes the four standard files (``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``, optionally ``.gz``) that ``aics vae prepare`` reads.
The same seed gives byte-identical files; train and test come from independent streams of that seed.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from aics.core.errors import UserError
from aics.core.log import progress
from aics.tasks.vae.data import MNIST_FILES, NUM_CLASSES, write_idx

IMAGE_SIZE = 28
BOX_SIZE = 20  # MNIST fits each digit's bounding box into 20x20 before centering it in 28x28
SUPERSAMPLE = 4
MIN_IMAGES = 10  # one per class
SAMPLES_PER_CURVE = 9
SAMPLES_PER_LINE = 6

# A stroke is what the pen draws without lifting: pieces joined end to end, each ("curve", key points) or
# ("line", key points). A glyph is the list of its strokes.
Piece = tuple[str, list[np.ndarray]]
Stroke = list[Piece]
PointMaker = Callable[[float, float], np.ndarray]


def _bezier(p0: np.ndarray, p1: np.ndarray, p2: np.ndarray, p3: np.ndarray, n: int) -> np.ndarray:
    t = np.linspace(0.0, 1.0, n)[:, None]
    u = 1.0 - t
    return u**3 * p0 + 3 * u**2 * t * p1 + 3 * u * t**2 * p2 + t**3 * p3


def _smooth_curve(points: list[np.ndarray]) -> np.ndarray:
    """Cubic Bezier pieces through ``points`` with Catmull-Rom tangent directions.

    Handle lengths follow the neighbouring chord (not the tangent's length), which keeps unevenly spaced
    points from producing overshoots and little loops once they are jittered.
    """
    pts = np.asarray(points, dtype=np.float64)
    if len(pts) == 2:
        return _line(list(pts))
    directions = np.empty_like(pts)
    directions[1:-1] = pts[2:] - pts[:-2]
    directions[0] = pts[1] - pts[0]
    directions[-1] = pts[-1] - pts[-2]
    directions /= np.maximum(np.linalg.norm(directions, axis=1, keepdims=True), 1e-9)
    chords = np.linalg.norm(np.diff(pts, axis=0), axis=1)
    out = [pts[:1]]
    for i, chord in enumerate(chords):
        handle = chord / 3.0
        curve = _bezier(
            pts[i],
            pts[i] + directions[i] * handle,
            pts[i + 1] - directions[i + 1] * handle,
            pts[i + 1],
            SAMPLES_PER_CURVE,
        )
        out.append(curve[1:])
    return np.concatenate(out)


def _line(points: list[np.ndarray]) -> np.ndarray:
    # Straight pieces get intermediate samples so that the elastic distortion can bend them.
    pts = np.asarray(points, dtype=np.float64)
    t = np.linspace(0.0, 1.0, SAMPLES_PER_LINE)[1:, None]
    out = [pts[:1]] + [a + t * (b - a) for a, b in zip(pts[:-1], pts[1:], strict=True)]
    return np.concatenate(out)


def _trace(stroke: Stroke) -> np.ndarray:
    parts = [_smooth_curve(pts) if kind == "curve" else _line(pts) for kind, pts in stroke]
    return np.concatenate([parts[0]] + [p[1:] for p in parts[1:]])


def _ellipse_points(
    p: PointMaker,
    rng: np.random.Generator,
    center: tuple[float, float],
    radii: tuple[float, float],
    start_deg: float,
    sweep_deg: float,
    step_deg: float = 45.0,
) -> list[np.ndarray]:
    """Jittered key points along an elliptic arc; angles grow clockwise on screen (y points down)."""
    rx, ry = radii[0] * rng.uniform(0.85, 1.15), radii[1] * rng.uniform(0.9, 1.05)
    count = max(2, int(round(abs(sweep_deg) / step_deg)) + 1)
    angles = np.radians(np.linspace(start_deg, start_deg + sweep_deg, count))
    return [p(center[0] + rx * math.cos(a), center[1] + ry * math.sin(a)) for a in angles]


def _glyph_0(p: PointMaker, rng: np.random.Generator) -> list[Stroke]:
    # Written counter-clockwise from the top; the end falls short of or overshoots the start.
    overshoot = rng.uniform(-15.0, 35.0)
    return [[("curve", _ellipse_points(p, rng, (0.5, 0.5), (0.3, 0.5), -90.0, -360.0 - overshoot))]]


def _glyph_1(p: PointMaker, rng: np.random.Generator) -> list[Stroke]:
    top, bottom = p(0.55, 0.0), p(0.5, 1.0)
    middle = (top + bottom) / 2 + np.array([rng.normal(0.0, 0.03), 0.0])
    stroke: Stroke = [("curve", [top, middle, bottom])]
    if rng.random() < 0.35:
        stroke.insert(0, ("line", [p(0.4, 0.22), top]))
    glyph = [stroke]
    if rng.random() < 0.06:
        glyph.append([("line", [p(0.25, 1.0), p(0.78, 1.0)])])
    return glyph


def _glyph_2(p: PointMaker, rng: np.random.Generator) -> list[Stroke]:
    arch = [p(0.15, 0.28), p(0.45, 0.0), p(0.8, 0.15), p(0.75, 0.45), p(0.45, 0.75)]
    if rng.random() < 0.3:
        # The looped 2: the diagonal curls round at the bottom before the base runs right.
        tail = [p(0.15, 0.95), p(0.2, 1.0), p(0.32, 0.9), p(0.55, 0.93), p(0.9, 0.97)]
        return [[("curve", arch + tail)]]
    corner = p(0.12, 0.98)
    return [[("curve", [*arch, corner]), ("line", [corner, p(0.9, 0.97)])]]


def _glyph_3(p: PointMaker, rng: np.random.Generator) -> list[Stroke]:
    waist = p(0.42, 0.47)
    upper = [p(0.15, 0.13), p(0.5, 0.0), p(0.8, 0.17), p(0.7, 0.38), waist]
    lower = [waist, p(0.82, 0.6), p(0.78, 0.9), p(0.45, 1.0), p(0.12, 0.86)]
    return [[("curve", upper), ("curve", lower)]]


def _glyph_4(p: PointMaker, rng: np.random.Generator) -> list[Stroke]:
    bar_y = rng.uniform(0.58, 0.7)
    if rng.random() < 0.6:
        # Closed 4: the diagonal runs from the top of the stem down to the bar.
        stem_top = p(0.66, 0.0)
        return [
            [("line", [stem_top, p(0.06, bar_y), p(0.95, bar_y - 0.02)])],
            [("line", [stem_top, p(0.66, 1.0)])],
        ]
    return [
        [("line", [p(0.18, 0.0), p(0.1, bar_y), p(0.95, bar_y - 0.02)])],
        [("line", [p(0.72, 0.05), p(0.7, 1.0)])],
    ]


def _glyph_5(p: PointMaker, rng: np.random.Generator) -> list[Stroke]:
    corner, shoulder = p(0.28, 0.02), p(0.24, 0.46)
    bowl = [shoulder, p(0.52, 0.36), p(0.8, 0.52), p(0.78, 0.82), p(0.5, 1.0), p(0.12, 0.88)]
    flag = p(0.85, 0.0)
    if rng.random() < 0.5:
        return [[("line", [flag, corner, shoulder]), ("curve", bowl)]]
    # The two-stroke form: down and round first, then the pen is lifted to add the flag.
    return [[("line", [corner, shoulder]), ("curve", bowl)], [("line", [corner, flag])]]


def _glyph_6(p: PointMaker, rng: np.random.Generator) -> list[Stroke]:
    points = [
        p(0.75, 0.0),
        p(0.42, 0.15),
        p(0.22, 0.45),
        p(0.2, 0.75),
        p(0.42, 1.0),
        p(0.72, 0.92),
        p(0.78, 0.68),
        p(0.55, 0.5),
        p(0.3, 0.58),
        p(0.22, 0.72),
    ]
    return [[("curve", points)]]


def _glyph_7(p: PointMaker, rng: np.random.Generator) -> list[Stroke]:
    start, corner = p(0.08, 0.04), p(0.9, 0.02)
    stem = [corner, p(0.68, 0.45), p(0.45, 1.0)]
    stroke: Stroke = [("line", [start, corner]), ("curve", stem)]
    if rng.random() < 0.15:
        stroke.insert(0, ("line", [p(0.06, 0.2), start]))
    glyph = [stroke]
    if rng.random() < 0.2:
        glyph.append([("line", [p(0.4, 0.52), p(0.85, 0.5)])])
    return glyph


def _glyph_8(p: PointMaker, rng: np.random.Generator) -> list[Stroke]:
    # One stroke, S down and back up, crossing itself at the waist.
    points = [
        p(0.74, 0.14),
        p(0.5, 0.0),
        p(0.25, 0.12),
        p(0.3, 0.34),
        p(0.5, 0.48),
        p(0.76, 0.66),
        p(0.72, 0.92),
        p(0.5, 1.0),
        p(0.24, 0.9),
        p(0.26, 0.66),
        p(0.5, 0.48),
        p(0.7, 0.32),
        p(0.74, 0.14),
    ]
    return [[("curve", points)]]


def _glyph_9(p: PointMaker, rng: np.random.Generator) -> list[Stroke]:
    join = p(0.78, 0.2)
    loop = [join, p(0.55, 0.0), p(0.26, 0.08), p(0.2, 0.3), p(0.42, 0.48), p(0.72, 0.38), join]
    if rng.random() < 0.6:
        stem = [join, p(0.78, 0.6), p(0.7, 1.0)]
    else:
        stem = [join, p(0.74, 0.6), p(0.52, 0.95), p(0.3, 0.98)]
    return [[("curve", loop), ("curve", stem)]]


GLYPHS = (_glyph_0, _glyph_1, _glyph_2, _glyph_3, _glyph_4, _glyph_5, _glyph_6, _glyph_7, _glyph_8, _glyph_9)


def _distort(strokes: list[np.ndarray], rng: np.random.Generator) -> list[np.ndarray]:
    """Aspect, scale, slant, rotation, then a smooth random displacement field, all about the box center."""
    aspect = math.exp(rng.normal(0.0, 0.2))
    scale = rng.uniform(0.85, 1.15)
    slant = float(np.clip(rng.normal(0.1, 0.18), -0.35, 0.55))
    angle = math.radians(float(np.clip(rng.normal(0.0, 8.0), -15.0, 15.0)))
    cos, sin = math.cos(angle), math.sin(angle)
    # Row vectors (x, y) times these, left to right: aspect and scale, shear leaning the top right, rotation.
    linear = (
        np.diag([scale * aspect, scale])
        @ np.array([[1.0, 0.0], [-slant, 1.0]])
        @ np.array([[cos, sin], [-sin, cos]])
    )
    # The elastic field: a few random plane waves per axis, long enough in wavelength to bend rather than
    # wiggle the strokes. Displacing the pen path (not the image) keeps the stroke width even.
    waves = 3
    freqs = rng.normal(0.0, 1.1, size=(2, waves, 2)) * 2 * math.pi
    phases = rng.uniform(0.0, 2 * math.pi, size=(2, waves))
    amplitude = rng.uniform(0.008, 0.03)
    out = []
    for pts in strokes:
        centered = (pts - 0.5) @ linear
        field = np.sin(np.einsum("nd,awd->anw", centered, freqs) + phases[:, None, :]).sum(axis=2)
        out.append(centered + amplitude * field.T)
    return out


def _rasterize(strokes: list[np.ndarray], pen_px: float) -> np.ndarray:
    """Draw at SUPERSAMPLE x with the ink's bounding box fitted to BOX_SIZE, then box-filter down."""
    everything = np.concatenate(strokes)
    lo = everything.min(axis=0)
    extent = everything.max(axis=0) - lo
    pen = pen_px * SUPERSAMPLE
    full = BOX_SIZE * SUPERSAMPLE
    scale = (full - pen) / max(float(extent.max()), 1e-6)
    width, height = (min(full, int(math.ceil((e * scale + pen) / SUPERSAMPLE)) * SUPERSAMPLE) for e in extent)
    canvas = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(canvas)
    radius = pen / 2
    pen_width = max(1, int(round(pen)))
    for pts in strokes:
        xy = (pts - lo) * scale + radius
        draw.line(xy.ravel().tolist(), fill=255, width=pen_width)
        # Round caps and joins; much cheaper than Pillow's joint="curve" at every vertex.
        for x, y in xy.tolist():
            draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=255)
    return np.asarray(canvas.reduce(SUPERSAMPLE))


def _center_by_mass(digit: np.ndarray) -> np.ndarray:
    frame = np.zeros((IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
    h, w = digit.shape
    weights = digit.astype(np.float64)
    total = weights.sum()
    if total > 0:
        cy = float((weights.sum(axis=1) * np.arange(h)).sum() / total)
        cx = float((weights.sum(axis=0) * np.arange(w)).sum() / total)
    else:
        cy, cx = (h - 1) / 2, (w - 1) / 2
    center = (IMAGE_SIZE - 1) / 2
    top = int(np.clip(round(center - cy), 0, IMAGE_SIZE - h))
    left = int(np.clip(round(center - cx), 0, IMAGE_SIZE - w))
    frame[top : top + h, left : left + w] = digit
    return frame


def render_digit(digit: int, rng: np.random.Generator) -> np.ndarray:
    """One 28x28 uint8 image of ``digit`` (white on black), a fresh random variant drawn from ``rng``."""
    if isinstance(digit, bool) or not isinstance(digit, (int, np.integer)) or not 0 <= digit < NUM_CLASSES:
        raise UserError(f"digit {digit!r}: must be an integer from 0 to 9")
    jitter = rng.uniform(0.02, 0.05)

    def point(x: float, y: float) -> np.ndarray:
        return np.array([x, y]) + rng.normal(0.0, jitter, size=2)

    strokes = [_trace(stroke) for stroke in GLYPHS[int(digit)](point, rng)]
    strokes = _distort(strokes, rng)
    # Pen width in final pixels: around 2.3 (ink density near real MNIST's), with a tail of bold writers.
    pen_px = float(np.clip(rng.lognormal(math.log(2.3), 0.25), 1.3, 4.0))
    return _center_by_mass(_rasterize(strokes, pen_px))


def _check_count(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise UserError(f"{name} {value!r}: must be a whole number of images (at least {MIN_IMAGES})")
    if value < MIN_IMAGES:
        raise UserError(f"{name} {value}: must be at least {MIN_IMAGES} so that every digit appears")
    return int(value)


def _render_split(
    n: int, rng: np.random.Generator, desc: str, show_progress: bool
) -> tuple[np.ndarray, np.ndarray]:
    labels = rng.permutation(np.arange(n) % NUM_CLASSES).astype(np.uint8)
    images = np.empty((n, IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
    indices = progress(range(n), total=n, desc=desc) if show_progress else range(n)
    for i in indices:
        images[i] = render_digit(int(labels[i]), rng)
    return images, labels


def generate(
    out_dir: str | Path,
    n_train: int = 12000,
    n_test: int = 2000,
    seed: int = 0,
    gz: bool = False,
    show_progress: bool = True,
) -> dict:
    """Write a synthetic MNIST (the four standard IDX files) into ``out_dir``; return counts, seed and paths.

    Each class gets n//10 or n//10 + 1 images, in shuffled order.
    """
    n_train = _check_count("--n-train", n_train)
    n_test = _check_count("--n-test", n_test)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise UserError(f"--seed {seed!r}: must be a non-negative integer")
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"{out_dir}: exists and is not a directory; choose another --out")
    suffix = ".gz" if gz else ""
    # Independent streams per split: the test set does not change when --n-train does.
    split_seeds = dict(zip(("train", "test"), np.random.SeedSequence(int(seed)).spawn(2), strict=True))
    counts = {"train": n_train, "test": n_test}
    summary: dict = {"out_dir": str(out_dir), "seed": int(seed), "splits": {}}
    for split, (images_name, labels_name) in MNIST_FILES.items():
        rng = np.random.default_rng(split_seeds[split])
        images, labels = _render_split(counts[split], rng, f"synth {split}", show_progress)
        images_path, labels_path = out_dir / f"{images_name}{suffix}", out_dir / f"{labels_name}{suffix}"
        try:
            write_idx(images_path, images)
            write_idx(labels_path, labels)
        except OSError as e:
            raise UserError(f"{out_dir}: cannot write the dataset ({e})") from e
        summary["splits"][split] = {
            "images": counts[split],
            "class_counts": np.bincount(labels, minlength=NUM_CLASSES).tolist(),
            "images_path": str(images_path),
            "labels_path": str(labels_path),
        }
    return summary
