"""Runs every stage of recipes/tts_tacotron2/run.sh on a minute of synthetic speech (one flite voice) with the
tiny models: corpus -> filelists -> mels -> train Tacotron2 and WaveGlow -> say the test sentences with
Griffin-Lim and WaveGlow -> scores."""

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
def test_tts_tacotron2_recipe_all_stages(tmp_path):
    pytest.importorskip("pocketsphinx")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "AICS_PROGRESS": "0"}
    recipe = ROOT / "recipes/tts_tacotron2"
    cmd = ["bash", str(recipe / "run.sh"), "--overlay", str(recipe / "conf/tiny.yaml"), "--voice",
           "flite-slt", "--minutes", "1", "--max-words", "8", "--valid-frac", "0.1",
           "--test-frac", "0.1", "--waveglow", "true", "--waveglow-conf",
           str(recipe / "conf/waveglow_tiny.yaml")]  # fmt: skip
    r = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    for stage in range(6):
        assert f"Stage {stage}:" in r.stderr
    data, exp = tmp_path / "data/tts", tmp_path / "exp/tts/tacotron2_tiny"
    prepared = data / "prepared_flite-slt_1min_seed0"
    for name in ("train", "valid", "test"):
        rows = (prepared / f"{name}_filelist.txt").read_text().splitlines()
        assert rows and all(Path(row.split("|")[0]).is_file() for row in rows)
    assert (data / "feats_flite-slt_1min_seed0/train.npy").is_file()
    for f in (".done", "config.yaml", "ckpt/best.pt", "ckpt/last.pt", "log/metrics.jsonl", "RESULTS.md"):
        assert (exp / f).exists(), f"{exp}/{f} missing"
    assert list((exp / "plots").glob("step*.png"))
    rows = [json.loads(line) for line in (exp / "log/metrics.jsonl").read_text().splitlines()]
    mel = [r["mel"] for r in rows if r["split"] == "train"]
    assert len(mel) >= 10 and sum(mel[-3:]) < 0.5 * sum(mel[:3]), mel  # the teacher-forced loss falls
    assert (tmp_path / "exp/tts/tacotron2_tiny_waveglow/ckpt/best.pt").is_file()
    n_test = len((prepared / "test_filelist.txt").read_text().splitlines())
    for vocoder in ("griffinlim", "waveglow"):
        decode = exp / f"decode_test_{vocoder}"
        assert len(list((decode / "wavs").glob("*.wav"))) == n_test
        scores = json.loads((decode / "score/scores.json").read_text())
        assert scores["utterances"] == n_test and scores["wer_real"] < 0.2 and scores["mcd_dtw_db"] > 0
        assert scores["vocoder"] == vocoder
    table = (exp / "RESULTS.md").read_text()
    assert "judge WER synth %" in table and "decode_test_waveglow" in table
