"""Corpora in their own layouts, a vocabulary from train only, and the batches LMs train on.

Two layouts are read (``prepare --format``):

- ``ptb``: ``train.txt valid.txt test.txt`` (or ``ptb.train.txt`` ...), whitespace-tokenised, one sentence a
  line, rare words already ``<unk>``.
- ``raw``: WikiText style ``wiki.train.tokens wiki.valid.tokens wiki.test.tokens`` (or the ptb names); empty
  lines are skipped and the vocabulary is cut by ``--min-count`` / ``--max-size``.

Every line gets ``<eos>`` appended; the splits become one token stream each. ``prepare`` writes
``vocab.txt`` (token and train count per line), ``{split}.npy`` (int32 ids), ``stats.json`` (sizes, OOV
rate, unigram baseline) and copies ``floor.json`` when the corpus came with one (the synthetic source).
"""

from __future__ import annotations

import math
import shutil
from collections import Counter
from pathlib import Path

import numpy as np

from aics.core.errors import UserError
from aics.core.io import atomic_write, read_json, write_json, write_text
from aics.core.stage import begin_stage, mark_done, require_done

EOS, UNK = "<eos>", "<unk>"
SPECIALS = (EOS, UNK)
SPLITS = ("train", "valid", "test")
SPLIT_NAMES = {
    "ptb": ("{s}.txt", "ptb.{s}.txt"),
    "raw": ("wiki.{s}.tokens", "{s}.txt", "wiki.{s}.raw"),
}


def find_split(src: Path, split: str, fmt: str) -> Path:
    names = [n.format(s=split) for n in SPLIT_NAMES[fmt]]
    for name in names:
        if (src / name).is_file():
            return src / name
    raise UserError(f"{src}: no {' or '.join(names)}; point --src at a corpus in the {fmt} layout")


def read_sentences(path: Path) -> list[list[str]]:
    """Whitespace-tokenised lines (empty ones skipped); a bad line is reported with its number."""
    sentences = []
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            try:
                line = raw.decode("utf-8-sig" if lineno == 1 else "utf-8")  # a byte-order mark is no word
            except UnicodeDecodeError as e:
                raise UserError(
                    f"{path}:{lineno}: not UTF-8 ({e.reason}); convert the file to UTF-8"
                ) from None
            tokens = line.split()
            if not tokens:
                continue
            if EOS in tokens:
                raise UserError(
                    f"{path}:{lineno}: contains the reserved token {EOS}; remove it (it is added)"
                )
            sentences.append(tokens)
    if not sentences:
        raise UserError(f"{path}: no text; the split is empty")
    return sentences


def build_vocab(sentences: list[list[str]], min_count: int = 1, max_size: int = 0) -> list[tuple[str, int]]:
    """(token, train count) pairs: <eos>, <unk>, then words by falling count (ties alphabetical)."""
    counts = Counter(t for s in sentences for t in s)
    counts[EOS] = len(sentences)
    words = sorted(
        (w for w in counts if w not in SPECIALS and counts[w] >= min_count), key=lambda w: (-counts[w], w)
    )
    if max_size:
        words = words[: max(0, max_size - len(SPECIALS))]
    kept = set(words)
    unk = counts.get(UNK, 0) + sum(c for w, c in counts.items() if w not in kept and w not in SPECIALS)
    return [(EOS, counts[EOS]), (UNK, unk)] + [(w, counts[w]) for w in words]


def encode(sentences: list[list[str]], index: dict[str, int]) -> tuple[np.ndarray, int]:
    """One int32 stream, ``<eos>`` after every sentence; also the number of out-of-vocabulary tokens."""
    unk, eos = index[UNK], index[EOS]
    ids, oov = [], 0
    for s in sentences:
        for t in s:
            i = index.get(t)
            if i is None:
                oov += 1
                i = unk
            ids.append(i)
        ids.append(eos)
    return np.asarray(ids, dtype=np.int32), oov


def unigram_ppl(train: np.ndarray, target: np.ndarray, vocab_size: int) -> float:
    """Perplexity of an add-one unigram model from train counts: the baseline every LM must beat."""
    counts = np.bincount(train, minlength=vocab_size).astype(np.float64) + 1.0
    logp = np.log(counts / counts.sum())
    return float(math.exp(-logp[target].mean()))


