"""Validation (mAP), prediction on images, and the experiment's results page.

Usage: aics detect val --ckpt exp/yolov5/n/ckpt/best.pt --data data/shapes/data.yaml --out exp/yolov5/n/val
       aics detect predict --ckpt exp/yolov5/n/ckpt/best.pt --source photos/ --out exp/yolov5/n/predict
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from aics.core.ckpt import load_checkpoint, require_parts
from aics.core.errors import UserError
from aics.core.io import read_jsonl, write_json, write_text
from aics.core.log import get_logger, progress
from aics.core.plot import pyplot, save_figure
from aics.core.report import markdown_table
from aics.core.runtime import autocast, pick_device
from aics.core.stage import begin_stage, done_info, mark_done
from aics.tasks.detect.boxes import non_max_suppression, scale_boxes, xywh2xyxy, xyxy2xywhn
from aics.tasks.detect.metrics import (
    ConfusionMatrix,
    ap_per_class,
    coco_ground_truth,
    coco_predictions,
    fitness,
    match_predictions,
)
from aics.tasks.detect.model import DetectionModel, count_parameters

TASK = "detect"


def load_detector(path: str | Path, device: str | torch.device = "cpu", fuse: bool = True):
    """A detector from an aics checkpoint (a training run's or one written by ``aics detect import``):
    the EMA weights when the checkpoint has them. Returns ``(model, names, checkpoint)``."""
    path = Path(path)
    ckpt = load_checkpoint(path, task=TASK)
    require_parts(ckpt, path, ("model",))
    extra = ckpt.get("extra") if isinstance(ckpt.get("extra"), dict) else {}
    description = ckpt.get("description") or extra.get("description")
    names = ckpt.get("names") or extra.get("names")
    if description is None:
        raise UserError(f"{path}: has no model description; is it a detect checkpoint?")
    model = DetectionModel(description)
    weights = extra.get("ema") or ckpt["model"]
    try:
        model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in weights.items()})
    except RuntimeError as e:
        raise UserError(
            f"{path}: weights do not fit the model description ({str(e).splitlines()[0]})"
        ) from None
    names = list(names) if names else [str(i) for i in range(model.nc)]
    model.names = names
    model.eval()
    if fuse:
        model.fuse()
    return model.to(pick_device(device) if isinstance(device, str) else device), names, ckpt


@torch.no_grad()
def validate(
    model: torch.nn.Module,
    loader,
    names: list[str],
    vc,
    device: torch.device,
    amp: bool = False,
    loss_fn=None,
    plot_dir: Path | None = None,
    coco: bool = False,
    progress_bar: bool = True,
) -> dict:
    """mAP of ``model`` over ``loader`` (a YoloDataset loader; labels normalised to the letterboxed image).

    Returns ``mp, mr, map50, map`` (means over the classes present), ``fitness``, ``per_class`` rows, the
    val losses when ``loss_fn`` is given, ``speed_ms`` per image (inference, NMS) and, with ``coco``,
    ``coco_predictions`` / ``coco_ground_truth`` for pycocotools (boxes in original-image pixels).
    """
    training = model.training
    model.eval()
    nc = len(names)
    iouv = torch.linspace(0.5, 0.95, 10)
    confusion = ConfusionMatrix(nc=nc)
    stats: list[tuple] = []
    loss_sum = torch.zeros(3, dtype=torch.float64)
    t_infer = t_nms = 0.0
    n_images = n_batches = 0
    preds_json: list = []
    gt_images: list = []
    gt_labels: list = []
    for imgs, targets, paths, shapes in progress(loader, desc="val", enabled=progress_bar, leave=False):
        t0 = time.time()
        imgs = imgs.to(device, non_blocking=True).float() / 255
        _, _, height, width = imgs.shape
        with autocast(device, amp):
            pred, raw = model(imgs)
        t1 = time.time()
        if loss_fn is not None:
            loss_sum += loss_fn([r.float() for r in raw], targets.to(device))[1].cpu().double()
        out = non_max_suppression(
            pred.float(), vc.conf_thres, vc.iou_thres, multi_label=True, max_det=vc.max_det
        )
        t2 = time.time()
        t_infer, t_nms = t_infer + t1 - t0, t_nms + t2 - t1
        targets = targets.clone()
        targets[:, 2:] *= torch.tensor((width, height, width, height), dtype=targets.dtype)
        for si, det in enumerate(out):
            det = det.cpu()
            labels = targets[targets[:, 0] == si, 1:]  # (m, 5) class, cx, cy, w, h in letterboxed pixels
            shape0, ratio_pad = shapes[si][0], shapes[si][1]
            detn = det.clone()
            scale_boxes(imgs[si].shape[1:], detn[:, :4], shape0, ratio_pad)
            labelsn = torch.zeros((0, 5))
            if len(labels):
                tbox = xywh2xyxy(labels[:, 1:5])
                scale_boxes(imgs[si].shape[1:], tbox, shape0, ratio_pad)
                labelsn = torch.cat((labels[:, :1], tbox), 1)
            correct = torch.zeros(len(det), len(iouv), dtype=torch.bool)
            correct_coco = correct
            if len(det) and len(labels):
                correct = match_predictions(detn, labelsn, iouv)
                correct_coco = match_predictions(detn, labelsn, iouv, method="coco")
            confusion.process_batch(detn if len(det) else None, labelsn)
            stats.append((correct, correct_coco, det[:, 4], det[:, 5], labels[:, 0]))
            if coco:
                image_id = n_images + si
                preds_json += coco_predictions(image_id, detn)
                gt_images.append((image_id, Path(paths[si]).name, int(shape0[1]), int(shape0[0])))
                gt_labels.append(labelsn.numpy())
        n_images += len(out)
        n_batches += 1
    if training:
        model.train()
    tp, tp_coco, conf, pred_cls, target_cls = (torch.cat(x, 0).numpy() for x in zip(*stats, strict=True))
    result = ap_per_class(tp, conf, pred_cls, target_cls, names=names, plot_dir=plot_dir)
    scores = {k: float(result[k]) for k in ("mp", "mr", "map50", "map")}
    # The same predictions scored with COCOeval's rules (matching and 101-point AP without the end ramp).
    coco_rules = ap_per_class(tp_coco, conf, pred_cls, target_cls, names=names, method="coco")
    scores["coco_rules"] = {"map50": float(coco_rules["map50"]), "map": float(coco_rules["map"])}
    scores["fitness"] = fitness(scores["map50"], scores["map"])
    counts = np.bincount(target_cls.astype(int), minlength=nc)
    scores["per_class"] = [
        {
            "class": names[int(c)], "labels": int(counts[int(c)]), "precision": float(result["p"][i]),
            "recall": float(result["r"][i]), "map50": float(result["ap50"][i]),
            "map": float(result["ap"][i].mean()),
        }
        for i, c in enumerate(result["classes"])
    ]  # fmt: skip
    scores["images"], scores["labels"] = n_images, int(counts.sum())
    scores["speed_ms"] = {
        "inference": 1000 * t_infer / max(n_images, 1),
        "nms": 1000 * t_nms / max(n_images, 1),
    }
    if loss_fn is not None:
        scores["loss"] = dict(
            zip(("box", "obj", "cls"), (loss_sum / max(n_batches, 1)).tolist(), strict=True)
        )
    if plot_dir is not None:
        confusion.plot(Path(plot_dir) / "confusion_matrix.png", names)
    if coco:
        scores["coco_predictions"] = preds_json
        scores["coco_ground_truth"] = coco_ground_truth(gt_images, gt_labels, names)
    return scores


def cocoeval(ground_truth: Path, predictions: Path, max_det: int = 300) -> dict | None:
    """pycocotools' COCOeval on the written files (None when pycocotools is not installed); ``max_det``
    detections per image count, as in our own scoring (COCO's default is 100)."""
    try:
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
    except ImportError:
        return None
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(ground_truth))
        dt = gt.loadRes(str(predictions)) if predictions.stat().st_size > 2 else None
        if dt is None:
            return {"map": 0.0, "map50": 0.0}
        ev = COCOeval(gt, dt, "bbox")
        ev.params.maxDets = [1, 10, max_det]
        ev.evaluate()
        ev.accumulate()
    # precision: (iou thresholds, recall points, classes, area ranges, max dets); 'all' areas, max_det.
    # summarize() would read AP@[.5:.95] at 100 detections only, so it is averaged here as COCOeval does.
    precision = ev.eval["precision"][:, :, :, 0, -1]
    valid = precision > -1
    ap = precision[valid].mean() if valid.any() else 0.0
    ap50 = precision[0][valid[0]].mean() if valid[0].any() else 0.0
    return {"map": float(ap), "map50": float(ap50)}


def val(
    ckpt: str | Path,
    data_yaml: str | Path,
    out: str | Path,
    split: str = "val",
    imgsz: int = 320,
    batch_size: int = 32,
    conf_thres: float = 0.001,
    iou_thres: float = 0.6,
    max_det: int = 300,
    device: str = "auto",
    workers: int = 2,
    plots: bool = True,
    save_json: bool = True,
    overwrite: bool = False,
) -> dict:
    """``aics detect val``: scores.json, per-class table, PR/F1 curves, confusion matrix, COCO json."""
    from aics.tasks.detect.config import ValConfig
    from aics.tasks.detect.data import YoloDataset
    from aics.tasks.detect.dataset_yaml import load_data_yaml
    from aics.tasks.detect.labels import scan_labels

    out = Path(out)
    dev = pick_device(device)
    model, names, ck = load_detector(ckpt, dev)  # checked before anything is written
    spec = load_data_yaml(data_yaml)
    if len(spec.names) != len(names):
        raise UserError(f"{data_yaml}: has {len(spec.names)} classes but {ckpt} detects {len(names)}")
    files = getattr(spec, split, None)
    if not files:
        raise UserError(f"{data_yaml}: no '{split}' images listed; choose --split train, val or test")
    params = {
        "ckpt": str(Path(ckpt).resolve()), "ckpt_step": ck.get("step"),
        "data": str(Path(data_yaml).resolve()), "split": split, "imgsz": imgsz,
        "conf_thres": conf_thres, "iou_thres": iou_thres, "max_det": max_det,
    }  # fmt: skip
    if not begin_stage(out, overwrite, "val", params=params):
        return done_info(out).get("scores", {})
    samples = scan_labels(files, spec.nc, split=split).samples
    stride = int(model.stride.max())
    dataset = YoloDataset(samples, img_size=imgsz, batch_size=batch_size, rect=True, stride=stride, pad=0.5)
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, shuffle=False, num_workers=workers, collate_fn=YoloDataset.collate_fn
    )
    vc = ValConfig(batch_size=batch_size, conf_thres=conf_thres, iou_thres=iou_thres, max_det=max_det)
    scores = validate(model, loader, names, vc, dev, plot_dir=out if plots else None, coco=save_json)
    if save_json:
        write_json(out / "predictions.json", scores.pop("coco_predictions"))
        write_json(out / "ground_truth.json", scores.pop("coco_ground_truth"))
        reference = cocoeval(out / "ground_truth.json", out / "predictions.json", max_det)
        if reference is not None:
            scores["pycocotools"] = reference
    scores.update({"checkpoint": str(ckpt), "data": str(data_yaml), "split": split, "imgsz": imgsz})
    write_json(out / "scores.json", scores)
    write_text(out / "RESULTS.md", val_report(scores))
    mark_done(out, {"scores": {k: scores[k] for k in ("mp", "mr", "map50", "map")}}, params=params)
    return scores


