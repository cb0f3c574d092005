import math

import numpy as np
import pytest
import torch

from aics.tasks.detect.boxes import (
    bbox_iou,
    box_iou,
    clip_boxes,
    nms,
    non_max_suppression,
    scale_boxes,
    xywh2xyxy,
    xywhn2xyxy,
    xyxy2xywh,
    xyxy2xywhn,
)


def random_boxes(n, gen, size=100.0, dtype=torch.float64):
    xy = torch.rand(n, 2, generator=gen, dtype=dtype) * size
    wh = torch.rand(n, 2, generator=gen, dtype=dtype) * size / 3 + 1
    return torch.cat((xy, xy + wh), 1)


def iou_python(a, b):
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def greedy_nms_reference(boxes, scores, thr, groups=None):
    """Textbook greedy NMS over python floats: visit by falling score, keep a box unless a kept box of the
    same group overlaps it by IoU > thr."""
    boxes, scores = boxes.tolist(), scores.tolist()
    groups = [0] * len(boxes) if groups is None else groups.tolist()
    keep = []
    for i in sorted(range(len(boxes)), key=lambda i: -scores[i]):
        if all(groups[k] != groups[i] or iou_python(boxes[i], boxes[k]) <= thr for k in keep):
            keep.append(i)
    return keep


# ---- converters ----


def test_converters_hand_values_and_round_trip_torch_and_numpy():
    xywh = torch.tensor([[10.0, 20.0, 4.0, 6.0]])
    torch.testing.assert_close(xywh2xyxy(xywh), torch.tensor([[8.0, 17.0, 12.0, 23.0]]))
    torch.testing.assert_close(xyxy2xywh(torch.tensor([[8.0, 17.0, 12.0, 23.0]])), xywh)
    gen = torch.Generator().manual_seed(0)
    boxes = random_boxes(50, gen).view(5, 10, 4)  # any leading shape
    torch.testing.assert_close(xywh2xyxy(xyxy2xywh(boxes)), boxes)
    np.testing.assert_allclose(xyxy2xywh(xywh2xyxy(boxes.numpy())), boxes.numpy())
    assert isinstance(xywh2xyxy(boxes.numpy()), np.ndarray)
    # integer input gives float output (halving a size must not truncate)
    np.testing.assert_allclose(xywh2xyxy(np.array([[5, 5, 3, 3]])), [[3.5, 3.5, 6.5, 6.5]])


def test_normalised_converters_with_padding_and_clip():
    xywhn = np.array([[0.5, 0.5, 0.5, 0.25]])
    xyxy = xywhn2xyxy(xywhn, w=200, h=100, padw=10, padh=20)
    np.testing.assert_allclose(xyxy, [[60.0, 57.5, 160.0, 82.5]])
    np.testing.assert_allclose(xyxy2xywhn(xyxy - [10, 20, 10, 20], w=200, h=100), xywhn)
    over = torch.tensor([[-10.0, 10.0, 250.0, 50.0]])
    out = xyxy2xywhn(over, w=200, h=100, clip=True)
    torch.testing.assert_close(out, torch.tensor([[0.5, 0.3, 1.0, 0.4]]))
    assert over[0, 0] == -10 and over[0, 2] == 250  # the input is left alone


def test_clip_boxes_in_place():
    t = torch.tensor([[-5.0, -1.0, 700.0, 30.0]])
    assert clip_boxes(t, (20, 640)) is t
    torch.testing.assert_close(t, torch.tensor([[0.0, 0.0, 640.0, 20.0]]))
    a = np.array([[-5.0, -1.0, 700.0, 30.0]])
    clip_boxes(a, (20, 640))
    np.testing.assert_array_equal(a, [[0.0, 0.0, 640.0, 20.0]])


