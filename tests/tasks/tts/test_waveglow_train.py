"""WaveGlow training (aics.tasks.tts.waveglow_train) on a features dir of a few synthetic voiced wavs: the
loss against a hand computation and the exact change of variables, crops whose mel frames and samples line
up, artifacts, a falling loss, exact resume, and the importer reading the checkpoints."""

from __future__ import annotations

import math
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from aics.core.ckpt import load_checkpoint
from aics.core.config import load_config
from aics.core.errors import UserError
from aics.core.io import read_json, read_jsonl
from aics.tasks.tts.config import FeatureConfig
from aics.tasks.tts.data import compute_features, mel_config, mel_spectrogram
from aics.tasks.tts.waveglow import WaveGlow, WaveGlowConfig, WNConfig
from aics.tasks.tts.waveglow_train import (
    SegmentSet,
    WaveGlowTrainConfig,
    check_config,
    train,
    waveglow_config,
    waveglow_loss,
)

SR = 22050
N_MELS = 20  # a small upsampling layer (n_mels^2 x 1024 weights), so checkpoints stay small
CONF = Path(__file__).resolve().parents[3] / "recipes" / "tts_tacotron2" / "conf"
# on waveglow_tiny.yaml; 12 training utterances, batch 3: 4 steps per epoch
TINY = ["train.device=cpu", "train.batch_size=3", "train.keep_epochs=0"]
EPOCHS = 5


@pytest.fixture(autouse=True)
def one_thread():
    """These models are tiny: a second thread only adds OpenMP hand-offs, which cost seconds per test (the
    Jacobian's 512 backward passes, minutes) when the machine is busy."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def voiced(seconds: float, f0: float, seed: int) -> np.ndarray:
    """A vowel-like tone: harmonics of a gliding f0 under a smooth envelope, with a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    pitch = f0 * (1 + 0.2 * np.sin(2 * np.pi * 2 * t))
    phase = 2 * np.pi * np.cumsum(pitch) / SR
    wav = sum(np.sin(k * phase) / k for k in range(1, 6))
    envelope = np.sin(np.pi * t / t[-1]) ** 0.5
    return (0.3 * envelope * wav / 2 + 0.003 * rng.standard_normal(len(t))).astype(np.float32)


def write_filelists(root: Path, sizes: dict[str, list[float]]) -> Path:
    (root / "wavs").mkdir(parents=True)
    n = 0
    for subset, lengths in sizes.items():
        rows = []
        for seconds in lengths:
            path = root / "wavs" / f"u{n:02d}.wav"
            sf.write(path, voiced(seconds, 100 + 15 * n, n), SR, subtype="PCM_16")
            rows.append(f"wavs/{path.name}|utterance number {n}.")
            n += 1
        (root / f"{subset}_filelist.txt").write_text("\n".join(rows) + "\n")
    return root


def features(root: Path, **settings) -> Path:
    fc = FeatureConfig(n_mels=N_MELS, **settings)
    compute_features(root, root / "feats", fc, workers=1, show_progress=False)
    return root / "feats"


@pytest.fixture(scope="module")
def feats(tmp_path_factory) -> Path:
    """12 training utterances of 0.3 to 0.6 s and 2 valid ones, one of them shorter than a crop."""
    root = tmp_path_factory.mktemp("waveglow-data")
    train_lengths = [0.3 + 0.025 * i for i in range(12)]
    return features(write_filelists(root, {"train": train_lengths, "valid": [0.4, 0.05]}))


def cfg(*extra: str) -> WaveGlowTrainConfig:
    return load_config(WaveGlowTrainConfig, [CONF / "waveglow_tiny.yaml"], [*TINY, *extra])


@pytest.fixture(scope="module")
def trained(feats, tmp_path_factory) -> Path:
    exp = tmp_path_factory.mktemp("waveglow-exp") / "tiny"
    train(cfg(f"train.epochs={EPOCHS}"), feats, exp)
    return exp


# ------------------------------------------------------------------------------------------------- loss
def test_loss_is_nvidias_formula_per_sample():
    z = torch.tensor([[1.0, 2.0], [3.0, 4.0]])  # B = 2 items of 2 samples
    log_s_sum, log_det_sum, sigma = torch.tensor(3.0), torch.tensor(1.0), 0.5
    # sum z^2 = 30, / (2 * 0.25) = 60; log_s over the batch: 3; log|det W| per item, for 2 items: 2
    assert waveglow_loss(z, log_s_sum, log_det_sum, sigma).item() == pytest.approx((60 - 3 - 2) / 4)


