"""MNIST in its own on-disk format (IDX, optionally gzipped): read, validate, split, batch.

The four files of a MNIST directory (``.gz`` or not)::

    train-images-idx3-ubyte  train-labels-idx1-ubyte  t10k-images-idx3-ubyte  t10k-labels-idx1-ubyte

``prepare`` validates them, holds out a seeded validation split from train, and writes
``{train,valid,test}-{images-idx3,labels-idx1}-ubyte`` plus ``stats.json`` into the prepared directory.
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np

from aics.core.errors import UserError
from aics.core.io import atomic_write, write_json
from aics.core.stage import begin_stage, mark_done, require_done

# IDX type codes -> numpy dtypes (big-endian for multi-byte types).
IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
IDX_CODES = {np.dtype(np.uint8): 0x08, np.dtype(np.int8): 0x09}
MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
SPLITS = ("train", "valid", "test")
NUM_CLASSES = 10


def _open(path: Path, mode: str):
    return gzip.open(path, mode) if path.suffix == ".gz" else open(path, mode)


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (``.gz`` allowed); malformed files raise a UserError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: file not found")
    try:
        with _open(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as e:
        raise UserError(
            f"{path}: cannot read ({e}); the file is corrupt, download or generate it again"
        ) from e
    if len(raw) < 4:
        raise UserError(f"{path}: only {len(raw)} bytes, too short for an IDX header; the file is truncated")
    zero, code, ndim = raw[:2], raw[2], raw[3]
    if zero != b"\x00\x00" or code not in IDX_DTYPES or ndim == 0:
        magic = struct.unpack(">I", raw[:4])[0]
        raise UserError(
            f"{path}: bad IDX magic number 0x{magic:08x} (expected 0x00000801 for labels or 0x00000803 for "
            "images); is this an MNIST file? gzipped files must end in .gz"
        )
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise UserError(f"{path}: header says {ndim} dimensions but the file ends inside the header")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    dtype = np.dtype(IDX_DTYPES[code])
    expected = int(np.prod(dims)) * dtype.itemsize
    found = len(raw) - header
    if found > expected:
        raise UserError(
            f"{path}: {found} data bytes, but its header (dimensions {'x'.join(map(str, dims))}) describes "
            f"only {expected}: the header does not fit the data (a labels header on an images file?); "
            "download or generate the file again"
        )
    if found < expected:
        raise UserError(
            f"{path}: size mismatch: dimensions {'x'.join(map(str, dims))} need {expected} data bytes, "
            f"found {found}; the file is truncated or corrupt, download or generate it again"
        )
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims).astype(dtype.newbyteorder("="))


def write_idx(path: str | Path, array: np.ndarray) -> None:
    """Write a uint8/int8 array as IDX, atomically; gzipped when ``path`` ends in ``.gz``."""
    path = Path(path)
    array = np.ascontiguousarray(array)
    if array.dtype not in IDX_CODES:
        raise TypeError(f"write_idx supports uint8 and int8, not {array.dtype}")
    header = struct.pack(">BBBB", 0, 0, IDX_CODES[array.dtype], array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    with atomic_write(path, "wb") as f:
        if path.suffix == ".gz":
            with gzip.GzipFile(fileobj=f, mode="wb", mtime=0) as gz:
                gz.write(header + array.tobytes())
        else:
            f.write(header + array.tobytes())


def find_mnist_file(src: Path, name: str) -> Path:
    for candidate in (src / name, src / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    raise UserError(
        f"{src}: missing {name}[.gz]; point --src at a MNIST directory "
        "(scripts/download_mnist.sh fetches it, `aics vae synth` writes an offline one)"
    )


def load_pair(images_path: Path, labels_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read one images/labels pair and check them against each other; every problem is reported."""
    images, labels = read_idx(images_path), read_idx(labels_path)
    problems = []
    if images.ndim != 3 or images.dtype != np.uint8:
        problems.append(
            f"{images_path}: expected uint8 images of shape N x H x W, got {images.dtype} {images.shape}"
        )
    if labels.ndim != 1 or labels.dtype != np.uint8:
        problems.append(f"{labels_path}: expected uint8 labels of shape N, got {labels.dtype} {labels.shape}")
    if not problems and len(images) != len(labels):
        problems.append(f"{labels_path}: {len(labels)} labels for {len(images)} images in {images_path.name}")
    if not problems and len(labels) and labels.max() >= NUM_CLASSES:
        bad = np.flatnonzero(labels >= NUM_CLASSES)
        problems.append(
            f"{labels_path}: {len(bad)} labels outside 0..9 (first at index {bad[0]}: {labels[bad[0]]})"
        )
    if not problems and len(images) == 0:
        problems.append(f"{images_path}: contains no images")
    if problems:
        raise UserError("; ".join(problems))
    return images, labels


