"""N-gram language models: interpolated Kneser-Ney training, backoff scoring, ARPA read/write.

Usage: lm = train_ngram([word_tokens(t) for t in texts], order=3); write_arpa(lm, "lm.arpa")

A model predicts the tokens of ``lm.vocab``: the training (or given) vocabulary plus ``</s>`` and ``<unk>``;
``<s>`` only ever appears in contexts. Contexts start at the last ``<s>`` they contain, so a context padded
with any number of ``<s>`` scores the same as one with a single ``<s>``, the way ARPA models are used.

Every model is held in backoff form, the form ARPA stores: ``log P(w | h)`` for each stored n-gram ``h w``
and a backoff weight for each context ``h``, and for an unstored ``h w``::

    P(w | h) = bow(h) * P(w | h[1:])        (bow = 1 when h is not a stored context)

Interpolated Kneser-Ney (Chen & Goodman 1998) converts to this form exactly: a stored n-gram keeps its
interpolated probability and ``bow(h)`` is the interpolation weight gamma(h), because an n-gram with a zero
count receives exactly gamma(h) times the lower-order probability. So a trained model, its ARPA file and the
model read back from that file score the same, up to the digits written.

Probabilities are natural logs inside this module and log10 in ARPA files, as the format prescribes.
"""

from __future__ import annotations

import gzip
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path

from aics.core.errors import UserError

BOS, EOS, UNK = "<s>", "</s>", "<unk>"
UNITS = ("char", "word")
METHODS = ("kneser_ney",)
# How " " (a token of a character LM) is written in an ARPA file, where whitespace separates tokens.
ARPA_SPACE = "<space>"
ARPA_BOS_LOG10 = -99.0  # the customary probability of <s>, which is never predicted
# KenLM's fallback discounts for counts 1, 2, 3+ when counts-of-counts cannot give valid ones (tiny corpora).
FALLBACK_DISCOUNTS = (0.5, 1.0, 1.5)
LN10 = math.log(10.0)
_HEADER = "# aics n-gram LM:"


def char_tokens(text: str) -> list[str]:
    """The characters of ``text`` as tokens, runs of whitespace as one " " (the CTC decoder's space unit)."""
    return list(" ".join(text.split()))


def word_tokens(text: str) -> list[str]:
    return text.split()


