"""The feature-extraction hook (aics.tasks.avsc.embed): built-in audio and video extractors on real wav and
mp4 files, a user's module:function, resuming, and what `aics avsc prepare` then reads."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile

from aics.core.errors import UserError
from aics.tasks.avsc.embed import audio_logmel, embed, video_colorhist
from aics.tasks.avsc.labels import SCENES


def write_clip(root: Path, stem: str, colour: tuple[int, int, int], seconds: float = 1.0) -> None:
    cv2 = pytest.importorskip("cv2")
    (root / "audio").mkdir(parents=True, exist_ok=True)
    (root / "video").mkdir(parents=True, exist_ok=True)
    sr = 48000
    t = np.arange(int(sr * seconds)) / sr
    soundfile.write(root / "audio" / f"{stem}.wav", np.stack([np.sin(2 * np.pi * 440 * t)] * 2, 1) * 0.3, sr)
    writer = cv2.VideoWriter(
        str(root / "video" / f"{stem}.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 10, (64, 48)
    )
    for _ in range(int(10 * seconds)):
        writer.write(np.full((48, 64, 3), colour, np.uint8))
    writer.release()


@pytest.fixture
def raw(tmp_path) -> Path:
    root = tmp_path / "tau"
    rows = []
    for k, scene in enumerate(SCENES[:4]):
        for j in range(2):
            stem = f"{scene}-lisbon-{1000 + k}-{40000 + j}"
            write_clip(root, stem, (40 * k, 200 - 40 * k, 90))
            rows.append(f"audio/{stem}.wav\tvideo/{stem}.mp4\t{scene}\tlisbon-{1000 + k}")
    (root / "meta.csv").write_text(
        "filename_audio\tfilename_video\tscene_label\tidentifier\n" + "\n".join(rows) + "\n"
    )
    (root / "evaluation_setup").mkdir()
    header = "filename_audio\tfilename_video\tscene_label\n"
    train = [r.rsplit("\t", 1)[0] for r in rows if r.split("\t")[0].endswith("40000.wav")]
    evaluate = [r.rsplit("\t", 1)[0] for r in rows if r.split("\t")[0].endswith("40001.wav")]
    (root / "evaluation_setup/fold1_train.csv").write_text(header + "\n".join(train) + "\n")
    (root / "evaluation_setup/fold1_evaluate.csv").write_text(header + "\n".join(evaluate) + "\n")
    return root


def test_built_in_extractors_on_wav_and_mp4(raw):
    stem = f"{SCENES[0]}-lisbon-1000-40000"
    mel = audio_logmel(raw / "audio" / f"{stem}.wav", 0.1)
    assert mel.shape[1] == 64 and 9 <= mel.shape[0] <= 12
    assert int(mel.mean(0).argmax()) in range(8, 20)  # 440 Hz falls in the lower bands
    hist = video_colorhist(raw / "video" / f"{stem}.mp4", 0.1)
    assert hist.shape[1] == 128 and 9 <= hist.shape[0] <= 11
    assert np.allclose(hist.sum(1), 1.0) and hist.max() > 0.9  # one flat colour: one bin


def test_embed_then_prepare_and_a_user_extractor(raw, tmp_path, aics, monkeypatch):
    aics(
        "avsc", "embed", "--src", raw, "--modality", "audio", "--extractor", "logmel", "--out", tmp_path / "a"
    )
    assert len(list((tmp_path / "a").glob("*.npy"))) == 8
    hook = tmp_path / "hooks" / "my_hook.py"
    hook.parent.mkdir()
    hook.write_text(
        "import numpy as np\n\ndef video(path, hop):\n    return np.ones((10, 3)) * len(str(path))\n"
    )
    monkeypatch.syspath_prepend(str(hook.parent))
    out = aics("avsc", "embed", "--src", raw, "--modality", "video", "--extractor", "my_hook:video",
               "--out", tmp_path / "v")  # fmt: skip
    assert "8 video embeddings (8 made now)" in out
    assert "(0 made now)" in aics("avsc", "embed", "--src", raw, "--modality", "video", "--extractor",
                                  "my_hook:video", "--out", tmp_path / "v")  # fmt: skip
    said = aics("avsc", "prepare", "--src", raw, "--out", tmp_path / "p", "--audio-emb", tmp_path / "a",
                "--video-emb", tmp_path / "v", "--steps", "9", "--valid-frac", "0")  # fmt: skip
    assert "train 4" in said and "video 9 x 3" in said


def test_bad_extractors_and_missing_files_are_one_line(raw, tmp_path, aics):
    base = ("avsc", "embed", "--src", raw, "--out", tmp_path / "x")
    assert "reads audio, not video" in aics.error(*base, "--modality", "video", "--extractor", "logmel")
    assert "cannot import it" in aics.error(*base, "--modality", "audio", "--extractor", "nope_module:f")
    (raw / "audio" / f"{SCENES[1]}-lisbon-1001-40001.wav").unlink()
    line = aics.error("avsc", "embed", "--src", raw, "--modality", "audio", "--extractor", "logmel", "--out",
                      tmp_path / "y")  # fmt: skip
    assert "meta.csv:5:" in line and "not found" in line
    with pytest.raises(UserError, match="module:function"):
        embed(raw, tmp_path / "z", "audio", "nonsense")
