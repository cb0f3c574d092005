"""``aics asr``: commands of the speech lab (thin wrappers; the work is in the task's modules)."""

from __future__ import annotations

from pathlib import Path

import click

from aics.core.options import (
    conf_option,
    config_command,
    device_option,
    overwrite_option,
    report_command,
    set_option,
    train_command,
)

FORMATS = ("auto", "ljspeech", "libritts", "librispeech", "thchs30")


@click.group("asr")
def cli() -> None:
    """Speech: offline corpora, DFCNN + CTC recognition (CER / WER), the WER judge for synthesis."""


@cli.command()
@click.option("--out", type=click.Path(file_okay=False), help="Directory for the corpus (required).")
@click.option("--layout", type=click.Choice(("libritts", "ljspeech")), default="libritts", show_default=True,
              help="libritts: speakers, 24 kHz, train/dev/test(-heldout); ljspeech: one voice.")  # fmt: skip
@click.option("--voice", "voices", multiple=True,
              help="Voice (repeatable; see --list-voices); default: the five recorded speakers.")  # fmt: skip
@click.option("--heldout-voice", "heldout_voices", multiple=True,
              help="libritts: voice heard only in the test-heldout subset (repeatable).")  # fmt: skip
@click.option("--minutes", default=10.0, show_default=True, type=click.FloatRange(min=0, min_open=True),
              help="Audio of the ljspeech corpus or of the libritts train subset.")  # fmt: skip
@click.option(
    "--dev-minutes", type=click.FloatRange(min=0), help="Dev audio (default: a tenth of --minutes)."
)
@click.option(
    "--test-minutes", type=click.FloatRange(min=0), help="Test audio (default: a tenth of --minutes)."
)
@click.option(
    "--heldout-minutes", type=click.FloatRange(min=0), help="Held-out voice audio (default: as test)."
)
@click.option("--vocab-size", type=click.IntRange(min=40), help="Words per word class (default: all ~2,300).")
@click.option(
    "--min-words", default=4, show_default=True, type=click.IntRange(2, 80), help="Shortest sentence."
)
@click.option(
    "--max-words", default=24, show_default=True, type=click.IntRange(2, 80), help="Longest sentence."
)
@click.option("--speed-range", nargs=2, default=(0.9, 1.1), type=click.FloatRange(0.5, 2.0),
              help="Speaking-rate factor drawn per utterance [0.9 1.1].")  # fmt: skip
@click.option("--pitch-range", nargs=2, default=(0.9, 1.1), type=click.FloatRange(0.5, 2.0),
              help="Pitch factor per utterance, where the engine allows [0.9 1.1].")  # fmt: skip
@click.option("--espeak-variant", "espeak_variants", multiple=True,
              help="espeak-ng voices: variants to draw from (all, none or names; repeatable).")  # fmt: skip
@click.option(
    "--sr", type=click.IntRange(8000, 48000), help="Sample rate (default 24000 libritts, 22050 ljspeech)."
)
@click.option("--seed", default=0, show_default=True, type=click.IntRange(min=0), help="Generator seed.")
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1, 64), help="Processes.")
@click.option("--list-voices", is_flag=True, help="List the voices and their speakers, then exit.")
@overwrite_option
def synth(out, layout, voices, heldout_voices, minutes, dev_minutes, test_minutes, heldout_minutes,
          vocab_size, min_words, max_words, speed_range, pitch_range, espeak_variants, sr, seed, workers,
          list_voices, overwrite) -> None:  # fmt: skip
    """Write a speech corpus offline from Debian's synthesizers (flite, festival, espeak-ng).

    Sentences come from a seeded English generator (numbers, abbreviations, questions); speed and pitch vary
    per utterance. synth.json beside the data records every setting.
    """
    if list_voices:
        from aics.tasks.asr.engines import VOICES

        for name, v in VOICES.items():
            click.echo(f"{name}\t{v.speaker}\t{v.engine}\t{v.sample_rate} Hz\t{v.package}")
        return
    if not out:
        raise click.UsageError("Missing option '--out'")
    from aics.tasks.asr.synth import generate

    info = generate(
        out, layout=layout, voices=voices or None, heldout_voices=heldout_voices or None, minutes=minutes,
        dev_minutes=dev_minutes, test_minutes=test_minutes, heldout_minutes=heldout_minutes, seed=seed,
        vocab_size=vocab_size, min_words=min_words, max_words=max_words, speed_range=speed_range,
        pitch_range=pitch_range, espeak_variants=espeak_variants or None, sr=sr, workers=workers,
        overwrite=overwrite,
    )  # fmt: skip
    click.echo(f"wrote {out}: {info['subsets']}")


@cli.command()
@click.option("--src", required=True, type=click.Path(), help="Corpus directory (its own layout).")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Prepared data directory.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="auto", show_default=True,
              help="Corpus layout; auto guesses it from the files.")  # fmt: skip
@click.option("--units", type=click.Choice(("auto", "char", "pinyin")), default="auto", show_default=True,
              help="English characters, or tonal pinyin syllables (THCHS-30); auto: by format.")  # fmt: skip
