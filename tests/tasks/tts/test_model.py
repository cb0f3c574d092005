"""Tacotron2 and WaveGlow: NVIDIA's key layout, the attention formula, batching, invertibility, features."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from aics.tasks.tts.data import mel_spectrogram
from aics.tasks.tts.model import Attention, Tacotron2, Tacotron2Config
from aics.tasks.tts.vocoder import Denoiser, griffin_lim_vocoder
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
    max_decoder_steps=40,
)


# ------------------------------------------------------------------------------------------ key layout
def nvidia_tacotron2_keys() -> dict[str, tuple[int, ...]]:
    """NVIDIA's Tacotron2 state_dict for the published hyper-parameters, written out from the architecture."""
    k: dict[str, tuple[int, ...]] = {"embedding.weight": (148, 512)}
    bn = {
        "weight": (512,),
        "bias": (512,),
        "running_mean": (512,),
        "running_var": (512,),
        "num_batches_tracked": (),
    }
    for i in range(3):
        k[f"encoder.convolutions.{i}.0.conv.weight"] = (512, 512, 5)
        k[f"encoder.convolutions.{i}.0.conv.bias"] = (512,)
        k.update({f"encoder.convolutions.{i}.1.{n}": s for n, s in bn.items()})
    for d in ("", "_reverse"):
        k |= {
            f"encoder.lstm.weight_ih_l0{d}": (1024, 512),
            f"encoder.lstm.weight_hh_l0{d}": (1024, 256),
            f"encoder.lstm.bias_ih_l0{d}": (1024,),
            f"encoder.lstm.bias_hh_l0{d}": (1024,),
        }
    k["decoder.prenet.layers.0.linear_layer.weight"] = (256, 80)
    k["decoder.prenet.layers.1.linear_layer.weight"] = (256, 256)
    for rnn, n_in in (("attention_rnn", 768), ("decoder_rnn", 1536)):
        k |= {
            f"decoder.{rnn}.weight_ih": (4096, n_in),
            f"decoder.{rnn}.weight_hh": (4096, 1024),
            f"decoder.{rnn}.bias_ih": (4096,),
            f"decoder.{rnn}.bias_hh": (4096,),
        }
    a = "decoder.attention_layer."
    k |= {
        a + "query_layer.linear_layer.weight": (128, 1024),
        a + "memory_layer.linear_layer.weight": (128, 512),
        a + "v.linear_layer.weight": (1, 128),
        a + "location_layer.location_conv.conv.weight": (32, 2, 31),
        a + "location_layer.location_dense.linear_layer.weight": (128, 32),
    }
    k |= {
        "decoder.linear_projection.linear_layer.weight": (80, 1536),
        "decoder.linear_projection.linear_layer.bias": (80,),
        "decoder.gate_layer.linear_layer.weight": (1, 1536),
        "decoder.gate_layer.linear_layer.bias": (1,),
    }
    for i, (n_in, n_out) in enumerate([(80, 512), (512, 512), (512, 512), (512, 512), (512, 80)]):
        k[f"postnet.convolutions.{i}.0.conv.weight"] = (n_out, n_in, 5)
        k[f"postnet.convolutions.{i}.0.conv.bias"] = (n_out,)
        k.update({f"postnet.convolutions.{i}.1.{n}": (n_out,) if s else () for n, s in bn.items()})
    return k


