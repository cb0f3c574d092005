"""YOLO-format data: the dataset yaml, label validation and cache, the Dataset, the plots."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image, ImageOps

from aics.core.errors import UserError
from aics.core.loader import EpochBatchSampler, build_loader
from aics.tasks.detect import labels as L
from aics.tasks.detect.data import DEFAULT_HYP, EpochIndexBatchSampler, YoloDataset, read_image
from aics.tasks.detect.dataset_yaml import image_files, label_path, load_data_yaml
from aics.tasks.detect.labels import CACHE_SUFFIX, Sample, scan_labels
from aics.tasks.detect.plots import plot_batch, plot_labels

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
    assert label_path(f"{sep}d{sep}images{sep}x{sep}images{sep}v{sep}a.b.jpg") == Path(
        f"{sep}d{sep}images{sep}x{sep}labels{sep}v{sep}a.b.txt"
    )
    assert label_path(f"{sep}d{sep}pics{sep}a.png") == Path(f"{sep}d{sep}pics{sep}a.txt")


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
    assert msg.startswith(f"8 problems in the images (2) and labels (6) under {tmp_path}; first: ")
    assert "first: labels/train/a.txt:2: class 7 out of range [0, 3)" in msg
    assert "all listed in labels/train.problems.txt; fix or remove those files" in msg
    header, *lines = report.read_text().splitlines()
    assert header == f"# 8 problems in the images (2) and labels (6) under {tmp_path}; paths relative to it"
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
        assert line.startswith(want), (line, want)
    assert not (tmp_path / "labels" / f"train{CACHE_SUFFIX}").exists()  # failed scans are not cached
    # The split's directory (as a DataSpec lists it) is expanded; the split's name goes into the message.
    with pytest.raises(UserError, match=r"^8 problems in the train images \(2\) and labels \(6\) under "):
        scan_labels([tmp_path / "images/train"], nc=3, split="train")


def test_scan_problem_lines_name_each_file_once(tmp_path):
    """An image problem is called one, and each file is named once, relative to the dataset root."""
    write_image(tmp_path, "train", "a", (32, 32), [(0, 2, 2, 12, 12)])
    write_image(tmp_path, "train", "d", (32, 32), [(1, 0, 0, 8, 8)], ext="jpg")
    (tmp_path / "images/train/d.jpg").write_bytes(b"\xff\xd8 this is not a jpeg")
    with pytest.raises(UserError) as info:
        scan_labels([tmp_path / "images/train"], nc=3, split="train")
    msg = str(info.value)
    assert msg.startswith(f"1 problem in the train images under {tmp_path}; first: images/train/d.jpg: ")
    assert msg.count(str(tmp_path)) == 1 and msg.count("d.jpg") == 1 and "labels" not in msg.split(";")[0]
    assert "all listed in labels/train.problems.txt;" in msg

    (tmp_path / "labels/train/a.txt").write_text("5 0.5 0.5 0.1 0.1\n")
    with pytest.raises(UserError) as info:
        scan_labels([tmp_path / "images/train"], nc=3, split="val")
    msg = str(info.value)
    assert msg.startswith(f"2 problems in the val images (1) and labels (1) under {tmp_path}; first: ")
    report = (tmp_path / "labels/train.problems.txt").read_text().splitlines()
    assert (
        report[0]
        == f"# 2 problems in the val images (1) and labels (1) under {tmp_path}; paths relative to it"
    )
    assert report[1] == "labels/train/a.txt:1: class 5 out of range [0, 3) (the data yaml has 3 names)"
    assert (
        report[2].startswith("images/train/d.jpg: cannot read the image (") and report[2].count("d.jpg") == 1
    )


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
    cache = tmp_path / "labels" / f"train{CACHE_SUFFIX}"
    assert cache.is_file() and first.cache_path == cache and not first.from_cache
    with np.load(cache, allow_pickle=False) as z:  # plain arrays, no pickled objects
        assert z["labels"].shape == (3, 5)

    def refuse(*args, **kwargs):
        raise AssertionError("the cache should make opening images unnecessary")

    monkeypatch.setattr(L.Image, "open", refuse)
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


# ---- Dataset ----


AUG = {"degrees": 5.0, "shear": 2.0, "mixup": 0.5, "flipud": 0.5, "copy_paste": 0.5, "cutout": 0.3}


@pytest.mark.parametrize("ext", ["jpg", "png"])
def test_read_image_turns_images_upright_like_pillow(tmp_path, monkeypatch, ext):
    """Every EXIF orientation gives Pillow's exif_transpose pixels and the shape the label scan records,
    decoded by OpenCV or (when OpenCV cannot) by Pillow."""
    base = np.random.default_rng(0).integers(0, 256, (30, 50, 3), dtype=np.uint8)
    for orientation in range(1, 9):
        path = tmp_path / f"images/train/o{orientation}.{ext}"
        path.parent.mkdir(parents=True, exist_ok=True)
        exif = Image.Exif()
        exif[0x0112] = orientation
        Image.fromarray(base).save(path, exif=exif)
        with Image.open(path) as im:
            want = np.asarray(ImageOps.exif_transpose(im).convert("RGB"))
        got = read_image(path)
        assert got.shape == want.shape and np.array_equal(got, want), orientation
        assert scan_labels([path], nc=1, use_cache=False).samples[0].shape == (got.shape[1], got.shape[0])
        with monkeypatch.context() as m:
            m.setattr(cv2, "imdecode", lambda *args: None)
            assert np.array_equal(read_image(path), want), orientation


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
    hyp = dict(DEFAULT_HYP, **AUG)
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
    ds = YoloDataset(tiny_set, img_size=64, augment=True, hyp=dict(DEFAULT_HYP, **AUG), seed=1)
    ds.set_epoch(4)

    def batches(workers):
        loader = torch.utils.data.DataLoader(
            ds, batch_size=3, num_workers=workers, collate_fn=YoloDataset.collate_fn
        )
        return [(imgs, targets) for imgs, targets, _, _ in loader]

    for (a, ta), (b, tb) in zip(batches(0), batches(2), strict=True):
        assert torch.equal(a, b) and torch.equal(ta, tb)


def test_persistent_workers_follow_the_epoch_and_resume_mid_epoch(tiny_set):
    """One loader whose workers live across epochs gives the batches of a fresh single-process loader per
    epoch, also when an epoch starts at a later batch (a resumed run)."""
    ds = YoloDataset(tiny_set, img_size=64, augment=True, hyp=dict(DEFAULT_HYP, **AUG), seed=1)

    def epoch_batches(loader, sampler, epoch, start):
        ds.set_epoch(epoch)
        sampler.set_epoch(epoch, start)
        return [(imgs, targets, paths) for imgs, targets, paths, _ in loader]

    sampler = EpochIndexBatchSampler(len(ds), 3, seed=2)
    collate = YoloDataset.collate_fn
    loader = build_loader(ds, sampler, num_workers=2, collate_fn=collate, persistent_workers=True)
    schedule = [(0, 0), (1, 1), (2, 0)]  # (epoch, first batch)
    persistent = [epoch_batches(loader, sampler, e, b) for e, b in schedule]
    assert loader.persistent_workers
    for (e, b), got in zip(schedule, persistent, strict=True):
        fresh_sampler = EpochBatchSampler(len(ds), 3, seed=2)
        fresh = build_loader(ds, fresh_sampler, num_workers=0, collate_fn=collate)
        want = epoch_batches(fresh, fresh_sampler, e, b)
        assert len(got) == len(want) == 3 - b
        for (a, ta, pa), (w, tw, pw) in zip(got, want, strict=True):
            assert torch.equal(a, w) and torch.equal(ta, tw) and pa == pw
    assert not torch.equal(persistent[0][0][0], persistent[2][0][0])  # the epochs differ


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
    samples = [Sample(tmp_path / f"{k}.png", np.zeros((0, 5), np.float32), s) for k, s in enumerate(sizes)]
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
