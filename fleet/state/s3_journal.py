"""The S3 state's journal: each group commit of the local copy is one small object, written before the commit is
acknowledged, and replayed in order when the state is next opened.

Layout beside the snapshot ``KEY``::

    KEY.journal/<writer>/<seq>     {"v": 1, "statements": [[sql, params], ...]}    one group commit
    KEY.journal/<writer>/<seq>     {"v": 1, "fence": "<run id>"}                   a fence: <writer> may write no more

A writer is a run (its run id) or one command (``hold``, ``release``, ``rollback``); its id starts with the UTC
time it started, so the writers sort in time order. Each journal is created with ``If-None-Match: *``: a key is
written once. The snapshot's ``meta`` table keeps, per writer, the last sequence number it contains
(``s3_journal:<writer>``), written in the same transaction as the statements: replay skips what the snapshot
already holds, so a crash between uploading a snapshot and deleting its journals replays nothing twice.

A fence stops a writer that lost its lock but does not know it yet (stalled past its lease): the run that takes
the lock over creates the keys the writer could still write itself, so the stalled writer's next group commit
fails (412) before its write to Cognito is sent.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass

from fleet.state.base import CheckpointError
from fleet.state.s3_objects import ObjectStore, RaceLost

SEQ_DIGITS = 10
# A writer's group-commit journal PUTs in flight at once (fleet/state/s3_window.py): one, so that the commits made
# meanwhile share the next PUT (1,000 domains: 47 PUTs instead of ~190 with 4; benchmarks/README.md).
WINDOW = 1
FENCE_MARGIN = WINDOW + 1  # those, and one journal of a command (begin, finish) beside them
_MARK = "s3_journal:"
# What a journal may do to the local copy (sqlite3's authorizer, during replay only): read, insert, update and
# delete rows of the state's own tables. A journal is data from the bucket: it must not ATTACH a file, run a
# PRAGMA, or create or drop anything.
_TABLES = frozenset({"meta", "outcomes", "moves", "history", "runs", "holds", "hold_log", "sqlite_sequence"})
_ROW_ACTIONS = frozenset({sqlite3.SQLITE_INSERT, sqlite3.SQLITE_UPDATE, sqlite3.SQLITE_DELETE, sqlite3.SQLITE_READ})
_FREE_ACTIONS = frozenset({sqlite3.SQLITE_SELECT, sqlite3.SQLITE_TRANSACTION, sqlite3.SQLITE_FUNCTION})

Statements = list[tuple[str, tuple[object, ...]]]


def prefix(key: str) -> str:
    return f"{key}.journal/"


def journal_key(key: str, writer: str, seq: int) -> str:
    return f"{prefix(key)}{writer}/{seq:0{SEQ_DIGITS}d}"


def mark_key(writer: str) -> str:
    """The ``meta`` key of a writer's last sequence number in the snapshot."""
    return _MARK + writer


def mark_statement(writer: str, seq: int) -> tuple[str, tuple[object, ...]]:
    return ("INSERT OR REPLACE INTO meta VALUES (?, ?)", (mark_key(writer), str(seq)))


def encode(statements: Statements) -> bytes:
    return json.dumps({"v": 1, "statements": [[sql, list(params)] for sql, params in statements]}).encode()


def encode_fence(by: str) -> bytes:
    return json.dumps({"v": 1, "fence": by}).encode()


@dataclass(frozen=True, slots=True)
class Entry:
    """A journal object, by its key."""

    writer: str
    seq: int
    key: str
    fence: bool = False  # known to be a fence (read during replay): kept


def entries(key: str, keys: Iterable[str]) -> list[Entry]:
    """The journals under ``key``'s prefix, in replay order (writer, then sequence); unknown keys are skipped."""
    found = []
    for k in keys:
        writer, _, seq = k[len(prefix(key)) :].rpartition("/")
        if writer and seq.isdigit() and len(seq) == SEQ_DIGITS:
            found.append(Entry(writer, int(seq), k))
    return sorted(found, key=lambda e: (e.writer, e.seq))


