"""The row store: each domain's latest outcome, its history line, and a write's move, committed in groups."""

from __future__ import annotations

from dataclasses import dataclass

import anyio

from fleet.manifest import Row
from fleet.outcome import DONE, OUTCOME_FIELDS, Outcome, Status, utc_now
from fleet.state.base import CheckpointBase
from fleet.state.runs import RESUME
from fleet.state.schema import EXTRA_COLUMNS

_COLUMNS = (*OUTCOME_FIELDS, *EXTRA_COLUMNS)
_QUOTED = ", ".join(f'"{c}"' for c in _COLUMNS)
_UPSERT = f"INSERT OR REPLACE INTO outcomes ({_QUOTED}) VALUES ({', '.join('?' * len(_COLUMNS))})"
_HISTORY = (
    "INSERT INTO history (run_id, at, account_id, region, user_pool_id, domain, certificate_before, "
    "certificate_after, status, error_code, error_message, attempts, drift, cloudfront_domain, started_at, edge, "
    "edge_not_after, written_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_MOVE = "INSERT OR IGNORE INTO moves (domain, target, original, run_id, at) VALUES (?, ?, ?, ?, ?)"


@dataclass(frozen=True, slots=True)
class Stored:
    """A domain's latest outcome with the state's bookkeeping: which pass recorded it, and whether it drifted."""

    outcome: Outcome
    pass_: int
    drift: bool


class CommitBatch:
    """Statements committed together, and the event their callers wait on."""

    __slots__ = ("done", "error", "statements")

    def __init__(self) -> None:
        self.statements: list[tuple[str, tuple[object, ...]]] = []
        self.done = anyio.Event()
        self.error: Exception | None = None


class RowsMixin(CheckpointBase):
    """Outcomes by domain; ``record`` returns once the outcome is durable (group commit: one fsync per batch)."""

    run_id: str
    pass_: int
    mode: str
    _open: CommitBatch
    _committing: bool

    def is_done(self, row: Row, stored: Stored | None) -> bool:
        """Resuming: the row ended for good earlier in this pass, for the same target: nothing to call."""
        return (
            self.mode == RESUME
            and stored is not None
            and stored.pass_ == self.pass_
            and stored.outcome.status in DONE
            and stored.outcome.certificate_arn == row.certificate_arn
        )

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

    def managed(self) -> list[Row]:
        """Every domain the state holds an outcome for, as a row to its last target (the watcher's fleet); the
        role is the default one (the state keeps no role or external id)."""
        cursor = self._reader.execute(
            "SELECT account_id, region, user_pool_id, domain, certificate_arn FROM outcomes "
            "WHERE account_id IS NOT NULL AND region IS NOT NULL AND user_pool_id IS NOT NULL ORDER BY domain"
        )
        return [Row(0, *map(str, values)) for values in cursor]

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
                        current, self._open = self._open, CommitBatch()
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
