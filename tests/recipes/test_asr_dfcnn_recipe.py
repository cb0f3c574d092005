"""Runs every stage of recipes/asr_dfcnn/run.sh on a few minutes of synthetic speech (two voices and a
held-out one): corpus -> features -> train -> decode -> score, and the pocketsphinx judge."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("flite") is None, reason="flite is not installed (scripts/setup.sh does it)")
def test_asr_dfcnn_recipe_all_stages(tmp_path):
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "AICS_PROGRESS": "0"}
    recipe = ROOT / "recipes/asr_dfcnn"
    cmd = ["bash", str(recipe / "run.sh"), "--overlay", str(recipe / "conf/tiny.yaml"),
           "--minutes", "3", "--test-minutes", "0.4", "--vocab-size", "40", "--voices", "flite-slt flite-awb",
           "--heldout-voice", "flite-kal16", "--avg", "3"]  # fmt: skip
    r = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    for stage in range(5):
        assert f"Stage {stage}:" in r.stderr
    data, exp = tmp_path / "data/asr", tmp_path / "exp/asr/dfcnn_tiny"
    corpus = data / "synth_3min_v40_seed0"
    assert (corpus / "synth.json").is_file() and (corpus / "speakers.tsv").is_file()
    assert sorted(p.name for p in corpus.iterdir() if p.is_dir()) == ["dev", "test", "test-heldout", "train"]
    for f in (".done", "config.yaml", "ckpt/best.pt", "ckpt/last.pt", "log/metrics.jsonl", "RESULTS.md",
              "curves.png", "lm/char7.arpa"):  # fmt: skip
        assert (exp / f).exists(), f"{exp}/{f} missing"
    scores = {}
    for subset in ("test", "test-heldout"):
        for tag in ("greedy_last_avg3", "beam20_last_avg3", "beam20_lm-char7_w1.5_b3_last_avg3"):
            d = exp / f"decode_{subset}_{tag}"
            for f in ("hyp.txt", "ref.txt", "per_utt.jsonl", "scores.json"):
                assert (d / f).is_file(), f"{d}/{f} missing"
            scores[subset, tag] = json.loads((d / "scores.json").read_text())
        judged = json.loads((exp / f"judge_pocketsphinx_{subset}/scores.json").read_text())
        # the judge's level on the corpus's own recordings: flite voices are recognised almost perfectly
        assert judged["wer"] < 0.15, judged
    s = scores["test", "beam20_lm-char7_w1.5_b3_last_avg3"]
    assert s["uer_name"] == "CER" and set(s["per_speaker"]) == {"101", "105"}
    assert [Path(f).name for f in s["averaged"]] == [f"epoch-0{e}.pt" for e in (13, 14, 15)]
    assert set(scores["test-heldout", "greedy_last_avg3"]["per_speaker"]) == {"102"}
    # learnability: clearly better than the empty output (CER 100%) on held-out sentences
    assert scores["test", "greedy_last_avg3"]["uer"] < 0.8, scores["test", "greedy_last_avg3"]
    table = (exp / "RESULTS.md").read_text()
    assert "decode_test" not in table and "test_beam20_lm-char7_w1.5_b3_last_avg3" in table
    assert "judge_pocketsphinx_test" in table
    assert (tmp_path / "exp/asr/RESULTS.md").is_file()
