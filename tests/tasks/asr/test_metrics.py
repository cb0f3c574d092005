"""Error rates: hand-computed alignments and counts, jiwer's text splitting and empty-reference conventions,
and parity with jiwer 4 (per-utterance S/D/I/H and corpus WER/CER) on random sentences."""

from __future__ import annotations

import random

import pytest

from aics.tasks.asr.metrics import (
    cer,
    chars,
    edit_ops,
    error_counts,
    score_corpus,
    token_error_rate,
    wer,
    words,
)

# ---- hand-computed alignments ----


def test_edit_ops_by_hand():
    assert edit_ops("abc", "abc") == (0, 0, 0, 3)
    assert edit_ops("abc", "axc") == (1, 0, 0, 2)
    assert edit_ops("abc", "ac") == (0, 1, 0, 2)
    assert edit_ops("abc", "abxc") == (0, 0, 1, 3)
    assert edit_ops(["the", "cat", "sat"], ["a", "cat", "sat", "down"]) == (1, 0, 1, 2)
    assert edit_ops("", "") == (0, 0, 0, 0)
    assert edit_ops("ab", "") == (0, 2, 0, 0)
    assert edit_ops("", "ab") == (0, 0, 2, 0)
    # Any hashable units: pinyin syllables, ids.
    assert edit_ops(["ni3", "hao3"], ["ni2", "hao3", "ma5"]) == (1, 0, 1, 1)
    assert edit_ops([1, 2, 3], (1, 3)) == (0, 1, 0, 2)


def test_equal_cost_alignments_resolved_as_jiwer():
    # "a b" -> "b c": two substitutions or delete a, hit b, insert c (both cost 2); jiwer reports 2 S.
    assert edit_ops("ab", "bc") == (2, 0, 0, 0)
    # "x y" -> "y x": 2 S or D + H + I; the backtrace from the end deletes y, matches x, inserts y.
    assert edit_ops("xy", "yx") == (0, 1, 1, 1)
    # "a" -> "b c": a substitution and an insertion whichever word is inserted.
    assert edit_ops("a", "bc") == (1, 0, 1, 0)
    assert edit_ops("aba", "bab") == (0, 1, 1, 2)
    # The common prefix and suffix are always hits.
    assert edit_ops("aab", "ab") == (0, 1, 0, 2)


# ---- jiwer's text splitting ----


def test_words_like_jiwer_default():
    assert words("  the cat   sat ") == ["the", "cat", "sat"]
    assert words("") == [] and words(" \t\n ") == []
    # Only runs of two or more white-space characters become a space: a lone tab joins two words.
    assert words("a\tb  c\t\td") == ["a\tb", "c", "d"]


def test_chars_keep_inner_spaces():
    assert chars(" a  b ") == ["a", " ", " ", "b"]
    assert chars("\tab\n") == ["a", "b"]


def test_error_counts():
    assert error_counts("the cat sat", "the bat sat on", "word") == {"S": 1, "D": 0, "I": 1, "H": 2, "N": 3}
    assert error_counts("ab c", "abc", "char") == {"S": 0, "D": 1, "I": 0, "H": 3, "N": 4}
    assert error_counts("", "x y", "word") == {"S": 0, "D": 0, "I": 2, "H": 0, "N": 0}
    with pytest.raises(ValueError, match="unit"):
        error_counts("a", "a", "syllable")


def test_corpus_rates_sum_before_dividing():
    # 1 error in 4 words, 1 error in 1 word: 2 / 5 (a mean of per-utterance rates would give 0.625).
    assert wer(["a b c d", "e"], ["a b x d", "f"]) == pytest.approx(2 / 5)
    assert cer(["ab", "c d"], ["ab", "cd"]) == pytest.approx(1 / 5)
    assert wer("a b", "a b c") == pytest.approx(0.5)  # single strings are single sentences
    assert token_error_rate([["ni3", "hao3"], ["ma5"]], [["ni3"], ["ma5"]]) == pytest.approx(1 / 3)


def test_empty_references():
    # An empty reference adds no words; its hypothesis words are insertions.
    assert wer(["a b", ""], ["a b", "x"]) == pytest.approx(1 / 2)
    # A corpus without any reference word: jiwer's "rate" is the number of insertions.
    assert wer([""], ["x y"]) == 2.0
    assert wer([""], [""]) == 0.0
    assert token_error_rate([[]], [[]]) == 0.0


def test_mismatched_lengths_are_errors():
    with pytest.raises(ValueError, match="2 references but 1 hypotheses"):
        wer(["a", "b"], ["a"])
    with pytest.raises(ValueError):
        token_error_rate([["a"]], [])


