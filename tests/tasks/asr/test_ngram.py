"""N-gram LM: Kneser-Ney by hand, normalisation, ARPA round trip and parity with pocketsphinx's reader."""

from __future__ import annotations

import gzip
import math
import random

import pytest

from aics.core.errors import UserError
from aics.tasks.asr.ngram import (
    _discounts,
    char_tokens,
    read_arpa,
    train_ngram,
    word_tokens,
    write_arpa,
)

WORDS = ["x", "y", "zz", "w", "v"]


def random_corpus(seed: int, n: int = 40, tokens=WORDS, max_len: int = 8) -> list[list[str]]:
    rng = random.Random(seed)
    return [[rng.choice(tokens) for _ in range(rng.randint(0, max_len))] for _ in range(n)]


def contexts(order: int, tokens, seed: int = 0, n: int = 30) -> list[tuple[str, ...]]:
    """Contexts of every length up to order - 1 (and longer), seen and unseen, with unknown tokens and <s>."""
    rng = random.Random(seed)
    out = [(), ("<s>",), ("<s>", "<s>", "<s>"), ("never-seen",), ("never-seen", "<unk>")]
    for _ in range(n):
        h = tuple(rng.choice([*tokens, "q"]) for _ in range(rng.randint(0, order + 1)))
        if h and rng.random() < 0.3:
            h = ("<s>", *h[rng.randint(0, len(h) - 1) + 1 :])
        out.append(h)
    return out


def test_tokens():
    assert char_tokens("  ab  c\td ") == ["a", "b", " ", "c", " ", "d"]
    assert word_tokens("  ab  c\td ") == ["ab", "c", "d"]


def test_bigram_by_hand():
    """Interpolated KN with one discount per order, computed on paper for <s> a b </s> x2, <s> b </s>.

    Bigrams (raw counts) <s>a 2, ab 2, b</s> 3, <s>b 1: n1=1, n2=2, D2 = 1/5. Unigrams (continuation counts)
    a 1, b 2, </s> 1: D1 = 2/4; |V| = 4 with <unk>; gamma() = 0.5 * 3 / 4.
    """
    lm = train_ngram([["a", "b"], ["a", "b"], ["b"]], order=2, modified=False)
    assert lm.vocab == {"a", "b", "</s>", "<unk>"}
    p1 = {"a": 0.5 / 4 + 0.375 / 4, "b": 1.5 / 4 + 0.375 / 4, "</s>": 0.5 / 4 + 0.375 / 4, "<unk>": 0.375 / 4}
    assert sum(p1.values()) == pytest.approx(1.0)
    # context "a": count 2 of b, gamma(a) = 0.2 * 1 / 2
    assert math.exp(lm.score(("a",), "b")) == pytest.approx(1.8 / 2 + 0.1 * p1["b"])
    assert math.exp(lm.score(("a",), "</s>")) == pytest.approx(0.1 * p1["</s>"])
    # context <s>: a 2, b 1, gamma(<s>) = 0.2 * 2 / 3
    assert math.exp(lm.score(("<s>",), "a")) == pytest.approx(1.8 / 3 + 0.2 * 2 / 3 * p1["a"])
    assert math.exp(lm.score(("<s>",), "zz")) == pytest.approx(0.2 * 2 / 3 * p1["<unk>"])
    # an unseen context backs off to the unigrams with weight 1
    assert math.exp(lm.score(("<unk>",), "b")) == pytest.approx(p1["b"])
    assert lm.sentence_logprob(["a", "b"]) == pytest.approx(
        lm.score(("<s>",), "a") + lm.score(("<s>", "a"), "b") + lm.score(("a", "b"), "</s>")
    )


def test_modified_discounts_formula():
    # counts-of-counts n1..n4 = 10, 5, 3, 2: Y = 0.5, D1 = 0.5, D2 = 2 - 1.5 * 3 / 5, D3+ = 3 - 2 * 2 / 3
    counts = [1] * 10 + [2] * 5 + [3] * 3 + [4] * 2 + [7]
    d, fallback = _discounts(counts, modified=True)
    assert not fallback
    assert d == pytest.approx((0.5, 1.1, 3 - 4 / 3))
    assert _discounts(counts, modified=False) == ((0.5, 0.5, 0.5), False)
    assert _discounts([2, 2, 5], modified=True) == ((0.5, 1.0, 1.5), True)  # no singletons: fallback


