"""YOLOv5's training loss: CIoU box loss, objectness BCE against the matched IoU, class BCE.

Matching (``build_targets``): a label is assigned at every output scale to each anchor whose width and
height ratios to the box stay within ``anchor_t``, in the cell holding its centre and also in the two
neighbouring cells nearest to that centre (the predicted offset spans -0.5..1.5 cells, so those cells can
reach it). Objectness targets are the (detached) CIoU of the matched prediction, and the per-scale
objectness losses are weighted 4 : 1 : 0.4 from the finest scale to the coarsest.
"""

from __future__ import annotations

import torch
from torch import nn

from aics.tasks.detect.boxes import bbox_iou

# Neighbour cells a centre can also be assigned to: itself, left, up, right, down (in units of g = 0.5).
NEIGHBOURS = ((0, 0), (1, 0), (0, 1), (-1, 0), (0, -1))
SCALE_BALANCE = {3: (4.0, 1.0, 0.4), 4: (4.0, 1.0, 0.25, 0.06), 5: (4.0, 1.0, 0.25, 0.06, 0.02)}


class FocalLoss(nn.Module):
    """Focal loss (Lin et al. 2017) on top of a BCE-with-logits criterion (reduction applied here)."""

    def __init__(self, bce: nn.BCEWithLogitsLoss, gamma: float = 1.5, alpha: float = 0.25):
        super().__init__()
        self.bce, self.gamma, self.alpha = bce, gamma, alpha
        self.bce.reduction = "none"

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        loss = self.bce(logits, target)
        p = torch.sigmoid(logits)
        p_t = target * p + (1 - target) * (1 - p)
        alpha = target * self.alpha + (1 - target) * (1 - self.alpha)
        return (loss * alpha * (1.0 - p_t) ** self.gamma).mean()


def hyp_for_model(hyp: dict, nc: int, nl: int, imgsz: int) -> dict:
    """Scale the loss gains like YOLOv5 does: to the number of output scales, classes and image size."""
    hyp = dict(hyp)
    hyp["box"] *= 3 / nl
    hyp["cls"] *= nc / 80 * 3 / nl
    hyp["obj"] *= (imgsz / 640) ** 2 * 3 / nl
    return hyp