class NgramLM:
    """A backoff n-gram model; build one with ``train_ngram`` or ``read_arpa``.

    ``logprobs`` maps each stored n-gram (a tuple of 1..order tokens) to its natural-log probability,
    ``backoffs`` maps contexts to their natural-log backoff weights. ``vocab`` is every token the model can
    predict, ``</s>`` and (when the model has it) ``<unk>`` included; ``<s>`` is not predicted.
    """

    def __init__(
        self,
        order: int,
        unit: str,
        logprobs: dict[tuple[str, ...], float],
        backoffs: dict[tuple[str, ...], float],
        info: dict | None = None,
    ):
        if order < 1:
            raise ValueError(f"order must be >= 1, got {order}")
        if unit not in UNITS:
            raise ValueError(f"unit must be one of {UNITS}, got {unit!r}")
        self.order = order
        self.unit = unit
        self.logprobs = logprobs
        self.backoffs = backoffs
        self.info = dict(info or {})
        self.vocab = frozenset(g[0] for g in logprobs if len(g) == 1 and g[0] != BOS)

    def __repr__(self) -> str:
        counts = self.counts()
        return f"NgramLM(order={self.order}, unit={self.unit!r}, vocab={len(self.vocab)}, counts={counts})"

    def counts(self) -> list[int]:
        """How many n-grams of each order are stored (the ARPA header's counts; <s> is a 1-gram)."""
        n = [0] * self.order
        for g in self.logprobs:
            n[len(g) - 1] += 1
        return n

    def _context(self, context: Sequence[str]) -> tuple[str, ...]:
        if self.order == 1:
            return ()
        h = tuple(context[-(self.order - 1) :]) if context else ()
        if BOS in h:
            h = h[len(h) - 1 - h[::-1].index(BOS) :]  # nothing precedes a sentence start
        elif len(h) < self.order - 1:
            h = (BOS,) + h  # a short context is padded with <s>
        vocab = self.vocab
        return tuple(t if t in vocab or t == BOS else UNK for t in h)

    def score(self, context: Sequence[str], token: str) -> float:
        """Natural-log probability of ``token`` after ``context`` (its last order-1 tokens count).

        Tokens outside the vocabulary are scored as ``<unk>`` (-inf for a model without ``<unk>``);
        ``<s>`` is never predicted (-inf).
        """
        if token == BOS:
            return -math.inf
        w = token if token in self.vocab else UNK
        h = self._context(context)
        logprobs, backoffs = self.logprobs, self.backoffs
        penalty = 0.0
        for start in range(len(h) + 1):
            p = logprobs.get(h[start:] + (w,))
            if p is not None:
                return penalty + p
            if start < len(h):
                penalty += backoffs.get(h[start:], 0.0)
        return -math.inf  # only an unknown token in a model without <unk> gets here

    def sentence_logprob(self, tokens: Sequence[str], eos: bool = True) -> float:
        """Natural-log probability of a sentence: each token after ``<s>`` and its predecessors, then
        ``</s>`` (unless ``eos=False``)."""
        h: list[str] = [BOS]
        total = 0.0
        for t in [*tokens, EOS] if eos else tokens:
            total += self.score(h, t)
            h.append(t)
        return total

    def perplexity(self, sentences: Iterable[Sequence[str]]) -> float:
        """exp of the mean negative log probability per predicted token (each sentence's ``</s>`` counts as
        one token, unknown tokens are scored as ``<unk>``)."""
        total, n = 0.0, 0
        for s in sentences:
            total += self.sentence_logprob(s)
            n += len(s) + 1
        if n == 0:
            raise ValueError("perplexity of no sentences")
        return math.exp(-total / n)


# --------------------------------------------------------------------------------------------- training


def _discounts(counts: Iterable[int], modified: bool) -> tuple[tuple[float, float, float], bool]:
    """Discounts for counts 1, 2, 3+ from counts-of-counts (Chen & Goodman): Y = n1 / (n1 + 2 n2),
    D_k = k - (k + 1) Y n_{k+1} / n_k; the single-discount variant uses D = Y for every count.

    Returns (D1, D2, D3+) and whether the fallback was used (some n_k is zero, or a D_k is outside (0, k]).
    """
    n = [0] * 5
    for c in counts:
        if c <= 4:
            n[c] += 1
    n1, n2, n3, n4 = n[1:]
    if n1 == 0 or (modified and (n2 == 0 or n3 == 0)):
        return FALLBACK_DISCOUNTS if modified else (0.5, 0.5, 0.5), True
    y = n1 / (n1 + 2 * n2)
    if not modified:
        return (y, y, y), False  # 0 < y <= 1
    d = (1 - 2 * y * n2 / n1, 2 - 3 * y * n3 / n2, 3 - 4 * y * n4 / n3)
    if not all(0 < dk <= k for k, dk in enumerate(d, 1)):
        return FALLBACK_DISCOUNTS, True
    return d, False