def marks(db: sqlite3.Connection) -> dict[str, int]:
    """Per writer, the last journal the local copy contains."""
    rows = db.execute("SELECT key, value FROM meta WHERE key LIKE ?", (_MARK + "%",))
    return {str(k)[len(_MARK) :]: int(v) for k, v in rows}


def decode(where: str, body: bytes) -> tuple[Statements | None, str | None]:
    """(statements, None) of a commit, or (None, fencing run) of a fence; CheckpointError for anything else."""
    try:
        doc = json.loads(body)
        if doc.get("v") != 1:
            raise ValueError(f"version {doc.get('v')!r}")
        if "fence" in doc:
            return None, str(doc["fence"])
        statements = [(str(sql), tuple(params)) for sql, params in doc["statements"]]
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise CheckpointError(f"{where}: not a cognito-fleet journal ({exc})") from None
    for _, params in statements:
        if not all(p is None or isinstance(p, str | int | float) for p in params):
            raise CheckpointError(f"{where}: not a cognito-fleet journal (a value that is not text or a number)")
    return statements, None


def _authorize(action: int, arg1: str | None, arg2: str | None, db_name: str | None, trigger: str | None) -> int:
    if action in _FREE_ACTIONS:
        return sqlite3.SQLITE_OK
    if action in _ROW_ACTIONS and arg1 in _TABLES and db_name in (None, "main"):
        return sqlite3.SQLITE_OK
    return sqlite3.SQLITE_DENY


def apply(db: sqlite3.Connection, where: str, writer: str, seq: int, statements: Statements) -> None:
    """One journal into the local copy, in one transaction with the writer's mark; only row changes to the
    state's own tables are allowed (CheckpointError otherwise: the copy is left as it was)."""
    db.set_authorizer(_authorize)
    try:
        with db:
            db.execute("BEGIN")
            for sql, params in [*statements, mark_statement(writer, seq)]:
                db.execute(sql, params)
    except sqlite3.DatabaseError as exc:
        raise CheckpointError(f"{where}: cannot be replayed ({exc}); the state was not changed") from None
    finally:
        db.set_authorizer(None)


def replay(db: sqlite3.Connection, store: ObjectStore, key: str, where: str) -> list[Entry]:
    """Every journal the local copy lacks, applied in order; returns the entries listed (to delete once a
    snapshot holds them; fences flagged, to keep). A fence is skipped, not an end: journals that landed beside
    it (a writer's PUTs in flight land in any order) are real commits."""
    listed = entries(key, store.list(prefix(key)))
    have = marks(db)
    out = []
    for entry in listed:
        if entry.seq <= have.get(entry.writer, 0):
            out.append(entry)  # in the snapshot already (a compaction that did not get to delete it)
            continue
        got = store.get(entry.key)
        if got is None:  # deleted by a compaction since listed: the snapshot holds it (the caller re-reads)
            raise RaceLost(f"{where}: compacted by another run while being read; run again")
        statements, _by = decode(f"s3://{store.bucket}/{entry.key}", got.body)
        if statements is None:
            out.append(Entry(entry.writer, entry.seq, entry.key, fence=True))
            continue
        apply(db, where, entry.writer, entry.seq, statements)
        out.append(entry)
    return out


def fence(store: ObjectStore, key: str, writer: str, by: str, window: int = FENCE_MARGIN) -> int:
    """Stop ``writer`` from journaling any more: create every key it could still be writing. A writer has at
    most ``window`` PUTs in flight and starts none after one failed, so those are the unlisted keys among the
    ``window`` below its last listed one and the ``window`` after it. Redone while the writer races us (a key
    we meant to fence landed first). Returns the first fence after the writer's last listed journal."""
    while True:
        listed = {e.seq for e in entries(key, store.list(f"{prefix(key)}{writer}/")) if e.writer == writer}
        last = max(listed, default=0)
        todo = [s for s in range(max(1, last - window + 1), last + window + 1) if s not in listed]
        try:
            for seq in todo:
                store.put(journal_key(key, writer, seq), encode_fence(by), if_none_match=True)
            return last + 1
        except RaceLost:
            continue  # the writer committed one of them meanwhile: look again
