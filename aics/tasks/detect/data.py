"""YOLO-format detection data: the dataset yaml, label validation with a cache, letterbox, augmentation,
the Dataset and its collate function, and pictures of batches and label statistics.

The on-disk format is YOLOv5's. A dataset yaml names a root (``path``, relative paths taken from the yaml's
directory), the ``train``/``val`` (optional ``test``) image sets relative to it (a directory, a ``.txt``
file listing image paths, or a list of those) and the class ``names`` (a list or an ``{index: name}``
dict)::

    path: .
    train: images/train
    val: images/val
    names: [circle, square, triangle]

Each image ``.../images/<split>/x.jpg`` has its labels in ``.../labels/<split>/x.txt``: one object per line,
``class cx cy w h`` with the box centre and size normalised by the image width and height. A missing or
empty label file is a background image. (A line ``class x1 y1 x2 y2 ...`` with three or more polygon points
is also accepted, as YOLOv5 does for segment labels, and read as the polygon's enclosing box.)

Images are read with Pillow; pixel work is numpy (RGB, uint8, H x W x 3); torch appears only in the tensors
the Dataset returns. Every random choice of the augmentation comes from a ``numpy.random.Generator`` given
by the caller, and ``YoloDataset`` seeds one per (seed, epoch, index), so a sample does not depend on the
worker that loads it or on what was loaded before it: a resumed run sees exactly the same batches.
"""

from __future__ import annotations

import colorsys
import dataclasses
import hashlib
import json
import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import yaml
from PIL import Image, ImageDraw, ImageFont, ImageOps

from aics.core.errors import UserError
from aics.core.io import atomic_write, write_text
from aics.core.log import get_logger, progress
from aics.tasks.detect.boxes import xywhn2xyxy, xyxy2xywhn

IMG_FORMATS = ("bmp", "jpeg", "jpg", "png", "tif", "tiff", "webp")
# Pillow's format names of the files we accept (an .jpg that is really a GIF is refused).
PIL_FORMATS = ("BMP", "JPEG", "MPO", "PNG", "TIFF", "WEBP")
MIN_IMAGE_SIDE = 10
COORD_TOLERANCE = 1e-6  # normalised coordinates this far outside [0, 1] are rounding, clipped silently
CACHE_VERSION = 1
CACHE_SUFFIX = ".cache.npz"
PAD_VALUE = 114
EXIF_ORIENTATION = 0x0112

# YOLOv5's hyp.scratch-low augmentation values; ``cutout`` is ours (off by default).
DEFAULT_HYP = {
    "hsv_h": 0.015,
    "hsv_s": 0.7,
    "hsv_v": 0.4,
    "degrees": 0.0,
    "translate": 0.1,
    "scale": 0.5,
    "shear": 0.0,
    "perspective": 0.0,
    "flipud": 0.0,
    "fliplr": 0.5,
    "mosaic": 1.0,
    "mixup": 0.0,
    "copy_paste": 0.0,
    "cutout": 0.0,
}


# ---- the dataset yaml ----


@dataclass
class DataSpec:
    """A parsed dataset yaml; every path is absolute. ``test`` is empty when the yaml has none."""

    yaml_path: Path
    root: Path
    train: list[Path]
    val: list[Path]
    test: list[Path]
    names: list[str]
    nc: int


def _split_paths(value: object, key: str, root: Path, yaml_path: Path, required: bool) -> list[Path]:
    if value is None or value == "" or value == []:
        if required:
            raise UserError(
                f"{yaml_path}: key '{key}' is missing; give the {key} images (a directory, a .txt "
                f"list of image paths, or a list of those, relative to {root})"
            )
        return []
    items = value if isinstance(value, list) else [value]
    paths = []
    for item in items:
        if not isinstance(item, (str, int, float)) or isinstance(item, bool):
            raise UserError(
                f"{yaml_path}: key '{key}': {item!r} is not a path; give a directory or a .txt file"
            )
        p = Path(str(item)).expanduser()
        p = Path(os.path.normpath(p if p.is_absolute() else root / p))
        if not p.exists():
            raise UserError(
                f"{yaml_path}: key '{key}': {p} not found; fix the path (relative to {root}) "
                "or download/generate the dataset first"
            )
        paths.append(p)
    return paths


def _class_names(raw: dict, yaml_path: Path) -> list[str]:
    names = raw.get("names")
    if names is None:
        raise UserError(f"{yaml_path}: key 'names' is missing; list the class names (names: [a, b, ...])")
    if isinstance(names, dict):
        try:
            by_index = {int(k): str(v) for k, v in names.items()}
        except (TypeError, ValueError) as e:
            raise UserError(f"{yaml_path}: key 'names': the keys must be class indices 0, 1, ...") from e
        if sorted(by_index) != list(range(len(by_index))):
            raise UserError(
                f"{yaml_path}: key 'names': indices {sorted(by_index)} are not 0..{len(by_index) - 1}; "
                "number the classes from 0 without gaps"
            )
        names = [by_index[i] for i in range(len(by_index))]
    elif isinstance(names, list):
        names = [str(n) for n in names]
    else:
        raise UserError(f"{yaml_path}: key 'names' must be a list or an {{index: name}} mapping")
    if not names:
        raise UserError(f"{yaml_path}: key 'names' is empty; list at least one class")
    nc = raw.get("nc")
    if nc is not None and (isinstance(nc, bool) or not isinstance(nc, int) or nc != len(names)):
        raise UserError(
            f"{yaml_path}: key 'nc' is {nc!r} but 'names' has {len(names)} classes; make them agree"
        )
    return names