def test_scale_boxes_undoes_a_letterbox():
    # A 480x640 (h, w) image letterboxed into 320x320: gain 0.5, resized to 240x320, 40 px bars above/below.
    original = torch.tensor([[100.0, 50.0, 300.0, 250.0], [0.0, 0.0, 640.0, 480.0]])
    letterboxed = torch.tensor([[50.0, 65.0, 150.0, 165.0], [0.0, 40.0, 320.0, 280.0]])
    torch.testing.assert_close(scale_boxes((320, 320), letterboxed.clone(), (480, 640)), original)
    torch.testing.assert_close(
        scale_boxes((320, 320), letterboxed.clone(), (480, 640), ((0.5, 0.5), (0, 40))), original
    )
    # per-axis gains (a rounded resize) and padding on both sides; numpy works too
    lb = np.array([[3 + 100 * 0.25, 7 + 50 * 0.5, 3 + 300 * 0.25, 7 + 250 * 0.5]])
    np.testing.assert_allclose(
        scale_boxes((300, 200), lb, (480, 640), ((0.5, 0.25), (3, 7))), [[100, 50, 300, 250]]
    )
    # whatever falls in the padding is clipped to the original image
    out = scale_boxes((320, 320), torch.tensor([[-10.0, 0.0, 330.0, 300.0]]), (480, 640))
    torch.testing.assert_close(out, torch.tensor([[0.0, 0.0, 640.0, 480.0]]))


# ---- IoU ----


def test_box_iou_hand_values():
    a = torch.tensor([[0.0, 0.0, 2.0, 2.0], [0.0, 0.0, 10.0, 10.0]])
    b = torch.tensor(
        [[1.0, 1.0, 3.0, 3.0], [0.0, 0.0, 2.0, 2.0], [5.0, 5.0, 6.0, 6.0], [20.0, 20.0, 30.0, 30.0]]
    )
    iou = box_iou(a, b)
    assert iou.shape == (2, 4)
    expected = torch.tensor([[1 / 7, 1.0, 0.0, 0.0], [4 / 100, 4 / 100, 1 / 100, 0.0]])
    torch.testing.assert_close(iou, expected, atol=1e-6, rtol=0)


def test_bbox_iou_variants_hand_values():
    a, b = torch.tensor([0.0, 0.0, 2.0, 2.0]), torch.tensor([1.0, 1.0, 3.0, 3.0])
    iou = 1 / 7  # overlap 1, union 7
    giou = iou - (9 - 7) / 9  # enclosing box 3x3
    diou = iou - 2 / 18  # centres (1, 1), (2, 2); enclosing diagonal^2 = 18
    for flag, want in (
        (dict(), iou),
        (dict(GIoU=True), giou),
        (dict(DIoU=True), diou),
        (dict(CIoU=True), diou),
    ):
        got = bbox_iou(a, b, xywh=False, **flag)
        assert got.shape == (1,)
        assert got.item() == pytest.approx(want, abs=1e-6), flag  # same aspect ratio: CIoU == DIoU

    # CIoU with different aspect ratios: 4x2 and 2x4 boxes
    a, b = torch.tensor([0.0, 0.0, 4.0, 2.0]), torch.tensor([1.0, 0.0, 3.0, 4.0])
    iou = 4 / 12
    rho2_c2 = 1 / 32  # centres (2, 1) and (2, 2); enclosing 4x4
    v = 4 / math.pi**2 * math.atan(0.75) ** 2  # atan(2) - atan(1/2) = atan(3/4)
    alpha = v / (1 - iou + v)
    want = iou - rho2_c2 - alpha * v
    assert bbox_iou(a, b, xywh=False, CIoU=True).item() == pytest.approx(want, abs=1e-6)
    # the same boxes given as centre + size
    a_xywh, b_xywh = torch.tensor([2.0, 1.0, 4.0, 2.0]), torch.tensor([2.0, 2.0, 2.0, 4.0])
    assert bbox_iou(a_xywh, b_xywh, CIoU=True).item() == pytest.approx(want, abs=1e-6)


