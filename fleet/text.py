"""Text from outside (AWS answers, manifest cells, report cells, headers) shown to people: never terminal control.

An error code carrying ``ESC ]0;…`` retitles the operator's terminal, ``ESC [2J`` clears it, and bidirectional
overrides make a line read differently from what it says. Such characters are shown as visible escapes
(``\\x1b``, ``\\u202e``) on the console and in Markdown/HTML; the text is otherwise unchanged.
"""

from __future__ import annotations

import re

# C0 controls (newline optional), DEL, C1 controls, and Unicode's invisible direction and line controls.
_CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_CONTROL_OR_NEWLINE = re.compile(f"[\n{_CONTROL.pattern[1:-1]}]")


def _visible(match: re.Match[str]) -> str:
    code = ord(match.group(0))
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def printable(text: str, newlines: bool = False) -> str:
    """``text`` with every control character shown as an escape; ``newlines`` keeps line breaks (a multi-line
    message of the tool's own)."""
    return (_CONTROL if newlines else _CONTROL_OR_NEWLINE).sub(_visible, text)
