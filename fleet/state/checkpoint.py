"""The fleet's state: one SQLite file keyed by domain, not by manifest, that every run reads and extends.

- ``outcomes``: each domain's latest outcome (for the target it was last asked for), committed as the row ends.
  A row is marked ``in_flight`` (with the certificate it had) before its write is sent, so a run killed between
  the write and its record knows, when resumed, to describe that domain before writing again.
- ``moves``: for every (domain, target) the tool moved, the certificate the domain had before the tool first
  moved it there: every later report names it as ``previous_certificate_arn``, so rollback works from any of them.
- ``history``: append-only, every record of every run (writes in flight included); ``runs``: one line per run.
- ``holds`` / ``hold_log`` / the ``fleet_hold`` meta key: domains a rollback holds on their previous certificate,
  the whole fleet held by an operator, and every hold and release (``fleet.holds``).
- Passes: runs resume a pass until one finishes every row; the next run starts a new pass, describes every domain
  again and converges (``fleet.domain``). Any manifest may run against the state; rows new to it are new work.

Schema 3 (2 plus holds: a 0.2 tool refuses it, rather than ignore a hold); a 0.1 checkpoint (fingerprint-bound, no
schema version) or a schema 2 one is upgraded in place when opened.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio

from fleet.errors import FleetError, StateWriteError
from fleet.manifest import Row
from fleet.outcome import DONE, OUTCOME_FIELDS, WRITTEN, Outcome, Status, utc_now
from fleet.state.holds import FleetHold, Hold
from fleet.state.ownership import check_side_files, connect, open_owned, warn_if_shared_directory

SCHEMA_VERSION = 3
APPLICATION_ID = 0x43464C54  # "CFLT" in SQLite's header (PRAGMA application_id): this file is a cognito-fleet state
_EXTRA = ("account_id", "region", "user_pool_id", "run_id", "pass", "drift")
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
_COLUMNS = (*OUTCOME_FIELDS, *_EXTRA)
_QUOTED = ", ".join(f'"{c}"' for c in _COLUMNS)
_UPSERT = f"INSERT OR REPLACE INTO outcomes ({_QUOTED}) VALUES ({', '.join('?' * len(_COLUMNS))})"
_HISTORY = (
    "INSERT INTO history (run_id, at, account_id, region, user_pool_id, domain, certificate_before, "
    "certificate_after, status, error_code, error_message, attempts, drift, cloudfront_domain, started_at, edge, "
    "edge_not_after, written_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_MOVE = "INSERT OR IGNORE INTO moves (domain, target, original, run_id, at) VALUES (?, ?, ?, ?, ?)"
RESUME, CONVERGE = "resume", "converge"


def _logged(
    act: str,
    at: str,
    who: str,
    domain: str | None = None,
    certificate: str | None = None,
    rollback_id: str | None = None,
    reason: str | None = None,
) -> tuple[str, tuple[object, ...]]:
    """A line of ``hold_log``: every hold and release, kept."""
    return (
        "INSERT INTO hold_log (at, act, domain, certificate_arn, rollback_id, who, reason) VALUES (?,?,?,?,?,?,?)",
        (at, act, domain, certificate, rollback_id, who, reason),
    )


class CheckpointError(FleetError):
    """The state file cannot be used (not a cognito-fleet state, or written by a newer version)."""


def write_failure(path: str, exc: BaseException) -> StateWriteError | None:
    """The state file could not be written, said in one line (None: ``exc`` is not about writing the file).

    SQLite's errors by what the operator must do: SQLITE_FULL (disk, quota, or max_page_count), SQLITE_IOERR,
    SQLITE_READONLY, SQLITE_CANTOPEN (the directory was removed); an OSError from the file system likewise.
    """
    if isinstance(exc, OSError):
        return StateWriteError(path, exc.strerror or str(exc))
    if not isinstance(exc, sqlite3.OperationalError):
        return None
    code = getattr(exc, "sqlite_errorcode", None)
    primary = code & 0xFF if isinstance(code, int) else None
    causes = {
        sqlite3.SQLITE_FULL: "database or disk is full",
        sqlite3.SQLITE_IOERR: "disk I/O error",
        sqlite3.SQLITE_READONLY: "read-only: the file or its file system cannot be written",
        sqlite3.SQLITE_CANTOPEN: "cannot open it: its directory may have been removed",
    }
    if primary in causes:
        return StateWriteError(path, causes[primary])
    # Without an error code (older Pythons; some wrappers), SQLite's own messages for the same four.
    text = str(exc).lower()
    for fragment, code in (
        ("disk is full", sqlite3.SQLITE_FULL),
        ("disk i/o error", sqlite3.SQLITE_IOERR),
        ("readonly database", sqlite3.SQLITE_READONLY),
        ("unable to open database", sqlite3.SQLITE_CANTOPEN),
    ):
        if fragment in text:
            return StateWriteError(path, causes[code])
    return None


# The name 0.1 gave it; kept so that callers catching it keep working.
CheckpointMismatch = CheckpointError


def _identify(db: sqlite3.Connection, path: str, size: int) -> bool:
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


@dataclass(frozen=True, slots=True)
class Stored:
    """A domain's latest outcome with the state's bookkeeping: which pass recorded it, and whether it drifted."""

    outcome: Outcome
    pass_: int
    drift: bool


class _Batch:
    """Statements committed together, and the event their callers wait on."""

    __slots__ = ("done", "error", "statements")

    def __init__(self) -> None:
        self.statements: list[tuple[str, tuple[object, ...]]] = []
        self.done = anyio.Event()
        self.error: Exception | None = None


class Checkpoint:
    """The state file. ``begin`` a run before recording, ``finish`` it after."""

    def __init__(self, path: str | Path, create: bool = True) -> None:
        """Open the state at ``path`` (``create``: a new one where no file exists). A file that is not a
        cognito-fleet state, or that someone else could control, is refused (FleetError, exit 2), untouched."""
        self.path = str(path)
        where = Path(self.path)
        if create:
            where.parent.mkdir(parents=True, exist_ok=True)
        warn_if_shared_directory(where)
        check_side_files(where)
        # Kept open while the state is: SQLite's connections are checked against it, and closing a descriptor
        # of the file would drop SQLite's POSIX locks on it.
        self._fd = open_owned(where, create)
        try:
            self._db = connect(where, self._fd)
            try:
                stamp = _identify(self._db, self.path, os.fstat(self._fd).st_size)
                self._db.execute("PRAGMA journal_mode=WAL")
                # FULL: an in-flight mark must survive a power cut, not only a killed process.
                self._db.execute("PRAGMA synchronous=FULL")
                if stamp:
                    self._db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                self._db.executescript(SCHEMA)
            except sqlite3.DatabaseError as exc:  # a full disk at open is that, not a foreign file
                raise write_failure(self.path, exc) or CheckpointError(
                    f"{self.path}: not a cognito-fleet state file ({exc})"
                ) from None
            self._upgrade()
            self._add_columns()
            # Reads get a connection of their own: on the writer's, a lookup from the event loop waited for the
            # commit (and fsync) in progress in the writer thread; in WAL mode a second connection reads at once.
            self._reader = connect(where, self._fd)
            check_side_files(where)
        except BaseException:
            self.close()
            raise
        self._open = _Batch()
        self._committing = False
        self.run_id, self.pass_, self.mode = "", 0, RESUME

    # ---- schema ------------------------------------------------------------------------------------------------
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
        for column in _EXTRA:
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

    def _one(self, sql: str, params: tuple[object, ...] = ()) -> Any:
        return self._reader.execute(sql, params).fetchone()

    # ---- runs and passes ---------------------------------------------------------------------------------------
    def begin(self, run_id: str, manifest: str, rows: int, info: dict[str, object] | None = None) -> str:
        """Start a run: it resumes the current pass, or (when the last run finished every row) starts a new pass
        that converges. Returns the mode."""
        last = self._one("SELECT pass, complete FROM runs ORDER BY rowid DESC LIMIT 1")
        if last is None:
            self.pass_, self.mode = 1, CONVERGE
        elif last[1]:
            self.pass_, self.mode = int(last[0]) + 1, CONVERGE
        else:
            self.pass_, self.mode = int(last[0]), RESUME
        self.run_id = run_id
        self._write(
            [
                (
                    "INSERT INTO runs (run_id, pass, mode, manifest, rows, started_at, info) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (run_id, self.pass_, self.mode, manifest, rows, utc_now(), json.dumps(info or {}, sort_keys=True)),
                )
            ]
        )
        return self.mode

    def finish(self, counts: dict[str, int], complete: bool) -> None:
        """End the run: ``complete`` when every row of its manifest has a final outcome in this pass."""
        self._write(
            [
                (
                    "UPDATE runs SET finished_at = ?, complete = ?, counts = ? WHERE run_id = ?",
                    (utc_now(), int(complete), json.dumps(counts, sort_keys=True), self.run_id),
                )
            ]
        )

    def is_done(self, row: Row, stored: Stored | None) -> bool:
        """Resuming: the row ended for good earlier in this pass, for the same target: nothing to call."""
        return (
            self.mode == RESUME
            and stored is not None
            and stored.pass_ == self.pass_
            and stored.outcome.status in DONE
            and stored.outcome.certificate_arn == row.certificate_arn
        )

    # ---- outcomes ----------------------------------------------------------------------------------------------
    def get(self, domain: str) -> Outcome | None:
        stored = self.stored(domain)
        return stored.outcome if stored else None

    def stored(self, domain: str) -> Stored | None:
        row = self._one(f"SELECT {_QUOTED} FROM outcomes WHERE domain = ?", (domain,))
        if row is None:
            return None
        values = dict(zip(_COLUMNS, row, strict=True))
        outcome = Outcome(**{k: values[k] for k in OUTCOME_FIELDS}, drift=bool(values["drift"]))
        outcome.status = Status(values["status"])
        return Stored(outcome, int(values["pass"] or 0), bool(values["drift"]))

    def original(self, domain: str, target: str) -> str | None:
        """The certificate ``domain`` had before the tool first moved it to ``target``, if it ever did."""
        row = self._one("SELECT original FROM moves WHERE domain = ? AND target = ?", (domain, target))
        return None if row is None else str(row[0])

    def drifted(self) -> int:
        """Domains this run found moved off their target by someone else (and wrote again)."""
        row = self._one("SELECT COUNT(DISTINCT domain) FROM history WHERE run_id = ? AND drift = 1", (self.run_id,))
        return int(row[0])

    async def record(self, outcome: Outcome, row: Row | None = None) -> None:
        """Store ``outcome`` (and its history line; a write's move); returns once durable (committed, fsynced)."""
        values = outcome.as_dict()
        where = (row.account_id, row.region, row.user_pool_id) if row else (None, None, None)
        statements = [
            (_UPSERT, (*(values[c] for c in OUTCOME_FIELDS), *where, self.run_id, self.pass_, int(outcome.drift))),
            (
                _HISTORY,
                (
                    self.run_id,
                    outcome.finished_at or utc_now(),
                    *where,
                    outcome.domain,
                    outcome.previous_certificate_arn,
                    outcome.certificate_arn,
                    values["status"],
                    outcome.error_code,
                    outcome.error_message,
                    outcome.attempts,
                    int(outcome.drift),
                    outcome.cloudfront_domain,
                    outcome.started_at,
                    outcome.edge,
                    outcome.edge_not_after,
                    outcome.written_at,
                ),
            ),
        ]
        previous = outcome.previous_certificate_arn
        if outcome.status is Status.IN_FLIGHT and previous and previous != outcome.certificate_arn:
            statements.append((_MOVE, (outcome.domain, outcome.certificate_arn, previous, self.run_id, utc_now())))
        await self._commit(statements)

    async def _commit(self, statements: list[tuple[str, tuple[object, ...]]]) -> None:
        # Group commit: statements that arrive while a commit is running go together in the next one, so a
        # busy run pays one thread hand-off and one fsync per batch instead of per row (a hand-off per write
        # was a tenth of a run's CPU: benchmarks/README.md). Every caller still returns only once its own
        # statements are durable. The first caller to find no commit running does the committing.
        batch = self._open
        batch.statements.extend(statements)
        if not self._committing:
            self._committing = True
            try:
                with anyio.CancelScope(shield=True):  # the waiters' statements must not be left behind
                    while self._open.statements:
                        current, self._open = self._open, _Batch()
                        try:
                            await anyio.to_thread.run_sync(self._write, current.statements)
                        except Exception as exc:  # every statement of the batch shares the failure
                            current.error = exc
                        current.done.set()
            finally:
                self._committing = False
        await batch.done.wait()
        if batch.error is not None:
            raise batch.error

    def _write(self, statements: list[tuple[str, tuple[object, ...]]]) -> None:
        """One transaction, one fsync (the group commit calls it in a thread, off the event loop); a file that
        cannot be written raises StateWriteError, and the transaction is rolled back whole."""
        try:
            with self._db:
                self._db.execute("BEGIN")
                for sql, params in statements:
                    self._db.execute(sql, params)
        except (sqlite3.Error, OSError) as exc:
            failure = write_failure(self.path, exc)
            if failure is None:
                raise
            raise failure from None

    def last_write(self, domain: str, target: str, upto: int | None = None) -> tuple[str, str] | None:
        """(run id, time) of the tool's last answered write of ``domain`` to ``target`` (up to history line
        ``upto``): the write that put it there.

        States from before ``written_at`` was recorded fall back to the first move (its run and in-flight time).
        """
        row = self._one(
            "SELECT run_id, written_at FROM history WHERE domain = ? AND certificate_after = ? "
            "AND written_at IS NOT NULL AND id <= ? ORDER BY id DESC LIMIT 1",
            (domain, target, upto if upto is not None else 2**62),
        )
        if row is None:
            row = self._one("SELECT run_id, at FROM moves WHERE domain = ? AND target = ?", (domain, target))
        return None if row is None or row[1] is None else (str(row[0]), str(row[1]))

    def writes(self, run_id: str | None = None) -> int:
        """Domains that run ``run_id`` (default: this one) wrote: UpdateUserPoolDomain calls that succeeded."""
        row = self._one(
            "SELECT COUNT(DISTINCT domain) FROM history WHERE run_id = ? AND written_at IS NOT NULL",
            (run_id or self.run_id,),
        )
        return int(row[0])

    def run_info(self, run_id: str) -> dict[str, Any] | None:
        """The runs table's line of ``run_id``, with its recorded info (who, where, with what) merged in."""
        cursor = self._reader.execute("SELECT * FROM runs WHERE run_id = ?", (run_id,))
        row = cursor.fetchone()
        if row is None:
            return None
        line = dict(zip([d[0] for d in cursor.description], row, strict=True))
        info = json.loads(line.pop("info", None) or "{}")
        return {**info, **line}

    def written_at(self, domain: str, target: str) -> str | None:
        """When the tool last marked a write of ``domain`` to ``target`` (the in-flight mark), if it ever did."""
        row = self._one(
            "SELECT MAX(at) FROM history WHERE domain = ? AND certificate_after = ? AND status = ?",
            (domain, target, str(Status.IN_FLIGHT)),
        )
        return None if row is None or row[0] is None else str(row[0])

    # ---- holds (fleet.holds) -----------------------------------------------------------------------------------
    def holds(self) -> dict[str, Hold]:
        """Every domain a rollback holds on its previous certificate, by domain."""
        cursor = self._reader.execute("SELECT domain, certificate_arn, rollback_id, at, who FROM holds")
        return {r[0]: Hold(*r) for r in cursor}

    def fleet_hold(self) -> FleetHold | None:
        row = self._one("SELECT value FROM meta WHERE key = 'fleet_hold'")
        return None if row is None else FleetHold(**json.loads(row[0]))

    def hold_domains(self, held: Iterable[tuple[str, str]], rollback_id: str, who: str) -> None:
        """Hold each (domain, certificate) for rollback ``rollback_id``: one transaction, logged."""
        at = utc_now()
        statements: list[tuple[str, tuple[object, ...]]] = []
        for domain, certificate in held:
            statements.append(
                ("INSERT OR REPLACE INTO holds VALUES (?, ?, ?, ?, ?)", (domain, certificate, rollback_id, at, who))
            )
            statements.append(_logged("hold", at, who, domain, certificate, rollback_id))
        self._write(statements)

    def release_domains(self, domains: Iterable[str] | None, who: str) -> list[str]:
        """Release the holds of ``domains`` (None: every one); returns the domains released."""
        at = utc_now()
        held = {r[0]: r for r in self._reader.execute("SELECT domain, certificate_arn, rollback_id FROM holds")}
        released = sorted(held if domains is None else set(domains) & set(held))
        statements: list[tuple[str, tuple[object, ...]]] = []
        for domain in released:
            _, certificate, rollback_id = held[domain]
            statements.append(("DELETE FROM holds WHERE domain = ?", (domain,)))
            statements.append(_logged("release", at, who, domain, certificate, rollback_id))
        self._write(statements)
        return released

    def set_fleet_hold(self, who: str, reason: str | None) -> None:
        """Hold the whole fleet (``reason``), or release it (None); logged either way."""
        at = utc_now()
        if reason is None:
            self._write([("DELETE FROM meta WHERE key = 'fleet_hold'", ()), _logged("release-fleet", at, who)])
        else:
            value = json.dumps({"who": who, "reason": reason, "at": at})
            self._write(
                [
                    ("INSERT OR REPLACE INTO meta VALUES ('fleet_hold', ?)", (value,)),
                    _logged("hold-fleet", at, who, reason=reason),
                ]
            )

    def hold_log(self, domain: str | None = None) -> list[dict[str, Any]]:
        """Every hold and release (of one domain, and the fleet's, when ``domain`` is given), oldest first."""
        where = " WHERE domain = ? OR domain IS NULL" if domain is not None else ""
        cursor = self._reader.execute(f"SELECT * FROM hold_log{where} ORDER BY id", (domain,) if domain else ())
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, r, strict=True)) for r in cursor]

    # ---- history -----------------------------------------------------------------------------------------------
    def runs(self) -> list[dict[str, Any]]:
        cursor = self._reader.execute(
            "SELECT run_id, pass, mode, manifest, rows, started_at, finished_at, complete, counts FROM runs "
            "ORDER BY rowid"
        )
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, r, strict=True)) for r in cursor]

    def history(self, domain: str | None = None, run_id: str | None = None) -> Iterable[dict[str, Any]]:
        """History lines, oldest first, of one domain and/or one run (all when neither is given)."""
        where, params = [], []
        if domain is not None:
            where.append("domain = ?")
            params.append(domain)
        if run_id is not None:
            where.append("run_id = ?")
            params.append(run_id)
        cursor = self._reader.execute(
            "SELECT * FROM history" + (f" WHERE {' AND '.join(where)}" if where else "") + " ORDER BY id", params
        )
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, r, strict=True)) for r in cursor]

    def close(self) -> None:
        for name in ("_reader", "_db"):  # those opened (this also runs when opening failed half-way)
            db = self.__dict__.pop(name, None)
            if db is not None:
                db.close()
        if self._fd >= 0:
            os.close(self._fd)  # after SQLite's own: closing it earlier would drop their locks
            self._fd = -1
