"""Stage 5: score synthesised speech against the recordings of the same sentences.

Usage: aics tts score --decode exp/tts/t2/decode_test_griffinlim

Reads a decode dir (``aics tts decode``: wavs, per_utt.jsonl, decode.json) and writes in its ``score/``:

- ``judge_synth/`` and ``judge_real/``: the pocketsphinx judge (``aics asr judge``) on the synthesised wavs
  and on the real recordings of the same sentences; its WER on the recordings is the level synthesis is held
  to;
- ``mcd.jsonl``: each utterance's MCD-DTW (dB) against its recording (``metrics.mcd_dtw``);
- ``scores.json``: judge WER / CER on both, their ratio, mean MCD-DTW, attention health (share monotonic,
  share reaching the end of the text, mean focus rate, utterances that hit the decoder step limit), the
  real-time factor of the decode (its device and batch) and of saying a few test sentences one at a time on
  the CPU;
- ``RESULTS.md``: the same as a table; and ``.done``.
"""

from __future__ import annotations

from pathlib import Path

from aics.core.errors import UserError
from aics.core.io import read_json, read_jsonl, write_json, write_jsonl, write_text
from aics.core.report import rows_table
from aics.core.stage import begin_stage, mark_done, require_done

SCORES = "scores.json"


def _mcd_one(synth_path: Path, real_path: Path, sr: int) -> float:
    from aics.core.audio import read_wav
    from aics.tasks.tts.metrics import mcd_dtw

    synth, _ = read_wav(synth_path, sr=sr)
    real, _ = read_wav(real_path, sr=sr)
    return mcd_dtw(synth.numpy(), real.numpy(), sr)


def cpu_speed(info: dict, texts: list[str]) -> dict:
    """Real-time factor of saying ``texts`` one at a time on the CPU with the decode's models and vocoder
    (what a user waits for one sentence), after one warm-up sentence."""
    import torch

    from aics.tasks.tts.infer import Synthesizer

    synth = Synthesizer(info["tacotron2"], info.get("waveglow"), info["vocoder"], "cpu")
    kw = {k: info[k] for k in ("seed", "sigma", "denoise", "gl_iters")}
    synth.synthesize(texts[:1], batch_size=1, **kw)
    seconds = audio = 0.0
    for text in texts:
        _, timing = synth.synthesize([text], batch_size=1, **kw)
        seconds += timing.seconds
        audio += timing.samples / synth.sample_rate
    return {"rtf_cpu": round(seconds / audio, 4), "rtf_cpu_utterances": len(texts),
            "rtf_cpu_threads": torch.get_num_threads()}  # fmt: skip


def score_decode(
    decode_dir: str | Path, judge: bool = True, workers: int = 2, speed_utts: int = 5, overwrite: bool = False
) -> dict:
    """Score one decode dir; returns the scores (also in ``scores.json``). ``speed_utts``: sentences said one
    at a time on the CPU for the real-time factor (0: none)."""
    from aics.tasks.tts.metrics import attention_summary

    decode_dir = require_done(decode_dir, "decode", "run `aics tts decode` first")
    info = read_json(decode_dir / "decode.json")
    per_utt = read_jsonl(decode_dir / "per_utt.jsonl")
    feats_dir = Path(info["data"])
    rows_path = feats_dir / f"{info['subset']}.jsonl"
    if not rows_path.is_file():
        raise UserError(f"{rows_path}: missing (the features the decode read); rerun `aics tts features`")
    real = {r["id"]: r for r in read_jsonl(rows_path)}
    missing = [u["id"] for u in per_utt if u["id"] not in real]
    if missing:
        raise UserError(
            f"{rows_path}: has no recording for {', '.join(missing[:3])}; decode and score one subset"
        )
    synth_wavs = {u["id"]: decode_dir / "wavs" / f"{u['id']}.wav" for u in per_utt}
    real_wavs = {u["id"]: Path(real[u["id"]]["wav"]) for u in per_utt}
    texts = {u["id"]: u["text"] for u in per_utt}
    out = decode_dir / "score"
    params = {"judge": judge, "speed_utts": speed_utts}
    if not begin_stage(out, overwrite, what="score", params=params):
        return read_json(out / SCORES)

    sr = 22050
    mcds = [_mcd_one(synth_wavs[i], real_wavs[i], sr) for i in texts]
    write_jsonl(
        out / "mcd.jsonl", [{"id": i, "mcd_db": round(m, 4)} for i, m in zip(texts, mcds, strict=True)]
    )
    health = attention_summary(per_utt, [u["hit_step_limit"] for u in per_utt])
    scores: dict = {
        "decode": str(decode_dir), "subset": info["subset"], "vocoder": info["vocoder"],
        "utterances": len(per_utt), "mcd_dtw_db": round(sum(mcds) / len(mcds), 4),
        "attention": health, "rtf_decode": info["rtf"], "decode_device": info["device"],
        "decode_batch_size": info["batch_size"],
    }  # fmt: skip
    if speed_utts:
        scores.update(cpu_speed(info, list(texts.values())[:speed_utts]))
    if judge:
        from aics.tasks.asr.judge import judge_inputs, run_judge

        for name, wavs in (("synth", synth_wavs), ("real", real_wavs)):
            inputs = judge_inputs(wavs, texts, source=str(decode_dir / "per_utt.jsonl"))
            s = run_judge(inputs, out / f"judge_{name}", workers=workers, show_progress=False)
            scores[f"wer_{name}"], scores[f"cer_{name}"] = s["wer"], s["cer"]
        scores["wer_ratio"] = scores["wer_synth"] / scores["wer_real"] if scores["wer_real"] else None
    write_json(out / SCORES, scores)
    write_text(out / "RESULTS.md", results_table([scores]))
    mark_done(out, {"mcd_dtw_db": scores["mcd_dtw_db"]}, params=params)
    return scores


def _row(s: dict) -> dict:
    a = s["attention"]
    row = {"decode": Path(s["decode"]).name, "utts": s["utterances"]}
    if "wer_synth" in s:
        ratio = s["wer_ratio"]
        row.update({"judge WER synth %": 100 * s["wer_synth"], "judge WER real %": 100 * s["wer_real"],
                    "WER ratio": "" if ratio is None else ratio, "judge CER synth %": 100 * s["cer_synth"],
                    "judge CER real %": 100 * s["cer_real"]})  # fmt: skip
    row.update({"MCD-DTW dB": s["mcd_dtw_db"], "monotonic %": 100 * a["monotonic"],
                "reach end %": 100 * a["reaches_end"], "focus": a["focus_rate"],
                "hit step limit": a["hit_max_steps"]})  # fmt: skip
    if "rtf_cpu" in s:
        row[f"RTF {s['vocoder']} (CPU, 1 sentence)"] = s["rtf_cpu"]
    return row


def results_table(scores: list[dict]) -> str:
    return rows_table([_row(s) for s in scores])


def report(exps: list[str], out: str | None = None) -> str:
    """One table of every scored decode (``*/score/scores.json``) under the experiments."""
    found = [read_json(p) for e in exps for p in sorted(Path(e).glob("*/score/" + SCORES))]
    if not found:
        raise UserError(
            "none of these experiments has a scored decode; run `aics tts decode` and `aics tts score`"
        )
    table = results_table(found)
    if out:
        write_text(out, table)
    return table
