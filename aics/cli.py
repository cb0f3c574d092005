"""The ``aics`` command: one subcommand per task, each imported only when it is used.

``aics --help`` and ``aics --version`` import neither torch nor any task (start-up is measured in bench/).
"""

from __future__ import annotations

import errno
import importlib
import sys

import click

from aics import __version__
from aics.core.errors import EXIT_INTERRUPTED, EXIT_USER_ERROR, UserError, debug_enabled

# name -> (module with a click group called `cli`, one-line summary)
TASKS: dict[str, tuple[str, str]] = {
    "vae": ("aics.tasks.vae.cli", "VAE on MNIST: latent maps for z=1 and z=2, reconstruction error."),
    "lm": ("aics.tasks.lm.cli", "Language models (FFN, RNN, GRU, LSTM, Transformer): perplexity."),
    "detect": ("aics.tasks.detect.cli", "YOLOv5 n/s/m/l/x detection in plain torch: mAP@0.5, mAP@0.5:0.95."),
    "squad": ("aics.tasks.squad.cli", "BERT question answering on SQuAD v1.1, distillation: EM / F1."),
    "asr": ("aics.tasks.asr.cli", "Speech: offline corpora, DFCNN + CTC recognition (CER / WER), WER judge."),
    "tts": (
        "aics.tasks.tts.cli",
        "Speech synthesis: Tacotron2 + WaveGlow or Griffin-Lim, NVIDIA checkpoints.",
    ),
    "sed": ("aics.tasks.sed.cli", "Weakly labelled sound event detection, CRNN: event-based F1 (DCASE2018)."),
    "caption": (
        "aics.tasks.caption.cli",
        "Image captioning, CNN + attention LSTM: BLEU, METEOR, CIDEr-D, SPICE.",
    ),
    "avsc": (
        "aics.tasks.avsc.cli",
        "Audio-visual scene classification, single and fused: log loss, accuracy.",
    ),
}
PLANNED: tuple[str, ...] = ()  # tasks announced in the README but not built yet


class TaskGroup(click.Group):
    """Lists the TASKS table and imports a task's commands only when that task is invoked."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(TASKS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in PLANNED:
            raise UserError(
                f"'aics {name}' is planned but not built yet; the README's task table says what is built "
                "(see 'aics --help')"
            )
        if name not in TASKS:
            return None
        return importlib.import_module(TASKS[name][0]).cli

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Described from the table, so listing the tasks imports none of them.
        with formatter.section("Tasks"):
            formatter.write_dl([(name, summary) for name, (_, summary) in TASKS.items()])


@click.group(
    cls=TaskGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110},
    epilog=(f"Planned, not built yet: {', '.join(PLANNED)}. " if PLANNED else "")
    + "Set AICS_DEBUG=1 to see tracebacks.",
)
@click.version_option(__version__, "-V", "--version", prog_name="aics")
def cli() -> None:
    """aics: AI-systems course labs end to end (data, features, training, decoding, scores).

    Each task is a group of commands; recipes in recipes/<name>/run.sh chain them into stages.
    """


def disk_full_message(e: OSError) -> str:
    where = f" while writing {e.filename}" if e.filename else ""
    return (
        f"no space left on the device{where}; free some space and rerun the same command "
        "(finished stages are kept and training resumes from its last checkpoint)"
    )


def main(argv: list[str] | None = None) -> None:
    try:
        code = cli.main(args=argv, prog_name="aics", standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError as e:
        # `aics vae` alone: the task's commands, as with --help (not an error)
        click.echo(e.ctx.get_help() if e.ctx is not None else e.format_message())
        sys.exit(0)
    except UserError as e:
        if debug_enabled():
            raise
        click.echo(f"aics: error: {e}", err=True)
        sys.exit(EXIT_USER_ERROR)
    except click.exceptions.Abort:
        click.echo("aics: interrupted; rerun the same command to resume", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except click.UsageError as e:
        where = e.ctx.command_path if e.ctx is not None else "aics"
        click.echo(f"aics: error: {e.format_message().rstrip('.')} (see '{where} --help')", err=True)
        sys.exit(EXIT_USER_ERROR)
    except click.ClickException as e:
        click.echo(f"aics: error: {e.format_message()}", err=True)
        sys.exit(EXIT_USER_ERROR)
    except OSError as e:
        if debug_enabled():
            raise
        if e.errno in (errno.ENOSPC, errno.EDQUOT):
            click.echo(f"aics: error: {disk_full_message(e)}", err=True)
            sys.exit(EXIT_USER_ERROR)
        if e.filename is None:
            raise
        click.echo(f"aics: error: {e.filename}: {e.strerror}; check the path", err=True)
        sys.exit(EXIT_USER_ERROR)
    sys.exit(code if isinstance(code, int) else 0)
