"""Runs every stage of recipes/caption/run.sh on sixty synthetic images with the tiny captioner: dataset ->
prepare -> image cache -> train with teacher forcing and with scheduled sampling -> greedy and beam
captions -> scores and the comparison table, and checks that the captions beat a constant caption."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from aics.core.io import read_jsonl
from aics.tasks.caption.data import tokenize
from aics.tasks.caption.metrics import bleu_cider

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_caption_recipe_all_stages(tmp_path):
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "AICS_PROGRESS": "0"}
    recipe = ROOT / "recipes/caption"
    cmd = ["bash", str(recipe / "run.sh"), "--overlay", str(recipe / "conf/tiny.yaml"), "--train", "60",
           "--dev", "10", "--test", "10", "--min-count", "1",
           "--schedules", "none inverse_sigmoid"]  # fmt: skip
    r = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    for stage in range(5):
        assert f"Stage {stage}:" in r.stderr
    name = "synth_60_10_10_seed0"
    assert (tmp_path / f"data/caption/{name}/Flickr8k.token.txt").is_file()
    feats = tmp_path / f"data/caption/images_{name}_cpu_tiny"
    assert json.loads((feats / "features.json").read_text())["features"]["image_size"] == 48
    table = (tmp_path / "exp/caption/RESULTS.md").read_text()
    for row in ("| sat_none | none | greedy |", "| sat_none | none | beam 3 |",
                "| sat_inverse_sigmoid | inverse_sigmoid | greedy |"):  # fmt: skip
        assert row in table, table
    exp = tmp_path / "exp/caption/sat_inverse_sigmoid"
    for f in (".done", "config.yaml", "ckpt/best.pt", "log/metrics.jsonl", "decode_test_beam3/captions.jsonl",
              "decode_test_greedy/score/examples.md", "decode_test_beam3/score/per_image.jsonl"):  # fmt: skip
        assert (exp / f).exists(), f
    assert list((exp / "decode_test_greedy/attention").glob("*.png"))
    shares = [
        row["teacher_share"] for row in read_jsonl(exp / "log/metrics.jsonl") if row["split"] == "train"
    ]
    assert shares[0] > 0.9 and min(shares) < 0.9  # the inverse sigmoid fell within the run
    # learnt: the test captions beat the most frequent training caption said of every image
    scores = json.loads((tmp_path / "exp/caption/sat_none/decode_test_greedy/score/scores.json").read_text())
    per = read_jsonl(tmp_path / "exp/caption/sat_none/decode_test_greedy/score/per_image.jsonl")
    refs = {r["image"]: [" ".join(tokenize(c)) for c in r["references"]] for r in per}
    tokens = [" ".join(t) for r in read_jsonl(feats / "train.jsonl") for t in r["tokens"]]
    constant = max(set(tokens), key=tokens.count)
    baseline = bleu_cider(refs, {k: [constant] for k in refs})
    assert scores["scores"]["CIDEr-D"] > baseline["CIDEr-D"] + 0.05, (scores["scores"], baseline)