@click.option("--train-set", default="train", show_default=True, help="Subset for training.")
@click.option("--valid-frac", default=0.05, show_default=True, type=click.FloatRange(0, 0.5),
              help="Corpora without subsets (LJSpeech): fraction of utterances for dev.")  # fmt: skip
@click.option("--test-frac", default=0.05, show_default=True, type=click.FloatRange(0, 0.5),
              help="Corpora without subsets (LJSpeech): fraction of utterances for test.")  # fmt: skip
@click.option("--seed", default=0, show_default=True, type=click.IntRange(min=0), help="Split seed.")
@click.option("--workers", default=2, show_default=True, type=click.IntRange(min=1), help="Processes.")
@overwrite_option
def prepare(src, out, fmt, units, train_set, valid_frac, test_frac, seed, workers, overwrite) -> None:
    """Validate a corpus, map transcripts to output units, write one manifest per subset."""
    from aics.tasks.asr.data import prepare as run

    stats = run(src, out, fmt=fmt, units=units, train_set=train_set, valid_frac=valid_frac,
                test_frac=test_frac, seed=seed, workers=workers, overwrite=overwrite)  # fmt: skip
    sizes = ", ".join(f"{k} {v['utterances']} ({v['hours']:.2f} h)" for k, v in stats["subsets"].items())
    click.echo(f"prepared {out}: {stats['format']}, {stats['n_units'] - 1} {stats['units']} units; {sizes}")


@cli.command()
@click.option("--data", required=True, type=click.Path(), help="Prepared data directory.")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Features directory.")
@conf_option
@set_option
@click.option("--workers", default=2, show_default=True, type=click.IntRange(min=1), help="Processes.")
@overwrite_option
def features(data, out, conf, overrides, workers, overwrite) -> None:
    """Compute the features of every subset once (float16, memory-mapped), as the config's features say."""
    from aics.core.config import load_config
    from aics.tasks.asr.config import AsrConfig
    from aics.tasks.asr.data import check_prepared

    cfg = load_config(AsrConfig, conf, overrides)
    check_prepared(data)
    from aics.tasks.asr.data import compute_features

    info = compute_features(data, out, cfg.features, workers=workers, overwrite=overwrite)
    sizes = ", ".join(f"{k} {v['frames']:,} frames" for k, v in info["subsets"].items())
    click.echo(f"features {out}: {info['features']['kind']} x {info['dim']}; {sizes}")


cli.add_command(
    train_command(
        "aics.tasks.asr.config:AsrConfig",
        "aics.tasks.asr.data:check_features",
        "aics.tasks.asr.train:train",
        help="Train a DFCNN with CTC (resumes from EXP/ckpt/last.pt; runs under torchrun for several "
        "processes).",
        data_help="Features directory (`aics asr features`).",
    )
)


@cli.command()
@click.option("--data", required=True, type=click.Path(), help="Prepared data or features directory.")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="ARPA file to write.")
@click.option("--subset", default="train", show_default=True, help="Transcripts to count.")
@click.option("--unit", type=click.Choice(("char", "word")), default="char", show_default=True,
              help="char: output units (characters, space; THCHS-30: syllables); word: words.")  # fmt: skip
@click.option("--order", default=5, show_default=True, type=click.IntRange(1, 10), help="n of the n-gram.")
def ngram(data, out, subset, unit, order) -> None:
    """Train an interpolated Kneser-Ney n-gram LM on a subset's transcripts (for beam search)."""
    from aics.tasks.asr.ngram import train_lm

    info = train_lm(data, out, subset=subset, unit=unit, order=order)
    click.echo(f"wrote {out}: {unit} {order}-gram from {info['sentences']} sentences")


@cli.command()
@click.option("--exp", required=True, type=click.Path(exists=True, file_okay=False), help="Experiment dir.")
@click.option("--data", required=True, type=click.Path(), help="Features directory.")
@click.option("--subset", default="test", show_default=True, help="Subset to decode.")
@click.option("--ckpt", default="best", show_default=True, help="best, last, epoch-NNN or a path.")
@click.option("--method", type=click.Choice(("greedy", "beam")), default="greedy", show_default=True,
              help="Greedy (best path) or prefix beam search.")  # fmt: skip
@click.option("--beam", default=10, show_default=True, type=click.IntRange(min=1), help="Beam width.")
@click.option("--lm", default="", type=click.Path(dir_okay=False), help="ARPA n-gram LM (beam only).")
@click.option("--lm-weight", default=0.5, show_default=True, type=click.FloatRange(min=0),
              help="LM weight in shallow fusion.")  # fmt: skip
@click.option("--bonus", default=0.0, show_default=True, type=float,
              help="Score per emitted unit (char LM) or word (word LM).")  # fmt: skip