def train_ngram(
    sentences: Iterable[Sequence[str]],
    order: int = 3,
    unit: str = "word",
    method: str = "kneser_ney",
    modified: bool = True,
    vocab: Iterable[str] | None = None,
) -> NgramLM:
    """Train an interpolated Kneser-Ney n-gram model on tokenised sentences.

    ``modified=True`` uses three discounts per order (counts 1, 2, 3+; "modified" KN), ``False`` a single
    discount D = n1 / (n1 + 2 n2) per order. When the counts-of-counts of an order cannot give valid
    discounts (tiny corpora) KenLM's fallback (0.5, 1, 1.5) is used; ``lm.info["discounts"]`` records what
    each order got. The highest order uses raw counts, lower orders continuation counts (how many distinct
    tokens precede the n-gram), except n-grams starting with ``<s>``, which nothing can precede.

    ``vocab``: the tokens to model (e.g. a CTC decoder's output units); training tokens outside it count as
    ``<unk>``. Default: every training token. ``</s>`` and ``<unk>`` are always added; every token gets a
    share of a uniform distribution at the bottom of the interpolation, so none has probability zero.
    """
    if not isinstance(order, int) or order < 1:
        raise ValueError(f"order must be an integer >= 1, got {order!r}")
    if unit not in UNITS:
        raise ValueError(f"unit must be one of {UNITS}, got {unit!r}")
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    fixed = None if vocab is None else set(vocab) - {BOS}

    # counts[n][ngram]: raw counts of the n-grams ending at each predicted position
    counts: list[dict[tuple[str, ...], int]] = [defaultdict(int) for _ in range(order + 1)]
    seen: set[str] = set()
    n_sentences = 0
    for sent in sentences:
        n_sentences += 1
        toks = [t if fixed is None or t in fixed else UNK for t in sent]
        if BOS in toks or EOS in toks:
            raise ValueError(f"sentence {n_sentences} contains {BOS} or {EOS}; pass tokens without them")
        seen.update(toks)
        s = (BOS, *toks, EOS)
        for i in range(1, len(s)):
            for n in range(1, min(order, i + 1) + 1):
                counts[n][s[i - n + 1 : i + 1]] += 1
    predicted = (seen if fixed is None else fixed) | {EOS, UNK}

    # Adjusted counts: raw at the highest order and for n-grams starting with <s>; continuation counts below.
    adjusted: list[dict[tuple[str, ...], int]] = [{} for _ in range(order + 1)]
    adjusted[order] = dict(counts[order])
    for n in range(order - 1, 0, -1):
        cont: dict[tuple[str, ...], int] = defaultdict(int)
        for g in counts[n + 1]:
            cont[g[1:]] += 1  # one per distinct preceding token (<s> included)
        adjusted[n] = {g: (c if g[0] == BOS else cont[g]) for g, c in counts[n].items()}

    logprobs: dict[tuple[str, ...], float] = {}
    backoffs: dict[tuple[str, ...], float] = {}
    discounts_used = []
    # probs[g]: the interpolated probability of each stored n-gram, filled from order 1 up
    probs: dict[tuple[str, ...], float] = {}
    for n in range(1, order + 1):
        a = adjusted[n]
        d, fallback = _discounts(a.values(), modified)
        discounts_used.append({"order": n, "discounts": list(d), "fallback": fallback})
        total: dict[tuple[str, ...], int] = defaultdict(int)
        discounted: dict[tuple[str, ...], float] = defaultdict(float)
        for g, c in a.items():
            total[g[:-1]] += c
            discounted[g[:-1]] += d[min(c, 3) - 1]
        gamma = {h: discounted[h] / total[h] for h in total}
        if n == 1:
            uniform = 1.0 / len(predicted)
            g0 = gamma.get((), 1.0)
            tot = total.get((), 0)
            for w in predicted:
                c = a.get((w,), 0)
                own = (c - d[min(c, 3) - 1]) / tot if c else 0.0
                probs[(w,)] = own + g0 * uniform
        else:
            for g, c in a.items():
                h = g[:-1]
                probs[g] = (c - d[min(c, 3) - 1]) / total[h] + gamma[h] * probs[g[1:]]
        for h, gm in gamma.items():
            if h:
                backoffs[h] = math.log(gm)
    for g, p in probs.items():
        logprobs[g] = math.log(p)
    if order > 1:
        logprobs[(BOS,)] = ARPA_BOS_LOG10 * LN10  # holds <s>'s backoff weight, as in ARPA files
    info = {
        "method": ("modified " if modified else "") + "interpolated Kneser-Ney",
        "n_sentences": n_sentences,
        "discounts": discounts_used,
    }
    return NgramLM(order, unit, logprobs, backoffs, info)


# ------------------------------------------------------------------------------------------------- ARPA


