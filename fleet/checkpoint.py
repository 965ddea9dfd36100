"""The durable record of a run: one SQLite row per manifest domain, committed as each row ends.

A row is marked ``in_flight`` (with the certificate it had) before its write is sent, so a run killed
between the write and its record knows, when resumed, to describe that domain before writing again.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import anyio

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
T = TypeVar("T")


class CheckpointMismatch(Exception):
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
        self._one_writer = anyio.CapacityLimiter(1)
        stored = self._meta("fingerprint")
        if stored is None:
            with self._db:
                self._db.execute("BEGIN")
                self._db.execute("INSERT INTO meta VALUES ('fingerprint', ?)", (fingerprint,))
                self._db.execute("INSERT INTO meta VALUES ('manifest', ?)", (manifest_path,))
        elif stored != fingerprint:
            other = self._meta("manifest") or "?"
            self._db.close()
            raise CheckpointMismatch(
                f"checkpoint {self.path} belongs to another manifest ({other}, fingerprint {stored[:12]}); "
                f"this manifest's fingerprint is {fingerprint[:12]}. Use another --checkpoint, or delete "
                "this one to start over."
            )

    def _meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def done_domains(self) -> set[str]:
        done = tuple(str(s) for s in DONE)
        marks = ",".join("?" * len(done))
        return {r[0] for r in self._db.execute(f"SELECT domain FROM outcomes WHERE status IN ({marks})", done)}

    def get(self, domain: str) -> Outcome | None:
        row = self._db.execute(
            f"SELECT {', '.join(OUTCOME_FIELDS)} FROM outcomes WHERE domain = ?", (domain,)
        ).fetchone()
        if row is None:
            return None
        values = dict(zip(OUTCOME_FIELDS, row, strict=True))
        values["status"] = Status(values["status"])
        return Outcome(**values)

    async def _write(self, fn: Callable[[], T]) -> T:
        # fsync off the event loop, one writer at a time.
        return await anyio.to_thread.run_sync(fn, limiter=self._one_writer)

    async def record(self, outcome: Outcome) -> None:
        values = outcome.as_dict()
        cols = ", ".join(OUTCOME_FIELDS)
        marks = ", ".join("?" * len(OUTCOME_FIELDS))

        def write() -> None:
            self._db.execute(
                f"INSERT OR REPLACE INTO outcomes ({cols}) VALUES ({marks})",
                [values[c] for c in OUTCOME_FIELDS],
            )

        await self._write(write)

    def close(self) -> None:
        self._db.close()