def val_report(scores: dict) -> str:
    rows = [
        (r["class"], r["labels"], r["precision"], r["recall"], r["map50"], r["map"])
        for r in scores["per_class"]
    ]
    rows.append(("all", scores["labels"], scores["mp"], scores["mr"], scores["map50"], scores["map"]))
    text = f"# Validation: {scores['checkpoint']} on {scores['data']}"
    text += f" ({scores['split']}, {scores['imgsz']} px)\n\n"
    text += markdown_table(["class", "labels", "P", "R", "mAP@0.5", "mAP@0.5:0.95"], rows, digits=3)
    if "pycocotools" in scores:
        ref = scores["pycocotools"]
        ours = scores["coco_rules"]
        text += f"\npycocotools COCOeval on the same predictions: mAP@0.5 {ref['map50']:.4f}, "
        text += f"mAP@0.5:0.95 {ref['map']:.4f} (ours with COCO's matching and AP rules: "
        text += f"{ours['map50']:.4f}, "
        text += f"{ours['map']:.4f}; the table uses YOLOv5's rules).\n"
    speed = scores["speed_ms"]
    text += f"\nSpeed: {speed['inference']:.1f} ms inference, {speed['nms']:.1f} ms NMS per image.\n"
    return text


def image_sources(sources: list[str | Path]) -> list[Path]:
    """The images named on the command line: image files, folders (searched recursively), .txt lists."""
    from aics.tasks.detect.dataset_yaml import image_files

    for src in map(Path, sources):
        if not src.exists():
            raise UserError(f"{src}: no such image or folder; pass image files or folders with --source")
    return image_files(sources)


