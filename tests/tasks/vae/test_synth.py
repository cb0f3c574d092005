"""The synthetic MNIST generator: IDX files, determinism, and digits that are MNIST-like and learnable."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from aics.core.errors import UserError
from aics.tasks.vae.data import MNIST_FILES, read_idx
from aics.tasks.vae.synth import generate, render_digit

FILE_NAMES = [name for pair in MNIST_FILES.values() for name in pair]
N_TRAIN, N_TEST = 300, 205


def load_split(out_dir: Path, split: str, suffix: str = "") -> tuple[np.ndarray, np.ndarray]:
    images_name, labels_name = MNIST_FILES[split]
    return read_idx(out_dir / f"{images_name}{suffix}"), read_idx(out_dir / f"{labels_name}{suffix}")


def nearest_class_mean_accuracy(train: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray]):
    (train_x, train_y), (test_x, test_y) = train, test
    train_x = train_x.reshape(len(train_x), -1) / 255.0
    test_x = test_x.reshape(len(test_x), -1) / 255.0
    means = np.stack([train_x[train_y == c].mean(axis=0) for c in range(10)])
    distances = ((test_x[:, None, :] - means[None]) ** 2).sum(axis=2)
    return float((distances.argmin(axis=1) == test_y).mean())


@pytest.fixture(scope="module")
def small_set(tmp_path_factory) -> tuple[Path, dict]:
    out_dir = tmp_path_factory.mktemp("synth")
    return out_dir, generate(out_dir, n_train=N_TRAIN, n_test=N_TEST, seed=3, show_progress=False)


def test_writes_the_four_mnist_files_with_mnist_shapes(small_set):
    out_dir, summary = small_set
    assert sorted(p.name for p in out_dir.iterdir()) == sorted(FILE_NAMES)
    assert summary["seed"] == 3
    for split, n in (("train", N_TRAIN), ("test", N_TEST)):
        images, labels = load_split(out_dir, split)
        assert images.shape == (n, 28, 28) and images.dtype == np.uint8
        assert labels.shape == (n,) and labels.dtype == np.uint8
        assert labels.max() <= 9
        counts = np.bincount(labels, minlength=10)
        assert len(counts) == 10 and set(counts.tolist()) <= {n // 10, n // 10 + 1} and counts.sum() == n
        info = summary["splits"][split]
        assert info["images"] == n and info["class_counts"] == counts.tolist()
        assert Path(info["images_path"]) == out_dir / MNIST_FILES[split][0]
        assert Path(info["labels_path"]) == out_dir / MNIST_FILES[split][1]


def test_labels_are_shuffled(small_set):
    _, labels = load_split(small_set[0], "train")
    assert not np.array_equal(labels, np.arange(N_TRAIN) % 10)
    assert not np.array_equal(labels, np.sort(labels))


def test_same_seed_gives_byte_identical_files(small_set, tmp_path):
    out_dir, _ = small_set
    generate(tmp_path, n_train=N_TRAIN, n_test=N_TEST, seed=3, show_progress=False)
    for name in FILE_NAMES:
        assert (tmp_path / name).read_bytes() == (out_dir / name).read_bytes(), name


def test_different_seed_gives_different_images(small_set, tmp_path):
    generate(tmp_path, n_train=N_TRAIN, n_test=N_TEST, seed=4, show_progress=False)
    for split in MNIST_FILES:
        mine, other = load_split(small_set[0], split)[0], load_split(tmp_path, split)[0]
        assert mine.shape == other.shape
        assert (mine != other).any(axis=(1, 2)).mean() > 0.95


def test_test_split_does_not_depend_on_train_size(small_set, tmp_path):
    generate(tmp_path, n_train=50, n_test=N_TEST, seed=3, show_progress=False)
    for name in MNIST_FILES["test"]:
        assert (tmp_path / name).read_bytes() == (small_set[0] / name).read_bytes()


def test_gz_files_hold_the_same_arrays(tmp_path):
    plain, zipped = tmp_path / "plain", tmp_path / "zipped"
    generate(plain, n_train=40, n_test=20, seed=5, show_progress=False)
    summary = generate(zipped, n_train=40, n_test=20, seed=5, gz=True, show_progress=True)
    assert sorted(p.name for p in zipped.iterdir()) == sorted(f"{name}.gz" for name in FILE_NAMES)
    assert summary["splits"]["train"]["images_path"].endswith(".gz")
    for name in FILE_NAMES:
        with gzip.open(zipped / f"{name}.gz", "rb") as f:
            assert f.read() == (plain / name).read_bytes()
    for split in MNIST_FILES:
        for a, b in zip(load_split(plain, split), load_split(zipped, split, ".gz"), strict=True):
            np.testing.assert_array_equal(a, b)


def test_images_within_a_class_all_differ(small_set):
    images, labels = load_split(small_set[0], "train")
    for digit in range(10):
        members = images[labels == digit].reshape(-1, 28 * 28)
        assert len(np.unique(members, axis=0)) == len(members), f"duplicate images of {digit}"
        # Not just a few pixels apart: the writer's style changes the whole shape.
        diffs = np.abs(members[:, None, :].astype(np.int16) - members[None, :, :]).astype(bool).sum(axis=2)
        np.fill_diagonal(diffs, 28 * 28)
        assert diffs.min() > 20, f"two images of {digit} differ in only {diffs.min()} pixels"


def test_ink_statistics_are_mnist_like(small_set):
    images, labels = load_split(small_set[0], "train")
    mean_pixel = images.mean() / 255.0
    assert 0.08 <= mean_pixel <= 0.2, mean_pixel
    # A 1 has the least ink, an 8 or a 0 much more (as in MNIST).
    per_class = [images[labels == c].mean() for c in range(10)]
    assert int(np.argmin(per_class)) == 1
    weights = images.astype(np.float64)
    total = weights.sum(axis=(1, 2))
    assert (total > 0).all()
    rows = (weights.sum(axis=2) * np.arange(28)).sum(axis=1) / total
    cols = (weights.sum(axis=1) * np.arange(28)).sum(axis=1) / total
    assert np.abs(rows - 13.5).max() <= 1.5 and np.abs(cols - 13.5).max() <= 1.5
    assert (images.max(axis=(1, 2)) == 255).all()
    for image in images:
        ys, xs = np.nonzero(image)
        # The ink's bounding box is fitted to 20x20, keeping its aspect ratio.
        assert max(np.ptp(ys), np.ptp(xs)) + 1 == 20


def test_nearest_class_mean_learns_the_digits(tmp_path):
    generate(tmp_path / "fit", n_train=1000, n_test=10, seed=11, show_progress=False)
    generate(tmp_path / "eval", n_train=10, n_test=500, seed=12, show_progress=False)
    accuracy = nearest_class_mean_accuracy(
        load_split(tmp_path / "fit", "train"), load_split(tmp_path / "eval", "test")
    )
    assert accuracy > 0.7, accuracy


def test_render_digit_is_driven_by_the_generator():
    image = render_digit(7, np.random.default_rng(0))
    assert image.shape == (28, 28) and image.dtype == np.uint8
    np.testing.assert_array_equal(image, render_digit(7, np.random.default_rng(0)))
    rng = np.random.default_rng(0)
    assert not np.array_equal(render_digit(7, rng), render_digit(7, rng))


@pytest.mark.parametrize("digit", [-1, 10, 2.0, True])
def test_render_digit_rejects_non_digits(digit):
    with pytest.raises(UserError, match="digit"):
        render_digit(digit, np.random.default_rng(0))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_train": 9}, "--n-train 9"),
        ({"n_test": 0}, "--n-test 0"),
        ({"n_train": 100.0}, "--n-train"),
        ({"n_test": True}, "--n-test"),
        ({"seed": -1}, "--seed -1"),
        ({"seed": 1.5}, "--seed"),
    ],
)
def test_bad_arguments_raise_user_error(tmp_path, kwargs, message):
    with pytest.raises(UserError, match=message):
        generate(tmp_path / "out", **{"n_train": 20, "n_test": 20, "show_progress": False, **kwargs})
    assert not (tmp_path / "out").exists()


def test_out_dir_that_is_a_file_is_a_user_error(tmp_path):
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    with pytest.raises(UserError, match="not a directory"):
        generate(not_a_dir, n_train=20, n_test=20, show_progress=False)
