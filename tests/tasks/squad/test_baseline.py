"""The lexical sliding-window baseline: it finds answers that sit next to the question's words, and always
answers with an exact substring of the context."""

from __future__ import annotations

import numpy as np
import pytest

from aics.tasks.squad.baseline import answer_question, lexical_predictions
from aics.tasks.squad.metrics import evaluate

EASY = [
    (
        "Marel Tovin was born in Quessa. The river Isel is long and wide. Tovin later moved away.",
        "Where was Marel Tovin born?",
        "Quessa",
    ),
    (
        "The old mill burned down last winter. The bridge over the Isel was built in 1843. Nobody uses it.",
        "When was the bridge over the Isel built?",
        "1843",
    ),
    (
        "Quessa is a small town. The mayor of Quessa is Dovan Ellis. The harbour freezes every January.",
        "Who is the mayor of Quessa?",
        "Dovan Ellis",
    ),
    (
        "The Izil is long. The Ges rises in the Zan hills. The Ost ends in a marsh.",
        "In which hills does the Ges rise?",
        "Zan",
    ),
    (
        "Trade grew quickly. The company makes brass telescopes in Vell. Its rival sold bicycles in Dorrim.",
        "What does the company make in Vell?",
        "brass telescopes",
    ),
]


@pytest.mark.parametrize("context, question, answer", EASY)
def test_finds_the_answer_next_to_the_question_words(context, question, answer):
    assert answer_question(context, question) == answer


def test_predictions_cover_every_question_and_score_full_marks_on_easy_data():
    articles = [
        {
            "title": "easy",
            "paragraphs": [
                {
                    "context": c,
                    "qas": [
                        {"id": f"q{i}", "question": q, "answers": [{"text": a, "answer_start": c.index(a)}]}
                    ],
                }
                for i, (c, q, a) in enumerate(EASY)
            ],
        }
    ]
    predictions = lexical_predictions(articles)
    assert set(predictions) == {f"q{i}" for i in range(len(EASY))}
    assert evaluate(articles, predictions)["exact_match"] == 100.0


RANDOM_WORDS = (
    "Marel Tovin was born in Quessa , 1843 the river “Isel” (north) bank of a town ; U.S. 12.5 — it’s"
)


def test_answers_are_substrings_never_only_question_words_nor_across_sentences():
    rng = np.random.default_rng(0)
    words = RANDOM_WORDS.split()
    for _ in range(200):
        context = " ".join(rng.choice(words + [".", "!"], size=int(rng.integers(1, 40))).tolist())
        question = " ".join(rng.choice(words, size=int(rng.integers(1, 8))).tolist()) + "?"
        answer = answer_question(context, question)
        assert answer in context
        assert answer == answer.strip()
        if answer:
            asked = {w.strip(".,;!?()“”").lower() for w in question.split()}
            assert not all(w.strip(".,;!?()“”’").lower() in asked for w in answer.split())
            assert ". " not in answer and "! " not in answer


def test_max_words_bounds_the_span():
    context = "Long ago Marel Tovin founded Great Northern Brass Instrument Makers of Vell in Quessa."
    for n in (1, 2, 4):
        assert 1 <= len(answer_question(context, "What did Marel Tovin found?", max_words=n).split()) <= n


def test_empty_or_wordless_contexts_give_an_empty_answer():
    assert answer_question("", "Where was Tovin born?") == ""
    assert answer_question("... , !", "Where was Tovin born?") == ""