def draw_detections(image, det: np.ndarray, names: list[str]):
    """A copy of a PIL image with the boxes ``det`` (n, 6: x1 y1 x2 y2 conf cls) and their labels drawn."""
    from PIL import ImageDraw

    image = image.copy()
    draw = ImageDraw.Draw(image)
    from aics.tasks.detect.plots import class_color

    width = max(1, round(sum(image.size) / 400))
    for x1, y1, x2, y2, conf, cls in det.tolist():
        colour = tuple(class_color(int(cls)))
        draw.rectangle((x1, y1, x2, y2), outline=colour, width=width)
        text = f"{names[int(cls)]} {conf:.2f}"
        left, top, right, bottom = draw.textbbox((x1, y1), text)
        lift = bottom - top + 2
        draw.rectangle((x1, y1 - lift, x1 + right - left + 2, y1), fill=colour)
        draw.text((x1 + 1, y1 - lift), text, fill=(255, 255, 255))
    return image


@torch.no_grad()
def predict(
    ckpt: str | Path,
    sources: list[str | Path],
    out: str | Path,
    imgsz: int = 320,
    conf_thres: float = 0.25,
    iou_thres: float = 0.45,
    max_det: int = 300,
    device: str = "auto",
    save_images: bool = True,
) -> dict:
    """``aics detect predict``: each image with its boxes drawn (``<out>/<name>``), YOLO-format txt with
    confidences (``<out>/labels/<stem>.txt``) and ``<out>/predictions.json`` (boxes in image pixels)."""
    from PIL import Image, ImageOps

    from aics.tasks.detect.augment import letterbox

    out = Path(out)
    dev = pick_device(device)
    model, names, _ = load_detector(ckpt, dev)
    stride = int(model.stride.max())
    files = image_sources(sources)
    out.mkdir(parents=True, exist_ok=True)
    records, counts, seconds = [], np.zeros(len(names), dtype=int), 0.0
    for path in progress(files, desc="predict"):
        try:
            with Image.open(path) as im:
                image = ImageOps.exif_transpose(im).convert("RGB")
        except OSError as e:
            raise UserError(
                f"{path}: cannot read the image ({e}); remove it or pass another --source"
            ) from None
        arr = np.asarray(image)
        padded, ratio, pad = letterbox(arr, imgsz, stride=stride, auto=True)
        x = torch.from_numpy(np.ascontiguousarray(padded.transpose(2, 0, 1))).to(dev).float()[None] / 255
        t0 = time.time()
        pred, _ = model(x)
        det = non_max_suppression(pred.float(), conf_thres, iou_thres, max_det=max_det)[0].cpu()
        seconds += time.time() - t0
        scale_boxes(x.shape[2:], det[:, :4], arr.shape[:2], ((ratio[1], ratio[0]), pad))
        det_np = det.numpy()
        counts += np.bincount(det_np[:, 5].astype(int), minlength=len(names))[: len(names)]
        h, w = arr.shape[:2]
        xywhn = xyxy2xywhn(det[:, :4].clone(), w=w, h=h) if len(det) else torch.zeros((0, 4))
        rows = zip(xywhn.tolist(), det_np[:, 4], det_np[:, 5], strict=True)
        lines = [f"{int(c)} {a:.6f} {b:.6f} {cw:.6f} {ch:.6f} {s:.4f}" for (a, b, cw, ch), s, c in rows]
        write_text(out / "labels" / f"{path.stem}.txt", "".join(line + "\n" for line in lines))
        records.append({
            "image": str(path), "width": w, "height": h,
            "detections": [{"class": names[int(c)], "class_id": int(c), "confidence": round(float(s), 4),
                            "box_xyxy": [round(float(v), 2) for v in box]}
                           for *box, s, c in det_np.tolist()],
        })  # fmt: skip
        if save_images:
            drawn = draw_detections(image, det_np, names)
            target = out / path.name
            tmp = target.with_name(f".{target.name}.tmp{target.suffix}")
            drawn.save(tmp)
            tmp.replace(target)
    write_json(out / "predictions.json", records)
    summary = {
        "images": len(files), "detections": int(counts.sum()),
        "per_class": {names[i]: int(n) for i, n in enumerate(counts) if n},
        "ms_per_image": round(1000 * seconds / len(files), 2),
    }  # fmt: skip
    get_logger().info(f"{len(files)} images, {summary['detections']} detections, written to {out}")
    return summary


