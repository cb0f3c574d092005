"""The sentence generator and the English normaliser of the speech corpora (aics.tasks.asr.text)."""

from __future__ import annotations

import re

import pytest

from aics.core.errors import UserError
from aics.tasks.asr.text import (
    ENGLISH_CHARS,
    SentenceGenerator,
    article,
    cardinal,
    expand_text,
    full_lexicon,
    limited_lexicon,
    make_verb,
    normalize_text,
    ordinal,
    plural,
    word_count,
    year,
)

# Hand-written: what a speaker says for each written form.
EXPANSIONS = [
    ("0", "zero"),
    ("13", "thirteen"),
    ("21", "twenty-one"),
    ("105", "one hundred five"),
    ("2,500", "two thousand five hundred"),
    ("1,000,000", "one million"),
    ("In 1999 we left.", "In nineteen ninety-nine we left."),
    ("2024", "twenty twenty-four"),
    ("1905", "nineteen oh five"),
    ("1900", "nineteen hundred"),
    ("2005", "two thousand five"),
    ("the 1990s", "the nineteen nineties"),
    ("3.5", "three point five"),
    ("0.75", "zero point seven five"),
    ("$3.50", "three dollars and fifty cents"),
    ("$1", "one dollar"),
    ("$0.99", "ninety-nine cents"),
    ("$1.01", "one dollar and one cent"),
    ("$1,200", "one thousand two hundred dollars"),
    ("$2.5 million", "two point five million dollars"),
    ("45%", "forty-five percent"),
    ("12.5%", "twelve point five percent"),
    ("7th", "seventh"),
    ("21st", "twenty-first"),
    ("2nd", "second"),
    ("112th", "one hundred twelfth"),
    ("100th", "one hundredth"),
    ("10:30", "ten thirty"),
    ("7:05", "seven oh five"),
    ("12:00", "twelve o'clock"),
    ("at 9:00 a.m.", "at nine a.m."),
    ("3 km", "three kilometers"),
    ("1 km", "one kilometer"),
    ("Mr. Smith paid $3.", "Mister Smith paid three dollars."),
    ("Mrs. Brown met Dr. Lee on Elm Dr.", "Missus Brown met Doctor Lee on Elm Drive."),
    ("St. Louis is not on Main St. today", "Saint Louis is not on Main Street today"),
    (
        "near Mt. Hood with Capt. Cole Jr. and Prof. Ward",
        "near Mount Hood with Captain Cole Junior and Professor Ward",
    ),
    ("pears, e.g. these; i.e. those", "pears, for example these; that is those"),
    ("apples, pears, etc.", "apples, pears, et cetera."),
    ("salt & pepper", "salt and pepper"),
]


@pytest.mark.parametrize(("raw", "spoken"), EXPANSIONS)
def test_expand_text(raw: str, spoken: str) -> None:
    assert expand_text(raw) == spoken


@pytest.mark.parametrize(
    ("raw", "transcript"),
    [
        ("Mr. Smith paid $3.50, didn't he?", "mister smith paid three dollars and fifty cents didn't he"),
        ('"Hello," said Dr. Lee at 10:30 p.m.', "hello said doctor lee at ten thirty p m"),
        ("The boys' kite isn't 'here'.", "the boys' kite isn't here"),
        ("A well-known café; 21 of them!", "a well known cafe twenty one of them"),
        ("In 2024, 45% finished 7th.", "in twenty twenty four forty five percent finished seventh"),
        ("  spaced \t out  ", "spaced out"),
    ],
)
def test_normalize_text(raw: str, transcript: str) -> None:
    assert normalize_text(raw) == transcript


def test_number_words() -> None:
    assert cardinal(999_999) == "nine hundred ninety-nine thousand nine hundred ninety-nine"
    assert cardinal(1_000_001) == "one million one"
    assert cardinal(-4) == "minus four"
    assert ordinal(1) == "first" and ordinal(3) == "third" and ordinal(20) == "twentieth"
    assert ordinal(1005) == "one thousand fifth"
    assert year(2010) == "twenty ten" and year(1066) == "ten sixty-six" and year(2000) == "two thousand"