def test_loss_is_the_exact_negative_log_likelihood_per_sample():
    """With random coupling outputs (not the identity they start as), the loss equals -log p(audio) per
    sample from the change of variables: |z|^2 / (2 sigma^2) - log|det dz/daudio|, item by item."""
    torch.manual_seed(0)
    config = WaveGlowConfig(n_mel_channels=4, n_flows=4, n_early_every=2, WN_config=WNConfig(2, 8, 3))
    model = WaveGlow(config).double()
    with torch.no_grad():
        for wn in model.WN:
            wn.end.weight.normal_(0, 0.3)
            wn.end.bias.normal_(0, 0.3)
    mel, audio, sigma = torch.randn(2, 4, 1).double(), 0.3 * torch.randn(2, 256).double(), 0.7
    z, log_s_sum, log_det_sum = model(mel, audio)
    assert log_s_sum.item() != 0
    exact = 0.0
    for i in range(2):
        a = audio[i].clone().requires_grad_(True)
        zi = model(mel[i : i + 1], a[None])[0][0]
        jac = torch.stack([torch.autograd.grad(zi[k], a, retain_graph=True)[0] for k in range(256)])  # dz/da
        exact += float((zi.detach() ** 2).sum() / (2 * sigma**2) - torch.linalg.slogdet(jac)[1])
    loss = waveglow_loss(z, log_s_sum, log_det_sum, sigma)
    assert loss.item() == pytest.approx(exact / z.numel(), rel=1e-5)


# ------------------------------------------------------------------------------------------------- data
def test_crops_line_up_mel_frames_with_their_samples(feats):
    ds = SegmentSet(feats, "train", segment_frames=16, seed=3)
    mels = np.load(feats / "train.npy")
    offsets = np.load(feats / "train.offsets.npy")
    mc = mel_config(read_json(feats / "features.json")["features"])
    for i in (0, 5, 11):
        f = ds.crop_start(i)
        mel, audio = ds[i]
        assert mel.shape == (N_MELS, 16) and audio.shape == (16 * 256,) and audio.dtype == torch.float32
        assert torch.equal(mel.T, torch.from_numpy(mels[offsets[i] + f : offsets[i] + f + 16]))
        wav, _ = sf.read(ds.rows[i]["wav"], dtype="int16")
        assert torch.equal(audio, torch.from_numpy(wav[f * 256 : (f + 16) * 256] / 32768).float())
        # the crop's own mel: frame k is centred on sample k * 256 of the crop, which is frame f + k; the
        # frames whose window (k * 256 +- 512) stays inside the crop match the features exactly
        own = mel_spectrogram(audio, mc)
        torch.testing.assert_close(own[:, 2:15], mel[:, 2:15], atol=1e-4, rtol=1e-4)


def test_crops_are_drawn_per_seed_epoch_and_item_and_valid_crops_are_fixed(feats):
    def starts(seed: int, epoch: int) -> list[int]:
        ds = SegmentSet(feats, "train", segment_frames=8, seed=seed)
        ds.epoch = epoch
        return [ds.crop_start(i) for i in range(len(ds))]

    assert starts(0, 1) == starts(0, 1)
    assert starts(0, 1) != starts(0, 2) and starts(0, 1) != starts(1, 1)
    ds = SegmentSet(feats, "train", segment_frames=8, seed=0)
    assert all(0 <= ds.crop_start(i) <= ds.lengths[i] - 8 for i in range(len(ds)))
    valid = SegmentSet(feats, "valid", segment_frames=8, random_crop=False)
    assert valid.crop_start(0) == (valid.lengths[0] - 8) // 2
    valid.epoch = 7
    assert valid.crop_start(0) == (valid.lengths[0] - 8) // 2


def test_an_utterance_shorter_than_a_crop_is_padded_with_silence(feats):
    valid = SegmentSet(feats, "valid", segment_frames=8, random_crop=False)
    n = int(valid.lengths[1])  # 0.05 s: 5 frames
    mel, audio = valid[1]
    samples = len(sf.read(valid.rows[1]["wav"])[0])
    assert n < 8 and mel.shape == (N_MELS, 8)
    assert torch.all(mel[:, n:] == math.log(1e-5)) and not torch.all(mel[:, :n] == math.log(1e-5))
    assert torch.all(audio[samples:] == 0) and audio[:samples].abs().max() > 0


