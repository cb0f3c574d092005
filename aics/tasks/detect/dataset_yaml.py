"""The YOLOv5 dataset yaml and the files it names: the image lists of each split and their label files.

A dataset yaml names a root (``path``, relative paths taken from the yaml's directory), the ``train``/``val``
(optional ``test``) image sets relative to it (a directory, a ``.txt`` file listing image paths, or a list of
those) and the class ``names`` (a list or an ``{index: name}`` dict)::

    path: .
    train: images/train
    val: images/val
    names: [circle, square, triangle]

Each image ``.../images/<split>/x.jpg`` has its labels in ``.../labels/<split>/x.txt`` (:func:`label_path`);
:mod:`aics.tasks.detect.labels` reads and checks them.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from aics.core.errors import UserError

IMG_FORMATS = ("bmp", "jpeg", "jpg", "png", "tif", "tiff", "webp")


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


def is_image_name(p: Path) -> bool:
    return p.suffix[1:].lower() in IMG_FORMATS


def image_files(spec_paths: str | os.PathLike | Sequence[str | os.PathLike]) -> list[Path]:
    """The images of a split: directories (searched recursively), ``.txt`` lists (relative lines are taken
    from the list's directory) or single images; sorted, without duplicates."""
    items = [spec_paths] if isinstance(spec_paths, (str, os.PathLike)) else list(spec_paths)
    files: set[Path] = set()
    for p in map(Path, items):
        if p.is_dir():
            files.update(f for f in p.rglob("*") if is_image_name(f) and f.is_file())
        elif p.is_file() and p.suffix.lower() == ".txt":
            for line in p.read_text(encoding="utf-8").splitlines():
                entry = Path(line.strip())
                if line.strip() and is_image_name(entry):
                    files.add(Path(os.path.normpath(entry if entry.is_absolute() else p.parent / entry)))
        elif p.is_file() and is_image_name(p):
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
