"""`aics tts`: NVIDIA-format files in, wavs out; `aics tts info`; bad input gets one line and exit code 2."""

from __future__ import annotations

from dataclasses import asdict, replace
from pathlib import Path

import pytest
import soundfile as sf
import torch

from aics.tasks.tts.importer import load_model, read_checkpoint
from aics.tasks.tts.model import Tacotron2, Tacotron2Config
from aics.tasks.tts.waveglow import WaveGlow, WaveGlowConfig, WNConfig

SMALL = Tacotron2Config(
    symbols_embedding_dim=32,
    encoder_embedding_dim=32,
    attention_rnn_dim=48,
    attention_dim=8,
    attention_location_n_filters=4,
    attention_location_kernel_size=5,
    decoder_rnn_dim=40,
    prenet_dim=16,
    postnet_embedding_dim=24,
    max_decoder_steps=30,
)
WG = WaveGlowConfig(WN_config=WNConfig(n_channels=8, n_layers=2))


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """A small Tacotron2 saved as DeepLearningExamples does (config, module. prefixes) that speaks for 20
    frames, and a small WaveGlow."""
    d = tmp_path_factory.mktemp("tts-files")
    torch.manual_seed(0)
    t2 = Tacotron2(SMALL)
    with torch.no_grad():
        t2.decoder.gate_layer.linear_layer.bias.fill_(-1e4)  # never stops by itself: --max-decoder-steps does
    sd = {f"module.{k}": v for k, v in t2.state_dict().items()}
    torch.save({"epoch": 7, "config": asdict(SMALL), "state_dict": sd}, d / "t2.pt")
    wg = WaveGlow(WG)
    torch.save({"epoch": 1, "config": asdict(WG), "state_dict": wg.state_dict()}, d / "wg.pt")
    return {"t2": d / "t2.pt", "wg": d / "wg.pt", "dir": d}


def test_nvidia_files_load_with_prefixes_stripped_and_run(files):
    model, imp = load_model(files["t2"], "tacotron2")
    assert imp.report.ok and imp.extra == {"epoch": 7} and imp.config == SMALL
    assert not any(k.startswith("module.") for k in imp.state_dict)
    with pytest.warns(UserWarning, match="decoder steps"):
        mel, lengths, _ = model.infer(torch.randint(1, 148, (1, 6)), torch.tensor([6]), max_steps=5)
    assert mel.shape == (1, 80, 5)
    wg, imp = load_model(files["wg"], "waveglow")
    assert imp.config.WN_config.n_channels == 8 and wg.infer(mel).shape == (1, 5 * 256)


def test_files_without_config_take_their_sizes_from_the_weights(files, tmp_path):
    sd = torch.load(files["t2"], weights_only=True)["state_dict"]
    torch.save(
        {"iteration": 10, "state_dict": sd, "optimizer": {}, "learning_rate": 1e-3}, tmp_path / "nv.pt"
    )
    imp = read_checkpoint(tmp_path / "nv.pt")
    assert imp.kind == "tacotron2" and imp.report.ok and imp.layout.startswith("NVIDIA/tacotron2")
    assert replace(imp.config, max_decoder_steps=30) == SMALL
    wsd = torch.load(files["wg"], weights_only=True)["state_dict"]
    torch.save(wsd, tmp_path / "bare.pt")
    imp = read_checkpoint(tmp_path / "bare.pt", "waveglow")
    assert imp.report.ok and imp.config == WG


def test_a_stacked_cond_layer_is_split_per_layer(files, tmp_path):
    wg, _ = load_model(files["wg"], "waveglow")
    sd = torch.load(files["wg"], weights_only=True)["state_dict"]
    stacked = {k: v for k, v in sd.items() if ".cond_layers." not in k}
    for f in range(12):
        for part in ("weight_g", "weight_v", "bias"):
            stacked[f"WN.{f}.cond_layer.{part}"] = torch.cat(
                [sd[f"WN.{f}.cond_layers.{i}.{part}"] for i in range(2)]
            )
    torch.save({"state_dict": stacked}, tmp_path / "stacked.pt")
    other, imp = load_model(tmp_path / "stacked.pt", "waveglow")
    assert imp.report.ok
    mel = torch.randn(1, 80, 3)
    z = torch.randn(1, 8, 3 * 32)
    torch.testing.assert_close(other.infer(mel, noise=z), wg.infer(mel, noise=z))


def test_tts_writes_a_wav_and_prints_the_real_time_factor(files, tmp_path, aics):
    out = aics(
        "tts",
        "Hello, world!",
        "It's 3 p.m.",
        "-o",
        tmp_path / "a.wav",
        "--tacotron2",
        files["t2"],
        "--max-decoder-steps",
        "20",
        "--plot",
        "--gl-iters",
        "4",
    )
    assert "real-time factor" in out and "griffinlim" in out
    wav, sr = sf.read(tmp_path / "a.wav")
    assert sr == 22050 and len(wav) == 20 * 256 and abs(wav).max() > 0
    assert (tmp_path / "a.png").stat().st_size > 1000
    out = aics(
        "tts",
        "synth",
        "Hello.",
        "-o",
        tmp_path / "b.wav",
        "--tacotron2",
        files["t2"],
        "--waveglow",
        files["wg"],
        "--max-decoder-steps",
        "8",
        "--seed",
        "3",
    )
    assert "waveglow" in out and sf.read(tmp_path / "b.wav")[0].shape == (8 * 256,)