def test_a_wav_changed_since_the_features_is_reported_by_its_filelist_line(tmp_path):
    feats = features(write_filelists(tmp_path, {"train": [0.2, 0.2], "valid": [0.2]}))
    sf.write(tmp_path / "wavs" / "u01.wav", voiced(0.1, 100, 0), SR, subtype="PCM_16")
    with pytest.raises(UserError, match=r"train_filelist\.txt:2: .*u01\.wav now gives 9 frames"):
        SegmentSet(feats, "train", segment_frames=8)
    with pytest.raises(UserError, match="u01.wav now gives 9 frames"):
        train(cfg(), feats, tmp_path / "exp")
    assert not (tmp_path / "exp").exists()


# --------------------------------------------------------------------------------------------- training
def test_train_writes_checkpoints_logs_and_done_and_the_loss_falls(feats, trained):
    names = sorted(p.name for p in (trained / "ckpt").iterdir())
    assert names == ["best.pt", *(f"epoch-{e:03d}.pt" for e in range(1, EPOCHS + 1)), "last.pt"]
    recorded = read_json(feats / "features.json")["features"]
    last = load_checkpoint(trained / "ckpt" / "last.pt", task="tts")
    assert (last["step"], last["epoch"], last["batch_in_epoch"]) == (4 * EPOCHS, EPOCHS, 0)
    assert last["extra"]["features"] == recorded
    assert last["extra"]["waveglow"] == asdict(waveglow_config(cfg().model, N_MELS))
    assert last["config"]["model"]["WN_config"]["n_channels"] == 16
    assert "n_flows: 4" in (trained / "config.yaml").read_text()

    rows = read_jsonl(trained / "log" / "metrics.jsonl")
    losses = [r["loss"] for r in rows if r["split"] == "train"]
    assert len(losses) == 4 * EPOCHS and all(math.isfinite(x) for x in losses)
    # from the identity flow (the audio itself as noise) the model learns to scale the quiet audio up
    assert np.mean(losses[-4:]) < np.mean(losses[:4]) - 0.5
    valid = [r for r in rows if r["split"] == "valid"]
    assert [(r["epoch"], r["step"]) for r in valid] == [(e, 4 * e) for e in range(1, EPOCHS + 1)]
    assert valid[-1]["loss"] < valid[0]["loss"]
    best = load_checkpoint(trained / "ckpt" / "best.pt")
    assert (
        best["metrics"]["valid"]["loss"]
        == min(r["loss"] for r in valid)
        == last["metrics"]["best_valid_loss"]
    )
    assert any(p.name.startswith("events.out.tfevents") for p in (trained / "tb").iterdir())
    assert read_json(trained / ".done")["epoch"] == EPOCHS
    before = (trained / "ckpt" / "last.pt").read_bytes()
    assert train(cfg(f"train.epochs={EPOCHS}"), feats, trained) == {}, "a finished run is not trained again"
    assert (trained / "ckpt" / "last.pt").read_bytes() == before


def test_an_interrupted_run_resumes_to_the_same_weights(feats, trained, tmp_path):
    exp = tmp_path / "resumed"
    train(cfg(f"train.epochs={EPOCHS}", "train.max_steps=10"), feats, exp)  # two batches into epoch 3
    ck = load_checkpoint(exp / "ckpt" / "last.pt")
    assert (ck["step"], ck["epoch"], ck["batch_in_epoch"]) == (10, 2, 2) and not (exp / ".done").exists()
    with pytest.raises(UserError, match=r"train\.sigma"):
        train(cfg(f"train.epochs={EPOCHS}", "train.sigma=0.5"), feats, exp)
    train(cfg(f"train.epochs={EPOCHS}"), feats, exp)
    a, b = load_checkpoint(trained / "ckpt" / "last.pt"), load_checkpoint(exp / "ckpt" / "last.pt")
    assert a["step"] == b["step"] == 4 * EPOCHS
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), f"{k} differs after the resume"
    for i, state in a["optimizer"]["state"].items():
        assert torch.equal(state["exp_avg_sq"], b["optimizer"]["state"][i]["exp_avg_sq"])

    def logged(e: Path) -> list[dict]:
        return [{k: v for k, v in r.items() if k != "time"} for r in read_jsonl(e / "log" / "metrics.jsonl")]

    assert logged(exp) == logged(trained)


