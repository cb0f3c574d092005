"""CTC decoding of per-frame log-probabilities: greedy (best path) and prefix beam search, the latter with
optional shallow fusion of a character or word n-gram language model.

Inputs are natural-log probabilities (a log-softmax output), shaped ``(T, V)`` for one utterance or
``(B, T, V)`` with ``lengths`` for a batch, as torch tensors (any device, any float dtype) or numpy arrays.
Outputs are lists of unit ids, blanks removed and repeats collapsed.

Prefix beam search keeps, for every label prefix in the beam, the log-probability of all alignments of the
frames so far that produce it and end in a blank (``p_b``) or in its last unit (``p_nb``); a unit equal to
the prefix's last unit only extends the prefix after a blank, otherwise it continues the same unit. Without
pruning (a beam wider than the number of prefixes, ``prune_logp=-inf``) the score of a labelling is exactly
log p(labelling | input), the negative of its CTC loss. Prefixes are ranked by

    log p_ctc + lm_weight * log p_lm + word_bonus * (number of LM units)

where the LM units are the emitted units for a character LM (or no LM) and the words for a word LM.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence
from typing import Protocol

import numpy as np

BOS = "<s>"
EOS = "</s>"
_LM_UNITS = ("char", "word")


class LanguageModel(Protocol):
    """What prefix beam search needs of an n-gram LM (see aics/tasks/asr/ngram.py)."""

    order: int  # n of the n-gram: contexts hold the previous order - 1 tokens
    unit: str  # "char": every output unit is a token; "word": units between spaces make a token

    def score(self, context: tuple[str, ...], token: str) -> float:
        """Natural-log probability of ``token`` after ``context`` (padded with "<s>" at the start)."""
        ...


def _as_array(x) -> np.ndarray:
    if hasattr(x, "detach"):  # a torch tensor, without importing torch here
        x = x.detach().cpu().double().numpy()
    return np.asarray(x, dtype=np.float64)


def _collapse(ids: np.ndarray, blank: int) -> list[int]:
    keep = ids != blank
    keep[1:] &= ids[1:] != ids[:-1]
    return ids[keep].tolist()


def _check_blank(blank: int, n_units: int) -> None:
    if not 0 <= blank < n_units:
        raise ValueError(f"blank id {blank} is outside the {n_units} output units")


def _lengths(lengths, batch: int, frames: int) -> list[int]:
    if lengths is None:
        return [frames] * batch
    out = [int(n) for n in _as_array(lengths).reshape(-1)]
    if len(out) != batch:
        raise ValueError(f"{len(out)} lengths for a batch of {batch}")
    bad = [n for n in out if not 0 <= n <= frames]
    if bad:
        raise ValueError(f"lengths {bad} are outside 0..{frames} frames")
    return out


def greedy_decode(log_probs, lengths=None, blank: int = 0) -> list[int] | list[list[int]]:
    """Best-path decoding: the most likely unit of every frame, repeats collapsed, blanks dropped.
    ``(T, V)`` gives one id list; ``(B, T, V)`` gives one per utterance, each cut to its length."""
    lp = _as_array(log_probs)
    if lp.ndim not in (2, 3):
        raise ValueError(f"log_probs must be (T, V) or (B, T, V), not of shape {lp.shape}")
    _check_blank(blank, lp.shape[-1])
    if lp.ndim == 2:
        if lengths is not None:
            raise ValueError("lengths go with a batch (B, T, V); slice a single (T, V) instead")
        return _collapse(lp.argmax(-1), blank)
    best = lp.argmax(-1)  # (B, T)
    return [_collapse(best[b, :n], blank) for b, n in enumerate(_lengths(lengths, lp.shape[0], lp.shape[1]))]


class _Prefixes:
    """A trie of label prefixes: a prefix is a node id, and everything that depends only on the labels
    (LM context, partial word, the LM and bonus part of the score) is computed once per node."""

    def __init__(self, lm, lm_weight: float, word_bonus: float, units, space_id):
        self.lm, self.w, self.bonus, self.units, self.space = lm, lm_weight, word_bonus, units, space_id
        self.word_lm = lm is not None and lm.unit == "word"
        self.n_ctx = lm.order - 1 if lm is not None else 0
        self.parent, self.token, self.children = [-1], [-1], [{}]
        self.extra = [0.0]  # lm_weight * log p_lm + word_bonus * units, for the prefix's LM units so far
        self.context = [(BOS,) * self.n_ctx]
        self.word = [""]  # the unfinished word (word LM)
        self.cache: dict[tuple[tuple[str, ...], str], float] = {}

    def lm_score(self, context: tuple[str, ...], token: str) -> float:
        key = (context, token)
        s = self.cache.get(key)
        if s is None:
            s = self.cache[key] = float(self.lm.score(context, token))
        return s

    def push(self, context: tuple[str, ...], token: str) -> tuple[str, ...]:
        return (context + (token,))[len(context) + 1 - self.n_ctx :] if self.n_ctx else ()

    def step(self, node: int, unit: int) -> tuple[float, tuple[str, ...], str]:
        """(score increment, LM context, unfinished word) of the prefix ``node`` extended by ``unit``."""
        ctx, word = self.context[node], self.word[node]
        if self.lm is None:
            return self.bonus, ctx, word
        if not self.word_lm:
            token = self.units[unit]
            lm = self.w * self.lm_score(ctx, token) if self.w else 0.0
            return lm + self.bonus, self.push(ctx, token), word
        if unit != self.space:
            return 0.0, ctx, word + self.units[unit]
        if not word:
            return 0.0, ctx, word
        lm = self.w * self.lm_score(ctx, word) if self.w else 0.0
        return lm + self.bonus, self.push(ctx, word), ""

    def child(self, node: int, unit: int) -> int:
        found = self.children[node].get(unit)
        if found is not None:
            return found
        delta, ctx, word = self.step(node, unit)
        new = len(self.parent)
        self.children[node][unit] = new
        self.parent.append(node)
        self.token.append(unit)
        self.children.append({})
        self.extra.append(self.extra[node] + delta)
        self.context.append(ctx)
        self.word.append(word)
        return new

    def final(self, node: int) -> float:
        """The LM and bonus part of a complete hypothesis: its last word and the end of sentence."""
        extra, ctx, word = self.extra[node], self.context[node], self.word[node]
        if self.lm is None:
            return extra
        if word:
            extra += (self.w * self.lm_score(ctx, word) if self.w else 0.0) + self.bonus
            ctx = self.push(ctx, word)
        return extra + (self.w * self.lm_score(ctx, EOS) if self.w else 0.0)

    def labels(self, node: int) -> list[int]:
        out = []
        while node > 0:
            out.append(self.token[node])
            node = self.parent[node]
        return out[::-1]


def _most_likely(lp: np.ndarray, keep: np.ndarray, k: int | None) -> np.ndarray:
    """``keep`` narrowed to each frame's ``k`` most likely units among those it keeps."""
    if k is None or k >= lp.shape[1] - 1:
        return keep
    best = np.argpartition(-np.where(keep, lp, -np.inf), k - 1, axis=1)[:, :k]
    top = np.zeros_like(keep)
    np.put_along_axis(top, best, True, axis=1)
    return keep & top