def test_bbox_iou_broadcasts_like_box_iou():
    gen = torch.Generator().manual_seed(3)
    a, b = random_boxes(6, gen), random_boxes(9, gen)
    pair = bbox_iou(a[:, None, :], b[None, :, :], xywh=False)
    assert pair.shape == (6, 9, 1)
    torch.testing.assert_close(pair[..., 0], box_iou(a, b))


def ciou_paper(b1, b2, alpha=None):
    """CIoU from the paper's formulas (xyxy, float64); the trade-off weight ``alpha`` is computed at this
    point unless given."""
    w1, h1, w2, h2 = b1[2] - b1[0], b1[3] - b1[1], b2[2] - b2[0], b2[3] - b2[1]
    iw = (torch.minimum(b1[2], b2[2]) - torch.maximum(b1[0], b2[0])).clamp(0)
    ih = (torch.minimum(b1[3], b2[3]) - torch.maximum(b1[1], b2[1])).clamp(0)
    inter = iw * ih
    iou = inter / (w1 * h1 + w2 * h2 - inter)
    cw = torch.maximum(b1[2], b2[2]) - torch.minimum(b1[0], b2[0])
    ch = torch.maximum(b1[3], b2[3]) - torch.minimum(b1[1], b2[1])
    rho2 = ((b1[0] + b1[2] - b2[0] - b2[2]) ** 2 + (b1[1] + b1[3] - b2[1] - b2[3]) ** 2) / 4
    v = 4 / math.pi**2 * (torch.atan(w2 / h2) - torch.atan(w1 / h1)) ** 2
    if alpha is None:
        alpha = (v / (1 - iou + v)).item()
    return iou - rho2 / (cw**2 + ch**2) - alpha * v, alpha


def test_ciou_value_and_gradient_follow_the_paper_with_alpha_held_constant():
    gen = torch.Generator().manual_seed(5)
    h = 1e-6
    for _ in range(20):
        # overlapping boxes of different shapes
        b1 = torch.tensor([10.0, 10.0, 30.0, 20.0], dtype=torch.float64) + torch.rand(4, generator=gen) * 4
        b2 = torch.tensor([14.0, 6.0, 26.0, 28.0], dtype=torch.float64) + torch.rand(4, generator=gen) * 4
        x1, x2 = b1.clone().requires_grad_(), b2.clone().requires_grad_()
        value = bbox_iou(x1, x2, xywh=False, CIoU=True, eps=0.0)
        value.sum().backward()
        want, alpha = ciou_paper(b1, b2)
        assert value.item() == pytest.approx(want.item(), abs=1e-12)
        # central differences of the paper's CIoU with alpha frozen at this point
        pair, numeric = torch.cat((b1, b2)), torch.zeros(8, dtype=torch.float64)
        for k in range(8):
            e = torch.zeros(8, dtype=torch.float64)
            e[k] = h
            up, down = pair + e, pair - e
            numeric[k] = (ciou_paper(up[:4], up[4:], alpha)[0] - ciou_paper(down[:4], down[4:], alpha)[0]) / (
                2 * h
            )
        torch.testing.assert_close(torch.cat((x1.grad, x2.grad)), numeric, atol=1e-7, rtol=1e-6)


@pytest.mark.parametrize("flag", [dict(), dict(GIoU=True), dict(DIoU=True)])
def test_iou_variants_pass_gradcheck(flag):
    gen = torch.Generator().manual_seed(7)
    b1 = torch.tensor([[2.0, 3.0, 4.0, 5.0], [10.0, 10.0, 6.0, 3.0]], dtype=torch.float64)
    b2 = b1 + torch.rand(2, 4, generator=gen, dtype=torch.float64)
    b1.requires_grad_()
    b2.requires_grad_()
    assert torch.autograd.gradcheck(lambda p, q: bbox_iou(p, q, **flag), (b1, b2))