def plot_results(exp: Path) -> Path | None:
    """``results.png``: train losses and val metrics per epoch, from ``log/metrics.jsonl``."""
    records = read_jsonl(exp / "log" / "metrics.jsonl") if (exp / "log" / "metrics.jsonl").is_file() else []
    train = [r for r in records if r["split"] == "train_epoch"]
    vals = [r for r in records if r["split"] == "val"]
    if not train and not vals:
        return None
    plt = pyplot()
    panels = [("train_epoch", k, f"train {k} loss") for k in ("box", "obj", "cls")]
    panels += [("val", f"loss_{k}", f"val {k} loss") for k in ("box", "obj", "cls")]
    panels += [("val", k, k) for k in ("precision", "recall", "mAP50", "mAP50-95")]
    fig, axes = plt.subplots(2, 5, figsize=(16, 6))
    for ax, (split, key, title) in zip(axes.ravel(), panels, strict=False):
        rows = train if split == "train_epoch" else vals
        xs = [r["epoch"] for r in rows if key in r]
        ax.plot(xs, [r[key] for r in rows if key in r], marker=".")
        ax.set_title(title)
        ax.set_xlabel("epoch")
    fig.tight_layout()
    return save_figure(fig, exp / "results.png")


def write_results(exp: Path) -> str:
    """``RESULTS.md`` of a training run: the final and best validation scores, and ``results.png``."""
    records = read_jsonl(exp / "log" / "metrics.jsonl") if (exp / "log" / "metrics.jsonl").is_file() else []
    vals = [r for r in records if r["split"] == "val"]
    plot_results(exp)
    text = f"# {exp.name}\n\n"
    if vals:
        # the last of equally fit epochs, as best.pt keeps it
        best = max(reversed(vals), key=lambda r: fitness(r["mAP50"], r["mAP50-95"]))
        keys = ("epoch", "precision", "recall", "mAP50", "mAP50-95")
        rows = [("last", *(vals[-1][k] for k in keys)), ("best", *(best[k] for k in keys))]
        text += markdown_table(["checkpoint", "epoch", "P", "R", "mAP@0.5", "mAP@0.5:0.95"], rows, digits=3)
        text += "\n![results](results.png)\n"
    write_text(exp / "RESULTS.md", text)
    return text


