"""Click options shared by every task's commands (config files, overrides, device, overwrite)."""

from __future__ import annotations

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