# ---- NMS ----


@pytest.mark.parametrize("chunk", [7, 1024])
def test_nms_matches_greedy_reference(chunk):
    for seed in range(12):
        gen = torch.Generator().manual_seed(seed)
        n = 150
        boxes = random_boxes(n, gen)
        scores = torch.randperm(n, generator=gen).double() / n  # unique scores: one right order
        thr = [0.3, 0.5, 0.7][seed % 3]
        keep = nms(boxes, scores, thr, chunk=chunk)
        assert keep.dtype == torch.long
        assert keep.tolist() == greedy_nms_reference(boxes, scores, thr)
        groups = torch.randint(0, 3, (n,), generator=gen)
        keep = nms(boxes, scores, thr, idxs=groups, chunk=chunk)
        want = greedy_nms_reference(boxes, scores, thr, groups)
        assert keep.tolist() == want
        for max_keep in (3, 20):  # both the one-pass and the per-group route
            assert (
                nms(boxes, scores, thr, idxs=groups, max_keep=max_keep, chunk=chunk).tolist()
                == want[:max_keep]
            )
        assert (
            nms(boxes, scores, thr, max_keep=5, chunk=chunk).tolist()
            == greedy_nms_reference(boxes, scores, thr)[:5]
        )


def test_nms_ties_empty_and_degenerate():
    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [0.0, 0.0, 10.0, 10.0], [5.0, 5.0, 5.0, 5.0]])
    scores = torch.tensor([0.5, 0.5, 0.9])
    assert nms(boxes, scores, 0.5).tolist() == [
        2,
        0,
    ]  # equal scores: lower index first; empty box overlaps none
    assert nms(torch.zeros(0, 4), torch.zeros(0), 0.5).shape == (0,)
    # IoU exactly at the threshold does not suppress (IoU > thr suppresses)
    half = torch.tensor([[0.0, 0.0, 10.0, 10.0], [0.0, 0.0, 10.0, 5.0]])
    assert nms(half, torch.tensor([0.9, 0.8]), 0.5).tolist() == [0, 1]
    assert nms(half, torch.tensor([0.9, 0.8]), 0.49).tolist() == [0]


def make_prediction(rows, nc):
    """rows: (cx, cy, w, h, obj, {class: prob}) -> (1, N, 5 + nc)."""
    out = torch.zeros(1, len(rows), 5 + nc)
    for i, (cx, cy, w, h, obj, probs) in enumerate(rows):
        out[0, i, :5] = torch.tensor([cx, cy, w, h, obj])
        for c, p in probs.items():
            out[0, i, 5 + c] = p
    return out


def test_non_max_suppression_semantics():
    pred = make_prediction(
        [
            (50, 50, 20, 20, 0.9, {0: 0.9, 1: 0.6}),  # conf 0.81 (cls 0), 0.54 (cls 1)
            (52, 50, 20, 20, 0.8, {1: 0.9}),  # overlaps the first: conf 0.72, class 1
            (200, 200, 10, 10, 0.5, {2: 0.4}),  # obj passes, conf 0.2 does not
            (300, 300, 10, 10, 0.2, {2: 1.0}),  # obj below the threshold
        ],
        nc=3,
    )
    (det,) = non_max_suppression(pred, conf_thres=0.25, iou_thres=0.45)
    assert det.shape == (2, 6)
    torch.testing.assert_close(det[:, 4], torch.tensor([0.81, 0.72]))
    assert det[:, 5].tolist() == [0.0, 1.0]  # different classes do not suppress each other
    torch.testing.assert_close(det[0, :4], torch.tensor([40.0, 40.0, 60.0, 60.0]))
    (det,) = non_max_suppression(pred, conf_thres=0.25, iou_thres=0.45, agnostic=True)
    assert det[:, 4].tolist() == pytest.approx([0.81])
    (det,) = non_max_suppression(pred, conf_thres=0.25, iou_thres=0.45, multi_label=True)
    # box 0 as class 0 and class 1; box 1 (class 1, 0.72) suppresses box 0's weaker class-1 copy (0.54)
    assert det[:, 4].tolist() == pytest.approx([0.81, 0.72])
    (det,) = non_max_suppression(pred, conf_thres=0.25, iou_thres=0.95, multi_label=True)
    assert det[:, 4].tolist() == pytest.approx([0.81, 0.72, 0.54])
    assert det[:, 5].tolist() == [0.0, 1.0, 1.0]
    (det,) = non_max_suppression(pred, conf_thres=0.25, iou_thres=0.95, multi_label=True, max_det=2)
    assert det[:, 4].tolist() == pytest.approx([0.81, 0.72])
    (det,) = non_max_suppression(pred, conf_thres=0.25, iou_thres=0.45, classes=[1])
    assert det[:, 5].tolist() == [1.0]
    (det,) = non_max_suppression(pred, conf_thres=0.95)
    assert det.shape == (0, 6)


