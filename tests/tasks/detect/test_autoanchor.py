import numpy as np
import pytest
import torch
from torch import nn

from aics.tasks.detect.autoanchor import (
    anchor_fitness_stats,
    apply_anchors,
    check_anchors,
    kmean_anchors,
    kmeans,
    label_sizes_px,
)

COCO_ANCHORS = np.array(
    [[10, 13, 16, 30, 33, 23], [30, 61, 62, 45, 59, 119], [116, 90, 156, 198, 373, 326]], dtype=np.float64
).reshape(3, 3, 2)
STRIDES = [8, 16, 32]


def synthetic_labels(seed=0, n_images=120):
    """Per-image normalised label sizes (small, medium and large objects, mixed aspect ratios) and image
    sizes (width, height)."""
    rng = np.random.default_rng(seed)
    shapes = np.stack([rng.integers(300, 800, n_images), rng.integers(300, 800, n_images)], 1)
    labels = []
    for _ in range(n_images):
        m = rng.integers(1, 8)
        base = rng.choice([0.03, 0.12, 0.4], m)[:, None] * np.exp(rng.normal(0, 0.25, (m, 2)))
        labels.append(np.clip(base, 0.005, 1))
    return labels, shapes


def fitness(wh, anchors, thr=4.0):
    """The evolution's objective, written out: the best anchor's min(r, 1/r) per label, 0 below 1/thr."""
    best = []
    for w, h in wh:
        x = [min(w / aw, aw / w, h / ah, ah / h) for aw, ah in anchors]
        best.append(max(x))
    best = np.array(best)
    return float((best * (best > 1 / thr)).mean())


def test_fitness_stats_hand_values():
    wh = np.array([[10.0, 10.0], [40.0, 40.0]])
    anchors = np.array([[10.0, 10.0], [40.0, 40.0]])
    # each label matches its own anchor exactly; the other is exactly 4x off, which is not within thr=4
    assert anchor_fitness_stats(wh, anchors, thr=4.0) == (1.0, 1.0)
    assert anchor_fitness_stats(wh, anchors, thr=4.1) == (1.0, 2.0)
    # a 100x10 label and a 10x10 anchor: width ratio 10 -> no fit
    assert anchor_fitness_stats(np.array([[100.0, 10.0]]), np.array([[10.0, 10.0]])) == (0.0, 0.0)
    bpr, aat = anchor_fitness_stats(torch.tensor([[100.0, 10.0], [20.0, 20.0]]), torch.tensor([[10.0, 10.0]]))
    assert (bpr, aat) == (0.5, 0.5)


def test_bpr_is_one_when_anchors_are_the_label_sizes():
    labels, shapes = synthetic_labels()
    wh = label_sizes_px(labels, shapes, 640)
    assert anchor_fitness_stats(wh, wh, thr=4.0)[0] == 1.0


def test_label_sizes_px_hand_values_and_layouts():
    labels = [np.array([[0.5, 0.5]]), np.array([[0.25, 1.0], [0.1, 0.1]])]
    shapes = np.array([[200, 100], [100, 400]])  # (width, height)
    wh = label_sizes_px(labels, shapes, 640)
    np.testing.assert_allclose(wh, [[320, 160], [40, 640], [16, 64]])  # longer side scaled to 640
    flat = label_sizes_px(np.concatenate(labels), shapes[[0, 1, 1]], 640)  # one row per label
    np.testing.assert_allclose(flat, wh)
    jit = label_sizes_px(labels, shapes, 640, scale=(0.9, 1.1), seed=3)
    factor = jit / wh
    assert factor[1, 0] == pytest.approx(factor[2, 0]) == pytest.approx(factor[2, 1])  # one factor per image
    assert ((factor > 0.9) & (factor < 1.1)).all()
    np.testing.assert_array_equal(jit, label_sizes_px(labels, shapes, 640, scale=(0.9, 1.1), seed=3))
    with pytest.raises(ValueError, match="label sets"):
        label_sizes_px(labels, shapes[:1], 640)


def test_kmeans_finds_separated_clusters():
    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    data = np.concatenate([c + rng.normal(0, 0.5, (100, 2)) for c in centres])
    found, distortion = kmeans(data, 3, np.random.default_rng(1), restarts=5)
    found = found[np.lexsort((found[:, 1], found[:, 0]))]
    np.testing.assert_allclose(found, centres[[0, 2, 1]], atol=0.2)
    assert distortion < 1.0