def _arpa_token(t: str, unit: str) -> str:
    if unit == "char" and t == " ":
        return ARPA_SPACE
    if not t or any(c.isspace() for c in t):
        raise ValueError(
            f"token {t!r} cannot be written to an ARPA file (tokens must not contain whitespace)"
        )
    return t


def write_arpa(lm: NgramLM, path: str | Path) -> None:
    """Write ``lm`` atomically as an ARPA backoff model: log10 probabilities and backoff weights, 7 decimals.

    A comment line before ``\\data\\`` records the unit ("char" models write " " as ``<space>``); ARPA readers
    ignore text before ``\\data\\``.
    """
    from aics.core.io import atomic_write

    tokens = {t: _arpa_token(t, lm.unit) for g in lm.logprobs for t in g}  # refuse bad tokens before writing
    by_order: list[list[tuple[str, ...]]] = [[] for _ in range(lm.order)]
    for g in lm.logprobs:
        by_order[len(g) - 1].append(g)
    with atomic_write(path, "w") as f:
        f.write(f"{_HEADER} unit={lm.unit} order={lm.order} ({lm.info.get('method', 'backoff')})\n\n")
        f.write("\\data\\\n")
        for n, grams in enumerate(by_order, 1):
            f.write(f"ngram {n}={len(grams)}\n")
        for n, grams in enumerate(by_order, 1):
            f.write(f"\n\\{n}-grams:\n")
            for g in sorted(grams):
                words = " ".join(tokens[t] for t in g)
                p = lm.logprobs[g]
                p10 = ARPA_BOS_LOG10 if g == (BOS,) else p / LN10
                bow = lm.backoffs.get(g)
                if bow is None or n == lm.order:
                    f.write(f"{p10:.7f}\t{words}\n")
                else:
                    f.write(f"{p10:.7f}\t{words}\t{bow / LN10:.7f}\n")
        f.write("\n\\end\\\n")


def _open_text(path: Path):
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8")
    return open(path, encoding="utf-8")