def reference_nms_image(x, conf_thres, iou_thres, multi_label, agnostic, max_det):
    """The documented rules, written out with loops and the greedy reference."""
    rows = []
    for p in x.tolist():
        if p[4] <= conf_thres:
            continue
        box = xywh2xyxy(torch.tensor(p[:4], dtype=torch.float64)).tolist()
        confs = [p[4] * c for c in p[5:]]
        if multi_label:
            rows += [box + [c, j] for j, c in enumerate(confs) if c > conf_thres]
        else:
            j = max(range(len(confs)), key=lambda k: confs[k])
            if confs[j] > conf_thres:
                rows.append(box + [confs[j], j])
    if not rows:
        return torch.zeros(0, 6, dtype=torch.float64)
    rows = torch.tensor(rows, dtype=torch.float64)
    keep = greedy_nms_reference(rows[:, :4], rows[:, 4], iou_thres, None if agnostic else rows[:, 5].long())
    return rows[keep[:max_det]]


def test_non_max_suppression_matches_reference_on_random_predictions():
    gen = torch.Generator().manual_seed(11)
    nc = 4
    for trial in range(6):
        n = 400
        xy = torch.rand(2, n, 2, generator=gen, dtype=torch.float64) * 300
        wh = torch.rand(2, n, 2, generator=gen, dtype=torch.float64) * 60 + 4
        obj = torch.rand(2, n, 1, generator=gen, dtype=torch.float64)
        cls = torch.rand(2, n, nc, generator=gen, dtype=torch.float64)
        pred = torch.cat((xy, wh, obj, cls), 2)
        multi_label, agnostic = trial % 2 == 1, trial % 3 == 2
        out = non_max_suppression(pred, 0.2, 0.5, multi_label=multi_label, agnostic=agnostic, max_det=40)
        for b in range(2):
            want = reference_nms_image(pred[b], 0.2, 0.5, multi_label, agnostic, 40)
            torch.testing.assert_close(out[b], want)
            assert len(out[b]) <= 40


def test_nms_handles_thousands_of_boxes():
    gen = torch.Generator().manual_seed(0)
    boxes = random_boxes(5000, gen, size=640.0, dtype=torch.float32)
    scores = torch.rand(5000, generator=gen)
    keep = nms(boxes, scores, 0.6)
    assert len(keep) == len(set(keep.tolist()))
    # no two survivors overlap more than the threshold, and every dropped box overlaps a better survivor
    kept = boxes[keep]
    iou = box_iou(kept, kept, eps=0.0).fill_diagonal_(0)
    assert iou.max() <= 0.6
    dropped = torch.ones(5000, dtype=torch.bool)
    dropped[keep] = False
    over = box_iou(boxes[dropped], kept, eps=0.0) > 0.6
    better = scores[dropped][:, None] <= scores[keep][None, :]
    assert (over & better).any(1).all()
