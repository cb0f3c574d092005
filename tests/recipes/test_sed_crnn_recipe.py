"""Runs every stage of recipes/sed_crnn/run.sh on a hundred synthetic clips with the tiny CRNN: dataset ->
clip lists -> log-mel -> train on the weak tags -> predict the eval clips' events -> scores, and checks that
the tags and the segments are learnt better than saying every class everywhere."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from aics.tasks.sed.labels import CLASSES
from aics.tasks.sed.metrics import segment_based, tagging

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_sed_crnn_recipe_all_stages(tmp_path):
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "AICS_PROGRESS": "0"}
    recipe = ROOT / "recipes/sed_crnn"
    cmd = ["bash", str(recipe / "run.sh"), "--overlay", str(recipe / "conf/tiny.yaml"), "--weak", "100",
           "--unlabel", "4", "--test", "20", "--sr", "16000"]  # fmt: skip
    r = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    for stage in range(5):
        assert f"Stage {stage}:" in r.stderr
    name = "synth_w100_t20_sr16000_seed0"
    prepared, exp = tmp_path / f"data/sed/prepared_{name}", tmp_path / "exp/sed/crnn_cpu_tiny"
    clips = json.loads((prepared / "clips.json").read_text())
    assert {s: v["clips"] for s, v in clips["splits"].items()} == {
        "weak": 100, "unlabel_in_domain": 4, "test": 20, "eval": 20
    }  # fmt: skip
    assert (tmp_path / f"data/sed/feats_{name}_cpu_tiny/eval.npy").is_file()
    for f in (".done", "config.yaml", "ckpt/best.pt", "log/metrics.jsonl", "RESULTS.md"):
        assert (exp / f).exists(), f"{exp}/{f} missing"
    pred = exp / "predict_eval_best"
    rows = (pred / "events.tsv").read_text().splitlines()
    assert rows[0] == "filename\tonset\toffset\tevent_label" and len(rows) > 1
    scores = json.loads((pred / "score/scores.json").read_text())
    assert scores["clips"] == 20 and scores["clip_list_sha256"] == clips["splits"]["eval"]["sha256"]
    assert set(scores["event_based"]["class_wise"]) == set(CLASSES)
    assert len(list((pred / "score/clips").glob("*.png"))) == 3
    assert "Per class" in (pred / "score/RESULTS.md").read_text()
    assert "crnn_cpu_tiny" in (tmp_path / "exp/sed/RESULTS.md").read_text()
    # learnt: better than tagging every clip with every class, and than every class active everywhere
    reference = {}
    for line in (tmp_path / f"data/sed/{name}/metadata/eval/eval.csv").read_text().splitlines()[1:]:
        f, on, off, label = line.split("\t")
        reference.setdefault(f, []).append((float(on), float(off), label))
    everything = {f: [(0.0, 10.0, c) for c in CLASSES] for f in reference}
    all_tags = tagging({f: {e[2] for e in ev} for f, ev in reference.items()},
                       {f: set(CLASSES) for f in reference}, CLASSES)  # fmt: skip
    all_active = segment_based(reference, everything, CLASSES)
    h = scores["headline"]
    assert h["tag_f1"] > all_tags["macro"]["f_measure"] + 0.05, (h, all_tags["macro"])
    assert h["segment_f1"] > all_active["class_wise_average"]["f_measure"] + 0.05
    assert h["event_f1"] > 0
