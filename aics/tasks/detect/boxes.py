"""Box geometry for detection: format converters, letterbox undo, IoU variants and non-maximum suppression.

Formats: ``xyxy`` = corners (x1, y1, x2, y2); ``xywh`` = centre and size (cx, cy, w, h); a trailing ``n``
means normalised to the image (0..1). Coordinates live in the last dimension, so every converter accepts
``(..., 4)`` torch tensors or numpy arrays and returns a new object of the same kind.
"""

from __future__ import annotations

import math

import numpy as np
import torch


def _copy(x):
    """A float copy of a tensor or array (integer input would truncate the halved sizes)."""
    if isinstance(x, torch.Tensor):
        return x.clone() if x.is_floating_point() else x.float()
    x = np.asarray(x)
    return x.copy() if np.issubdtype(x.dtype, np.floating) else x.astype(np.float64)


def xywh2xyxy(x):
    """(cx, cy, w, h) -> (x1, y1, x2, y2)."""
    y = _copy(x)
    y[..., 0] = x[..., 0] - x[..., 2] / 2
    y[..., 1] = x[..., 1] - x[..., 3] / 2
    y[..., 2] = x[..., 0] + x[..., 2] / 2
    y[..., 3] = x[..., 1] + x[..., 3] / 2
    return y


def xyxy2xywh(x):
    """(x1, y1, x2, y2) -> (cx, cy, w, h)."""
    y = _copy(x)
    y[..., 0] = (x[..., 0] + x[..., 2]) / 2
    y[..., 1] = (x[..., 1] + x[..., 3]) / 2
    y[..., 2] = x[..., 2] - x[..., 0]
    y[..., 3] = x[..., 3] - x[..., 1]
    return y


def xywhn2xyxy(x, w: float = 640, h: float = 640, padw: float = 0, padh: float = 0):
    """Normalised (cx, cy, w, h) -> pixel (x1, y1, x2, y2) in an image of ``w`` x ``h`` placed at
    (``padw``, ``padh``) inside a larger canvas (a letterbox or a mosaic tile)."""
    y = _copy(x)
    y[..., 0] = w * (x[..., 0] - x[..., 2] / 2) + padw
    y[..., 1] = h * (x[..., 1] - x[..., 3] / 2) + padh
    y[..., 2] = w * (x[..., 0] + x[..., 2] / 2) + padw
    y[..., 3] = h * (x[..., 1] + x[..., 3] / 2) + padh
    return y


def xyxy2xywhn(x, w: float = 640, h: float = 640, clip: bool = False, eps: float = 0.0):
    """Pixel (x1, y1, x2, y2) -> normalised (cx, cy, w, h); ``clip`` first clips the corners to
    ``(w - eps, h - eps)`` (on a copy: ``x`` is never modified)."""
    if clip:
        x = clip_boxes(_copy(x), (h - eps, w - eps))
    y = _copy(x)
    y[..., 0] = ((x[..., 0] + x[..., 2]) / 2) / w
    y[..., 1] = ((x[..., 1] + x[..., 3]) / 2) / h
    y[..., 2] = (x[..., 2] - x[..., 0]) / w
    y[..., 3] = (x[..., 3] - x[..., 1]) / h
    return y


def clip_boxes(boxes, shape_hw):
    """Clip xyxy ``boxes`` (..., 4) to an image of ``shape_hw`` = (height, width), IN PLACE; returns them."""
    h, w = shape_hw[0], shape_hw[1]
    if isinstance(boxes, torch.Tensor):
        boxes[..., 0].clamp_(0, w)
        boxes[..., 1].clamp_(0, h)
        boxes[..., 2].clamp_(0, w)
        boxes[..., 3].clamp_(0, h)
    else:
        boxes[..., [0, 2]] = boxes[..., [0, 2]].clip(0, w)
        boxes[..., [1, 3]] = boxes[..., [1, 3]].clip(0, h)
    return boxes


