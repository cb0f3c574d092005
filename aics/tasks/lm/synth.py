"""A seeded, offline stand-in for the Penn Treebank: text from a sparse hidden Markov model, and its floor.

Usage: aics lm synth --out data/lm_synth --train-tokens 1000000 --valid-tokens 80000 --test-tokens 80000

The source is an HMM over pronounceable pseudo-words ("bako", "tenimu"). Its word states are laid out in
phases, like the parts of a clause: openers (where every sentence starts), middle phases, and closers, which
may move to a special end state. Each state has a handful of successors and emits a Zipf-weighted subset of
the vocabulary; frequent words belong to many states (function words), rare ones to one or two. The end
state emits ``<eos>`` and its row of the transition matrix is the start distribution ``pi``: the corpus is
one token stream in which every ``<eos>`` restarts the sentence process.

``generate`` writes ``train.txt``, ``valid.txt`` and ``test.txt`` in the PTB layout (one sentence a line, a
leading space, tokens separated by single spaces, ``<eos>`` not written; readers append it), ``source.npz``
(``pi``, ``transition``, ``emission``, ``vocab``; the last state is the end state, the last symbol
``<eos>``) and ``floor.json``: the exact per-token cross-entropy of the true source on valid and test, read
the way a language model reads them (every word type missing from train is ``<unk>``, the first token is
predicted from an ``<eos>`` context). No model can do better on average, so every LM result is measured
against it; unigram, bigram and trigram baselines from train counts show how much context is worth.

The same seed gives byte-identical files. The source and each split come from independent streams of that
seed, so the source and the test text do not change when only the training size does.
"""

from __future__ import annotations

import io
import math
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from aics.core.errors import UserError
from aics.core.io import atomic_write, write_json, write_text
from aics.core.log import progress

EOS, UNK = "<eos>", "<unk>"
SPLITS = ("train", "valid", "test")
FILES = {"train": "train.txt", "valid": "valid.txt", "test": "test.txt"}
SOURCE_FILE, FLOOR_FILE = "source.npz", "floor.json"
SOURCE_KEYS = ("pi", "transition", "emission", "vocab")

DEFAULT_STATES = 40
MIN_STATES, MAX_STATES = 4, 400
MIN_VOCAB, MAX_VOCAB = 50, 100_000
MIN_TOKENS = 100

# Pseudo-words: consonant-vowel syllables, sometimes closed by a coda on the last one. Frequent ranks get
# the short words (Zipf's law of abbreviation), as in real text.
CONSONANTS = "bdfgklmnprstvz"
VOWELS = "aeiou"
CODAS = "nrs"
SYLLABLE_COUNT_PROBS = (0.06, 0.44, 0.38, 0.12)  # 1, 2, 3, 4 syllables
CODA_PROB = 0.2

# Sentence structure.
PHASES = 4  # openers, two middle phases, closers
OPENER_FRACTION = 0.2
SUCCESSORS = (2, 6)  # out-degree of a word state, inclusive
SAME_PHASE_PROB, NEXT_PHASE_PROB = 0.4, 0.4  # where extra successors are drawn from; the rest: anywhere
MEAN_SENTENCE_WORDS = 20.0  # expected words per sentence (tokens: one more, the <eos>)

# Emissions. A word of global rank r belongs to 1 + floor(SHARE * K / sqrt(r + 1)) states; within a state the
# members are ranked by global rank (blurred by noise) and weighted (position + 1) ** -a, a drawn per state.
SHARE = 0.25
STATE_CAPACITY_SPREAD = 4.0  # the largest state draws members up to this many times as often as the smallest
ORDER_NOISE = 1.0  # std of the noise on log(rank + 1) that orders a state's members
WEIGHT_NOISE = 0.3  # std of the log-normal factor on each emission weight
ZIPF_EXPONENT = (1.0, 1.25)
MIN_STATE_WORDS = 5

# Sampling runs sentences in parallel chunks; a fixed schedule keeps a smaller split a prefix of a larger
# one drawn from the same stream.
CHUNK_SENTENCES = (256, 1024, 4096, 8192)
FORWARD_BLOCK = 8192  # tokens per progress-bar update in the forward pass


