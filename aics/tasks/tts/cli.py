"""``aics tts``: speech from text (Tacotron2 + WaveGlow or Griffin-Lim), and checkpoint inspection.

``aics tts "hello" -o out.wav`` is ``aics tts synth "hello" -o out.wav``: words that are not a command name go
to ``synth``.
"""

from __future__ import annotations

import os
from pathlib import Path

import click

from aics.core.errors import UserError
from aics.core.options import (
    conf_option,
    config_command,
    device_option,
    overwrite_option,
    report_command,
    set_option,
    train_command,
)


class DefaultToSynth(click.Group):
    """A group whose arguments go to ``synth`` unless the first one names a command (or asks for help)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help"):
            args = ["synth", *args]
        return super().parse_args(ctx, args)


@click.group("tts", cls=DefaultToSynth)
def cli() -> None:
    """Speech synthesis: Tacotron2 mel spectrograms, WaveGlow or Griffin-Lim waveforms (aics's own voice,
    your trainings, NVIDIA checkpoints).

    \b
    aics tts "Hello world." -o hello.wav      # the default voice that ships with aics
    aics tts "Hello world." -o hello.wav --tacotron2 T2.pt --waveglow WG.pt
    aics tts --input lines.txt -o outdir/ --tacotron2 T2.pt --vocoder griffinlim
    aics tts info nvidia_tacotron2pyt_fp32_20190427

    Training (recipes/tts_tacotron2/run.sh runs it all):

    \b
    aics tts prepare --src data/tts/corpus --out data/tts/prepared
    aics tts features --data data/tts/prepared --out data/tts/feats
    aics tts train --data data/tts/feats --exp exp/tts/t2 --conf recipes/tts_tacotron2/conf/cpu.yaml
    aics tts train-waveglow --data data/tts/feats --exp exp/tts/wg --conf .../conf/waveglow_cpu.yaml
    aics tts decode --tacotron2 exp/tts/t2/ckpt/best.pt --data data/tts/feats --out exp/tts/t2/decode_test
    aics tts score --decode exp/tts/t2/decode_test
    aics tts export --ckpt exp/tts/t2/ckpt/best.pt --out my_voice.safetensors
    """


def _check_output(out: Path, single: bool) -> None:
    """Fail before any synthesis when the output cannot be written."""
    target = out.parent if single else out
    while not target.exists() and target != target.parent:
        target = target.parent
    if not target.is_dir() or not os.access(target, os.W_OK):
        raise UserError(f"{out}: cannot write there ({target} is not a writable directory); pick another -o")
    if single and out.is_dir():
        raise UserError(
            f"{out}: is a directory; -o takes a .wav file for one text (a directory with --input)"
        )
    if single and out.suffix.lower() != ".wav":
        raise UserError(f"{out}: -o must end in .wav for one text")


@cli.command()
@click.argument("text", nargs=-1)
@click.option(
    "-o",
    "--out",
    required=True,
    type=click.Path(),
    help="A .wav for one text; a directory (0001.wav ..., metadata.csv) with --input.",
)
@click.option(
    "--input",
    "input_file",
    type=click.Path(exists=True, dir_okay=False),
    help="A text file, one utterance per line (blank lines skipped).",
)
@click.option(
    "--tacotron2",
    type=click.Path(exists=True, dir_okay=False),
    envvar="AICS_TACOTRON2",
    help="Tacotron2 checkpoint (NVIDIA's, `aics tts train`'s, or a voice .safetensors); default: the voice "
    "that ships with aics [env AICS_TACOTRON2].",
)
@click.option(
    "--waveglow",
    type=click.Path(exists=True, dir_okay=False),
    envvar="AICS_WAVEGLOW",
    help="WaveGlow checkpoint (NVIDIA's dict format) [env AICS_WAVEGLOW].",
)
@click.option(
    "--vocoder",
    type=click.Choice(("waveglow", "griffinlim")),
    help="Default: waveglow when --waveglow is given, else griffinlim.",
)
@click.option(
    "--sigma",
    default=0.6,
    show_default=True,
    type=click.FloatRange(min=0),
    help="WaveGlow: standard deviation of the noise it starts from.",
)
@click.option(
    "--denoise",
    default=0.01,
    show_default=True,
    type=click.FloatRange(min=0),
    help="WaveGlow: denoiser strength (0: off).",
)
@click.option(
    "--gl-iters", default=60, show_default=True, type=click.IntRange(min=1), help="Griffin-Lim iterations."
)
@click.option(
    "--seed", default=0, show_default=True, type=int, help="Seeds the prenet dropout and the noise."
)
@click.option(
    "--batch-size",
    default=8,
    show_default=True,
    type=click.IntRange(min=1),
    help="Texts decoded together (--input).",
)
@click.option(
    "--max-decoder-steps",
    type=click.IntRange(min=1),
    help="Stop a text after this many decoder steps of r frames each (default: the checkpoint's; NVIDIA's: "
    "1000 steps of one frame, 11.6 s).",
)
@click.option(
    "--cmudict/--no-cmudict",
    default=None,
    help="Say the words of the CMU dictionary by their ARPAbet phones (default: when the model was trained "
    "on phones, as its file records).",
)
@click.option("--plot", is_flag=True, help="Also write a PNG of each mel spectrogram and alignment.")
@click.option("--device", default=None, help="auto (cuda > mps > cpu), cpu, cuda, cuda:N or mps.")
def synth(
    text,
    out,
    input_file,
    tacotron2,
    waveglow,
    vocoder,
    sigma,
    denoise,
    gl_iters,
    seed,
    batch_size,
    max_decoder_steps,
    cmudict,
    plot,
    device,
) -> None:
    """Say TEXT (or each line of --input); prints the real-time factor. ARPAbet goes in braces:
    "{HH AH0 L OW1} world"."""
    from aics.tasks.tts.infer import Synthesizer, write_outputs

    if input_file and text:
        raise UserError("give TEXT or --input, not both")
    if input_file:
        lines = Path(input_file).read_text(encoding="utf-8").splitlines()
        texts = [line.strip() for line in lines if line.strip()]
        sources = [f"{input_file}:{n}" for n, line in enumerate(lines, 1) if line.strip()]
        if not texts:
            raise UserError(f"{input_file}: has no text; one utterance per line")
    else:
        texts, sources = [" ".join(text)], ["TEXT"]
        if not texts[0].strip():
            raise UserError('empty text: aics tts "Words to say." -o out.wav (or --input lines.txt)')
    out = Path(out)
    single = not input_file
    _check_output(out, single)
    synth_ = Synthesizer(tacotron2, waveglow, vocoder, device or "auto", cmudict=cmudict)
    utts, timing = synth_.synthesize(
        texts,
        batch_size=batch_size,
        seed=seed,
        sigma=sigma,
        denoise=denoise,
        max_decoder_steps=max_decoder_steps,
        sources=sources,
        gl_iters=gl_iters,
    )
    paths = write_outputs(utts, out, single, synth_.sample_rate, plot=plot)
    audio_s = timing.samples / synth_.sample_rate
    click.echo(
        f"wrote {paths[0] if single else f'{len(paths)} wavs to {out}'}: {audio_s:.2f} s of audio in "
        f"{timing.seconds:.2f} s (Tacotron2 {timing.tacotron2:.2f} s, {synth_.vocoder} "
        f"{timing.vocoder:.2f} s), real-time factor {timing.rtf(synth_.sample_rate):.3f}"
    )


@cli.command()
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
def info(path) -> None:
    """Print a Tacotron2 or WaveGlow checkpoint's config, parameter count and key report."""
    from dataclasses import asdict

    from aics.tasks.tts.importer import read_checkpoint

    imp = read_checkpoint(path)
    n = sum(
        v.numel()
        for k, v in imp.state_dict.items()
        if not k.endswith(("running_mean", "running_var", "num_batches_tracked"))
    )
    click.echo(f"{path}: {imp.kind}, {imp.layout} layout, {n:,} parameters")
    for k, v in imp.extra.items():
        click.echo(f"  {k}: {v}")
    click.echo("config:")
    for k, v in asdict(imp.config).items():
        click.echo(f"  {k}: {v}")
    for line in imp.report.lines():
        click.echo(line)
    if not imp.report.ok:
        raise UserError(f"{path}: its keys do not fit {imp.kind} ({imp.report.summary()})")


