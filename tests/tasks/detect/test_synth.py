"""The synthetic shapes dataset: YOLO layout that our loader accepts, determinism, tight boxes, occlusion."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from aics.core.errors import UserError
from aics.tasks.detect.dataset_yaml import image_files, load_data_yaml
from aics.tasks.detect.labels import scan_labels
from aics.tasks.detect.synth import (
    NAMES,
    ObjectSpec,
    draw_objects,
    generate,
    image_sizes,
    random_objects,
    render_background,
)


@pytest.fixture(scope="module")
def shapes_set(tmp_path_factory):
    out = tmp_path_factory.mktemp("shapes") / "ds"
    info = generate(out, n_train=48, n_val=12, img_size=160, seed=0, show_progress=False)
    return out, info


def test_layout_passes_the_loader(shapes_set):
    out, info = shapes_set
    spec = load_data_yaml(out / "data.yaml")
    assert spec.root == out.resolve() and spec.names == list(NAMES) and spec.nc == 6
    assert (out / ".done").is_file() and json.loads((out / "stats.json").read_text()) == {
        k: v for k, v in info.items() if k not in ("out_dir", "data_yaml")
    }
    for split, n in (("train", 48), ("val", 12)):
        files = image_files(getattr(spec, split))
        assert len(files) == n and files[0].name == "000000.jpg"
        result = scan_labels(files, spec.nc, use_cache=False)  # every label line valid
        stats = info["splits"][split]
        assert result.stats["labels"] == stats["objects"] == sum(stats["class_counts"].values())
        assert result.stats["empty"] == stats["background_images"] and result.stats["missing"] == 0
        assert {s.shape for s in result.samples} <= set(image_sizes(160))
        for s in result.samples:  # boxes lie inside their image
            lb = s.labels
            assert (lb[:, 1] - lb[:, 3] / 2 >= -1e-6).all() and (lb[:, 1] + lb[:, 3] / 2 <= 1 + 1e-6).all()
            assert (lb[:, 2] - lb[:, 4] / 2 >= -1e-6).all() and (lb[:, 2] + lb[:, 4] / 2 <= 1 + 1e-6).all()
    assert image_sizes(320) == [(320, 320), (320, 240), (240, 320), (352, 256)]


def test_classes_balanced(shapes_set):
    _, info = shapes_set
    counts = np.array(list(info["splits"]["train"]["class_counts"].values()))
    assert counts.min() >= 0.5 * counts.mean() and counts.max() <= 1.5 * counts.mean()
    rng = np.random.default_rng(0)
    drawn = np.bincount([o.cls for _ in range(300) for o in random_objects(rng, 320, 240, 8)], minlength=6)
    assert np.abs(drawn / drawn.mean() - 1).max() < 0.15  # 2400 draws: ~5 % noise per class


def test_deterministic_and_independent_splits(tmp_path):
    def files(root):
        return {p.relative_to(root): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}

    a = tmp_path / "a"
    generate(a, n_train=5, n_val=3, img_size=96, seed=5, show_progress=False)
    generate(tmp_path / "b", n_train=5, n_val=3, img_size=96, seed=5, show_progress=False)
    generate(tmp_path / "c", n_train=5, n_val=3, img_size=96, seed=6, show_progress=False)
    generate(tmp_path / "d", n_train=2, n_val=3, img_size=96, seed=5, show_progress=False)
    fa, fb, fc, fd = (files(tmp_path / k) for k in "abcd")
    fa.pop(a.joinpath(".done").relative_to(a))  # holds a timestamp
    fb.pop(a.joinpath(".done").relative_to(a))
    assert fa == fb
    images = [k for k in fa if k.suffix == ".jpg"]
    assert len(images) == 8 and all(fa[k] != fc[k] for k in images)
    val = [k for k in fa if "val" in k.parts]
    assert val and all(fa[k] == fd[k] for k in val)  # val does not depend on n_train


def test_stage_skip_and_params(tmp_path):
    out = tmp_path / "ds"
    first = generate(out, n_train=2, n_val=1, img_size=64, seed=0, show_progress=False)
    stamp = (out / "images/train/000000.jpg").stat().st_mtime_ns
    assert generate(out, n_train=2, n_val=1, img_size=64, seed=0, show_progress=False) == first
    assert (out / "images/train/000000.jpg").stat().st_mtime_ns == stamp
    with pytest.raises(UserError, match="made with other options"):
        generate(out, n_train=2, n_val=1, img_size=64, seed=1, show_progress=False)
    generate(out, n_train=3, n_val=1, img_size=64, seed=1, overwrite=True, show_progress=False)
    assert len(list((out / "images/train").iterdir())) == 3
    with pytest.raises(UserError, match="--n-val"):
        generate(tmp_path / "x", n_train=2, n_val=0, show_progress=False)


def _label_box_px(label, width, height):
    _, cx, cy, w, h = label
    return (
        round((cx - w / 2) * width),
        round((cy - h / 2) * height),
        round((cx + w / 2) * width),
        round((cy + h / 2) * height),
    )


def test_boxes_are_tight():
    for seed in range(30):
        rng = np.random.default_rng(seed)
        background = render_background(rng, 120, 90)
        img, labels, dropped = draw_objects(background, random_objects(rng, 120, 90, 1))
        assert len(labels) == 1 and dropped == []
        drawn = (img != background).any(-1)
        x1, y1, x2, y2 = _label_box_px(labels[0], 120, 90)
        inside = drawn[y1:y2, x1:x2]
        assert inside.sum() == drawn.sum() > 0  # nothing drawn outside the box
        # ...and the object touches all four sides of the box.
        assert inside[0].any() and inside[-1].any() and inside[:, 0].any() and inside[:, -1].any()


@pytest.mark.parametrize(
    "cls, fill",
    # area of the shape over the area of its box, by hand: pi / 4, 1, 1 / 2, 1 / 2, 5 / 9, and for the star
    # (5 * 0.5 * 0.2 * sin 36deg) / (0.951 * 0.905)
    [(0, math.pi / 4), (1, 1.0), (2, 0.5), (3, 0.5), (4, 5 / 9), (5, 0.3417)],
)
def test_shapes_are_the_named_ones(cls, fill):
    background = np.full((200, 200, 3), 128, np.uint8)
    obj = ObjectSpec(cls, 100.0, 100.0, 150.0, 120.0, 0.0, (250, 250, 250))
    img, labels, _ = draw_objects(background, [obj])
    x1, y1, x2, y2 = _label_box_px(labels[0], 200, 200)
    drawn = (img != background).any(-1)
    assert drawn[y1:y2, x1:x2].mean() == pytest.approx(fill, abs=0.03)
    assert labels[0, 0] == cls


def test_hidden_objects_lose_their_labels():
    background = np.full((100, 100, 3), 128, np.uint8)
    red, green = (220, 40, 40), (40, 180, 60)
    small = ObjectSpec(0, 50.0, 50.0, 20.0, 20.0, 0.0, red)
    cover = ObjectSpec(1, 50.0, 50.0, 60.0, 60.0, 0.0, green)
    _, labels, dropped = draw_objects(background, [small, cover])
    assert dropped == [0] and labels[:, 0].tolist() == [1]
    np.testing.assert_allclose(labels[0, 1:], [0.5, 0.5, 0.61, 0.61], atol=0.011)
    # A circle of radius 15 at x = 30 with a square over x >= 30: half visible, kept with the visible box.
    circle = ObjectSpec(0, 30.0, 50.0, 30.0, 30.0, 0.0, red)
    _, labels, dropped = draw_objects(background, [circle, ObjectSpec(1, 60.0, 50.0, 60.0, 60.0, 0.0, green)])
    assert dropped == [] and labels[:, 0].tolist() == [0, 1]
    x1, _, x2, _ = _label_box_px(labels[0], 100, 100)
    assert abs(x1 - 15) <= 1 and x2 == 30
    # With the square from x = 25 only a 29 % sliver shows: dropped (more than 60 % hidden).
    _, labels, dropped = draw_objects(background, [circle, ObjectSpec(1, 55.0, 50.0, 60.0, 60.0, 0.0, green)])
    assert dropped == [0] and labels[:, 0].tolist() == [1]
