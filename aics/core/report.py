"""Markdown tables for RESULTS.md files."""

from __future__ import annotations

from collections.abc import Sequence


def fmt(value: object, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def rows_table(rows: Sequence[dict], digits: int = 2) -> str:
    """Dicts as one table: the union of their keys as columns (first seen first), blanks where a row lacks
    one."""
    headers = list(dict.fromkeys(k for r in rows for k in r))
    return markdown_table(headers, [[r.get(h, "") for h in headers] for r in rows], digits)


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]], digits: int = 2) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(fmt(v, digits) for v in row) + " |")
    return "\n".join(lines) + "\n"
