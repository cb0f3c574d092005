"""The CRNN: shapes, pooling heads, and the frames it reports at the input's rate."""

from __future__ import annotations

import pytest
import torch

from aics.tasks.sed.config import ModelConfig
from aics.tasks.sed.model import build_model, pool_clip


@pytest.mark.parametrize("pooling", ["linear_softmax", "attention", "max", "mean"])
@pytest.mark.parametrize("rnn_layers", [0, 1])
def test_shapes_and_probabilities(pooling, rnn_layers):
    cfg = ModelConfig(channels=(4, 8), freq_pool=(4, 2), time_pool=(2, 2), rnn_hidden=8,
                      rnn_layers=rnn_layers, pooling=pooling)  # fmt: skip
    model = build_model(cfg, n_mels=32, n_classes=10).eval()
    x = torch.randn(3, 101, 32)
    clip, frames = model(x)
    assert clip.shape == (3, 10) and frames.shape == (3, 101, 10)
    assert ((clip > 0) & (clip < 1)).all() and ((frames >= 0) & (frames <= 1)).all()
    # frames are repeated back to the input rate: runs of time_reduction equal values
    assert torch.equal(frames[:, 0], frames[:, 3]) and model.time_reduction == 4
    clip.sum().backward()
    assert all(
        p.grad is not None for n, p in model.named_parameters() if "attention" in n or "frame_out" in n
    )


def test_pooling_heads_by_hand():
    p = torch.tensor([[[0.1], [0.9], [0.2]]])  # (B=1, T=3, C=1)
    assert pool_clip(p, "max").item() == pytest.approx(0.9)
    assert pool_clip(p, "mean").item() == pytest.approx(0.4)
    assert pool_clip(p, "linear_softmax").item() == pytest.approx((0.01 + 0.81 + 0.04) / 1.2)
    logits = torch.tensor([[[0.0], [100.0], [0.0]]])
    assert pool_clip(p, "attention", logits).item() == pytest.approx(0.9, abs=1e-6)
    assert pool_clip(p, "attention", torch.zeros(1, 3, 1)).item() == pytest.approx(0.4)


def test_a_clip_probability_depends_on_every_frame_for_the_soft_heads():
    p = torch.rand(1, 5, 2, generator=torch.Generator().manual_seed(0)).requires_grad_()
    for kind in ("linear_softmax", "mean"):
        (g,) = torch.autograd.grad(pool_clip(p, kind).sum(), p)
        assert (g != 0).all()
    (g,) = torch.autograd.grad(pool_clip(p, "max").sum(), p)
    assert (g != 0).sum() == 2  # one frame per class