def test_inflections() -> None:
    assert [plural(n) for n in ("box", "city", "day", "knife", "child", "church")] == [
        "boxes",
        "cities",
        "days",
        "knives",
        "children",
        "churches",
    ]
    stop, take, carry, tie, visit = (
        make_verb(v) for v in ("stop", "take:took:taken", "carry", "tie", "visit")
    )
    assert (stop.third, stop.past, stop.ing) == ("stops", "stopped", "stopping")
    assert (take.past, take.participle, take.ing) == ("took", "taken", "taking")
    assert (carry.third, carry.past) == ("carries", "carried")
    assert tie.ing == "tying"
    assert (visit.past, visit.ing) == ("visited", "visiting")
    assert [article(w) for w in ("apple", "hour", "unicorn", "useful", "urban", "dog")] == [
        "an",
        "an",
        "a",
        "a",
        "an",
        "a",
    ]


def test_generator_is_deterministic_and_order_free() -> None:
    a, b = SentenceGenerator(seed=7), SentenceGenerator(seed=7)
    forward = a.sentences(50)
    backward = [b.sentence(i) for i in reversed(range(50))][::-1]
    assert forward == backward
    assert SentenceGenerator(seed=8).sentences(50) != forward
    assert a.sentences(50, stream=1) != forward  # streams are independent
    assert a.sentences(5, start=10) == forward[10:15]


def test_sentences_are_varied_and_well_formed() -> None:
    gen = SentenceGenerator(seed=0, min_words=4, max_words=20)
    sentences = gen.sentences(1500)
    assert len(set(sentences)) >= 0.99 * len(sentences)
    joined = "\n".join(sentences)
    for mark in ("?", "!", ";", '"', ",", "$", "%", ":", "Mr.", "Dr.", "a.m.", "p.m.", "'s", "n't"):
        assert mark in joined, mark
    assert re.search(r"\b\d{1,3},\d{3}\b", joined) and re.search(r"\b\d+(st|nd|rd|th)\b", joined)
    assert re.search(r"\b(1[89]|20)\d\d\b", joined)  # years
    for raw in sentences:
        assert raw[0].isupper() or raw[0] in '"$' or raw[0].isdigit(), raw
        assert raw[-1] in '.?!"', raw
        transcript = normalize_text(raw)
        assert set(transcript) <= set(ENGLISH_CHARS), raw
        assert transcript == " ".join(transcript.split())
        assert 4 <= word_count(raw) <= 20, raw
        assert not re.search(r"\d", expand_text(raw)), raw


def test_vocab_size_limits_the_words() -> None:
    full = full_lexicon()
    assert full.size >= 2000  # a large controlled vocabulary of real words
    small = limited_lexicon(80)
    assert 78 <= small.size <= 82
    assert small.nouns == full.nouns[: len(small.nouns)]  # the most common words are kept
    assert small.verbs == full.verbs[: len(small.verbs)]

    def words(gen: SentenceGenerator) -> set[str]:
        return {w for s in gen.sentences(600) for w in normalize_text(s).split()}

    def forms(lex) -> set[str]:
        out = set(lex.nouns) | {plural(n) for n in lex.nouns}
        out |= {
            f for v in lex.verbs + lex.intransitive for f in (v.base, v.third, v.past, v.participle, v.ing)
        }
        return out | {w.lower() for w in lex.adjectives + lex.adverbs + lex.male + lex.female + lex.surnames}

    limited, unlimited = words(SentenceGenerator(0, vocab_size=80)), words(SentenceGenerator(0))
    assert len(limited) < len(unlimited) / 2
    beyond = forms(full) - forms(small)  # words only the full lexicon has
    # a limited generator says them only where its grammar does ("paid $3", "Dr." -> "doctor")
    assert len(unlimited & beyond) > 1000
    assert len(limited & beyond) < 80


def test_bad_settings_are_one_line_errors() -> None:
    with pytest.raises(UserError, match="vocab_size"):
        SentenceGenerator(vocab_size=5)
    with pytest.raises(UserError, match="sentence length"):
        SentenceGenerator(min_words=10, max_words=5)
    with pytest.raises(UserError, match="seed"):
        SentenceGenerator(seed=-1)
