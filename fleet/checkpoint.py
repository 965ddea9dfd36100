"""The durable record of a run: one SQLite row per manifest domain, committed as each row ends.

A row is marked ``in_flight`` (with the certificate it had) before its write is sent, so a run killed
between the write and its record knows, when resumed, to describe that domain before writing again.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import anyio

from fleet.errors import FleetError
from fleet.outcome import DONE, OUTCOME_FIELDS, Outcome, Status

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS outcomes (
    domain TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    certificate_arn TEXT NOT NULL,
    previous_certificate_arn TEXT,
    cloudfront_domain TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    error_code TEXT,
    error_message TEXT,
    started_at TEXT,
    finished_at TEXT
);
"""

_INSERT = (
    f"INSERT OR REPLACE INTO outcomes ({', '.join(OUTCOME_FIELDS)}) VALUES ({', '.join('?' * len(OUTCOME_FIELDS))})"
)


class _Batch:
    """Statements committed together, and the event their callers wait on."""

    __slots__ = ("done", "error", "statements")

    def __init__(self) -> None:
        self.statements: list[tuple[str, tuple[object, ...]]] = []
        self.done = anyio.Event()
        self.error: Exception | None = None


class CheckpointMismatch(FleetError):
    """The checkpoint belongs to another manifest."""


class Checkpoint:
    def __init__(self, path: str | Path, fingerprint: str, manifest_path: str) -> None:
        self.path = str(path)
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        # Create it 0600 before SQLite does (SQLite gives its -wal/-shm files the same mode).
        os.close(os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600))
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        # FULL: an in-flight mark must survive a power cut, not only a killed process.
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)
        # Reads get a connection of their own: on the writer's, a lookup from the event loop waited for the
        # commit (and fsync) in progress in the writer thread; in WAL mode a second connection reads at once.
        self._reader = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._open = _Batch()
        self._committing = False
        stored = self._meta("fingerprint")
        if stored is None:
            with self._db:
                self._db.execute("BEGIN")
                self._db.execute("INSERT INTO meta VALUES ('fingerprint', ?)", (fingerprint,))
                self._db.execute("INSERT INTO meta VALUES ('manifest', ?)", (manifest_path,))
        elif stored != fingerprint:
            other = self._meta("manifest") or "?"
            self.close()
            raise CheckpointMismatch(
                f"checkpoint {self.path} belongs to another manifest ({other}, fingerprint {stored[:12]}); "
                f"this manifest's fingerprint is {fingerprint[:12]}. Use another --checkpoint, or delete "
                "this one to start over."
            )

    def _meta(self, key: str) -> str | None:
        row = self._reader.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def done_domains(self) -> set[str]:
        done = tuple(str(s) for s in DONE)
        marks = ",".join("?" * len(done))
        return {r[0] for r in self._reader.execute(f"SELECT domain FROM outcomes WHERE status IN ({marks})", done)}

    def get(self, domain: str) -> Outcome | None:
        row = self._reader.execute(
            f"SELECT {', '.join(OUTCOME_FIELDS)} FROM outcomes WHERE domain = ?", (domain,)
        ).fetchone()
        if row is None:
            return None
        values = dict(zip(OUTCOME_FIELDS, row, strict=True))
        values["status"] = Status(values["status"])
        return Outcome(**values)

    async def record(self, outcome: Outcome) -> None:
        """Store ``outcome``; returns once it is durable (committed and fsynced)."""
        values = outcome.as_dict()
        await self._commit((_INSERT, tuple(values[c] for c in OUTCOME_FIELDS)))

    async def _commit(self, statement: tuple[str, tuple[object, ...]]) -> None:
        # Group commit: statements that arrive while a commit is running go together in the next one, so a
        # busy run pays one thread hand-off and one fsync per batch instead of per row (a hand-off per write
        # was a tenth of a run's CPU: benchmarks/README.md). Every caller still returns only once its own
        # statement is durable. The first caller to find no commit running does the committing.
        batch = self._open
        batch.statements.append(statement)
        if not self._committing:
            self._committing = True
            try:
                with anyio.CancelScope(shield=True):  # the waiters' statements must not be left behind
                    while self._open.statements:
                        current, self._open = self._open, _Batch()
                        try:
                            await anyio.to_thread.run_sync(self._apply, current.statements)
                        except Exception as exc:  # every statement of the batch shares the failure
                            current.error = exc
                        current.done.set()
            finally:
                self._committing = False
        await batch.done.wait()
        if batch.error is not None:
            raise batch.error

    def _apply(self, statements: list[tuple[str, tuple[object, ...]]]) -> None:
        with self._db:  # one transaction, one fsync (fsync off the event loop: this runs in a thread)
            self._db.execute("BEGIN")
            for sql, params in statements:
                self._db.execute(sql, params)

    def close(self) -> None:
        self._reader.close()
        self._db.close()