def prepare(
    src: str | Path,
    out: str | Path,
    fmt: str = "ptb",
    min_count: int = 1,
    max_size: int = 0,
    overwrite: bool = False,
) -> dict:
    src, out = Path(src), Path(out)
    if fmt not in SPLIT_NAMES:
        raise UserError(f"--format {fmt}: unknown; use one of {', '.join(SPLIT_NAMES)}")
    if not src.is_dir():
        raise UserError(f"{src}: no such directory; pass the corpus directory with --src")
    files = {s: find_split(src, s, fmt) for s in SPLITS}
    sentences = {s: read_sentences(p) for s, p in files.items()}
    params = {"src": str(src.resolve()), "format": fmt, "min_count": min_count, "max_size": max_size}
    if not begin_stage(out, overwrite, what="prepare", params=params):
        return read_json(out / "stats.json")
    vocab = build_vocab(sentences["train"], min_count, max_size)
    index = {t: i for i, (t, _) in enumerate(vocab)}
    write_text(out / "vocab.txt", "".join(f"{t} {c}\n" for t, c in vocab))
    stats: dict = {"source": str(src), "format": fmt, "vocab_size": len(vocab), "splits": {}}
    streams = {}
    for split in SPLITS:
        ids, oov = encode(sentences[split], index)
        streams[split] = ids
        with atomic_write(out / f"{split}.npy", "wb") as f:
            np.save(f, ids, allow_pickle=False)
        stats["splits"][split] = {
            "file": str(files[split]),
            "sentences": len(sentences[split]),
            "tokens": int(len(ids)),
            "oov_rate": round(oov / len(ids), 5),
        }
    for split in ("valid", "test"):
        stats["splits"][split]["unigram_ppl"] = round(
            unigram_ppl(streams["train"], streams[split], len(vocab)), 3
        )
    floor = src / "floor.json"
    if floor.is_file():
        if min_count == 1 and not max_size:
            shutil.copyfile(floor, out / "floor.json")
            stats["floor"] = "floor.json"
        else:
            stats["floor"] = "not copied: the vocabulary was cut, so the source's floor does not apply"
    write_json(out / "stats.json", stats)
    mark_done(out, {"vocab_size": len(vocab)}, params=params)
    return stats


def check_prepared(data_dir: str | Path) -> Path:
    return require_done(data_dir, "prepare", "run `aics lm prepare --src CORPUS --out DIR` first")


def load_vocab(data_dir: str | Path) -> list[str]:
    path = Path(data_dir) / "vocab.txt"
    if not path.is_file():
        raise UserError(f"{path}: not found; run `aics lm prepare` first")
    return [line.split(" ", 1)[0] for line in path.read_text(encoding="utf-8").splitlines()]


def load_stream(data_dir: str | Path, split: str):
    """The split as a LongTensor of token ids."""
    import torch

    path = Path(data_dir) / f"{split}.npy"
    try:
        ids = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise UserError(f"{path}: cannot read ({e}); rerun `aics lm prepare --overwrite`") from None
    return torch.from_numpy(ids.astype(np.int64))


def load_floor(data_dir: str | Path) -> dict | None:
    path = Path(data_dir) / "floor.json"
    return read_json(path) if path.is_file() else None


# ---- batches ----


def lm_pairs(stream):
    """(inputs, targets) of a stream: every token is predicted, the first one from an <eos> context."""
    import torch

    eos = torch.zeros(1, dtype=stream.dtype)  # <eos> is id 0 (SPECIALS order)
    return torch.cat([eos, stream[:-1]]), stream


def batchify(inputs, targets, columns: int):
    """Cut a stream into ``columns`` parallel rows; the ragged tail is padded with ignored targets (-100)."""
    import torch

    n = math.ceil(len(targets) / columns)
    pad = n * columns - len(targets)
    x = torch.cat([inputs, inputs.new_zeros(pad)]).view(columns, n)
    y = torch.cat([targets, targets.new_full((pad,), -100)]).view(columns, n)
    return x, y  # (columns, n) each


class WindowSet:
    """Fixed-length windows over a stream for window models (ffn, transformer).

    Window k starts at ``k * stride`` and holds ``prefix + length`` input tokens; its loss covers the last
    ``length`` targets, minus the ones an earlier window already scored (so every token counts once).
    """

    def __init__(self, inputs, targets, length: int, prefix: int = 0, stride: int | None = None):
        import torch

        self.length, self.prefix = length, prefix
        self.stride = stride or length
        pad_front = torch.zeros(prefix, dtype=inputs.dtype)  # context before the stream: <eos>
        self.inputs = torch.cat([pad_front, inputs])
        self.targets = targets
        self.n_windows = max(1, math.ceil((len(targets) - length) / self.stride) + 1)

    def __len__(self) -> int:
        return self.n_windows

    def __getitems__(self, indices: list[int]):
        import torch

        xs, ys = [], []
        for k in indices:
            start = k * self.stride
            x = self.inputs[start : start + self.prefix + self.length]
            y = self.targets[start : start + self.length].clone()
            if k > 0 and self.stride < self.length:
                y[: self.length - self.stride] = -100  # scored by the previous window
            if len(y) < self.length:
                x = torch.cat([x, x.new_zeros(self.prefix + self.length - len(x))])
                y = torch.cat([y, y.new_full((self.length - len(y),), -100)])
            xs.append(x)
            ys.append(y)
        return torch.stack(xs), torch.stack(ys)  # (B, prefix + T), (B, T)

    def __getitem__(self, k: int):
        x, y = self.__getitems__([k])
        return x[0], y[0]


def batch_collate(batch):
    return batch