def test_score_corpus_by_hand():
    s = score_corpus([("the cat sat", "the bat sat"), ("hello", "hello"), ("", "uh")])
    assert s["n_utts"] == 3 and s["n_words"] == 4 and s["n_chars"] == 16
    assert (s["S"], s["D"], s["I"], s["H"]) == (1, 0, 1, 3)
    assert s["wer"] == pytest.approx(2 / 4)
    assert (s["char_S"], s["char_D"], s["char_I"], s["char_H"]) == (1, 0, 2, 15)
    assert s["cer"] == pytest.approx(3 / 16)
    assert s["ser"] == pytest.approx(2 / 3)
    empty = score_corpus([])
    assert empty["n_utts"] == 0 and empty["wer"] == 0.0 and empty["ser"] == 0.0


# ---- parity with jiwer on random sentences ----

VOCAB = ["a", "b", "c", "the", "cat", "sat", "on", "mat", "x"]


def _sentence(rng: random.Random) -> str:
    return " ".join(rng.choice(VOCAB) for _ in range(rng.choice([0, 1, 2, rng.randint(3, 25)])))


def _edited(rng: random.Random, ref: str) -> str:
    """The reference with random substitutions, deletions and insertions (or an unrelated sentence)."""
    if rng.random() < 0.2:
        return _sentence(rng)
    out = ref.split()
    for _ in range(rng.randint(0, 6)):
        k = rng.randint(0, len(out))
        op = rng.random()
        if op < 0.35:
            out.insert(k, rng.choice(VOCAB))
        elif out and op < 0.7:
            out.pop(min(k, len(out) - 1))
        elif out:
            out[min(k, len(out) - 1)] = rng.choice(VOCAB)
    return " ".join(out)


def _messy(rng: random.Random, text: str) -> str:
    """Extra spaces, tabs and newlines where jiwer's transforms treat them specially."""
    seps = [" ", " ", " ", "  ", "\t", " \t", "\t\t", "\n "]
    return (
        rng.choice(["", " ", "  ", "\t"])
        + "".join(w + rng.choice(seps) for w in text.split()).rstrip()
        + rng.choice(["", " ", " \n"])
    )


def _pairs(seed: int, n: int) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    pairs = []
    for _ in range(n):
        ref = _sentence(rng)
        hyp = _edited(rng, ref)
        if rng.random() < 0.3:
            ref, hyp = _messy(rng, ref), _messy(rng, hyp)
        pairs.append((ref, hyp))
    return pairs


def _jiwer_counts(out) -> dict[str, int]:
    n = len(out.references[0])
    return {"S": out.substitutions, "D": out.deletions, "I": out.insertions, "H": out.hits, "N": n}


def test_counts_match_jiwer_per_utterance():
    jiwer = pytest.importorskip("jiwer")
    for ref, hyp in _pairs(0, 400):
        assert error_counts(ref, hyp, "word") == _jiwer_counts(jiwer.process_words(ref, hyp)), (ref, hyp)
        assert error_counts(ref, hyp, "char") == _jiwer_counts(jiwer.process_characters(ref, hyp)), (ref, hyp)


def test_edit_ops_match_jiwer_on_long_unit_sequences():
    # Long sequences over a tiny alphabet have many equal-cost alignments: the tie-breaking must agree.
    jiwer = pytest.importorskip("jiwer")
    rng = random.Random(1)
    for _ in range(40):
        ref = [rng.choice("ab") for _ in range(rng.randint(0, 120))]
        hyp = [rng.choice("abc") for _ in range(rng.randint(0, 120))]
        w = jiwer.process_words(" ".join(ref), " ".join(hyp))
        assert edit_ops(ref, hyp) == (w.substitutions, w.deletions, w.insertions, w.hits)


def test_corpus_scores_match_jiwer():
    jiwer = pytest.importorskip("jiwer")
    for seed in range(20):
        pairs = _pairs(100 + seed, 25)
        refs, hyps = [r for r, _ in pairs], [h for _, h in pairs]
        assert wer(refs, hyps) == pytest.approx(jiwer.wer(refs, hyps), abs=1e-12)
        assert cer(refs, hyps) == pytest.approx(jiwer.cer(refs, hyps), abs=1e-12)
        s = score_corpus(pairs)
        w = jiwer.process_words(refs, hyps)
        assert (s["S"], s["D"], s["I"], s["H"]) == (w.substitutions, w.deletions, w.insertions, w.hits)
        assert s["wer"] == pytest.approx(w.wer, abs=1e-12)
        assert s["cer"] == pytest.approx(jiwer.cer(refs, hyps), abs=1e-12)
        tokens = [words(r) for r in refs], [words(h) for h in hyps]
        assert token_error_rate(*tokens) == pytest.approx(w.wer, abs=1e-12)
    # All references empty: jiwer's count of insertions.
    assert wer(["", " "], ["a", "b c"]) == jiwer.wer(["", " "], ["a", "b c"]) == 3
