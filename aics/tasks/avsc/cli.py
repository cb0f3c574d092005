"""``aics avsc``: the audio-visual scene classification lab's commands (thin wrappers over the modules)."""

from __future__ import annotations

import click

from aics.core.options import (
    config_command,
    device_option,
    overwrite_option,
    report_command,
    train_command,
)


@click.group("avsc")
def cli() -> None:
    """Audio-visual scene classification (DCASE2021 task 1B): audio, video, early / intermediate / late
    fusion; log loss, accuracy, conflict analysis."""


@cli.command()
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Dataset directory to write.")
@click.option(
    "--train",
    "n_train",
    default=60,
    show_default=True,
    type=click.IntRange(min=1),
    help="Training clips per scene.",
)
@click.option(
    "--evaluate",
    "n_eval",
    default=20,
    show_default=True,
    type=click.IntRange(min=1),
    help="Evaluation clips per scene.",
)
@click.option(
    "--test",
    "n_test",
    default=20,
    show_default=True,
    type=click.IntRange(min=0),
    help="Unlabelled test clips per scene.",
)
@click.option("--audio-dim", default=128, show_default=True, type=click.IntRange(min=2), help="openl3: 512.")
@click.option("--video-dim", default=128, show_default=True, type=click.IntRange(min=2), help="openl3: 512.")
@click.option(
    "--steps", default=20, show_default=True, type=click.IntRange(min=1), help="Time steps per clip."
)
@click.option(
    "--corrupt",
    default=0.12,
    show_default=True,
    type=click.FloatRange(0, 1),
    help="Share of clips with one modality replaced by noise or another scene's.",
)
@click.option(
    "--format",
    "fmt",
    default="npy",
    show_default=True,
    type=click.Choice(["npy", "h5"]),
    help="Embeddings as <clip>.npy files or the course's HDF5 files.",
)
@click.option("--seed", default=0, show_default=True, type=click.IntRange(min=0), help="Generator seed.")
@overwrite_option
def synth(out, n_train, n_eval, n_test, audio_dim, video_dim, steps, corrupt, fmt, seed, overwrite) -> None:
    """Write an offline TAU Urban Audio-Visual Scenes 2021: embeddings with a designed modality structure."""
    from aics.tasks.avsc.synth import generate

    info = generate(
        out, (n_train, n_eval, n_test), (audio_dim, video_dim), steps, corrupt, fmt, seed, overwrite=overwrite
    )
    click.echo(f"wrote {out}: {', '.join(f'{s} {n}' for s, n in info['clips'].items())} clips")


@cli.command()
@click.option(
    "--src",
    required=True,
    type=click.Path(exists=True, file_okay=False),
    help="Dataset dir: meta.csv or evaluation_setup/, and the audio/ or video/ files they list.",
)
@click.option("--modality", required=True, type=click.Choice(["audio", "video"]), help="Which files to read.")
@click.option(
    "--extractor",
    required=True,
    help="logmel (audio), colorhist (video), or module:function taking (path, hop_seconds).",
)
@click.option(
    "--out", required=True, type=click.Path(file_okay=False), help="Folder for the <clip>.npy files."
)
@click.option(
    "--hop",
    default=0.1,
    show_default=True,
    type=click.FloatRange(min=0.001),
    help="Seconds between time steps.",
)
def embed(src, modality, extractor, out, hop) -> None:
    """Per-clip embeddings from the raw audio or video (the feature-extraction hook)."""
    from aics.tasks.avsc.embed import embed as run

    r = run(src, out, modality, extractor, hop)
    click.echo(f"{out}: {r['clips']} {modality} embeddings ({r['made']} made now)")


