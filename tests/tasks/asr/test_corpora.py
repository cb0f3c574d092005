"""Readers of the real speech corpora (LJSpeech, LibriTTS, LibriSpeech, THCHS-30) on tiny corpora written in
each one's own layout, and the one-line errors (file and line) for every kind of bad entry."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from aics.core.errors import UserError
from aics.tasks.asr.corpora import (
    check_audio,
    detect_format,
    read_corpus,
    read_librispeech,
    read_libritts,
    read_ljspeech,
    read_thchs30,
)

SR = 16000


def write_audio(path, seconds=0.05, sr=SR):
    path.parent.mkdir(parents=True, exist_ok=True)
    noise = np.random.default_rng(len(str(path))).uniform(-0.1, 0.1, int(seconds * sr)).astype(np.float32)
    sf.write(path, noise, sr)  # the suffix picks the container: .wav or .flac


def raises_one_line(fn, *args, **kwargs) -> str:
    with pytest.raises(UserError) as info:
        fn(*args, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    return message


# -------------------------------------------------------------------------------------------- LJSpeech
LJ_ROWS = [
    "LJ001-0001|Printing, in the only sense|Printing, in the only sense",
    'LJ001-0002|He said, "No, in 1850."|He said, "No, in eighteen fifty."',
    "LJ002-0003|Mr. Smith's 2nd book|Mister Smith's second book",
]


def make_ljspeech(root, rows=LJ_ROWS, skip_wavs=()):
    root.mkdir(parents=True)
    (root / "metadata.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    for row in rows:
        uid = row.split("|")[0]
        if uid and uid not in skip_wavs:
            write_audio(root / "wavs" / f"{uid}.wav", seconds=0.1, sr=22050)
    return root


def test_ljspeech_fields(tmp_path):
    root = make_ljspeech(tmp_path / "LJSpeech-1.1")
    utts = read_ljspeech(root)
    assert [u.id for u in utts] == ["LJ001-0001", "LJ001-0002", "LJ002-0003"]
    assert utts[0].text == utts[0].raw_text == "Printing, in the only sense"
    assert utts[1].text == 'He said, "No, in eighteen fifty."'  # quotes are text, not CSV quoting
    assert utts[1].raw_text == 'He said, "No, in 1850."'
    assert utts[2].wav == root / "wavs" / "LJ002-0003.wav"
    assert {u.speaker for u in utts} == {"LJ"}
    assert utts[2].source == f"{root / 'metadata.csv'}:3"
    assert read_ljspeech(tmp_path, speaker="lj")[0].speaker == "lj"  # the parent of LJSpeech-1.1 works too
    assert check_audio(utts, workers=2) == pytest.approx([0.1] * 3, abs=1e-3)


def test_ljspeech_wrong_field_count(tmp_path):
    root = make_ljspeech(tmp_path / "lj", rows=[LJ_ROWS[0], "LJ001-0002|only two fields", LJ_ROWS[2]])
    message = raises_one_line(read_ljspeech, root)
    assert "metadata.csv:2: 2 fields, expected 3" in message
    assert message.startswith("LJSpeech: 1 bad row:")
    assert "delete those rows" in message


def test_ljspeech_missing_wav(tmp_path):
    root = make_ljspeech(tmp_path / "lj", skip_wavs={"LJ002-0003"})
    message = raises_one_line(read_ljspeech, root)
    assert "metadata.csv:3:" in message and "LJ002-0003.wav not found" in message


def test_ljspeech_empty_utterance_and_duplicate(tmp_path):
    rows = [LJ_ROWS[0], "LJ001-0002|Some words| ", LJ_ROWS[2], LJ_ROWS[0]]
    message = raises_one_line(read_ljspeech, make_ljspeech(tmp_path / "lj", rows=rows))
    assert message.startswith("LJSpeech: 2 bad rows:")
    assert "metadata.csv:2: empty normalised transcript" in message
    assert "metadata.csv:4: id LJ001-0001 is listed twice (first on line 1)" in message


def test_ljspeech_not_utf8(tmp_path):
    root = make_ljspeech(tmp_path / "lj")
    with open(root / "metadata.csv", "ab") as f:
        f.write(b"LJ003-0001|caf\xe9|caf\xe9\n")
    assert "metadata.csv:4: not UTF-8" in raises_one_line(read_ljspeech, root)


def test_unreadable_audio_names_wav_and_row(tmp_path):
    root = make_ljspeech(tmp_path / "lj")
    utts = read_ljspeech(root)
    (root / "wavs" / "LJ001-0002.wav").write_bytes(b"RIFF but not really a wav file")
    message = raises_one_line(check_audio, utts)
    assert message.startswith("audio: 1 bad file:")
    assert "LJ001-0002.wav: cannot be read as audio (format not recognised)" in message
    assert "metadata.csv:2" in message and "re-download the corpus" in message
    (root / "wavs" / "LJ002-0003.wav").unlink()
    message = raises_one_line(check_audio, utts, workers=2)
    assert message.startswith("audio: 2 bad files:")
    assert "LJ002-0003.wav: not found; listed at" in message and "metadata.csv:3" in message


def test_many_problems_stay_on_one_line(tmp_path):
    rows = [f"LJ001-{i:04d}|a|b|c" for i in range(7)]
    message = raises_one_line(read_ljspeech, make_ljspeech(tmp_path / "lj", rows=rows))
    assert message.startswith("LJSpeech: 7 bad rows:") and "(and 4 more)" in message
    assert "metadata.csv:1:" in message and "metadata.csv:3:" in message and "metadata.csv:4:" not in message


# -------------------------------------------------------------------------------------------- LibriTTS
def make_libritts(tmp_path):
    corpus = tmp_path / "LibriTTS"
    entries = {
        ("dev-clean", "84", "121123"): {
            "84_121123_000007_000001": ("He was, in fact, a gentleman.", "He was, in fact, a gentleman."),
            "84_121123_000008_000000": ("Mister Wilkins paid twelve pounds.", "Mr. Wilkins paid £12."),
        },
        ("test-clean", "1089", "134686"): {
            "1089_134686_000001_000001": ("He hoped there would be stew.", "He hoped there would be stew."),
        },
    }
    for (subset, spk, chap), utts in entries.items():
        d = corpus / subset / spk / chap
        for uid, (norm, orig) in utts.items():
            write_audio(d / f"{uid}.wav", sr=24000)
            (d / f"{uid}.normalized.txt").write_text(norm, encoding="utf-8")  # one line, no newline
            (d / f"{uid}.original.txt").write_text(orig, encoding="utf-8")
    (corpus / "speakers.tsv").write_text(
        "READER\tGENDER\tSUBSET\tNAME\n84\tF\tdev-clean\tChristie Nowak\n1089\tM\ttest-clean\tKeith\n"
    )
    return corpus


def test_libritts_fields(tmp_path):
    corpus = make_libritts(tmp_path)
    utts = read_libritts(corpus)
    assert [u.id for u in utts] == [
        "84_121123_000007_000001",
        "84_121123_000008_000000",
        "1089_134686_000001_000001",
    ]
    u = utts[1]
    assert (u.text, u.raw_text) == ("Mister Wilkins paid twelve pounds.", "Mr. Wilkins paid £12.")
    assert u.speaker == "84" and u.extra == {"subset": "dev-clean", "chapter": "121123", "gender": "F"}
    assert u.wav == corpus / "dev-clean" / "84" / "121123" / "84_121123_000008_000000.wav"
    assert [u.id for u in read_libritts(tmp_path, subsets=["test-clean"])] == ["1089_134686_000001_000001"]
    one = read_libritts(corpus / "dev-clean")  # a subset dir on its own
    assert len(one) == 2 and one[0].extra["gender"] == "F"  # speakers.tsv found beside it
    assert "no subset train-clean-100" in raises_one_line(read_libritts, corpus, subsets="train-clean-100")


def test_libritts_missing_and_empty_transcripts(tmp_path):
    corpus = make_libritts(tmp_path)
    d = corpus / "dev-clean" / "84" / "121123"
    (d / "84_121123_000007_000001.normalized.txt").unlink()
    (d / "84_121123_000008_000000.normalized.txt").write_text("  \n")
    write_audio(d / "stray.wav")
    (d / "84_121123_000009_000000.normalized.txt").write_text("No audio for me.")
    message = raises_one_line(read_libritts, corpus)
    assert message.startswith("LibriTTS: 4 bad utterances:")
    assert "84_121123_000009_000000.normalized.txt: no 84_121123_000009_000000.wav beside it" in message
    assert "84_121123_000007_000001.wav: no 84_121123_000007_000001.normalized.txt beside it" in message
    assert "84_121123_000008_000000.normalized.txt:1: empty transcript" in message
    assert "(and 1 more)" in message  # stray.wav: not named after its speaker and chapter


def test_libritts_not_utf8(tmp_path):
    corpus = make_libritts(tmp_path)
    bad = corpus / "test-clean" / "1089" / "134686" / "1089_134686_000001_000001.original.txt"
    bad.write_bytes(b"He hoped there would be st\xe9w.")
    assert "1089_134686_000001_000001.original.txt:1: not UTF-8" in raises_one_line(read_libritts, corpus)


# ----------------------------------------------------------------------------------------- LibriSpeech
def make_librispeech(tmp_path):
    corpus = tmp_path / "LibriSpeech"
    chapters = {
        ("dev-clean", "1272", "128104"): {
            "1272-128104-0000": "MISTER QUILTER IS THE APOSTLE OF THE MIDDLE CLASSES",
            "1272-128104-0001": "NOR IS MISTER QUILTER'S MANNER LESS INTERESTING",
        },
        ("dev-clean", "1462", "170138"): {"1462-170138-0000": "HE HAD WRITTEN A NUMBER OF BOOKS"},
    }
    for (subset, spk, chap), utts in chapters.items():
        d = corpus / subset / spk / chap
        for uid in utts:
            write_audio(d / f"{uid}.flac")
        lines = "".join(f"{uid} {text}\n" for uid, text in utts.items())
        (d / f"{spk}-{chap}.trans.txt").write_text(lines)
    (corpus / "SPEAKERS.TXT").write_text(
        "; Some speakers\n;ID  |SEX| SUBSET           |MINUTES| NAME\n"
        "60   | M | train-clean-100  | 20.18 | |CBW|Simon\n"
        "1272 | M | dev-clean        |  8.08 | John Rose\n1462 | F | dev-clean        |  8.05 | E. Tavano\n"
    )
    return corpus


def test_librispeech_fields(tmp_path):
    corpus = make_librispeech(tmp_path)
    utts = read_librispeech(tmp_path)  # the parent of LibriSpeech/
    assert [u.id for u in utts] == ["1272-128104-0000", "1272-128104-0001", "1462-170138-0000"]
    u = utts[1]
    assert u.text == "nor is mister quilter's manner less interesting"
    assert u.raw_text == "NOR IS MISTER QUILTER'S MANNER LESS INTERESTING"
    assert u.wav == corpus / "dev-clean" / "1272" / "128104" / "1272-128104-0001.flac"
    assert u.speaker == "1272" and u.extra == {"subset": "dev-clean", "chapter": "128104", "gender": "M"}
    assert utts[2].extra["gender"] == "F"
    assert u.source == f"{corpus / 'dev-clean' / '1272' / '128104' / '1272-128104.trans.txt'}:2"
    assert check_audio(utts) == pytest.approx([0.05] * 3, abs=1e-3)  # flac headers


def test_librispeech_bad_lines(tmp_path):
    corpus = make_librispeech(tmp_path)
    d = corpus / "dev-clean" / "1272" / "128104"
    with open(d / "1272-128104.trans.txt", "a") as f:
        f.write("1272-128104-0002\n1272-128104-0000 MISTER QUILTER AGAIN\n1272-128104-0003 NO AUDIO HERE\n")
    write_audio(d / "1272-128104-0002.flac")
    message = raises_one_line(read_librispeech, corpus)
    assert message.startswith("LibriSpeech: 3 bad transcript lines:")
    assert "1272-128104.trans.txt:3: no transcript after the id 1272-128104-0002" in message
    assert "1272-128104.trans.txt:4: id 1272-128104-0000 is listed twice (first on line 1)" in message
    assert "1272-128104.trans.txt:5: " in message and "1272-128104-0003.flac not found" in message


# -------------------------------------------------------------------------------------------- THCHS-30
THCHS = {
    "A11_0": (
        "绿 是 阳春 烟 景 大块 文章 的 底色 四月 的 林 峦 更是 绿 得 鲜活 秀媚 诗意 盎然",
        "lv4 shi4 yang2 chun1 yan1 jing3 da4 kuai4 wen2 zhang1 de5 di3 se4 si4 yue4 de5 lin2 luan2 geng4 "
        "shi4 lv4 de5 xian1 huo2 xiu4 mei4 shi1 yi4 ang4 ran2",
        "l v4 sh ix4 ii iang2 ch un1 ii ian1 j ing3 d a4 k uai4 uu un2 zh ang1 d e5 d i3 s e4 s iy4 vv ve4 "
        "d e5 l in2 l uan2 g eng4 sh ix4 l v4 d e5 x ian1 h uo2 x iu4 m ei4 sh ix1 ii i4 aa ang4 r an2",
    ),
    "A11_1": (
        "他 仅 凭 腰部 的 力量",
        "ta1 jin3 ping2 yao1 bu4 de5 li4 liang4",
        "t a1 j in3 p ing2 ii iao1 b u4 d e5 l i4 l iang4",
    ),
    "B2_10": (
        "企业 依靠 技术 挖潜 增效",
        "qi3 ye4 yi1 kao4 ji4 shu4 wa1 qian2 zeng1 xiao4",
        "q i3 ii ie4 ii i1 k ao4 j i4 sh u4 uu ua1 q ian2 z eng1 x iao4",
    ),
}


def make_thchs30(tmp_path):
    """data/ holds everything; train/ links into it the two ways found in the wild (symlinks, and one-line
    .trn files naming ../data/X.wav.trn); dev/ holds a copy with the three lines itself."""
    base = tmp_path / "data_thchs30"
    for uid, lines in THCHS.items():
        write_audio(base / "data" / f"{uid}.wav")
        (base / "data" / f"{uid}.wav.trn").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (base / "train").mkdir()
    os.symlink("../data/A11_0.wav", base / "train" / "A11_0.wav")
    (base / "train" / "A11_0.wav.trn").write_text("../data/A11_0.wav.trn\n")
    for name in ("A11_1.wav", "A11_1.wav.trn"):
        os.symlink(f"../data/{name}", base / "train" / name)
    write_audio(base / "dev" / "B2_10.wav")
    (base / "dev" / "B2_10.wav.trn").write_text("\n".join(THCHS["B2_10"]) + "\n", encoding="utf-8")
    (base / "test").mkdir()
    return base


def test_thchs30_fields(tmp_path):
    base = make_thchs30(tmp_path)
    train = read_thchs30(tmp_path, split="train")
    assert [u.id for u in train] == ["A11_0", "A11_1"]
    u = train[0]
    assert u.text == "绿是阳春烟景大块文章的底色四月的林峦更是绿得鲜活秀媚诗意盎然"
    assert u.raw_text == THCHS["A11_0"][0]
    assert u.units[:3] == ("lv4", "shi4", "yang2") and len(u.units) == len(u.text) == 30
    assert u.extra["phones"][:4] == ("l", "v4", "sh", "ix4") and u.extra["split"] == "train"
    assert u.speaker == "A11" and u.wav == base / "data" / "A11_0.wav"
    assert u.source == f"{base / 'data' / 'A11_0.wav.trn'}:1"  # the link was followed
    dev = read_thchs30(base, split="dev")
    assert [(u.id, u.speaker, u.units[-1]) for u in dev] == [("B2_10", "B2", "xiao4")]
    assert [u.id for u in read_corpus(base, "thchs30")] == ["A11_0", "A11_1", "B2_10"]  # all of data/
    assert "no utterances" in raises_one_line(read_thchs30, base, split="test")
    assert "THCHS-30 has the splits" in raises_one_line(read_thchs30, base, split="valid")


def test_thchs30_short_trn(tmp_path):
    base = make_thchs30(tmp_path)
    (base / "data" / "A11_1.wav.trn").write_text("\n".join(THCHS["A11_1"][:2]) + "\n", encoding="utf-8")
    message = raises_one_line(read_thchs30, base, split="train")
    assert message.startswith("THCHS-30: 1 bad transcript:")
    where = base / "data" / "A11_1.wav.trn"  # the file the link in train/ points to: the one to fix
    assert f"{where}:3: missing; a THCHS-30 .trn needs 3 lines (characters, pinyin, phones)" in message


def test_thchs30_syllable_count_and_empty_line(tmp_path):
    base = make_thchs30(tmp_path)
    chars, pinyin, phones = THCHS["B2_10"]
    (base / "dev" / "B2_10.wav.trn").write_text(f"{chars}\n{pinyin} ye4\n{phones}\n", encoding="utf-8")
    message = raises_one_line(read_thchs30, base, split="dev")
    assert "B2_10.wav.trn:2: 11 pinyin syllables for 10 Chinese characters on line 1" in message
    assert read_thchs30(base, split="dev", check_pinyin=False)[0].units[-1] == "ye4"
    (base / "dev" / "B2_10.wav.trn").write_text(f"\n{pinyin}\n{phones}\n", encoding="utf-8")
    assert "B2_10.wav.trn:1: empty characters line" in raises_one_line(read_thchs30, base, split="dev")


def test_thchs30_broken_pointer(tmp_path):
    base = make_thchs30(tmp_path)
    (base / "train" / "A11_0.wav.trn").write_text("../data/A99_0.wav.trn\n")
    message = raises_one_line(read_thchs30, base, split="train")
    assert "A11_0.wav.trn:1: points to" in message and "A99_0.wav.trn, which does not exist" in message


# ------------------------------------------------------------------------------------------- dispatch
def test_detect_format_and_read_corpus(tmp_path):
    make_ljspeech(tmp_path / "lj" / "LJSpeech-1.1")
    make_libritts(tmp_path / "tts")
    make_librispeech(tmp_path / "ls")
    make_thchs30(tmp_path / "th")
    assert detect_format(tmp_path / "lj") == detect_format(tmp_path / "lj" / "LJSpeech-1.1") == "ljspeech"
    assert detect_format(tmp_path / "tts") == detect_format(tmp_path / "tts" / "LibriTTS" / "dev-clean")
    assert detect_format(tmp_path / "tts" / "LibriTTS") == "libritts"
    assert detect_format(tmp_path / "ls" / "LibriSpeech") == detect_format(tmp_path / "ls") == "librispeech"
    assert detect_format(tmp_path / "th") == detect_format(tmp_path / "th" / "data_thchs30") == "thchs30"
    (tmp_path / "empty").mkdir()
    assert "not a corpus layout I know" in raises_one_line(detect_format, tmp_path / "empty")
    assert "no such directory" in raises_one_line(detect_format, tmp_path / "nowhere")
    assert len(read_corpus(tmp_path / "ls")) == 3
    assert len(read_corpus(tmp_path / "tts", "libritts", subsets=["dev-clean"])) == 2
    assert "--format wav: unknown" in raises_one_line(read_corpus, tmp_path / "lj", "wav")
    message = raises_one_line(read_corpus, tmp_path / "lj", "ljspeech", split="train")
    assert "split: not an option of the ljspeech reader" in message


def test_import_is_cheap():
    code = (
        "import sys, aics.tasks.asr.corpora; print([m for m in ('torch', 'soundfile') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
