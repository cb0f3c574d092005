"""Recognition scores: word, character and token (pinyin syllable) error rates, counted the way jiwer 4 does.

An error rate is (substitutions + deletions + insertions) / reference units, summed over the whole corpus
before dividing (not a mean of per-utterance rates). The counts come from one Levenshtein alignment per
utterance; where several alignments have the same cost, the one jiwer 4 reports (through rapidfuzz's
``Levenshtein.opcodes``) is chosen, so S, D, I and hits agree with jiwer and not only their sum:

- the common prefix and suffix of the two sequences are matched first (hits),
- the rest is traced back from the end through the distance table D (D[i][j]: distance between the first
  i reference and first j hypothesis units): at (i, j) a deletion when D[i][j] = D[i-1][j] + 1, else an
  insertion when D[i][j-1] = D[i-1][j-1] - 1, else the diagonal (a hit or a substitution). Where both are
  optimal, an insertion is so preferred to a hit but a substitution to an insertion.

Text is split into units like jiwer's default transforms:

- words (``wer``): runs of two or more white-space characters become one space, the ends are stripped of
  white space, and the text is split on " " (a single tab or newline between two words is not a word
  boundary; jiwer does the same);
- characters (``cer``): the ends are stripped of white space and every remaining character counts, spaces
  between words included (for Chinese text written with spaces between words, use ``token_error_rate`` on
  the characters without spaces).

An empty reference is allowed, as in jiwer: it adds no reference units and every hypothesis unit is an
insertion. When the references of a whole corpus are all empty there is no rate to compute; like jiwer the
"rate" is then the number of insertions (0.0 when the hypotheses are empty too).
tests/tasks/asr/test_metrics.py checks all of this against jiwer on random sentences.
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Iterable, Sequence

_RUNS_OF_SPACE = re.compile(r"\s\s+")
_UNITS = ("word", "char")


def edit_ops(ref: Sequence[Hashable], hyp: Sequence[Hashable]) -> tuple[int, int, int, int]:
    """(substitutions, deletions, insertions, hits) turning ``ref`` into ``hyp`` by a minimal Levenshtein
    alignment, chosen among equal-cost alignments as jiwer 4 chooses (see the module docstring)."""
    ref, hyp = list(ref), list(hyp)
    n, m = len(ref), len(hyp)
    start = 0
    while start < n and start < m and ref[start] == hyp[start]:
        start += 1
    end_r, end_h = n, m
    while end_r > start and end_h > start and ref[end_r - 1] == hyp[end_h - 1]:
        end_r -= 1
        end_h -= 1
    hits = start + (n - end_r)
    r, h = ref[start:end_r], hyp[start:end_h]
    nr, nh = len(r), len(h)
    if nr == 0 or nh == 0:
        return 0, nr, nh, hits

    # rows[i][j]: edit distance between r[:i] and h[:j]
    rows = [list(range(nh + 1))]
    prev = rows[0]
    for i in range(1, nr + 1):
        ri = r[i - 1]
        cur = [i] * (nh + 1)
        left = i
        for j in range(1, nh + 1):
            best = prev[j - 1] if h[j - 1] == ri else prev[j - 1] + 1
            if prev[j] + 1 < best:
                best = prev[j] + 1
            if left + 1 < best:
                best = left + 1
            cur[j] = left = best
        rows.append(cur)
        prev = cur

    subs = dels = ins = 0
    i, j = nr, nh
    while i and j:
        if rows[i][j] == rows[i - 1][j] + 1:
            dels += 1
            i -= 1
            continue
        j -= 1
        if j and rows[i][j] == rows[i - 1][j] - 1:
            ins += 1
        else:
            i -= 1
            if r[i] == h[j]:
                hits += 1
            else:
                subs += 1
    return subs, dels + i, ins + j, hits


def words(text: str) -> list[str]:
    """The words of ``text`` as jiwer's default WER transform makes them."""
    return [w for w in _RUNS_OF_SPACE.sub(" ", text).strip().split(" ") if w]