@cli.command()
@click.option("--src", required=True, type=click.Path(), help="Dataset dir (evaluation_setup/, embeddings).")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Prepared data directory.")
@click.option("--audio-emb", type=click.Path(), help="Audio embeddings: a folder of .npy or .hdf5 files.")
@click.option("--video-emb", type=click.Path(), help="Video embeddings: a folder of .npy or .hdf5 files.")
@click.option(
    "--steps",
    default=0,
    show_default=True,
    type=click.IntRange(min=0),
    help="Cut every clip to this many time steps (0: all clips must have the same number).",
)
@click.option(
    "--valid-frac",
    default=0.1,
    show_default=True,
    type=click.FloatRange(0, 0.9),
    help="Share of the training locations held out as the valid split.",
)
@click.option("--seed", default=0, show_default=True, type=click.IntRange(min=0), help="Valid split seed.")
@overwrite_option
def prepare(src, out, audio_emb, video_emb, steps, valid_frac, seed, overwrite) -> None:
    """Validate the fold lists and embeddings; the arrays, labels and normalisation of each split."""
    from aics.tasks.avsc.data import prepare as run

    info = run(src, out, audio_emb, video_emb, steps, valid_frac, seed, overwrite=overwrite)
    sizes = ", ".join(f"{s} {v['clips']}" for s, v in info["splits"].items())
    click.echo(
        f"prepared {out}: {sizes} clips; audio {info['audio']['steps']} x {info['audio']['dim']}, "
        f"video {info['video']['steps']} x {info['video']['dim']}"
    )


cli.add_command(
    train_command(
        "aics.tasks.avsc.config:AvscConfig",
        "aics.tasks.avsc.data:check_prepared",
        "aics.tasks.avsc.train:train",
        help="Train one system (model.system: audio, video, early, intermediate); resumes from "
        "EXP/ckpt/last.pt.",
        data_help="Prepared data directory.",
    )
)


@cli.command()
@click.option("--exp", required=True, type=click.Path(exists=True, file_okay=False), help="Experiment dir.")
@click.option("--data", required=True, type=click.Path(), help="Prepared data directory.")
@click.option(
    "--split",
    default="evaluate",
    show_default=True,
    type=click.Choice(["train", "valid", "evaluate", "test"]),
)
@click.option("--ckpt", default="best", show_default=True, help="best, last, epoch-NNN or a path.")
@device_option
@overwrite_option
def predict(exp, data, split, ckpt, device, overwrite) -> None:
    """Scene posteriors of a split -> EXP/predict_<split>/predictions.csv (the course's format)."""
    from aics.tasks.avsc.infer import predict as run

    r = run(exp, data, split, ckpt, device or "auto", overwrite=overwrite)
    click.echo(f"{exp}/predict_{split}: {r['clips']} clips")


@cli.command()
@click.option(
    "--audio",
    "audio_exp",
    required=True,
    type=click.Path(exists=True, file_okay=False),
    help="The audio system's experiment (predicted on every split fused).",
)
@click.option(
    "--video",
    "video_exp",
    required=True,
    type=click.Path(exists=True, file_okay=False),
    help="The video system's experiment.",
)
@click.option("--data", required=True, type=click.Path(), help="Prepared data directory.")
@click.option(
    "--out", required=True, type=click.Path(file_okay=False), help="Where late_mean/ and late_weighted/ go."
)
@click.option(
    "--splits", default="valid,evaluate", show_default=True, help="Splits to fuse (valid fits the weights)."
)
@overwrite_option
def fuse(audio_exp, video_exp, data, out, splits, overwrite) -> None:
    """Late fusion: the mean of the two posteriors, and per-scene weights fitted on the valid split."""
    from aics.tasks.avsc.infer import fuse as run

    r = run(audio_exp, video_exp, data, out, tuple(s for s in splits.split(",") if s), overwrite=overwrite)
    shown = ", ".join(f"{k} {v:.2f}" for k, v in r["weights"].items())
    click.echo(f"late fusion -> {', '.join(r['systems'].values())}; audio weight per scene: {shown}")


@cli.command()
@click.option("--pred", required=True, type=click.Path(), help="A predict dir (`aics avsc predict` or fuse).")
@overwrite_option
def score(pred, overwrite) -> None:
    """Log loss (the challenge's), accuracy, per scene; the confusion matrix as a picture."""
    from aics.tasks.avsc.score import score as run

    r = run(pred, overwrite=overwrite)
    click.echo(
        f"{r['system']} on {r['split']} ({r['clips']} clips): log loss {r['log_loss']:.4f}, "
        f"accuracy {100 * r['accuracy']:.2f}%"
    )


cli.add_command(
    report_command(
        "aics.tasks.avsc.score:report",
        "Compare the systems (table, per scene) and analyse where audio and video conflict.",
    )
)
cli.add_command(config_command("aics.tasks.avsc.config:AvscConfig"))
