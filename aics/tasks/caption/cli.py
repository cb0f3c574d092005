"""``aics caption``: the image captioning lab's commands (thin wrappers over the task's modules)."""

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


@click.group("caption")
def cli() -> None:
    """Image captioning (Show, Attend and Tell on Flickr8k): CNN + attention LSTM, scheduled sampling,
    BLEU / METEOR / ROUGE-L / CIDEr-D / SPICE."""


@cli.command()
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Dataset directory to write.")
@click.option("--train", "n_train", default=3000, show_default=True, type=click.IntRange(min=1),
              help="Training images (five captions each).")  # fmt: skip
@click.option(
    "--dev", "n_dev", default=300, show_default=True, type=click.IntRange(min=1), help="Dev images."
)
@click.option(
    "--test", "n_test", default=300, show_default=True, type=click.IntRange(min=1), help="Test images."
)
@click.option("--width", default=192, show_default=True, type=click.IntRange(min=32), help="Image width.")
@click.option("--height", default=144, show_default=True, type=click.IntRange(min=32), help="Image height.")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(min=0), help="Generator seed.")
@overwrite_option
def synth(out, n_train, n_dev, n_test, width, height, seed, overwrite) -> None:
    """Write an offline Flickr8k: shapes on textured backgrounds, five annotators' captions per image."""
    from aics.tasks.caption.synth import generate

    info = generate(out, n_train=n_train, n_dev=n_dev, n_test=n_test, width=width, height=height, seed=seed,
                    overwrite=overwrite)  # fmt: skip
    sizes = ", ".join(f"{s} {n}" for s, n in info["images"].items())
    click.echo(f"wrote {out}: {sizes} images, 5 captions each")


@cli.command()
@click.option("--src", required=True, type=click.Path(), help="Flickr8k folder (images, captions, splits).")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Prepared data directory.")
@click.option("--min-count", default=5, show_default=True, type=click.IntRange(min=1),
              help="Words seen fewer times in the training captions become <unk>.")  # fmt: skip
@click.option("--split-source", default="auto", show_default=True,
              type=click.Choice(["auto", "official", "karpathy"]),
              help="Splits: Flickr_8k.*Images.txt (official), dataset_flickr8k.json (karpathy).")  # fmt: skip
@overwrite_option
def prepare(src, out, min_count, split_source, overwrite) -> None:
    """Validate the captions, splits and images; the vocabulary; one jsonl per split."""
    from aics.tasks.caption.data import prepare as run

    info = run(src, out, min_count=min_count, split_source=split_source, overwrite=overwrite)
    sizes = ", ".join(f"{s} {v['images']}" for s, v in info["splits"].items())
    click.echo(f"prepared {out}: {sizes} images; {info['vocab']} words ({info['split_source']} split)")


@cli.command()
@click.option("--data", required=True, type=click.Path(), help="Prepared data directory.")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Image cache directory.")
@conf_option
@set_option
@overwrite_option
def features(data, out, conf, overrides, overwrite) -> None:
    """Resize every image once into a uint8 cache (features.image_size); the training images' mean and std."""
    from aics.core.config import load_config
    from aics.tasks.caption.config import CaptionConfig
    from aics.tasks.caption.data import check_prepared

    cfg = load_config(CaptionConfig, conf, overrides)
    check_prepared(data)
    from aics.tasks.caption.data import compute_features

    info = compute_features(data, out, cfg.features, overwrite=overwrite)
    size = info["features"]["image_size"]
    click.echo(f"images {out}: {sum(v['images'] for v in info['splits'].values())} at {size}x{size}")


cli.add_command(
    train_command(
        "aics.tasks.caption.config:CaptionConfig",
        "aics.tasks.caption.data:check_features",
        "aics.tasks.caption.train:train",
        help="Train Show, Attend and Tell (resumes from EXP/ckpt/last.pt; runs under torchrun too).",
        data_help="Image cache (`aics caption features`).",
    )
)


@cli.command()
@click.option("--exp", required=True, type=click.Path(exists=True, file_okay=False), help="Experiment dir.")
@click.option("--data", required=True, type=click.Path(), help="Image cache.")
@click.option("--split", default="test", show_default=True, type=click.Choice(["train", "dev", "test"]))
@click.option("--ckpt", default="best", show_default=True, help="best, last, epoch-NNN or a path.")
@click.option(
    "--beam", type=click.IntRange(min=1), help="Beams, 1: greedy (default: the config's decode.beam_size)."
)
@click.option(
    "--max-len", type=click.IntRange(min=1), help="Longest caption in words (default: decode.max_len)."
)
@click.option(
    "--length-norm", type=click.FloatRange(min=0), help="Beam ranking log p / n^x (default: config)."
)
@click.option("--attention-images", default=4, show_default=True, type=click.IntRange(min=0),
              help="Images whose per-word attention maps are drawn.")  # fmt: skip
@click.option(
    "--out", type=click.Path(file_okay=False), help="Output dir (default EXP/decode_<split>_<how>)."
)
@device_option
@overwrite_option
def decode(
    exp, data, split, ckpt, beam, max_len, length_norm, attention_images, out, device, overwrite
) -> None:
    """Caption a split (greedy or beam search) -> captions.jsonl, attention maps, images/s."""
    from aics.tasks.caption.infer import decode as run

    r = run(exp, data, split, ckpt, beam, max_len, length_norm, attention_images, device=device or "auto",
            out=out, overwrite=overwrite)  # fmt: skip
    click.echo(f"{r['images']} {split} images captioned at {r['images_per_s']:.1f} images/s")


@cli.command()
@click.option("--decode", "decode_dir", required=True, type=click.Path(), help="A decode dir.")
@click.option("--data", type=click.Path(), help="Image cache with the references (default: the decode's).")
@click.option("--corenlp", type=click.Path(file_okay=False),
              help="Stanford CoreNLP 3.6.0 jars' folder for SPICE (default: $AICS_CORENLP_DIR).")  # fmt: skip
@click.option("--examples", default=3, show_default=True, type=click.IntRange(min=1),
              help="Best and worst images shown per metric.")  # fmt: skip
@overwrite_option
def score(decode_dir, data, corenlp, examples, overwrite) -> None:
    """BLEU-1..4, METEOR, ROUGE-L, CIDEr-D, SPICE, SPIDEr; the best and worst captions under each."""
    from aics.tasks.caption.score import example_lines, headline
    from aics.tasks.caption.score import score as run

    r = run(decode_dir, data, corenlp, examples, overwrite=overwrite)
    click.echo(f"{r['images']} images: {headline(r)}")
    reasons: dict[str, list[str]] = {}
    for k, why in r["unavailable"].items():
        reasons.setdefault(why, []).append(k)
    for why, names in reasons.items():
        click.echo(f"  {', '.join(names)}: {why}")
    for line in example_lines(r):
        click.echo(f"  {line}")
    click.echo(f"  best and worst captions with their references: {r['decode']}/score/examples.md")


cli.add_command(
    report_command(
        "aics.tasks.caption.score:report",
        "Compare experiments (teacher forcing vs scheduled sampling) and decodings (greedy vs beam).",
    )
)
cli.add_command(config_command("aics.tasks.caption.config:CaptionConfig"))