def load_data_yaml(path: str | os.PathLike) -> DataSpec:
    """Read a YOLOv5-style dataset yaml; every problem is a UserError naming the file and the key."""
    yaml_path = Path(path).expanduser()
    if not yaml_path.is_file():
        raise UserError(
            f"{yaml_path}: dataset yaml not found; pass a data yaml with path, train, val and names"
        )
    try:
        raw = yaml.safe_load(yaml_path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise UserError(f"{yaml_path}: not valid YAML ({str(e).splitlines()[0]}); fix the file") from e
    if not isinstance(raw, dict):
        raise UserError(f"{yaml_path}: expected a mapping with path, train, val and names")
    yaml_dir = yaml_path.resolve().parent
    root_value = raw.get("path")
    root = yaml_dir if root_value in (None, "") else Path(str(root_value)).expanduser()
    root = Path(os.path.normpath(root if root.is_absolute() else yaml_dir / root))
    if not root.is_dir():
        raise UserError(
            f"{yaml_path}: key 'path': directory {root} not found; fix it or download the dataset"
        )
    names = _class_names(raw, yaml_path)
    return DataSpec(
        yaml_path=yaml_path,
        root=root,
        train=_split_paths(raw.get("train"), "train", root, yaml_path, required=True),
        val=_split_paths(raw.get("val"), "val", root, yaml_path, required=True),
        test=_split_paths(raw.get("test"), "test", root, yaml_path, required=False),
        names=names,
        nc=len(names),
    )


def _is_image_name(p: Path) -> bool:
    return p.suffix[1:].lower() in IMG_FORMATS


def image_files(spec_paths: str | os.PathLike | Sequence[str | os.PathLike]) -> list[Path]:
    """The images of a split: directories (searched recursively), ``.txt`` lists (relative lines are taken
    from the list's directory) or single images; sorted, without duplicates."""
    items = [spec_paths] if isinstance(spec_paths, (str, os.PathLike)) else list(spec_paths)
    files: set[Path] = set()
    for p in map(Path, items):
        if p.is_dir():
            files.update(f for f in p.rglob("*") if _is_image_name(f) and f.is_file())
        elif p.is_file() and p.suffix.lower() == ".txt":
            for line in p.read_text(encoding="utf-8").splitlines():
                entry = Path(line.strip())
                if line.strip() and _is_image_name(entry):
                    files.add(Path(os.path.normpath(entry if entry.is_absolute() else p.parent / entry)))
        elif p.is_file() and _is_image_name(p):
            files.add(p)
        else:
            raise UserError(
                f"{p}: not found (expected a directory of images, a .txt list of images or an image)"
            )
    if not files:
        where = ", ".join(str(p) for p in items)
        raise UserError(f"{where}: no images found (extensions {', '.join(IMG_FORMATS)})")
    return sorted(files, key=str)


def label_path(image_path: str | os.PathLike) -> Path:
    """YOLOv5's rule: the last ``/images/`` of the path becomes ``/labels/`` and the suffix ``.txt``."""
    s = str(image_path)
    images, labels = f"{os.sep}images{os.sep}", f"{os.sep}labels{os.sep}"
    if images in s:
        head, tail = s.rsplit(images, 1)
        s = head + labels + tail
    return Path(s).with_suffix(".txt")


# ---- label scan ----


@dataclass
class Sample:
    """One image: ``labels`` (n, 5) float32 rows ``[cls, cx, cy, w, h]`` normalised; ``shape`` (w, h) after
    EXIF rotation."""

    im_file: Path
    labels: np.ndarray
    shape: tuple[int, int]


@dataclass
class ScanResult:
    """``stats``: images, found (non-empty label files), missing (no label file), empty (label file without
    rows), duplicates (rows dropped), labels (rows kept). ``from_cache`` tells whether the cache was used."""

    samples: list[Sample]
    stats: dict[str, int]
    cache_path: Path | None = None
    from_cache: bool = False


@dataclass
class _Checked:
    shape: tuple[int, int] = (0, 0)
    labels: np.ndarray = field(default_factory=lambda: np.zeros((0, 5), np.float32))
    status: str = "found"  # found, missing, empty
    duplicates: int = 0
    problems: list[str] = field(default_factory=list)


def default_cache_path(img_files: Sequence[Path]) -> Path:
    """``<labels dir><CACHE_SUFFIX>`` beside the labels directory of the first image (YOLOv5's place)."""
    labels_dir = label_path(img_files[0]).parent
    return labels_dir.parent / f"{labels_dir.name}{CACHE_SUFFIX}"


def _report_path(cache_path: Path) -> Path:
    name = cache_path.name
    stem = name[: -len(CACHE_SUFFIX)] if name.endswith(CACHE_SUFFIX) else name
    return cache_path.parent / f"{stem}.problems.txt"


def _image_shape(path: Path) -> tuple[tuple[int, int], str | None]:
    """(w, h) after EXIF rotation, or a problem description."""
    try:
        with Image.open(path) as im:
            im.verify()  # structural checks (PNG CRCs); the object is unusable afterwards
        with Image.open(path) as im:
            fmt, (w, h) = im.format, im.size
            if im.getexif().get(EXIF_ORIENTATION) in (5, 6, 7, 8):
                w, h = h, w
            if fmt == "JPEG":
                with open(path, "rb") as f:
                    f.seek(-2, os.SEEK_END)
                    if f.read() != b"\xff\xd9":
                        im.load()  # no end marker: only a full decode tells truncated from trailing bytes
    except FileNotFoundError:
        return (0, 0), "image file not found"
    except Exception as e:  # Pillow raises many types for corrupt files
        return (0, 0), f"cannot read the image ({type(e).__name__}: {e})"
    if fmt not in PIL_FORMATS:
        return (w, h), f"unsupported image format {fmt}"
    if w < MIN_IMAGE_SIDE or h < MIN_IMAGE_SIDE:
        return (w, h), f"image is {w}x{h} px, smaller than {MIN_IMAGE_SIDE} px"
    return (w, h), None


def _parse_label_line(parts: list[str], nc: int) -> tuple[list[float] | None, str | None]:
    n = len(parts)
    if n != 5 and not (n >= 7 and n % 2 == 1):
        return None, f"{n} columns, expected 5 (class cx cy w h)"
    try:
        values = [float(v) for v in parts]
    except ValueError:
        bad = next(v for v in parts if not _is_float(v))
        return None, f"non-numeric value {bad!r}"
    if not all(math.isfinite(v) for v in values):
        return None, "non-finite value"
    cls = values[0]
    if cls != int(cls):
        return None, f"class {parts[0]} is not an integer"
    if not 0 <= cls < nc:
        return None, f"class {int(cls)} out of range [0, {nc}) (the data yaml has {nc} names)"
    coords = np.array(values[1:])
    if (coords < -COORD_TOLERANCE).any() or (coords > 1 + COORD_TOLERANCE).any():
        worst = coords[np.argmax(np.abs(coords - 0.5))]
        return None, f"coordinate {worst:g} outside [0, 1] (boxes are normalised by the image size)"
    coords = coords.clip(0.0, 1.0)
    if n > 5:  # polygon: its enclosing box
        xs, ys = coords[0::2], coords[1::2]
        coords = np.array([(xs.min() + xs.max()) / 2, (ys.min() + ys.max()) / 2, np.ptp(xs), np.ptp(ys)])
    if coords[2] <= 0 or coords[3] <= 0:
        return None, f"box width/height {coords[2]:g}/{coords[3]:g} must be > 0"
    return [cls, *coords.tolist()], None


def _is_float(v: str) -> bool:
    try:
        float(v)
    except ValueError:
        return False
    return True


def _check_sample(im_file: Path, nc: int) -> _Checked:
    out = _Checked()
    out.shape, problem = _image_shape(im_file)
    if problem:
        out.problems.append(f"{im_file}: {problem}")
    lf = label_path(im_file)
    if not lf.is_file():
        out.status = "missing"
        return out
    try:
        text = lf.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        out.problems.append(f"{lf}: cannot read the label file ({e})")
        return out
    rows = []
    for lineno, line in enumerate(text.splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        row, problem = _parse_label_line(parts, nc)
        if problem:
            out.problems.append(f"{lf}:{lineno}: {problem}")
        else:
            rows.append(row)
    if not rows:
        out.status = "empty"
        return out
    labels = np.array(rows, dtype=np.float32)
    _, first = np.unique(labels, axis=0, return_index=True)
    out.duplicates = len(labels) - len(first)
    out.labels = labels[np.sort(first)]
    return out


def _files_hash(img_files: Sequence[Path], nc: int) -> str:
    """Paths, sizes and mtimes of every image and label file, the class count and the cache version."""
    h = hashlib.sha256(f"v{CACHE_VERSION} nc={nc}\n".encode())
    for f in img_files:
        for p in (f, label_path(f)):
            try:
                st = p.stat()
                h.update(f"{p}\t{st.st_size}\t{st.st_mtime_ns}\n".encode())
            except OSError:
                h.update(f"{p}\t-\n".encode())
    return h.hexdigest()


def _load_cache(cache_path: Path, key: str, img_files: Sequence[Path]) -> ScanResult | None:
    try:
        with np.load(cache_path, allow_pickle=False) as z:
            if int(z["version"]) != CACHE_VERSION or str(z["hash"]) != key:
                return None
            files, shapes, counts = z["files"].tolist(), z["shapes"], z["counts"]
            labels, stats = z["labels"], json.loads(str(z["stats"]))
    except Exception:  # unreadable, damaged (BadZipFile) or from another layout: rebuild rather than fail
        return None
    if files != [str(f) for f in img_files] or len(counts) != len(files):
        return None
    ends = np.cumsum(counts)
    samples = [
        Sample(f, labels[e - c : e].copy(), (int(s[0]), int(s[1])))
        for f, s, c, e in zip(img_files, shapes, counts.tolist(), ends.tolist(), strict=True)
    ]
    return ScanResult(samples, stats, cache_path, from_cache=True)


def _save_cache(cache_path: Path, key: str, result: ScanResult) -> None:
    samples = result.samples
    arrays = {
        "version": np.array(CACHE_VERSION),
        "hash": np.array(key),
        "files": np.array([str(s.im_file) for s in samples]),
        "shapes": np.array([s.shape for s in samples], dtype=np.int64).reshape(-1, 2),
        "counts": np.array([len(s.labels) for s in samples], dtype=np.int64),
        "labels": np.concatenate([s.labels for s in samples]).reshape(-1, 5).astype(np.float32),
        "stats": np.array(json.dumps(result.stats)),
    }
    try:
        with atomic_write(cache_path, "wb") as f:
            np.savez(f, **arrays)
    except OSError as e:  # a read-only dataset is fine: we just scan again next time
        get_logger().debug(f"{cache_path}: label cache not written ({e})")


def _split_dir(img_files: Sequence[Path]) -> str:
    try:
        return os.path.commonpath([str(f.parent) for f in img_files])
    except ValueError:
        return str(img_files[0].parent)


def _write_report(report: Path, problems: list[str]) -> Path:
    text = "".join(p + "\n" for p in problems)
    try:
        write_text(report, text)
        return report
    except OSError:
        fallback = Path(tempfile.gettempdir()) / f"aics-{report.name}"
        write_text(fallback, text)
        return fallback


def scan_labels(
    img_files: Sequence[str | os.PathLike],
    nc: int,
    cache_path: str | os.PathLike | None = None,
    use_cache: bool = True,
    show_progress: bool = False,
    split: str | None = None,
) -> ScanResult:
    """Validate every image and label line of a split and return its samples (in ``img_files`` order).

    ``img_files`` are image paths, or the split's entries of a :class:`DataSpec` (directories, ``.txt``
    lists), which are expanded with :func:`image_files`. ``split`` (e.g. "train") only names the split in
    the error message.

    The result is cached in ``cache_path`` (default: :func:`default_cache_path`), an ``.npz`` read without
    pickle, valid while the paths, sizes and mtimes of all image and label files and ``nc`` are unchanged.
    Every problem is collected as ``file:line: what``; if there is any, all of them are written to a
    ``<split>.problems.txt`` beside the cache and one UserError names the count and the first.
    """
    img_files = [Path(f) for f in img_files]
    if not img_files:
        raise UserError(f"no {split + ' ' if split else ''}images to scan; check the paths of the data yaml")
    if not all(_is_image_name(f) for f in img_files):
        img_files = image_files(img_files)
    cache = Path(cache_path) if cache_path is not None else default_cache_path(img_files)
    key = _files_hash(img_files, nc) if use_cache else ""
    if use_cache and cache.is_file():
        cached = _load_cache(cache, key, img_files)
        if cached is not None:
            return cached

    workers = min(8, os.cpu_count() or 1)
    with ThreadPoolExecutor(workers) as pool:
        checked = list(
            progress(
                pool.map(lambda f: _check_sample(f, nc), img_files),
                total=len(img_files),
                desc="scan labels",
                enabled=show_progress,
            )
        )
    problems = [p for c in checked for p in c.problems]
    if problems:
        report = _write_report(_report_path(cache), problems)
        n = len(problems)
        raise UserError(
            f"{n} problem{'s' if n > 1 else ''} in the {split + ' ' if split else ''}labels of "
            f"{_split_dir(img_files)}, "
            f"first: {problems[0]}; all listed in {report}; fix or remove those files"
        )
    stats = {
        "images": len(checked),
        "found": sum(c.status == "found" for c in checked),
        "missing": sum(c.status == "missing" for c in checked),
        "empty": sum(c.status == "empty" for c in checked),
        "duplicates": sum(c.duplicates for c in checked),
        "labels": sum(len(c.labels) for c in checked),
    }
    if stats["duplicates"]:
        files = sum(c.duplicates > 0 for c in checked)
        get_logger().warning(
            f"{_split_dir(img_files)}: dropped {stats['duplicates']} duplicate label rows in {files} files"
        )
    result = ScanResult(
        [Sample(f, c.labels, c.shape) for f, c in zip(img_files, checked, strict=True)],
        stats,
        cache if use_cache else None,
    )
    if use_cache:
        _save_cache(cache, key, result)
    return result


# ---- boxes (numpy) ----


def _box_ioa(box: np.ndarray, boxes: np.ndarray, eps: float = 1e-7) -> np.ndarray:
    """Intersection of ``box`` (4,) with each of ``boxes`` (n, 4), over the area of each of ``boxes``."""
    iw = (np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0])).clip(0)
    ih = (np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1])).clip(0)
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return iw * ih / (area + eps)


