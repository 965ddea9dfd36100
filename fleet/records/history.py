"""`cognito-fleet history`: what the state file knows, in time order (its runs, holds and releases; a domain's
records and its holds; a run's records), each listing under a header line; a past run's report written again.

A run is named with what it applied: ``(plan ID, pinned|NOT pinned)`` for `run --plan` (the plan facts its runs-table
line keeps), ``(rollback ID)`` for a rollback manifest's run (the id its rollback record gave it, which the holds
carry too), so the forward write, the hold, the rollback's write and the release read as one story.
"""

from __future__ import annotations

import heapq
import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from fleet.outcome import WRITTEN
from fleet.records.report import write_lines
from fleet.records.rollback import rollback_of
from fleet.state.checkpoint import Checkpoint

RUNS_HEADER = "AT (UTC)  EVENT  RUN (plan, rollback) | DOMAIN  DETAIL"
RECORDS_HEADER = "AT (UTC)  RUN (plan, rollback) | EVENT  ACCOUNT/REGION  DOMAIN  CERTIFICATE BEFORE -> AFTER  STATUS"

Entry = tuple[str, str]  # (when, the line)


def listing(state: Checkpoint, domain: str | None = None, run_id: str | None = None) -> list[str]:
    """What ``history`` prints of one state: a header line, then oldest first the runs, holds and releases (neither
    ``domain`` nor ``run_id``), the domain's records and its (and the fleet's) holds (``domain``), or the run's
    records (``run_id``); then who holds what now. Nothing at all when nothing is recorded."""
    names = RunNames(state)
    if run_id is not None:
        body = [line for _, line in records(state, domain, run_id, names)]
    elif domain is not None:
        body = in_time_order(records(state, domain, None, names), hold_entries(state, domain))
    else:
        body = in_time_order(run_entries(state, names), hold_entries(state))
    if not body:
        return []
    header = RUNS_HEADER if domain is None and run_id is None else RECORDS_HEADER
    return [header, *body, *([] if run_id is not None else held_now(state, domain))]


def in_time_order(*streams: Iterable[Entry]) -> list[str]:
    """The lines of ``streams`` (each oldest first, its own order kept) merged by time; on a tie, an earlier
    stream's line first. Times are the state's (ISO 8601 UTC, milliseconds, Z: they sort as text)."""
    return [line for _, line in heapq.merge(*streams, key=lambda entry: entry[0])]


class RunNames:
    """What each run of a state applied, for its lines: ``(plan ID, pinned)``, ``(rollback ID)``; looked up once."""

    def __init__(self, state: Checkpoint) -> None:
        self._state = state
        self._known: dict[str, str] = {}

    def __call__(self, run_id: str) -> str:
        if run_id not in self._known:
            info = self._state.run_info(run_id) or {}
            self._known[run_id] = run_label(info, _rollback_by_record(info, self._state.path))
        return self._known[run_id]


def run_label(info: dict[str, Any], rollback_id: str | None = None) -> str:
    """`` (plan ID, pinned; rollback ID)`` of a run's recorded info (its runs-table line), or nothing. A rollback
    the run did not record (runs before it did) may be given as ``rollback_id``."""
    parts = []
    rollback = info.get("rollback")
    if isinstance(rollback, dict) and rollback.get("rollback_id"):
        rollback_id = str(rollback["rollback_id"])
    if rollback_id:
        parts.append(f"rollback {rollback_id}")
    plan = info.get("plan")
    if isinstance(plan, dict):
        parts.append(f"plan {plan.get('plan_id') or '?'}, {'pinned' if plan.get('pinned') else 'NOT pinned'}")
    return f" ({'; '.join(parts)})" if parts else ""


def _rollback_by_record(info: dict[str, Any], state: str) -> str | None:
    """For a run that did not record its rollback: the rollback record beside its manifest, if that record names
    this state and was written before the run started (a later rollback to the same file is another one)."""
    if "rollback" in info or not info.get("manifest"):
        return None
    found = rollback_of(str(info["manifest"]))
    if found is None or found["state"] != os.path.abspath(state):
        return None
    return found["rollback_id"] if found["made_at"] <= str(info.get("started_at") or "") else None