def describe(ckpt: str | Path) -> dict:
    model, names, c = load_detector(ckpt, "cpu", fuse=False)
    return {"parameters": count_parameters(model), "classes": names, "epoch": c.get("epoch")}


def check_dataset(data_yaml: str | Path, out: str | Path) -> dict:
    """``aics detect check``: scan (and cache) every split, report all label problems, plot the labels."""
    from aics.tasks.detect.dataset_yaml import load_data_yaml
    from aics.tasks.detect.labels import scan_labels
    from aics.tasks.detect.plots import plot_labels

    spec, out = load_data_yaml(data_yaml), Path(out)
    summary = {}
    for split in ("train", "val", "test"):
        files = getattr(spec, split)
        if not files:
            continue
        scan = scan_labels(files, spec.nc, split=split)
        plot_labels(scan.samples, spec.names, out / f"labels_{split}.png")
        summary[split] = dict(scan.stats)
    write_json(out / "stats.json", summary)
    return summary


def report(exp_dirs: list[str | Path], out: str | Path | None = None) -> str:
    """A table over training runs that have been validated (``<run>/val/scores.json``)."""
    from aics.core.io import read_json

    rows = []
    for exp in map(Path, exp_dirs):
        scores_path = exp / "val" / "scores.json"
        if not scores_path.is_file():
            raise UserError(f"{scores_path}: not found; run 'aics detect val --out {exp}/val' first")
        s, info = read_json(scores_path), done_info(exp)
        coco = s.get("pycocotools", {})
        rows.append((
            exp.name, info.get("mode", "-"), info.get("parameters"), info.get("epoch"),
            round(info.get("train_seconds", 0) / 60, 1) if info else None, info.get("images_per_s"),
            s["mp"], s["mr"], s["map50"], s["map"], coco.get("map50"), coco.get("map"),
        ))  # fmt: skip
    headers = ["run", "mode", "parameters", "epochs", "train min", "img/s", "P", "R", "mAP@0.5",
               "mAP@0.5:0.95", "COCOeval mAP@0.5", "COCOeval mAP@0.5:0.95"]  # fmt: skip
    table = markdown_table(headers, rows, digits=3)
    if out is not None:
        write_text(out, "# YOLOv5 runs\n\n" + table)
    return table