def box_candidates(
    box1: np.ndarray,
    box2: np.ndarray,
    wh_thr: float = 2.0,
    ar_thr: float = 100.0,
    area_thr: float = 0.1,
    eps: float = 1e-16,
) -> np.ndarray:
    """Which boxes survive an augmentation: ``box1`` (4, n) before (scaled), ``box2`` (4, n) after, xyxy.

    Kept: both sides > ``wh_thr`` px, more than ``area_thr`` of the area left, aspect ratio < ``ar_thr``.
    """
    w1, h1 = box1[2] - box1[0], box1[3] - box1[1]
    w2, h2 = box2[2] - box2[0], box2[3] - box2[1]
    ar = np.maximum(w2 / (h2 + eps), h2 / (w2 + eps))
    return (w2 > wh_thr) & (h2 > wh_thr) & (w2 * h2 / (w1 * h1 + eps) > area_thr) & (ar < ar_thr)


# ---- letterbox and resizing ----


def resize_image(img: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resize with Pillow: bilinear when growing, box (area average, like OpenCV's INTER_AREA) when
    shrinking. Returns a new writable array."""
    if (width, height) == (img.shape[1], img.shape[0]):
        return img.copy()
    shrink = width * height < img.shape[0] * img.shape[1]
    method = Image.Resampling.BOX if shrink else Image.Resampling.BILINEAR
    return np.array(Image.fromarray(img).resize((width, height), method))


def letterbox(
    img: np.ndarray,
    new_shape: int | tuple[int, int] = 640,
    color: tuple[int, int, int] = (PAD_VALUE, PAD_VALUE, PAD_VALUE),
    auto: bool = True,
    scale_fill: bool = False,
    scaleup: bool = True,
    stride: int = 32,
) -> tuple[np.ndarray, tuple[float, float], tuple[float, float]]:
    """Resize keeping the aspect ratio and pad to ``new_shape`` (h, w): YOLOv5's letterbox.

    ``auto`` pads only up to the next multiple of ``stride`` (a rectangle); ``scale_fill`` stretches to the
    shape without padding; ``scaleup=False`` never enlarges. Returns the new image (always a fresh array),
    the ratio (rw, rh) and the padding (dw, dh) on each side as floats; the left/top pad is
    ``round(d - 0.1)`` and the right/bottom one ``round(d + 0.1)``.
    """
    h, w = img.shape[:2]
    new_h, new_w = (new_shape, new_shape) if isinstance(new_shape, (int, np.integer)) else new_shape
    r = min(new_h / h, new_w / w)
    if not scaleup:
        r = min(r, 1.0)
    ratio = (r, r)
    unpad_w, unpad_h = int(round(w * r)), int(round(h * r))
    dw, dh = new_w - unpad_w, new_h - unpad_h
    if auto:
        dw, dh = dw % stride, dh % stride
    elif scale_fill:
        dw, dh = 0, 0
        unpad_w, unpad_h = new_w, new_h
        ratio = (new_w / w, new_h / h)
    dw, dh = float(dw) / 2, float(dh) / 2
    if (unpad_w, unpad_h) != (w, h):
        img = resize_image(img, unpad_w, unpad_h)
    top, bottom = int(round(dh - 0.1)), int(round(dh + 0.1))
    left, right = int(round(dw - 0.1)), int(round(dw + 0.1))
    out = np.empty((unpad_h + top + bottom, unpad_w + left + right, 3), dtype=np.uint8)
    out[...] = np.asarray(color, dtype=np.uint8)
    out[top : top + unpad_h, left : left + unpad_w] = img
    return out, ratio, (dw, dh)


# ---- augmentation ----


def augment_hsv(
    img: np.ndarray, rng: np.random.Generator, hgain: float = 0.5, sgain: float = 0.5, vgain: float = 0.5
) -> np.ndarray:
    """Random hue/saturation/value gains, in place (and returned), YOLOv5 style: each channel multiplied by
    a gain in [1 - g, 1 + g]; hue wraps round the colour circle, saturation and value are clipped.

    YOLOv5 does this in OpenCV's 8-bit HSV (hue 0-179); Pillow's HSV mode (hue 0-255) is the same circle at
    a finer step, and a multiplicative gain modulo the full circle is the same operation in either scale.
    """
    if not (hgain or sgain or vgain):
        return img
    r = rng.uniform(-1, 1, 3) * np.array([hgain, sgain, vgain]) + 1
    x = np.arange(256, dtype=np.float64)
    luts = (
        ((x * r[0]) % 256).astype(np.uint8),
        np.clip(x * r[1], 0, 255).astype(np.uint8),
        np.clip(x * r[2], 0, 255).astype(np.uint8),
    )
    channels = Image.fromarray(img, "RGB").convert("HSV").split()
    hsv = Image.merge("HSV", [c.point(lut.tolist()) for c, lut in zip(channels, luts, strict=True)])
    img[...] = np.asarray(hsv.convert("RGB"))
    return img


def random_perspective(
    img: np.ndarray,
    targets: np.ndarray,
    rng: np.random.Generator,
    degrees: float = 10.0,
    translate: float = 0.1,
    scale: float = 0.1,
    shear: float = 10.0,
    perspective: float = 0.0,
    border: tuple[int, int] = (0, 0),
) -> tuple[np.ndarray, np.ndarray]:
    """YOLOv5's random geometric augmentation: one 3x3 matrix (centre, perspective, rotation and scale,
    shear, translation), the image warped with Pillow, the boxes' corners mapped and re-boxed.

    ``targets`` (n, 5) is ``[cls, x1, y1, x2, y2]`` in pixels. The output is ``img`` grown by ``2 * border``
    (h, w) (a negative border crops, as the mosaic does). Boxes are clipped to it and dropped by
    :func:`box_candidates`. Coordinates are continuous (a pixel's centre at +0.5), as in Pillow.
    """
    height, width = img.shape[0] + 2 * border[0], img.shape[1] + 2 * border[1]
    centre = np.eye(3)
    centre[0, 2], centre[1, 2] = -img.shape[1] / 2, -img.shape[0] / 2
    persp = np.eye(3)
    persp[2, 0], persp[2, 1] = rng.uniform(-perspective, perspective), rng.uniform(-perspective, perspective)
    angle, s = math.radians(rng.uniform(-degrees, degrees)), rng.uniform(1 - scale, 1 + scale)
    rot = np.eye(3)
    # Positive angles turn counter-clockwise on screen (y down), like OpenCV's getRotationMatrix2D.
    rot[:2, :2] = s * np.array([[math.cos(angle), math.sin(angle)], [-math.sin(angle), math.cos(angle)]])
    sh = np.eye(3)
    sh[0, 1] = math.tan(math.radians(rng.uniform(-shear, shear)))
    sh[1, 0] = math.tan(math.radians(rng.uniform(-shear, shear)))
    trans = np.eye(3)
    trans[0, 2] = rng.uniform(0.5 - translate, 0.5 + translate) * width
    trans[1, 2] = rng.uniform(0.5 - translate, 0.5 + translate) * height
    m = trans @ sh @ rot @ persp @ centre  # applied right to left

    if border[0] or border[1] or (m != np.eye(3)).any():
        inv = np.linalg.inv(m)
        fill = (PAD_VALUE, PAD_VALUE, PAD_VALUE)
        pil = Image.fromarray(img)
        if perspective:
            inv /= inv[2, 2]
            coeffs, method = tuple(inv.ravel()[:8]), Image.Transform.PERSPECTIVE
        else:
            coeffs, method = tuple(inv[:2].ravel()), Image.Transform.AFFINE
        img = np.array(
            pil.transform((width, height), method, coeffs, resample=Image.Resampling.BILINEAR, fillcolor=fill)
        )

    n = len(targets)
    if n:
        corners = np.ones((n * 4, 3))
        corners[:, :2] = targets[:, [1, 2, 3, 4, 1, 4, 3, 2]].reshape(n * 4, 2)  # (x1y1, x2y2, x1y2, x2y1)
        corners = corners @ m.T
        xy = (corners[:, :2] / corners[:, 2:3] if perspective else corners[:, :2]).reshape(n, 8)
        x, y = xy[:, [0, 2, 4, 6]], xy[:, [1, 3, 5, 7]]
        new = np.stack([x.min(1), y.min(1), x.max(1), y.max(1)], axis=1)
        new[:, [0, 2]] = new[:, [0, 2]].clip(0, width)
        new[:, [1, 3]] = new[:, [1, 3]].clip(0, height)
        keep = box_candidates(targets[:, 1:5].T * s, new.T)
        targets = targets[keep].copy()
        targets[:, 1:5] = new[keep]
    return img, targets


def mixup(
    img1: np.ndarray, labels1: np.ndarray, img2: np.ndarray, labels2: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Blend two same-size images with a Beta(32, 32) ratio (close to 0.5) and keep both label sets."""
    r = rng.beta(32.0, 32.0)
    img = (img1 * r + img2 * (1 - r)).astype(np.uint8)
    return img, np.concatenate([labels1, labels2], 0)


def cutout(img: np.ndarray, labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Paint 31 random rectangles of random grey-ish colours (1 of half the image size, 2 of a quarter,
    4 of an eighth, ...), in place; objects more than 60 % covered by one of the larger ones are dropped.

    ``labels`` (n, 5) ``[cls, x1, y1, x2, y2]`` pixels; returns the labels kept.
    """
    h, w = img.shape[:2]
    for s in [0.5] + [0.25] * 2 + [0.125] * 4 + [0.0625] * 8 + [0.03125] * 16:
        mask_h = int(rng.integers(1, max(1, int(h * s)) + 1))
        mask_w = int(rng.integers(1, max(1, int(w * s)) + 1))
        xmin = max(0, int(rng.integers(0, w + 1)) - mask_w // 2)
        ymin = max(0, int(rng.integers(0, h + 1)) - mask_h // 2)
        xmax, ymax = min(w, xmin + mask_w), min(h, ymin + mask_h)
        img[ymin:ymax, xmin:xmax] = rng.integers(64, 192, 3)
        if len(labels) and s > 0.03:
            box = np.array([xmin, ymin, xmax, ymax], dtype=np.float64)
            labels = labels[_box_ioa(box, labels[:, 1:5]) < 0.60]
    return labels


def copy_paste(
    img: np.ndarray, labels: np.ndarray, rng: np.random.Generator, p: float = 0.5
) -> tuple[np.ndarray, np.ndarray]:
    """A box-based copy-paste: paste left-right mirrored copies of objects at their mirrored place.

    YOLOv5's copy-paste cuts objects out along their segmentation polygons; YOLO box labels have none, so
    this variant copies each picked object's whole box (object and the background inside its box) from the
    mirrored image. ``round(p * n)`` objects are tried. An object whose box touches another box is skipped
    (the copy would carry an unlabelled piece of the other object), and a copy is pasted only where it
    covers less than 30 % of every existing box. ``labels`` (n, 5) ``[cls, x1, y1, x2, y2]`` pixels; ``img``
    is changed in place.
    """
    n = len(labels)
    if not p or not n:
        return img, labels
    h, w = img.shape[:2]
    mirrored = img[:, ::-1].copy()
    for j in rng.choice(n, size=min(n, round(p * n)), replace=False).tolist():
        cls, x1, y1, x2, y2 = labels[j]
        others = np.delete(labels[:n, 1:5], j, axis=0)
        if (_box_ioa(labels[j, 1:5], others) > 0).any():
            continue
        box = np.array([w - x2, y1, w - x1, y2])
        if (_box_ioa(box, labels[:, 1:5]) < 0.30).all():
            c1, r1 = max(0, int(math.floor(box[0]))), max(0, int(math.floor(box[1])))
            c2, r2 = min(w, int(math.ceil(box[2]))), min(h, int(math.ceil(box[3])))
            img[r1:r2, c1:c2] = mirrored[r1:r2, c1:c2]
            labels = np.concatenate([labels, np.array([[cls, *box]], dtype=labels.dtype)], 0)
    return img, labels


# ---- the Dataset ----


def _hyp_dict(hyp: object) -> dict:
    if hyp is None:
        return dict(DEFAULT_HYP)
    if dataclasses.is_dataclass(hyp) and not isinstance(hyp, type):
        hyp = dataclasses.asdict(hyp)
    if not isinstance(hyp, Mapping):
        raise TypeError(f"hyp must be a mapping or a dataclass, not {type(hyp).__name__}")
    return {**DEFAULT_HYP, **hyp}


class YoloDataset(torch.utils.data.Dataset):
    """Images and labels of one split, letterboxed (val) or augmented (train), as YOLOv5 feeds them.

    ``__getitem__(i)`` returns ``(img, labels, im_file, shapes)``: ``img`` uint8 (3, H, W) RGB; ``labels``
    (n, 6) float32 ``[0, cls, cx, cy, w, h]`` normalised by the output image (column 0 is filled with the
    image's index in the batch by :meth:`collate_fn`); ``shapes`` is ``((h0, w0), ((h / h0, w / w0),
    (padw, padh)))`` to map boxes back to the original image, or None for a mosaic.

    All randomness of item i comes from ``np.random.default_rng((seed, epoch, i))``; call
    :meth:`set_epoch` every epoch (in every worker: the DataLoader forks after it when workers are not
    persistent). With ``rect`` the samples are sorted by aspect ratio and each batch of ``batch_size``
    consecutive items gets its own shape: use a sequential sampler with that batch size.
    """

    def __init__(
        self,
        samples: Sequence[Sample],
        img_size: int = 640,
        batch_size: int = 16,
        augment: bool = False,
        hyp: Mapping | None = None,
        rect: bool = False,
        stride: int = 32,
        pad: float = 0.0,
        seed: int = 0,
        cache_images: bool = False,
    ) -> None:
        self.samples = list(samples)
        self.img_size = int(img_size)
        self.batch_size = int(batch_size)
        self.augment = augment
        self.hyp = _hyp_dict(hyp)
        self.rect = rect
        self.mosaic = augment and not rect  # rect batches need one shape per batch: no mosaic
        self.mosaic_border = (-self.img_size // 2, -self.img_size // 2)
        self.stride = int(stride)
        self.pad = float(pad)
        self.seed = int(seed)
        self.epoch = 0
        self.batch_shapes: np.ndarray | None = None  # (num_batches, 2) (h, w) with rect
        self.batch_index: np.ndarray | None = None  # (n,) batch of each item with rect
        if rect and self.samples:
            self._make_rect_batches()
        self._images: list[np.ndarray | None] = [None] * len(self.samples)
        if cache_images and self.samples:
            with ThreadPoolExecutor(min(8, os.cpu_count() or 1)) as pool:
                for i, (img, _, _) in enumerate(pool.map(self._read_resized, range(len(self.samples)))):
                    img.setflags(write=False)  # shared by every item: augmentations must copy
                    self._images[i] = img

    def _make_rect_batches(self) -> None:
        wh = np.array([s.shape for s in self.samples], dtype=np.float64)
        aspect = wh[:, 1] / wh[:, 0]  # h / w
        order = np.argsort(aspect, kind="stable")
        self.samples = [self.samples[k] for k in order]
        aspect = aspect[order]
        batch = np.arange(len(aspect)) // self.batch_size
        shapes = np.ones((batch[-1] + 1, 2))
        for b in range(len(shapes)):
            lo, hi = aspect[batch == b].min(), aspect[batch == b].max()
            if hi < 1:  # all wide: full width, height of the tallest
                shapes[b] = [hi, 1]
            elif lo > 1:  # all tall
                shapes[b] = [1, 1 / lo]
        self.batch_shapes = np.ceil(shapes * self.img_size / self.stride + self.pad).astype(int) * self.stride
        self.batch_index = batch

    @property
    def labels(self) -> list[np.ndarray]:
        return [s.labels for s in self.samples]

    @property
    def shapes(self) -> np.ndarray:
        """(n, 2) original (w, h) of every image."""
        return np.array([s.shape for s in self.samples], dtype=np.float64).reshape(-1, 2)

    def __len__(self) -> int:
        return len(self.samples)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def cache_summary(self) -> str:
        cached = [im for im in self._images if im is not None]
        if not cached:
            return "images not cached (read from disk every epoch)"
        mb = sum(im.nbytes for im in cached) / 1e6
        return f"cached {len(cached)} images in RAM ({mb:.1f} MB)"

    def _read_resized(self, i: int) -> tuple[np.ndarray, tuple[int, int], tuple[int, int]]:
        path = self.samples[i].im_file
        try:
            with Image.open(path) as im:
                im = ImageOps.exif_transpose(im).convert("RGB")
        except Exception as e:  # the file changed or vanished since the scan
            raise UserError(f"{path}: cannot read the image ({e}); rescan the dataset") from e
        w0, h0 = im.size
        r = self.img_size / max(h0, w0)
        if r != 1:
            # The long side becomes img_size exactly; the short side is rounded up like YOLOv5 (the epsilon
            # keeps float noise such as 240.00000000000003 from adding a pixel).
            w, h = (max(1, math.ceil(v * r - 1e-6)) for v in (w0, h0))
            method = Image.Resampling.BILINEAR if r > 1 else Image.Resampling.BOX
            im = im.resize((w, h), method)
        img = np.array(im)
        return img, (h0, w0), img.shape[:2]

    def load_image(self, i: int) -> tuple[np.ndarray, tuple[int, int], tuple[int, int]]:
        """Image i as RGB uint8 (h, w, 3) with its long side = img_size, the original (h0, w0) and (h, w).

        A cached image is read-only (shared); copy before changing it.
        """
        cached = self._images[i]
        if cached is not None:
            w0, h0 = self.samples[i].shape
            return cached, (h0, w0), cached.shape[:2]
        return self._read_resized(i)

    def load_mosaic(self, index: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Item ``index`` and 3 random others in the quadrants around a random centre of a 2s x 2s canvas,
        then (optional copy-paste and) random_perspective cropping to s x s. Returns the image and labels
        (n, 5) ``[cls, x1, y1, x2, y2]`` pixels."""
        s = self.img_size
        yc, xc = (int(rng.uniform(-b, 2 * s + b)) for b in self.mosaic_border)
        indices = [index, *rng.integers(0, len(self), 3).tolist()]
        indices = [indices[k] for k in rng.permutation(4)]
        canvas = np.full((2 * s, 2 * s, 3), PAD_VALUE, dtype=np.uint8)
        all_labels = []
        for quadrant, k in enumerate(indices):
            img, _, (h, w) = self.load_image(k)
            if quadrant == 0:  # top left: the image's bottom-right corner at the centre
                x1a, y1a, x2a, y2a = max(xc - w, 0), max(yc - h, 0), xc, yc
                x1b, y1b, x2b, y2b = w - (x2a - x1a), h - (y2a - y1a), w, h
            elif quadrant == 1:  # top right
                x1a, y1a, x2a, y2a = xc, max(yc - h, 0), min(xc + w, 2 * s), yc
                x1b, y1b, x2b, y2b = 0, h - (y2a - y1a), min(w, x2a - x1a), h
            elif quadrant == 2:  # bottom left
                x1a, y1a, x2a, y2a = max(xc - w, 0), yc, xc, min(2 * s, yc + h)
                x1b, y1b, x2b, y2b = w - (x2a - x1a), 0, w, min(y2a - y1a, h)
            else:  # bottom right
                x1a, y1a, x2a, y2a = xc, yc, min(xc + w, 2 * s), min(2 * s, yc + h)
                x1b, y1b, x2b, y2b = 0, 0, min(w, x2a - x1a), min(y2a - y1a, h)
            canvas[y1a:y2a, x1a:x2a] = img[y1b:y2b, x1b:x2b]
            labels = self.samples[k].labels.copy()
            if len(labels):
                labels[:, 1:] = xywhn2xyxy(labels[:, 1:], w, h, x1a - x1b, y1a - y1b)
            all_labels.append(labels)
        labels = np.concatenate(all_labels, 0)
        np.clip(labels[:, 1:], 0, 2 * s, out=labels[:, 1:])
        hyp = self.hyp
        canvas, labels = copy_paste(canvas, labels, rng, p=hyp["copy_paste"])
        return random_perspective(
            canvas,
            labels,
            rng,
            degrees=hyp["degrees"],
            translate=hyp["translate"],
            scale=hyp["scale"],
            shear=hyp["shear"],
            perspective=hyp["perspective"],
            border=self.mosaic_border,
        )

    def __getitem__(self, i: int):
        rng = np.random.default_rng((self.seed, self.epoch, i))
        hyp = self.hyp
        shapes = None
        if self.mosaic and rng.random() < hyp["mosaic"]:
            img, labels = self.load_mosaic(i, rng)
            if rng.random() < hyp["mixup"]:
                img, labels = mixup(img, labels, *self.load_mosaic(int(rng.integers(len(self))), rng), rng)
        else:
            img, (h0, w0), (h, w) = self.load_image(i)
            shape = tuple(self.batch_shapes[self.batch_index[i]]) if self.rect else self.img_size
            img, ratio, pad = letterbox(img, shape, auto=False, scaleup=self.augment)
            shapes = ((h0, w0), ((h / h0, w / w0), pad))
            labels = self.samples[i].labels.copy()
            if len(labels):
                labels[:, 1:] = xywhn2xyxy(labels[:, 1:], ratio[0] * w, ratio[1] * h, pad[0], pad[1])
            if self.augment:
                img, labels = copy_paste(img, labels, rng, p=hyp["copy_paste"])
                img, labels = random_perspective(
                    img,
                    labels,
                    rng,
                    degrees=hyp["degrees"],
                    translate=hyp["translate"],
                    scale=hyp["scale"],
                    shear=hyp["shear"],
                    perspective=hyp["perspective"],
                )
        if self.augment and hyp["cutout"] and rng.random() < hyp["cutout"]:
            labels = cutout(img, labels, rng)
        if len(labels):
            labels[:, 1:5] = xyxy2xywhn(labels[:, 1:5], img.shape[1], img.shape[0], clip=True, eps=1e-3)
        if self.augment:
            augment_hsv(img, rng, hyp["hsv_h"], hyp["hsv_s"], hyp["hsv_v"])
            if rng.random() < hyp["flipud"]:
                img = img[::-1]
                labels[:, 2] = 1 - labels[:, 2]
            if rng.random() < hyp["fliplr"]:
                img = img[:, ::-1]
                labels[:, 1] = 1 - labels[:, 1]
        out = torch.zeros((len(labels), 6), dtype=torch.float32)
        if len(labels):
            out[:, 1:] = torch.from_numpy(labels.astype(np.float32))
        chw = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))
        return chw, out, str(self.samples[i].im_file), shapes

    @staticmethod
    def collate_fn(batch):
        """-> imgs (B, 3, H, W) uint8, targets (N, 6) ``[index in batch, cls, cx, cy, w, h]``, paths tuple,
        shapes tuple."""
        imgs, labels, paths, shapes = zip(*batch, strict=True)
        targets = []
        for k, lb in enumerate(labels):
            lb = lb.clone()
            lb[:, 0] = k
            targets.append(lb)
        return torch.stack(imgs, 0), torch.cat(targets, 0), paths, shapes

    def labels_wh(self) -> tuple[np.ndarray, np.ndarray]:
        """For autoanchor: (N, 2) normalised (w, h) of every label, and (N, 2) original (w, h) of the image
        each label belongs to (row-aligned). Pixel sizes at img_size: ``wh * img_size * image_wh /
        image_wh.max(1, keepdims=True)``."""
        wh = [s.labels[:, 3:5] for s in self.samples]
        image_wh = [np.repeat(np.array([s.shape], dtype=np.float32), len(s.labels), 0) for s in self.samples]
        return (
            np.concatenate(wh, 0).reshape(-1, 2).astype(np.float32) if wh else np.zeros((0, 2), np.float32),
            np.concatenate(image_wh, 0).reshape(-1, 2) if image_wh else np.zeros((0, 2), np.float32),
        )


# ---- pictures ----


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