def test_tts_input_file_writes_a_directory_with_metadata(files, tmp_path, aics):
    lines = tmp_path / "lines.txt"
    lines.write_text("First line.\n\nSecond, longer line of text.\nThird!\n")
    aics(
        "tts",
        "--input",
        lines,
        "-o",
        tmp_path / "out",
        "--tacotron2",
        files["t2"],
        "--max-decoder-steps",
        "6",
        "--batch-size",
        "2",
        "--gl-iters",
        "2",
    )
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == ["0001.wav", "0002.wav", "0003.wav", "metadata.csv"]
    rows = (tmp_path / "out/metadata.csv").read_text().splitlines()
    assert rows == [
        "0001|First line.|First line.",
        "0002|Second, longer line of text.|Second, longer line of text.",
        "0003|Third!|Third!",
    ]


def test_tts_info_prints_config_parameters_and_key_report(files, tmp_path, aics):
    out = aics("tts", "info", files["t2"])
    n = sum(p.numel() for p in Tacotron2(SMALL).parameters())
    assert f"tacotron2, DeepLearningExamples layout, {n:,} parameters" in out
    assert "epoch: 7" in out and "attention_rnn_dim: 48" in out and "every key and shape matches" in out
    sd = torch.load(files["t2"], weights_only=True)["state_dict"]
    sd["module.decoder.gate_layer.linear_layer.weight"] = torch.zeros(2, 72)
    del sd["module.postnet.convolutions.4.0.conv.bias"]
    sd["module.extra.weight"] = torch.zeros(1)
    torch.save({"config": asdict(SMALL), "state_dict": sd}, tmp_path / "bad.pt")
    line = aics.error("tts", "info", tmp_path / "bad.pt")
    assert "missing (1): postnet.convolutions.4.0.conv.bias" in line
    assert "unexpected (1): extra.weight" in line
    assert "decoder.gate_layer.linear_layer.weight: file (2, 72) vs model (1, 72)" in line
    line = aics.error("tts", "x", "-o", tmp_path / "x.wav", "--tacotron2", tmp_path / "bad.pt")
    assert "bad.pt: its weights do not fit tacotron2" in line


def touch(path: str) -> None:
    Path(path).touch()


class Payload:
    """Unpickling this would create a file: the refusal must come first."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (touch, (str(self.path),))


def test_bad_input_gets_one_line(files, tmp_path, aics, monkeypatch):
    from aics.tasks.tts import voice

    t2 = ["--tacotron2", files["t2"]]
    monkeypatch.setattr(voice, "DEFAULT_VOICE", tmp_path / "no_voice.safetensors")
    monkeypatch.delenv("AICS_TACOTRON2", raising=False)
    assert "no Tacotron2 model (no default voice" in aics.error("tts", "hi", "-o", tmp_path / "a.wav")
    assert "empty text" in aics.error("tts", "  ", "-o", tmp_path / "a.wav", *t2)
    (tmp_path / "file.txt").write_text("")
    line = aics.error("tts", "hi", "-o", tmp_path / "file.txt/a.wav", *t2)
    assert "file.txt/a.wav: cannot write there" in line and "is not a writable directory" in line
    assert "must end in .wav" in aics.error("tts", "hi", "-o", tmp_path / "a.mp3", *t2)
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    assert "has no text" in aics.error("tts", "--input", empty, "-o", tmp_path / "o", *t2)
    assert "nothing left to say" in aics.error("tts", "###", "-o", tmp_path / "a.wav", *t2)
    # not NVIDIA's dict format
    torch.save([torch.zeros(2)], tmp_path / "list.pt")
    assert "not NVIDIA's dict format" in aics.error("tts", "info", tmp_path / "list.pt")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "nokey.pt")
    assert "neither Tacotron2 nor WaveGlow" in aics.error("tts", "info", tmp_path / "nokey.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    assert "junk.pt: not a torch checkpoint" in aics.error("tts", "info", tmp_path / "junk.pt")
    # a pickled object (as NVIDIA/waveglow's release files are) is refused before any of it runs
    marker = tmp_path / "ran"
    torch.save({"model": Payload(marker)}, tmp_path / "pickled.pt")
    line = aics.error("tts", "info", tmp_path / "pickled.pt")
    assert "holds a pickled Python object" in line and "refused without running it" in line
    assert not marker.exists()
    line = aics.error("tts", "hi", "-o", tmp_path / "a.wav", "--tacotron2", files["wg"])
    assert "holds waveglow weights, not tacotron2" in line