@dataclass(frozen=True)
class HmmSource:
    """A discrete HMM: ``pi`` (S,) for the state of the first token, ``transition`` (S, S) with rows
    summing to 1, ``emission`` (S, M) over the symbols ``vocab`` (M,).

    In a generated source the last state is the end state, which emits only the last symbol, ``<eos>``,
    and moves on with ``pi``.
    """

    pi: np.ndarray
    transition: np.ndarray
    emission: np.ndarray
    vocab: np.ndarray

    @property
    def num_states(self) -> int:
        return len(self.pi)

    @property
    def end_state(self) -> int:
        return self.num_states - 1

    @property
    def eos_id(self) -> int:
        return len(self.vocab) - 1


# ---- the source ----


def pseudo_words(n: int, rng: np.random.Generator) -> list[str]:
    """``n`` distinct lowercase pseudo-words, shortest first (rank 0 is meant to be the most frequent)."""
    syllables = [c + v for c in CONSONANTS for v in VOWELS]
    seen: set[str] = set()
    words: list[str] = []
    while len(words) < n:
        batch = 2 * (n - len(words)) + 16
        counts = rng.choice(len(SYLLABLE_COUNT_PROBS), size=batch, p=SYLLABLE_COUNT_PROBS) + 1
        picks = rng.integers(len(syllables), size=(batch, len(SYLLABLE_COUNT_PROBS)))
        codas = np.where(rng.random(batch) < CODA_PROB, rng.integers(len(CODAS), size=batch), -1)
        for count, row, coda in zip(counts.tolist(), picks.tolist(), codas.tolist(), strict=True):
            word = "".join(syllables[i] for i in row[:count]) + (CODAS[coda] if coda >= 0 else "")
            if word not in seen:
                seen.add(word)
                words.append(word)
                if len(words) == n:
                    break
    return sorted(words, key=len)  # stable: equal lengths keep their random order


def _phases(states: int) -> np.ndarray:
    """Phase of each word state, in state order: openers first, closers last."""
    openers = max(1, round(OPENER_FRACTION * states))
    rest = np.arange(states - openers) * (PHASES - 1) // (states - openers) + 1
    return np.concatenate([np.zeros(openers, dtype=np.int64), rest])


def _successor_sets(phase: np.ndarray, rng: np.random.Generator) -> list[list[int]]:
    """Sparse successor lists in which every state is reachable from an opener and can reach a closer.

    Each state of phase p > 0 gets a predecessor in phase p - 1 and each state before the last phase a
    successor in the next one; the rest are drawn from the same phase, the next one, or anywhere.
    """
    states = len(phase)
    members = [np.flatnonzero(phase == p) for p in range(PHASES)]
    successors: list[list[int]] = [[] for _ in range(states)]
    for p in range(1, PHASES):
        # Round-robin over the previous phase, so no state collects more forced successors than its share
        # (neighbouring phases differ in size by at most ~1.3x: two at most, within SUCCESSORS).
        predecessors = rng.permutation(members[p - 1]).tolist()
        for n, j in enumerate(rng.permutation(members[p]).tolist()):
            successors[predecessors[n % len(predecessors)]].append(j)
    for p in range(PHASES - 1):
        for i in members[p].tolist():
            if not any(phase[j] == p + 1 for j in successors[i]):
                successors[i].append(int(rng.choice(members[p + 1])))
    for i in range(states):
        degree = min(int(rng.integers(SUCCESSORS[0], SUCCESSORS[1] + 1)), states - 1)
        last = phase[i] == PHASES - 1
        while len(successors[i]) < degree:
            u = rng.random()
            if u < SAME_PHASE_PROB:
                pool = members[phase[i]]
            elif u < SAME_PHASE_PROB + NEXT_PHASE_PROB and not last:
                pool = members[phase[i] + 1]
            else:
                pool = np.arange(states)
            pool = [j for j in pool.tolist() if j != i and j not in successors[i]]
            if not pool:
                pool = [j for j in range(states) if j != i and j not in successors[i]]
            successors[i].append(int(rng.choice(pool)))
    return successors


