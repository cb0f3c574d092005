"""YOLO label files: every image and label line of a split checked, the result cached beside the labels.

Each image has one label file (:func:`aics.tasks.detect.dataset_yaml.label_path`) with one object per line,
``class cx cy w h``, the box centre and size normalised by the image width and height. A missing or empty
label file is a background image. (A line ``class x1 y1 x2 y2 ...`` with three or more polygon points is
also accepted, as YOLOv5 does for segment labels, and read as the polygon's enclosing box.)
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from aics.core.errors import UserError
from aics.core.io import atomic_write, write_text
from aics.core.log import get_logger, progress
from aics.tasks.detect.dataset_yaml import image_files, is_image_name, label_path

# Pillow's format names of the files we accept (an .jpg that is really a GIF is refused).
PIL_FORMATS = ("BMP", "JPEG", "MPO", "PNG", "TIFF", "WEBP")
MIN_IMAGE_SIDE = 10
COORD_TOLERANCE = 1e-6  # normalised coordinates this far outside [0, 1] are rounding, clipped silently
CACHE_VERSION = 1
CACHE_SUFFIX = ".cache.npz"
EXIF_ORIENTATION = 0x0112


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


@dataclass(frozen=True)
class Problem:
    """A problem found by the scan, in an ``image`` or a ``label`` file (``line`` 0: the whole file)."""

    kind: str
    path: Path
    what: str
    line: int = 0

    def describe(self, root: Path | None = None) -> str:
        """``file[:line]: what``, the file relative to ``root`` when it lies under it."""
        return f"{_shown(self.path, root)}{f':{self.line}' if self.line else ''}: {self.what}"


def _shown(path: Path, root: Path | None) -> str:
    if root is not None and path.is_relative_to(root):
        return path.relative_to(root).as_posix()
    return str(path)


@dataclass
class _Checked:
    shape: tuple[int, int] = (0, 0)
    labels: np.ndarray = field(default_factory=lambda: np.zeros((0, 5), np.float32))
    status: str = "found"  # found, missing, empty
    duplicates: int = 0
    problems: list[Problem] = field(default_factory=list)


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
        # Pillow's messages often name the file; the problem line names it already.
        detail = str(e).replace(f" '{path}'", "").replace(str(path), "").strip() or "no details"
        return (0, 0), f"cannot read the image ({type(e).__name__}: {detail})"
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
        out.problems.append(Problem("image", im_file, problem))
    lf = label_path(im_file)
    if not lf.is_file():
        out.status = "missing"
        return out
    try:
        text = lf.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        detail = e.strerror if isinstance(e, OSError) and e.strerror else str(e)  # without the path
        out.problems.append(Problem("label", lf, f"cannot read the label file ({detail})"))
        return out
    rows = []
    for lineno, line in enumerate(text.splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        row, problem = _parse_label_line(parts, nc)
        if problem:
            out.problems.append(Problem("label", lf, problem, lineno))
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


def _dataset_root(img_files: Sequence[Path]) -> Path | None:
    """The directory above both the images and their labels (``root`` of ``root/images/train/x.jpg`` and
    ``root/labels/train/x.txt``), or None when they share none (another drive)."""
    try:
        return Path(os.path.commonpath([*(str(f) for f in img_files), str(label_path(img_files[0]))]))
    except ValueError:
        return None


def _problems_summary(problems: Sequence[Problem], split: str | None) -> str:
    """The count and where: e.g. ``3 problems in the train labels`` or ``4 problems in the train images (1)
    and labels (3)``."""
    n = len(problems)
    per_kind = {k: sum(p.kind == k for p in problems) for k in ("image", "label")}
    where = " and ".join(
        f"{k}s ({c})" if all(per_kind.values()) else f"{k}s" for k, c in per_kind.items() if c
    )
    return f"{n} problem{'s' if n > 1 else ''} in the {split + ' ' if split else ''}{where}"


def _write_report(report: Path, header: str, lines: list[str]) -> Path:
    text = "".join(f"{line}\n" for line in [f"# {header}", *lines])
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
    Every problem is collected as ``file:line: what`` (the file relative to the dataset root, the directory
    above both images and labels); if there is any, all of them are written to a ``<split>.problems.txt``
    beside the cache (a ``#`` line naming the root first) and one UserError names the root, how many image
    and label problems there are and the first one.
    """
    img_files = [Path(f) for f in img_files]
    if not img_files:
        raise UserError(f"no {split + ' ' if split else ''}images to scan; check the paths of the data yaml")
    if not all(is_image_name(f) for f in img_files):
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
        root = _dataset_root(img_files)
        summary = _problems_summary(problems, split) + (f" under {root}" if root is not None else "")
        lines = [p.describe(root) for p in problems]
        header = summary + ("; paths relative to it" if root is not None else "")
        report = _write_report(_report_path(cache), header, lines)
        raise UserError(
            f"{summary}; first: {lines[0]}; all listed in {_shown(report, root)}; fix or remove those files"
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
