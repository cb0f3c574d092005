"""A lexical sliding-window baseline: answer with the short span whose surroundings share most question words.

This is the kind of baseline the SQuAD paper reports below its logistic regression model: it knows nothing
of answer types or syntax, only where the question's words occur in the passage. Every span of 1 to
``max_words`` white-space words inside one sentence of the context is a candidate, unless it starts or
ends with a stop word, holds no letter or digit, or all its words are question words (a question rarely
contains its answer). Words are compared in lower case without edge punctuation and without a plural or
possessive "s". A question word found in the passage weighs ``log(1 + 1 / count)``, ``count`` being its
occurrences in the passage (rare words say more); stop words weigh nothing.

Candidates do not cut through a run of capitalised words ("Dovan Ellis"): a rough stand-in for the parse
constituents the paper's candidates are. They are ranked by

1. the weight of the distinct question words in the candidate's sentence, the candidate's own words left
   out (the SQuAD paper's first filter: the sentence that best matches the question),
2. the weight of the distinct question words among the ``window`` words on either side of the candidate
   (the sliding window of Richardson et al., 2013),
3. nearness: the summed distance, in words, from the candidate to the nearest occurrence of each of those,
4. the shorter span, then the earlier one.

A data set on which this baseline does well can be solved by word matching; ``aics squad synth`` is built
so that it cannot be (tests/tasks/squad/test_synth.py holds it to that).
"""

from __future__ import annotations

import math
import re
import string
from collections import Counter

MAX_WORDS = 4
WINDOW = 8

_WORD = re.compile(r"\S+")
_EDGE_PUNCTUATION = string.punctuation + "“”‘’«»—–"
_STOP_WORD_TEXT = """
    a an the of in on at to for from by with and or but as is was were are be been being has have had
    it its this that these those which who whom whose what when where why how he she his her him they
    their them there than then do does did not no into over under about after before during between
"""
STOP_WORDS = frozenset(_STOP_WORD_TEXT.split())


def _key(word: str) -> str:
    """A word as the baseline compares it: lower case, edge punctuation and a possessive or plural ending
    trimmed ("Tovin's" -> "tovin", "makes" -> "make"), so that word forms still match."""
    key = word.strip(_EDGE_PUNCTUATION).lower()
    for ending in ("'s", "’s"):
        key = key.removesuffix(ending)
    if len(key) > 3 and key.endswith("s") and not key.endswith(("ss", "us", "is")):
        key = key[:-1]
    return key


def _words(text: str) -> list[tuple[int, int]]:
    """Character spans of the white-space words of ``text``, edge punctuation trimmed (empty ones dropped)."""
    spans = []
    for match in _WORD.finditer(text):
        start, end = match.span()
        while start < end and text[start] in _EDGE_PUNCTUATION:
            start += 1
        while end > start and text[end - 1] in _EDGE_PUNCTUATION:
            end -= 1
        if start < end:
            spans.append((start, end))
    return spans


def _sentences(context: str, spans: list[tuple[int, int]]) -> list[int]:
    """The sentence number of each word: a sentence ends where . ! or ? stands between two words."""
    if not spans:
        return []
    numbers, current = [], 0
    for (_, end), following in zip(spans, [s for s, _ in spans[1:]] + [len(context)], strict=True):
        numbers.append(current)
        if any(ch in ".!?" for ch in context[end:following]):
            current += 1
    return numbers


def answer_question(context: str, question: str, max_words: int = MAX_WORDS, window: int = WINDOW) -> str:
    """The baseline's answer to ``question``: a span of ``context`` (an exact substring), or "" for a
    context without words."""
    spans = _words(context)
    keys = [_key(context[s:e]) for s, e in spans]
    sentence_of = _sentences(context, spans)
    counts = Counter(keys)
    asked = {k for k in map(_key, question.split()) if k and k not in STOP_WORDS}
    weight = {k: math.log(1.0 + 1.0 / counts[k]) for k in asked if k in counts}
    sentence_words: dict[int, set[str]] = {}
    for k, n in zip(keys, sentence_of, strict=True):
        if k in weight:
            sentence_words.setdefault(n, set()).add(k)
    # Name runs: capitalised words other than stop words, separated by plain spaces ("Dovan Ellis"), which
    # no candidate may cut ("The Izil": "The" is not part of the run).
    joined = [
        context[spans[i][0]].isupper()
        and context[spans[i + 1][0]].isupper()
        and not context[spans[i][1] : spans[i + 1][0]].strip()
        and keys[i] not in STOP_WORDS
        and keys[i + 1] not in STOP_WORDS
        for i in range(len(spans) - 1)
    ]
    best, best_rank = "", None
    for first in range(len(spans)):
        if first > 0 and joined[first - 1]:
            continue
        for last in range(first, min(first + max_words, len(spans))):
            if sentence_of[last] != sentence_of[first]:
                break
            if last < len(joined) and joined[last]:
                continue
            inside = keys[first : last + 1]
            if inside[0] in STOP_WORDS or inside[-1] in STOP_WORDS or all(k in asked for k in inside):
                continue
            if not any(ch.isalnum() for ch in context[spans[first][0] : spans[last][1]]):
                continue
            in_sentence = sentence_words.get(sentence_of[first], set()) - set(inside)
            nearest: dict[str, int] = {}
            for i in [
                *range(max(0, first - window), first),
                *range(last + 1, min(len(keys), last + 1 + window)),
            ]:
                if keys[i] in weight:
                    distance = first - i if i < first else i - last
                    nearest[keys[i]] = min(distance, nearest.get(keys[i], distance))
            rank = (
                sum(weight[k] for k in in_sentence),
                sum(weight[k] for k in nearest),
                -sum(nearest.values()),
                -(last - first),
            )
            if best_rank is None or rank > best_rank:
                best, best_rank = context[spans[first][0] : spans[last][1]], rank
    return best


def lexical_predictions(articles: list, max_words: int = MAX_WORDS, window: int = WINDOW) -> dict[str, str]:
    """The baseline's answer to every question of the SQuAD ``articles`` (a file's ``data``): id -> text."""
    return {
        qa["id"]: answer_question(paragraph["context"], qa["question"], max_words, window)
        for article in articles
        for paragraph in article["paragraphs"]
        for qa in paragraph["qas"]
    }
