"""Runs every stage of recipes/avsc/run.sh on a small synthetic set with the tiny networks: dataset -> prepare
-> the four trained systems -> predictions and late fusion -> scores, RESULTS.md with the conflict analysis;
and checks that fusion beats the single modalities on the designed conflicts."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_avsc_recipe_all_stages(tmp_path):
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "AICS_PROGRESS": "0"}
    recipe = ROOT / "recipes/avsc"
    cmd = ["bash", str(recipe / "run.sh"), "--overlay", str(recipe / "conf/tiny.yaml"), "--train", "30",
           "--evaluate", "10"]  # fmt: skip
    r = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    for stage in (0, 2, 3, 4):
        assert f"Stage {stage}:" in r.stderr
    exp = tmp_path / "exp/avsc"
    systems = ("audio", "video", "early", "intermediate", "late_mean", "late_weighted")
    scores = {}
    for s in systems:
        f = exp / s / "predict_evaluate/score/scores.json"
        assert f.is_file(), s
        scores[s] = json.loads(f.read_text())
        assert scores[s]["clips"] == 100 and len(scores[s]["class_wise"]) == 10
    assert (exp / "early/predict_evaluate/score/confusion.png").is_file()
    text = (exp / "RESULTS.md").read_text()
    for s in systems:
        assert f"| {s} |" in text
    assert "### Conflicts: late_weighted" in text and "Audio and video disagree on" in text
    # the designed structure: each fusion beats the better single modality
    best_single = max(scores["audio"]["accuracy"], scores["video"]["accuracy"])
    for s in ("early", "intermediate"):
        assert scores[s]["accuracy"] > best_single, (s, scores[s]["accuracy"], best_single)
