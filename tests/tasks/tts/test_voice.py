"""The default voice that ships inside aics (aics/tasks/tts/voices/): it loads on a fresh install and says
held-out sentences that the pocketsphinx judge understands. The judge's language model holds all 54 test
sentences of the voice's corpus (none of which it was trained on), so it must tell them apart by sound."""

from __future__ import annotations

from pathlib import Path

import pytest
import soundfile

from aics.tasks.tts.voice import DEFAULT_VOICE, default_voice

SENTENCES = Path(__file__).parent / "slt_test_sentences.txt"
SAID = (0, 36, 40)  # rows of SENTENCES the voice says: three held-out sentences of 7 to 10 words


def test_the_default_voice_ships_with_its_card_and_config():
    assert default_voice() == DEFAULT_VOICE, "aics/tasks/tts/voices/default.safetensors is missing"
    assert DEFAULT_VOICE.with_suffix(".json").is_file()
    card = (DEFAULT_VOICE.parent / "MODEL_CARD.md").read_text()
    for words in ("Command", "Data", "Seed", "Training time", "WER"):
        assert words in card, words
    assert DEFAULT_VOICE.stat().st_size + DEFAULT_VOICE.with_suffix(".json").stat().st_size < 20e6


def test_tts_info_shows_what_the_voice_reads_and_its_recorded_scores(aics):
    shown = aics("tts", "info", DEFAULT_VOICE)
    assert "text.arpabet: 1.0" in shown  # a phones voice: aics tts reads through CMUdict for it
    assert "scores: judge WER" in shown and "every key and shape matches" in shown


def test_the_default_voice_says_held_out_sentences_the_judge_understands(tmp_path, aics, monkeypatch):
    pytest.importorskip("pocketsphinx")
    from aics.tasks.asr.judge import PocketsphinxJudge
    from aics.tasks.asr.metrics import score_corpus
    from aics.tasks.asr.text import normalize_text

    monkeypatch.delenv("AICS_TACOTRON2", raising=False)
    raw = SENTENCES.read_text(encoding="utf-8").splitlines()
    assert len(raw) == 54
    lines = tmp_path / "lines.txt"
    lines.write_text("".join(raw[k] + "\n" for k in SAID), encoding="utf-8")
    aics("tts", "--input", lines, "-o", tmp_path / "said")  # no --tacotron2: the shipped voice
    wavs = [tmp_path / "said" / f"{i + 1:04d}.wav" for i in range(len(SAID))]
    for wav in wavs:
        audio, sr = soundfile.read(wav)
        assert sr == 22050 and 0.5 < len(audio) / sr < 12
    refs = [normalize_text(r) for r in raw]
    with PocketsphinxJudge(refs) as judge:
        hyps = [normalize_text(h) for h in judge.transcribe_many(wavs, show_progress=False)]
    scores = score_corpus(zip([refs[k] for k in SAID], hyps, strict=True))
    assert scores["wer"] < 0.5, list(zip([refs[k] for k in SAID], hyps, strict=True))
