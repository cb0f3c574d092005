import math

import pytest
import torch

from aics.core.config import load_config
from aics.core.errors import UserError
from aics.tasks.lm.config import ARCHS, LMConfig
from aics.tasks.lm.model import build_lm, parameter_breakdown, sinusoidal_positions
from aics.tasks.lm.train import check_size

V = 50


def model_for(arch, *sets):
    cfg = load_config(LMConfig, [], [f"model.arch={arch}", "model.emb=16", "model.hidden=24", "model.heads=2",
                                     "model.dropout=0", "model.emb_dropout=0", *sets])  # fmt: skip
    torch.manual_seed(0)
    return build_lm(cfg.model, V).eval()


@pytest.mark.parametrize("arch", ARCHS)
def test_shapes_state_and_gradients(arch):
    m = model_for(arch)
    x = torch.randint(0, V, (3, m.prefix + 7))
    logits, state = m(x)
    assert logits.shape == (3, 7, V)
    assert (state is not None) == m.recurrent
    m.train()
    m(x)[0].logsumexp(-1).mean().backward()
    assert all(p.grad is not None for p in m.parameters())


@pytest.mark.parametrize("arch", ["gru", "lstm", "rnn"])
def test_carrying_the_state_equals_one_long_sequence(arch):
    m = model_for(arch)
    x = torch.randint(0, V, (2, 10))
    whole, _ = m(x)
    first, state = m(x[:, :6])
    second, _ = m(x[:, 6:], state)
    torch.testing.assert_close(torch.cat([first, second], 1), whole, rtol=1e-5, atol=1e-5)


def test_transformer_is_causal():
    m = model_for("transformer")
    x = torch.randint(0, V, (1, 12))
    y = x.clone()
    y[0, 8] = (y[0, 8] + 1) % V
    a, b = m(x)[0], m(y)[0]
    torch.testing.assert_close(a[:, :8], b[:, :8])
    assert not torch.allclose(a[:, 8:], b[:, 8:])


def test_ffn_sees_exactly_its_context():
    m = model_for("ffn", "model.context=3")
    x = torch.randint(0, V, (1, m.prefix + 6))  # targets 0..5; target j sees inputs j .. j+2
    y = x.clone()
    y[0, 4] = (y[0, 4] + 1) % V
    a, b = m(x)[0], m(y)[0]
    changed = [j for j in range(6) if not torch.allclose(a[0, j], b[0, j])]
    assert changed == [2, 3, 4]


def test_tied_weights_are_shared_and_counted_once():
    m = model_for("lstm", "model.tie_weights=true", "model.hidden=16")
    assert m.output.decoder.weight is m.embedding.weight and m.output.bridge is None
    counts = parameter_breakdown(m)
    assert counts["total"] == sum(p.numel() for p in m.parameters())
    bridged = model_for("gru", "model.tie_weights=true", "model.hidden=24")
    assert bridged.output.decoder.weight is bridged.embedding.weight and bridged.output.bridge is not None


def test_sinusoidal_positions_formula():
    table = sinusoidal_positions(10, 8)
    pos, i = 7, 2  # channel 2i = 4 holds sin(pos / 10000^(2i/d))
    assert table[pos, 2 * i].item() == pytest.approx(math.sin(pos / 10000 ** (2 * i / 8)), abs=1e-6)
    assert table[pos, 2 * i + 1].item() == pytest.approx(math.cos(pos / 10000 ** (2 * i / 8)), abs=1e-6)


def test_parameter_cap_names_the_components():
    m = model_for("lstm")
    with pytest.raises(
        UserError, match=r"has [\d,]+ parameters \(embedding [\d,]+, rnn [\d,]+, output [\d,]+\)"
    ):
        check_size(m, 1000, "lstm")
    assert check_size(m, 10**9, "lstm")["total"] == sum(p.numel() for p in m.parameters())