def scale_boxes(img1_shape_hw, boxes, img0_shape_hw, ratio_pad=None):
    """Map xyxy ``boxes`` from a letterboxed image of ``img1_shape_hw`` back to the original image of
    ``img0_shape_hw`` (both (height, width)), then clip to it. IN PLACE on ``boxes`` (..., 4); returns them.

    ``ratio_pad`` = ((gain_h, gain_w), (pad_w, pad_h)) as recorded by the letterbox (resized / original size
    per axis, and the left / top padding in pixels). Without it the gain and a centred padding are computed
    from the two shapes, which is what a plain ``letterbox(auto=False)`` did.
    """
    if ratio_pad is None:
        gain = min(img1_shape_hw[0] / img0_shape_hw[0], img1_shape_hw[1] / img0_shape_hw[1])
        gain_h = gain_w = gain
        pad_w = (img1_shape_hw[1] - img0_shape_hw[1] * gain) / 2
        pad_h = (img1_shape_hw[0] - img0_shape_hw[0] * gain) / 2
    else:
        (gain_h, gain_w), (pad_w, pad_h) = ratio_pad
    boxes[..., 0] -= pad_w
    boxes[..., 2] -= pad_w
    boxes[..., 1] -= pad_h
    boxes[..., 3] -= pad_h
    boxes[..., 0] /= gain_w
    boxes[..., 2] /= gain_w
    boxes[..., 1] /= gain_h
    boxes[..., 3] /= gain_h
    return clip_boxes(boxes, img0_shape_hw)


