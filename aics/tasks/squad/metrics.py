"""SQuAD v1.1 scores: exact match and token F1, computed the way the official v1.1 evaluation does.

An answer is normalised by lower-casing, deleting every ASCII punctuation character (``string.punctuation``;
typographic quotes and dashes stay), deleting the articles a / an / the as whole words, and collapsing
white space. EM is 1 when the normalised prediction equals a normalised gold answer; F1 is the harmonic
mean of token precision and recall over the normalised tokens (counted with multiplicity), and 0 when no
token is shared, even when both sides normalise to nothing. A question scores its best value over its gold
answers; the totals are 100 x the mean over every question of the dataset, a question without a prediction
scoring 0. tests/tasks/squad/test_metrics.py checks all of this against a literal restatement of the
official algorithm on random answers.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path

from aics.core.errors import UserError
from aics.core.io import read_json

_PUNCTUATION = frozenset(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_SHOWN = 5  # problems or ids named in one error line


def normalize_answer(s: str) -> str:
    """Lower-case, drop ASCII punctuation, drop whole-word articles, collapse white space (in that order)."""
    s = s.lower()
    s = "".join(ch for ch in s if ch not in _PUNCTUATION)
    s = _ARTICLES.sub(" ", s)
    return " ".join(s.split())


def exact_match_score(prediction: str, ground_truth: str) -> bool:
    return normalize_answer(prediction) == normalize_answer(ground_truth)


def f1_score(prediction: str, ground_truth: str) -> float:
    predicted = normalize_answer(prediction).split()
    gold = normalize_answer(ground_truth).split()
    shared = sum((Counter(predicted) & Counter(gold)).values())
    if shared == 0:
        return 0.0
    precision, recall = shared / len(predicted), shared / len(gold)
    return 2 * precision * recall / (precision + recall)


def metric_max_over_ground_truths(
    metric: Callable[[str, str], float], prediction: str, ground_truths: Iterable[str]
) -> float:
    """The best score of ``prediction`` against any of the gold answers (a question's score)."""
    return max(float(metric(prediction, gold)) for gold in ground_truths)


def _questions(articles: list) -> Iterable[dict]:
    for article in articles:
        for paragraph in article["paragraphs"]:
            yield from paragraph["qas"]


def _listing(items: list[str]) -> str:
    shown = ", ".join(repr(i) for i in items[:_SHOWN])
    return shown + (f" and {len(items) - _SHOWN} more" if len(items) > _SHOWN else "")


def evaluate(articles: list, predictions: dict[str, str]) -> dict:
    """EM and F1 (in percent) of ``predictions`` (question id -> answer text) over the SQuAD ``articles``
    (the file's ``data`` list); also ``total`` questions and how many of them were ``answered``.

    A prediction for an id that is not a question of ``articles`` is an error (predictions made for another
    file), not something to ignore.
    """
    questions = list(_questions(articles))
    known = {qa["id"] for qa in questions}
    unknown = [qid for qid in predictions if qid not in known]
    if unknown:
        raise UserError(
            f"{len(unknown)} of {len(predictions)} predicted ids are not questions of the dataset "
            f"({_listing(unknown)}); score predictions against the file they were made for"
        )
    exact = f1 = 0.0
    answered = 0
    for qa in questions:
        if qa["id"] not in predictions:
            continue
        answered += 1
        golds = [answer["text"] for answer in qa["answers"]]
        exact += metric_max_over_ground_truths(exact_match_score, predictions[qa["id"]], golds)
        f1 += metric_max_over_ground_truths(f1_score, predictions[qa["id"]], golds)
    total = len(questions)
    return {
        "exact_match": 100.0 * exact / total if total else 0.0,
        "f1": 100.0 * f1 / total if total else 0.0,
        "total": total,
        "answered": answered,
    }


# ---- files ----


def _kind(value: object) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "true/false", type(None): "null"}
    return names.get(type(value), "a number" if isinstance(value, (int, float)) else type(value).__name__)


def dataset_problems(obj: object) -> list[str]:
    """What keeps ``obj`` (a parsed json file) from being scorable SQuAD v1.1, each problem with its place
    (``data[3].paragraphs[0].qas[2]: no 'answers'``); empty when it is fine. Only what scoring reads is
    checked: the nesting, every question's ``id`` and its non-empty ``answers`` with their ``text``."""
    problems: list[str] = []

    def need(container: dict, key: str, kind: type, where: str) -> object | None:
        if key not in container:
            problems.append(f"{where}: no {key!r}")
            return None
        value = container[key]
        if not isinstance(value, kind):
            problems.append(f"{where}.{key}: {_kind(value)}, expected {_kind(kind())}")
            return None
        return value

    if not isinstance(obj, dict):
        return [f"top level: {_kind(obj)}, expected an object with 'data'"]
    articles = need(obj, "data", list, "top level") or []
    for a, article in enumerate(articles):
        where = f"data[{a}]"
        if not isinstance(article, dict):
            problems.append(f"{where}: {_kind(article)}, expected an article object")
            continue
        for p, paragraph in enumerate(need(article, "paragraphs", list, where) or []):
            where_p = f"{where}.paragraphs[{p}]"
            if not isinstance(paragraph, dict):
                problems.append(f"{where_p}: {_kind(paragraph)}, expected a paragraph object")
                continue
            for q, qa in enumerate(need(paragraph, "qas", list, where_p) or []):
                where_q = f"{where_p}.qas[{q}]"
                if not isinstance(qa, dict):
                    problems.append(f"{where_q}: {_kind(qa)}, expected a question object")
                    continue
                need(qa, "id", str, where_q)
                answers = need(qa, "answers", list, where_q)
                if answers is not None and not answers:
                    problems.append(f"{where_q}.answers: empty (a v1.1 question has at least one answer)")
                for n, answer in enumerate(answers or []):
                    if not isinstance(answer, dict):
                        problems.append(f"{where_q}.answers[{n}]: {_kind(answer)}, expected an answer object")
                    else:
                        need(answer, "text", str, f"{where_q}.answers[{n}]")
    return problems


def prediction_problems(obj: object) -> list[str]:
    """What keeps ``obj`` from being a predictions file: a json object mapping question id to answer text."""
    if not isinstance(obj, dict):
        return [f"top level: {_kind(obj)}, expected an object mapping question id to answer text"]
    return [
        f"entry {qid!r}: {_kind(text)}, expected the answer text (a string)"
        for qid, text in obj.items()
        if not isinstance(text, str)
    ]


def _refuse(path: Path, what: str, problems: list[str]) -> None:
    if problems:
        more = f" ({len(problems)} problems in all)" if len(problems) > 1 else ""
        raise UserError(f"{path}: not a {what}: " + "; ".join(problems[:_SHOWN]) + more)


def score_files(dataset_json_path: str | Path, predictions_json_path: str | Path) -> dict:
    """EM / F1 of a predictions json file (``{id: text}``) against a SQuAD v1.1 json file, both checked
    first; the result is ``evaluate``'s with the two paths added."""
    dataset_path, predictions_path = Path(dataset_json_path), Path(predictions_json_path)
    dataset = read_json(dataset_path)
    _refuse(dataset_path, "SQuAD v1.1 dataset", dataset_problems(dataset))
    predictions = read_json(predictions_path)
    _refuse(predictions_path, "predictions file", prediction_problems(predictions))
    try:
        scores = evaluate(dataset["data"], predictions)
    except UserError as e:
        raise UserError(f"{predictions_path}: {e} ({dataset_path})") from None
    return {**scores, "dataset": str(dataset_path), "predictions": str(predictions_path)}
