"""Runs every stage of recipes/yolov5/run.sh on a tiny synthetic set: direct, pretrained, resumed, val,
predict, report."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from aics.core.ckpt import load_checkpoint

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_yolov5_recipe_all_stages(tmp_path):
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "AICS_PROGRESS": "0"}
    cmd = ["bash", str(ROOT / "recipes/yolov5/run.sh"), "--conf", str(ROOT / "recipes/yolov5/conf/tiny.yaml"),
           "--train-images", "32", "--val-images", "16", "--imgsz", "64", "--resume-steps", "3"]  # fmt: skip
    r = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    for stage in range(7):
        assert f"Stage {stage}:" in r.stderr
    data, exp = tmp_path / "data/yolov5/shapes_32_16_64_seed0", tmp_path / "exp/yolov5"
    assert (data / "data.yaml").is_file() and (exp / "data_check/labels_train.png").is_file()
    runs = {m: exp / f"yolov5n_tiny_{m}" for m in ("direct", "pretrained", "resume")}
    for mode, run in runs.items():
        for f in (".done", "config.yaml", "RESULTS.md", "results.png", "ckpt/best.pt", "ckpt/last.pt",
                  "val/scores.json", "val/PR_curve.png", "val/confusion_matrix.png",
                  "val/predictions.json"):  # fmt: skip
            assert (run / f).is_file(), f"{run}/{f} missing"
        info = json.loads((run / ".done").read_text())
        assert info["epoch"] == 2 and info["mode"] == ("pretrained" if mode == "pretrained" else "direct")
    assert json.loads((runs["resume"] / ".done").read_text())["resumes"] == 1
    assert "resuming from" in r.stderr and "continuing past train.max_steps=3" in r.stderr
    # the pretrained run started from the direct run's best EMA weights: every tensor was transferred
    assert "349 tensors from" in r.stderr and "0 not transferred" in r.stderr
    # learnability floor: the training loss went down from the first logged steps to the last ones
    rec = [json.loads(line) for line in (runs["direct"] / "log/metrics.jsonl").read_text().splitlines()]
    steps = [x for x in rec if x["split"] == "train"]
    first, last = (sum(x[k] for k in ("box", "obj", "cls")) for x in (steps[0], steps[-1]))
    assert last < first, (first, last)
    # the resumed run saw the same data and schedule as the direct one: same final weights
    a = load_checkpoint(runs["direct"] / "ckpt/last.pt")["model"]
    b = load_checkpoint(runs["resume"] / "ckpt/last.pt")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    pred = runs["direct"] / "predict"
    assert len(list(pred.glob("*.jpg"))) == 16 and len(list((pred / "labels").glob("*.txt"))) == 16
    table = (exp / "yolov5n_tiny_RESULTS.md").read_text()
    assert all(f"yolov5n_tiny_{m}" in table for m in runs) and "mAP@0.5:0.95" in table
