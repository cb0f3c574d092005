"""Validation against pycocotools on the same predictions; val / predict / report outputs."""

import json

import pytest
import torch
from PIL import Image

from aics.core.errors import UserError
from aics.tasks.detect.config import ValConfig, load_detect_config
from aics.tasks.detect.data import YoloDataset
from aics.tasks.detect.dataset_yaml import load_data_yaml
from aics.tasks.detect.infer import cocoeval, load_detector, predict, report, val, validate
from aics.tasks.detect.labels import scan_labels
from aics.tasks.detect.train import train

pytest.importorskip("pycocotools")


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    from aics.tasks.detect.synth import generate

    out = tmp_path_factory.mktemp("shapes")
    generate(out, n_train=16, n_val=12, img_size=96, seed=1, show_progress=False)
    return out / "data.yaml"


@pytest.fixture(scope="module")
def trained(shapes, tmp_path_factory):
    exp = tmp_path_factory.mktemp("exp") / "direct"
    sets = [f"data.yaml={shapes}", "data.imgsz=96", "data.workers=0", "train.batch_size=8", "train.epochs=1",
            "val.batch_size=8"]  # fmt: skip
    train(load_detect_config([], None, sets), exp)
    return exp


class NoisyOracle(torch.nn.Module):
    """Stands in for a detector: returns, batch after batch, the val labels jittered, with some boxes
    missed, false positives and random scores, in the model's eval output format (xywh, obj, classes)."""

    def __init__(self, loader, nc, seed=0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.outputs = []
        for imgs, targets, _, _ in loader:
            b, _, h, w = imgs.shape
            rows = torch.zeros(b, 40, 5 + nc)
            for i in range(b):
                t = targets[targets[:, 0] == i]
                boxes = t[:, 2:] * torch.tensor([w, h, w, h])
                # jitter the centre by ~10% of the size, the size by ~10%
                boxes[:, :2] += 0.1 * boxes[:, 2:] * torch.randn(len(boxes), 2, generator=g)
                boxes[:, 2:] *= 1 + 0.1 * torch.randn(len(boxes), 2, generator=g)
                keep = torch.rand(len(boxes), generator=g) > 0.2  # misses
                boxes, cls = boxes[keep], t[keep, 1].long()
                n_fp = 6
                fp = torch.rand(n_fp, 4, generator=g) * torch.tensor([w, h, w / 3, h / 3]) + 4
                boxes = torch.cat((boxes, fp))[:40]
                cls = torch.cat((cls, torch.randint(0, nc, (n_fp,), generator=g)))[:40]
                n = len(boxes)
                rows[i, :n, :4] = boxes
                rows[i, :n, 4] = torch.rand(n, generator=g) * 0.9 + 0.1
                rows[i, torch.arange(n), 5 + cls] = torch.rand(n, generator=g) * 0.5 + 0.5
            self.outputs.append(rows)
        self.i = 0

    def forward(self, x):
        out = self.outputs[self.i]
        self.i += 1
        return out, []


def test_validate_matches_pycocotools_on_the_same_predictions(shapes, tmp_path):
    spec = load_data_yaml(shapes)
    samples = scan_labels(spec.val, spec.nc, split="val").samples
    ds = YoloDataset(samples, img_size=96, batch_size=4, rect=True, stride=32, pad=0.5)
    loader = torch.utils.data.DataLoader(ds, batch_size=4, shuffle=False, collate_fn=YoloDataset.collate_fn)
    scores = validate(NoisyOracle(loader, spec.nc), loader, spec.names, ValConfig(), torch.device("cpu"),
                      coco=True, progress_bar=False)  # fmt: skip
    assert 0.2 < scores["map50"] < 0.95, "a noisy oracle: neither trivial nor perfect"
    (tmp_path / "dt.json").write_text(json.dumps(scores["coco_predictions"]))
    (tmp_path / "gt.json").write_text(json.dumps(scores["coco_ground_truth"]))
    ref = cocoeval(tmp_path / "gt.json", tmp_path / "dt.json")
    # the same matching and AP rules as COCOeval: equal up to the json's rounding of boxes and scores
    assert scores["coco_rules"]["map50"] == pytest.approx(ref["map50"], abs=2e-3)
    assert scores["coco_rules"]["map"] == pytest.approx(ref["map"], abs=2e-3)
    # YOLOv5's own rules (the headline numbers) differ only a little on the same predictions
    assert scores["map50"] == pytest.approx(ref["map50"], abs=0.05)
    # boxes in the json are in original-image pixels: inside the image
    sizes = {im["id"]: (im["width"], im["height"]) for im in scores["coco_ground_truth"]["images"]}
    for p in scores["coco_predictions"]:
        x, y, w, h = p["bbox"]
        W, H = sizes[p["image_id"]]
        assert x >= 0 and x + w <= W + 1e-3 and y >= 0 and y + h <= H + 1e-3


def test_val_writes_scores_plots_and_coco_json(trained, shapes, tmp_path):
    out = tmp_path / "val"
    s = val(trained / "ckpt" / "best.pt", shapes, out, imgsz=96, batch_size=4, workers=0)
    for name in ("scores.json", "RESULTS.md", "PR_curve.png", "F1_curve.png", "confusion_matrix.png",
                 "predictions.json", "ground_truth.json"):  # fmt: skip
        assert (out / name).is_file(), name
    assert {"mp", "mr", "map50", "map", "per_class", "pycocotools", "coco_rules"} <= set(s)
    assert s["coco_rules"]["map"] == pytest.approx(s["pycocotools"]["map"], abs=2e-3)
    assert "| all |" in (out / "RESULTS.md").read_text()
    again = val(trained / "ckpt" / "best.pt", shapes, out, imgsz=96, batch_size=4, workers=0)
    assert again == json.loads((out / ".done").read_text())["scores"], "the same options: the finished scores"
    with pytest.raises(UserError, match=r"made with other options \(imgsz=96 -> 320\)"):
        val(trained / "ckpt" / "best.pt", shapes, out)


def test_predict_draws_boxes_and_writes_txt_json(trained, shapes, tmp_path):
    images = sorted((shapes.parent / "images" / "val").iterdir())[:3]
    out = tmp_path / "pred"
    s = predict(trained / "ckpt" / "best.pt", images, out, imgsz=96, conf_thres=0.0, max_det=5)
    assert s["images"] == 3 and 0 < s["detections"] <= 15
    records = json.loads((out / "predictions.json").read_text())
    assert [r["image"] for r in records] == [str(p) for p in images]
    for img, r in zip(images, records, strict=True):
        drawn = Image.open(out / img.name)
        assert drawn.size == Image.open(img).size and (r["width"], r["height"]) == drawn.size
        lines = (out / "labels" / f"{img.stem}.txt").read_text().splitlines()
        assert len(lines) == len(r["detections"])
        for line in lines:
            c, *xywh, conf = line.split()
            assert 0 <= float(conf) <= 1 and all(0 <= float(v) <= 1 for v in xywh)
    with pytest.raises(UserError, match="no such image"):
        predict(trained / "ckpt" / "best.pt", [tmp_path / "missing.jpg"], out)


def test_load_detector_fuses_and_report_compares_runs(trained, shapes, tmp_path):
    model, names, _ = load_detector(trained / "ckpt" / "best.pt", "cpu")
    assert names == load_data_yaml(shapes).names
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules()), "fused for inference"
    val(trained / "ckpt" / "best.pt", shapes, trained / "val", imgsz=96, workers=0, plots=False)
    table = report([trained], tmp_path / "RESULTS.md")
    assert "| direct | direct |" in table and (tmp_path / "RESULTS.md").read_text().endswith(table)
    with pytest.raises(UserError, match="aics detect val"):
        report([tmp_path])
