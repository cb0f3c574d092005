"""The synthetic SQuAD generator: the v1.1 layout, answer offsets, determinism, varied paraphrased questions
with same-type distractors, long contexts, and a lexical baseline that stays far from solving it."""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from aics.core.errors import UserError
from aics.tasks.squad.baseline import lexical_predictions
from aics.tasks.squad.metrics import evaluate, normalize_answer
from aics.tasks.squad.synth import (
    FILES,
    LONG_CHARS,
    MAX_SENTENCES,
    QUESTIONS,
    WHEN_QUESTIONS,
    _Draw,
    _ParagraphWriter,
    generate,
)

# The lexical baseline scores EM 4.6 / F1 11.2 on the default dev set (seed 0); real SQuAD's sliding-window
# baseline is at EM 13 / F1 20. Well above either bound, the data would be solvable by word matching.
BASELINE_MAX_EM, BASELINE_MAX_F1 = 15.0, 25.0


def read(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def paragraphs(dataset: dict) -> list[dict]:
    return [p for article in dataset["data"] for p in article["paragraphs"]]


@pytest.fixture(scope="module")
def default_dev(tmp_path_factory) -> dict:
    """The default train and dev sets (seed 0)."""
    out = tmp_path_factory.mktemp("squad_synth")
    info = generate(out)
    return {"info": info, "train": read(out / FILES["train"]), "dev": read(out / FILES["dev"])}


def test_writes_squad_v11_layout(default_dev):
    info = default_dev["info"]
    assert set(info["paths"]) == {"train", "dev"}
    assert info["train"]["paragraphs"] == 300 and info["dev"]["paragraphs"] == 60
    for split in ("train", "dev"):
        dataset = default_dev[split]
        assert set(dataset) == {"version", "data"} and dataset["version"] == "1.1"
        assert info[split]["articles"] == len(dataset["data"])
        for article in dataset["data"]:
            assert set(article) == {"title", "paragraphs"} and isinstance(article["title"], str)
            for p in article["paragraphs"]:
                assert set(p) == {"context", "qas"} and isinstance(p["context"], str)
                for qa in p["qas"]:
                    assert set(qa) == {"id", "question", "answers"}
                    assert re.fullmatch(r"[0-9a-f]{24}", qa["id"])
                    assert qa["question"].endswith("?") and qa["question"][0].isupper()
                    for answer in qa["answers"]:
                        assert set(answer) == {"answer_start", "text"}
        assert info[split]["questions"] == sum(len(p["qas"]) for p in paragraphs(dataset))
    ids = [qa["id"] for split in ("train", "dev") for p in paragraphs(default_dev[split]) for qa in p["qas"]]
    assert len(ids) == len(set(ids))


def test_every_answer_start_points_at_its_text(default_dev):
    for split in ("train", "dev"):
        for p in paragraphs(default_dev[split]):
            for qa in p["qas"]:
                for answer in qa["answers"]:
                    start, text = answer["answer_start"], answer["text"]
                    assert text and text == text.strip()
                    assert p["context"][start : start + len(text)] == text


def test_train_has_one_answer_and_dev_two_or_three_including_variants(default_dev):
    assert all(len(qa["answers"]) == 1 for p in paragraphs(default_dev["train"]) for qa in p["qas"])
    counts, variants = Counter(), 0
    for p in paragraphs(default_dev["dev"]):
        for qa in p["qas"]:
            first, *others = qa["answers"]
            counts[len(qa["answers"])] += 1
            for other in others:
                if other != first:
                    variants += 1
                    # One word more or less than the first answer, overlapping it.
                    a, b = first["answer_start"], first["answer_start"] + len(first["text"])
                    c, d = other["answer_start"], other["answer_start"] + len(other["text"])
                    assert max(a, c) < min(b, d)
                    assert abs(len(first["text"].split()) - len(other["text"].split())) == 1
    assert set(counts) == {2, 3}
    assert variants > 20


def test_paragraph_and_question_counts(default_dev):
    for p in paragraphs(default_dev["train"]) + paragraphs(default_dev["dev"]):
        sentences = len(re.findall(r"[.!?](?: |$)", p["context"]))
        long = len(p["context"]) >= LONG_CHARS[0]
        assert sentences >= 4 and (long or sentences <= MAX_SENTENCES)
        assert 4 <= len(p["qas"]) <= 8


def test_same_seed_same_bytes_other_seed_other_data(tmp_path):
    a = generate(tmp_path / "a", train_paragraphs=20, dev_paragraphs=10, seed=3)
    b = generate(tmp_path / "b", train_paragraphs=20, dev_paragraphs=10, seed=3)
    c = generate(tmp_path / "c", train_paragraphs=20, dev_paragraphs=10, seed=4)
    for split in ("train", "dev"):
        assert digest(Path(a["paths"][split])) == digest(Path(b["paths"][split]))
        assert digest(Path(a["paths"][split])) != digest(Path(c["paths"][split]))
    assert not list((tmp_path / "a").glob(".*.tmp"))  # written atomically, no temp left


def test_dev_does_not_depend_on_the_train_size_and_a_larger_train_extends_a_smaller(tmp_path):
    small = generate(tmp_path / "small", train_paragraphs=10, dev_paragraphs=10)
    large = generate(tmp_path / "large", train_paragraphs=25, dev_paragraphs=10)
    assert digest(Path(small["paths"]["dev"])) == digest(Path(large["paths"]["dev"]))
    assert paragraphs(read(Path(large["paths"]["train"])))[:10] == paragraphs(
        read(Path(small["paths"]["train"]))
    )


def test_question_forms_vary_and_paraphrase(default_dev):
    questions = [(p["context"], qa["question"]) for p in paragraphs(default_dev["train"]) for qa in p["qas"]]
    questions += [(p["context"], qa["question"]) for p in paragraphs(default_dev["dev"]) for qa in p["qas"]]
    # Which question templates were used: each template as a pattern, its slots matching any text.
    patterns = {
        (key, form): re.compile(re.sub(r"\\\{\w+\\\}", ".+", re.escape(form[0].upper() + form[1:])) + "$")
        for key, forms in QUESTIONS.items()
        for form in forms + sum((when for pair, when in WHEN_QUESTIONS.items() if key[1] in pair), ())
    }
    used = {key_form for _, q in questions for key_form, pattern in patterns.items() if pattern.match(q)}
    assert all(any(pattern.match(q) for pattern in patterns.values()) for _, q in questions)
    assert len(used) > 0.75 * len(patterns)
    forms_per_fact_type = Counter(key for key, _ in used)
    assert min(forms_per_fact_type.values()) >= 2 and len(forms_per_fact_type) == len(QUESTIONS)
    # Questions are not copied from a sentence: no question's words, less the "?", appear as they are.
    assert not any(q[:-1] in c for c, q in questions)


def test_questions_have_same_type_distractors():
    """Most facts asked about have a rival entity of the same paragraph with a fact of the same type and
    another answer; and every question names the entity it asks about."""
    with_rival = asked = 0
    for i in range(200):
        writer = _ParagraphWriter(_Draw(np.random.default_rng(i)))
        context, facts, entities = writer.paragraph(long=i % 10 == 0)
        for fact in facts:
            if not any(fact.entity is e for e in entities):
                continue
            asked += 1
            rivals = [f for f in facts if f.relation == fact.relation and f.entity is not fact.entity]
            answer = context[fact.start : fact.end]
            with_rival += any(
                normalize_answer(context[f.start : f.end]) != normalize_answer(answer) for f in rivals
            )
            # By its name ("Tovin", "the tovarel", "the first tovarel") or by its company's name.
            question = writer.question(fact, facts)
            named = fact.entity.short.removeprefix("the ")
            assert named in question or fact.entity.values.get("company", "-") in question
    assert with_rival > 0.8 * asked


def test_long_fraction_controls_long_contexts(tmp_path):
    info = generate(tmp_path / "long", train_paragraphs=10, dev_paragraphs=1, long_fraction=1.0)
    contexts = [p["context"] for p in paragraphs(read(Path(info["paths"]["train"])))]
    assert min(map(len, contexts)) >= LONG_CHARS[0]
    info = generate(tmp_path / "short", train_paragraphs=40, dev_paragraphs=1, long_fraction=0.0)
    contexts = [p["context"] for p in paragraphs(read(Path(info["paths"]["train"])))]
    # ~3.6 characters per BERT word piece here: every normal context fits a 256-piece window.
    assert max(map(len, contexts)) < 256 * 3


def test_default_dev_is_not_solved_by_word_matching(default_dev):
    dev = default_dev["dev"]["data"]
    scores = evaluate(dev, lexical_predictions(dev))
    assert scores["answered"] == scores["total"] > 250
    assert scores["exact_match"] < BASELINE_MAX_EM
    assert scores["f1"] < BASELINE_MAX_F1


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"train_paragraphs": 0}, "train_paragraphs 0"),
        ({"dev_paragraphs": "60"}, "dev_paragraphs '60'"),
        ({"train_paragraphs": True}, "train_paragraphs True"),
        ({"seed": -1}, "seed -1"),
        ({"long_fraction": 1.5}, "long_fraction 1.5"),
        ({"long_fraction": "x"}, "long_fraction 'x'"),
    ],
)
def test_bad_arguments_are_refused_before_writing(tmp_path, kwargs, message):
    with pytest.raises(UserError, match=message):
        generate(tmp_path / "out", **kwargs)
    assert not (tmp_path / "out").exists()


def test_out_must_not_be_a_file(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(UserError, match="not a directory"):
        generate(tmp_path / "file", train_paragraphs=1, dev_paragraphs=1)
