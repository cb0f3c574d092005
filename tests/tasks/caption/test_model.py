"""Show, Attend and Tell (aics.tasks.caption.model): shapes, the attention and its regulariser, the
scheduled-sampling schedules and coins, greedy and beam search against exhaustive search."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from aics.tasks.caption.model import (
    Captioner,
    CaptionerConfig,
    caption_loss,
    teacher_forcing_probability,
)

V, START, END = 7, 1, 2


def small(**kw) -> Captioner:
    torch.manual_seed(0)
    cfg = CaptionerConfig(vocab_size=V, encoder_channels=(4, 8), grid=3, embed_dim=8, attention_dim=8,
                          decoder_dim=16, dropout=0.0, **kw)  # fmt: skip
    return Captioner(cfg).eval()


def test_shapes_and_attention_weights_sum_to_one_over_the_grid():
    m = small()
    images = torch.randn(2, 3, 16, 16)
    caps = torch.tensor([[START, 3, 4, 5, END, 0], [START, 4, END, 0, 0, 0], [START, 6, 6, END, 0, 0]])
    logits, alphas, share = m(images, caps, owner=torch.tensor([0, 1, 1]))
    assert logits.shape == (3, 5, V) and alphas.shape == (3, 5, 9) and share == 1.0
    assert torch.allclose(alphas.sum(-1), torch.ones(3, 5), atol=1e-6)
    # a caption of image 1 reads image 1's features: the same as decoding that image alone
    alone, _, _ = m(images[1:], caps[1:2])
    assert torch.allclose(logits[1], alone[0], atol=1e-5)


def test_the_gate_scales_the_context_and_can_be_switched_off():
    assert small(gate=True).f_beta is not None and small(gate=False).f_beta is None
    m = small()
    with torch.no_grad():
        m.f_beta.weight.zero_()
        m.f_beta.bias.fill_(-1e4)  # beta = 0: the image is shut out, every image gives the same words
    caps = torch.tensor([[START, 3, 4, END]])
    a, _, _ = m(torch.randn(1, 3, 16, 16), caps)
    b, _, _ = m(torch.randn(1, 3, 16, 16), caps)
    assert not torch.allclose(a[0, 0], b[0, 0])  # the initial state still sees the image...
    with torch.no_grad():
        m.init_h.weight.zero_()
        m.init_c.weight.zero_()
    a, _, _ = m(torch.randn(1, 3, 16, 16), caps)
    b, _, _ = m(torch.randn(1, 3, 16, 16), caps)
    assert torch.allclose(a, b, atol=1e-6)  # ...and with it zeroed, nothing does


def test_loss_is_cross_entropy_plus_the_doubly_stochastic_penalty_by_hand():
    torch.manual_seed(1)
    logits = torch.randn(2, 3, V)
    alphas = torch.softmax(torch.randn(2, 3, 4), -1)
    caps = torch.tensor([[START, 3, 4, END], [START, 5, END, 0]])
    lengths = torch.tensor([4, 3])
    total, parts = caption_loss(logits, alphas, caps, lengths, alpha_c=0.5)
    logp = logits.log_softmax(-1)
    nll = -(logp[0, 0, 3] + logp[0, 1, 4] + logp[0, 2, END] + logp[1, 0, 5] + logp[1, 1, END]) / 5
    cover0 = alphas[0, :3].sum(0)  # every step of caption 0 is real
    cover1 = alphas[1, :2].sum(0)  # caption 1 has two
    reg = (((1 - cover0) ** 2).mean() + ((1 - cover1) ** 2).mean()) / 2
    assert parts["ce"] == pytest.approx(float(nll), rel=1e-5)
    assert parts["attention_reg"] == pytest.approx(float(reg), rel=1e-5)
    assert float(total) == pytest.approx(float(nll + 0.5 * reg), rel=1e-5)


def test_schedules_follow_bengio_et_al():
    assert teacher_forcing_probability("none", 10**6) == 1.0
    assert teacher_forcing_probability("linear", 2000, linear_decay=1e-4) == pytest.approx(0.8)
    assert teacher_forcing_probability("linear", 20000, min_p=0.25, linear_decay=1e-4) == 0.25
    assert teacher_forcing_probability("exponential", 100, exp_base=0.99) == pytest.approx(0.99**100)
    k = 500.0
    assert teacher_forcing_probability("inverse_sigmoid", 1500, sigmoid_k=k) == pytest.approx(
        k / (k + math.e**3)
    )
    assert teacher_forcing_probability("inverse_sigmoid", 10**9, sigmoid_k=k) == 0.0
    for s in ("linear", "exponential", "inverse_sigmoid"):
        ps = [teacher_forcing_probability(s, i, linear_decay=1e-3, exp_base=0.999, sigmoid_k=100) for i in
              range(0, 3000, 100)]  # fmt: skip
        assert all(a >= b for a, b in itertools.pairwise(ps)) and ps[0] > 0.95 and ps[-1] < 0.2, s


@pytest.mark.parametrize("p", [0.0, 0.3, 0.8])
def test_sampled_inputs_follow_the_teacher_forcing_probability(p):
    """The words fed at steps 2.. are the reference's with probability p (the coins), else the model's own
    argmax from the step before; checked by recording what the decoder reads."""
    m = small()
    fed: list[torch.Tensor] = []
    m.embed.register_forward_hook(lambda mod, inp, out: fed.append(inp[0].clone()))
    n, t = 400, 6
    caps = torch.full((n, t), 3)
    caps[:, 0] = START
    caps[:, -1] = END
    gen = torch.Generator().manual_seed(0)
    logits, _, share = m(torch.randn(n, 3, 16, 16), caps, tf_prob=p, generator=gen)
    own = logits.argmax(-1)  # (n, t-1)
    ref = same = 0
    for step in range(1, t - 1):
        words = fed[step]
        from_ref = words == caps[:, step]
        from_own = words == own[:, step - 1]
        assert bool((from_ref | from_own).all())  # every fed word is one or the other
        differ = caps[:, step] != own[:, step - 1]  # only there can the source be told apart
        ref += int((from_ref & differ).sum())
        same += int(differ.sum())
    assert same > 300
    assert abs(ref / same - p) < 4 * math.sqrt(p * (1 - p) / same) + 1e-9
    assert abs(share - p) < 4 * math.sqrt(p * (1 - p) / (n * (t - 2))) + 1e-9
    assert bool((fed[0] == START).all())  # the first step always reads <start>


def test_the_coins_repeat_with_the_same_generator_seed():
    m = small()
    caps = torch.randint(3, V, (16, 6))
    caps[:, 0] = START
    images = torch.randn(16, 3, 16, 16)
    a = m(images, caps, tf_prob=0.5, generator=torch.Generator().manual_seed(5))[0]
    b = m(images, caps, tf_prob=0.5, generator=torch.Generator().manual_seed(5))[0]
    c = m(images, caps, tf_prob=0.5, generator=torch.Generator().manual_seed(6))[0]
    assert torch.equal(a, b) and not torch.equal(a, c)


@torch.no_grad()
def sequence_logp(m: Captioner, image: torch.Tensor, seq: list[int]) -> float:
    caps = torch.tensor([[START, *seq]])
    logits, _, _ = m(image[None], caps)
    return float(logits.log_softmax(-1)[0].gather(1, caps[0, 1:, None]).sum())


def test_beam_search_finds_the_exhaustive_best_and_greedy_equals_beam_one():
    m = small()
    with torch.no_grad():
        m.out.bias[END] += 1.5  # captions of a few words
    image = torch.randn(3, 16, 16)
    max_len = 3
    words = [w for w in range(V) if w not in (START,)]
    best = (-math.inf, None)
    for n in range(1, max_len + 1):  # every caption of up to max_len tokens (the last may be <end> or not)
        for seq in itertools.product(words, repeat=n):
            if END in seq[:-1] or (n < max_len and seq[-1] != END):
                continue
            best = max(best, (sequence_logp(m, image, list(seq)), seq))
    seq, alphas, logp = m.beam_search(image, START, END, max_len, beam=V**max_len)
    assert tuple(seq) == best[1] and logp == pytest.approx(best[0], abs=1e-4)
    assert alphas.shape == (len(seq), 9)
    greedy, _ = m.greedy(image[None], START, END, max_len)
    g = greedy[0].tolist()
    g = g[: g.index(END) + 1] if END in g else g
    one, _, lp1 = m.beam_search(image, START, END, max_len, beam=1)
    assert one == g and lp1 == pytest.approx(sequence_logp(m, image, g), abs=1e-4)


def test_length_normalisation_ranks_by_mean_log_probability():
    m = small()
    image = torch.randn(3, 16, 16)
    seq, _, logp = m.beam_search(image, START, END, 4, beam=V**4, length_norm=1.0)
    words = [w for w in range(V) if w != START]
    scores = []
    for n in range(1, 5):
        for s in itertools.product(words, repeat=n):
            if END in s[:-1] or (n < 4 and s[-1] != END):
                continue
            scores.append((sequence_logp(m, image, list(s)) / n, s))
    assert tuple(seq) == max(scores)[1]


def test_attention_maps_stay_with_the_words_they_belong_to():
    from aics.tasks.caption.data import Vocab
    from aics.tasks.caption.infer import said

    v = Vocab(["<pad>", "<start>", "<end>", "<unk>", "red", "ball"])
    alphas = torch.arange(5.0)[:, None].expand(5, 3)  # row k is filled with k
    rows = said(alphas, [4, 1, 5, 2, 4], v)  # red <start> ball <end> red
    assert v.decode([4, 1, 5, 2, 4]) == ["red", "ball"] and rows[:, 0].tolist() == [0.0, 2.0]
