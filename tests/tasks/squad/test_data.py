"""SQuAD json validation, tokenisation with offsets, and the windows of the reference implementation."""

from __future__ import annotations

import json

import numpy as np
import pytest

from aics.core.errors import UserError
from aics.tasks.squad.data import (
    Example,
    WindowSet,
    build_features,
    doc_windows,
    load_tokenizer,
    read_squad,
    vocab_digest,
)

WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "river", "was", "born", "in", "when", "where"]
WORDS += ["1843", "quessa", "marel", "tovin", ".", ",", "?", "bank", "of", "north", "##ern", "isel", "a", "b"]


@pytest.fixture
def vocab_dir(tmp_path):
    d = tmp_path / "vocab"
    d.mkdir()
    (d / "vocab.txt").write_text("\n".join(WORDS) + "\n")
    return d


def squad_file(path, paragraphs):
    path.write_text(json.dumps({"version": "1.1", "data": [{"title": "t", "paragraphs": paragraphs}]}))
    return path


CONTEXT = "Marel Tovin was born in Quessa in 1843."


def test_read_squad_reads_every_question(tmp_path):
    qas = [
        {"id": "a", "question": "When?", "answers": [{"answer_start": 34, "text": "1843"}]},
        {"id": "b", "question": "Where?", "answers": [{"answer_start": 24, "text": "Quessa"}] * 2},
    ]
    examples, dropped = read_squad(squad_file(tmp_path / "s.json", [{"context": CONTEXT, "qas": qas}]))
    assert [e.qid for e in examples] == ["a", "b"] and dropped == 0
    assert examples[1].answers == [(24, "Quessa"), (24, "Quessa")]


@pytest.mark.parametrize(
    "doc, key",
    [
        ({"version": "1.1"}, "'data'"),
        ({"data": [{"title": "x"}]}, "data[0]: missing key 'paragraphs'"),
        ({"data": [{"paragraphs": [{"context": "c"}]}]}, "data[0].paragraphs[0]: missing key 'qas'"),
        ({"data": [{"paragraphs": [{"qas": []}]}]}, "missing key 'context'"),
        ({"data": [{"paragraphs": [{"context": "c", "qas": [{"id": "q", "question": "?"}]}]}]}, "'answers'"),
        ([1, 2], "'data'"),
    ],
)
def test_a_file_that_is_not_squad_names_the_missing_key(tmp_path, doc, key):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(UserError, match=str(path)) as e:
        read_squad(path)
    assert key in str(e.value) and "\n" not in str(e.value)


def test_invalid_json_names_the_line(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{"data": [\n  {"paragraphs": ]\n}')
    with pytest.raises(UserError, match=r"line 2: not valid JSON"):
        read_squad(path)


def test_answers_that_miss_their_text_are_listed_then_stop_or_are_skipped(tmp_path):
    qas = [
        {"id": "good", "question": "When?", "answers": [{"answer_start": 34, "text": "1843"}]},
        {"id": "off", "question": "When?", "answers": [{"answer_start": 33, "text": "1843"}]},
        {"id": "none", "question": "Who?", "answers": []},
        {"id": "good", "question": "Again?", "answers": [{"answer_start": 0, "text": "Marel"}]},
    ]
    path = squad_file(tmp_path / "s.json", [{"context": CONTEXT, "qas": qas}])
    with pytest.raises(UserError) as e:
        read_squad(path)
    message = str(e.value)
    assert "3 bad questions" in message and "off: answer 0 starts at 33 but the context has" in message
    assert "none: no answers" in message and "the id is used twice" in message and "--skip-bad" in message
    examples, dropped = read_squad(path, skip_bad=True)
    assert [e.qid for e in examples] == ["good"] and dropped == 3


def test_tokenizer_from_vocab_txt_guesses_uncased_and_gives_offsets(vocab_dir):
    tok = load_tokenizer(vocab_dir)
    enc = tok.encode("Northern Isel", add_special_tokens=False)
    assert enc.tokens == ["north", "##ern", "isel"]
    assert enc.offsets == [(0, 5), (5, 8), (9, 13)]
    assert len(vocab_digest(tok)) == 64


def test_tokenizer_honours_do_lower_case_false(vocab_dir):
    (vocab_dir / "tokenizer_config.json").write_text('{"do_lower_case": false}')
    enc = load_tokenizer(vocab_dir).encode("Isel", add_special_tokens=False)
    assert enc.tokens == ["[UNK]"]  # cased: "Isel" is not in the lower-case vocabulary


def test_a_dir_without_tokenizer_files_is_refused(tmp_path):
    with pytest.raises(UserError, match="neither tokenizer.json nor vocab.txt"):
        load_tokenizer(tmp_path)


def test_doc_windows_follow_the_reference_stride():
    assert doc_windows(10, 4, 2) == [(0, 4), (2, 4), (4, 4), (6, 4)]
    assert doc_windows(3, 4, 2) == [(0, 3)]
    assert doc_windows(9, 4, 8) == [(0, 4), (4, 4), (8, 1)]  # the stride never skips tokens


def test_windows_map_the_answer_and_lose_it_to_cls(vocab_dir):
    tok = load_tokenizer(vocab_dir)
    context = "the river was born in quessa in 1843 , the bank of the isel river"
    ex = Example("q", "where was the river born ?", context, [(context.index("quessa"), "quessa")])
    f = build_features([ex], tok, max_seq_length=16, doc_stride=3, max_query_length=4, training=True)
    n = len(f["type_start"])
    assert n > 2 and list(f["example"]) == [0] * n
    q = 4  # max_query_length cuts the question to 4 pieces
    for w in range(n):
        ids = f["input_ids"][f["row"][w] : f["row"][w + 1]]
        assert (
            len(ids) <= 16 and ids[0] == tok.token_to_id("[CLS]") and ids[q + 1] == tok.token_to_id("[SEP]")
        )
        assert f["type_start"][w] == q + 2
        if f["start"][w]:
            lo = f["row"][w]
            s, e = f["start"][w], f["end"][w]
            assert context[f["char_start"][lo + s] : f["char_end"][lo + e]] == "quessa"
        else:
            assert f["end"][w] == 0  # the window lost the answer: [CLS]
    assert 0 < (f["start"] > 0).sum() < n
    # every context token is the max-context token of exactly one window
    assert f["max_context"].sum() == len(tok.encode(context, add_special_tokens=False).ids)


def test_a_batch_is_padded_to_its_longest_window(vocab_dir):
    tok = load_tokenizer(vocab_dir)
    exs = [
        Example("a", "when ?", "marel was born in 1843", [(18, "1843")]),
        Example("b", "where was marel tovin born ?", "in quessa", [(3, "quessa")]),
    ]
    f = build_features(exs, tok, max_seq_length=64, doc_stride=16, max_query_length=16)
    b = WindowSet(f).collate([0, 1])
    lens = np.diff(f["row"])
    assert b["input_ids"].shape == (2, lens.max())
    assert b["attention_mask"].sum(1).tolist() == lens.tolist()
    assert b["token_type_ids"][0].tolist() == [0] * 4 + [1] * (lens[0] - 4) + [0] * (lens.max() - lens[0])
    assert tok.id_to_token(int(b["input_ids"][1, b["start"][1]])) == "quessa"
