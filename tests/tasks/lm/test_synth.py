"""The synthetic PTB generator: layout, determinism, the source file, and an exact perplexity floor."""

from __future__ import annotations

import itertools
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

from aics.core.errors import UserError
from aics.tasks.lm.synth import (
    EOS,
    UNK,
    HmmSource,
    build_source,
    generate,
    lm_view,
    load_source,
    ngram_baselines,
    pseudo_words,
    sample_stream,
    stream_log_prob,
)

SIZES = {"train": 60_000, "valid": 8_000, "test": 8_000}
CORPUS_FILES = {"train.txt", "valid.txt", "test.txt", "source.npz", "floor.json"}


def tiny_generate(out_dir: Path, seed: int = 0, train_tokens: int = 2_000) -> dict:
    return generate(out_dir, train_tokens, 500, 500, vocab_size=200, states=8, seed=seed, show_progress=False)


def read_ids(path: Path, index: dict[str, int]) -> np.ndarray:
    """A split as the LM reads it: every line's tokens, then <eos>; types missing from index -> <unk>."""
    ids = []
    for line in path.read_text(encoding="utf-8").splitlines():
        ids += [index.get(word, index[UNK]) for word in line.split()] + [index[EOS]]
    return np.array(ids)


def log_space_forward(source: HmmSource, ids: np.ndarray) -> float:
    """The forward algorithm in log space, written independently of the module's scaled version."""
    with np.errstate(divide="ignore"):
        log_pi, log_a, log_b = np.log(source.pi), np.log(source.transition), np.log(source.emission)
    alpha = log_pi + log_b[:, ids[0]]
    for symbol in ids[1:]:
        alpha = np.logaddexp.reduce(alpha[:, None] + log_a, axis=0) + log_b[:, symbol]
    return float(np.logaddexp.reduce(alpha))


def random_hmm(rng: np.random.Generator, states: int, symbols: int) -> HmmSource:
    transition = rng.random((states, states))
    transition[0, 1] = 0.0  # a forbidden move, which the path sum must respect
    emission = rng.random((states, symbols))
    return HmmSource(
        pi=rng.dirichlet(np.ones(states)),
        transition=transition / transition.sum(axis=1, keepdims=True),
        emission=emission / emission.sum(axis=1, keepdims=True),
        vocab=np.array([f"s{i}" for i in range(symbols)]),
    )


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, dict]:
    out_dir = tmp_path_factory.mktemp("lm_synth")
    info = generate(out_dir, SIZES["train"], SIZES["valid"], SIZES["test"], seed=7, show_progress=False)
    return out_dir, info


@pytest.fixture(scope="module")
def lm_index(corpus) -> dict[str, int]:
    """The LM's vocabulary: train types only, plus <eos> and <unk>."""
    out_dir, _ = corpus
    types = {w for line in (out_dir / "train.txt").read_text().splitlines() for w in line.split()}
    return {w: i for i, w in enumerate([EOS, UNK, *sorted(types)])}


def test_writes_the_ptb_layout_with_the_requested_sizes(corpus):
    out_dir, info = corpus
    assert {p.name for p in out_dir.iterdir()} == CORPUS_FILES
    for split, requested in SIZES.items():
        text = (out_dir / f"{split}.txt").read_text(encoding="utf-8")
        assert text.endswith("\n")
        lines = text.split("\n")[:-1]
        for line in lines:
            assert re.fullmatch(r"( [a-z]+)+", line), f"{split}: not a PTB line: {line!r}"
        tokens = sum(len(line.split()) + 1 for line in lines)  # + the <eos> the reader appends
        longest = max(len(line.split()) + 1 for line in lines)
        assert requested <= tokens < requested + longest
        # The split ends with the sentence that reaches the count, not later.
        assert tokens - (len(lines[-1].split()) + 1) < requested
        if split != "train":
            assert info[split]["tokens"] == tokens and info[split]["sentences"] == len(lines)
    on_disk = json.loads((out_dir / "floor.json").read_text())
    assert on_disk == {k: v for k, v in info.items() if k not in ("out_dir", "paths")}
    assert {Path(p).name for p in info["paths"].values()} == CORPUS_FILES


