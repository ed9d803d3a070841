"""Helpers that turn offending cells into the sentences shown in a resource's status.

Convention used everywhere: row numbers are 1-based and counted as a spreadsheet shows the file
(the header is row 1, the first data row is row 2; blank lines count, as they do in an editor).
For xls/xlsx they are the sheet's own row numbers. Columns are named by their header text; a
column without a name, and every BED column, is given by its 1-based position.
"""

from __future__ import annotations

from collections.abc import Sequence

MAX_LISTED = 5


def quote(value: object, limit: int = 40) -> str:
    """Show a user value in double quotes, shortened so one bad cell cannot flood the status."""
    text = value if isinstance(value, str) else format_value(value)
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return f'"{text}"'


def format_value(value: object) -> str:
    if isinstance(value, float):
        if value != value:  # NaN
            return "NaN"
        if value in (float("inf"), float("-inf")):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    return str(value)


def plural(count: int, singular: str, plural_form: str | None = None) -> str:
    return f"{count} {singular if count == 1 else (plural_form or singular + 's')}"


def listing(items: Sequence[str], total: int, *, noun: str = "more") -> str:
    """Join the first few offender sentences and say how many more there are."""
    shown = list(items[:MAX_LISTED])
    text = " ".join(shown)
    rest = total - len(shown)
    if rest > 0:
        text += f" (and {rest} {noun} not shown)."
    return text