def nvidia_waveglow_keys(c: int) -> dict[str, tuple[int, ...]]:
    """NVIDIA's WaveGlow state_dict (12 flows, groups of 8, 2 early channels every 4 flows, WN of 8 layers
    with ``c`` channels and per-layer conditioning), weight norm as weight_g / weight_v."""
    k: dict[str, tuple[int, ...]] = {"upsample.weight": (80, 80, 1024), "upsample.bias": (80,)}

    def wn(name, n_out, n_in, kernel):
        k.update(
            {
                f"{name}.bias": (n_out,),
                f"{name}.weight_g": (n_out, 1, 1),
                f"{name}.weight_v": (n_out, n_in, kernel),
            }
        )

    for f in range(12):
        n_remaining = 8 - 2 * (f // 4)
        n_half = n_remaining // 2
        for i in range(8):
            wn(f"WN.{f}.in_layers.{i}", 2 * c, c, 3)
            wn(f"WN.{f}.res_skip_layers.{i}", 2 * c if i < 7 else c, c, 1)
            wn(f"WN.{f}.cond_layers.{i}", 2 * c, 640, 1)
        wn(f"WN.{f}.start", c, n_half, 1)
        k[f"WN.{f}.end.weight"] = (2 * n_half, c, 1)
        k[f"WN.{f}.end.bias"] = (2 * n_half,)
        k[f"convinv.{f}.conv.weight"] = (n_remaining, n_remaining, 1)
    return k


def shapes(module: torch.nn.Module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


def test_tacotron2_state_dict_is_nvidias_layout():
    model = Tacotron2()
    assert shapes(model) == nvidia_tacotron2_keys()
    n = sum(p.numel() for p in model.parameters())
    assert n == 28_193_153


@pytest.mark.parametrize("channels", [16, 256])
def test_waveglow_state_dict_is_nvidias_layout(channels):
    model = WaveGlow(WaveGlowConfig(WN_config=WNConfig(n_channels=channels)))
    assert shapes(model) == nvidia_waveglow_keys(channels)
    assert len(model.state_dict()) == 938


# ------------------------------------------------------------------------------------------ attention
def test_attention_energies_and_weights_equal_the_formula_by_hand():
    torch.manual_seed(0)
    rnn, emb, dim, filters, kernel = 6, 5, 4, 3, 3
    att = Attention(rnn, emb, dim, filters, kernel)
    b, n = 2, 7
    query, memory = torch.randn(b, rnn), torch.randn(b, n, emb)
    prev = torch.softmax(torch.randn(b, n), 1)
    cum = prev + torch.softmax(torch.randn(b, n), 1)
    W = att.query_layer.linear_layer.weight  # (dim, rnn)
    V = att.memory_layer.linear_layer.weight  # (dim, emb)
    Fw = att.location_layer.location_conv.conv.weight  # (filters, 2, kernel)
    U = att.location_layer.location_dense.linear_layer.weight  # (dim, filters)
    v = att.v.linear_layer.weight[0]  # (dim,)
    lengths = [7, 4]
    expected_e = torch.zeros(b, n)
    for bi in range(b):
        for i in range(n):
            loc = torch.zeros(filters)  # F * [prev, cum] at position i, zero outside the sequence
            for f in range(filters):
                for c, a in enumerate((prev, cum)):
                    for j in range(kernel):
                        pos = i + j - kernel // 2
                        if 0 <= pos < n:
                            loc[f] += Fw[f, c, j] * a[bi, pos]
            expected_e[bi, i] = v @ torch.tanh(W @ query[bi] + V @ memory[bi, i] + U @ loc)
    processed = att.memory_layer(memory)
    cat = torch.stack([prev, cum], 1)
    e = att.energies(query, processed, cat)
    torch.testing.assert_close(e, expected_e, atol=1e-5, rtol=1e-5)
    mask = torch.arange(n)[None] < torch.tensor(lengths)[:, None]
    context, weights = att(query, memory, processed, cat, mask)
    for bi, length in enumerate(lengths):
        w = torch.softmax(expected_e[bi, :length], 0)  # the padded positions take no weight at all
        torch.testing.assert_close(weights[bi, :length], w, atol=1e-6, rtol=1e-5)
        assert not weights[bi, length:].any()
        torch.testing.assert_close(context[bi], w @ memory[bi, :length], atol=1e-6, rtol=1e-5)


def test_decoder_step_keeps_previous_and_cumulative_weights():
    torch.manual_seed(1)
    model = Tacotron2(SMALL).eval()
    dec = model.decoder
    memory = torch.randn(1, 6, SMALL.encoder_embedding_dim)
    processed = dec.attention_layer.memory_layer(memory)
    s = dec.initial_state(memory)
    seen = []
    with torch.no_grad():
        for _ in range(3):
            before = s["weights"].clone()
            frame, gate = dec.step(torch.randn(1, SMALL.prenet_dim), memory, processed, None, s)
            assert frame.shape == (1, 80) and gate.shape == (1,)
            assert not torch.equal(s["weights"], before)
            seen.append(s["weights"].clone())
            torch.testing.assert_close(s["weights_cum"], torch.stack(seen).sum(0))
            torch.testing.assert_close(s["weights"].sum(), torch.tensor(1.0))


# ------------------------------------------------------------------------------------------ inference
def never_stop(model: Tacotron2, items_stop_at: bool = False) -> Tacotron2:
    """Gate bias so negative that the decoder runs to its step limit."""
    with torch.no_grad():
        model.decoder.gate_layer.linear_layer.bias.fill_(-1e4)
    return model


def test_batched_inference_equals_one_text_at_a_time():
    torch.manual_seed(2)
    model = Tacotron2(SMALL).eval()
    model.decoder.prenet.dropout = False  # the only randomness
    texts = [torch.randint(1, 148, (n,)) for n in (9, 4, 13)]
    lengths = torch.tensor([len(t) for t in texts])
    batch = torch.zeros(3, 13, dtype=torch.long)
    for i, t in enumerate(texts):
        batch[i, : len(t)] = t
    mel, mel_lengths, align = model.infer(batch, lengths, max_steps=25)
    assert mel.shape[:2] == (3, 80) and align.shape[0] == 3 and align.shape[2] == 13
    for i, t in enumerate(texts):
        one, one_len, one_align = model.infer(t[None], lengths[i : i + 1], max_steps=25)
        n = int(one_len)
        assert int(mel_lengths[i]) == n
        torch.testing.assert_close(mel[i, :, :n], one[0, :, :n], atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(align[i, :n, : len(t)], one_align[0, :n], atol=1e-5, rtol=1e-4)
        assert not mel[i, :, n:].any() and not align[i, :, len(t) :].any()


@pytest.mark.parametrize("batch", [1, 3])
def test_the_fast_cpu_step_gives_the_reference_step_numbers(monkeypatch, batch):
    torch.manual_seed(8)
    model = never_stop(Tacotron2(SMALL).eval())
    model.decoder.prenet.dropout = False
    built = []
    real = type(model.decoder).cpu_step
    monkeypatch.setattr(type(model.decoder), "cpu_step", lambda self, b: built.append(b) or real(self, b))
    text, lengths = torch.randint(1, 148, (batch, 11)), torch.tensor([11, 7, 9][:batch])
    with pytest.warns(UserWarning):
        ref = model.infer(text, lengths, max_steps=30, fast=False)
    with pytest.warns(UserWarning):
        fast = model.infer(text, lengths, max_steps=30, fast=True)
    assert built == [batch], "fast=True used cpu_step, fast=False did not"
    for a, b in zip(ref, fast, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("broken", [False, True])
def test_cpu_linear_equals_f_linear_and_falls_back_without_onednn(monkeypatch, broken):
    from aics.tasks.tts import model as tacotron2

    if broken:  # a torch build without the packed oneDNN ops

        def missing(*args):
            raise RuntimeError("no mkldnn")

        monkeypatch.setattr(torch.ops.mkldnn, "_reorder_linear_weight", missing, raising=False)
    torch.manual_seed(2)
    w, b = torch.randn(64, 48), torch.randn(64)
    for batch in (1, 5):
        x = torch.randn(batch, 48)
        got = tacotron2.cpu_linear(w, b, batch)(x)
        torch.testing.assert_close(got, F.linear(x, w, b), atol=1e-5, rtol=1e-5)


def test_inference_stops_on_the_gate_and_warns_at_the_step_limit():
    torch.manual_seed(3)
    model = never_stop(Tacotron2(SMALL).eval())
    text = torch.randint(1, 148, (1, 5))
    with pytest.warns(UserWarning, match="limit of 12 decoder steps"):
        mel, lengths, _ = model.infer(text, torch.tensor([5]), max_steps=12)
    assert mel.shape[2] == 12 and lengths.tolist() == [12]
    with torch.no_grad():
        model.decoder.gate_layer.linear_layer.bias.fill_(1e4)  # fires at once
    mel, lengths, _ = model.infer(text, torch.tensor([5]), max_steps=12)
    assert lengths.tolist() == [1] and mel.shape[2] == 1


def test_prenet_dropout_stays_on_and_is_seeded():
    torch.manual_seed(4)
    model = never_stop(Tacotron2(SMALL).eval())
    text, n = torch.randint(1, 148, (1, 6)), torch.tensor([6])

    def run(seed):
        with pytest.warns(UserWarning):
            return model.infer(text, n, max_steps=6, generator=torch.Generator().manual_seed(seed))[0]

    assert torch.equal(run(0), run(0)) and not torch.allclose(run(0), run(1))


def test_teacher_forced_forward_shapes_and_masking():
    torch.manual_seed(5)
    model = Tacotron2(SMALL)
    text = torch.randint(1, 148, (2, 7))
    mels = torch.randn(2, 80, 11)
    mel, post, gate, align = model(text, torch.tensor([7, 5]), mels, torch.tensor([11, 8]))
    assert mel.shape == post.shape == (2, 80, 11) and gate.shape == (2, 11) and align.shape == (2, 11, 7)
    assert not align[1, :, 5:].any(), "no attention on padded text"
    (mel.sum() + post.sum() + gate.sum()).backward()
    assert model.embedding.weight.grad is not None


# ------------------------------------------------------------------------------------------ WaveGlow
def test_waveglow_inverse_reconstructs_the_audio():
    torch.manual_seed(6)
    wg = WaveGlow(WaveGlowConfig(WN_config=WNConfig(n_channels=16, n_layers=3))).eval()
    with torch.no_grad():  # the end convs start at zero (identity couplings): make them do something
        for wn in wg.WN:
            wn.end.weight.normal_(0, 0.05)
            wn.end.bias.normal_(0, 0.05)
    mel, audio = torch.randn(2, 80, 5), torch.randn(2, 5 * 256) * 0.3
    with torch.no_grad():
        z, log_s, log_det = wg(mel, audio)
        assert z.shape == audio.shape and torch.isfinite(log_s) and torch.isfinite(log_det)
        assert (z - audio).abs().max() > 0.1, "the flow changed the signal"
        back = wg.infer(mel, noise=z.view(2, -1, 8).transpose(1, 2))
        assert (back - audio).abs().max() < 1e-4
        wg.remove_weightnorm()
        assert (wg.infer(mel, noise=z.view(2, -1, 8).transpose(1, 2)) - back).abs().max() < 1e-5
        a = wg.infer(mel, sigma=0.6, generator=torch.Generator().manual_seed(0))
        assert a.shape == (2, 5 * 256)
        assert torch.equal(a, wg.infer(mel, sigma=0.6, generator=torch.Generator().manual_seed(0)))


def test_the_cached_inverse_follows_weights_loaded_in_place():
    torch.manual_seed(9)
    a, b = (WaveGlow(WaveGlowConfig(WN_config=WNConfig(n_channels=8, n_layers=2))).eval() for _ in range(2))
    mel, z = torch.randn(1, 80, 2), torch.randn(1, 8, 64)
    with torch.no_grad():
        a.infer(mel, noise=z)  # caches a's inverses
        a.load_state_dict(b.state_dict())
        torch.testing.assert_close(a.infer(mel, noise=z), b.infer(mel, noise=z))


def test_denoiser_removes_the_bias_spectrum():
    torch.manual_seed(7)
    wg = WaveGlow(WaveGlowConfig(WN_config=WNConfig(n_channels=8, n_layers=2))).eval()
    den = Denoiser(wg)
    assert den.bias.shape == (1, 513, 1)
    x = torch.randn(1, 22050) * 0.1
    torch.testing.assert_close(den(x, strength=0.0), x, atol=1e-5, rtol=0)
    quieter = den(x, strength=1.0)
    assert quieter.shape == x.shape and quieter.square().sum() <= x.square().sum()


# ------------------------------------------------------------------------------------------ features
def test_mel_features_equal_nvidias_recipe_with_librosa():
    librosa = pytest.importorskip("librosa")
    rng = np.random.default_rng(0)
    wav = (rng.standard_normal(22050) * 0.1).astype(np.float32)
    spec = np.abs(
        librosa.stft(
            wav, n_fft=1024, hop_length=256, win_length=1024, window="hann", center=True, pad_mode="reflect"
        )
    )
    basis = librosa.filters.mel(sr=22050, n_fft=1024, n_mels=80, fmin=0.0, fmax=8000.0)
    expected = np.log(np.clip(basis @ spec, 1e-5, None))
    ours = mel_spectrogram(torch.from_numpy(wav))
    assert ours.shape == expected.shape == (80, 22050 // 256 + 1)
    np.testing.assert_allclose(ours.numpy(), expected, atol=2e-4, rtol=1e-4)
    batch = mel_spectrogram(torch.from_numpy(np.stack([wav, wav[::-1].copy()])))
    torch.testing.assert_close(batch[0], ours)


def test_griffin_lim_gives_back_the_mel_of_a_known_signal():
    t = torch.arange(22050) / 22050
    wav = 0.3 * torch.sin(2 * math.pi * 220 * t) + 0.2 * torch.sin(2 * math.pi * 660 * t * (1 + 0.2 * t))
    mel = mel_spectrogram(wav)
    loud = mel > mel.max() - 6  # bands within 6 nats of the peak: where the signal is

    def error(n_iter: int) -> float:
        back = griffin_lim_vocoder(mel[None], n_iter=n_iter)[0]
        assert back.shape == (mel.shape[1] * 256,)
        return float((mel_spectrogram(back[: wav.numel()]) - mel)[loud].abs().mean())

    first, last = error(1), error(60)
    assert last < 0.6 and last < 0.6 * first, f"mean log-mel error {first:.3f} -> {last:.3f} on the loud bins"
    noise = mel_spectrogram(torch.randn(22050) * 0.1)
    assert float((noise - mel)[loud].abs().mean()) > 3 * last, "a wrong signal is much further off"


@pytest.mark.parametrize("r", [1, 3])
def test_teacher_forcing_on_the_decoders_own_frames_reproduces_them(r):
    """Fed its own free-running frames as targets, the teacher-forced decoder must give those frames again:
    checks that step t reads the last frame of step t - 1 and how r frames per step are laid out."""
    from dataclasses import replace

    torch.manual_seed(5)
    model = never_stop(Tacotron2(replace(SMALL, n_frames_per_step=r)).eval())
    model.decoder.prenet.dropout = False
    text, lengths = torch.randint(1, 148, (2, 9)), torch.tensor([9, 6])
    memory = model.encode(text, lengths)
    with torch.no_grad():
        frames, frame_counts, align, truncated = model.decoder.infer(memory, lengths, max_steps=7, fast=False)
        assert truncated and frames.shape == (2, 80, 7 * r) and frame_counts.tolist() == [7 * r] * 2
        assert align.shape == (2, 7, 9)
        fast = model.decoder.infer(memory, lengths, max_steps=7, fast=True)[0]
        torch.testing.assert_close(fast, frames, atol=1e-5, rtol=1e-4)
        for cut in (7 * r, 7 * r - 1):  # a target length that is not a multiple of r is padded inside
            steps = -(-cut // r)
            forced, gates, forced_align = model.decoder(memory, lengths, frames[:, :, :cut])
            assert (
                forced.shape == (2, 80, cut)
                and gates.shape == (2, steps)
                and forced_align.shape == (2, steps, 9)
            )
            torch.testing.assert_close(forced, frames[:, :, :cut], atol=1e-5, rtol=1e-4)
            torch.testing.assert_close(forced_align, align[:, :steps], atol=1e-6, rtol=1e-4)
