"""``aics sed``: the sound event detection lab's commands (thin wrappers over the task's modules)."""

from __future__ import annotations

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


@click.group("sed")
def cli() -> None:
    """Weakly labelled sound event detection (DCASE2018 task 4): CRNN, event-based F1."""


@cli.command()
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Dataset directory to write.")
@click.option("--weak", "n_weak", default=400, show_default=True, type=click.IntRange(min=1),
              help="Weakly labelled training clips.")  # fmt: skip
@click.option("--unlabel", "n_unlabel", default=100, show_default=True, type=click.IntRange(min=0),
              help="Unlabelled in-domain clips.")  # fmt: skip
@click.option("--test", "n_test", default=100, show_default=True, type=click.IntRange(min=1),
              help="Strongly labelled test clips (the valid split while training).")  # fmt: skip
@click.option("--eval", "n_eval", default=100, show_default=True, type=click.IntRange(min=1),
              help="Strongly labelled eval clips (the final score).")  # fmt: skip
@click.option("--sr", "sample_rate", default=44100, show_default=True, type=click.IntRange(8000, 96000),
              help="Sample rate of the clips (the real set's is 44.1 kHz).")  # fmt: skip
@click.option("--seed", default=0, show_default=True, type=click.IntRange(min=0), help="Generator seed.")
@overwrite_option
def synth(out, n_weak, n_unlabel, n_test, n_eval, sample_rate, seed, overwrite) -> None:
    """Write an offline DCASE2018 task 4 set: 10 s clips mixing the ten classes' events over noise.

    Event sources: Debian's sound themes and ALSA recordings where installed, espeak-ng speech, and
    generated sounds; synth.json records which were used.
    """
    from aics.tasks.sed.synth import generate

    info = generate(out, n_weak=n_weak, n_unlabel=n_unlabel, n_test=n_test, n_eval=n_eval,
                    sample_rate=sample_rate, seed=seed, overwrite=overwrite)  # fmt: skip
    sizes = ", ".join(f"{s} {v['clips']}" for s, v in info["splits"].items())
    click.echo(f"wrote {out}: {sizes} clips")


@cli.command()
@click.option("--src", required=True, type=click.Path(), help="Dataset dir (metadata/ and audio/).")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Prepared data directory.")
@click.option("--allow-missing", is_flag=True, help="Leave out listed clips whose wav is missing.")
@overwrite_option
def prepare(src, out, allow_missing, overwrite) -> None:
    """Validate the metadata and audio of every split; write manifests and the clip lists with hashes."""
    from aics.tasks.sed.data import prepare as run

    info = run(src, out, allow_missing=allow_missing, overwrite=overwrite)
    sizes = ", ".join(f"{k} {v['clips']}" for k, v in info["splits"].items())
    click.echo(
        f"prepared {out}: {sizes} clips"
        + (f"; {info['missing']} missing left out" if info["missing"] else "")
    )


@cli.command()
@click.option("--data", required=True, type=click.Path(), help="Prepared data directory.")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Features directory.")
@conf_option
@set_option
@click.option("--workers", default=2, show_default=True, type=click.IntRange(min=1), help="Processes.")
@click.option(
    "--unlabelled", is_flag=True, help="Also the unlabelled in-domain clips (no trainer reads them)."
)
@overwrite_option
def features(data, out, conf, overrides, workers, unlabelled, overwrite) -> None:
    """Log-mel of the labelled clips (float16), and the weak split's per-band mean and deviation."""
    from aics.core.config import load_config
    from aics.tasks.sed.config import SedConfig
    from aics.tasks.sed.data import check_prepared

    cfg = load_config(SedConfig, conf, overrides)
    check_prepared(data)
    from aics.tasks.sed.data import compute_features

    info = compute_features(
        data, out, cfg.features, workers=workers, overwrite=overwrite, unlabelled=unlabelled
    )
    click.echo(f"features {out}: {info['frames']} frames x {info['dim']} mel bands per clip")


cli.add_command(
    train_command(
        "aics.tasks.sed.config:SedConfig",
        "aics.tasks.sed.data:check_features",
        "aics.tasks.sed.train:train",
        help="Train a CRNN on the weak clip tags (resumes from EXP/ckpt/last.pt; runs under torchrun too).",
        data_help="Features directory (`aics sed features`).",
    )
)


@cli.command()
@click.option("--exp", required=True, type=click.Path(exists=True, file_okay=False), help="Experiment dir.")
@click.option("--data", required=True, type=click.Path(), help="Features directory.")
@click.option("--split", default="eval", show_default=True, help="Split to predict.")
@click.option("--ckpt", default="best", show_default=True, help="best, last, epoch-NNN or a path.")
@set_option
@device_option
@overwrite_option
def predict(exp, data, split, ckpt, overrides, device, overwrite) -> None:
    """Events of every clip of a split -> EXP/predict_<split>_<ckpt>/events.tsv (post.* via --set)."""
    from aics.tasks.sed.infer import predict as run

    info = run(exp, data, split, ckpt, device or "auto", overrides, overwrite=overwrite)
    click.echo(f"{info['out']}: {info.get('events', '?')} events in {info.get('clips', '?')} clips")


@cli.command()
@click.option("--pred", type=click.Path(), help="A predict dir (`aics sed predict`).")
@click.option("--data", type=click.Path(), help="With --pred: the features dir (references, log-mel).")
@click.option("--est", type=click.Path(dir_okay=False), help="Instead: a DCASE event list to score...")
@click.option("--ref", type=click.Path(dir_okay=False), help="...against this strong metadata file.")
@click.option("--out", type=click.Path(file_okay=False), help="With --est: directory for the scores.")
@click.option("--plots", default=3, show_default=True, type=click.IntRange(min=0), help="Clips to draw.")
@overwrite_option
def score(pred, data, est, ref, out, plots, overwrite) -> None:
    """Event-based (DCASE2018), segment-based and tagging scores, per class; pictures of a few clips."""
    if pred and data and not (est or ref):
        from aics.tasks.sed.score import score_prediction

        s = score_prediction(pred, data, plots=plots, overwrite=overwrite)
    elif est and ref and not (pred or data):
        from aics.tasks.sed.score import score_files

        s = score_files(est, ref, out, overwrite=overwrite)
    else:
        raise click.UsageError("give --pred with --data, or --est with --ref")
    h = s["headline"]
    click.echo(
        f"{s['clips']} clips: event F1 {100 * h['event_f1']:.2f}% (ER {h['event_er']:.3f}), segment F1 "
        f"{100 * h['segment_f1']:.2f}% (ER {h['segment_er']:.3f}), tagging F1 {100 * h['tag_f1']:.2f}%"
    )


cli.add_command(
    report_command(
        "aics.tasks.sed.score:report",
        "Compare experiments (pooling heads, augmentation, depth): event / segment / tagging scores; curves.",
    )
)
cli.add_command(config_command("aics.tasks.sed.config:SedConfig"))