def test_bad_settings_are_refused_before_any_output(feats, tmp_path):
    with pytest.raises(UserError, match="n_group=6 must divide the 256 samples"):
        train(cfg("train.segment_frames=1", "model.n_group=6"), feats, tmp_path / "a")
    with pytest.raises(UserError, match="fewer than 2"):
        train(cfg("model.n_flows=12", "model.n_early_every=2"), feats, tmp_path / "a")
    with pytest.raises(UserError, match="no utterances in subset 'test'"):
        train(cfg("train.valid_set=test"), feats, tmp_path / "a")
    assert not (tmp_path / "a").exists()
    with pytest.raises(UserError, match="features.hop=128"):  # WaveGlow upsamples a frame to 256 samples
        features(write_filelists(tmp_path / "hop", {"train": [0.2], "valid": [0.2]}), hop=128)
    tacotron2 = tmp_path / "t2"
    tacotron2.mkdir()
    (tacotron2 / "config.yaml").write_text("model:\n  n_frames_per_step: 3\n")
    with pytest.raises(UserError, match="is a Tacotron2 experiment"):
        train(cfg(), feats, tacotron2)


def test_a_loss_that_turns_nan_stops_the_run_before_the_update(feats, tmp_path, monkeypatch):
    from aics.tasks.tts import waveglow_train

    calls = []

    def failing(*args):
        calls.append(1)
        loss = waveglow_loss(*args)
        return loss * math.nan if len(calls) == 3 else loss

    monkeypatch.setattr(waveglow_train, "waveglow_loss", failing)
    with pytest.raises(UserError, match=r"step 3: the loss is not finite \(nan\); stopped before the update"):
        train(cfg(), feats, tmp_path / "nan")


@pytest.mark.parametrize("preset", ["waveglow_tiny", "waveglow_cpu", "waveglow_base"])
def test_the_presets_load_and_build(preset):
    c = load_config(WaveGlowTrainConfig, [CONF / f"{preset}.yaml"])
    check_config(c)
    if preset == "waveglow_base":  # the network of NVIDIA's checkpoints (268 M parameters: not built here)
        assert waveglow_config(c.model) == WaveGlowConfig() and c.train.segment_frames * 256 <= 16000
    else:
        assert WaveGlow(waveglow_config(c.model)).n_remaining_channels >= 2


def importer_reads_waveglow_configs() -> bool:
    """Whether ``importer._state_dict`` takes an aics checkpoint's config from ``extra["waveglow"]`` (a
    one-line change there; until it is made the sizes come from the weights, and the early outputs are
    guessed)."""
    from aics.tasks.tts import importer

    probe = {
        "task": "tts",
        "model": {"upsample.weight": torch.zeros(1)},
        "extra": {"waveglow": {"n_flows": 3}},
    }
    return importer._state_dict(probe, Path("probe.pt"))[1] == {"n_flows": 3}


def test_checkpoints_drive_synthesis(feats, trained):
    ck = load_checkpoint(trained / "ckpt" / "best.pt", task="tts")
    saved = dict(ck["extra"]["waveglow"])
    model = WaveGlow(WaveGlowConfig(**{**saved, "WN_config": WNConfig(**saved["WN_config"])}))
    model.load_state_dict(ck["model"])
    mel = torch.from_numpy(np.load(feats / "valid.npy")[:10].T.copy())[None]
    audio = model.remove_weightnorm().infer(mel, sigma=0.6, generator=torch.Generator().manual_seed(0))
    assert audio.shape == (1, 10 * 256) and torch.isfinite(audio).all()
    if not importer_reads_waveglow_configs():
        pytest.skip("importer.py does not read extra['waveglow'] yet")
    from aics.tasks.tts.importer import load_model, read_checkpoint

    imp = read_checkpoint(trained / "ckpt" / "best.pt")
    assert imp.kind == "waveglow" and imp.layout == "aics training" and imp.report.ok
    assert asdict(imp.config) == ck["extra"]["waveglow"]
    loaded, _ = load_model(trained / "ckpt" / "best.pt", "waveglow")
    assert torch.equal(loaded.upsample.weight, ck["model"]["upsample.weight"])
