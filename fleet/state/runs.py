"""Runs and passes, and what the history says of them: who ran what, which run wrote which domain, and when."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from fleet.outcome import Status, utc_now
from fleet.state.base import CheckpointBase

RESUME, CONVERGE = "resume", "converge"


class RunsMixin(CheckpointBase):
    """``begin``/``finish`` a run; its pass and mode; the runs table and the append-only history."""

    run_id: str
    pass_: int
    mode: str

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
