"""Stage outputs: ``.done`` markers, skip when done, ``--overwrite``, refuse half-written directories, and
one process per output directory.

Every stage of every task writes only under its output directory and writes ``.done`` last::

    if not begin_stage(out, overwrite, what="prepare"):
        return                  # already done
    ...                         # write outputs
    mark_done(out, {"n": 3})    # also releases the directory's lock

``begin_stage`` locks the directory (``core.lock``) for the rest of the process, or until ``mark_done``;
a second command on the same directory is refused with the holder's pid.
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

from aics.core import lock
from aics.core.errors import UserError
from aics.core.io import write_text

DONE = ".done"
# Set by recipes/utils/lib.sh for the stage being run, so a hint can name the recipe command that redoes it.
RECIPE_ENV, STAGE_ENV = "AICS_RECIPE", "AICS_RECIPE_STAGE"


def overwrite_hint() -> str:
    """How to redo a stage: ``pass --overwrite`` for a command; inside a recipe, the recipe command that
    redoes only this stage (a bare ``--overwrite true`` would redo every stage)."""
    recipe, stage = os.environ.get(RECIPE_ENV), os.environ.get(STAGE_ENV)
    if recipe and stage:
        only = f"--stage {stage} --stop-stage {stage} --overwrite true"
        return f"rerun `bash {recipe}` with your options plus `{only}`"
    return "pass --overwrite"


def is_done(out_dir: str | Path) -> bool:
    return (Path(out_dir) / DONE).is_file()


def done_info(out_dir: str | Path) -> dict:
    path = Path(out_dir) / DONE
    try:
        return json.loads(path.read_text(encoding="utf-8") or "{}")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return {}


def contents(out_dir: str | Path) -> list[Path]:
    """What a stage wrote into ``out_dir`` (its lock file aside)."""
    out = Path(out_dir)
    return [p for p in out.iterdir() if p.name != lock.LOCK] if out.is_dir() else []


def wipe(out_dir: str | Path) -> None:
    """Remove everything in ``out_dir`` but the lock file this process holds."""
    for p in contents(out_dir):
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        else:
            p.unlink()


def _changes(made_from: dict, params: dict) -> str:
    keys = sorted(made_from.keys() | params.keys(), key=lambda k: (k not in params, k))
    return ", ".join(
        f"{k}={made_from.get(k)!r} -> {params.get(k)!r}" for k in keys if made_from.get(k) != params.get(k)
    )


def begin_stage(
    out_dir: str | Path,
    overwrite: bool = False,
    what: str = "stage",
    resumable: Callable[[Path], bool] | None = None,
    params: dict | None = None,
) -> bool:
    """Decide whether a stage runs. Returns False when its ``.done`` marker says it already ran.

    The directory is locked for this process first. ``overwrite`` wipes it. A non-empty directory without
    ``.done`` is refused, unless ``resumable(out_dir)`` says the stage can pick up where it stopped (e.g.
    training with a last.pt). With ``params`` (what the output was made from), a finished stage made from
    other params is refused instead of being silently reused; ``mark_done(out, params=params)`` records them.
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise UserError(f"{out}: exists and is not a directory; choose another output path")
    lock.acquire(out, what)
    try:
        if overwrite:
            wipe(out)
        if is_done(out):
            made_from = done_info(out).get("params")
            if params is not None and made_from is not None and made_from != params:
                raise UserError(
                    f"{out}: was made with other options ({_changes(made_from, params)}); "
                    f"{overwrite_hint()} to redo it"
                )
            print(
                f"{what}: {out} is already done (to redo it, remove {out / DONE} or {overwrite_hint()})",
                file=sys.stderr,
            )
            lock.release(out)
            return False
        if contents(out) and not (resumable and resumable(out)):
            if not lock.found_stale(out):
                raise UserError(
                    f"{out}: is not empty and has no {DONE} marker (no aics {what} finished there); choose "
                    f"another output directory, or {overwrite_hint()} to empty it and redo the {what}"
                )
            # an aics stage that was killed or failed left it: its outputs are incomplete, so start again
            print(f"{what}: {out}: an earlier {what} stopped midway; starting it again", file=sys.stderr)
            wipe(out)
    except BaseException:
        lock.release(out)
        raise
    return True


def mark_done(out_dir: str | Path, info: dict | None = None, params: dict | None = None) -> None:
    """Write ``.done`` (the stage is complete) and release the directory's lock."""
    record = {"finished": datetime.datetime.now().isoformat(timespec="seconds"), "argv": sys.argv}
    record.update(info or {})
    if params is not None:
        record["params"] = params
    write_text(Path(out_dir) / DONE, json.dumps(record, indent=2) + "\n")
    lock.release(out_dir)


def require_done(in_dir: str | Path, what: str, hint: str) -> Path:
    """Check that an input produced by an earlier stage is complete; ``hint`` says how to make it."""
    path = Path(in_dir)
    if not path.is_dir():
        raise UserError(f"{path}: not found; {hint}")
    if not is_done(path):
        raise UserError(f"{path}: the {what} stage has not finished there (no {DONE}); {hint}")
    return path
