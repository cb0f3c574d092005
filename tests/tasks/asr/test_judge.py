"""The WER judge: reference and wav formats, pairing errors, and pocketsphinx on real (flite) speech."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from aics.core.errors import UserError
from aics.tasks.asr.judge import find_wavs, judge, letter_to_sound, pair_up, read_refs

SENTENCES = [  # (id, raw text as in LJSpeech's metadata.csv); "Quixaltor" is not in CMUdict
    ("LJ001-0001", "Glue the sheet to the dark blue background."),
    ("LJ001-0002", "The birch canoe slid on the smooth planks!"),
    ("LJ001-0003", "A pot of tea helps to pass the evening, said Quixaltor."),
    ("LJ001-0004", "Rice is often served in round bowls."),
]
# Measured with flite's slt voice: WER 0 on these four; the bound leaves room for other flite builds.
MAX_WER = 0.2


def write(path, text: str):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def metadata(path, sentences=SENTENCES):
    return write(path, "".join(f"{i}|{t}|{t}\n" for i, t in sentences))


def one_line_error(excinfo, starts: str) -> str:
    msg = str(excinfo.value)
    assert "\n" not in msg
    assert msg.startswith(starts), msg
    return msg


# ----------------------------------------------------------------------------------------- references
def test_read_refs_formats(tmp_path):
    ljs = write(tmp_path / "metadata.csv", "\ufeffLJ1|Dr. Who, 1920|Doctor Who, nineteen twenty\nLJ2|a|b|c\n")
    assert read_refs(ljs) == {"LJ1": "Doctor Who, nineteen twenty", "LJ2": "c"}
    pipe = write(tmp_path / "refs.txt", "u1|hello world\n\nu2| spaced out \n")
    assert read_refs(pipe) == {"u1": "hello world", "u2": "spaced out"}
    kaldi = write(tmp_path / "text", "spk1-u1 HELLO WORLD\nspk1-u2  two  spaces\nspk1-u3\n")
    assert read_refs(kaldi) == {"spk1-u1": "HELLO WORLD", "spk1-u2": "two  spaces", "spk1-u3": ""}
    libri = tmp_path / "LibriTTS" / "test-clean"
    write(libri / "19" / "198" / "19_198_000000_000000.normalized.txt", "Then, said he.\n")
    write(libri / "19" / "198" / "19_198_000000_000000.original.txt", "ignored")
    write(libri / "84" / "121" / "84_121_000001_000000.normalized.txt", "Two\nlines")
    assert read_refs(tmp_path / "LibriTTS") == {
        "19_198_000000_000000": "Then, said he.",
        "84_121_000001_000000": "Two lines",
    }


@pytest.mark.parametrize(
    "name, text, message",
    [
        ("dup.csv", "a|x\nb|y\na|z\n", ":3: utterance id a already appears on line 1"),
        ("dup.txt", "a x\na y\n", ":2: utterance id a already appears on line 1"),
        ("mixed.csv", "a|x\nb y\n", ":2: expected 'id|text'"),
        ("noid.csv", "a|x\n|y\n", ":2: empty utterance id"),
        ("empty.txt", "\n\n", ": no reference texts"),
    ],
)
def test_read_refs_errors(tmp_path, name, text, message):
    path = write(tmp_path / name, text)
    with pytest.raises(UserError) as e:
        read_refs(path)
    assert message in one_line_error(e, str(path))


def test_read_refs_missing_and_binary(tmp_path):
    with pytest.raises(UserError, match="not found"):
        read_refs(tmp_path / "nope.csv")
    with pytest.raises(UserError, match="no \\*.normalized.txt"):
        read_refs(tmp_path)
    (tmp_path / "bin.csv").write_bytes(b"a|\xff\xfe\n")
    with pytest.raises(UserError, match="not UTF-8"):
        read_refs(tmp_path / "bin.csv")


# ----------------------------------------------------------------------------------------------- wavs
def test_find_wavs(tmp_path):
    for rel in ["d/a.wav", "d/sub/b.wav", "d/notes.txt", "other/c.wav"]:
        write(tmp_path / rel, "")
    assert find_wavs(tmp_path / "d") == {"a": tmp_path / "d/a.wav", "b": tmp_path / "d/sub/b.wav"}
    scp = write(tmp_path / "wav.scp", f"x d/a.wav\n\nother/c.wav\ny {tmp_path / 'd/sub/b.wav'}\n")
    assert find_wavs(scp) == {
        "x": tmp_path / "d/a.wav",
        "c": tmp_path / "other/c.wav",
        "y": tmp_path / "d/sub/b.wav",
    }
    assert find_wavs(tmp_path / "other/c.wav") == {"c": tmp_path / "other/c.wav"}


def test_find_wavs_errors(tmp_path):
    write(tmp_path / "d/a.wav", "")
    write(tmp_path / "d/sub/a.wav", "")
    with pytest.raises(UserError) as e:
        find_wavs(tmp_path / "d")
    assert "utterance id a also names" in one_line_error(e, str(tmp_path / "d"))
    scp = write(tmp_path / "wav.scp", "a d/a.wav\nb d/missing.wav\nc gone.wav\n")
    with pytest.raises(UserError) as e:
        find_wavs(scp)
    assert "2 listed wav files do not exist" in one_line_error(e, str(scp))
    piped = write(tmp_path / "pipe.scp", "a sox x.flac -t wav - |\n")
    with pytest.raises(UserError) as e:
        find_wavs(piped)
    assert ":1: expected 'id path'" in one_line_error(e, str(piped))
    write(tmp_path / "empty/readme.txt", "")
    with pytest.raises(UserError, match="no .wav files"):
        find_wavs(tmp_path / "empty")


def test_pairing_errors():
    refs = {"a": "x", "b": "y", "c": "z"}
    wavs = {k: f"/w/{k}.wav" for k in ["b", "c", "d", "e"]}
    with pytest.raises(UserError) as e:
        pair_up(refs, wavs, "refs.csv", "wavs/")
    assert "2 of 4 wavs have no text in refs.csv: d, e" in one_line_error(e, "wavs/")
    with pytest.raises(UserError) as e:
        pair_up(refs, wavs, "refs.csv", "wavs/", allow_extra_wavs=True)
    assert "1 of 3 references have no wav in wavs/: a" in one_line_error(e, "refs.csv")
    pairs, left = pair_up(refs, wavs, "refs.csv", "wavs/", allow_missing_wavs=True, allow_extra_wavs=True)
    assert pairs == [("b", "/w/b.wav", "y"), ("c", "/w/c.wav", "z")]
    assert left == {"refs_without_wav": 1, "wavs_without_ref": 2}
    with pytest.raises(UserError) as e:
        pair_up({"a": "x"}, {"q": "/w/q.wav"}, "refs.csv", "wavs/")
    assert "none of the 1 wav ids appears in refs.csv" in one_line_error(e, "wavs/")


def test_letter_to_sound_uses_the_model_phones():
    vowels = "AA AE AH AO AW AY EH ER EY IH IY OW OY UH UW"
    consonants = "B CH D DH F G HH JH K L M N NG P R S SH T TH V W Y Z ZH"
    phones = set(f"{vowels} {consonants}".split(" "))
    for word in ["quixaltor", "zorbleflax", "knightly", "cyberphone", "o'brien", "nation"]:
        pron = letter_to_sound(word)
        assert pron and set(pron) <= phones, (word, pron)
    assert letter_to_sound("make") == ["M", "EY", "K"]
    assert letter_to_sound("'") == []


# ------------------------------------------------------------------------------------ the dfcnn hook
def test_dfcnn_engine_scores_any_transcriber(tmp_path):
    import numpy as np
    import soundfile as sf

    refs = metadata(tmp_path / "metadata.csv")
    (tmp_path / "wavs").mkdir()
    for uid, _ in SENTENCES:
        sf.write(tmp_path / "wavs" / f"{uid}.wav", np.zeros(8000, dtype=np.float32), 16000)
    seen = []

    def transcribe(paths):
        seen.extend(paths)
        return [
            "Glue the sheet.",
            "the birch canoe slid on the smooth planks",
            "",
            "rice is often served in round bowls",
        ]

    scores = judge(tmp_path / "wavs", refs, tmp_path / "out", engine="dfcnn", transcribe_fn=transcribe)
    assert seen == [tmp_path / "wavs" / f"{uid}.wav" for uid, _ in SENTENCES]
    # 5 words deleted from the first sentence (8 words), all 11 of the third
    assert (scores["S"], scores["D"], scores["I"], scores["n_words"]) == (0, 16, 0, 34)
    assert scores["wer"] == pytest.approx(16 / 34) and scores["audio_seconds"] == pytest.approx(2.0)
    assert scores["engine"] == "dfcnn" and (tmp_path / "out" / "per_utt.jsonl").is_file()

    with pytest.raises(UserError, match="needs a trained model"):
        judge(tmp_path / "wavs", refs, tmp_path / "out2", engine="dfcnn")
    write(tmp_path / "wavs" / "LJ001-0004.wav", "not audio")
    with pytest.raises(UserError, match="LJ001-0004.wav: cannot read"):  # checked before any output
        judge(tmp_path / "wavs", refs, tmp_path / "out3", engine="dfcnn", transcribe_fn=transcribe)
    assert not (tmp_path / "out3").exists()


# ------------------------------------------------------------------------------- pocketsphinx + flite
@pytest.fixture(scope="module")
def flite_wavs(tmp_path_factory):
    pytest.importorskip("pocketsphinx")
    if shutil.which("flite") is None:
        pytest.skip("flite is not installed")
    d = tmp_path_factory.mktemp("flite")
    (d / "wavs").mkdir()
    for uid, text in SENTENCES:
        subprocess.run(
            ["flite", "-voice", "slt", "-t", text, "-o", str(d / "wavs" / f"{uid}.wav")], check=True
        )
    return d / "wavs"


def test_judge_pocketsphinx_end_to_end(flite_wavs, tmp_path):
    refs = metadata(tmp_path / "metadata.csv")
    out = tmp_path / "judge"
    scores = judge(flite_wavs, refs, out, workers=2, show_progress=False)

    assert scores["engine"] == "pocketsphinx" and scores["n_utts"] == 4 and scores["n_words"] == 34
    assert scores["wer"] <= MAX_WER and scores["cer"] <= MAX_WER
    assert "from the 4 reference sentences of this test set" in scores["lm"]
    assert scores["oov_words"] == 1 and scores["letter_to_sound_words"] == ["quixaltor"]
    assert scores["audio_seconds"] > 5 and scores["x_real_time"] > 0
    assert json.loads((out / "scores.json").read_text()) == scores

    hyp_lines = (out / "hyp.txt").read_text().splitlines()
    assert [line.split(" ", 1)[0] for line in hyp_lines] == [uid for uid, _ in SENTENCES]
    rows = [json.loads(line) for line in (out / "per_utt.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == [uid for uid, _ in SENTENCES]
    assert rows[1]["ref"] == "the birch canoe slid on the smooth planks"  # normalised
    assert {r["hyp"] for r in rows} == {line.split(" ", 1)[1] for line in hyp_lines}
    assert sum(r["word"]["N"] for r in rows) == 34 and set(rows[0]["char"]) == set("SDIHN")
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]


def test_judge_listens_to_the_audio(flite_wavs, tmp_path):
    """Same sentences, same LM, each text paired with another utterance's audio: almost every word is
    wrong. And a sentence the LM never saw cannot be recognised from the others' words."""
    texts = [t for _, t in SENTENCES]
    shifted = metadata(
        tmp_path / "shifted.csv", [(uid, texts[i - 1]) for i, (uid, _) in enumerate(SENTENCES)]
    )
    scores = judge(flite_wavs, shifted, tmp_path / "shifted", workers=1, show_progress=False)
    assert scores["wer"] >= 0.7

    wrong = [*SENTENCES[:3], (SENTENCES[3][0], "The hogs were fed chopped corn and garbage.")]
    judge(
        flite_wavs,
        metadata(tmp_path / "wrong.csv", wrong),
        tmp_path / "wrong",
        workers=1,
        show_progress=False,
    )
    rows = [json.loads(line) for line in (tmp_path / "wrong" / "per_utt.jsonl").read_text().splitlines()]
    assert max(r["word"]["S"] + r["word"]["D"] + r["word"]["I"] for r in rows[:3]) <= 2
    last = rows[3]["word"]
    assert last["S"] + last["D"] + last["I"] >= 0.6 * last["N"]