def box_iou(box1: torch.Tensor, box2: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """IoU of every pair: ``box1`` (N, 4) and ``box2`` (M, 4) xyxy -> (N, M)."""
    lt = torch.maximum(box1[:, None, :2], box2[None, :, :2])  # (N, M, 2)
    rb = torch.minimum(box1[:, None, 2:], box2[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(2)  # (N, M)
    area1 = (box1[:, 2:] - box1[:, :2]).prod(1)  # (N,)
    area2 = (box2[:, 2:] - box2[:, :2]).prod(1)  # (M,)
    return inter / (area1[:, None] + area2[None, :] - inter + eps)


def bbox_iou(
    box1: torch.Tensor,
    box2: torch.Tensor,
    xywh: bool = True,
    GIoU: bool = False,
    DIoU: bool = False,
    CIoU: bool = False,
    eps: float = 1e-7,
) -> torch.Tensor:
    """IoU (or GIoU / DIoU / CIoU) of matching boxes: ``box1`` and ``box2`` (..., 4) broadcast -> (..., 1).

    GIoU (Rezatofighi et al. 2019) = IoU - (C - U) / C with C the area of the smallest enclosing box.
    DIoU (Zheng et al. 2020) = IoU - rho^2 / c^2, rho the distance between centres, c the enclosing box's
    diagonal. CIoU = DIoU - alpha * v, v = 4 / pi^2 * (atan(w2 / h2) - atan(w1 / h1))^2 and
    alpha = v / (1 - IoU + v); the paper treats alpha as a trade-off weight, not a function to differentiate,
    so it is computed without gradient (as YOLOv5 does).
    """
    if xywh:
        (x1, y1, w1, h1), (x2, y2, w2, h2) = box1.chunk(4, -1), box2.chunk(4, -1)
        b1_x1, b1_x2, b1_y1, b1_y2 = x1 - w1 / 2, x1 + w1 / 2, y1 - h1 / 2, y1 + h1 / 2
        b2_x1, b2_x2, b2_y1, b2_y2 = x2 - w2 / 2, x2 + w2 / 2, y2 - h2 / 2, y2 + h2 / 2
    else:
        b1_x1, b1_y1, b1_x2, b1_y2 = box1.chunk(4, -1)
        b2_x1, b2_y1, b2_x2, b2_y2 = box2.chunk(4, -1)
        w1, h1 = b1_x2 - b1_x1, (b1_y2 - b1_y1).clamp(eps)
        w2, h2 = b2_x2 - b2_x1, (b2_y2 - b2_y1).clamp(eps)
    inter = (torch.minimum(b1_x2, b2_x2) - torch.maximum(b1_x1, b2_x1)).clamp(0) * (
        torch.minimum(b1_y2, b2_y2) - torch.maximum(b1_y1, b2_y1)
    ).clamp(0)
    union = w1 * h1 + w2 * h2 - inter + eps
    iou = inter / union
    if not (GIoU or DIoU or CIoU):
        return iou
    cw = torch.maximum(b1_x2, b2_x2) - torch.minimum(b1_x1, b2_x1)  # enclosing box width
    ch = torch.maximum(b1_y2, b2_y2) - torch.minimum(b1_y1, b2_y1)
    if GIoU and not (DIoU or CIoU):
        c_area = cw * ch + eps
        return iou - (c_area - union) / c_area
    c2 = cw**2 + ch**2 + eps  # squared diagonal of the enclosing box
    rho2 = ((b2_x1 + b2_x2 - b1_x1 - b1_x2) ** 2 + (b2_y1 + b2_y2 - b1_y1 - b1_y2) ** 2) / 4
    if not CIoU:
        return iou - rho2 / c2
    v = (4 / math.pi**2) * (torch.atan(w2 / h2) - torch.atan(w1 / h1)).pow(2)
    with torch.no_grad():
        alpha = v / (v - iou + (1 + eps))
    return iou - (rho2 / c2 + v * alpha)


def nms(
    boxes: torch.Tensor,
    scores: torch.Tensor,
    iou_thres: float,
    idxs: torch.Tensor | None = None,
    max_keep: int | None = None,
    chunk: int = 1024,
) -> torch.Tensor:
    """Greedy non-maximum suppression -> indices (LongTensor) of the kept boxes, highest score first.

    ``boxes`` (N, 4) xyxy, ``scores`` (N,). Boxes are visited by descending score (equal scores: lower index
    first); a box is dropped when its IoU with an already kept box is > ``iou_thres``. With ``idxs`` (N,)
    (e.g. class ids) only boxes with the same id suppress each other. ``max_keep`` stops once that many are
    kept: the result is exactly the first ``max_keep`` of the full answer, since a box's fate depends only
    on higher-scored boxes.
    """
    if boxes.shape[0] == 0:
        return torch.zeros(0, dtype=torch.long, device=boxes.device)
    if not boxes.is_floating_point():
        boxes = boxes.float()
    limit = boxes.shape[0] if max_keep is None else max_keep
    if idxs is None or limit <= chunk:
        # one pass; few boxes are kept, so testing each chunk against the kept ones stays cheap
        return _greedy_nms(boxes, scores, iou_thres, limit, chunk, idxs)
    kept = []  # many may survive: suppress each group on its own, then merge by score
    for group in torch.unique(idxs):
        members = (idxs == group).nonzero().view(-1)  # ascending, so ties keep the lower index first
        kept.append(members[_greedy_nms(boxes[members], scores[members], iou_thres, limit, chunk)])
    kept = torch.cat(kept).sort().values
    return kept[torch.sort(scores[kept], descending=True, stable=True).indices][:limit]


def _greedy_nms(boxes, scores, iou_thres: float, limit: int, chunk: int, groups=None) -> torch.Tensor:
    """``nms`` in one pass (boxes of different ``groups`` never overlap). The boxes, sorted, are taken
    ``chunk`` at a time: first the boxes kept from earlier chunks suppress the chunk's (IoU tests in
    (chunk, chunk) blocks), then the overlap matrix of the chunk's survivors is walked greedily, so memory
    stays O(chunk^2) for any N."""
    n, device = boxes.shape[0], boxes.device
    order = torch.sort(scores, descending=True, stable=True).indices
    boxes = boxes[order]
    groups = groups[order] if groups is not None else None
    kept: list[int] = []  # positions in the sorted order
    kept_boxes = boxes[:0]
    kept_groups = groups[:0] if groups is not None else None
    for start in range(0, n, chunk):
        if len(kept) >= limit:
            break
        blk = boxes[start : start + chunk]  # (c, 4)
        blk_groups = groups[start : start + chunk] if groups is not None else None
        alive = torch.ones(blk.shape[0], dtype=torch.bool, device=device)
        for k in range(0, kept_boxes.shape[0], chunk):
            over = _iou_plain(blk, kept_boxes[k : k + chunk]) > iou_thres  # (c, <= chunk)
            if groups is not None:
                over &= blk_groups[:, None] == kept_groups[None, k : k + chunk]
            alive &= ~over.any(1)
        cand = alive.nonzero().view(-1)  # (a,) chunk positions still in the running
        if not cand.numel():
            continue
        over = _iou_plain(blk[cand], blk[cand]) > iou_thres  # (a, a)
        if groups is not None:
            over &= blk_groups[cand, None] == blk_groups[None, cand]
        over = over.triu(diagonal=1).cpu().numpy()  # a box can only suppress lower-scored ones
        free = np.ones(cand.numel(), dtype=bool)
        new = []
        for i in range(len(free)):
            if free[i]:
                new.append(i)
                if len(kept) + len(new) >= limit:
                    break
                free &= ~over[i]
        new_pos = cand[torch.as_tensor(new, dtype=torch.long, device=device)]
        kept.extend((start + new_pos).tolist())
        kept_boxes = torch.cat((kept_boxes, blk[new_pos]))
        if groups is not None:
            kept_groups = torch.cat((kept_groups, blk_groups[new_pos]))
    return order[torch.as_tensor(kept[:limit], dtype=torch.long, device=device)]


def _iou_plain(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """box_iou without the eps, 0 where both boxes are empty (the definition torchvision's nms uses)."""
    lt = torch.maximum(a[:, None, :2], b[None, :, :2])
    rb = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(2)
    union = (a[:, 2:] - a[:, :2]).prod(1)[:, None] + (b[:, 2:] - b[:, :2]).prod(1)[None, :] - inter
    return torch.where(union > 0, inter / union.clamp(min=torch.finfo(union.dtype).tiny), 0.0)


def non_max_suppression(
    prediction: torch.Tensor,
    conf_thres: float = 0.25,
    iou_thres: float = 0.45,
    classes: list[int] | None = None,
    agnostic: bool = False,
    multi_label: bool = False,
    max_det: int = 300,
    max_nms: int = 30000,
) -> list[torch.Tensor]:
    """Decoded predictions -> one (n, 6) tensor ``[x1, y1, x2, y2, conf, cls]`` per image, by falling conf.

    ``prediction`` (B, N, 5 + nc): (cx, cy, w, h) in pixels, objectness and class probabilities, both
    already through the sigmoid. A prediction is a candidate when obj > ``conf_thres``; its confidence for a
    class is obj * p(class). ``multi_label`` keeps every (box, class) pair whose confidence is above
    ``conf_thres`` (what mAP evaluation uses; ignored when nc == 1), otherwise each box keeps its best class
    if that is above ``conf_thres``. ``classes`` keeps only those class ids. The ``max_nms`` most confident
    pairs go to NMS, per class unless ``agnostic`` (boxes of different classes never suppress each other),
    and the ``max_det`` best survivors are returned.
    """
    if not 0 <= conf_thres <= 1 or not 0 <= iou_thres <= 1:
        raise ValueError(f"conf_thres {conf_thres} and iou_thres {iou_thres} must lie in [0, 1]")
    nc = prediction.shape[2] - 5
    multi_label = multi_label and nc > 1
    device = prediction.device
    output = [torch.zeros((0, 6), device=device, dtype=prediction.dtype) for _ in range(prediction.shape[0])]
    for b, x in enumerate(prediction):  # (N, 5 + nc)
        x = x[x[:, 4] > conf_thres]
        if not x.shape[0]:
            continue
        box = xywh2xyxy(x[:, :4])
        conf_all = x[:, 5:] * x[:, 4:5]  # (n, nc)
        if multi_label:
            i, j = (conf_all > conf_thres).nonzero(as_tuple=True)
            det = torch.cat((box[i], conf_all[i, j, None], j[:, None].to(x.dtype)), 1)
        else:
            conf, j = conf_all.max(1, keepdim=True)
            det = torch.cat((box, conf, j.to(x.dtype)), 1)[conf.view(-1) > conf_thres]
        if classes is not None:
            det = det[(det[:, 5:6] == torch.tensor(classes, device=device, dtype=det.dtype)).any(1)]
        if not det.shape[0]:
            continue
        if det.shape[0] > max_nms:  # a partial selection is much cheaper than sorting millions of pairs
            det = det[torch.topk(det[:, 4], max_nms).indices.sort().values]
        det = det[torch.sort(det[:, 4], descending=True, stable=True).indices]
        keep = nms(det[:, :4], det[:, 4], iou_thres, idxs=None if agnostic else det[:, 5], max_keep=max_det)
        output[b] = det[keep]
    return output