@click.option(
    "--avg",
    "average",
    default=1,
    show_default=True,
    type=click.IntRange(min=1),
    help="Average the weights of this many epochs ending at --ckpt's (needs their epoch-NNN.pt).",
)
@click.option("--batch-size", default=32, show_default=True, type=click.IntRange(min=1), help="Batch size.")
@device_option
def decode(exp, data, subset, ckpt, method, beam, lm, lm_weight, bonus, average, batch_size, device) -> None:
    """Decode a subset and score it -> EXP/decode_<subset>_<settings>/ and EXP/RESULTS.md."""
    from aics.core.paths import existing_checkpoint
    from aics.tasks.asr.data import check_features

    check_features(data)
    if lm and not Path(lm).is_file():
        from aics.core.errors import UserError

        raise UserError(f"{lm}: LM not found; write one with `aics asr ngram`")
    if lm and method != "beam":
        from aics.core.errors import UserError

        raise UserError("--lm needs --method beam (greedy decoding cannot use an LM)")
    existing_checkpoint(exp, ckpt)
    from aics.tasks.asr.infer import decode as run
    from aics.tasks.asr.infer import report, summary

    s = run(exp, data, subset, ckpt, method, beam, lm, lm_weight, bonus, batch_size, device or "auto",
            average=average)  # fmt: skip
    report([exp], str(Path(exp) / "RESULTS.md"))
    click.echo(f"{exp} {subset} {method}: {summary(s)}")


@cli.command()
@click.argument("wavs", required=False, type=click.Path(exists=True))
@click.option("--manifest", type=click.Path(exists=True, dir_okay=False),
              help="Instead of WAVS and --text: a prepared subset (<prepared>/<subset>.jsonl).")  # fmt: skip
@click.option("--text", "refs", type=click.Path(exists=True),
              help="References: id|text, LJSpeech metadata.csv, Kaldi text or a LibriTTS dir.")  # fmt: skip
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Directory for the scores.")
@click.option("--engine", type=click.Choice(("pocketsphinx", "dfcnn")), default="pocketsphinx",
              show_default=True, help="pocketsphinx (offline English) or a trained DFCNN.")  # fmt: skip
@click.option("--ckpt", type=click.Path(exists=True), help="dfcnn: an experiment dir or checkpoint.")
@click.option("--lm-order", default=3, show_default=True, type=click.IntRange(1, 5),
              help="pocketsphinx: order of the word LM built from all the references.")  # fmt: skip
@click.option("--workers", default=2, show_default=True, type=click.IntRange(min=1), help="Processes.")
@click.option("--allow-missing-wavs", is_flag=True, help="Judge only the references that have a wav.")
@click.option("--allow-extra-wavs", is_flag=True, help="Ignore wavs without a reference.")
@device_option
@overwrite_option
def judge(wavs, manifest, refs, out, engine, ckpt, lm_order, workers, allow_missing_wavs, allow_extra_wavs,
          device, overwrite) -> None:  # fmt: skip
    """Transcribe WAVS (a dir, a wav or an `id path` list) and score them against --text: WER / CER.

    pocketsphinx decodes with a word LM built from the reference sentences of the whole set judged (said so
    in scores.json): the judge of synthesised speech, whose level on the corpus's own recordings is the
    reference that synthesis is held to.
    """
    from aics.core.errors import UserError
    from aics.core.stage import begin_stage, mark_done

    if manifest and (wavs or refs):
        raise click.UsageError("give either --manifest or WAVS with --text, not both")
    if not manifest and not (wavs and refs):
        raise click.UsageError("give WAVS and --text (or --manifest)")
    if engine == "dfcnn" and not ckpt:
        raise UserError("--engine dfcnn needs --ckpt (an `aics asr train` experiment or checkpoint)")
    source = manifest or wavs
    params = {"wavs": str(Path(source).resolve()), "text": str(Path(refs or source).resolve()),
              "engine": engine, "ckpt": str(Path(ckpt).resolve()) if ckpt else None,
              "lm_order": lm_order}  # fmt: skip
    from aics.tasks.asr import judge as judging

    if manifest:
        inputs = judging.judge_inputs(*judging.manifest_inputs(manifest), source=manifest)
    else:
        inputs = judging.judge_inputs(wavs, refs, None, allow_missing_wavs, allow_extra_wavs)
    fn = None
    if engine == "dfcnn":
        from aics.core.paths import resolve_checkpoint as resolve_ckpt

        resolve_ckpt(ckpt)
    if not begin_stage(out, overwrite, what="judge", params=params):
        click.echo(f"{out}: already judged (see {Path(out) / 'scores.json'})")
        return
    if engine == "dfcnn":
        from aics.tasks.asr.infer import transcriber

        fn = transcriber(ckpt, device or "auto")
    s = judging.run_judge(inputs, out, engine=engine, workers=workers, lm_order=lm_order, transcribe_fn=fn)
    mark_done(out, {"wer": s["wer"], "cer": s["cer"]}, params=params)
    click.echo(
        f"{out}: {engine} WER {100 * s['wer']:.2f}%, CER {100 * s['cer']:.2f}% on {s['n_utts']} utterances"
    )


cli.add_command(
    report_command(
        "aics.tasks.asr.infer:report",
        "Compare decoded experiments: CER (or syllable error rate), WER, real-time factor; curves.png.",
    )
)
cli.add_command(config_command("aics.tasks.asr.config:AsrConfig"))
