"""SQuAD v1.1 EM / F1: each normalisation step, hand-computed F1, the totals, file checks, and parity with an
independent restatement of the official v1.1 evaluation on random answers."""

from __future__ import annotations

import json
import re
import string
from collections import Counter

import numpy as np
import pytest

from aics.core.errors import UserError
from aics.tasks.squad.metrics import (
    evaluate,
    exact_match_score,
    f1_score,
    metric_max_over_ground_truths,
    normalize_answer,
    score_files,
)

# ---- normalisation, one step at a time ----


def test_lower_cases():
    assert normalize_answer("Denver BRONCOS") == "denver broncos"


def test_removes_ascii_punctuation_without_splitting_words():
    assert normalize_answer("Hello, world! (it's) $5.00 a-b") == "hello world its 500 ab"
    assert normalize_answer(string.punctuation) == ""


def test_keeps_unicode_punctuation():
    # The official script removes only string.punctuation: typographic quotes and dashes survive.
    assert normalize_answer("“Quoted” — it’s «x» – y…") == "“quoted” — it’s «x» – y…"
    assert not exact_match_score("“Denver”", "Denver")
    assert exact_match_score('"Denver"', "Denver")


def test_removes_whole_word_articles_only():
    assert normalize_answer("The cat and a dog ate an apple") == "cat and dog ate apple"
    assert normalize_answer("A Tale of THE city") == "tale of city"
    # Articles inside words stay.
    assert normalize_answer("banana atlas theory another thea") == "banana atlas theory another thea"
    # Punctuation goes first: "(the)" becomes an article and is removed, "the-end" becomes one word.
    assert normalize_answer("(the) end the-end") == "end theend"
    # A unicode apostrophe is a word boundary for the regex: "the’s" loses its article.
    assert normalize_answer("the’s") == "’s"


def test_collapses_white_space():
    assert normalize_answer("  x\ty\n\n z \r\n") == "x y z"
    assert normalize_answer("x a\ty") == "x y"
    assert normalize_answer(" \t\n ") == ""


# ---- scores ----


def test_exact_match():
    assert exact_match_score("The Denver Broncos.", "denver broncos")
    assert not exact_match_score("Denver", "Denver Broncos")


def test_f1_by_hand():
    # "big red fox" vs "red fox jumps": 2 shared tokens of 3 each -> P = R = 2/3.
    assert f1_score("the big red fox", "red fox jumps") == pytest.approx(2 / 3)
    # Tokens are counted with multiplicity: x x y vs x y y share x once and y once.
    assert f1_score("x x y", "x y y") == pytest.approx(2 / 3)
    # P = 1/2, R = 1 -> 2/3.
    assert f1_score("x x", "x") == pytest.approx(2 / 3)
    # P = 1, R = 1/4 -> 0.4.
    assert f1_score("Broncos", "the Denver Broncos won it") == pytest.approx(0.4)
    assert f1_score("Denver", "Denver") == 1.0
    assert f1_score("cat", "dog") == 0.0


def test_f1_is_zero_when_nothing_is_left_even_if_both_sides_are_empty():
    # As in the official v1.1 script: no shared token means 0, so two answers that normalise to nothing
    # match exactly but have F1 0.
    assert exact_match_score("the", "a")
    assert f1_score("the", "a") == 0.0
    assert f1_score("", "Denver") == 0.0


def test_max_over_ground_truths():
    golds = ["Denver Broncos", "The Denver Broncos", "Broncos"]
    assert metric_max_over_ground_truths(exact_match_score, "broncos", golds) == 1.0
    assert metric_max_over_ground_truths(f1_score, "Denver", golds) == pytest.approx(2 / 3)
    assert metric_max_over_ground_truths(f1_score, "Carolina", golds) == 0.0


def squad(*questions: tuple[str, list[str]]) -> list:
    """A one-article, one-paragraph ``data`` list with the given (id, gold answers)."""
    qas = [
        {"id": qid, "question": "?", "answers": [{"text": t, "answer_start": 0} for t in golds]}
        for qid, golds in questions
    ]
    return [{"title": "t", "paragraphs": [{"context": "c", "qas": qas}]}]