def _expected_sentence_words(pi_words: np.ndarray, between_words: np.ndarray) -> float:
    # Expected visits to word states before absorption in the end state: pi (I - Q)^-1 1.
    visits = np.linalg.solve(np.eye(len(pi_words)) - between_words.T, pi_words)
    return float(visits.sum())


def _transitions(phase: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``pi`` and the (K + 1, K + 1) transition matrix; end probabilities scaled to MEAN_SENTENCE_WORDS."""
    states = len(phase)
    end = states
    openers = np.flatnonzero(phase == 0)
    pi = np.zeros(states + 1)
    pi[openers] = rng.gamma(2.0, size=len(openers))
    pi /= pi.sum()
    word_moves = np.zeros((states, states))
    for i, succ in enumerate(_successor_sets(phase, rng)):
        weights = rng.gamma(1.0, size=len(succ)) + 0.05  # no successor is practically unreachable
        word_moves[i, succ] = weights / weights.sum()
    # Closers end sentences often, the phase before them now and then, openers never: no one-word sentence.
    end_weight = np.where(phase == PHASES - 1, rng.uniform(0.5, 1.0, states), 0.0)
    if PHASES - 2 > 0:
        end_weight = np.where(phase == PHASES - 2, rng.uniform(0.0, 0.2, states), end_weight)

    def with_end(scale: float) -> tuple[np.ndarray, np.ndarray]:
        end_prob = np.minimum(scale * end_weight, 0.95)
        return word_moves * (1.0 - end_prob)[:, None], end_prob

    # The expected length falls as the end probabilities grow: bisect their common scale.
    low, high = 0.0, 0.95 / end_weight.max()
    for _ in range(100):
        mid = (low + high) / 2
        if _expected_sentence_words(pi[:states], with_end(mid)[0]) > MEAN_SENTENCE_WORDS:
            low = mid
        else:
            high = mid
    moves, end_prob = with_end(high)
    transition = np.zeros((states + 1, states + 1))
    transition[:states, :states] = moves
    transition[:states, end] = end_prob
    transition[:states] /= transition[:states].sum(axis=1, keepdims=True)
    transition[end] = pi
    return pi, transition


def _emissions(vocab_size: int, states: int, rng: np.random.Generator) -> np.ndarray:
    """(K + 1, V + 1) emission matrix: word states over the V words (by rank), the end state on <eos>."""
    ranks = np.arange(vocab_size)
    multiplicity = np.minimum(1 + np.floor(SHARE * states / np.sqrt(ranks + 1)).astype(np.int64), states)
    capacity = np.log(rng.uniform(1.0, STATE_CAPACITY_SPREAD, states))
    # Sampling states without replacement in proportion to capacity: top-m of log weight + Gumbel noise.
    keys = capacity[None, :] + rng.gumbel(size=(vocab_size, states))
    order = np.argsort(-keys, axis=1)
    membership = np.arange(states)[None, :] < multiplicity[:, None]  # (V, K) in each row's key order
    member = np.zeros((vocab_size, states), dtype=bool)
    np.put_along_axis(member, order, membership, axis=1)
    for k in range(states):
        short = MIN_STATE_WORDS - int(member[:, k].sum())
        if short > 0:
            member[rng.choice(np.flatnonzero(~member[:, k]), size=short, replace=False), k] = True
    emission = np.zeros((states + 1, vocab_size + 1))
    for k in range(states):
        words = np.flatnonzero(member[:, k])
        position_key = np.log(words + 1.0) + rng.normal(0.0, ORDER_NOISE, len(words))
        positions = np.empty(len(words))
        positions[np.argsort(position_key, kind="stable")] = np.arange(len(words))
        exponent = rng.uniform(*ZIPF_EXPONENT)
        weights = (positions + 1.0) ** -exponent * rng.lognormal(0.0, WEIGHT_NOISE, len(words))
        emission[k, words] = weights / weights.sum()
    emission[states, vocab_size] = 1.0
    return emission


def build_source(vocab_size: int = 3000, states: int = DEFAULT_STATES, seed: int = 0) -> HmmSource:
    """A random sparse HMM over ``vocab_size`` pseudo-words with ``states`` word states plus the end state."""
    vocab_size = _check_int("vocab_size", vocab_size, MIN_VOCAB, MAX_VOCAB)
    states = _check_int("states", states, MIN_STATES, MAX_STATES)
    seed = _check_int("seed", seed, 0, None)
    return _build_source(vocab_size, states, np.random.default_rng(np.random.SeedSequence(seed).spawn(4)[0]))


def _build_source(vocab_size: int, states: int, rng: np.random.Generator) -> HmmSource:
    words = pseudo_words(vocab_size, rng)
    pi, transition = _transitions(_phases(states), rng)
    emission = _emissions(vocab_size, states, rng)
    return HmmSource(pi=pi, transition=transition, emission=emission, vocab=np.array(words + [EOS]))


def save_source(path: str | Path, source: HmmSource) -> None:
    """An .npz that loads with ``allow_pickle=False``; fixed zip timestamps make it byte-reproducible."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for key in SOURCE_KEYS:
            member = io.BytesIO()
            np.lib.format.write_array(member, np.asarray(getattr(source, key)), allow_pickle=False)
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, member.getvalue())
    with atomic_write(path, "wb") as f:
        f.write(buffer.getvalue())


