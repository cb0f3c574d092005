"""The detection Dataset: images and labels of one split, letterboxed (val) or augmented (train), and its
collate function.

The on-disk format is YOLOv5's (:mod:`aics.tasks.detect.dataset_yaml`); the labels come checked from
:func:`aics.tasks.detect.labels.scan_labels`; the augmentations are in :mod:`aics.tasks.detect.augment`.
Images are decoded with OpenCV (Pillow reads their EXIF orientation); pixel work is numpy and OpenCV (RGB,
uint8, H x W x 3); torch appears only in the tensors the Dataset returns. ``YoloDataset`` seeds one
``numpy.random.Generator`` per (seed, epoch, index), so a sample does not depend on the worker that loads it
or on what was loaded before it: a resumed run sees exactly the same batches.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
import torch
from PIL import Image, ImageOps

from aics.core.errors import UserError
from aics.core.loader import EpochBatchSampler
from aics.tasks.detect.augment import (
    PAD_VALUE,
    augment_hsv,
    copy_paste,
    cutout,
    letterbox,
    mixup,
    random_perspective,
    resize_image,
)
from aics.tasks.detect.boxes import xywhn2xyxy, xyxy2xywhn
from aics.tasks.detect.labels import EXIF_ORIENTATION, Sample

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


def _hyp_dict(hyp: object) -> dict:
    if hyp is None:
        return dict(DEFAULT_HYP)
    if dataclasses.is_dataclass(hyp) and not isinstance(hyp, type):
        hyp = dataclasses.asdict(hyp)
    if not isinstance(hyp, Mapping):
        raise TypeError(f"hyp must be a mapping or a dataclass, not {type(hyp).__name__}")
    return {**DEFAULT_HYP, **hyp}


def sequential_opencv() -> None:
    """Turn off OpenCV's thread pool in this process (YOLOv5 does too): on images this small it costs more
    CPU than it saves, and the DataLoader's workers (or the cache's threads) are the parallelism."""
    if cv2.getNumThreads() != 1:  # 1 is what OpenCV reports once its threads are off
        cv2.setNumThreads(0)


def _upright(img: np.ndarray, orientation: int) -> np.ndarray:
    """``img`` (h, w, c) as an EXIF orientation (1-8) says to show it: 5-8 are a transpose followed by the
    flips of 1-4."""
    if orientation in (5, 6, 7, 8):
        img = img.transpose(1, 0, 2)
        orientation -= 4
    if orientation in (2, 3):
        img = img[:, ::-1]
    if orientation in (3, 4):
        img = img[::-1]
    return np.ascontiguousarray(img)


def read_image(path: str | os.PathLike) -> np.ndarray:
    """An image file as RGB uint8 (h, w, 3), upright by its EXIF orientation (as the label scan measures
    it), read-only. OpenCV decodes (faster than Pillow, straight into an array); Pillow reads the
    orientation, and decodes the rare file OpenCV cannot."""
    with Image.open(path) as im:
        orientation = im.getexif().get(EXIF_ORIENTATION, 1)
        bgr = cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
        if bgr is None:
            ImageOps.exif_transpose(im, in_place=True)
            return np.asarray(im if im.mode == "RGB" else im.convert("RGB"))
    rgb = cv2.cvtColor(_upright(bgr, orientation if orientation in range(1, 9) else 1), cv2.COLOR_BGR2RGB)
    rgb.setflags(write=False)
    return rgb


class EpochIndexBatchSampler(EpochBatchSampler):
    """EpochBatchSampler's batches as ``(epoch, index)`` pairs, for a YoloDataset loaded by workers that live
    across epochs: each item's augmentation follows the epoch it is drawn for, not the worker's copy of the
    dataset."""

    def __iter__(self):
        for batch in super().__iter__():
            yield [(self.epoch, i) for i in batch]


class YoloDataset(torch.utils.data.Dataset):
    """Images and labels of one split, letterboxed (val) or augmented (train), as YOLOv5 feeds them.

    ``__getitem__(i)`` returns ``(img, labels, im_file, shapes)``: ``img`` uint8 (3, H, W) RGB; ``labels``
    (n, 6) float32 ``[0, cls, cx, cy, w, h]`` normalised by the output image (column 0 is filled with the
    image's index in the batch by :meth:`collate_fn`); ``shapes`` is ``((h0, w0), ((h / h0, w / w0),
    (padw, padh)))`` to map boxes back to the original image, or None for a mosaic.

    All randomness of item i comes from ``np.random.default_rng((seed, epoch, i))``. The epoch is the one
    of :meth:`set_epoch`, or the item is asked for as ``dataset[(epoch, i)]``: DataLoader workers that live
    across epochs (persistent) never see a later ``set_epoch``, so :class:`EpochIndexBatchSampler` tells
    them the epoch with every index. With ``rect`` the samples are sorted by aspect ratio and each batch of
    ``batch_size`` consecutive items gets its own shape: use a sequential sampler with that batch size.
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
            sequential_opencv()
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
            img = read_image(path)
        except Exception as e:  # the file changed or vanished since the scan
            raise UserError(f"{path}: cannot read the image ({e}); rescan the dataset") from e
        h0, w0 = img.shape[:2]
        r = self.img_size / max(h0, w0)
        if r != 1:
            # The long side becomes img_size exactly; the short side is rounded up like YOLOv5 (the epsilon
            # keeps float noise such as 240.00000000000003 from adding a pixel).
            w, h = (max(1, math.ceil(v * r - 1e-6)) for v in (w0, h0))
            img = resize_image(img, w, h)
        return img, (h0, w0), img.shape[:2]

    def load_image(self, i: int) -> tuple[np.ndarray, tuple[int, int], tuple[int, int]]:
        """Image i as RGB uint8 (h, w, 3) with its long side = img_size, the original (h0, w0) and (h, w).

        The array may be read-only (a cached image is shared by every item); copy before changing it.
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

    def __getitem__(self, item: int | tuple[int, int]):
        sequential_opencv()
        epoch, i = item if isinstance(item, tuple) else (self.epoch, item)
        rng = np.random.default_rng((self.seed, epoch, i))
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