def _candidates(
    lp: np.ndarray, blank: int, prune_logp: float, top_k: int | None, beam: int | None, space: int | None
) -> list[np.ndarray]:
    """Per frame, the non-blank units that may start or extend a prefix there.

    With ``beam`` given, only the frame's ``beam + 1`` most likely units other than ``space`` (and ``space``)
    are kept. That loses nothing when a unit's score does not depend on the prefix it extends (no LM, an LM
    at weight 0, a word LM away from spaces): among one prefix's extensions a less likely unit ranks lower,
    and at least ``beam`` of the kept units are not the prefix's last unit (whose repeat needs a blank first
    and so may rank lower than its probability says), so no dropped unit could have entered the beam. An
    extension that lands on a prefix already in the beam still counts: that prefix stays a rival, and it
    gets the extension's probability whatever the pruning.
    """
    keep = lp >= prune_logp
    keep[:, blank] = False
    keep = _most_likely(lp, keep, top_k)
    if beam is not None:
        ranked = keep.copy()
        if space is not None:
            ranked[:, space] = False
        capped = _most_likely(lp, ranked, beam + 1)
        if space is not None:
            capped[:, space] = keep[:, space]
        keep = capped
    return [np.flatnonzero(row) for row in keep]


def prefix_beam_search(
    log_probs,
    beam: int = 10,
    blank: int = 0,
    lm: LanguageModel | None = None,
    lm_weight: float = 0.5,
    word_bonus: float = 0.0,
    space_id: int | None = None,
    units: Sequence[str] | None = None,
    prune_logp: float = -12.0,
    top_k: int | None = None,
) -> list[tuple[list[int], float]]:
    """The n-best labellings of one utterance's ``(T, V)`` log-probabilities, best first, with their scores
    (see the module docstring; without an LM a score is log p_ctc + ``word_bonus`` * units).

    ``lm`` (optional) is fused by shallow fusion: a character LM scores ``units[id]`` of every emitted unit;
    a word LM scores a word (its units joined) when ``space_id`` follows a non-empty word, and the last word
    at the end; both then score "</s>". While searching, an unfinished word has no LM score yet.
    ``word_bonus`` is added per LM unit (per emitted unit without an LM).

    Pruning only limits where new prefixes start: a unit may start or extend a prefix on a frame where its
    log-probability is at least ``prune_logp`` and, when ``top_k`` is given, it is among the frame's
    ``top_k`` most likely non-blank units. Without a character LM, only each frame's ``beam + 1`` most likely
    units are tried anyway, which gives the same result (see ``_candidates``). With a character LM every
    unit above ``prune_logp`` is tried, LM scores being looked up only while they could still matter; for
    large vocabularies (pinyin syllables) pass ``top_k`` (e.g. 2 * beam) to keep it fast.
    """
    lp = _as_array(log_probs)
    if lp.ndim != 2:
        raise ValueError(f"log_probs must be (T, V), not of shape {lp.shape}")
    n_units = lp.shape[1]
    _check_blank(blank, n_units)
    if beam < 1:
        raise ValueError(f"beam must be at least 1, not {beam}")
    if top_k is not None and top_k < 1:
        raise ValueError(f"top_k must be at least 1, not {top_k}")
    if lm is not None:
        if lm.unit not in _LM_UNITS:
            raise ValueError(f"the LM's unit must be one of {_LM_UNITS}, not {lm.unit!r}")
        if lm.order < 1:
            raise ValueError(f"the LM's order must be at least 1, not {lm.order}")
        if units is None or len(units) != n_units:
            raise ValueError(f"an LM needs the {n_units} output units as strings (units)")
        if lm.unit == "word" and (space_id is None or not 0 <= space_id < n_units or space_id == blank):
            raise ValueError("a word LM needs the id of the space unit (space_id)")
        if lm_weight < 0:
            raise ValueError(f"lm_weight must not be negative, not {lm_weight}")

    trie = _Prefixes(lm, lm_weight, word_bonus, units, space_id)
    lazy_lm = lm is not None and lm_weight > 0
    # What a new unit adds to a prefix's score before any LM call: exact without an LM, an upper bound with
    # one (LM log-probabilities are <= 0). A word LM only changes the score at a space after a word.
    bonus_bound = max(word_bonus, 0.0) if lazy_lm else word_bonus

    nodes = [0]
    p_b = np.zeros(1)
    p_nb = np.full(1, -np.inf)
    last = np.full(1, -1)
    extra = np.zeros(1)
    merges: list[tuple[int, int, int]] = []

    # A character LM makes a unit's score depend on the prefix it extends: no exact cap at the beam width.
    cap = None if lazy_lm and not trie.word_lm else beam
    frames = _candidates(lp, blank, prune_logp, top_k, cap, space_id if trie.word_lm else None)
    for t, cand in enumerate(frames):
        row = lp[t]
        total = np.logaddexp(p_b, p_nb)
        stay_b = total + row[blank]
        stay_nb = np.where(last >= 0, p_nb + row[np.maximum(last, 0)], -np.inf)
        # A prefix whose parent is in the beam also gets the paths that extend the parent on this frame,
        # whether or not its last unit is a candidate here (pruning only limits new prefixes).
        for b2, b, unit in merges:
            via = (p_b[b] if unit == last[b] else total[b]) + row[unit]
            stay_nb[b2] = np.logaddexp(stay_nb[b2], via)
        if cand.size == 0:  # no new prefix can start here: the beam keeps its prefixes
            p_b, p_nb = stay_b, stay_nb
            continue
        ext = np.where(cand[None, :] == last[:, None], p_b[:, None], total[:, None]) + row[cand][None, :]
        for _, b, unit in merges:
            k = _column(cand, unit)
            if k is not None:
                ext[b, k] = -np.inf  # counted above, in the prefix already in the beam

        if trie.word_lm:
            gain = np.zeros(ext.shape)
            needs_lm = np.zeros(ext.shape, dtype=bool)
            k = _column(cand, space_id)
            if k is not None:
                ends_word = np.array([bool(trie.word[node]) for node in nodes])
                gain[:, k] = np.where(ends_word, bonus_bound, 0.0)
                needs_lm[:, k] = ends_word & lazy_lm
        else:
            gain = np.full(ext.shape, bonus_bound)
            needs_lm = np.full(ext.shape, lazy_lm)
        scores = np.concatenate(
            [np.logaddexp(stay_b, stay_nb) + extra, (ext + extra[:, None] + gain).ravel()]
        )
        chosen = _best(scores, beam, needs_lm, gain, cand, nodes, trie)

        new_nodes, new_b, new_nb = [], [], []
        n_stay = len(nodes)
        for i in chosen:
            if i < n_stay:
                new_nodes.append(nodes[i])
                new_b.append(stay_b[i])
                new_nb.append(stay_nb[i])
            else:
                b, k = divmod(i - n_stay, cand.size)
                new_nodes.append(trie.child(nodes[b], int(cand[k])))
                new_b.append(-np.inf)
                new_nb.append(ext[b, k])
        nodes = new_nodes
        p_b, p_nb = np.array(new_b), np.array(new_nb)
        last = np.array([trie.token[n] for n in nodes])
        extra = np.array([trie.extra[n] for n in nodes])
        merges = _merges(nodes, trie)

    total = np.logaddexp(p_b, p_nb)
    finals = [(trie.labels(n), float(total[i]) + trie.final(n)) for i, n in enumerate(nodes)]
    finals = [f for f in finals if f[1] > -math.inf]
    finals.sort(key=lambda f: -f[1])
    return finals


