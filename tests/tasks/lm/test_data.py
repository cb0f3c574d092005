import math

import numpy as np
import pytest
import torch

from aics.core.errors import UserError
from aics.tasks.lm.data import (
    EOS,
    UNK,
    WindowSet,
    batchify,
    build_vocab,
    lm_pairs,
    load_stream,
    load_vocab,
    prepare,
    read_sentences,
    unigram_ppl,
)


def corpus(tmp_path, names=("train.txt", "valid.txt", "test.txt"), texts=None):
    texts = texts or [" a b c\n c c <unk>\n", " a c\n", " c d\n"]
    src = tmp_path / "corpus"
    src.mkdir()
    for name, text in zip(names, texts, strict=True):
        (src / name).write_text(text)
    return src


def test_prepare_ptb(tmp_path):
    stats = prepare(corpus(tmp_path), tmp_path / "p")
    vocab = load_vocab(tmp_path / "p")
    assert vocab[:2] == [EOS, UNK] and sorted(vocab[2:]) == ["a", "b", "c"]
    assert vocab[2] == "c", "words by falling train count"
    ids = load_stream(tmp_path / "p", "test").tolist()
    assert [vocab[i] for i in ids] == ["c", UNK, EOS], "unseen 'd' becomes <unk>; <eos> ends each line"
    assert stats["splits"]["train"]["tokens"] == 8 and stats["splits"]["test"]["oov_rate"] == pytest.approx(
        1 / 3, abs=1e-4
    )


def test_a_byte_order_mark_is_not_part_of_the_first_word(tmp_path):
    src = corpus(tmp_path)
    (src / "train.txt").write_bytes("\ufeffc a b\n".encode() + (src / "train.txt").read_bytes())
    prepare(src, tmp_path / "p")
    vocab = load_vocab(tmp_path / "p")
    assert not any("\ufeff" in w for w in vocab) and "c" in vocab


def test_prepare_raw_cuts_the_vocabulary(tmp_path):
    src = corpus(tmp_path, ("wiki.train.tokens", "wiki.valid.tokens", "wiki.test.tokens"),
                 [" = T = \n\n x x x y y z\n", "x q\n", "y z\n"])  # fmt: skip
    prepare(src, tmp_path / "p", fmt="raw", min_count=2)
    assert load_vocab(tmp_path / "p") == [EOS, UNK, "x", "=", "y"], "ties in alphabetical order"
    assert build_vocab([["x", "x", "y", "z"]], max_size=3) == [(EOS, 1), (UNK, 2), ("x", 2)]


def test_bad_corpora_are_reported_with_file_and_line(tmp_path):
    src = corpus(tmp_path)
    (src / "valid.txt").write_bytes(b" ok line\n bad \xff byte\n")
    with pytest.raises(UserError, match=r"valid\.txt:2: not UTF-8"):
        prepare(src, tmp_path / "p")
    (src / "valid.txt").write_text(" a <eos> b\n")
    with pytest.raises(UserError, match=r"valid\.txt:1: contains the reserved token <eos>"):
        read_sentences(src / "valid.txt")
    (src / "valid.txt").write_text("\n\n")
    with pytest.raises(UserError, match="no text"):
        prepare(src, tmp_path / "p")
    (src / "valid.txt").unlink()
    with pytest.raises(UserError, match=r"no valid\.txt or ptb\.valid\.txt"):
        prepare(src, tmp_path / "p")
    assert not (tmp_path / "p").exists()


def test_unigram_baseline_by_hand():
    train, test = np.array([0, 1, 1, 2]), np.array([1, 2])
    # add-one counts 2, 3, 2 over 7
    assert unigram_ppl(train, test, 3) == pytest.approx(math.exp(-(math.log(3 / 7) + math.log(2 / 7)) / 2))


def test_every_token_is_predicted_once_and_from_its_own_history():
    stream = torch.arange(1, 24)
    x, y = lm_pairs(stream)
    assert x[0] == 0 and torch.equal(x[1:], stream[:-1]) and torch.equal(y, stream)
    bx, by = batchify(x, y, 5)
    kept = by[by != -100]
    assert sorted(kept.tolist()) == stream.tolist()
    for row_x, row_y in zip(bx, by, strict=True):
        ok = row_y != -100
        assert torch.equal(row_x[ok][1:], row_y[ok][:-1]), "within a row the input is the previous target"


@pytest.mark.parametrize("length, prefix, stride", [(5, 0, 5), (6, 0, 3), (4, 3, 4), (30, 0, 15)])
def test_windows_score_every_token_once_with_the_right_context(length, prefix, stride):
    stream = torch.arange(1, 24)
    x, y = lm_pairs(stream)
    ws = WindowSet(x, y, length=length, prefix=prefix, stride=stride)
    xs, ys = ws.__getitems__(list(range(len(ws))))
    assert xs.shape == (len(ws), prefix + length) and ys.shape == (len(ws), length)
    scored = ys[ys != -100]
    assert sorted(scored.tolist()) == stream.tolist()
    for wx, wy in zip(xs, ys, strict=True):
        for j in range(length):
            if wy[j] != -100:
                # the token right before target j sits at input position prefix + j
                assert int(wx[prefix + j]) == int(wy[j]) - 1