def run_entries(state: Checkpoint, names: RunNames) -> Iterator[Entry]:
    """One line per run, by its start."""
    for run in state.runs():
        counts = ", ".join(f"{k}={v}" for k, v in json.loads(run["counts"] or "{}").items()) or "-"
        end = f"ended {run['finished_at']}" if run["finished_at"] else "not finished"
        whole = "every row ended" if run["complete"] else "rows left"
        rows = run["rows"] if run["rows"] is not None else "?"
        yield (
            run["started_at"] or "",
            f"{run['started_at'] or '?'}  run  {run['run_id']}{names(run['run_id'])}  pass {run['pass']} "
            f"({run['mode']}), {end}  {rows} rows: {counts}; {whole}  {run['manifest'] or ''}",
        )


def records(state: Checkpoint, domain: str | None, run_id: str | None, names: RunNames) -> Iterator[Entry]:
    """The history of a domain and/or a run, one line per record (writes in flight included), oldest first."""
    for line in state.history(domain, run_id):
        drift = " drift" if line["drift"] else ""
        error = f" {line['error_code']}" if line["error_code"] else ""
        yield (
            line["at"] or "",
            f"{line['at']}  {line['run_id']}{names(line['run_id'])}  {line['account_id'] or '?'}/"
            f"{line['region'] or '?'}  {line['domain']}  {line['certificate_before'] or '-'} -> "
            f"{line['certificate_after']}  {line['status']}{error}{drift}",
        )


def rewrite_report(state: Checkpoint, run_id: str, out: Path) -> int:
    """The report of run ``run_id`` again, from the history: every domain the run recorded, its last record in
    that run (rows a resumed run skipped were not its work and are not in it). Returns the number of lines."""
    last: dict[str, dict[str, Any]] = {}
    for line in state.history(run_id=run_id):
        last[line["domain"]] = line
    rows = [_report_line(state, line) for line in last.values()]
    write_lines(out, rows)
    return len(rows)


def _report_line(state: Checkpoint, line: dict[str, Any]) -> dict[str, object]:
    status = "skipped" if line["status"] == "in_flight" else line["status"]
    on_target = status in {str(s) for s in WRITTEN} or (status == "failed" and line.get("written_at"))
    write = state.last_write(line["domain"], line["certificate_after"], upto=line["id"]) if on_target else None
    return {
        "account_id": line["account_id"],
        "region": line["region"],
        "user_pool_id": line["user_pool_id"],
        "domain": line["domain"],
        "previous_certificate_arn": line["certificate_before"],
        "certificate_arn": line["certificate_after"],
        "status": status,
        "cloudfront_domain": line["cloudfront_domain"],
        "attempts": line["attempts"],
        "error_code": line["error_code"],
        "error_message": line["error_message"],
        "started_at": line["started_at"],
        "finished_at": line["at"],
        "drift": bool(line["drift"]),
        "edge": line.get("edge"),
        "edge_not_after": line.get("edge_not_after"),
        "run_id": line["run_id"],
        "written_by_run": write[0] if write else None,
        "written_at": write[1] if write else None,
    }


def hold_entries(state: Checkpoint, domain: str | None = None) -> Iterator[Entry]:
    """Every hold and release (a domain's and the fleet's, when ``domain`` is given), oldest first."""
    for act in state.hold_log(domain):
        what = act["domain"] or "the fleet"
        detail = f" on {act['certificate_arn']} by {act['rollback_id']}" if act["rollback_id"] else ""
        reason = f" ({act['reason']})" if act["reason"] else ""
        yield act["at"] or "", f"{act['at']}  {act['act']}  {what}{detail}{reason}  by {act['who'] or '?'}"


def held_now(state: Checkpoint, domain: str | None = None) -> list[str]:
    """Who holds what now: the fleet hold (in the whole state's listing), the rollbacks' holds."""
    out = []
    fleet = state.fleet_hold()
    if fleet is not None and domain is None:
        out.append(f"now: the fleet is held by {fleet.who} since {fleet.at} ({fleet.reason})")
    holds = state.holds()
    held = [domain] if domain in holds else [] if domain else sorted(holds)
    if held:
        out.append(
            f"now held by a rollback: {len(held)} domains"
            + (f" ({', '.join(held[:5])}…)" if len(held) > 5 else f" ({', '.join(held)})")
        )
    return out