def _column(cand: np.ndarray, unit: int) -> int | None:
    """Where ``unit`` is in the sorted candidates ``cand``, or None."""
    k = int(np.searchsorted(cand, unit))
    return k if k < cand.size and cand[k] == unit else None


def _merges(nodes: list[int], trie: _Prefixes) -> list[tuple[int, int, int]]:
    """(index, parent's index, last unit) of every prefix in the beam whose parent is in the beam too."""
    where = {node: b for b, node in enumerate(nodes)}
    out = []
    for b2, node in enumerate(nodes):
        b = where.get(trie.parent[node])
        if b is not None:
            out.append((b2, b, trie.token[node]))
    return out


def _best(
    scores: np.ndarray, beam: int, needs_lm: np.ndarray, gain: np.ndarray, cand: np.ndarray, nodes, trie
) -> list[int]:
    """Indices of the ``beam`` best entries of ``scores``: the beam's prefixes, then their extensions by
    ``cand``, row by row.

    An extension flagged in ``needs_lm`` holds an upper bound (``gain`` in place of its LM and bonus
    increment); its LM score is only looked up while the bound can still beat the beam's worst entry.
    """
    n_stay = len(nodes)
    finite = np.flatnonzero(scores > -np.inf)
    if not needs_lm.any():
        if finite.size <= beam:
            return finite.tolist()
        return finite[np.argpartition(-scores[finite], beam - 1)[:beam]].tolist()
    flags, gains = needs_lm.ravel(), gain.ravel()
    order = finite[np.argsort(-scores[finite], kind="stable")]
    heap: list[tuple[float, int]] = []
    for i in order.tolist():
        bound = scores[i]
        if len(heap) == beam and bound <= heap[0][0]:
            break
        exact = bound
        if i >= n_stay and flags[i - n_stay]:
            b, k = divmod(i - n_stay, cand.size)
            exact = bound - gains[i - n_stay] + trie.step(nodes[b], int(cand[k]))[0]
        if len(heap) < beam:
            heapq.heappush(heap, (exact, i))
        elif exact > heap[0][0]:
            heapq.heapreplace(heap, (exact, i))
    return [i for _, i in heap]


def decode_batch(log_probs, lengths=None, method: str = "greedy", **kw) -> list[list[int]]:
    """The best labelling of every utterance of a ``(B, T, V)`` batch (frames past ``lengths`` ignored),
    by ``greedy_decode`` or ``prefix_beam_search`` (``method="beam"``, ``kw`` passed on)."""
    lp = _as_array(log_probs)
    if lp.ndim != 3:
        raise ValueError(f"log_probs must be (B, T, V), not of shape {lp.shape}")
    if method == "greedy":
        return greedy_decode(lp, lengths, **kw)
    if method != "beam":
        raise ValueError(f"method must be 'greedy' or 'beam', not {method!r}")
    out = []
    for b, n in enumerate(_lengths(lengths, lp.shape[0], lp.shape[1])):
        nbest = prefix_beam_search(lp[b, :n], **kw)
        out.append(nbest[0][0] if nbest else [])
    return out
