"""aics.core.audio against librosa (the reference implementation) on seeded random signals, plus file I/O."""

import math

import numpy as np
import pytest
import torch

from aics.core import audio
from aics.core.errors import UserError

librosa = pytest.importorskip("librosa")
soundfile = pytest.importorskip("soundfile")


def noise(*shape, seed=0, dtype=np.float32):
    return (np.random.default_rng(seed).standard_normal(shape) * 0.3).astype(dtype)


def band_limited(n, sr, f_max, seed=0):
    """White noise with nothing above ``f_max`` Hz (a brick wall in the frequency domain)."""
    spectrum = np.fft.rfft(np.random.default_rng(seed).standard_normal(n))
    spectrum[np.fft.rfftfreq(n, 1.0 / sr) > f_max] = 0.0
    x = np.fft.irfft(spectrum, n)
    return 0.5 * x / np.abs(x).max()


def snr_db(ref, est):
    return 10.0 * np.log10(np.sum(ref**2) / np.sum((ref - est) ** 2))


def assert_close_rel(actual, expected, rtol):
    """Max error relative to the largest reference value (STFT bins span many orders of magnitude)."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape
    assert np.abs(actual - expected).max() <= rtol * np.abs(expected).max()


# ---------------------------------------------------------------------------------------------- STFT


@pytest.mark.parametrize(
    "n_fft, hop, win_length, window, center, pad_mode",
    [
        (400, 160, None, "hann", True, "constant"),
        (512, 128, 400, "hann", True, "reflect"),
        (255, 64, None, "hamming", True, "edge"),
        (256, 100, 200, "blackman", False, "constant"),
    ],
)
def test_stft_matches_librosa(n_fft, hop, win_length, window, center, pad_mode):
    x = noise(2, 3, 3001)
    ours = audio.stft(torch.from_numpy(x), n_fft, hop, win_length, window, center, pad_mode)
    ref = librosa.stft(
        x, n_fft=n_fft, hop_length=hop, win_length=win_length, window=window, center=center, pad_mode=pad_mode
    )
    assert ours.dtype == torch.complex64
    assert_close_rel(ours.numpy(), ref, 1e-6)
    assert ours.shape[-1] == audio.frame_count(3001, hop, center, n_fft)


@pytest.mark.parametrize("n_fft", [400, 401])
@pytest.mark.parametrize("center", [True, False])
def test_frame_count_matches_librosa(n_fft, center):
    for n in [401, 1000, 1600, 1601, 4321]:
        expected = librosa.stft(np.zeros(n, np.float32), n_fft=n_fft, hop_length=160, center=center).shape[-1]
        assert audio.frame_count(n, 160, center, n_fft) == expected
    assert audio.frame_count(100, 160, center=False, n_fft=400) == 0
    assert audio.frame_count(1600, 160) == 11
    with pytest.raises(ValueError, match="n_fft"):
        audio.frame_count(1600, 160, center=False)


@pytest.mark.parametrize("power", [1.0, 2.0, 1.5])
def test_spectrogram_matches_librosa(power):
    x = noise(2, 4000, seed=1)
    ours = audio.spectrogram(torch.from_numpy(x), 512, 128, power=power)
    ref = np.abs(librosa.stft(x, n_fft=512, hop_length=128)) ** power
    assert_close_rel(ours.numpy(), ref, 2e-6)


def test_stft_keeps_float64():
    x = noise(3000, dtype=np.float64)
    ours = audio.stft(torch.from_numpy(x), 256, 64)
    assert ours.dtype == torch.complex128
    np.testing.assert_allclose(ours.numpy(), librosa.stft(x, n_fft=256, hop_length=64), atol=1e-11)


# ------------------------------------------------------------------------------------------ mel scale


@pytest.mark.parametrize(
    "sr, n_fft, n_mels, fmin, fmax, htk, norm",
    [
        (16000, 400, 80, 0.0, None, False, "slaney"),
        (16000, 512, 40, 20.0, 7600.0, True, "slaney"),
        (22050, 1024, 80, 0.0, 8000.0, False, None),
        (24000, 2048, 128, 30.0, None, True, None),
        (8000, 256, 23, 100.0, 3800.0, False, "slaney"),
    ],
)
def test_mel_filterbank_matches_librosa(sr, n_fft, n_mels, fmin, fmax, htk, norm):
    ours = audio.mel_filterbank(sr, n_fft, n_mels, fmin, fmax, htk, norm)
    ref = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax, htk=htk, norm=norm)
    assert ours.dtype == torch.float32 and ours.shape == (n_mels, n_fft // 2 + 1)
    np.testing.assert_allclose(ours.numpy(), ref, rtol=1e-6, atol=1e-6)


def test_mel_filterbank_returns_a_copy_of_the_cache():
    fb = audio.mel_filterbank(16000, 400, 80)
    fb.zero_()
    assert audio.mel_filterbank(16000, 400, 80).abs().sum() > 0


@pytest.mark.parametrize(
    "sr, n_fft, hop, win_length, n_mels, fmin, fmax, htk, norm, power",
    [
        (16000, 400, 160, None, 80, 0.0, None, False, "slaney", 2.0),
        (22050, 1024, 256, 800, 80, 0.0, 8000.0, False, "slaney", 1.0),
        (16000, 512, 128, None, 40, 20.0, 7600.0, True, None, 2.0),
        (24000, 1024, 300, None, 100, 0.0, None, True, "slaney", 2.0),
    ],
)
def test_log_mel_matches_librosa(sr, n_fft, hop, win_length, n_mels, fmin, fmax, htk, norm, power):
    x = noise(3, 6000, seed=2)
    mel = librosa.feature.melspectrogram(
        y=x,
        sr=sr,
        n_fft=n_fft,
        hop_length=hop,
        win_length=win_length,
        n_mels=n_mels,
        fmin=fmin,
        fmax=fmax,
        htk=htk,
        norm=norm,
        power=power,
    )
    args = (torch.from_numpy(x), sr, n_fft, hop, win_length, n_mels, fmin, fmax, htk, norm, power)
    db = audio.log_mel(*args, log="db", floor=1e-10)
    assert db.shape == (3, n_mels, audio.frame_count(6000, hop, True, n_fft))
    ref_db = librosa.power_to_db(mel, ref=1.0, amin=1e-10, top_db=None)
    np.testing.assert_allclose(db.numpy(), ref_db, atol=1e-3)
    ln = audio.log_mel(*args, log="ln", floor=1e-5)
    np.testing.assert_allclose(ln.numpy(), np.log(np.maximum(mel, 1e-5)), atol=2e-4)


def test_log_spectrogram_matches_librosa():
    x = noise(2, 5000, seed=3)
    ours = audio.log_spectrogram(torch.from_numpy(x), 400, 160, power=2.0, log="db", floor=1e-10)
    power = np.abs(librosa.stft(x, n_fft=400, hop_length=160)) ** 2
    np.testing.assert_allclose(
        ours.numpy(), librosa.power_to_db(power, ref=1.0, amin=1e-10, top_db=None), atol=1e-3
    )
    ln = audio.log_spectrogram(torch.from_numpy(x), 400, 160, power=1.0, log="ln", floor=1e-4)
    np.testing.assert_allclose(ln.numpy(), np.log(np.maximum(np.sqrt(power), 1e-4)), atol=2e-4)
    with pytest.raises(ValueError, match="log="):
        audio.log_spectrogram(torch.from_numpy(x), 400, 160, log="log10")


def test_silence_hits_the_floor():
    db = audio.log_mel(torch.zeros(1600), 16000, 400, 160, log="db", floor=1e-10)
    torch.testing.assert_close(db, torch.full_like(db, -100.0))


def test_batched_features_equal_per_item():
    x = torch.from_numpy(noise(2, 3, 4000, seed=4))
    batched = audio.log_mel(x, 16000, 400, 160, n_mels=80)
    assert batched.shape == (2, 3, 80, 26)
    spec = audio.log_spectrogram(x, 400, 160)
    for i in range(2):
        for j in range(3):
            torch.testing.assert_close(
                batched[i, j], audio.log_mel(x[i, j], 16000, 400, 160), atol=1e-4, rtol=0
            )
            torch.testing.assert_close(
                spec[i, j], audio.log_spectrogram(x[i, j], 400, 160), atol=1e-4, rtol=0
            )


@pytest.mark.parametrize("chunk_bytes", [1 << 16, None])
@pytest.mark.parametrize("shape", [(2, 16000 + 123), (37, 1601), (1, 400)])
def test_chunked_features_equal_the_plain_path(shape, chunk_bytes, monkeypatch):
    """The CPU fast path (chunks of frames, batch in one buffer) against the whole-tensor path that autograd
    takes: items split over steps (small chunks), many items per step, and a single frame."""
    if chunk_bytes:
        monkeypatch.setattr(audio, "_CHUNK_BYTES", chunk_bytes)  # 40 frames of 400 samples per step
    x = torch.from_numpy(noise(*shape, seed=14))
    xg = x.clone().requires_grad_(True)
    for fast, plain in [
        (audio.log_mel(x, 16000, 400, 160, log="ln"), audio.log_mel(xg, 16000, 400, 160, log="ln")),
        (audio.log_spectrogram(x, 512, 128, 400), audio.log_spectrogram(xg, 512, 128, 400)),
        (
            audio.log_spectrogram(x, 400, 160, power=1.0, center=False),
            audio.log_spectrogram(xg, 400, 160, 400, 1.0, center=False),
        ),
    ]:
        assert fast.shape == plain.shape
        torch.testing.assert_close(fast, plain.detach(), atol=1e-4, rtol=0)
    plain.sum().backward()
    assert torch.isfinite(xg.grad).all() and xg.grad.abs().sum() > 0


def test_feature_extractor_is_time_major():
    x = torch.from_numpy(noise(2, 4321, seed=5))
    fe = audio.FeatureExtractor("logmel", sr=16000, n_fft=400, hop_length=160, n_mels=64, log="ln")
    feats = fe(x)
    assert feats.shape == (2, fe.num_frames(4321), 64) and fe.dim == 64 and feats.is_contiguous()
    torch.testing.assert_close(feats, audio.log_mel(x, 16000, 400, 160, n_mels=64, log="ln").transpose(1, 2))
    assert fe(x[0]).shape == (fe.num_frames(4321), 64)
    lengths = torch.tensor([4321, 1600, 160])
    assert fe.num_frames(lengths).tolist() == [fe.num_frames(n) for n in lengths.tolist()] == [28, 11, 2]

    spec = audio.FeatureExtractor("logspec", n_fft=512, hop_length=128, win_length=400, center=False)
    assert spec.dim == 257
    assert spec(x).shape == (2, spec.num_frames(4321), 257) == (2, 30, 257)
    assert spec.num_frames(torch.tensor([100, 512])).tolist() == [0, 1]
    assert "logspec" in repr(spec)
    with pytest.raises(ValueError, match="kind"):
        audio.FeatureExtractor("mfcc")


# ------------------------------------------------------------------------------------------ resampling


@pytest.mark.parametrize(
    "orig, new",
    [(24000, 16000), (22050, 16000), (16000, 22050), (8000, 16000), (32000, 16000), (44100, 48000)],
)
def test_resample_matches_soxr(orig, new):
    n = orig // 4 + 7  # 0.25 s, a length that does not divide evenly
    x = band_limited(n, orig, 0.8 * min(orig, new) / 2, seed=orig + new)
    ours = audio.resample(torch.from_numpy(x), orig, new).numpy()
    ref = librosa.resample(x, orig_sr=orig, target_sr=new, res_type="soxr_hq")
    assert len(ours) == len(ref) == math.ceil(n * new / orig)
    edge = new // 100  # 10 ms at each end, where the two treat the zeros past the ends differently
    assert snr_db(ref[edge:-edge], ours[edge:-edge]) > 60.0


def test_resample_sweep_and_lengths():
    sr, new = 22050, 16000
    t = np.arange(sr // 2) / sr
    sweep = 0.5 * np.sin(2 * np.pi * (50.0 * t + 0.5 * (7000.0 - 50.0) / t[-1] * t**2))  # 50 Hz -> 7 kHz
    ours = audio.resample(torch.from_numpy(sweep), sr, new).numpy()
    ref = librosa.resample(sweep, orig_sr=sr, target_sr=new, res_type="soxr_hq")
    assert snr_db(ref[200:-200], ours[200:-200]) > 50.0
    for n in [1, 2, 3, 440, 441, 1000]:
        for a, b in [(44100, 16000), (16000, 44100), (48000, 8000)]:
            assert audio.resample(torch.zeros(n), a, b).shape[-1] == -(-n * b // a)


def test_resample_response():
    """Unit gain in the passband, a constant stays constant, and what would alias is removed."""
    sr, new = 48000, 16000
    t = np.arange(sr // 2) / sr
    inside = np.sin(2 * np.pi * 0.6 * new / 2 * t)  # 4.8 kHz
    above = np.sin(2 * np.pi * 1.1 * new / 2 * t)  # 8.8 kHz: folds to 7.2 kHz unless filtered
    out_in = audio.resample(torch.from_numpy(inside), sr, new).numpy()[400:-400]
    out_above = audio.resample(torch.from_numpy(above), sr, new).numpy()[400:-400]
    assert abs(np.sqrt(2 * np.mean(out_in**2)) - 1.0) < 1e-3
    assert 20 * np.log10(np.sqrt(2 * np.mean(out_above**2))) < -70.0
    const = audio.resample(torch.full((3000,), 0.25), 22050, 16000)
    torch.testing.assert_close(const[100:-100], torch.full_like(const[100:-100], 0.25), atol=1e-6, rtol=0)


def test_resample_batched_and_dtype():
    x = torch.from_numpy(noise(2, 3, 2205, seed=6))
    y = audio.resample(x, 22050, 16000)
    assert y.shape == (2, 3, 1600) and y.dtype == torch.float32
    torch.testing.assert_close(y[1, 2], audio.resample(x[1, 2], 22050, 16000), atol=1e-6, rtol=0)
    assert audio.resample(x.double(), 22050, 16000).dtype == torch.float64
    assert audio.resample(x, 16000, 16000) is x
    with pytest.raises(ValueError, match="positive"):
        audio.resample(x, 0, 16000)


# ------------------------------------------------------------------------------ inverse STFT, Griffin-Lim


@pytest.mark.parametrize("dtype, atol", [(np.float64, 1e-10), (np.float32, 1e-5)])
@pytest.mark.parametrize("length", [None, 2500, 3000])
@pytest.mark.parametrize("n_fft, hop, win_length, center", [(512, 128, None, True), (256, 64, 200, False)])
def test_istft_matches_librosa(dtype, atol, length, n_fft, hop, win_length, center):
    x = noise(2, 3000, seed=7, dtype=dtype)
    spec = librosa.stft(x, n_fft=n_fft, hop_length=hop, win_length=win_length, center=center)
    ours = audio.istft(torch.from_numpy(spec), n_fft, hop, win_length, center=center, length=length)
    ref = librosa.istft(
        spec, n_fft=n_fft, hop_length=hop, win_length=win_length, center=center, length=length
    )
    assert ours.shape == ref.shape
    # Without centring, the first and last samples have a window sum near 0; dividing by it magnifies float32
    # rounding (in both implementations), so there float32 is compared only inside.
    inside = slice(n_fft // 2, -n_fft // 2) if dtype == np.float32 and not center else slice(None)
    np.testing.assert_allclose(ours.numpy()[..., inside], ref[..., inside], atol=atol)


def test_istft_inverts_stft():
    x = torch.from_numpy(noise(2, 4000, seed=8))
    y = audio.istft(audio.stft(x, 400, 100), 400, 100, length=4000)
    torch.testing.assert_close(y, x, atol=1e-5, rtol=0)


@pytest.mark.parametrize("dtype, atol", [(np.float64, 1e-8), (np.float32, 2e-3)])
@pytest.mark.parametrize("length", [None, 2000])
def test_griffin_lim_matches_librosa(dtype, atol, length):
    x = noise(2, 2000, seed=9, dtype=dtype)
    mag = np.abs(librosa.stft(x, n_fft=256, hop_length=64))
    ours = audio.griffin_lim(torch.from_numpy(mag), 256, 64, n_iter=16, momentum=0.99, length=length)
    ref = librosa.griffinlim(
        mag, n_iter=16, hop_length=64, n_fft=256, momentum=0.99, init=None, length=length
    )
    assert ours.shape == ref.shape
    np.testing.assert_allclose(ours.numpy(), ref, atol=atol)


def test_griffin_lim_random_init_is_seeded_and_converges():
    x = torch.from_numpy(noise(3000, seed=10))
    mag = audio.spectrogram(x, 256, 64)
    a = audio.griffin_lim(mag, 256, 64, n_iter=4, init="random", seed=1)
    torch.testing.assert_close(a, audio.griffin_lim(mag, 256, 64, n_iter=4, init="random", seed=1))
    assert not torch.allclose(a, audio.griffin_lim(mag, 256, 64, n_iter=4, init="random", seed=2))

    def spectral_error(n_iter):
        y = audio.griffin_lim(mag, 256, 64, n_iter=n_iter, init="random", seed=0)
        return float((audio.spectrogram(y, 256, 64) - mag).norm() / mag.norm())

    assert spectral_error(30) < 0.7 * spectral_error(1)
    with pytest.raises(ValueError, match="momentum"):
        audio.griffin_lim(mag, 256, 64, momentum=-0.1)


# --------------------------------------------------------------------------------------- level, silence


def test_trim_silence_matches_librosa():
    rng = np.random.default_rng(11)
    y = np.concatenate([np.zeros(3000), rng.standard_normal(5000) * 0.5, 1e-4 * rng.standard_normal(4000)])
    y = y.astype(np.float32)
    for top_db, frame, hop in [(40, 512, 128), (60, 2048, 512), (20, 400, 160)]:
        _, (start, end) = librosa.effects.trim(y, top_db=top_db, frame_length=frame, hop_length=hop)
        trimmed, index = audio.trim_silence(torch.from_numpy(y), top_db, frame, hop)
        assert index == (start, end)
        assert torch.equal(trimmed, torch.from_numpy(y[start:end]))
    stereo = np.stack([y, np.roll(y, 2000)])
    _, expected = librosa.effects.trim(stereo, top_db=40, frame_length=512, hop_length=128)
    trimmed, index = audio.trim_silence(torch.from_numpy(stereo), 40, 512, 128)
    assert index == tuple(expected) and trimmed.shape == (2, expected[1] - expected[0])
    assert audio.trim_silence(torch.zeros(1000), 40, 256, 64)[1] == (0, 1000)  # nothing louder than silence


def test_peak_and_loudness_normalize():
    x = torch.from_numpy(noise(2, 4000, seed=12)) * torch.tensor([[0.1], [2.0]])
    peaked = audio.peak_normalize(x, 0.9)
    torch.testing.assert_close(peaked.abs().amax(dim=-1), torch.tensor([0.9, 0.9]))
    loud = audio.loudness_normalize(x, -20.0)
    rms_db = 20 * torch.log10(loud.square().mean(dim=-1).sqrt())
    torch.testing.assert_close(rms_db, torch.tensor([-20.0, -20.0]))
    silent = torch.zeros(2, 100)
    assert torch.equal(audio.peak_normalize(silent), silent)
    assert torch.equal(audio.loudness_normalize(silent), silent)


# ------------------------------------------------------------------------------------------------- I/O


def test_write_read_round_trip(tmp_path):
    x = noise(2, 1600, seed=13)
    x[0, :10] = 1.5  # clipped on write
    path = tmp_path / "a.wav"
    audio.write_wav(path, torch.from_numpy(x), 16000)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.wav"]  # no temp file left behind
    assert audio.audio_info(path) == (1600, 16000, 2)
    stereo, sr = audio.read_wav(path, mono=False)
    assert sr == 16000 and stereo.shape == (2, 1600) and stereo.dtype == torch.float32
    clipped = np.clip(x, -1.0, 1.0)
    np.testing.assert_allclose(stereo.numpy(), clipped, atol=1.0 / 32768 + 1e-7)
    mono, _ = audio.read_wav(path)
    torch.testing.assert_close(mono, stereo.mean(dim=0))
    resampled, sr = audio.read_wav(path, sr=8000)
    assert sr == 8000 and resampled.shape == (800,)

    audio.write_wav(tmp_path / "b.wav", clipped[1], 22050, subtype="FLOAT")  # numpy (T,) input
    back, sr = audio.read_wav(tmp_path / "b.wav")
    assert sr == 22050 and np.array_equal(back.numpy(), clipped[1])
    assert soundfile.info(str(tmp_path / "b.wav")).format == "WAV"
    audio.write_wav(tmp_path / "c.flac", clipped[1], 16000)
    assert soundfile.info(str(tmp_path / "c.flac")).format == "FLAC"


def test_failed_write_keeps_old_file(tmp_path):
    path = tmp_path / "a.wav"
    audio.write_wav(path, np.zeros(100, np.float32), 16000)
    with pytest.raises(Exception, match="(?i)format|subtype"):
        audio.write_wav(path, np.ones(50, np.float32), 16000, subtype="NOT_A_SUBTYPE")
    assert audio.audio_info(path) == (100, 16000, 1)
    assert [p.name for p in tmp_path.iterdir()] == ["a.wav"]


def _bad_files(tmp_path):
    (tmp_path / "text.wav").write_text("these are not samples\n" * 20)
    (tmp_path / "zero.wav").write_bytes(b"")
    soundfile.write(str(tmp_path / "empty.wav"), np.zeros((0, 1), np.float32), 16000)
    return {
        "missing.wav": "not found",
        "text.wav": "not a readable audio file",
        "zero.wav": "not a readable audio file",
        "empty.wav": "no samples",
    }


@pytest.mark.parametrize("reader", [audio.read_wav, audio.audio_info])
def test_unreadable_files_raise_one_line_user_errors(tmp_path, reader):
    for name, reason in _bad_files(tmp_path).items():
        path = tmp_path / name
        with pytest.raises(UserError) as err:
            reader(path)
        message = str(err.value)
        assert message.startswith(f"{path}: ") and reason in message and "\n" not in message
    with pytest.raises(UserError, match="directory"):
        reader(tmp_path)
