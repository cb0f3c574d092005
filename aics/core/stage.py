"""Stage outputs: ``.done`` markers, skip when done, ``--overwrite``, refuse half-written directories.

Every stage of every task writes only under its output directory and writes ``.done`` last::

    if not begin_stage(out, overwrite, what="prepare"):
        return                  # already done
    ...                         # write outputs
    mark_done(out, {"n": 3})
"""

from __future__ import annotations

import datetime
import json
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

from aics.core.errors import UserError
from aics.core.io import write_text

DONE = ".done"


def is_done(out_dir: str | Path) -> bool:
    return (Path(out_dir) / DONE).is_file()


def done_info(out_dir: str | Path) -> dict:
    path = Path(out_dir) / DONE
    try:
        return json.loads(path.read_text(encoding="utf-8") or "{}")
    except (OSError, json.JSONDecodeError):
        return {}


def begin_stage(
    out_dir: str | Path,
    overwrite: bool = False,
    what: str = "stage",
    resumable: Callable[[Path], bool] | None = None,
    params: dict | None = None,
) -> bool:
    """Decide whether a stage runs. Returns False when its ``.done`` marker says it already ran.

    ``overwrite`` wipes the directory first. A non-empty directory without ``.done`` is refused, unless
    ``resumable(out_dir)`` says the stage can pick up where it stopped (e.g. training with a last.pt).
    With ``params`` (what the output was made from), a finished stage made from other params is refused
    instead of being silently reused; ``mark_done(out, params=params)`` records them.
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise UserError(f"{out}: exists and is not a directory; choose another output path")
    if overwrite and out.exists():
        shutil.rmtree(out)
    if is_done(out):
        made_from = done_info(out).get("params")
        if params is not None and made_from is not None and made_from != params:
            changed = ", ".join(
                f"{k}={made_from.get(k)!r} -> {v!r}" for k, v in params.items() if made_from.get(k) != v
            )
            raise UserError(f"{out}: was made with other options ({changed}); pass --overwrite to redo it")
        print(
            f"{what}: {out} is already done (remove {out / DONE} or pass --overwrite to redo)",
            file=sys.stderr,
        )
        return False
    if out.is_dir() and any(out.iterdir()) and not (resumable and resumable(out)):
        raise UserError(
            f"{out}: exists without a {DONE} marker (an earlier {what} stopped midway); "
            f"pass --overwrite to redo it, or remove the directory"
        )
    out.mkdir(parents=True, exist_ok=True)
    return True


def mark_done(out_dir: str | Path, info: dict | None = None, params: dict | None = None) -> None:
    record = {"finished": datetime.datetime.now().isoformat(timespec="seconds"), "argv": sys.argv}
    record.update(info or {})
    if params is not None:
        record["params"] = params
    write_text(Path(out_dir) / DONE, json.dumps(record, indent=2) + "\n")


def require_done(in_dir: str | Path, what: str, hint: str) -> Path:
    """Check that an input produced by an earlier stage is complete; ``hint`` says how to make it."""
    path = Path(in_dir)
    if not path.is_dir():
        raise UserError(f"{path}: not found; {hint}")
    if not is_done(path):
        raise UserError(f"{path}: the {what} stage has not finished there (no {DONE}); {hint}")
    return path