@cli.command()
@click.option("--src", required=True, type=click.Path(), help="LJSpeech-layout corpus (metadata.csv, wavs/).")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Directory for the filelists.")
@click.option("--valid-frac", default=0.03, show_default=True, type=click.FloatRange(0, 0.5),
              help="Fraction of utterances for the valid filelist.")  # fmt: skip
@click.option("--test-frac", default=0.05, show_default=True, type=click.FloatRange(0, 0.5),
              help="Fraction of utterances for the test filelist.")  # fmt: skip
@click.option("--seed", default=0, show_default=True, type=click.IntRange(min=0), help="Split seed.")
@click.option("--workers", default=2, show_default=True, type=click.IntRange(min=1), help="Threads.")
@overwrite_option
def prepare(src, out, valid_frac, test_frac, seed, workers, overwrite) -> None:
    """Check a corpus and write NVIDIA's `wav|text` filelists: train, valid, test."""
    from aics.tasks.tts.data import prepare as run

    stats = run(src, out, valid_frac=valid_frac, test_frac=test_frac, seed=seed, workers=workers,
                overwrite=overwrite)  # fmt: skip
    sizes = ", ".join(f"{k} {v['utterances']} ({v['hours']:.2f} h)" for k, v in stats["subsets"].items())
    click.echo(f"prepared {out}: {sizes}")


