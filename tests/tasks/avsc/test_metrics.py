"""Scene scores (aics.tasks.avsc.metrics) and late fusion (model): the log loss equals scikit-learn's, the
conflict analysis counts by hand, the fitted late weights lean on the informative modality."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from aics.tasks.avsc.metrics import accuracy, class_wise, conflict_analysis, confusion, log_loss
from aics.tasks.avsc.model import fit_late_weights, late_fusion


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_log_loss_equals_sklearn_on_random_posteriors(seed):
    sklearn = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.full(10, 0.5), size=300)
    labels = rng.integers(0, 10, size=300)
    assert log_loss(labels, probs) == pytest.approx(
        sklearn.log_loss(labels, probs, labels=range(10)), rel=1e-12
    )
    assert accuracy(labels, probs) == pytest.approx(sklearn.accuracy_score(labels, probs.argmax(1)))


def test_a_zero_probability_is_clipped_as_the_challenge_does():
    probs = np.array([[0.0, 1.0], [0.5, 0.5]])
    expected = (-math.log(1e-15 / (1 + 1e-15)) + math.log(2)) / 2  # clipped, then the row renormalised
    assert log_loss([0, 1], probs) == pytest.approx(expected, rel=1e-9)
    assert log_loss([0, -1], probs) == pytest.approx(-math.log(1e-15 / (1 + 1e-15)))  # -1: not scored


def test_class_wise_and_confusion_by_hand():
    labels = np.array([0, 0, 1, 2])
    probs = np.array([[0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.1, 0.8, 0.1], [0.3, 0.3, 0.4]])
    cw = class_wise(labels, probs, ["a", "b", "c"])
    assert cw["a"]["clips"] == 2 and cw["a"]["accuracy"] == 0.5
    assert cw["a"]["log_loss"] == pytest.approx(-(math.log(0.8) + math.log(0.2)) / 2)
    assert confusion(labels, probs, 3).tolist() == [[1, 1, 0], [0, 1, 0], [0, 0, 1]]


def test_conflict_analysis_counts_by_hand():
    eye = np.eye(3)
    labels = np.array([0, 0, 1, 1, 2])
    audio = eye[[0, 1, 1, 0, 2]]  # right, wrong, right, wrong, right
    video = eye[[0, 0, 2, 1, 2]]  # right, right, wrong, right, right
    fused = eye[[0, 0, 1, 0, 2]]  # follows video, audio, audio on the three disagreements
    a = conflict_analysis(labels, audio, video, fused, ["x", "y", "z"])
    o = a["overall"]
    assert o["disagree"] == 3 and o["when_disagree"]["follows_audio"] == pytest.approx(2 / 3)
    assert o["when_disagree"]["fused_right"] == pytest.approx(2 / 3)
    assert o["when_disagree"]["audio_right"] == pytest.approx(1 / 3)
    y = a["per_class"]["y"]
    assert y["accuracy"] == {"audio": 0.5, "video": 0.5, "fused": 0.5} and y["fusion_gain"] == 0.0
    assert a["per_class"]["z"]["disagree"] == 0


def test_late_weights_lean_on_the_modality_that_knows():
    torch.manual_seed(0)
    n, c = 400, 4
    labels = torch.randint(0, c, (n,))
    informed = torch.softmax(3 * torch.nn.functional.one_hot(labels, c).float() + torch.randn(n, c), 1)
    guessing = torch.softmax(torch.randn(n, c), 1)
    w = fit_late_weights(informed, guessing, labels)
    assert bool((w > 0.8).all()), w
    w = fit_late_weights(guessing, informed, labels)
    assert bool((w < 0.2).all()), w
    mean = late_fusion(informed, guessing)
    assert torch.allclose(mean, (informed + guessing) / 2) and torch.allclose(mean.sum(1), torch.ones(n))
    fused = late_fusion(informed, guessing, torch.full((c,), 0.5))
    assert torch.allclose(fused.sum(1), torch.ones(n), atol=1e-6)
