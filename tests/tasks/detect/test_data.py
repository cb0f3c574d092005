"""YOLO-format data: yaml, label validation and cache, letterbox, augmentation, the Dataset."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from PIL import Image

from aics.core.errors import UserError
from aics.tasks.detect import data as D
from aics.tasks.detect.data import (
    YoloDataset,
    augment_hsv,
    copy_paste,
    cutout,
    image_files,
    label_path,
    letterbox,
    load_data_yaml,
    plot_batch,
    plot_labels,
    random_perspective,
    scan_labels,
)

BG = 100  # grey background of the hand-made images
CLASS_COLORS = [(250, 0, 0), (0, 250, 0), (0, 0, 250)]


def write_image(root, split, name, size, boxes, ext="png"):
    """An image of ``size`` (w, h) with solid rectangles ``boxes`` [(cls, x1, y1, x2, y2) px], and labels."""
    w, h = size
    img = np.full((h, w, 3), BG, np.uint8)
    lines = []
    for c, x1, y1, x2, y2 in boxes:
        img[y1:y2, x1:x2] = CLASS_COLORS[c]
        lines.append(f"{c} {(x1 + x2) / 2 / w} {(y1 + y2) / 2 / h} {(x2 - x1) / w} {(y2 - y1) / h}")
    (root / "images" / split).mkdir(parents=True, exist_ok=True)
    (root / "labels" / split).mkdir(parents=True, exist_ok=True)
    path = root / "images" / split / f"{name}.{ext}"
    Image.fromarray(img).save(path)
    (root / "labels" / split / f"{name}.txt").write_text("\n".join(lines) + "\n" if lines else "")
    return path


@pytest.fixture
def tiny_set(tmp_path):
    """Eight images of mixed aspect ratios, each with 1-2 coloured rectangles."""
    rng = np.random.default_rng(0)
    sizes = [(64, 48), (48, 64), (64, 64), (80, 40), (40, 80), (64, 32), (56, 64), (64, 56)]
    for k, (w, h) in enumerate(sizes):
        boxes = []
        for j in range(1 + k % 2):
            bw, bh = int(rng.integers(10, w // 2)), int(rng.integers(10, h // 2))
            x1 = int(rng.integers(0, w - bw)) if j == 0 else w - bw
            y1 = int(rng.integers(0, h - bh)) if j == 0 else h - bh
            boxes.append((int(rng.integers(3)), x1, y1, x1 + bw, y1 + bh))
        write_image(tmp_path, "train", f"im{k}", (w, h), boxes[:1] if k % 2 == 0 else boxes)
    return scan_labels(image_files(tmp_path / "images" / "train"), nc=3).samples


# ---- yaml and file lists ----


def test_load_data_yaml(tmp_path):
    (tmp_path / "ds" / "images" / "train").mkdir(parents=True)
    (tmp_path / "ds" / "images" / "val").mkdir(parents=True)
    (tmp_path / "ds" / "val.txt").write_text("./images/val/a.jpg\n")
    y = tmp_path / "conf" / "d.yaml"
    y.parent.mkdir()
    y.write_text("path: ../ds\ntrain: images/train\nval: [images/val, val.txt]\nnames: {0: cat, 1: dog}\n")
    spec = load_data_yaml(y)
    root = (tmp_path / "ds").resolve()
    assert spec.root == root and spec.nc == 2 and spec.names == ["cat", "dog"]
    assert spec.train == [root / "images/train"] and spec.val == [root / "images/val", root / "val.txt"]
    assert spec.test == []

    y.write_text("path: ../ds\ntrain: images/train\nval: images/val\nnc: 3\nnames: [a, b]\n")
    with pytest.raises(UserError, match=r"d\.yaml: key 'nc' is 3 but 'names' has 2 classes"):
        load_data_yaml(y)
    y.write_text("path: ../ds\ntrain: images/train\nval: images/nope\nnames: [a]\n")
    with pytest.raises(UserError, match=r"d\.yaml: key 'val': .*images/nope not found"):
        load_data_yaml(y)
    y.write_text("path: ../ds\ntrain: images/train\nval: images/val\n")
    with pytest.raises(UserError, match=r"d\.yaml: key 'names' is missing"):
        load_data_yaml(y)
    y.write_text("path: ../ds\nval: images/val\nnames: [a]\n")
    with pytest.raises(UserError, match=r"d\.yaml: key 'train' is missing"):
        load_data_yaml(y)
    y.write_text("path: ../ds\ntrain: images/train\nval: images/val\nnames: {0: a, 2: b}\n")
    with pytest.raises(UserError, match=r"key 'names': indices \[0, 2\]"):
        load_data_yaml(y)
    with pytest.raises(UserError, match="dataset yaml not found"):
        load_data_yaml(tmp_path / "missing.yaml")


def test_image_files_and_label_path(tmp_path):
    d = tmp_path / "images" / "train"
    (d / "sub").mkdir(parents=True)
    for name in ("b.JPG", "a.png", "sub/c.webp", "notes.txt", "x.gif"):
        (d / name).write_bytes(b"")
    assert [p.name for p in image_files(d)] == ["a.png", "b.JPG", "c.webp"]
    listing = tmp_path / "list.txt"
    listing.write_text("./images/train/a.png\n\nimages/train/b.JPG\n./images/train/a.png\n")
    assert image_files(listing) == [d / "a.png", d / "b.JPG"]
    assert image_files([listing, d / "sub"]) == [d / "a.png", d / "b.JPG", d / "sub" / "c.webp"]
    (tmp_path / "empty.txt").write_text("\n")
    with pytest.raises(UserError, match="no images found"):
        image_files(tmp_path / "empty.txt")
    with pytest.raises(UserError, match="not found"):
        image_files(tmp_path / "nope")
    sep = os.sep
    assert label_path(f"{sep}d{sep}images{sep}x{sep}images{sep}v{sep}a.b.jpg") == D.Path(
        f"{sep}d{sep}images{sep}x{sep}labels{sep}v{sep}a.b.txt"
    )
    assert label_path(f"{sep}d{sep}pics{sep}a.png") == D.Path(f"{sep}d{sep}pics{sep}a.txt")


# ---- label validation and cache ----


def test_scan_reports_every_problem(tmp_path):
    write_image(tmp_path, "train", "a", (32, 32), [(0, 2, 2, 12, 12)])
    with open(tmp_path / "labels/train/a.txt", "a") as f:
        f.write("7 0.5 0.5 0.1 0.1\n0 1.2 0.5 0.1 0.1\n")
    write_image(tmp_path, "train", "b", (32, 32), [])
    (tmp_path / "labels/train/b.txt").write_text("0 0.5 0.5 0.1\n")
    write_image(tmp_path, "train", "c", (32, 32), [])
    (tmp_path / "labels/train/c.txt").write_text("1 0.5 abc 0.1 0.1\n\n0 0.5 0.5 0 0.2\n")
    write_image(tmp_path, "train", "d", (32, 32), [(1, 0, 0, 8, 8)], ext="jpg")
    (tmp_path / "images/train/d.jpg").write_bytes(b"\xff\xd8 this is not a jpeg")
    write_image(tmp_path, "train", "e", (32, 32), [])  # empty label file: background, fine
    write_image(tmp_path, "train", "f", (32, 32), [(2, 1, 1, 9, 9)])
    (tmp_path / "labels/train/f.txt").unlink()  # missing label file: background, fine
    write_image(tmp_path, "train", "g", (5, 40), [])  # too small
    write_image(tmp_path, "train", "h", (32, 32), [(0, 2, 2, 12, 12)])
    (tmp_path / "labels/train/h.txt").write_text("0.5 0.5 0.5 0.1 0.1\n")  # class not an integer

    files = image_files(tmp_path / "images/train")
    with pytest.raises(UserError) as info:
        scan_labels(files, nc=3)
    msg = str(info.value)
    report = tmp_path / "labels" / "train.problems.txt"
    assert msg.startswith(f"8 problems in the labels of {tmp_path / 'images/train'}, first: ")
    assert f"first: {tmp_path / 'labels/train/a.txt'}:2: class 7 out of range [0, 3)" in msg
    assert f"all listed in {report}; fix or remove those files" in msg
    lines = report.read_text().splitlines()
    expected = [
        "labels/train/a.txt:2: class 7 out of range",
        "labels/train/a.txt:3: coordinate 1.2 outside [0, 1]",
        "labels/train/b.txt:1: 4 columns, expected 5",
        "labels/train/c.txt:1: non-numeric value 'abc'",
        "labels/train/c.txt:3: box width/height 0/0.2 must be > 0",
        "images/train/d.jpg: cannot read the image",
        "images/train/g.png: image is 5x40 px, smaller than 10 px",
        "labels/train/h.txt:1: class 0.5 is not an integer",
    ]
    assert len(lines) == len(expected)
    for line, want in zip(lines, expected, strict=True):
        assert line.startswith(str(tmp_path / want.split(":")[0])) and want in line, (line, want)
    assert not (tmp_path / "labels" / f"train{D.CACHE_SUFFIX}").exists()  # failed scans are not cached
    # The split's directory (as a DataSpec lists it) is expanded; the split's name goes into the message.
    with pytest.raises(UserError, match=r"^8 problems in the train labels of "):
        scan_labels([tmp_path / "images/train"], nc=3, split="train")


def test_scan_stats_duplicates_and_tolerance(tmp_path):
    write_image(tmp_path, "train", "a", (40, 20), [(0, 0, 0, 10, 10), (1, 20, 5, 40, 15)])
    with open(tmp_path / "labels/train/a.txt", "a") as f:
        f.write("0 0.125 0.25 0.25 0.5\n")  # a duplicate of the first row (written differently)
        f.write("2 1.0000001 0.5 0.2 0.2\n")  # within the tolerance: clipped to 1
    write_image(tmp_path, "train", "b", (20, 20), [])
    write_image(tmp_path, "train", "c", (20, 30), [])
    (tmp_path / "labels/train/c.txt").unlink()
    result = scan_labels(image_files(tmp_path / "images/train"), nc=3)
    assert result.stats == {"images": 3, "found": 1, "missing": 1, "empty": 1, "duplicates": 1, "labels": 3}
    a, b, c = result.samples
    np.testing.assert_allclose(
        a.labels, [[0, 0.125, 0.25, 0.25, 0.5], [1, 0.75, 0.5, 0.5, 0.5], [2, 1.0, 0.5, 0.2, 0.2]], atol=1e-7
    )
    assert a.labels.dtype == np.float32 and b.labels.shape == (0, 5) and c.shape == (20, 30)


def test_scan_cache_reused_and_invalidated(tmp_path, monkeypatch):
    write_image(tmp_path, "train", "a", (32, 32), [(0, 2, 2, 12, 12)])
    write_image(tmp_path, "train", "b", (48, 32), [(1, 4, 4, 20, 30), (2, 30, 1, 47, 9)])
    files = image_files(tmp_path / "images/train")
    first = scan_labels(files, nc=3)
    cache = tmp_path / "labels" / f"train{D.CACHE_SUFFIX}"
    assert cache.is_file() and first.cache_path == cache and not first.from_cache
    with np.load(cache, allow_pickle=False) as z:  # plain arrays, no pickled objects
        assert z["labels"].shape == (3, 5)

    def refuse(*args, **kwargs):
        raise AssertionError("the cache should make opening images unnecessary")

    monkeypatch.setattr(D.Image, "open", refuse)
    again = scan_labels(files, nc=3)
    assert again.from_cache and again.stats == first.stats
    for s, t in zip(first.samples, again.samples, strict=True):
        assert s.im_file == t.im_file and s.shape == t.shape
        np.testing.assert_array_equal(s.labels, t.labels)

    # A changed label file (or another nc) makes the cache stale: the images are scanned again.
    (tmp_path / "labels/train/a.txt").write_text("2 0.5 0.5 0.25 0.25\n0 0.1 0.1 0.1 0.1\n")
    with pytest.raises(UserError, match="unnecessary"):  # it had to open the images again
        scan_labels(files, nc=3)
    monkeypatch.undo()
    fresh = scan_labels(files, nc=3)
    assert not fresh.from_cache and fresh.samples[0].labels[:, 0].tolist() == [2, 0]
    assert scan_labels(files, nc=3).from_cache
    assert not scan_labels(files, nc=4).from_cache

    # A cache file that cannot be written is skipped, not an error.
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    result = scan_labels(files, nc=3, cache_path=blocker / "sub" / "x.cache.npz")
    assert not result.from_cache and len(result.samples) == 2
    # A corrupt cache is rebuilt.
    cache.write_bytes(b"garbage")
    assert not scan_labels(files, nc=3).from_cache


# ---- letterbox ----


def test_letterbox_hand_examples():
    img = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    out, ratio, pad = letterbox(img, 640, auto=False)
    assert out.shape == (640, 640, 3) and ratio == (1.0, 1.0) and pad == (0.0, 80.0)
    assert (out[:80] == 114).all() and (out[560:] == 114).all()
    np.testing.assert_array_equal(out[80:560], img)

    out, ratio, pad = letterbox(img, 640, auto=True)
    assert out.shape == (480, 640, 3) and pad == (0.0, 0.0)
    np.testing.assert_array_equal(out, img)
    assert out is not img  # always a fresh array (callers augment it in place)

    tall = np.zeros((500, 375, 3), np.uint8)
    out, ratio, pad = letterbox(tall, 320, auto=True)  # r = 0.64: 240 x 320, width padded to 256
    assert out.shape == (320, 256, 3) and ratio == (0.64, 0.64) and pad == (8.0, 0.0)
    out, _, pad = letterbox(tall, 320, auto=False)
    assert out.shape == (320, 320, 3) and pad == (40.0, 0.0)

    odd = np.zeros((10, 7, 3), np.uint8)  # r = 1.6: 11 x 16, 5 columns of padding split 2 | 3
    out, ratio, pad = letterbox(odd, 16, auto=False)
    assert out.shape == (16, 16, 3) and pad == (2.5, 0.0)
    assert (out[:, :2] == 114).all() and (out[:, 13:] == 114).all() and (out[:, 2:13] == 0).all()

    small = np.full((100, 200, 3), 7, np.uint8)
    out, ratio, pad = letterbox(small, 640, auto=False, scaleup=False)  # no upscaling
    assert out.shape == (640, 640, 3) and ratio == (1.0, 1.0) and pad == (220.0, 270.0)
    np.testing.assert_array_equal(out[270:370, 220:420], small)
    out, ratio, pad = letterbox(small, 640, auto=True, scaleup=False)
    assert out.shape == (128, 224, 3) and pad == (12.0, 14.0)  # 440 % 32 = 24, 540 % 32 = 28

    out, ratio, pad = letterbox(small, (64, 64), auto=False, scale_fill=True)
    assert out.shape == (64, 64, 3) and ratio == (0.32, 0.64) and pad == (0.0, 0.0)

    out, ratio, pad = letterbox(img, (320, 480), auto=False)  # (h, w); r = 2/3: 427 x 320
    assert out.shape == (320, 480, 3) and pad == (26.5, 0.0)
    assert (out[:, :26] == 114).all() and (out[:, 453:] == 114).all()


def test_resize_is_area_average_when_shrinking():
    img = np.zeros((4, 4, 3), np.uint8)
    img[:2, :2] = 200
    img[0, 0] = 40
    out = D.resize_image(img, 2, 2)
    assert out[0, 0, 0] == 160 and out[1, 1, 0] == 0  # (40 + 3 * 200) / 4


# ---- augmentation ----


class FixedDraws:
    """Stands in for a Generator in random_perspective: returns the given values of uniform() in turn."""

    def __init__(self, values):
        self.values = iter(values)

    def uniform(self, low, high):
        v = next(self.values)
        assert low <= v <= high
        return v


def test_random_perspective_identity_keeps_image_and_boxes():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)
    targets = np.array([[0, 10, 10, 30, 40], [2, 50.5, 5.25, 79, 59]])
    out, t = random_perspective(img, targets, rng, degrees=0, translate=0, scale=0, shear=0, perspective=0)
    np.testing.assert_array_equal(out, img)
    np.testing.assert_array_equal(t, targets)


def test_random_perspective_translation_is_exact():
    img = np.random.default_rng(1).integers(0, 256, (100, 100, 3), dtype=np.uint8)
    targets = np.array([[1, 20.0, 30.0, 50.0, 70.0], [0, 95.0, 10.0, 100.0, 40.0], [2, 0.0, 0.0, 30.0, 8.0]])
    # perspective x, y; angle; scale; shear x, y; translation x, y (as fractions of the size)
    rng = FixedDraws([0, 0, 0, 1, 0, 0, 0.6, 0.45])
    out, t = random_perspective(img, targets, rng, degrees=0, translate=0.2, scale=0, shear=0)
    # The image moved 10 px right and 5 px up; uncovered pixels are 114.
    np.testing.assert_array_equal(out[:95, 10:], img[5:, :90])
    assert (out[:, :10] == 114).all() and (out[95:] == 114).all()
    # Box 0 moved; box 1 left the image (clipped to 0 px wide: dropped); box 2 was clipped at the top.
    np.testing.assert_array_equal(t, [[1, 30.0, 25.0, 60.0, 65.0], [2, 10.0, 0.0, 40.0, 3.0]])


def test_random_perspective_quarter_turn():
    img = np.random.default_rng(2).integers(0, 256, (100, 100, 3), dtype=np.uint8)
    targets = np.array([[0, 10.0, 20.0, 30.0, 60.0]])
    rng = FixedDraws([0, 0, 90.0, 1, 0, 0, 0.5, 0.5])
    out, t = random_perspective(img, targets, rng, degrees=90, translate=0, scale=0, shear=0)
    assert np.abs(out.astype(int) - np.rot90(img).astype(int)).max() <= 1  # counter-clockwise on screen
    np.testing.assert_allclose(t, [[0, 20.0, 70.0, 60.0, 90.0]], atol=1e-9)


def test_random_perspective_with_perspective_and_border():
    rng = np.random.default_rng(3)
    img = np.full((128, 128, 3), 50, np.uint8)
    targets = np.array([[0, 40.0, 40.0, 90.0, 90.0]])
    out, t = random_perspective(img, targets, rng, 5, 0.1, 0.2, 5, 0.0005, border=(-32, -32))
    assert out.shape == (64, 64, 3)
    assert ((t[:, 1:] >= 0) & (t[:, 1:] <= 64)).all()


def test_augment_hsv():
    img = np.full((4, 4, 3), 120, np.uint8)
    before = img.copy()
    augment_hsv(img, np.random.default_rng(0), 0.0, 0.0, 0.0)
    np.testing.assert_array_equal(img, before)
    # Grey has no hue or saturation: only the value gain acts, and it is the third draw.
    gain = np.random.default_rng(5).uniform(-1, 1, 3)[2] * 0.4 + 1
    out = augment_hsv(img, np.random.default_rng(5), 0.5, 0.7, 0.4)
    assert out is img
    assert np.abs(img.astype(int) - int(120 * gain)).max() <= 1
    # Red with a hue gain moves round the colour circle but keeps its brightness.
    red = np.zeros((2, 2, 3), np.uint8)
    red[..., 0] = 200
    red[..., 1] = 40
    augment_hsv(red, np.random.default_rng(1), 0.9, 0.0, 0.0)
    assert red.max() == 200 and not (red[..., 1] == 40).all()


def test_cutout_and_copy_paste():
    rng = np.random.default_rng(0)
    img = np.full((100, 100, 3), 10, np.uint8)
    img[10:30, 5:25] = 200
    labels = np.array([[3, 5.0, 10.0, 25.0, 30.0]])
    out, lb = copy_paste(img.copy(), labels, rng, p=1.0)
    np.testing.assert_array_equal(lb, [[3, 5, 10, 25, 30], [3, 75, 10, 95, 30]])
    assert (out[10:30, 75:95] == 200).all() and (out[10:30, 5:25] == 200).all()
    centred = np.array([[1, 40.0, 40.0, 60.0, 60.0]])  # its mirror overlaps itself: not pasted
    _, lb = copy_paste(img.copy(), centred, rng, p=1.0)
    assert len(lb) == 1
    touching = np.array(
        [[1, 5.0, 10.0, 25.0, 30.0], [2, 20.0, 25.0, 30.0, 40.0]]
    )  # copies would cut the other
    out, lb = copy_paste(img.copy(), touching, rng, p=1.0)
    assert len(lb) == 2 and (out == img).all()
    many = np.array([[k % 3, x, x, x + 8.0, x + 8.0] for k, x in enumerate(range(0, 90, 10))])
    cut = img.copy()
    kept = cutout(cut, many, np.random.default_rng(1))
    assert len(kept) <= len(many) and (cut != img).any()
    assert all(any((row == m).all() for m in many) for row in kept)


# ---- Dataset ----


AUG = {"degrees": 5.0, "shear": 2.0, "mixup": 0.5, "flipud": 0.5, "copy_paste": 0.5, "cutout": 0.3}


def test_mosaic_shape_and_labels(tiny_set):
    hyp = {"translate": 0.0, "scale": 0.0, "degrees": 0.0, "mosaic": 1.0, "fliplr": 0.0}
    ds = YoloDataset(tiny_set, img_size=64, augment=True, hyp=hyp)
    total = 0
    for i in range(len(ds)):
        img, labels = ds.load_mosaic(i, np.random.default_rng(i))
        assert img.shape == (64, 64, 3) and img.dtype == np.uint8
        assert ((labels[:, 1:] >= 0) & (labels[:, 1:] <= 64)).all()
        assert (labels[:, 3] > labels[:, 1]).all() and (labels[:, 4] > labels[:, 2]).all()
        # Without scaling or translation the boxes still sit on their rectangles.
        for c, x1, y1, x2, y2 in labels:
            cx, cy = int((x1 + x2) / 2), int((y1 + y2) / 2)
            np.testing.assert_array_equal(img[cy, cx], CLASS_COLORS[int(c)])
        total += len(labels)
    assert total > 0


def test_getitem_deterministic_by_seed_epoch_index(tiny_set):
    hyp = dict(D.DEFAULT_HYP, **AUG)
    a = YoloDataset(tiny_set, img_size=64, augment=True, hyp=hyp, seed=3)
    b = YoloDataset(tiny_set, img_size=64, augment=True, hyp=hyp, seed=3, cache_images=True)
    for ds in (a, b):
        ds.set_epoch(2)
    _ = b[5], b[0]  # what was loaded before does not matter
    for i in (1, 4):
        x, y = a[i], b[i]
        assert torch.equal(x[0], y[0]) and torch.equal(x[1], y[1]) and x[2] == y[2]
    img, labels, path, shapes = a[1]
    assert img.dtype == torch.uint8 and img.shape == (3, 64, 64) and img.is_contiguous()
    assert labels.shape[1] == 6 and (labels[:, 0] == 0).all() and labels.dtype == torch.float32
    assert path.endswith("im1.png") and (shapes is None or len(shapes) == 2)  # None for a mosaic
    assert ((labels[:, 2:] >= 0) & (labels[:, 2:] <= 1)).all()
    a.set_epoch(3)
    assert any(not torch.equal(a[i][0], b[i][0]) for i in range(len(a)))
    c = YoloDataset(tiny_set, img_size=64, augment=True, hyp=hyp, seed=4)
    c.set_epoch(2)
    assert any(not torch.equal(c[i][0], b[i][0]) for i in range(len(c)))
    assert b.cache_summary().startswith("cached 8 images in RAM") and "not cached" in a.cache_summary()


def test_same_batches_whatever_the_worker_count(tiny_set):
    ds = YoloDataset(tiny_set, img_size=64, augment=True, hyp=dict(D.DEFAULT_HYP, **AUG), seed=1)
    ds.set_epoch(4)

    def batches(workers):
        loader = torch.utils.data.DataLoader(
            ds, batch_size=3, num_workers=workers, collate_fn=YoloDataset.collate_fn
        )
        return [(imgs, targets) for imgs, targets, _, _ in loader]

    for (a, ta), (b, tb) in zip(batches(0), batches(2), strict=True):
        assert torch.equal(a, b) and torch.equal(ta, tb)


def test_val_item_letterboxed_and_labels_on_objects(tiny_set):
    ds = YoloDataset(tiny_set, img_size=64, augment=False)
    for i in range(len(ds)):
        img, labels, path, ((h0, w0), ((gh, gw), (pw, ph))) = ds[i]
        assert img.shape == (3, 64, 64)
        w, h = ds.samples[i].shape
        assert (h0, w0) == (h, w) and (pw == 0 or ph == 0)
        np.testing.assert_allclose(labels[:, 1:].numpy(), _expected_letterboxed(ds.samples[i], 64), atol=1e-4)
        for _, c, cx, cy, _, _ in labels.tolist():
            pixel = img[:, int(cy * 64), int(cx * 64)]
            assert (pixel - torch.tensor(CLASS_COLORS[int(c)])).abs().max() < 40


def _expected_letterboxed(sample, size):
    w, h = sample.shape
    r = size / max(w, h)
    nw, nh = np.ceil(w * r - 1e-6), np.ceil(h * r - 1e-6)
    padw, padh = (size - nw) / 2, (size - nh) / 2
    lb = sample.labels.astype(np.float64)
    out = lb.copy()
    out[:, 1] = (lb[:, 1] * nw + padw) / size
    out[:, 2] = (lb[:, 2] * nh + padh) / size
    out[:, 3] = lb[:, 3] * nw / size
    out[:, 4] = lb[:, 4] * nh / size
    return out


def test_collate_sets_batch_index(tiny_set):
    ds = YoloDataset(tiny_set, img_size=64)
    imgs, targets, paths, shapes = YoloDataset.collate_fn([ds[i] for i in range(4)])
    assert imgs.shape == (4, 3, 64, 64) and imgs.dtype == torch.uint8
    counts = [len(ds.samples[i].labels) for i in range(4)]
    assert targets[:, 0].tolist() == [k for k, n in enumerate(counts) for _ in range(n)]
    assert len(paths) == len(shapes) == 4 and paths[0].endswith("im0.png")
    assert (ds[1][1][:, 0] == 0).all()  # the items themselves are left alone
    loader = torch.utils.data.DataLoader(ds, batch_size=3, collate_fn=YoloDataset.collate_fn)
    assert sum(len(b[0]) for b in loader) == 8


def test_rect_batch_shapes(tmp_path):
    sizes = [(100, 50), (100, 75), (100, 100), (50, 100), (80, 128), (100, 60)]  # (w, h)
    samples = [D.Sample(tmp_path / f"{k}.png", np.zeros((0, 5), np.float32), s) for k, s in enumerate(sizes)]
    ds = YoloDataset(samples, img_size=128, batch_size=2, rect=True, stride=32)
    assert [s.shape for s in ds.samples] == [
        (100, 50),
        (100, 60),
        (100, 75),
        (100, 100),
        (80, 128),
        (50, 100),
    ]
    # h/w sorted: 0.5 0.6 | 0.75 1.0 | 1.6 2.0 -> (h, w): wide, square, tall
    np.testing.assert_array_equal(ds.batch_shapes, [[96, 128], [128, 128], [128, 96]])
    np.testing.assert_array_equal(ds.batch_index, [0, 0, 1, 1, 2, 2])
    padded = YoloDataset(samples, img_size=128, batch_size=2, rect=True, stride=32, pad=0.5)
    np.testing.assert_array_equal(padded.batch_shapes, [[96, 160], [160, 160], [160, 96]])
    assert not ds.mosaic


def test_rect_items_take_their_batch_shape(tiny_set):
    ds = YoloDataset(tiny_set, img_size=64, batch_size=4, rect=True, stride=32, pad=0.0)
    for i in range(len(ds)):
        img, labels, _, _ = ds[i]
        assert tuple(img.shape[1:]) == tuple(ds.batch_shapes[ds.batch_index[i]])
        for _, c, cx, cy, _, _ in labels.tolist():
            pixel = img[:, int(cy * img.shape[1]), int(cx * img.shape[2])]
            assert (pixel - torch.tensor(CLASS_COLORS[int(c)])).abs().max() < 40


def test_labels_wh_and_shapes(tiny_set):
    ds = YoloDataset(tiny_set, img_size=64)
    wh, image_wh = ds.labels_wh()
    n = sum(len(s.labels) for s in tiny_set)
    assert wh.shape == image_wh.shape == (n, 2)
    np.testing.assert_array_equal(wh, np.concatenate([s.labels[:, 3:5] for s in tiny_set]))
    np.testing.assert_array_equal(image_wh[0], tiny_set[0].shape)
    assert ds.shapes.shape == (8, 2)


def test_plots(tiny_set, tmp_path):
    ds = YoloDataset(tiny_set, img_size=64)
    imgs, targets, paths, _ = YoloDataset.collate_fn([ds[i] for i in range(5)])
    out = plot_batch(imgs, targets, paths, ["red", "green", "blue"], tmp_path / "batch.png")
    with Image.open(out) as im:
        assert im.size == (192, 192)  # a 3 x 3 grid of 64 px images
    preds = torch.cat([targets, torch.full((len(targets), 1), 0.9)], 1)
    plot_batch(imgs.float() / 255, preds, paths, ["r", "g", "b"], tmp_path / "pred.png")
    plot_labels(tiny_set, ["red", "green", "blue"], tmp_path / "labels.png")
    assert (tmp_path / "pred.png").stat().st_size > 0 and (tmp_path / "labels.png").stat().st_size > 1000