@cli.command()
@click.option("--data", required=True, type=click.Path(),
              help="Folder of {train,valid,test}_filelist.txt (`aics tts prepare`, or yours).")  # fmt: skip
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Features directory.")
@conf_option
@set_option
@click.option("--workers", default=2, show_default=True, type=click.IntRange(min=1), help="Processes.")
@overwrite_option
def features(data, out, conf, overrides, workers, overwrite) -> None:
    """Compute the mel spectrogram of every filelist row once (NVIDIA's features, memory-mapped)."""
    from aics.core.config import load_config
    from aics.tasks.tts.config import TtsConfig
    from aics.tasks.tts.data import compute_features

    cfg = load_config(TtsConfig, conf, overrides)
    info = compute_features(data, out, cfg.features, workers=workers, overwrite=overwrite)
    sizes = ", ".join(f"{k} {v['utterances']} ({v['frames']:,} frames)" for k, v in info["subsets"].items())
    click.echo(f"features {out}: {sizes}")


cli.add_command(
    train_command(
        "aics.tasks.tts.config:TtsConfig",
        "aics.tasks.tts.data:check_features",
        "aics.tasks.tts.train:train",
        help="Train Tacotron2 (resumes from EXP/ckpt/last.pt; runs under torchrun for several processes).",
        data_help="Features directory (`aics tts features`).",
    )
)


@cli.command()
@click.option("--tacotron2", required=True, type=click.Path(exists=True, dir_okay=False),
              help="Tacotron2 checkpoint (aics training, NVIDIA or a voice .safetensors).")  # fmt: skip
@click.option("--data", required=True, type=click.Path(), help="Features directory (`aics tts features`).")
@click.option("--subset", default="test", show_default=True, help="Subset whose texts are said.")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Decode directory.")
@click.option("--waveglow", type=click.Path(exists=True, dir_okay=False), help="WaveGlow checkpoint.")
@click.option("--vocoder", type=click.Choice(("waveglow", "griffinlim")),
              help="Default: waveglow when --waveglow is given, else griffinlim.")  # fmt: skip
@click.option("--batch-size", default=8, show_default=True, type=click.IntRange(min=1), help="Texts at once.")
@click.option("--seed", default=0, show_default=True, type=int, help="Prenet dropout and noise seed.")
@click.option("--gl-iters", default=60, show_default=True, type=click.IntRange(min=1),
              help="Griffin-Lim iterations.")  # fmt: skip