def test_judge_subset_and_resampled_audio(flite_wavs, tmp_path):
    """A 22.05 kHz stereo wav is down-mixed and resampled; references without a wav can be left out."""
    import numpy as np
    import soundfile as sf
    import torch

    from aics.core.audio import resample

    wavs = tmp_path / "wavs"
    wavs.mkdir()
    x, sr = sf.read(flite_wavs / "LJ001-0002.wav", dtype="float32")
    y = resample(torch.from_numpy(x), sr, 22050).numpy()
    sf.write(wavs / "LJ001-0002.wav", np.stack([y, y], axis=1), 22050, subtype="PCM_16")
    shutil.copy(flite_wavs / "LJ001-0004.wav", wavs)
    refs = metadata(tmp_path / "metadata.csv")
    with pytest.raises(UserError, match="2 of 4 references have no wav"):
        judge(wavs, refs, tmp_path / "out", show_progress=False)
    assert not (tmp_path / "out").exists()
    scores = judge(wavs, refs, tmp_path / "out", workers=1, allow_missing_wavs=True, show_progress=False)
    assert scores["n_utts"] == 2 and scores["refs_without_wav"] == 2
    assert "from the 2 reference sentences" in scores["lm"]
    assert scores["wer"] <= MAX_WER
    with pytest.raises(UserError, match="pocketsphinx could not start .*'beam': 'wide'"):
        judge(wavs, refs, tmp_path / "bad", allow_missing_wavs=True, decoder_options={"beam": "wide"})
    assert not (tmp_path / "bad").exists()