def load_source(path: str | Path) -> HmmSource:
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            return HmmSource(**{key: data[key] for key in SOURCE_KEYS})
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as e:
        raise UserError(f"{path}: not a source written by `aics lm synth` ({e}); regenerate it") from None


def state_occupancy(source: HmmSource) -> np.ndarray:
    """Long-run fraction of tokens emitted by each state (the stationary distribution of the chain)."""
    system = source.transition.T - np.eye(source.num_states)
    system[-1] = 1.0  # replace one balance equation by "sums to 1"
    rhs = np.zeros(source.num_states)
    rhs[-1] = 1.0
    return np.linalg.solve(system, rhs)


# ---- sampling ----


def _inverse_cdf_table(probs: np.ndarray) -> np.ndarray:
    # Dividing by the row total makes every entry from the last non-zero one on exactly 1.0, so a uniform
    # draw in [0, 1) never lands on a zero-probability column.
    cumulative = np.cumsum(probs, axis=-1)
    return cumulative / cumulative[..., -1:]


def _sample_state_paths(source: HmmSource, n_sentences: int, rng: np.random.Generator) -> np.ndarray:
    """State sequences of ``n_sentences`` sentences, concatenated, each ending with the end state."""
    transition_cdf = _inverse_cdf_table(source.transition)
    states = np.searchsorted(_inverse_cdf_table(source.pi), rng.random(n_sentences), side="right")
    active = np.arange(n_sentences)
    steps_sentence, steps_state = [], []
    while len(active):
        steps_sentence.append(active)
        steps_state.append(states)
        running = states != source.end_state
        active, states = active[running], states[running]
        draws = rng.random(len(states))
        # Row-wise inverse CDF: the number of cumulative entries at or below the draw.
        states = (transition_cdf[states] <= draws[:, None]).sum(axis=1)
    sentence = np.concatenate(steps_sentence)
    step = np.concatenate([np.full(len(a), t) for t, a in enumerate(steps_sentence)])
    order = np.lexsort((step, sentence))
    return np.concatenate(steps_state)[order]


