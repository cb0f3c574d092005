"""``aics vae``: commands of the MNIST VAE lab (thin wrappers; the work is in the task's modules)."""

from __future__ import annotations

import click

from aics.core.options import (
    conf_option,
    config_command,
    device_option,
    overwrite_option,
    report_command,
    set_option,
    with_device,
)


@click.group("vae")
def cli() -> None:
    """VAE on MNIST: synth/prepare data, train, infer (latent maps), score, report."""


@cli.command()
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Directory for the IDX files.")
@click.option("--n-train", default=12000, show_default=True, type=click.IntRange(min=10),
              help="Training images (MNIST has 60000).")  # fmt: skip
@click.option("--n-test", default=2000, show_default=True, type=click.IntRange(min=10),
              help="Test images (MNIST has 10000).")  # fmt: skip
@click.option(
    "--seed", default=0, show_default=True, type=click.IntRange(min=0), help="Seed of the generator."
)
@click.option("--gz", is_flag=True, help="Write gzipped files like the MNIST download.")
def synth(out: str, n_train: int, n_test: int, seed: int, gz: bool) -> None:
    """Write an offline MNIST-format dataset of synthetic handwritten-looking digits."""
    from aics.tasks.vae.synth import generate

    info = generate(out, n_train=n_train, n_test=n_test, seed=seed, gz=gz)
    counts = {s: v["images"] for s, v in info["splits"].items()}
    click.echo(f"wrote {counts['train']} train and {counts['test']} test images to {out}")


@cli.command()
@click.option("--src", required=True, type=click.Path(), help="MNIST directory (IDX files, .gz or not).")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Prepared data directory.")
@click.option("--valid-size", default=2000, show_default=True, type=click.IntRange(min=1),
              help="Train images held out for validation.")  # fmt: skip
@click.option("--seed", default=0, show_default=True, type=click.IntRange(min=0), help="Seed of the split.")
@overwrite_option
def prepare(src: str, out: str, valid_size: int, seed: int, overwrite: bool) -> None:
    """Validate MNIST IDX files and write the train/valid/test splits."""
    from aics.tasks.vae.data import prepare as run

    stats = run(src, out, valid_size=valid_size, seed=seed, overwrite=overwrite)
    counts = ", ".join(f"{s} {v['images']}" for s, v in stats["splits"].items())
    click.echo(f"prepared {out}: {counts}")


@cli.command()
@click.option("--data", required=True, type=click.Path(), help="Prepared data directory.")
@click.option("--exp", required=True, type=click.Path(file_okay=False), help="Experiment directory.")
@conf_option
@set_option
@device_option
@overwrite_option
def train(data: str, exp: str, conf: tuple, overrides: tuple, device: str | None, overwrite: bool) -> None:
    """Train a VAE (resumes from EXP/ckpt/last.pt if a run was interrupted)."""
    from aics.core.config import load_config
    from aics.tasks.vae.config import VAEConfig
    from aics.tasks.vae.data import check_prepared

    cfg = load_config(VAEConfig, conf, with_device(overrides, device))
    check_prepared(data)  # before torch is imported: a wrong path fails at once
    from aics.tasks.vae.train import train as run

    run(cfg, data, exp, overwrite=overwrite)


@cli.command()
@click.option("--exp", required=True, type=click.Path(exists=True, file_okay=False), help="Experiment dir.")
@click.option("--data", required=True, type=click.Path(), help="Prepared data directory.")
@click.option("--ckpt", default="best", show_default=True, help="best, last, epoch-NNN or a path.")
@click.option("--split", "splits", multiple=True, default=("valid",), show_default=True,
              type=click.Choice(["train", "valid", "test"]), help="Repeatable.")  # fmt: skip
@set_option
@device_option
@overwrite_option
def infer(
    exp: str, data: str, ckpt: str, splits: tuple, overrides: tuple, device: str | None, overwrite: bool
):
    """Draw the latent maps, latent scatter, reconstructions and prior samples."""
    from aics.core.paths import existing_checkpoint
    from aics.tasks.vae.data import check_prepared

    check_prepared(data)
    existing_checkpoint(exp, ckpt)
    from aics.tasks.vae.infer import infer as run

    out = run(exp, data, ckpt, splits, device or "auto", overrides, overwrite)
    click.echo(f"pictures in {out}")


@cli.command()
@click.option("--exp", required=True, type=click.Path(exists=True, file_okay=False), help="Experiment dir.")
@click.option("--data", required=True, type=click.Path(), help="Prepared data directory.")
@click.option("--ckpt", default="best", show_default=True, help="best, last, epoch-NNN or a path.")
@device_option
def score(exp: str, data: str, ckpt: str, device: str | None) -> None:
    """Reconstruction error, KL and ELBO on valid and test -> EXP/scores.json and EXP/RESULTS.md."""
    from aics.core.paths import existing_checkpoint
    from aics.tasks.vae.data import check_prepared

    check_prepared(data)
    existing_checkpoint(exp, ckpt)
    from aics.tasks.vae.infer import score as run

    s = run(exp, data, ckpt, device=device or "auto")
    click.echo(
        f"{exp}: test recon {s['test']['recon_bce']:.2f}, KL {s['test']['kl']:.2f}, "
        f"-ELBO {s['test']['loss']:.2f} nats/image (untrained recon {s['test_untrained']['recon_bce']:.2f})"
    )


cli.add_command(
    report_command("aics.tasks.vae.infer:report", "Compare scored experiments in one markdown table.")
)
cli.add_command(config_command("aics.tasks.vae.config:VAEConfig"))
