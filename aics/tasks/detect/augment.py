"""Letterbox and YOLOv5's training augmentations on numpy images (RGB, uint8, H x W x 3).

Every random choice comes from a ``numpy.random.Generator`` given by the caller, so the Dataset can make a
sample a pure function of (seed, epoch, index). Boxes are ``[cls, x1, y1, x2, y2]`` rows in pixels.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

PAD_VALUE = 114


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
    """Resize with OpenCV: bilinear when growing, area average (INTER_AREA) when shrinking. Returns a new
    writable array."""
    if (width, height) == (img.shape[1], img.shape[0]):
        return img.copy()
    shrink = width * height < img.shape[0] * img.shape[1]
    return cv2.resize(img, (width, height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


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

    As in YOLOv5, in OpenCV's 8-bit HSV (hue 0-179, two degrees a step) with one lookup table per channel.
    """
    if not (hgain or sgain or vgain):
        return img
    r = rng.uniform(-1, 1, 3) * np.array([hgain, sgain, vgain]) + 1
    x = np.arange(256, dtype=np.float64)
    lut = np.empty((256, 1, 3), np.uint8)  # one table per channel (values truncated, as astype does)
    lut[:, 0, 0] = (x * r[0]) % 180
    lut[:, 0, 1] = np.clip(x * r[1], 0, 255)
    lut[:, 0, 2] = np.clip(x * r[2], 0, 255)
    hsv = cv2.cvtColor(img, cv2.COLOR_RGB2HSV)
    cv2.LUT(hsv, lut, dst=hsv)
    cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB, dst=img)
    return img


def warp(img: np.ndarray, m: np.ndarray, size: tuple[int, int], perspective: bool = False) -> np.ndarray:
    """``img`` mapped by the 3x3 matrix ``m`` (continuous coordinates, a pixel's centre at +0.5) onto a new
    image of ``size`` (w, h), bilinear, uncovered pixels PAD_VALUE. ``perspective=False`` uses only the
    affine part of ``m``."""
    # OpenCV puts pixel centres at integers: shift by half a pixel on the way in and out.
    half = np.array([[1.0, 0.0, 0.5], [0.0, 1.0, 0.5], [0.0, 0.0, 1.0]])
    m_px = np.linalg.inv(half) @ m @ half
    fill = (PAD_VALUE, PAD_VALUE, PAD_VALUE)
    if perspective:
        return cv2.warpPerspective(img, m_px, size, flags=cv2.INTER_LINEAR, borderValue=fill)
    return cv2.warpAffine(img, m_px[:2], size, flags=cv2.INTER_LINEAR, borderValue=fill)


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
    shear, translation), the image warped with OpenCV (bilinear), the boxes' corners mapped and re-boxed.

    ``targets`` (n, 5) is ``[cls, x1, y1, x2, y2]`` in pixels. The output is ``img`` grown by ``2 * border``
    (h, w) (a negative border crops, as the mosaic does). Boxes are clipped to it and dropped by
    :func:`box_candidates`. Coordinates are continuous (a pixel's centre at +0.5), the boxes' convention.
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
        img = warp(img, m, (width, height), perspective=bool(perspective))

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
