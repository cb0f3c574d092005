"""Synthesis scores: Kubichek's MCD constant by hand and as an RMS dB distance, the warped cepstrum against
its definition, exact DTW against brute force and a textbook DP, MCD-DTW on speech-like signals, and attention
health on hand-made alignments."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from aics.tasks.tts.metrics import (
    MCD_SCALE,
    attention_health,
    attention_summary,
    dtw_from_cost,
    dtw_path,
    mcd,
    mcd_dtw,
    mel_alpha,
    mel_cepstrum,
    mel_cepstrum_from_power,
)

SR = 22050

# ---- the distance constant ----


def test_mcd_scale_by_hand():
    assert math.isclose(MCD_SCALE, 6.141851463713754, abs_tol=1e-15)  # 10 / ln 10 * sqrt 2


def test_mcd_by_hand():
    # c0 (first column) is left out unless asked for
    assert mcd([[9.0, 1.0, 0.0]], [[0.0, 0.0, 0.0]]) == pytest.approx(6.141851463713754)
    assert mcd([[9.0, 1.0, 0.0]], [[0.0, 0.0, 0.0]], include_c0=True) == pytest.approx(
        10.0 / math.log(10.0) * math.sqrt(2.0 * 82.0)
    )
    # two frames at distance 5 (3-4-5) and 0: the mean is 2.5 * MCD_SCALE
    c1 = np.array([[1.0, 3.0, 4.0], [2.0, 0.5, 0.5]])
    c2 = np.array([[7.0, 0.0, 0.0], [2.0, 0.5, 0.5]])
    assert mcd(c1, c2) == pytest.approx(2.5 * 6.141851463713754)
    assert mcd(torch.tensor(c1), torch.tensor(c2, dtype=torch.float32)) == pytest.approx(mcd(c1, c2))
    assert mcd(c1, c1) == 0.0
    with pytest.raises(ValueError, match="equal shapes"):
        mcd(c1, c2[:1])


def _log_amplitude(c: np.ndarray, warped: np.ndarray) -> np.ndarray:
    """ln|X| = sum_m c_m cos(m w~) at the warped frequencies ``warped``."""
    return np.cos(np.outer(warped, np.arange(len(c)))) @ c


def test_mcd_is_the_rms_db_distance_of_the_log_spectra():
    # Kubichek: the frame MCD is the RMS difference of the two spectra in dB over (warped) frequency, once
    # each spectrum's mean level (c0) is removed
    rng = np.random.default_rng(0)
    c1, c2 = rng.normal(scale=0.3, size=(2, 25))
    grid = (np.arange(200_000) + 0.5) * np.pi / 200_000
    diff_db = 20.0 / math.log(10.0) * (_log_amplitude(c1, grid) - _log_amplitude(c2, grid))
    rms = math.sqrt(np.mean(np.square(diff_db - diff_db.mean())))
    assert mcd(c1[None], c2[None]) == pytest.approx(rms, rel=1e-6)


# ---- mel cepstra ----


def _bins(n_fft: int) -> np.ndarray:
    return 2.0 * np.pi * np.arange(n_fft // 2 + 1) / n_fft


def test_cepstrum_without_warping_is_the_real_cepstrum():
    rng = np.random.default_rng(1)
    c = rng.normal(scale=0.5, size=(3, 11))  # (T, D + 1)
    power = np.exp(2.0 * np.cos(np.outer(_bins(512), np.arange(11))) @ c.T).T  # |X|^2, (T, F)
    np.testing.assert_allclose(mel_cepstrum_from_power(power, order=10, alpha=0.0), c, atol=1e-12)
    # a higher order only appends zeros
    padded = mel_cepstrum_from_power(power, order=14, alpha=0.0)
    np.testing.assert_allclose(padded[:, 11:], 0.0, atol=1e-12)


def test_warping_two_coefficients_by_hand():
    # ln|X| = a0 + a1 cos w; with z^-1 = (alpha + z~^-1) / (1 + alpha z~^-1) the warped series begins
    # a0 + alpha a1, (1 - alpha^2) a1, -alpha (1 - alpha^2) a1, alpha^2 (1 - alpha^2) a1
    a0, a1, alpha = 0.7, -1.3, 0.455
    power = np.exp(2.0 * (a0 + a1 * np.cos(_bins(1024))))[None]
    b = 1.0 - alpha * alpha
    expected = [a0 + alpha * a1, b * a1, -alpha * b * a1, alpha * alpha * b * a1]
    np.testing.assert_allclose(mel_cepstrum_from_power(power, order=3, alpha=alpha)[0], expected, atol=1e-12)


def test_mel_cepstrum_is_the_cosine_series_in_warped_frequency():
    alpha = 0.455
    rng = np.random.default_rng(2)
    c = rng.normal(scale=0.3, size=25) / (1.0 + np.arange(25))
    w = _bins(2048)
    warped = w + 2.0 * np.arctan2(alpha * np.sin(w), 1.0 - alpha * np.cos(w))
    power = np.exp(2.0 * _log_amplitude(c, warped))[None]
    np.testing.assert_allclose(mel_cepstrum_from_power(power, order=24, alpha=alpha)[0], c, atol=1e-9)


def test_mel_alpha_values():
    # the values pysptk.util.mcepalpha gives
    assert mel_alpha(16000) == 0.41
    assert mel_alpha(22050) == 0.455
    assert mel_alpha(24000) == 0.466
    assert mel_alpha(44100) == 0.544
    assert mel_alpha(48000) == 0.554


def test_mel_cepstrum_shape_and_level_invariance():
    x = _speechlike(0.3, AIU)
    c = mel_cepstrum(x, SR)
    assert c.shape == (1 + len(x) // 256, 25)
    assert mel_cepstrum(x, SR, order=12, n_fft=512, hop_length=128).shape == (1 + len(x) // 128, 13)
    # a gain moves c0 by ln(gain) and nothing else (the floor is relative to the loudest bin)
    quiet = mel_cepstrum(0.1 * x, SR)
    np.testing.assert_allclose(quiet[:, 1:], c[:, 1:], atol=1e-9)
    np.testing.assert_allclose(quiet[:, 0] - c[:, 0], math.log(0.1), atol=1e-9)
    np.testing.assert_allclose(mel_cepstrum(torch.from_numpy(x).float(), SR), c, atol=1e-5)
    with pytest.raises(ValueError, match="no samples"):
        mel_cepstrum(np.zeros(0), SR)
    with pytest.raises(ValueError, match="1 dimension"):
        mel_cepstrum(np.zeros((2, 100)), SR)


# ---- DTW ----


def _all_paths(t1: int, t2: int):
    """Every monotone path from (0, 0) to (t1 - 1, t2 - 1) by steps (1, 0), (0, 1), (1, 1)."""

    def extend(path):
        i, j = path[-1]
        if (i, j) == (t1 - 1, t2 - 1):
            yield path
            return
        for di, dj in ((1, 0), (0, 1), (1, 1)):
            if i + di < t1 and j + dj < t2:
                yield from extend([*path, (i + di, j + dj)])

    yield from extend([(0, 0)])


@pytest.mark.parametrize("shape", [(1, 1), (1, 4), (3, 1), (2, 3), (3, 3), (4, 5), (5, 4), (5, 5)])
def test_dtw_equals_brute_force(shape):
    rng = np.random.default_rng(sum(shape))
    for _ in range(5):
        cost = rng.random(shape)
        best_cost, best_path = min(
            (sum(cost[i, j] for i, j in p), p) for p in _all_paths(*shape)
        )  # random costs: the optimum is unique
        path, total = dtw_from_cost(cost)
        assert total == pytest.approx(best_cost, rel=1e-12)
        assert [tuple(p) for p in path.tolist()] == best_path


def _textbook_dtw(cost: np.ndarray) -> float:
    t1, t2 = cost.shape
    acc = np.full((t1 + 1, t2 + 1), np.inf)
    acc[0, 0] = 0.0
    for i, j in itertools.product(range(t1), range(t2)):
        acc[i + 1, j + 1] = cost[i, j] + min(acc[i, j], acc[i, j + 1], acc[i + 1, j])
    return float(acc[t1, t2])


def _check_path(path: np.ndarray, t1: int, t2: int) -> None:
    assert tuple(path[0]) == (0, 0) and tuple(path[-1]) == (t1 - 1, t2 - 1)
    steps = {tuple(s) for s in np.diff(path, axis=0).tolist()}
    assert steps <= {(1, 0), (0, 1), (1, 1)}


def test_dtw_equals_a_textbook_dp_on_random_features():
    rng = np.random.default_rng(3)
    for t1, t2, dim in ((30, 45, 24), (50, 20, 3), (1, 17, 5), (17, 1, 5)):
        a, b = rng.normal(size=(t1, dim)), rng.normal(size=(t2, dim))
        path, total = dtw_path(a, b)
        distances = np.linalg.norm(a[:, None] - b[None], axis=-1)
        assert total == pytest.approx(_textbook_dtw(distances), rel=1e-10)
        _check_path(path, t1, t2)
        assert total == pytest.approx(distances[path[:, 0], path[:, 1]].sum(), rel=1e-12)
        torch_path, torch_total = dtw_path(torch.from_numpy(a), torch.from_numpy(b))
        np.testing.assert_array_equal(torch_path, path)
        assert torch_total == total


def test_dtw_of_repeated_frames_costs_nothing():
    rng = np.random.default_rng(4)
    a = rng.normal(size=(5, 4))
    path, total = dtw_path(a, a)
    assert total == 0.0
    np.testing.assert_array_equal(path, np.stack([np.arange(5)] * 2, axis=1))
    repeats = [0, 0, 1, 2, 2, 2, 3, 4]
    path, total = dtw_path(a, a[repeats])
    assert total == 0.0
    np.testing.assert_array_equal(path, np.stack([repeats, np.arange(8)], axis=1))


def test_dtw_ties_prefer_the_diagonal():
    path, total = dtw_from_cost(np.zeros((3, 3)))
    assert total == 0.0 and path.tolist() == [[0, 0], [1, 1], [2, 2]]
    path, _ = dtw_from_cost(np.zeros((3, 2)))
    assert path.tolist() == [[0, 0], [1, 0], [2, 1]]


def test_dtw_rejects_bad_input():
    with pytest.raises(ValueError, match="dimensions"):
        dtw_path(np.zeros((3, 2)), np.zeros((3, 4)))
    with pytest.raises(ValueError, match="at least one frame"):
        dtw_path(np.zeros((0, 2)), np.zeros((3, 2)))


# ---- MCD-DTW on speech-like signals ----

AIU = [(730, 1090), (270, 2290), (300, 870), (530, 1840)]  # (F1, F2) targets: a, i, u, e
UOA = [(300, 870), (570, 840), (730, 1090), (270, 2290)]  # u, o, a, i


def _resonance(f, centre, bandwidth):
    return centre**2 / np.sqrt((centre**2 - f**2) ** 2 + (f * bandwidth) ** 2)


def _speechlike(seconds: float, targets, f0: float = 180.0, seed: int = 0) -> np.ndarray:
    """A vowel glide: harmonics of ``f0`` shaped by two formants moving through ``targets`` over the whole
    duration (so a longer one is a time-stretched copy), plus faint noise."""
    n = int(seconds * SR)
    u = np.linspace(0.0, 1.0, n)
    knots = np.linspace(0.0, 1.0, len(targets))
    f1 = np.interp(u, knots, [t[0] for t in targets])
    f2 = np.interp(u, knots, [t[1] for t in targets])
    fk = np.arange(1, int(SR / 2 / f0))[:, None] * f0  # (K, 1) harmonic frequencies
    amp = _resonance(fk, f1, 90.0) * _resonance(fk, f2, 120.0) / (1.0 + fk / 300.0)  # (K, n)
    x = (amp * np.sin(2.0 * np.pi * fk * np.arange(n) / SR)).sum(axis=0)
    return 0.5 * x / np.abs(x).max() + 1e-3 * np.random.default_rng(seed).normal(size=n)


@pytest.fixture(scope="module")
def glides():
    ref = _speechlike(0.6, AIU)
    return ref, _speechlike(0.75, AIU, seed=1), _speechlike(0.6, UOA, seed=2)


def test_mcd_dtw_orders_signals(glides):
    ref, stretched, other = glides
    assert mcd_dtw(ref, ref, SR) == 0.0
    close = mcd_dtw(stretched, ref, SR)
    far = mcd_dtw(other, ref, SR)
    assert 0.0 < close < 3.0
    assert far > 5.0 and far > 2.5 * close
    # DTW finds a better pairing than frame by frame
    cs, cr = mel_cepstrum(stretched, SR), mel_cepstrum(ref, SR)
    assert mcd(cs[: len(cr)], cr) > close + 1.0
    assert mcd_dtw(torch.from_numpy(stretched).float(), torch.from_numpy(ref).float(), SR) == pytest.approx(
        close, abs=1e-3
    )


def test_mcd_dtw_ignores_level_unless_c0_counts(glides):
    ref = glides[0]
    assert mcd_dtw(0.25 * ref, ref, SR) == pytest.approx(0.0, abs=1e-9)
    # every frame then differs by ln 4 in c0 alone
    assert mcd_dtw(0.25 * ref, ref, SR, include_c0=True) == pytest.approx(MCD_SCALE * math.log(4.0), rel=1e-9)


def test_mcd_dtw_trims_silence(glides):
    ref, stretched, _ = glides
    padded = np.concatenate([np.zeros(SR // 4), stretched, np.zeros(SR // 2)])
    close = mcd_dtw(stretched, ref, SR)
    assert mcd_dtw(padded, ref, SR) == pytest.approx(close, abs=0.5)
    assert mcd_dtw(padded, ref, SR, top_db=None) > close + 2.0


def test_mcd_dtw_rejects_empty_input(glides):
    with pytest.raises(ValueError, match="synth_wav has no samples"):
        mcd_dtw(np.zeros(0), glides[0], SR)


# ---- attention health ----


def _hard(positions, n: int) -> np.ndarray:
    """A one-hot alignment (steps, n) attending ``positions[t]`` at step t."""
    a = np.zeros((len(positions), n))
    a[np.arange(len(positions)), positions] = 1.0
    return a


def test_diagonal_attention_is_healthy():
    a = _hard(np.arange(20) // 2, 10)  # two steps per symbol
    h = attention_health(a)
    assert h == {
        "monotonic": True,
        "reaches_end": True,
        "focus_rate": 1.0,
        "first_step": 0,
        "largest_back": 0,
        "largest_forward": 1,
        "last_position": 9,
    }
    assert attention_health(torch.from_numpy(a).float()) == h


def test_focus_rate_is_the_mean_largest_weight():
    a = np.array([[0.5, 0.3, 0.2], [0.1, 0.8, 0.1], [0.0, 0.4, 0.6], [0.1, 0.2, 0.7]])
    h = attention_health(a)
    assert h["focus_rate"] == pytest.approx((0.5 + 0.8 + 0.6 + 0.7) / 4)
    assert h["monotonic"] and h["reaches_end"]


def test_stuck_attention_never_reaches_the_end():
    h = attention_health(_hard([1] * 30, 10))
    assert h["monotonic"] and not h["reaches_end"]
    assert h["last_position"] == 1


def test_backward_jumps():
    # one step back is tolerated by default, two are not
    assert attention_health(_hard([0, 1, 2, 3, 2, 3, 4, 5], 6))["monotonic"]
    h = attention_health(_hard([0, 1, 2, 3, 4, 2, 3, 4, 5], 6))
    assert not h["monotonic"] and h["largest_back"] == 2 and h["reaches_end"]
    assert attention_health(_hard([0, 1, 2, 3, 4, 2, 3, 4, 5], 6), max_back=2)["monotonic"]
    assert not attention_health(_hard([0, 1, 2, 3, 2, 3, 4, 5], 6), max_back=0)["monotonic"]


def test_steps_before_the_start_of_the_text_are_the_leading_silence():
    # a voice resting on a word boundary (position 5) through the leading silence, then reading from the start
    h = attention_health(_hard([5, 5, 5, 0, 1, 2, 3, 4, 5, 6, 7], 8))
    assert h["monotonic"] and h["first_step"] == 3 and h["largest_back"] == 0
    assert attention_health(_hard([5, 5, 2, 3, 4, 5, 6, 7], 8))["first_step"] == 2  # within start_slack
    assert not attention_health(_hard([5, 5, 2, 3, 4, 5, 6, 7], 8), start_slack=1)["monotonic"]
    # a jump back once it has started still counts
    h = attention_health(_hard([5, 0, 1, 2, 3, 0, 1, 2, 3, 4, 5, 6, 7], 8))
    assert not h["monotonic"] and h["first_step"] == 1 and h["largest_back"] == 3
    # never at the start: not monotonic, however smooth
    h = attention_health(_hard([4, 4, 5, 5, 6, 6, 7], 8))
    assert not h["monotonic"] and h["first_step"] == 7 and h["reaches_end"]


def test_forward_skips():
    h = attention_health(_hard([0, 1, 2, 6, 7, 8, 9], 10))  # skips 3 symbols: a jump of 4
    assert not h["monotonic"] and h["largest_forward"] == 4
    assert attention_health(_hard([0, 1, 2, 6, 7, 8, 9], 10), max_forward=4)["monotonic"]
    assert attention_health(_hard([0, 1, 2, 5, 6, 7, 8, 9], 10))["monotonic"]  # a jump of 3


def test_end_slack():
    # the last step attends to position 6 of 10 (last symbol 9): 3 short
    a = _hard([0, 1, 2, 3, 4, 5, 6], 10)
    assert not attention_health(a)["reaches_end"]
    assert attention_health(a, end_slack=3)["reaches_end"]
    assert attention_health(_hard([0, 2, 4, 6, 7], 10))["reaches_end"]  # within 2 of the last


def test_padding_beyond_the_text_and_the_decoded_steps_is_ignored():
    text = _hard([0, 0, 1, 2, 3, 3, 4, 5], 6) * 0.6  # (8 steps, 6 symbols), largest weight 0.6
    padded = np.full((11, 9), 0.01)
    padded[:8, :6] = text
    padded[:8, 6:] = 0.9  # garbage on the padding positions would win the argmax and the focus rate
    padded[8:, :6] = _hard([0, 0, 0], 6)  # garbage steps after the decoded length: a jump back to 0
    h = attention_health(padded, text_length=6, n_steps=8)
    assert h == attention_health(text)
    assert h["monotonic"] and h["reaches_end"] and h["focus_rate"] == pytest.approx(0.6)
    assert not attention_health(padded, text_length=6)["monotonic"]
    with pytest.raises(ValueError, match="text_length"):
        attention_health(padded, text_length=10)
    with pytest.raises(ValueError, match="n_steps"):
        attention_health(padded, n_steps=0)


def test_attention_summary():
    healths = [
        attention_health(_hard(np.arange(20) // 2, 10)),  # healthy
        attention_health(_hard([1] * 30, 10)),  # stuck: monotonic, never ends, hit the step limit
        attention_health(_hard([0, 1, 2, 3, 4, 1, 2, 3, 4, 5], 6)),  # jumps back, reaches the end
        attention_health(np.full((4, 4), 0.25)),  # diffuse: argmax stays at 0
    ]
    s = attention_summary(healths, [False, True, False, False])
    assert s == {
        "n_utts": 4,
        "monotonic": 0.75,
        "reaches_end": 0.5,
        "focus_rate": pytest.approx((1.0 + 1.0 + 1.0 + 0.25) / 4),
        "hit_max_steps": 1,
        "healthy": 0.25,
    }
    with pytest.raises(ValueError, match="step-limit"):
        attention_summary(healths, [False])
    with pytest.raises(ValueError, match="no utterances"):
        attention_summary([], [])