class YoloLoss:
    """``loss(preds, targets) -> (total * batch_size, tensor([box, obj, cls]) detached)``.

    ``preds``: the model's training outputs, one ``(B, na, ny, nx, 5 + nc)`` tensor per scale.
    ``targets``: ``(N, 6)`` rows ``[image index in batch, class, cx, cy, w, h]``, normalised to the image.
    ``hyp`` holds the (already scaled, see ``hyp_for_model``) gains and ``anchor_t``, ``cls_pw``,
    ``obj_pw``, ``fl_gamma``, ``label_smoothing``.
    """

    def __init__(self, detect: nn.Module, hyp: dict):
        self.hyp = hyp
        device = detect.anchors.device
        bce_cls = nn.BCEWithLogitsLoss(pos_weight=torch.tensor([hyp["cls_pw"]], device=device))
        bce_obj = nn.BCEWithLogitsLoss(pos_weight=torch.tensor([hyp["obj_pw"]], device=device))
        if hyp.get("fl_gamma", 0) > 0:
            bce_cls, bce_obj = FocalLoss(bce_cls, hyp["fl_gamma"]), FocalLoss(bce_obj, hyp["fl_gamma"])
        self.bce_cls, self.bce_obj = bce_cls, bce_obj
        eps = hyp.get("label_smoothing", 0.0)
        self.cls_pos, self.cls_neg = 1.0 - 0.5 * eps, 0.5 * eps
        self.nl, self.na, self.nc = detect.nl, detect.na, detect.nc
        self.anchors = detect.anchors  # (nl, na, 2) in grid units of each scale
        self.balance = SCALE_BALANCE.get(self.nl, (4.0, 1.0, 0.4) + (0.4,) * max(0, self.nl - 3))

    def __call__(self, preds: list[torch.Tensor], targets: torch.Tensor):
        device = targets.device
        lcls = torch.zeros(1, device=device)
        lbox = torch.zeros(1, device=device)
        lobj = torch.zeros(1, device=device)
        tcls, tbox, indices, anchors = self.build_targets(preds, targets)
        for i, pi in enumerate(preds):
            b, a, gj, gi = indices[i]
            tobj = torch.zeros(pi.shape[:4], dtype=pi.dtype, device=device)  # (B, na, ny, nx)
            n = b.shape[0]
            if n:
                pxy, pwh, _, pcls = pi[b, a, gj, gi].split(
                    (2, 2, 1, self.nc), 1
                )  # (n, 2), (n, 2), -, (n, nc)
                pxy = pxy.sigmoid() * 2 - 0.5
                pwh = (pwh.sigmoid() * 2) ** 2 * anchors[i]
                iou = bbox_iou(torch.cat((pxy, pwh), 1), tbox[i], CIoU=True).squeeze(-1)  # (n,)
                lbox += (1.0 - iou).mean()
                tobj[b, a, gj, gi] = iou.detach().clamp(0).type(tobj.dtype)
                if self.nc > 1:
                    t = torch.full_like(pcls, self.cls_neg)
                    t[torch.arange(n, device=device), tcls[i]] = self.cls_pos
                    lcls += self.bce_cls(pcls, t)
            lobj += self.bce_obj(pi[..., 4], tobj) * self.balance[i]
        lbox *= self.hyp["box"]
        lobj *= self.hyp["obj"]
        lcls *= self.hyp["cls"]
        bs = preds[0].shape[0]
        return (lbox + lobj + lcls) * bs, torch.cat((lbox, lobj, lcls)).detach()

    def build_targets(self, preds: list[torch.Tensor], targets: torch.Tensor):
        """Per scale: classes, boxes (xy offset from the cell, wh in grid units), indices (image, anchor,
        gy, gx) and the matched anchors, for every (label, anchor, cell) assignment."""
        na, nt = self.na, targets.shape[0]
        device = targets.device
        tcls, tbox, indices, anch = [], [], [], []
        gain = torch.ones(7, device=device)
        anchor_idx = torch.arange(na, device=device, dtype=torch.float32).view(na, 1).repeat(1, nt)
        # (na, nt, 7): every label once per anchor, with the anchor index as the last column
        t_all = torch.cat((targets.repeat(na, 1, 1), anchor_idx[..., None]), 2)
        g = 0.5
        offsets_table = torch.tensor(NEIGHBOURS, device=device, dtype=torch.float32) * g  # (5, 2)
        for i in range(self.nl):
            anchors, shape = self.anchors[i], preds[i].shape
            gain[2:6] = torch.tensor(shape, device=device)[[3, 2, 3, 2]].float()  # nx, ny, nx, ny
            t = t_all * gain  # boxes in grid units of this scale
            if nt:
                ratio = t[..., 4:6] / anchors[:, None]  # (na, nt, 2)
                keep = torch.max(ratio, 1 / ratio).max(2)[0] < self.hyp["anchor_t"]
                t = t[keep]  # (m, 7)
                gxy = t[:, 2:4]
                gxy_inv = gain[[2, 3]] - gxy
                left, up = ((gxy % 1 < g) & (gxy > 1)).T
                right, down = ((gxy_inv % 1 < g) & (gxy_inv > 1)).T
                use = torch.stack((torch.ones_like(left), left, up, right, down))  # (5, m)
                t = t.repeat((5, 1, 1))[use]
                offsets = (torch.zeros_like(gxy)[None] + offsets_table[:, None])[use]
            else:
                t = t_all[0]
                offsets = 0
            bc, gxy, gwh, a = t.split((2, 2, 2, 1), 1)
            a = a.long().view(-1)
            b, c = bc.long().T
            gij = (gxy - offsets).long()
            gi = gij[:, 0].clamp_(0, shape[3] - 1)
            gj = gij[:, 1].clamp_(0, shape[2] - 1)
            indices.append((b, a, gj, gi))
            tbox.append(torch.cat((gxy - torch.stack((gi, gj), 1), gwh), 1))
            anch.append(anchors[a])
            tcls.append(c)
        return tcls, tbox, indices, anch