def test_sentences_have_a_realistic_length(corpus):
    out_dir, info = corpus
    lengths = np.array([len(line.split()) for line in (out_dir / "train.txt").read_text().splitlines()])
    assert lengths.min() >= 2
    assert 14 < lengths.mean() < 26
    assert info["source"]["expected_sentence_tokens"] == pytest.approx(lengths.mean() + 1, rel=0.08)


def test_same_seed_gives_identical_files_and_another_seed_differs(tmp_path):
    tiny_generate(tmp_path / "a", seed=3)
    tiny_generate(tmp_path / "b", seed=3)
    tiny_generate(tmp_path / "c", seed=4)
    for name in CORPUS_FILES:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
        assert (tmp_path / "a" / name).read_bytes() != (tmp_path / "c" / name).read_bytes(), name


def test_a_larger_train_split_leaves_the_source_and_the_test_text_alone(tmp_path):
    tiny_generate(tmp_path / "small", train_tokens=2_000)
    tiny_generate(tmp_path / "large", train_tokens=20_000)
    for name in ("source.npz", "valid.txt", "test.txt"):
        assert (tmp_path / "small" / name).read_bytes() == (tmp_path / "large" / name).read_bytes()
    small, large = ((tmp_path / d / "train.txt").read_text() for d in ("small", "large"))
    assert len(large) > 5 * len(small) and large.startswith(small)