def test_evaluate_averages_over_all_questions_and_counts_missing_ids_as_zero():
    articles = squad(("q1", ["Denver Broncos"]), ("q2", ["1843", "in 1843"]), ("q3", ["Quessa"]))
    scores = evaluate(articles, {"q1": "the Denver Broncos", "q2": "1843 AD"})
    assert scores["total"] == 3 and scores["answered"] == 2
    assert scores["exact_match"] == pytest.approx(100 / 3)
    # q1: 1, q2: max(F1("1843 ad", "1843"), F1("1843 ad", "in 1843")) = 2/3, q3 missing: 0.
    assert scores["f1"] == pytest.approx(100 * (1 + 2 / 3) / 3)
    assert evaluate(articles, {}) == {"exact_match": 0.0, "f1": 0.0, "total": 3, "answered": 0}


def test_evaluate_refuses_ids_that_are_not_in_the_dataset():
    articles = squad(("q1", ["x"]))
    with pytest.raises(UserError, match="'zz9'") as info:
        evaluate(articles, {"q1": "x", "zz9": "y", "zz8": "w"})
    assert "2 of 3" in str(info.value)


# ---- files ----


def write(path, obj) -> str:
    path.write_text(json.dumps(obj), encoding="utf-8")
    return str(path)


def test_score_files(tmp_path):
    data = write(tmp_path / "dev.json", {"version": "1.1", "data": squad(("q1", ["Denver"]), ("q2", ["x"]))})
    preds = write(tmp_path / "preds.json", {"q1": "denver"})
    scores = score_files(data, preds)
    assert scores["exact_match"] == 50.0 and scores["answered"] == 1 and scores["total"] == 2
    assert scores["dataset"] == data and scores["predictions"] == preds


@pytest.mark.parametrize(
    "dataset, missing",
    [
        ({"version": "1.1"}, "'data'"),
        ({"data": [{"title": "t"}]}, "data[0]: no 'paragraphs'"),
        ({"data": [{"paragraphs": [{"context": "c"}]}]}, "data[0].paragraphs[0]: no 'qas'"),
        ({"data": [{"paragraphs": [{"qas": [{"id": "q"}]}]}]}, "data[0].paragraphs[0].qas[0]: no 'answers'"),
        ({"data": [{"paragraphs": [{"qas": [{"answers": [{"text": "a"}]}]}]}]}, "qas[0]: no 'id'"),
        ({"data": [{"paragraphs": [{"qas": [{"id": "q", "answers": [{"answer_start": 0}]}]}]}]}, "no 'text'"),
        ({"data": [{"paragraphs": [{"qas": [{"id": "q", "answers": []}]}]}]}, "answers: empty"),
        ({"data": {"paragraphs": []}}, "data: an object, expected a list"),
        ([1, 2], "top level: a list"),
    ],
)
def test_score_files_names_the_dataset_file_and_what_is_missing(tmp_path, dataset, missing):
    data = write(tmp_path / "dev.json", dataset)
    preds = write(tmp_path / "preds.json", {})
    with pytest.raises(UserError) as info:
        score_files(data, preds)
    assert data in str(info.value) and missing in str(info.value)


@pytest.mark.parametrize(
    "predictions, offending",
    [
        (["q1"], "top level: a list"),
        ({"q1": 3}, "entry 'q1': a number"),
        ({"q1": "x", "q2": None}, "entry 'q2': null"),
        ({"q1": ["x"]}, "entry 'q1': a list"),
    ],
)
def test_score_files_names_the_predictions_file_and_the_bad_entry(tmp_path, predictions, offending):
    data = write(tmp_path / "dev.json", {"data": squad(("q1", ["x"]), ("q2", ["y"]))})
    preds = write(tmp_path / "preds.json", predictions)
    with pytest.raises(UserError) as info:
        score_files(data, preds)
    assert preds in str(info.value) and offending in str(info.value)


def test_score_files_names_the_predictions_file_for_unknown_ids(tmp_path):
    data = write(tmp_path / "dev.json", {"data": squad(("q1", ["x"]))})
    preds = write(tmp_path / "preds.json", {"q1": "x", "other-file-id": "y"})
    with pytest.raises(UserError) as info:
        score_files(data, preds)
    assert preds in str(info.value) and "'other-file-id'" in str(info.value)


