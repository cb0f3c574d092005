"""Runs every stage of recipes/lm/run.sh on a tiny synthetic corpus with all five architectures."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MODELS = ("ffn", "rnn", "gru", "lstm", "transformer")


@pytest.mark.slow
def test_lm_recipe_all_stages(tmp_path):
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "AICS_PROGRESS": "0"}
    cmd = ["bash", str(ROOT / "recipes/lm/run.sh"), "--overlay", str(ROOT / "recipes/lm/conf/tiny.yaml"),
           "--models", " ".join(MODELS), "--train-tokens", "30000", "--valid-tokens", "4000",
           "--test-tokens", "4000", "--vocab-size", "200", "--states", "8"]  # fmt: skip
    r = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    for stage in range(5):
        assert f"Stage {stage}:" in r.stderr
    data, exp = tmp_path / "data/lm", tmp_path / "exp/lm"
    assert (data / "synth_30000_v200_k8_seed0/floor.json").exists()
    floor = json.loads((data / "prepared/floor.json").read_text())
    for m in MODELS:
        e = exp / f"{m}_tiny"
        for f in (".done", "config.yaml", "ckpt/best.pt", "ckpt/last.pt", "log/metrics.jsonl", "scores.json",
                  "RESULTS.md", "samples.txt"):  # fmt: skip
            assert (e / f).exists(), f"{e}/{f} missing"
        s = json.loads((e / "scores.json").read_text())
        assert s["arch"] == m and s["floor_test_ppl"] == pytest.approx(floor["test"]["ppl"])
        # learnability: every model clearly beats the unigram baseline, and none beats the true source
        assert floor["test"]["ppl"] < s["test"]["ppl"] < 0.7 * s["unigram_test_ppl"], (m, s)
        splits = {json.loads(line)["split"] for line in (e / "log/metrics.jsonl").read_text().splitlines()}
        assert {"train", "valid", "test"} <= splits, "train/valid/test curves per epoch"
        assert len((e / "samples.txt").read_text().split()) >= 30
    assert (exp / "curves.png").exists()
    table = (exp / "RESULTS.md").read_text()
    assert all(f"{m}_tiny" in table for m in MODELS) and "floor PPL" in table
    # a later run of some models (here: stage 4 for the FFN alone) keeps every scored model in the report,
    # and a finished stage that is refused names the recipe command that redoes only that stage
    ffn_only = [*cmd[:5], "ffn", *cmd[6:], "--stage", "4"]
    r = subprocess.run(ffn_only, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    table = (exp / "RESULTS.md").read_text()
    assert all(f"{m}_tiny" in table for m in MODELS), table
    r = subprocess.run([*cmd, "--stage", "1", "--stop-stage", "1", "--min-count", "2"], cwd=tmp_path, env=env,
                       capture_output=True, text=True)  # fmt: skip
    assert r.returncode == 2 and "made with other options" in r.stderr, r.stderr[-2000:]
    assert "--stage 1 --stop-stage 1 --overwrite true" in r.stderr