def chars(text: str) -> list[str]:
    """The characters of ``text`` as jiwer's default CER transform makes them (spaces inside count)."""
    return list(text.strip())


def _split(text: str, unit: str) -> list[str]:
    if unit not in _UNITS:
        raise ValueError(f"unit must be one of {_UNITS}, not {unit!r}")
    return words(text) if unit == "word" else chars(text)


def error_counts(ref: str, hyp: str, unit: str = "word") -> dict[str, int]:
    """One utterance's counts: S, D, I, H (hits) and N (reference units), in words or characters."""
    r, h = _split(ref, unit), _split(hyp, unit)
    s, d, i, hits = edit_ops(r, h)
    return {"S": s, "D": d, "I": i, "H": hits, "N": len(r)}


def _rate(errors: int, insertions: int, n: int) -> float:
    # jiwer's convention for a corpus with no reference unit at all: the count of insertions
    return errors / n if n else float(insertions)


def token_error_rate(refs: Sequence[Sequence[Hashable]], hyps: Sequence[Sequence[Hashable]]) -> float:
    """Corpus error rate over token sequences (e.g. pinyin syllables: the syllable error rate)."""
    if len(refs) != len(hyps):
        raise ValueError(f"{len(refs)} references but {len(hyps)} hypotheses")
    errors = insertions = n = 0
    for r, h in zip(refs, hyps, strict=True):
        s, d, i, _ = edit_ops(r, h)
        errors += s + d + i
        insertions += i
        n += len(r)
    return _rate(errors, insertions, n)


def _sentences(x: str | Sequence[str]) -> list[str]:
    return [x] if isinstance(x, str) else list(x)


def _text_error_rate(refs: str | Sequence[str], hyps: str | Sequence[str], unit: str) -> float:
    refs, hyps = _sentences(refs), _sentences(hyps)
    if len(refs) != len(hyps):
        raise ValueError(f"{len(refs)} references but {len(hyps)} hypotheses")
    return token_error_rate([_split(r, unit) for r in refs], [_split(h, unit) for h in hyps])


def wer(refs: str | Sequence[str], hyps: str | Sequence[str]) -> float:
    """Corpus word error rate (a single string is one sentence), as ``jiwer.wer``."""
    return _text_error_rate(refs, hyps, "word")


def cer(refs: str | Sequence[str], hyps: str | Sequence[str]) -> float:
    """Corpus character error rate, spaces between words included, as ``jiwer.cer``."""
    return _text_error_rate(refs, hyps, "char")


def score_corpus(pairs: Iterable[tuple[str, str]]) -> dict:
    """Totals over (reference, hypothesis) pairs: ``wer``, ``cer``, ``ser`` (share of utterances with at
    least one word error), ``n_utts``, ``n_words``, ``n_chars``, the word counts ``S D I H`` and the
    character counts ``char_S char_D char_I char_H``."""
    totals = dict.fromkeys(("S", "D", "I", "H", "N", "char_S", "char_D", "char_I", "char_H", "char_N"), 0)
    n_utts = wrong = 0
    for ref, hyp in pairs:
        n_utts += 1
        w = error_counts(ref, hyp, "word")
        c = error_counts(ref, hyp, "char")
        wrong += w["S"] + w["D"] + w["I"] > 0
        for k in "SDIHN":
            totals[k] += w[k]
            totals["char_" + k] += c[k]
    t = totals
    return {
        "wer": _rate(t["S"] + t["D"] + t["I"], t["I"], t["N"]),
        "cer": _rate(t["char_S"] + t["char_D"] + t["char_I"], t["char_I"], t["char_N"]),
        "ser": wrong / n_utts if n_utts else 0.0,
        "n_utts": n_utts,
        "n_words": t["N"],
        "n_chars": t["char_N"],
        **{k: t[k] for k in ("S", "D", "I", "H", "char_S", "char_D", "char_I", "char_H")},
    }