def test_score_files_reports_unreadable_files(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"data": [', encoding="utf-8")
    preds = write(tmp_path / "preds.json", {})
    with pytest.raises(UserError, match=r"bad\.json:1: invalid JSON"):
        score_files(bad, preds)
    with pytest.raises(UserError, match="not found"):
        score_files(tmp_path / "absent.json", preds)


# ---- parity with the official algorithm ----
# A literal restatement of what the official evaluate-v1.1.py computes, written independently here (other
# idioms, same steps): lower-case; drop string.punctuation; replace each whole-word a/an/the by a space;
# split on white space and join with single spaces. F1 from the multiset intersection of tokens, 0 when it is
# empty. A question's score is its best over the golds; totals are 100 * sum / number of questions, a question
# without a prediction adding nothing.

_DROP_PUNCTUATION = str.maketrans("", "", string.punctuation)


def official_normalize(text: str) -> str:
    text = text.lower().translate(_DROP_PUNCTUATION)
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def official_f1(prediction: str, gold: str) -> float:
    p, g = official_normalize(prediction).split(), official_normalize(gold).split()
    same = sum((Counter(p) & Counter(g)).values())
    if same == 0:
        return 0
    precision, recall = same / len(p), same / len(g)
    return (2 * precision * recall) / (precision + recall)


def official_em(prediction: str, gold: str) -> bool:
    return official_normalize(prediction) == official_normalize(gold)


def official_evaluate(dataset: list, predictions: dict) -> dict:
    f1 = exact_match = total = 0
    for article in dataset:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                total += 1
                if qa["id"] not in predictions:
                    continue
                golds = [a["text"] for a in qa["answers"]]
                exact_match += max(official_em(predictions[qa["id"]], g) for g in golds)
                f1 += max(official_f1(predictions[qa["id"]], g) for g in golds)
    return {"exact_match": 100.0 * exact_match / total, "f1": 100.0 * f1 / total}


VOCABULARY_TEXT = (
    "The the THE a A an An cat Cat cats dog dog's dogs “quoted” — – ’s it’s «x» … (x) x X 1,000 1000 U.S. us"
    " a-b ab theatre another banana an-apple the’s Denver denver BRONCOS broncos ! , . ? ; : - ' \" $ %"
)
VOCABULARY = VOCABULARY_TEXT.split()
SEPARATORS = (" ", " ", " ", "  ", "\t", "\n", " \n ", "")


def random_answer(rng: np.random.Generator) -> str:
    words = rng.choice(VOCABULARY, size=int(rng.integers(0, 7))).tolist()
    pieces = [str(rng.choice(SEPARATORS))]
    for w in words:
        pieces += [w, str(rng.choice(SEPARATORS))]
    return "".join(pieces)


def test_parity_with_the_official_algorithm_on_random_answers():
    rng = np.random.default_rng(0)
    qas, predictions = [], {}
    for i in range(500):
        golds = [random_answer(rng) for _ in range(int(rng.integers(1, 4)))]
        prediction = random_answer(rng)
        if rng.random() < 0.3:  # a near copy of a gold: case and spacing noise
            prediction = " ".join(str(rng.choice(golds)).upper().split())
        assert normalize_answer(prediction) == official_normalize(prediction)
        assert exact_match_score(prediction, golds[0]) == official_em(prediction, golds[0])
        assert f1_score(prediction, golds[0]) == pytest.approx(official_f1(prediction, golds[0]), abs=1e-12)
        qas.append({"id": f"q{i}", "answers": [{"text": g, "answer_start": 0} for g in golds]})
        if rng.random() < 0.9:
            predictions[f"q{i}"] = prediction
    articles = [{"title": "t", "paragraphs": [{"context": "c", "qas": qas}]}]
    ours, theirs = evaluate(articles, predictions), official_evaluate(articles, predictions)
    assert ours["exact_match"] == pytest.approx(theirs["exact_match"], abs=1e-9)
    assert ours["f1"] == pytest.approx(theirs["f1"], abs=1e-9)
    # The random answers do exercise partial credit, exact hits and misses.
    per_question = [
        metric_max_over_ground_truths(f1_score, predictions[qa["id"]], [a["text"] for a in qa["answers"]])
        for qa in qas
        if qa["id"] in predictions
    ]
    assert min(per_question) == 0.0 and max(per_question) == 1.0
    assert sum(0.0 < s < 1.0 for s in per_question) > 50