@pytest.mark.parametrize("modified", [True, False])
@pytest.mark.parametrize("order", [1, 2, 3, 4])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_distributions_sum_to_one(order, modified, seed):
    corpus = random_corpus(seed, n=10 + 20 * seed, max_len=3 + 3 * seed)
    lm = train_ngram(corpus, order=order, modified=modified)
    assert lm.vocab == {*{t for s in corpus for t in s}, "</s>", "<unk>"}
    for h in contexts(order, WORDS, seed):
        total = sum(math.exp(lm.score(h, w)) for w in lm.vocab)
        assert total == pytest.approx(1.0, abs=1e-9), h


def test_char_lm_over_given_units():
    units = list("' abcdefghijklmnopqrstuvwxyz")
    corpus = [char_tokens(t) for t in ["the cat sat", "a cat", "the hat's on", "sat on the mat"]]
    lm = train_ngram(corpus, order=4, unit="char", vocab=units)
    assert lm.vocab == {*units, "</s>", "<unk>"}
    for h in [(), tuple("the "), tuple("zq"), tuple(" ca"), ("<s>", "t")]:
        assert sum(math.exp(lm.score(h, w)) for w in lm.vocab) == pytest.approx(1.0, abs=1e-9)
    assert lm.score(tuple("the c"), "a") > lm.score(tuple("the c"), "x")  # learnt: "ca" follows
    assert lm.score(tuple(" "), "z") > -math.inf  # never seen, still possible
    assert lm.score((), "é") == lm.score((), "<unk>")


def test_context_semantics():
    lm = train_ngram(random_corpus(3), order=3)
    for w in ["x", "</s>", "q"]:
        # padding with <s> and anything before the last <s> change nothing; only the last 2 tokens count
        assert lm.score((), w) == lm.score(("<s>",), w) == lm.score(("<s>", "<s>"), w)
        assert lm.score(("x", "<s>", "y"), w) == lm.score(("<s>", "y"), w)
        assert lm.score(("v", "v", "x", "y"), w) == lm.score(("x", "y"), w)
    assert lm.score(("x",), "q") == lm.score(("x",), "<unk>")
    assert lm.score(("x",), "<s>") == -math.inf


def test_perplexity():
    train = random_corpus(4, n=60, tokens=["a", "b"]) + [["a", "b", "a", "b"]] * 30
    lm = train_ngram(train, order=3)
    held = [["a", "b", "a", "b"], ["a", "b"]]
    n_tokens = 4 + 1 + 2 + 1
    expected = math.exp(-sum(lm.sentence_logprob(s) for s in held) / n_tokens)
    assert lm.perplexity(held) == pytest.approx(expected)
    assert lm.perplexity(held) < lm.perplexity([["b", "b", "a", "a"], ["b", "a"]])
    assert lm.perplexity(held) < 2.0  # far better than uniform over a, b, </s>, <unk>


@pytest.mark.parametrize("order", [1, 2, 3, 5])
@pytest.mark.parametrize("unit", ["word", "char"])
def test_arpa_round_trip(tmp_path, order, unit):
    if unit == "char":
        corpus = [char_tokens(t) for t in ["ab ba", "a b", "bab aab", "b", ""]] * 3
        tokens = ["a", "b", " "]
    else:
        corpus, tokens = random_corpus(order, n=50), WORDS
    lm = train_ngram(corpus, order=order, unit=unit)
    path = tmp_path / "lm.arpa"
    write_arpa(lm, path)
    back = read_arpa(path)
    assert (back.order, back.unit, back.vocab) == (lm.order, lm.unit, lm.vocab)
    assert back.counts() == lm.counts()
    n_pairs = 0
    for h in contexts(order, tokens, seed=order, n=60):
        for w in [*sorted(lm.vocab), "unseen"]:
            assert back.score(h, w) == pytest.approx(lm.score(h, w), abs=1e-5), (h, w)
            n_pairs += 1
    assert n_pairs > 300

    text = path.read_text()
    assert "\\data\\" in text and text.rstrip().endswith("\\end\\")
    for n, count in enumerate(lm.counts(), 1):
        assert f"ngram {n}={count}\n" in text
    if order > 1:
        assert "-99.0000000\t<s>\t" in text  # <s>: never predicted, holds a backoff weight
    if unit == "char":
        assert "<space>" in text
        assert read_arpa(path, unit="word").vocab == {"a", "b", "<space>", "</s>", "<unk>"}

    gz = tmp_path / "lm.arpa.gz"
    gz.write_bytes(gzip.compress(path.read_bytes()))
    assert read_arpa(gz).score(("a",), "b") == back.score(("a",), "b")