def prepare(
    src: str | Path, out: str | Path, valid_size: int = 5000, seed: int = 0, overwrite: bool = False
) -> dict:
    """Validate a MNIST directory and write the train/valid/test splits into ``out``."""
    src, out = Path(src), Path(out)
    if not src.is_dir():
        raise UserError(f"{src}: no such directory; pass the MNIST directory with --src")
    pairs = {s: tuple(find_mnist_file(src, n) for n in names) for s, names in MNIST_FILES.items()}
    loaded = {s: load_pair(*p) for s, p in pairs.items()}
    shapes = {s: x.shape[1:] for s, (x, _) in loaded.items()}
    if shapes["train"] != shapes["test"]:
        raise UserError(f"{src}: train images are {shapes['train']} but test images are {shapes['test']}")
    train_x, train_y = loaded["train"]
    if not 0 < valid_size < len(train_x):
        raise UserError(
            f"--valid-size {valid_size}: must be between 1 and {len(train_x) - 1} "
            f"(the train set of {src} has {len(train_x)} images)"
        )
    params = {"src": str(src.resolve()), "valid_size": valid_size, "seed": seed}
    if not begin_stage(out, overwrite, what="prepare", params=params):
        return read_stats(out)
    perm = np.random.default_rng(seed).permutation(len(train_x))
    valid_idx, train_idx = np.sort(perm[:valid_size]), np.sort(perm[valid_size:])
    splits = {
        "train": (train_x[train_idx], train_y[train_idx]),
        "valid": (train_x[valid_idx], train_y[valid_idx]),
        "test": loaded["test"],
    }
    stats: dict = {"source": str(src), "image_shape": list(shapes["train"]), "splits": {}}
    for split, (x, y) in splits.items():
        write_idx(out / f"{split}-images-idx3-ubyte", x)
        write_idx(out / f"{split}-labels-idx1-ubyte", y)
        stats["splits"][split] = {
            "images": int(len(x)),
            "class_counts": np.bincount(y, minlength=NUM_CLASSES).tolist(),
            "mean_pixel": round(float(x.mean()) / 255.0, 4),
        }
    write_json(out / "stats.json", stats)
    mark_done(out, {"images": {s: v["images"] for s, v in stats["splits"].items()}}, params=params)
    return stats


def read_stats(data_dir: str | Path) -> dict:
    from aics.core.io import read_json

    return read_json(Path(data_dir) / "stats.json")


def check_prepared(data_dir: str | Path) -> Path:
    return require_done(data_dir, "prepare", "run `aics vae prepare --src MNIST_DIR --out DIR` first")


class MnistSplit:
    """One prepared split in memory: ``images`` float (N, 1, H, W) in [0, 1], ``labels`` long (N,).

    ``__getitems__`` hands the DataLoader a whole batch at once (no per-image Python work).
    """

    def __init__(self, data_dir: str | Path, split: str):
        import torch

        data_dir = check_prepared(data_dir)
        if split not in SPLITS:
            raise UserError(f"unknown split '{split}'; use one of {', '.join(SPLITS)}")
        x, y = load_pair(data_dir / f"{split}-images-idx3-ubyte", data_dir / f"{split}-labels-idx1-ubyte")
        self.images = torch.from_numpy(x.copy()).unsqueeze(1).float().div_(255.0)
        self.labels = torch.from_numpy(y.astype(np.int64))

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        return self.images[i], self.labels[i]

    def __getitems__(self, indices: list[int]):
        import torch

        idx = torch.as_tensor(indices, dtype=torch.long)
        return self.images[idx], self.labels[idx]


def batch_collate(batch):
    """The batch from ``MnistSplit.__getitems__`` is already collated."""
    return batch
