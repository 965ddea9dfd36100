"""The tool writes over its own files only. A report's siblings (its JSON Lines, its run record), a change record, a
plan or a rollback record replace a file already there only when that file is one cognito-fleet wrote (or empty):
``--report x.csv`` must not replace an unrelated ``x.jsonl`` beside it, nor ``--report prod.csv`` the manifest.

"One the tool wrote" is read from the file's first bytes (each kind has a shape the tool always gives it), not from
a registry: the files move between machines and tickets, and an older tool's files must still count as ours.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from fleet.errors import FleetError

HEAD = 1 << 20  # the first MiB: a report's header line, a run record or a plan's top-level fields


class OverwriteRefused(FleetError):
    """A file the tool would write is there and is not one it wrote: nothing is written (exit 2)."""


@dataclass(frozen=True, slots=True)
class Kind:
    name: str  # for the message: "a report CSV"
    ours: Callable[[bytes], bool]


def _first_line(head: bytes) -> bytes:
    return head.removeprefix(b"\xef\xbb\xbf").split(b"\n", 1)[0].rstrip(b"\r")


def _json_object(data: bytes) -> dict[str, object] | None:
    try:
        value = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _report_header(head: bytes) -> bool:
    columns = {c.strip().strip('"') for c in _first_line(head).decode("utf-8", "replace").split(",")}
    return {"domain", "status", "certificate_arn", "previous_certificate_arn"} <= columns


def _report_line(head: bytes) -> bool:
    line = _json_object(_first_line(head))
    return line is not None and {"domain", "status"} <= set(line)


def _run_record(head: bytes) -> bool:
    doc = _json_object(head)
    return doc is not None and "run_id" in doc and ("command" in doc or "pass" in doc)


def _change_record(head: bytes) -> bool:
    text = head.decode("utf-8", "replace")
    titles = ("Change record: ", "Plan: ")
    if text.startswith("# "):
        return text[2:].startswith(titles)
    return text.startswith("<!DOCTYPE html>") and any(f"<h1>{t}" in text for t in titles)


def _format(name: str) -> Callable[[bytes], bool]:
    def ours(head: bytes) -> bool:
        doc = _json_object(head)
        return doc is not None and doc.get("format") == name

    return ours


REPORT = Kind("a report CSV", _report_header)
REPORT_JSONL = Kind("a report's JSON Lines", _report_line)
RUN_RECORD = Kind("a run record", _run_record)
CHANGE_RECORD = Kind("a change record", _change_record)
PLAN = Kind("a plan", _format("cognito-fleet-plan"))
ROLLBACK = Kind("a rollback record", _format("cognito-fleet-rollback"))


def refuse_foreign(path: Path, kind: Kind) -> None:
    """OverwriteRefused (one line naming ``path``) unless ``path`` is absent, empty, or a ``kind`` the tool wrote."""
    try:
        with path.open("rb") as fh:
            head = fh.read(HEAD)
    except FileNotFoundError:
        return
    except IsADirectoryError:
        raise OverwriteRefused(f"{path}: a directory, where {kind.name} would be written; nothing done") from None
    except OSError as exc:
        raise OverwriteRefused(f"{path}: cannot read ({exc.strerror or exc}), so it is not overwritten") from None
    if head.strip() and not kind.ours(head):
        raise OverwriteRefused(
            f"{path}: exists and is not {kind.name} cognito-fleet wrote: not overwritten, nothing done; move it "
            "away or choose another path"
        )
