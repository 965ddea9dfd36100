"""The state file's schema: its tables, the versions it went through, and bringing an older file up to date."""

from __future__ import annotations

import sqlite3

from fleet.outcome import WRITTEN
from fleet.state.base import CheckpointBase, CheckpointError

SCHEMA_VERSION = 3
APPLICATION_ID = 0x43464C54  # "CFLT" in SQLite's header (PRAGMA application_id): this file is a cognito-fleet state
EXTRA_COLUMNS = ("account_id", "region", "user_pool_id", "run_id", "pass", "drift")
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
    finished_at TEXT,
    edge TEXT,
    edge_not_after TEXT,
    written_at TEXT
);
"""
SCHEMA_2 = """
CREATE TABLE IF NOT EXISTS moves (
    domain TEXT NOT NULL, target TEXT NOT NULL, original TEXT NOT NULL, run_id TEXT, at TEXT,
    PRIMARY KEY (domain, target)
);
CREATE TABLE IF NOT EXISTS history (
    id INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT, at TEXT, account_id TEXT, region TEXT, user_pool_id TEXT,
    domain TEXT NOT NULL, certificate_before TEXT, certificate_after TEXT NOT NULL, status TEXT NOT NULL,
    error_code TEXT, error_message TEXT, attempts INTEGER, drift INTEGER NOT NULL DEFAULT 0,
    cloudfront_domain TEXT, started_at TEXT, edge TEXT, edge_not_after TEXT, written_at TEXT
);
CREATE INDEX IF NOT EXISTS history_domain ON history (domain);
CREATE INDEX IF NOT EXISTS history_run ON history (run_id);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY, pass INTEGER NOT NULL, mode TEXT NOT NULL, manifest TEXT, rows INTEGER,
    started_at TEXT, finished_at TEXT, complete INTEGER NOT NULL DEFAULT 0, counts TEXT, info TEXT
);
"""
# Columns added within schema 2, on opening (additive: an older version of the tool ignores them).
_ADDED = {
    "outcomes": ("edge", "edge_not_after", "written_at"),
    "history": ("edge", "edge_not_after", "written_at"),
    "runs": ("info",),  # who ran it, where, with what (JSON: hub ARN, host, user, version, options, manifest SHA-256)
}
SCHEMA_3 = """
CREATE TABLE IF NOT EXISTS holds (
    domain TEXT PRIMARY KEY, certificate_arn TEXT NOT NULL, rollback_id TEXT NOT NULL, at TEXT NOT NULL, who TEXT
);
CREATE TABLE IF NOT EXISTS hold_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, act TEXT NOT NULL, domain TEXT, certificate_arn TEXT,
    rollback_id TEXT, who TEXT, reason TEXT
);
"""


def needs_stamp(db: sqlite3.Connection, path: str, size: int) -> bool:
    """Whether the file is ours: a new (empty) file, one stamped with our application id, or one from before the
    stamp (a ``meta`` and an ``outcomes`` table). Returns whether to stamp it; CheckpointError for any other file,
    which is left as it was (nothing has been written to it yet)."""
    app = int(db.execute("PRAGMA application_id").fetchone()[0])
    if app == APPLICATION_ID:
        return False
    tables = {str(r[0]) for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if app == 0 and (size == 0 or {"meta", "outcomes"} <= tables):
        return True
    what = f"application id {app}" if app else f"tables: {', '.join(sorted(tables)) or 'none'}"
    raise CheckpointError(
        f"{path}: not a cognito-fleet state file ({what}); left untouched: give --checkpoint another path"
    )


class SchemaMixin(CheckpointBase):
    """Schema upgrades, each in one transaction: 0.1 -> 2 -> 3, and columns added within a version."""

    def _upgrade(self) -> None:
        """Bring a 0.1 file (or a new one) to schema 2, then 2 to 3, in one transaction."""
        row = self._db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        version = int(row[0]) if row else 1
        if version > SCHEMA_VERSION:
            raise CheckpointError(f"{self.path}: written by a newer cognito-fleet (schema {version})")
        if version == SCHEMA_VERSION:
            return
        with self._db:
            self._db.execute("BEGIN")
            if version < 2:
                self._upgrade_0_1()
            for statement in SCHEMA_3.strip().split(";"):
                if statement.strip():
                    self._db.execute(statement)
            self._db.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))

    def _add_columns(self) -> None:
        """Columns added since a file was made (the edge check's): added in place, one transaction."""
        missing = []
        for table, columns in _ADDED.items():
            have = {r[1] for r in self._db.execute(f"PRAGMA table_info({table})")}
            missing += [(table, c) for c in columns if c not in have]
        if missing:
            with self._db:
                self._db.execute("BEGIN")
                for table, column in missing:
                    self._db.execute(f'ALTER TABLE {table} ADD COLUMN "{column}" TEXT')

    def _upgrade_0_1(self) -> None:
        have = {r[1] for r in self._db.execute("PRAGMA table_info(outcomes)")}
        for column in EXTRA_COLUMNS:
            if column not in have:
                kind = "INTEGER NOT NULL DEFAULT 0" if column in ("pass", "drift") else "TEXT"
                self._db.execute(f'ALTER TABLE outcomes ADD COLUMN "{column}" {kind}')
        for statement in SCHEMA_2.strip().split(";"):
            if statement.strip():
                self._db.execute(statement)
        # 0.1 knew one manifest and no passes: its rows are pass 1, and a run that was under way resumes.
        self._db.execute('UPDATE outcomes SET "pass" = 1 WHERE "pass" = 0')
        written = tuple(str(s) for s in WRITTEN)
        self._db.execute(
            "INSERT OR IGNORE INTO moves (domain, target, original, run_id, at) "
            "SELECT domain, certificate_arn, previous_certificate_arn, '0.1', finished_at FROM outcomes "
            f"WHERE status IN ({','.join('?' * len(written))}) AND previous_certificate_arn IS NOT NULL "
            "AND previous_certificate_arn != certificate_arn",
            written,
        )
        if self._db.execute("SELECT COUNT(*) FROM outcomes").fetchone()[0]:
            self._db.execute("INSERT OR IGNORE INTO runs (run_id, pass, mode) VALUES ('0.1', 1, 'resume')")
        self._db.execute("DELETE FROM meta WHERE key IN ('fingerprint', 'manifest')")