@click.option("--max-decoder-steps", type=click.IntRange(min=1), help="Default: the checkpoint's.")
@click.option("--plots", default=4, show_default=True, type=click.IntRange(min=0),
              help="PNGs of the first N utterances' mels and alignments.")  # fmt: skip
@device_option
@overwrite_option
def decode(tacotron2, data, subset, out, waveglow, vocoder, batch_size, seed, gl_iters, max_decoder_steps,
           plots, device, overwrite) -> None:  # fmt: skip
    """Say every text of a subset (stage 4): wavs, metadata.csv, per-utterance attention health, RTF."""
    from aics.tasks.tts.infer import decode_subset

    info = decode_subset(tacotron2, data, out, subset=subset, waveglow=waveglow, vocoder=vocoder,
                         device=device, batch_size=batch_size, seed=seed, gl_iters=gl_iters,
                         max_decoder_steps=max_decoder_steps, plots=plots, overwrite=overwrite)  # fmt: skip
    click.echo(
        f"decoded {out}: {info['utterances']} utterances, {info['audio_seconds']:.1f} s of audio, RTF "
        f"{info['rtf']:.3f} ({info['vocoder']}), {info['hit_step_limit']} hit the step limit"
    )


@cli.command()
@click.option("--decode", "decode_dir", required=True, type=click.Path(file_okay=False),
              help="Decode directory (`aics tts decode`).")  # fmt: skip
@click.option("--judge/--no-judge", default=True, show_default=True,
              help="Run the pocketsphinx judge on the synthesised and the real speech.")  # fmt: skip
@click.option("--speed-utts", default=5, show_default=True, type=click.IntRange(min=0),
              help="Test sentences said one by one on the CPU for the RTF (0: skip).")  # fmt: skip
@click.option("--workers", default=2, show_default=True, type=click.IntRange(min=1), help="Processes.")
@overwrite_option
def score(decode_dir, judge, speed_utts, workers, overwrite) -> None:
    """Score a decode (stage 5): judge WER/CER against the recordings', MCD-DTW, attention health, RTF."""
    from aics.tasks.tts.score import results_table, score_decode

    s = score_decode(decode_dir, judge=judge, workers=workers, speed_utts=speed_utts, overwrite=overwrite)
    click.echo(results_table([s]), nl=False)


@cli.command()
@click.option("--ckpt", required=True, type=click.Path(exists=True, dir_okay=False),
              help="Tacotron2 checkpoint (`aics tts train`'s best.pt, or NVIDIA's).")  # fmt: skip
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Voice file (.safetensors).")
@click.option("--scores", type=click.Path(exists=True, dir_okay=False),
              help="A scores.json (`aics tts score`) to record in the file's metadata.")  # fmt: skip
@click.option(
    "--note", default="", help="Free text for the metadata: the command, data and seed that made it."
)
def export(ckpt, out, scores, note) -> None:
    """Write a Tacotron2 as a voice: .safetensors with its config (and a .json copy)."""
    from aics.core.io import read_json
    from aics.tasks.tts.voice import export_voice

    info = {"source": str(ckpt), "note": note, "scores": read_json(scores) if scores else None}
    w = export_voice(ckpt, out, info)
    click.echo(f"wrote {w['path']}: {w['parameters']:,} parameters, {w['bytes'] / 1e6:.1f} MB")


cli.add_command(
    train_command(
        "aics.tasks.tts.waveglow_train:WaveGlowTrainConfig",
        "aics.tasks.tts.data:check_features",
        "aics.tasks.tts.waveglow_train:train",
        help="Train a WaveGlow vocoder on the features dir's wavs (resumes from EXP/ckpt/last.pt; torchrun "
        "too).",
        data_help="Features directory (`aics tts features`).",
        name="train-waveglow",
    )
)


cli.add_command(config_command("aics.tasks.tts.config:TtsConfig"))
cli.add_command(config_command("aics.tasks.tts.waveglow_train:WaveGlowTrainConfig"), "waveglow-config")
cli.add_command(
    report_command(
        "aics.tasks.tts.score:report", help="One table of every scored decode of the experiments (EXP...)."
    )
)