@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_arpa_parity_with_pocketsphinx(tmp_path, order):
    """pocketsphinx's own ARPA reader (integer logs in base 1.0001) scores our file as we do.

    (At order 5 its scores after a context starting with <s> shorter than 4 tokens do not sum to one,
    so the comparison stops at 4.)"""
    ps = pytest.importorskip("pocketsphinx")
    lm = train_ngram(random_corpus(10 + order, n=40), order=order)
    write_arpa(lm, tmp_path / "lm.arpa")
    theirs = ps.NGramModel.readfile(str(tmp_path / "lm.arpa"))
    rng = random.Random(order)
    for _ in range(300):
        h = tuple(rng.choice([*WORDS, "<unk>"]) for _ in range(order - 1))
        if h and rng.random() < 0.3:
            h = ("<s>", *h[rng.randint(0, len(h) - 1) + 1 :])
        w = rng.choice([*WORDS, "</s>", "<unk>"])
        # pocketsphinx takes the word, then its history most recent first
        their_score = theirs.prob([w, *reversed(h)]) * math.log(1.0001)
        assert their_score == pytest.approx(lm.score(h, w), abs=5e-4), (h, w)


BAD_ARPA = {
    "no data": ("just text\n", "no \\data\\ line"),
    "bad count": ("\\data\\\nngram 1=x\n", ":2: expected 'ngram 1=<count>'"),
    "count mismatch": (
        "\\data\\\nngram 1=3\n\n\\1-grams:\n-1.0\ta\n-1.0\tb\n\n\\end\\\n",
        "declares 3 1-grams",
    ),
    "not a number": ("\\data\\\nngram 1=1\n\n\\1-grams:\nabc\ta\n\\end\\\n", ":5: not a number"),
    "fields": (
        "\\data\\\nngram 1=1\nngram 2=1\n\n\\1-grams:\n-1\ta\n\\2-grams:\n-1\ta\n\\end\\\n",
        ":8: a 2-gram line needs",
    ),
    "no end": ("\\data\\\nngram 1=1\n\n\\1-grams:\n-1.0\ta\n", "ends before \\end\\"),
    "order skipped": ("\\data\\\nngram 1=1\nngram 2=0\n\n\\2-grams:\n\\end\\\n", ":5: section \\2-grams:"),
    "duplicate": (
        "\\data\\\nngram 1=2\n\n\\1-grams:\n-1\ta\n-2\ta\n\\end\\\n",
        ":6: the 1-gram 'a' appears twice",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_ARPA))
def test_bad_arpa_is_a_user_error(tmp_path, case):
    text, message = BAD_ARPA[case]
    path = tmp_path / "bad.arpa"
    path.write_text(text)
    with pytest.raises(UserError) as e:
        read_arpa(path)
    assert str(e.value).startswith(str(path))
    assert message in str(e.value)
    assert "\n" not in str(e.value)


def test_missing_or_binary_arpa(tmp_path):
    with pytest.raises(UserError, match="not found"):
        read_arpa(tmp_path / "nope.arpa")
    (tmp_path / "bin.arpa").write_bytes(b"\\data\\\nngram 1=1\n\xff\xfe\n")
    with pytest.raises(UserError, match="not UTF-8"):
        read_arpa(tmp_path / "bin.arpa")


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="order"):
        train_ngram([["a"]], order=0)
    with pytest.raises(ValueError, match="unit"):
        train_ngram([["a"]], unit="phone")
    with pytest.raises(ValueError, match="method"):
        train_ngram([["a"]], method="witten_bell")
    with pytest.raises(ValueError, match="<s>"):
        train_ngram([["a", "</s>"]])
    with pytest.raises(ValueError, match="whitespace"):
        write_arpa(train_ngram([["a b"]]), tmp_path / "lm.arpa")
    assert not list(tmp_path.iterdir())
