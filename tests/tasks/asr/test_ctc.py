"""CTC decoding: greedy on hand-built frames, prefix beam search against brute-force sums over every
alignment and torch's CTC loss, shallow LM fusion (character and word LMs), pruning, and batch helpers."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from aics.tasks.asr.ctc import decode_batch, greedy_decode, prefix_beam_search


def _frames(path: list[int], n_units: int, p: float = 0.9) -> np.ndarray:
    """Log-probabilities (T, V) whose most likely unit on frame t is path[t]."""
    probs = np.full((len(path), n_units), (1 - p) / (n_units - 1))
    probs[np.arange(len(path)), path] = p
    return np.log(probs)


def _random_log_probs(rng: np.random.Generator, frames: int, n_units: int, scale: float = 2.0) -> np.ndarray:
    return torch.log_softmax(torch.tensor(rng.normal(size=(frames, n_units)) * scale), -1).numpy()


def _collapse(path, blank: int) -> tuple[int, ...]:
    out, prev = [], None
    for u in path:
        if u != blank and u != prev:
            out.append(u)
        prev = u
    return tuple(out)


def _exact(lp: np.ndarray, blank: int) -> dict[tuple[int, ...], float]:
    """log p(labelling) of every labelling, summing over every alignment (V ** T of them)."""
    out: dict[tuple[int, ...], float] = {}
    for path in itertools.product(range(lp.shape[1]), repeat=lp.shape[0]):
        score = float(lp[np.arange(lp.shape[0]), path].sum())
        key = _collapse(path, blank)
        out[key] = float(np.logaddexp(out.get(key, -math.inf), score))
    return out


def _ctc_log_prob(lp: np.ndarray, labels: list[int], blank: int) -> float:
    loss = F.ctc_loss(
        torch.tensor(lp)[:, None, :],
        torch.tensor([labels], dtype=torch.long).reshape(1, -1),
        torch.tensor([lp.shape[0]]),
        torch.tensor([len(labels)]),
        blank=blank,
        reduction="sum",
    )
    return -float(loss)


# ---- greedy ----


def test_greedy_collapses_repeats_and_drops_blanks():
    assert greedy_decode(_frames([1, 1, 0, 1, 2, 2, 0, 0, 3], 4)) == [1, 1, 2, 3]
    assert greedy_decode(_frames([1, 1, 1], 4)) == [1]
    assert greedy_decode(_frames([0, 0, 0], 4)) == []
    assert greedy_decode(_frames([2, 0, 2, 2, 0, 0, 2], 4)) == [2, 2, 2]
    # Another blank id; torch input.
    assert greedy_decode(torch.tensor(_frames([3, 1, 3, 3, 2], 4)), blank=3) == [1, 2]
    assert greedy_decode(np.zeros((0, 4))) == []


def test_greedy_batch_ignores_padding_frames():
    a = _frames([1, 0, 2, 0], 4)
    b = _frames([3, 3, 1, 1], 4)  # only its first 2 frames are real
    batch = torch.tensor(np.stack([a, b]))
    assert greedy_decode(batch, torch.tensor([4, 2])) == [[1, 2], [3]]
    assert greedy_decode(batch) == [[1, 2], [3, 1]]
    with pytest.raises(ValueError, match="lengths"):
        greedy_decode(batch, [4, 5])
    with pytest.raises(ValueError, match="blank"):
        greedy_decode(a, blank=4)


# ---- beam search without an LM ----


def test_beam_search_on_peaky_frames_is_greedy():
    rng = np.random.default_rng(0)
    for _ in range(30):
        n_units = int(rng.integers(3, 30))
        path = rng.integers(0, n_units, size=int(rng.integers(1, 60))).tolist()
        lp = _frames(path, n_units, p=0.98)
        for beam in (1, 5):
            nbest = prefix_beam_search(lp, beam=beam)
            assert nbest[0][0] == greedy_decode(lp)
            assert len(nbest) <= beam


def test_beam_search_scores_are_exact_sums_over_alignments():
    # Without pruning every prefix stays in the beam: each labelling's score must be its exact probability.
    rng = np.random.default_rng(1)
    for _ in range(150):
        frames, n_units = int(rng.integers(1, 6)), int(rng.integers(2, 4))
        blank = int(rng.integers(n_units))
        lp = _random_log_probs(rng, frames, n_units)
        exact = _exact(lp, blank)
        nbest = prefix_beam_search(lp, beam=100, blank=blank, prune_logp=-math.inf)
        assert {tuple(labels) for labels, _ in nbest} == set(exact)
        for labels, score in nbest:
            assert score == pytest.approx(exact[tuple(labels)], abs=1e-6)
        assert tuple(nbest[0][0]) == max(exact, key=exact.get)
        assert [s for _, s in nbest] == sorted((s for _, s in nbest), reverse=True)
        for labels, score in nbest[:3]:
            assert score == pytest.approx(_ctc_log_prob(lp, labels, blank), abs=1e-6)


def test_beam_search_finds_the_best_labelling_with_a_moderate_beam():
    rng = np.random.default_rng(2)
    for _ in range(60):
        lp = _random_log_probs(rng, int(rng.integers(2, 6)), 3, scale=3.0)
        exact = _exact(lp, 0)
        labels, score = prefix_beam_search(lp, beam=16, prune_logp=-math.inf)[0]
        assert tuple(labels) == max(exact, key=exact.get)
        assert score == pytest.approx(exact[tuple(labels)], abs=1e-6)


def test_pruned_scores_never_exceed_the_exact_probability():
    rng = np.random.default_rng(3)
    lp = _random_log_probs(rng, 80, 29, scale=3.0)
    for labels, score in prefix_beam_search(lp, beam=10)[:5]:
        # A pruned beam can only lose alignments of a labelling, never add any.
        assert score <= _ctc_log_prob(lp, labels, 0) + 1e-9
    # On peaky frames the alignments lost (those through pruned prefixes) carry little probability.
    lp = _frames(rng.integers(0, 29, size=200).tolist(), 29, p=0.9)
    labels, score = prefix_beam_search(lp, beam=10)[0]
    assert labels == greedy_decode(lp)
    assert _ctc_log_prob(lp, labels, 0) - 0.1 < score <= _ctc_log_prob(lp, labels, 0) + 1e-9


def test_pruning_limits_new_prefixes():
    probs = np.array([[0.1, 0.6, 0.2, 0.1], [0.7, 0.05, 0.2, 0.05], [0.1, 0.1, 0.6, 0.2]])
    lp = np.log(probs)
    unpruned = {tuple(labels) for labels, _ in prefix_beam_search(lp, beam=100, prune_logp=-math.inf)}
    assert {(3,), (1, 3), (2, 1)} <= unpruned
    # top_k=1: only unit 1 (frame 0) and unit 2 (frames 1, 2) may start or extend a prefix.
    pruned = {tuple(labels) for labels, _ in prefix_beam_search(lp, beam=100, top_k=1)}
    assert pruned == {(), (1,), (2,), (1, 2)}
    # prune_logp: a unit below it on a frame starts nothing there.
    pruned = {tuple(labels) for labels, _ in prefix_beam_search(lp, beam=100, prune_logp=math.log(0.3))}
    assert pruned == {(), (1,), (2,), (1, 2)}
    assert prefix_beam_search(lp, prune_logp=0.0) == [([], pytest.approx(float(lp[:, 0].sum())))]
    assert prefix_beam_search(np.zeros((0, 4))) == [([], 0.0)]


# ---- LM fusion ----


class TableLM:
    """A toy n-gram LM: log-probabilities from a table keyed by (last context token, token), a default
    elsewhere; it records every query."""

    def __init__(self, unit: str, order: int = 2, table: dict | None = None, default: float = -2.0):
        self.unit, self.order, self.table, self.default = unit, order, table or {}, default
        self.calls: list[tuple[tuple[str, ...], str]] = []

    def score(self, context: tuple[str, ...], token: str) -> float:
        self.calls.append((context, token))
        return self.table.get((context[-1] if context else None, token), self.default)


def _fused(lm, labels, units, weight, bonus, space=" ") -> float:
    """lm_weight * log p_lm + bonus * LM units of a labelling, from the definitions."""
    text = [units[u] for u in labels]
    tokens = text if lm.unit == "char" else [w for w in "".join(text).split(space) if w]
    ctx, total = ["<s>"] * (lm.order - 1), 0.0
    for tok in tokens:
        total += weight * lm.score(tuple(ctx[len(ctx) - lm.order + 1 :]) if lm.order > 1 else (), tok) + bonus
        ctx.append(tok)
    return total + weight * lm.score(tuple(ctx[len(ctx) - lm.order + 1 :]) if lm.order > 1 else (), "</s>")


def test_char_lm_scores_add_exactly():
    rng = np.random.default_rng(4)
    units = ["_", "a", "b"]
    for _ in range(40):
        table = {(p, t): float(rng.uniform(-4, -0.1)) for p in ("<s>", "a", "b") for t in ("a", "b", "</s>")}
        lm = TableLM("char", order=int(rng.integers(1, 4)), table=table)
        lp = _random_log_probs(rng, int(rng.integers(1, 6)), 3)
        weight, bonus = float(rng.uniform(0, 2)), float(rng.uniform(-1, 1))
        exact = _exact(lp, 0)
        nbest = prefix_beam_search(lp, beam=100, lm=lm, lm_weight=weight, word_bonus=bonus, units=units,
                                   prune_logp=-math.inf)  # fmt: skip
        assert {tuple(labels) for labels, _ in nbest} == set(exact)
        for labels, score in nbest:
            want = exact[tuple(labels)] + _fused(lm, labels, units, weight, bonus)
            assert score == pytest.approx(want, abs=1e-6)


def test_word_lm_scores_words_at_spaces_and_at_the_end():
    rng = np.random.default_rng(5)
    units = ["_", "a", " ", "b"]
    for _ in range(25):
        lm = TableLM("word", order=2, default=-1.0)
        lm.table = {(p, w): float(rng.uniform(-5, -0.1)) for p in ("<s>", "a", "ab", "b") for w in ("a", "b")}
        lp = _random_log_probs(rng, int(rng.integers(1, 6)), 4)
        weight, bonus = float(rng.uniform(0, 2)), float(rng.uniform(-1, 1))
        exact = _exact(lp, 0)
        nbest = prefix_beam_search(lp, beam=400, lm=lm, lm_weight=weight, word_bonus=bonus, units=units,
                                   space_id=2, prune_logp=-math.inf)  # fmt: skip
        assert {tuple(labels) for labels, _ in nbest} == set(exact)
        for labels, score in nbest:
            want = exact[tuple(labels)] + _fused(lm, labels, units, weight, bonus)
            assert score == pytest.approx(want, abs=1e-6)
    # Only whole words (never a space, an empty word or a partial word) and </s> were ever scored.
    lm.calls.clear()
    prefix_beam_search(_random_log_probs(rng, 30, 4), beam=8, lm=lm, units=units, space_id=2)
    assert lm.calls
    assert all(tok == "</s>" or (tok and " " not in tok) for _, tok in lm.calls)
    assert all(len(ctx) == 1 for ctx, _ in lm.calls)


def _ambiguous_frames() -> tuple[np.ndarray, list[str]]:
    """Frames that sound like "ab" slightly more than "bb" (units: blank, a, b, space)."""
    probs = np.array(
        [
            [0.05, 0.50, 0.40, 0.05],
            [0.90, 0.03, 0.04, 0.03],
            [0.05, 0.05, 0.85, 0.05],
            [0.90, 0.03, 0.04, 0.03],
        ]
    )
    return np.log(probs), ["_", "a", "b", " "]


def test_char_lm_pulls_towards_what_it_prefers():
    lp, units = _ambiguous_frames()
    assert prefix_beam_search(lp, beam=5)[0][0] == [1, 2]
    lm = TableLM("char", table={("<s>", "b"): -0.1, ("<s>", "a"): -6.0}, default=-1.0)
    assert prefix_beam_search(lp, beam=5, lm=lm, lm_weight=1.0, units=units)[0][0] == [2, 2]
    # Weight 0: the LM changes nothing, labels or scores.
    plain = prefix_beam_search(lp, beam=5)
    zero = prefix_beam_search(lp, beam=5, lm=lm, lm_weight=0.0, units=units)
    assert [labels for labels, _ in zero] == [labels for labels, _ in plain]
    assert [s for _, s in zero] == pytest.approx([s for _, s in plain], abs=1e-12)


def test_word_lm_pulls_towards_its_words():
    lp, units = _ambiguous_frames()
    lm = TableLM("word", table={("<s>", "bb"): -0.1, ("<s>", "ab"): -8.0}, default=-8.0)
    assert prefix_beam_search(lp, beam=5, lm=lm, lm_weight=1.0, units=units, space_id=3)[0][0] == [2, 2]
    assert (("<s>",), "bb") in lm.calls


def test_prefix_independent_lm_ranks_like_no_lm():
    # An LM giving every token the same score, cancelled by the bonus, must not change the n-best. Without
    # a character LM the search only tries each frame's beam + 1 most likely units; the character LM run
    # tries them all, so this also checks that the cap loses nothing (flat frames, small beams: a cap of
    # only `beam` units fails here).
    rng = np.random.default_rng(6)
    for _ in range(300):
        n_units = int(rng.integers(3, 7))
        units = ["_", " "] + [chr(97 + i) for i in range(n_units - 2)]
        concentration = float(rng.choice([0.3, 1.0, 3.0]))
        lp = np.log(rng.dirichlet(np.full(n_units, concentration), size=int(rng.integers(2, 10))))
        beam = int(rng.integers(1, 4))
        plain = prefix_beam_search(lp, beam=beam, prune_logp=-math.inf)
        for unit in ("char", "word"):
            lm = TableLM(unit, default=-1.0)
            fused = prefix_beam_search(lp, beam=beam, lm=lm, lm_weight=0.5, word_bonus=0.5, units=units,
                                       space_id=1, prune_logp=-math.inf)  # fmt: skip
            assert [labels for labels, _ in fused] == [labels for labels, _ in plain]
            assert [s for _, s in fused] == pytest.approx([s - 0.5 for _, s in plain], abs=1e-9)


def test_lm_arguments_are_checked():
    lp, units = _ambiguous_frames()
    with pytest.raises(ValueError, match="units"):
        prefix_beam_search(lp, lm=TableLM("char"))
    with pytest.raises(ValueError, match="space_id"):
        prefix_beam_search(lp, lm=TableLM("word"), units=units)
    with pytest.raises(ValueError, match="lm_weight"):
        prefix_beam_search(lp, lm=TableLM("char"), units=units, lm_weight=-1.0)
    with pytest.raises(ValueError, match="beam"):
        prefix_beam_search(lp, beam=0)
    with pytest.raises(ValueError, match=r"\(T, V\)"):
        prefix_beam_search(lp[None])


# ---- batch helper ----


def test_decode_batch_ignores_padding_frames():
    a = _frames([1, 0, 2, 0, 0], 4)
    b = _frames([3, 0, 3, 1, 2], 4)  # 3 real frames
    batch = torch.tensor(np.stack([a, b]))
    lengths = torch.tensor([5, 3])
    assert decode_batch(batch, lengths) == [[1, 2], [3, 3]]
    assert decode_batch(batch, lengths, method="beam", beam=4) == [[1, 2], [3, 3]]
    assert decode_batch(batch, method="beam", beam=4) == [[1, 2], [3, 3, 1, 2]]
    with pytest.raises(ValueError, match="method"):
        decode_batch(batch, lengths, method="viterbi")
