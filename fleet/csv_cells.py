"""CSV cells that stay data: a spreadsheet must never run text from AWS or a manifest as a formula.

OWASP's CSV-injection rule: a cell starting with ``=``, ``+``, ``-``, ``@``, tab or carriage return is written with a
leading ``'`` (spreadsheets show it as text). A cell that itself starts with ``'`` gets one too, so that ``restore``
undoes exactly what ``neutralise`` did: every CSV the tool writes reads back as the values it wrote.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_QUOTE = "'"
_NUMBER = re.compile(r"-?\d+(\.\d+)?")  # days_left of an expired certificate: a number, not a formula


def neutralise(value: str) -> str:
    """The cell as written: ``'`` before a value a spreadsheet would take as a formula (or that starts with ``'``)."""
    if value.startswith((*FORMULA_STARTS, _QUOTE)) and not _NUMBER.fullmatch(value):
        return _QUOTE + value
    return value


def restore(value: str) -> str:
    """The value ``neutralise`` was given (a cell without our quote is returned as it is)."""
    return value[1:] if value.startswith(_QUOTE) and value[1:].startswith((*FORMULA_STARTS, _QUOTE)) else value


def row(values: Iterable[object]) -> list[object]:
    """A CSV row with every text cell neutralised (numbers are written as they are)."""
    return [neutralise(v) if isinstance(v, str) else v for v in values]
