"""Letterbox, resizing and the augmentations, on hand-made images with known answers."""

from __future__ import annotations

import numpy as np

from aics.tasks.detect.augment import (
    augment_hsv,
    copy_paste,
    cutout,
    letterbox,
    random_perspective,
    resize_image,
)

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
    out = resize_image(img, 2, 2)
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
    # A hue gain turns the colour round the circle (in 2-degree steps, truncated) and keeps its brightness.
    # Orange-red at 12 degrees, gain 1.8: 2 * floor(6 * 1.8) = 20 degrees, green = 200 * 20 / 60.
    assert 1.79 < np.random.default_rng(4).uniform(-1, 1, 3)[0] * 0.9 + 1 < 1.8
    red = np.zeros((2, 2, 3), np.uint8)
    red[..., 0], red[..., 1] = 200, 40
    augment_hsv(red, np.random.default_rng(4), 0.9, 0.0, 0.0)
    assert np.abs(red.astype(int) - [200, 67, 0]).max() <= 1
    # Past 360 degrees it wraps: pink-red at 348 degrees, gain 1.247: 2 * floor(174 * 1.247 - 180) = 72
    # degrees, a yellow-green with red = 200 * (120 - 72) / 60.
    assert 1.24 < np.random.default_rng(0).uniform(-1, 1, 3)[0] * 0.9 + 1 < 1.25
    pink = np.zeros((2, 2, 3), np.uint8)
    pink[..., 0], pink[..., 2] = 200, 40
    augment_hsv(pink, np.random.default_rng(0), 0.9, 0.0, 0.0)
    assert np.abs(pink.astype(int) - [160, 200, 0]).max() <= 1


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
