"""User-facing errors: one clear line on stderr, exit code 2, no traceback (AICS_DEBUG=1 shows it)."""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable
from typing import NoReturn

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130


class UserError(Exception):
    """A mistake the user can fix (missing file, bad config, malformed data).

    The message names the file (and line or key) and says what to do.
    """


def debug_enabled() -> bool:
    return os.environ.get("AICS_DEBUG", "") not in ("", "0")


def fail(message: str) -> NoReturn:
    raise UserError(message)


def run_guarded(fn: Callable[[], object], prog: str = "aics") -> int:
    """Run ``fn`` and turn user errors and Ctrl-C into a one-line message and an exit code."""
    try:
        fn()
    except UserError as e:
        if debug_enabled():
            traceback.print_exc()
        print(f"{prog}: error: {e}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        if debug_enabled():
            traceback.print_exc()
        print(f"{prog}: interrupted; rerun the same command to resume", file=sys.stderr)
        return EXIT_INTERRUPTED
    return 0