def read_arpa(path: str | Path, unit: str | None = None) -> NgramLM:
    """Read an ARPA backoff model (plain or ``.gz``). ``unit`` defaults to the one our writer records, else
    "word"; in a "char" model ``<space>`` is read as " ". A malformed file is a ``UserError`` naming the line.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: ARPA file not found")
    if unit is not None and unit not in UNITS:
        raise ValueError(f"unit must be one of {UNITS}, got {unit!r}")

    def bad(lineno: int, what: str) -> UserError:
        return UserError(f"{path}:{lineno}: {what}; not a valid ARPA language model")

    declared: dict[int, int] = {}
    logprobs: dict[tuple[str, ...], float] = {}
    backoffs: dict[tuple[str, ...], float] = {}
    found = [0]
    section = "preamble"  # preamble -> data -> n-grams (section = n) -> end
    n = 0
    header_unit = None
    lineno = 0
    try:
        with _open_text(path) as f:
            for lineno, raw in enumerate(f, 1):
                line = raw.strip()
                if section == "preamble":
                    if line.startswith(_HEADER):
                        for field in line[len(_HEADER) :].split():
                            if field.startswith("unit="):
                                header_unit = field[len("unit=") :]
                    elif line == "\\data\\":
                        section = "data"
                    continue
                if not line:
                    continue
                if line == "\\end\\":
                    section = "end"
                    break
                if line.startswith("\\") and line.endswith("-grams:"):
                    try:
                        new_n = int(line[1 : -len("-grams:")])
                    except ValueError:
                        raise bad(lineno, f"bad section header {line!r}") from None
                    if section == "data" and not declared:
                        raise bad(lineno, "no 'ngram N=count' lines after \\data\\")
                    if new_n != n + 1 or new_n not in declared:
                        raise bad(
                            lineno, f"section \\{new_n}-grams: out of order or not declared in \\data\\"
                        )
                    if n and found[n] != declared[n]:
                        raise bad(lineno, f"\\data\\ declares {declared[n]} {n}-grams, found {found[n]}")
                    n = new_n
                    found.append(0)
                    section = "ngrams"
                    continue
                if section == "data":
                    key, _, value = line.partition("=")
                    parts = key.split()
                    try:
                        if len(parts) != 2 or parts[0] != "ngram":
                            raise ValueError
                        order_n, count = int(parts[1]), int(value)
                        if order_n != len(declared) + 1 or count < 0:
                            raise ValueError
                    except ValueError:
                        raise bad(
                            lineno, f"expected 'ngram {len(declared) + 1}=<count>', got {line!r}"
                        ) from None
                    declared[order_n] = count
                    continue
                fields = line.split()
                if len(fields) not in (n + 1, n + 2) or (len(fields) == n + 2 and n == len(declared)):
                    raise bad(
                        lineno,
                        f"a {n}-gram line needs a log10 probability, {n} tokens and an optional "
                        f"backoff weight (none in the highest order), got {len(fields)} fields",
                    )
                try:
                    p10 = float(fields[0])
                    bow10 = float(fields[n + 1]) if len(fields) == n + 2 else None
                except ValueError:
                    raise bad(lineno, f"not a number in {line!r}") from None
                if not math.isfinite(p10) or (bow10 is not None and not math.isfinite(bow10)):
                    raise bad(lineno, f"not a finite number in {line!r}")
                g = tuple(fields[1 : n + 1])
                if g in logprobs:
                    raise bad(lineno, f"the {n}-gram {' '.join(g)!r} appears twice")
                logprobs[g] = p10 * LN10
                if bow10 is not None and bow10 != 0.0:
                    backoffs[g] = bow10 * LN10
                found[n] += 1
    except UnicodeDecodeError as e:
        raise UserError(
            f"{path}:{lineno + 1}: not UTF-8 text ({e.reason}); not a valid ARPA language model"
        ) from None
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise UserError(f"{path}: cannot read ({e})") from None
    if section == "preamble":
        raise UserError(f"{path}: no \\data\\ line; not a valid ARPA language model")
    if section != "end":
        raise bad(lineno, "file ends before \\end\\")
    if n != len(declared):
        raise bad(lineno, f"\\data\\ declares {len(declared)} orders, found sections up to {n}")
    if found[n] != declared[n]:
        raise bad(lineno, f"\\data\\ declares {declared[n]} {n}-grams, found {found[n]}")
    unit = unit or header_unit or "word"
    if unit not in UNITS:
        raise UserError(f"{path}: unknown unit {unit!r} in the header; pass unit='word' or 'char'")
    if unit == "char":

        def char(g: tuple[str, ...]) -> tuple[str, ...]:
            return tuple(" " if t == ARPA_SPACE else t for t in g)

        logprobs = {char(g): p for g, p in logprobs.items()}
        backoffs = {char(g): b for g, b in backoffs.items()}
    if (BOS,) in logprobs:
        logprobs[(BOS,)] = ARPA_BOS_LOG10 * LN10
    return NgramLM(n, unit, logprobs, backoffs, {"source": str(path)})


def train_lm(data_dir: str | Path, out: str | Path, subset: str = "train", unit: str = "char",
             order: int = 5) -> dict:  # fmt: skip
    """An interpolated Kneser-Ney n-gram of a subset's transcripts, written as ARPA: over the output units
    (``char``: English characters with the space, or THCHS-30's pinyin syllables), or over words."""
    from aics.core.io import read_jsonl

    manifest = Path(data_dir) / f"{subset}.jsonl"
    if not manifest.is_file():
        raise UserError(
            f"{manifest}: not found; pass a prepared data or features dir with a {subset!r} subset"
        )
    rows = read_jsonl(manifest)
    if unit == "word" and not any(" " in r["units"] for r in rows):
        raise UserError(f"{manifest}: its output units have no space between words; use --unit char")
    sentences = [r["units"] if unit == "char" else word_tokens(r["text"]) for r in rows]
    lm = train_ngram(sentences, order=order, unit=unit)
    write_arpa(lm, out)
    return {"sentences": len(rows), "unit": unit, "order": order}