def test_source_file_loads_without_pickle_and_is_a_valid_sparse_hmm(corpus):
    out_dir, info = corpus
    with np.load(out_dir / "source.npz", allow_pickle=False) as data:
        pi, transition, emission, vocab = (data[k] for k in ("pi", "transition", "emission", "vocab"))
    states, words = info["source"]["K"], info["source"]["vocab_size"]
    assert pi.shape == (states + 1,) and transition.shape == (states + 1, states + 1)
    assert emission.shape == (states + 1, words + 1) and vocab.shape == (words + 1,)
    assert vocab.dtype.kind == "U" and vocab[-1] == EOS
    for matrix in (pi[None], transition, emission):
        assert (matrix >= 0).all()
        np.testing.assert_allclose(matrix.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    # The end state emits only <eos>, which no word state emits, and restarts from pi.
    end = info["source"]["end_state"]
    assert end == states and emission[end, -1] == 1.0 and (emission[:end, -1] == 0).all()
    np.testing.assert_array_equal(transition[end], pi)
    assert pi[end] == 0 and (transition[pi > 0, end] == 0).all()  # openers never end: no 1-word sentence
    successors = (transition[:end, :end] > 0).sum(axis=1)
    assert successors.min() >= 2 and successors.max() <= 6
    assert (emission[:end] > 0).sum(axis=1).min() >= 5
    words_list = vocab[:-1].tolist()
    assert len(set(words_list)) == words and all(re.fullmatch(r"[a-z]+", w) for w in words_list)
    rebuilt = build_source(seed=7)  # the generator's defaults and seed: the same source, from its own stream
    for key, value in (("pi", pi), ("transition", transition), ("emission", emission), ("vocab", vocab)):
        np.testing.assert_array_equal(getattr(rebuilt, key), value)
    assert load_source(out_dir / "source.npz").vocab.tolist() == vocab.tolist()


def test_pseudo_words_are_distinct_and_short_ones_come_first():
    words = pseudo_words(500, np.random.default_rng(0))
    assert len(words) == len(set(words)) == 500
    assert [len(w) for w in words] == sorted(len(w) for w in words)
    assert UNK not in words and EOS not in words


def test_forward_equals_the_sum_over_all_state_paths():
    rng = np.random.default_rng(0)
    source = random_hmm(rng, states=3, symbols=4)
    ids = rng.integers(4, size=7)
    total = 0.0
    for path in itertools.product(range(3), repeat=len(ids)):
        p = source.pi[path[0]] * source.emission[path[0], ids[0]]
        for t in range(1, len(ids)):
            p *= source.transition[path[t - 1], path[t]] * source.emission[path[t], ids[t]]
        total += p
    assert stream_log_prob(source, ids) == pytest.approx(math.log(total), rel=1e-12)


def test_forward_equals_a_log_space_implementation_on_a_long_stream():
    source = build_source(vocab_size=200, states=8, seed=1)
    stream = sample_stream(source, 3_000, np.random.default_rng(2))
    expected = log_space_forward(source, stream)
    assert expected < -1000.0  # far below what an unscaled product of probabilities could represent
    assert stream_log_prob(source, stream) == pytest.approx(expected, rel=1e-10)


def test_log_prob_of_a_stream_is_the_sum_over_its_sentences():
    # After <eos> the state is drawn from pi again, so sentences are independent: a second way to the value.
    source = build_source(vocab_size=200, states=8, seed=1)
    stream = sample_stream(source, 2_000, np.random.default_rng(3))
    ends = np.flatnonzero(stream == source.eos_id) + 1
    by_sentence = sum(stream_log_prob(source, s) for s in np.split(stream, ends[:-1]))
    assert stream_log_prob(source, stream) == pytest.approx(by_sentence, rel=1e-10)


def test_impossible_streams_score_minus_infinity():
    source = build_source(vocab_size=200, states=8, seed=1)
    # The first state is an opener, and openers never emit <eos>.
    assert stream_log_prob(source, np.array([source.eos_id, 0])) == -math.inf


def test_unk_gets_the_summed_probability_of_every_type_missing_from_train():
    rng = np.random.default_rng(4)
    raw = random_hmm(rng, states=3, symbols=5)
    raw = HmmSource(raw.pi, raw.transition, raw.emission, np.array(["a", "b", "c", "d", EOS]))
    seen = np.array([True, False, True, False, True])  # b and d never occur in train
    merged, to_lm = lm_view(raw, seen)
    assert merged.vocab.tolist() == ["a", "c", UNK, EOS]
    np.testing.assert_allclose(merged.emission[:, 2], raw.emission[:, 1] + raw.emission[:, 3])
    stream = np.array([0, 1, 4, 3, 2, 1])  # a b <eos> d c b: three unseen tokens
    lm_stream = to_lm[stream]
    assert lm_stream.tolist() == [0, 2, 3, 2, 1, 2]
    unk_at = np.flatnonzero(lm_stream == 2)
    total = 0.0
    for fillers in itertools.product((1, 3), repeat=len(unk_at)):
        candidate = stream.copy()
        candidate[unk_at] = fillers
        total += math.exp(stream_log_prob(raw, candidate))
    assert stream_log_prob(merged, lm_stream) == pytest.approx(math.log(total), rel=1e-12)


def test_floor_json_is_the_true_source_scored_on_the_text_as_the_lm_reads_it(corpus, lm_index):
    out_dir, info = corpus
    source = load_source(out_dir / "source.npz")
    train_types = set(lm_index) - {EOS, UNK}
    merged, to_lm = lm_view(source, np.array([w in train_types for w in source.vocab]))
    word_to_merged = {w: i for i, w in enumerate(merged.vocab.tolist())}
    assert info["unk_types"] == info["source"]["vocab_size"] - len(train_types)
    for split in ("valid", "test"):
        ids = read_ids(out_dir / f"{split}.txt", word_to_merged)
        nats = -stream_log_prob(merged, ids) / len(ids)
        assert info[split]["tokens"] == len(ids)
        assert info[split]["unk_tokens"] == int((ids == word_to_merged[UNK]).sum())
        assert info[split]["nats_per_token"] == pytest.approx(nats, rel=1e-9)
        assert info[split]["ppl"] == pytest.approx(math.exp(nats), rel=1e-9)
    assert info["test"]["unk_tokens"] > 0  # a small train leaves types out: the merging was exercised


def test_floor_is_below_the_bigram_which_is_below_the_unigram(corpus):
    _, info = corpus
    baselines = info["baselines"]
    assert info["test"]["ppl"] < baselines["bigram_ppl"] < baselines["unigram_ppl"]
    assert baselines["unigram_ppl"] > 3 * info["test"]["ppl"]
    assert baselines["trigram_ppl"] <= baselines["bigram_ppl"]


def test_unigram_baseline_is_add_one_over_the_lm_vocabulary(corpus, lm_index):
    out_dir, info = corpus
    train, valid, test = (read_ids(out_dir / f"{s}.txt", lm_index) for s in ("train", "valid", "test"))
    counts = np.bincount(train, minlength=len(lm_index)) + 1.0
    expected = math.exp(-np.log(counts[test] / counts.sum()).mean())
    assert info["baselines"]["unigram_ppl"] == pytest.approx(expected, rel=1e-9)
    again = ngram_baselines(train, valid, test, len(lm_index), lm_index[EOS])
    assert again["bigram_ppl"] == pytest.approx(info["baselines"]["bigram_ppl"], rel=1e-9)


def test_floor_matches_the_source_entropy_rate_on_a_fresh_sample(corpus, lm_index):
    out_dir, info = corpus
    source = load_source(out_dir / "source.npz")
    train_types = set(lm_index) - {EOS, UNK}
    merged, to_lm = lm_view(source, np.array([w in train_types for w in source.vocab]))
    fresh = to_lm[sample_stream(source, 60_000, np.random.default_rng(1234))]
    entropy_rate = -stream_log_prob(merged, fresh) / len(fresh)
    assert info["test"]["nats_per_token"] == pytest.approx(entropy_rate, rel=0.03)
    assert info["valid"]["nats_per_token"] == pytest.approx(entropy_rate, rel=0.03)


def test_no_other_source_scores_better_than_the_true_one(corpus, lm_index):
    out_dir, info = corpus
    source = load_source(out_dir / "source.npz")
    train_types = set(lm_index) - {EOS, UNK}
    merged, _ = lm_view(source, np.array([w in train_types for w in source.vocab]))
    ids = read_ids(out_dir / "test.txt", {w: i for i, w in enumerate(merged.vocab.tolist())})
    smoothed = 0.9 * merged.emission + 0.1 * merged.emission.mean(axis=0, keepdims=True)
    blurred_moves = 0.9 * merged.transition + 0.1 * merged.transition[merged.pi.argmax()]
    for other in (
        HmmSource(merged.pi, merged.transition, smoothed, merged.vocab),
        HmmSource(merged.pi, blurred_moves, merged.emission, merged.vocab),
    ):
        assert -stream_log_prob(other, ids) / len(ids) > info["test"]["nats_per_token"]


def test_the_lab_reader_sees_the_same_tokens(corpus, tmp_path):
    from aics.tasks.lm.data import prepare

    out_dir, info = corpus
    stats = prepare(out_dir, tmp_path / "prepared")
    for split in ("valid", "test"):
        assert stats["splits"][split]["tokens"] == info[split]["tokens"]
    assert stats["splits"]["test"]["unigram_ppl"] == pytest.approx(info["baselines"]["unigram_ppl"], abs=1e-3)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"train_tokens": 0},
        {"valid_tokens": -5},
        {"test_tokens": 1500.0},
        {"train_tokens": True},
        {"vocab_size": 10},
        {"vocab_size": "3000"},
        {"states": 1},
        {"states": 100_000},
        {"seed": -1},
    ],
)
def test_bad_arguments_are_user_errors(tmp_path, kwargs):
    with pytest.raises(UserError) as excinfo:
        generate(tmp_path / "out", show_progress=False, **kwargs)
    assert "\n" not in str(excinfo.value)
    assert not (tmp_path / "out").exists()


def test_an_output_path_that_is_a_file_is_a_user_error(tmp_path):
    (tmp_path / "taken").write_text("x")
    with pytest.raises(UserError, match="not a directory"):
        tiny_generate(tmp_path / "taken")


def test_stream_log_prob_rejects_ids_outside_the_vocabulary():
    source = build_source(vocab_size=200, states=8, seed=1)
    with pytest.raises(UserError, match="ids must lie"):
        stream_log_prob(source, np.array([0, len(source.vocab)]))