def test_check_anchors_replaces_mismatched_anchors():
    labels, shapes = synthetic_labels()
    tiny = np.full((3, 3, 2), 6.0)  # every anchor far too small for these labels
    result = check_anchors(labels, shapes, tiny, STRIDES, 640)
    assert result["bpr"] < 0.5
    assert result["replaced"] and result["new_bpr"] > 0.98
    new = result["new_anchors"]
    assert new.shape == (3, 3, 2) and new.dtype == np.float32
    area = new.reshape(-1, 2).prod(1)
    assert (np.diff(area) >= 0).all()  # smallest on stride 8, largest on stride 32
    # the reported BPR is the new anchors' on the same (jittered) sizes
    wh = label_sizes_px(labels, shapes, 640, scale=(0.9, 1.1), seed=0)
    assert anchor_fitness_stats(wh, new.reshape(-1, 2))[0] == pytest.approx(result["new_bpr"])
    # strides listed large to small: the layers come in that order too
    flipped = check_anchors(labels, shapes, tiny, STRIDES[::-1], 640)["new_anchors"]
    np.testing.assert_array_equal(flipped, new[::-1])


def test_check_anchors_keeps_good_anchors():
    labels, shapes = synthetic_labels()
    result = check_anchors(labels, shapes, COCO_ANCHORS, STRIDES, 640)
    assert result["bpr"] > 0.98 and result["aat"] > 1
    assert not result["replaced"] and result["new_anchors"] is None and result["new_bpr"] is None


def test_kmean_anchors_deterministic_sorted_and_evolution_only_improves():
    labels, shapes = synthetic_labels(seed=1, n_images=80)
    wh = label_sizes_px(labels, shapes, 640)
    a = kmean_anchors(wh, n=6, gen=300, seed=0)
    assert a.shape == (6, 2) and a.dtype == np.float32
    assert (np.diff(a.prod(1)) >= 0).all()
    np.testing.assert_array_equal(a, kmean_anchors(wh, n=6, gen=300, seed=0))
    assert not np.array_equal(a, kmean_anchors(wh, n=6, gen=300, seed=1))
    start = kmean_anchors(wh, n=6, gen=0, seed=0)  # the same k-means start, no evolution
    assert fitness(wh, a) > fitness(wh, start)
    # labels under 2 px on both sides are ignored (the result is the same with or without them)
    with_tiny = np.concatenate([wh, np.full((40, 2), 1.5)])
    np.testing.assert_array_equal(kmean_anchors(with_tiny, n=6, gen=300, seed=0), a)
    # fewer labels than anchors: a random start, still n sorted anchors of at least 2 px
    few = kmean_anchors(wh[:3], n=6, gen=50, seed=0)
    assert few.shape == (6, 2) and (few >= 2).all()


class FakeDetect(nn.Module):
    def __init__(self, stride):
        super().__init__()
        self.register_buffer("anchors", torch.ones(3, 3, 2))
        self.register_buffer("stride", torch.tensor(stride, dtype=torch.float32))


def test_apply_anchors_orders_by_area_and_divides_by_stride():
    shuffled = COCO_ANCHORS.reshape(-1, 2)[[8, 0, 4, 2, 7, 1, 3, 6, 5]]
    detect = FakeDetect(STRIDES)
    apply_anchors(detect, torch.tensor(shuffled))
    by_area = COCO_ANCHORS.reshape(-1, 2)[np.argsort(COCO_ANCHORS.reshape(-1, 2).prod(1))].reshape(3, 3, 2)
    want = by_area / np.array(STRIDES, dtype=np.float64)[:, None, None]
    torch.testing.assert_close(detect.anchors, torch.tensor(want, dtype=torch.float32))
    reversed_detect = FakeDetect(STRIDES[::-1])
    apply_anchors(reversed_detect, shuffled)
    want = by_area[::-1] / np.array(STRIDES[::-1], dtype=np.float64)[:, None, None]
    torch.testing.assert_close(reversed_detect.anchors, torch.tensor(want.copy(), dtype=torch.float32))
    with pytest.raises(ValueError, match="strides"):
        apply_anchors(detect, shuffled, stride=[8, 16])


def test_check_anchors_without_labels_changes_nothing():
    result = check_anchors([np.zeros((0, 2))], np.array([[640, 480]]), COCO_ANCHORS, STRIDES, 640)
    assert np.isnan(result["bpr"]) and not result["replaced"] and result["new_bpr"] is None