def _emit(source: HmmSource, path: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    symbols = np.empty(len(path), dtype=np.int64)
    draws = rng.random(len(path))
    for k in range(source.num_states):
        at = np.flatnonzero(path == k)
        if len(at):
            support = np.flatnonzero(source.emission[k])
            cdf = _inverse_cdf_table(source.emission[k, support])
            symbols[at] = support[np.searchsorted(cdf, draws[at], side="right")]
    return symbols


def sample_stream(
    source: HmmSource, n_tokens: int, rng: np.random.Generator, desc: str = "", show_progress: bool = False
) -> np.ndarray:
    """Whole sentences (each closed by <eos>) until at least ``n_tokens`` tokens: the ids as one stream.

    Only for sources whose last state is the end state; sentences are drawn in parallel, chunk by chunk.
    """
    chunks, total, chunk_index = [], 0, 0
    with progress(total=n_tokens, desc=desc, enabled=show_progress, unit="tok") as bar:
        while total < n_tokens:
            n_sentences = CHUNK_SENTENCES[min(chunk_index, len(CHUNK_SENTENCES) - 1)]
            chunk = _emit(source, _sample_state_paths(source, n_sentences, rng), rng)
            ends = np.flatnonzero(chunk == source.eos_id) + 1
            # Stop at the end of the sentence that reaches the count.
            enough = np.searchsorted(ends, n_tokens - total)
            if enough < len(ends):
                chunk = chunk[: ends[enough]]
            chunks.append(chunk)
            bar.update(min(len(chunk), n_tokens - total))
            total += len(chunk)
            chunk_index += 1
    return np.concatenate(chunks)


# ---- scoring ----


def stream_log_prob(
    source: HmmSource, token_ids: np.ndarray, desc: str = "", show_progress: bool = False
) -> float:
    """Natural log-probability of the symbol sequence ``token_ids`` under the HMM (scaled forward algorithm).

    The first symbol is emitted by a state drawn from ``pi``. The forward vector is renormalised at every
    step, so long streams neither underflow nor lose precision; the log of the product of the
    normalisers is the answer. Returns -inf when the stream is impossible.
    """
    ids = np.asarray(token_ids)
    if ids.ndim != 1 or (len(ids) and not np.issubdtype(ids.dtype, np.integer)):
        raise UserError("token_ids: must be a 1-D array of integer symbol ids")
    if len(ids) == 0:
        return 0.0
    if ids.min() < 0 or ids.max() >= len(source.vocab):
        raise UserError(f"token_ids: ids must lie in [0, {len(source.vocab)}) (the source's symbols)")
    emission_of_symbol = np.ascontiguousarray(source.emission.T)  # (M, S): rows are contiguous
    transition = np.ascontiguousarray(source.transition)
    scales = np.empty(len(ids))
    forward = source.pi * emission_of_symbol[ids[0]]
    with progress(total=len(ids), desc=desc, enabled=show_progress, unit="tok") as bar:
        for start in range(0, len(ids), FORWARD_BLOCK):
            for t in range(start, min(start + FORWARD_BLOCK, len(ids))):
                if t:
                    forward = (forward @ transition) * emission_of_symbol[ids[t]]
                scale = forward.sum()
                if not scale > 0.0:
                    return -math.inf
                forward /= scale
                scales[t] = scale
            bar.update(min(FORWARD_BLOCK, len(ids) - start))
    return float(np.log(scales).sum())


def lm_view(source: HmmSource, seen: np.ndarray) -> tuple[HmmSource, np.ndarray]:
    """The source as an LM with a train-only vocabulary sees it: unseen word types merged into ``<unk>``.

    ``seen`` (M,) marks the symbols that occur in train (<eos> is kept either way). Returns the merged
    source, whose symbols are the seen words in their order, ``<unk>``, then ``<eos>`` (still last), and the
    map from old to new symbol ids. The ``<unk>`` column carries the summed emission probability of every
    unseen type, so the merged source gives a stream of LM tokens exactly the total probability of all the
    word streams that map onto it.
    """
    is_word = np.arange(len(source.vocab)) != source.eos_id
    seen = np.asarray(seen, dtype=bool)
    kept, missing = np.flatnonzero(seen & is_word), ~seen & is_word
    unk_column = source.emission[:, missing].sum(axis=1, keepdims=True)
    eos_column = source.emission[:, source.eos_id :]
    merged = HmmSource(
        pi=source.pi,
        transition=source.transition,
        emission=np.concatenate([source.emission[:, kept], unk_column, eos_column], axis=1),
        vocab=np.concatenate([source.vocab[kept], np.array([UNK, EOS])]),
    )
    old_to_new = np.full(len(source.vocab), len(kept), dtype=np.int64)
    old_to_new[kept] = np.arange(len(kept))
    old_to_new[source.eos_id] = len(kept) + 1
    return merged, old_to_new


def _lookup_counts(keys: np.ndarray, table_keys: np.ndarray, table_counts: np.ndarray) -> np.ndarray:
    position = np.minimum(np.searchsorted(table_keys, keys), len(table_keys) - 1)
    return np.where(table_keys[position] == keys, table_counts[position], 0)


def _tuned_interpolation(
    model: np.ndarray, fallback: np.ndarray, has_context: np.ndarray, valid: slice
) -> tuple[float, np.ndarray]:
    """The weight in [0, 0.995] of ``model`` against ``fallback`` that maximises the valid likelihood."""
    grid = np.linspace(0.0, 0.995, 200)
    mixed = grid[:, None] * model[None, valid] + (1.0 - grid[:, None]) * fallback[None, valid]
    loglik = np.where(has_context[None, valid], np.log(mixed), np.log(fallback[None, valid])).sum(axis=1)
    weight = float(grid[int(np.argmax(loglik))])
    return weight, np.where(has_context, weight * model + (1.0 - weight) * fallback, fallback)


def ngram_baselines(
    train: np.ndarray, valid: np.ndarray, test: np.ndarray, vocab_size: int, eos_id: int
) -> dict:
    """Test perplexities of count models from train, in LM ids (``vocab_size`` types with <eos> and <unk>).

    unigram: add-one over the vocabulary. bigram: maximum likelihood interpolated with that unigram, the
    weight tuned on valid. trigram: maximum likelihood interpolated with that bigram, tuned the same way.
    Every token is predicted; the context before a stream's first token is <eos>.
    """
    unigram = (np.bincount(train, minlength=vocab_size) + 1.0) / (len(train) + vocab_size)

    def with_history(stream: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        padded = np.concatenate([[eos_id, eos_id], stream]).astype(np.int64)
        return padded[:-2], padded[1:-1]  # two tokens back, one token back

    def table(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return np.unique(keys, return_counts=True)

    v = np.int64(vocab_size)
    before2, before1 = with_history(train)
    bigrams, contexts1 = table(before1 * v + train), table(before1)
    trigrams, contexts2 = table((before2 * v + before1) * v + train), table(before2 * v + before1)

    # Score valid and test together; the weights are tuned on the valid part only.
    held_out = np.concatenate([valid, test]).astype(np.int64)
    b2, b1 = (np.concatenate(pair) for pair in zip(with_history(valid), with_history(test), strict=True))
    valid_part, test_part = slice(0, len(valid)), slice(len(valid), None)
    p_unigram = unigram[held_out]
    context1 = _lookup_counts(b1, *contexts1)
    ml_bigram = _lookup_counts(b1 * v + held_out, *bigrams) / np.maximum(context1, 1)
    bigram_weight, p_bigram = _tuned_interpolation(ml_bigram, p_unigram, context1 > 0, valid_part)
    context2 = _lookup_counts(b2 * v + b1, *contexts2)
    ml_trigram = _lookup_counts((b2 * v + b1) * v + held_out, *trigrams) / np.maximum(context2, 1)
    trigram_weight, p_trigram = _tuned_interpolation(ml_trigram, p_bigram, context2 > 0, valid_part)

    def ppl(probs: np.ndarray) -> float:
        return float(np.exp(-np.log(probs[test_part]).mean()))

    return {
        "unigram_ppl": ppl(p_unigram),
        "bigram_ppl": ppl(p_bigram),
        "bigram_weight": bigram_weight,
        "trigram_ppl": ppl(p_trigram),
        "trigram_weight": trigram_weight,
    }


# ---- the corpus ----


def _check_int(name: str, value: object, low: int, high: int | None) -> int:
    bounds = f"from {low} to {high}" if high is not None else f"at least {low}"
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise UserError(f"{name} {value!r}: must be a whole number {bounds}")
    if value < low or (high is not None and value > high):
        raise UserError(f"{name} {value}: must be {bounds}")
    return int(value)


def ptb_text(source: HmmSource, stream: np.ndarray) -> str:
    """The stream as PTB lines: `` w1 w2 w3`` per sentence, <eos> becoming the line break."""
    pieces = np.array([" " + str(w) for w in source.vocab[:-1]] + ["\n"], dtype=object)
    return "".join(pieces[stream].tolist())


def generate(
    out_dir: str | Path,
    train_tokens: int = 1_000_000,
    valid_tokens: int = 80_000,
    test_tokens: int = 80_000,
    vocab_size: int = 3000,
    states: int = DEFAULT_STATES,
    seed: int = 0,
    show_progress: bool = True,
) -> dict:
    """Write the corpus, ``source.npz`` and ``floor.json`` into ``out_dir``; return floor.json's content
    plus ``out_dir`` and ``paths``.

    Token counts include one <eos> per sentence; each split ends with the sentence that reaches its count.
    """
    sizes = {
        split: _check_int(f"{split}_tokens", value, MIN_TOKENS, None)
        for split, value in zip(SPLITS, (train_tokens, valid_tokens, test_tokens), strict=True)
    }
    vocab_size = _check_int("vocab_size", vocab_size, MIN_VOCAB, MAX_VOCAB)
    states = _check_int("states", states, MIN_STATES, MAX_STATES)
    seed = _check_int("seed", seed, 0, None)
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"{out_dir}: exists and is not a directory; choose another --out")

    source_seed, *split_seeds = np.random.SeedSequence(seed).spawn(4)
    source = _build_source(vocab_size, states, np.random.default_rng(source_seed))
    streams = {
        split: sample_stream(source, sizes[split], np.random.default_rng(s), f"synth {split}", show_progress)
        for split, s in zip(SPLITS, split_seeds, strict=True)
    }

    seen = np.bincount(streams["train"], minlength=len(source.vocab)) > 0
    merged, to_lm = lm_view(source, seen)
    lm_streams = {split: to_lm[stream] for split, stream in streams.items()}
    unk_id = merged.eos_id - 1  # lm_view puts <unk> just before <eos>
    floor: dict = {}
    for split in ("valid", "test"):
        ids = lm_streams[split]
        nats = -stream_log_prob(merged, ids, f"floor {split}", show_progress) / len(ids)
        floor[split] = {
            "tokens": len(ids),
            "sentences": int((ids == merged.eos_id).sum()),
            "unk_tokens": int((ids == unk_id).sum()),
            "nats_per_token": nats,
            "ppl": math.exp(nats),
        }
    floor["train"] = {
        "tokens": len(streams["train"]),
        "sentences": int((streams["train"] == source.eos_id).sum()),
    }
    floor["unk_types"] = int(vocab_size - seen[:-1].sum())
    words_per_sentence = _expected_sentence_words(source.pi[:-1], source.transition[:-1, :-1])
    floor["source"] = {
        "K": states,
        "vocab_size": vocab_size,
        "end_state": source.end_state,
        "seed": seed,
        "expected_sentence_tokens": words_per_sentence + 1.0,
        "successors_per_state": float((source.transition[:-1, :-1] > 0).sum(axis=1).mean()),
        "words_per_state": float((source.emission[:-1] > 0).sum(axis=1).mean()),
    }
    floor["baselines"] = ngram_baselines(
        lm_streams["train"], lm_streams["valid"], lm_streams["test"], len(merged.vocab), merged.eos_id
    )

    paths = {split: out_dir / FILES[split] for split in SPLITS}
    paths["source"], paths["floor"] = out_dir / SOURCE_FILE, out_dir / FLOOR_FILE
    try:
        for split in SPLITS:
            write_text(paths[split], ptb_text(source, streams[split]))
        save_source(paths["source"], source)
        write_json(paths["floor"], floor)
    except OSError as e:
        raise UserError(f"{out_dir}: cannot write the corpus ({e})") from e
    return {**floor, "out_dir": str(out_dir), "paths": {k: str(p) for k, p in paths.items()}}
