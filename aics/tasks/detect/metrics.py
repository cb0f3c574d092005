"""Detection scores: matching predictions to labels, AP / mAP per class, the confusion matrix, COCO json.

The default path reproduces YOLOv5's ``val.py`` numbers: ``match_predictions`` marks each detection
correct or not at the ten IoU thresholds 0.50:0.05:0.95, ``ap_per_class`` builds each class's
precision-recall curve over all images and integrates it (101-point ``interp``), and mAP is the mean
over the classes that have labels. ``method="coco"`` in both switches to pycocotools' rules (detections
claim labels in confidence order; AP is the mean precision at 101 recall points), which then agree with
``COCOeval`` to float precision; tests/tasks/detect/test_metrics.py checks both against it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from aics.tasks.detect.boxes import xyxy2xywh

IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)  # COCO's 0.50:0.05:0.95


def _numpy64(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def _pair_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every pair of xyxy boxes ``a`` (N, 4) and ``b`` (M, 4) -> (N, M), float64, no eps."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(2)
    union = (a[:, 2:] - a[:, :2]).prod(1)[:, None] + (b[:, 2:] - b[:, :2]).prod(1)[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def match_predictions(detections, labels, iouv=None, method: str = "yolov5") -> torch.Tensor:
    """Which detections of one image are true positives, at each IoU threshold.

    ``detections`` (n, 6) ``[x1, y1, x2, y2, conf, cls]`` (NMS output order: falling confidence);
    ``labels`` (m, 5) ``[cls, x1, y1, x2, y2]`` in the same pixel space; ``iouv`` (T,) thresholds
    (default 0.50:0.05:0.95). Returns ``correct`` (n, T) bool, a torch tensor on the detections' device.

    At each threshold a detection and a label of the same class with IoU >= threshold may pair, each label
    with at most one detection. ``method="yolov5"`` (val.py's ``process_batch``): every detection takes its
    highest-IoU eligible label; a label wanted by several detections goes to the first of them in the given
    order. ``method="coco"`` (pycocotools' ``evaluateImg``): detections by falling confidence each take the
    highest-IoU eligible label not yet taken.
    """
    device = detections.device if isinstance(detections, torch.Tensor) else torch.device("cpu")
    det, lab = _numpy64(detections).reshape(-1, 6), _numpy64(labels).reshape(-1, 5)
    thr = IOU_THRESHOLDS if iouv is None else _numpy64(iouv).reshape(-1)
    correct = np.zeros((det.shape[0], thr.shape[0]), dtype=bool)
    if det.shape[0] and lab.shape[0]:
        iou = _pair_iou(lab[:, 1:], det[:, :4])  # (m, n)
        iou[lab[:, 0:1] != det[None, :, 5]] = -1.0  # another class never matches
        if method == "yolov5":
            _match_yolov5(iou, thr, correct)
        elif method == "coco":
            _match_coco(iou, det[:, 4], thr, correct)
        else:
            raise ValueError(f"unknown matching method {method!r} (yolov5 or coco)")
    return torch.from_numpy(correct).to(device)


def _match_yolov5(iou: np.ndarray, thr: np.ndarray, correct: np.ndarray) -> None:
    for t, threshold in enumerate(thr):
        li, di = np.nonzero(iou >= threshold)
        if not li.size:
            continue
        by_iou = np.argsort(-iou[li, di], kind="stable")
        li, di = li[by_iou], di[by_iou]
        _, first = np.unique(di, return_index=True)  # each detection's best label; now in detection order
        li, di = li[first], di[first]
        _, first = np.unique(li, return_index=True)  # each label's first detection
        correct[di[first], t] = True


def _match_coco(iou: np.ndarray, conf: np.ndarray, thr: np.ndarray, correct: np.ndarray) -> None:
    taken = np.zeros((thr.shape[0], iou.shape[0]), dtype=bool)  # (T, m)
    for d in np.argsort(-conf, kind="stable"):
        eligible = (iou[None, :, d] >= thr[:, None]) & ~taken  # (T, m)
        best = np.where(eligible, iou[None, :, d], -1.0).argmax(1)  # (T,)
        hit = eligible[np.arange(thr.shape[0]), best]
        taken[hit, best[hit]] = True
        correct[d] = hit


def compute_ap(recall: np.ndarray, precision: np.ndarray, method: str = "interp"):
    """Area under one precision-recall curve -> ``(ap, mpre, mrec)``.

    ``recall``, ``precision`` (n,): the curve at each detection, by falling confidence. ``mrec`` / ``mpre``
    are the curve with (0, 1) prepended and (1, 0) appended, precision replaced by its running max from the
    right (the envelope). ``method``: ``"interp"`` (YOLOv5) samples the envelope linearly at 101 recall
    points and integrates with the trapezoid rule; ``"continuous"`` sums the envelope's steps exactly;
    ``"coco"`` (pycocotools) averages, over the 101 recall points r, the envelope's precision at the first
    detection reaching recall >= r (0 beyond the final recall).
    """
    recall, precision = np.asarray(recall, dtype=np.float64), np.asarray(precision, dtype=np.float64)
    mrec = np.concatenate(([0.0], recall, [1.0]))
    mpre = np.concatenate(([1.0], precision, [0.0]))
    mpre = np.flip(np.maximum.accumulate(np.flip(mpre)))
    if method == "interp":
        x = np.linspace(0, 1, 101)
        y = np.interp(x, mrec, mpre)
        ap = float(np.sum((y[1:] + y[:-1]) / 2 * np.diff(x)))
    elif method == "continuous":
        i = np.nonzero(mrec[1:] != mrec[:-1])[0]
        ap = float(np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1]))
    elif method == "coco":
        rec_points = np.linspace(0, 1, 101)
        idx = np.searchsorted(recall, rec_points, side="left")
        q = np.zeros_like(rec_points)
        ok = idx < recall.shape[0]
        q[ok] = mpre[1:-1][idx[ok]]
        ap = float(q.mean())
    else:
        raise ValueError(f"unknown AP method {method!r} (interp, continuous or coco)")
    return ap, mpre, mrec


def _smooth(y: np.ndarray, fraction: float = 0.05) -> np.ndarray:
    """Box-filter ``y`` over a window of about ``2 * fraction`` of its length (odd), edges extended."""
    nf = round(len(y) * fraction * 2) // 2 + 1
    padded = np.concatenate((np.full(nf // 2, y[0]), y, np.full(nf // 2, y[-1])))
    return np.convolve(padded, np.ones(nf) / nf, mode="valid")


def _mean(a: np.ndarray) -> float:
    return float(a.mean()) if a.size else 0.0


def _names_list(names, classes: np.ndarray) -> list[str]:
    if names is None:
        return [str(int(c)) for c in classes]
    if isinstance(names, dict):
        return [str(names.get(int(c), int(c))) for c in classes]
    return [str(names[int(c)]) if int(c) < len(names) else str(int(c)) for c in classes]


def ap_per_class(
    tp,
    conf,
    pred_cls,
    target_cls,
    names=None,
    plot_dir: str | Path | None = None,
    eps: float = 1e-16,
    method: str = "interp",
) -> dict:
    """Precision, recall, F1 and AP per class from the matches of a whole split.

    ``tp`` (n, T) bool: ``match_predictions`` of every detection of every image, stacked; ``conf`` (n,),
    ``pred_cls`` (n,): their confidences and classes; ``target_cls`` (m,): the class of every label.
    ``names`` (dict id -> name or list) labels the plots; ``method`` is ``compute_ap``'s.

    Only classes with at least one label are scored (predictions of other classes are ignored). Returns a
    dict of numpy arrays over those classes, ascending: ``classes`` (int ids), ``nt`` (label counts),
    ``p``, ``r``, ``f1`` (at the single confidence where the mean F1 over classes, lightly smoothed, is
    highest: ``best_conf``), ``tp``, ``fp`` (counts there), ``ap`` (nc_present, T), ``ap50`` (= ap[:, 0]);
    and floats ``mp``, ``mr``, ``map50``, ``map`` (mean over those classes and thresholds). With
    ``plot_dir``, writes ``PR_curve.png`` and ``F1_curve.png`` there.
    """
    tp = np.asarray(tp.cpu() if isinstance(tp, torch.Tensor) else tp, dtype=np.float64)
    if tp.ndim == 1:
        tp = tp[:, None]
    conf, pred_cls, target_cls = _numpy64(conf), _numpy64(pred_cls), _numpy64(target_cls)
    order = np.argsort(-conf, kind="stable")
    tp, conf, pred_cls = tp[order], conf[order], pred_cls[order]
    classes, nt = np.unique(target_cls, return_counts=True)
    nc, nthr = classes.shape[0], tp.shape[1]
    px = np.linspace(0, 1, 1000)  # confidence axis of the P, R and F1 curves
    ap = np.zeros((nc, nthr))
    p_curve, r_curve = np.zeros((nc, 1000)), np.zeros((nc, 1000))
    pr_curves = np.zeros((nc, 1000))  # precision envelope at IoU 0.5 against recall px
    for ci, c in enumerate(classes):
        mine = pred_cls == c
        if not mine.any():
            continue
        tpc = tp[mine].cumsum(0)  # (n_c, T)
        fpc = (1 - tp[mine]).cumsum(0)
        recall = tpc / (nt[ci] + eps)
        precision = tpc / (tpc + fpc)
        # confidence falls along the rows, so interpolate on -conf to have an increasing axis
        r_curve[ci] = np.interp(-px, -conf[mine], recall[:, 0], left=0)
        p_curve[ci] = np.interp(-px, -conf[mine], precision[:, 0], left=1)
        for j in range(nthr):
            ap[ci, j], mpre, mrec = compute_ap(recall[:, j], precision[:, j], method)
            if j == 0:
                pr_curves[ci] = np.interp(px, mrec, mpre)
    f1_curve = 2 * p_curve * r_curve / (p_curve + r_curve + eps)
    best = int(_smooth(f1_curve.mean(0), 0.1).argmax()) if nc else 0
    p, r, f1 = p_curve[:, best], r_curve[:, best], f1_curve[:, best]
    tp_count = (r * nt).round()
    fp_count = (tp_count / (p + eps) - tp_count).round()
    if plot_dir is not None:
        labels = _names_list(names, classes)
        _plot_pr(px, pr_curves, ap[:, 0], labels, Path(plot_dir) / "PR_curve.png")
        _plot_f1(px, f1_curve, labels, Path(plot_dir) / "F1_curve.png")
    return {
        "classes": classes.astype(int),
        "nt": nt,
        "p": p,
        "r": r,
        "f1": f1,
        "tp": tp_count,
        "fp": fp_count,
        "ap": ap,
        "ap50": ap[:, 0],
        "best_conf": float(px[best]),
        "mp": _mean(p),
        "mr": _mean(r),
        "map50": _mean(ap[:, 0]),
        "map": _mean(ap),
    }


def _plot_pr(px, curves, ap50, labels, path: Path) -> None:
    from aics.core.plot import pyplot, save_figure

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 5))
    if 0 < len(labels) < 21:
        for curve, a, name in zip(curves, ap50, labels, strict=True):
            ax.plot(px, curve, linewidth=1, label=f"{name} {a:.3f}")
    else:
        ax.plot(px, curves.T, linewidth=1, color="grey")
    if len(labels):
        ax.plot(
            px,
            curves.mean(0),
            linewidth=3,
            color="blue",
            label=f"mean over classes (mAP@0.5 {ap50.mean():.3f})",
        )
    ax.set(xlabel="Recall", ylabel="Precision", xlim=(0, 1), ylim=(0, 1), title="Precision-recall at IoU 0.5")
    ax.legend(bbox_to_anchor=(1.04, 1), loc="upper left")
    save_figure(fig, path)


def _plot_f1(px, curves, labels, path: Path) -> None:
    from aics.core.plot import pyplot, save_figure

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 5))
    if 0 < len(labels) < 21:
        for curve, name in zip(curves, labels, strict=True):
            ax.plot(px, curve, linewidth=1, label=name)
    else:
        ax.plot(px, curves.T, linewidth=1, color="grey")
    if len(labels):
        mean = _smooth(curves.mean(0), 0.1)  # the smoothing ap_per_class picks its confidence with
        i = int(mean.argmax())
        ax.plot(
            px,
            mean,
            linewidth=3,
            color="blue",
            label=f"mean over classes (best {mean[i]:.2f} at conf {px[i]:.3f})",
        )
    ax.set(
        xlabel="Confidence",
        ylabel="F1",
        xlim=(0, 1),
        ylim=(0, 1),
        title="F1 against confidence threshold (IoU 0.5)",
    )
    ax.legend(bbox_to_anchor=(1.04, 1), loc="upper left")
    save_figure(fig, path)


def fitness(map50: float, map: float) -> float:
    """The single number YOLOv5 selects ``best.pt`` by: 0.1 * mAP@0.5 + 0.9 * mAP@0.5:0.95."""
    return 0.1 * float(map50) + 0.9 * float(map)


class ConfusionMatrix:
    """Counts of (predicted class, true class) over a split, with a background row and column.

    ``matrix[pred, true]`` (nc + 1, nc + 1): a detection with confidence > ``conf`` and a label pair up
    (class-agnostic, one to one, greedily by falling IoU, IoU > ``iou_thres``) and count at their two classes;
    a label left over counts at ``[nc, true]`` (missed: background predicted); a detection left over at
    ``[pred, nc]`` (false alarm on background).
    """

    def __init__(self, nc: int, conf: float = 0.25, iou_thres: float = 0.45):
        self.nc, self.conf, self.iou_thres = nc, conf, iou_thres
        self.matrix = np.zeros((nc + 1, nc + 1), dtype=np.int64)

    def process_batch(self, detections, labels) -> None:
        """One image: ``detections`` (n, 6) ``[x1, y1, x2, y2, conf, cls]`` or None, ``labels`` (m, 5)
        ``[cls, x1, y1, x2, y2]``."""
        lab = _numpy64(labels).reshape(-1, 5)
        det = np.zeros((0, 6)) if detections is None else _numpy64(detections).reshape(-1, 6)
        det = det[det[:, 4] > self.conf]
        gt_cls, det_cls = lab[:, 0].astype(int), det[:, 5].astype(int)
        det_used = np.zeros(det.shape[0], dtype=bool)
        lab_used = np.zeros(lab.shape[0], dtype=bool)
        if det.shape[0] and lab.shape[0]:
            iou = _pair_iou(lab[:, 1:], det[:, :4])  # (m, n)
            li, di = np.nonzero(iou > self.iou_thres)
            for k in np.argsort(-iou[li, di], kind="stable"):
                i, j = li[k], di[k]
                if not lab_used[i] and not det_used[j]:
                    lab_used[i] = det_used[j] = True
                    self.matrix[det_cls[j], gt_cls[i]] += 1
        np.add.at(self.matrix, (self.nc, gt_cls[~lab_used]), 1)
        np.add.at(self.matrix, (det_cls[~det_used], self.nc), 1)

    def plot(self, path: str | Path, names=None, normalize: bool = True) -> Path:
        """Heat map PNG; ``normalize`` divides each column (true class) by its total."""
        from aics.core.plot import pyplot, save_figure

        plt = pyplot()
        m = self.matrix.astype(np.float64)
        if normalize:
            m = m / (m.sum(0, keepdims=True) + 1e-9)
        labels = _names_list(names, np.arange(self.nc)) + ["background"]
        n = self.nc + 1
        fig, ax = plt.subplots(figsize=(min(3 + 0.5 * n, 16), min(2.5 + 0.5 * n, 14)))
        im = ax.imshow(m, cmap="Blues", vmin=0.0, vmax=1.0 if normalize else None)
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
        if n <= 30:
            ticks = np.arange(n)
            ax.set_xticks(ticks, labels, rotation=90)
            ax.set_yticks(ticks, labels)
            fmt = "{:.2f}" if normalize else "{:.0f}"
            for (i, j), v in np.ndenumerate(m):
                if v > 0.005 or (not normalize and v > 0):
                    color = "white" if v > 0.5 * m.max() else "black"
                    ax.text(j, i, fmt.format(v), ha="center", va="center", fontsize=7, color=color)
        ax.set(xlabel="True", ylabel="Predicted", title="Confusion matrix")
        return save_figure(fig, path)


def _json_id(image_id):
    """numpy / torch integers -> int, so the dicts serialise to json; strings stay."""
    return image_id.item() if hasattr(image_id, "item") else image_id


def coco_predictions(image_id, detections, class_map=None) -> list[dict]:
    """One image's detections (n, 6) ``[x1, y1, x2, y2, conf, cls]`` in original-image pixels -> COCO
    result dicts ``{"image_id", "category_id", "bbox": [x, y, w, h], "score"}`` (bbox rounded to 3
    decimals, score to 5). ``class_map`` (sequence or dict) maps class index -> category id."""
    det = _numpy64(detections).reshape(-1, 6)
    image_id = _json_id(image_id)
    box = xyxy2xywh(det[:, :4])
    box[:, :2] -= box[:, 2:] / 2  # centre -> top-left corner
    out = []
    for b, (score, c) in zip(box.tolist(), det[:, 4:6].tolist(), strict=True):
        out.append(
            {
                "image_id": image_id,
                "category_id": int(class_map[int(c)]) if class_map is not None else int(c),
                "bbox": [round(v, 3) for v in b],
                "score": round(score, 5),
            }
        )
    return out


def coco_ground_truth(images, labels, names, class_map=None) -> dict:
    """A COCO annotations dict (what ``pycocotools.coco.COCO`` reads) for a split.

    ``images``: (image_id, file_name, width, height) per image; ``labels``: one (n, 5) ``[cls, x1, y1, x2,
    y2]`` array per image, original-image pixels; ``names``: class names (list, or dict id -> name);
    ``class_map`` as in ``coco_predictions``. Annotation ids start at 1 (COCOeval reads id 0 as "unmatched").
    """
    items = sorted(names.items()) if isinstance(names, dict) else list(enumerate(names))

    def cat_id(c: int) -> int:
        return int(class_map[c]) if class_map is not None else int(c)

    categories = [{"id": cat_id(i), "name": str(n)} for i, n in items]
    if len(images) != len(labels):
        raise ValueError(f"{len(images)} images but {len(labels)} label arrays")
    img_list, anns = [], []
    for (image_id, file_name, w, h), lab in zip(images, labels, strict=True):
        image_id = _json_id(image_id)
        img_list.append({"id": image_id, "file_name": str(file_name), "width": int(w), "height": int(h)})
        for c, x1, y1, x2, y2 in _numpy64(lab).reshape(-1, 5).tolist():
            bw, bh = x2 - x1, y2 - y1
            anns.append(
                {
                    "id": len(anns) + 1,
                    "image_id": image_id,
                    "category_id": cat_id(int(c)),
                    "bbox": [x1, y1, bw, bh],
                    "area": bw * bh,
                    "iscrowd": 0,
                }
            )
    return {"info": {}, "licenses": [], "images": img_list, "annotations": anns, "categories": categories}
