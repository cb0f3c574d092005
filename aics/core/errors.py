"""User-facing errors: one clear line on stderr, exit code 2, no traceback (AICS_DEBUG=1 shows it)."""

from __future__ import annotations

import os

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130


class UserError(Exception):
    """A mistake the user can fix (missing file, bad config, malformed data).

    The message names the file (and line or key) and says what to do.
    """


def debug_enabled() -> bool:
    return os.environ.get("AICS_DEBUG", "") not in ("", "0")


def raise_problems(problems: list[str], advice: str, shown: int = 3) -> None:
    """All problems found (``file:line: what``) as one line: the first few, how many more, what to do."""
    if problems:
        more = f" (and {len(problems) - shown} more)" if len(problems) > shown else ""
        raise UserError(f"{'; '.join(problems[:shown])}{more}; {advice}")
