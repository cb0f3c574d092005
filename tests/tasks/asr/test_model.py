import pytest
import torch
import torch.nn.functional as F

from aics.tasks.asr import model as asr_model
from aics.tasks.asr.model import DFCNN, ctc_feasible, ctc_loss


def small(time_pool=(2, 2, 1), freq_pool=(2, 2, 2)) -> DFCNN:
    torch.manual_seed(0)
    return DFCNN(40, 12, channels=(4, 8, 8), time_pool=time_pool, freq_pool=freq_pool, hidden=16, dropout=0.0)


@pytest.mark.parametrize("time_pool", [(2, 2, 1), (2, 2, 2), (1, 3, 1)])
def test_output_lengths_are_the_frames_the_network_really_gives(time_pool):
    m = small(time_pool=time_pool).eval()
    for t in (1, 7, 8, 9, 15, 16, 33, 100):
        if t < m.time_reduction:
            continue
        logits = m(torch.randn(1, t, 40))
        assert logits.shape == (1, int(m.output_lengths(torch.tensor([t]))), 12), t
    assert m.time_reduction == torch.tensor(time_pool).prod().item()


def test_padded_batches_get_each_utterances_own_length():
    m = small().eval()
    lengths = torch.tensor([50, 37, 12])
    x = torch.randn(3, 50, 40)
    logits, out = m(x, lengths)
    assert out.tolist() == [12, 9, 3]
    assert logits.shape[1] == 12


def test_the_model_returns_raw_logits_not_probabilities():
    m = small().eval()
    logits = m(torch.randn(2, 40, 40))
    sums = logits.exp().sum(-1)
    assert not torch.allclose(sums, torch.ones_like(sums), atol=1e-3)  # not log-probabilities
    assert not torch.allclose(logits.sum(-1), torch.ones_like(sums), atol=1e-3)  # not probabilities
    # and with a softmax in forward() the test would fail: its rows sum to one
    probs = logits.softmax(-1)
    assert torch.allclose(probs.sum(-1), torch.ones_like(sums), atol=1e-5)
    assert (logits < 0).any() and (logits > 0).any()


def test_ctc_loss_sees_exactly_one_log_softmax_of_the_logits(monkeypatch):
    """Fails if probabilities, or log-softmax of a softmax, ever reach torch's CTC loss."""
    seen = {}
    real = F.ctc_loss

    def spy(log_probs, *args, **kwargs):
        seen["input"] = log_probs.detach().clone()
        seen["kwargs"] = kwargs
        return real(log_probs, *args, **kwargs)

    monkeypatch.setattr(asr_model.F, "ctc_loss", spy)
    m = small().train()
    x, lengths = torch.randn(2, 48, 40), torch.tensor([48, 40])
    logits, out = m(x, lengths)
    targets, target_lengths = torch.tensor([1, 2, 3, 4, 5]), torch.tensor([3, 2])
    loss = ctc_loss(logits, out, targets, target_lengths)
    got = seen["input"]  # (T', B, V)
    assert torch.allclose(got, F.log_softmax(logits.detach().float(), -1).transpose(0, 1), atol=1e-6)
    assert torch.allclose(got.exp().sum(-1), torch.ones(got.shape[:2]), atol=1e-5)
    assert seen["kwargs"]["blank"] == 0
    # and the value is torch's CTC (mean over utterances of the summed NLL) of that input
    ref = real(got, targets, out, target_lengths, blank=0, reduction="sum") / 2
    assert torch.allclose(loss, ref)
    loss.backward()
    assert all(p.grad is not None for p in m.parameters() if p.requires_grad)


def test_ctc_feasible_counts_blanks_between_repeats():
    assert ctc_feasible(3, [1, 2, 3])
    assert not ctc_feasible(3, [1, 1, 3])
    assert ctc_feasible(4, [1, 1, 3])
    assert not ctc_feasible(0, [1])
    # agrees with torch: infeasible alignments give an infinite loss
    for t, target in [(3, [1, 1, 3]), (4, [1, 1, 3]), (2, [2, 2]), (3, [2, 2])]:
        lp = torch.randn(t, 1, 5).log_softmax(-1)
        loss = F.ctc_loss(lp, torch.tensor(target), torch.tensor([t]), torch.tensor([len(target)]))
        assert torch.isfinite(loss).item() == ctc_feasible(t, target)


def test_training_on_one_utterance_drives_the_ctc_loss_down():
    m = small()
    x, lengths = torch.randn(1, 64, 40), torch.tensor([64])
    targets, target_lengths = torch.tensor([3, 1, 4, 1, 5]), torch.tensor([5])
    opt = torch.optim.Adam(m.parameters(), lr=3e-3)
    first = None
    for _ in range(60):
        logits, out = m(x, lengths)
        loss = ctc_loss(logits, out, targets, target_lengths)
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.2 * first
    m.eval()
    best = m(x).argmax(-1)[0].tolist()
    collapsed = [k for i, k in enumerate(best) if k != 0 and (i == 0 or best[i - 1] != k)]
    assert collapsed == [3, 1, 4, 1, 5]
