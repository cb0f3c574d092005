"""Click options shared by every task's commands (config files, overrides, device, overwrite)."""

from __future__ import annotations

import importlib

import click

conf_option = click.option(
    "--conf",
    "conf",
    multiple=True,
    type=click.Path(dir_okay=False),
    help="YAML config overriding the defaults (repeatable; later files win).",
)
set_option = click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override one config key, e.g. --set train.lr=3e-4 (repeatable; wins over --conf).",
)
device_option = click.option(
    "--device",
    default=None,
    help="auto (cuda > mps > cpu), cpu, cuda, cuda:N or mps; overrides train.device.",
)
overwrite_option = click.option(
    "--overwrite", is_flag=True, help="Redo the stage even if its output is complete (wipes its output)."
)


def with_device(overrides: tuple[str, ...], device: str | None) -> tuple[str, ...]:
    """Fold --device into the overrides so it is saved with the resolved config."""
    return overrides + ((f"train.device={device}",) if device else ())


def _load(ref: str):
    module, name = ref.split(":")
    return getattr(importlib.import_module(module), name)


def config_command(config_ref: str) -> click.Command:
    """``aics <task> config``: print the resolved config of ``module:ConfigClass`` with every key's help."""

    @click.command("config")
    @conf_option
    @set_option
    def show_config(conf: tuple, overrides: tuple) -> None:
        """Print the resolved config with every key's help."""
        from aics.core.config import load_config, to_yaml

        click.echo(to_yaml(load_config(_load(config_ref), conf, overrides), comments=True), nl=False)

    return show_config


def report_command(report_ref: str, help: str) -> click.Command:
    """``aics <task> report EXP... [-o FILE]`` over ``module:report(exp_dirs, out) -> str``."""

    @click.command("report", help=help)
    @click.argument("exps", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False))
    @click.option("-o", "--out", type=click.Path(dir_okay=False), help="Also write the table to this file.")
    def report(exps: tuple, out: str | None) -> None:
        click.echo(_load(report_ref)(list(exps), out), nl=False)

    return report


def train_command(
    config_ref: str, check_ref: str, train_ref: str, help: str, data_help: str, name: str = "train"
) -> click.Command:
    """``aics <task> train --data DIR --exp DIR [--conf ...] [--set ...] [--device] [--overwrite]``: load
    ``module:ConfigClass``, check the data dir with ``module:check`` (before the trainer's module, and torch,
    are imported), then run ``module:train(cfg, data, exp, overwrite=...)``."""

    @click.command(name, help=help)
    @click.option("--data", required=True, type=click.Path(), help=data_help)
    @click.option("--exp", required=True, type=click.Path(file_okay=False), help="Experiment directory.")
    @conf_option
    @set_option
    @device_option
    @overwrite_option
    def train(data, exp, conf, overrides, device, overwrite) -> None:
        from aics.core.config import load_config

        cfg = load_config(_load(config_ref), conf, with_device(overrides, device))
        _load(check_ref)(data)
        _load(train_ref)(cfg, data, exp, overwrite=overwrite)

    return train
