"""CSV cells that stay data: a spreadsheet must never run text from AWS or a manifest as a formula, and a terminal
showing the file (``cat``, ``less -r``) must never obey control characters in it.

OWASP's CSV-injection rule: a cell starting with ``=``, ``+``, ``-``, ``@``, tab or carriage return is written with a
leading ``'`` (spreadsheets show it as text). A cell that itself starts with ``'`` gets one too, so that ``restore``
undoes exactly what ``neutralise`` did: every CSV the tool writes reads back as the values it wrote.

A cell with control characters (ESC, the other C0 controls but tab and newline, DEL, C1, Unicode's direction
controls: what ``fleet.text`` shows as escapes) is written as ``'\\`` and the value with each of them as a visible
escape (``\\x1b``, ``\\u202e``) and each backslash doubled; ``restore`` decodes a cell that starts with ``'\\``. Tab
and newline stay as they are: ordinary in a quoted CSV cell, and harmless on a terminal.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_QUOTE = "'"
_ESCAPED = "'\\"  # the start of a cell whose control characters (and backslashes) are escaped
_NUMBER = re.compile(r"-?\d+(\.\d+)?")  # days_left of an expired certificate: a number, not a formula
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_ESCAPE = re.compile(r"\\(\\|x[0-9a-f]{2}|u[0-9a-f]{4})")


def _visible(match: re.Match[str]) -> str:
    code = ord(match.group(0))
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def _decoded(match: re.Match[str]) -> str:
    escape = match.group(1)
    return "\\" if escape == "\\" else chr(int(escape[1:], 16))


def neutralise(value: str) -> str:
    """The cell as written: control characters escaped (after ``'\\``); else ``'`` before a value a spreadsheet
    would take as a formula (or that starts with ``'``)."""
    if _CONTROL.search(value):
        return _ESCAPED + _CONTROL.sub(_visible, value.replace("\\", "\\\\"))
    if value.startswith((*FORMULA_STARTS, _QUOTE)) and not _NUMBER.fullmatch(value):
        return _QUOTE + value
    return value


def restore(value: str) -> str:
    """The value ``neutralise`` was given (a cell without our quote is returned as it is)."""
    if value.startswith(_ESCAPED):
        return _ESCAPE.sub(_decoded, value[len(_ESCAPED) :])
    return value[1:] if value.startswith(_QUOTE) and value[1:].startswith((*FORMULA_STARTS, _QUOTE)) else value


def row(values: Iterable[object]) -> list[object]:
    """A CSV row with every text cell neutralised (numbers are written as they are)."""
    return [neutralise(v) if isinstance(v, str) else v for v in values]
