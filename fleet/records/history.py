"""`cognito-fleet history`: what the state file knows, by run and by domain; a past run's report written again."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fleet.outcome import WRITTEN
from fleet.records.report import write_lines
from fleet.state.checkpoint import Checkpoint


def runs_table(state: Checkpoint) -> list[str]:
    """One line per run, oldest first."""
    lines = []
    for run in state.runs():
        counts = ", ".join(f"{k}={v}" for k, v in json.loads(run["counts"] or "{}").items()) or "-"
        end = run["finished_at"] or "not finished"
        whole = "every row ended" if run["complete"] else "rows left"
        lines.append(
            f"{run['run_id']}  pass {run['pass']} ({run['mode']})  {run['started_at'] or '?'} .. {end}  "
            f"{run['rows'] if run['rows'] is not None else '?'} rows: {counts}; {whole}  {run['manifest'] or ''}"
        )
    return lines


def history_lines(state: Checkpoint, domain: str | None, run_id: str | None) -> list[str]:
    """The history of a domain and/or a run, one line per record (writes in flight included)."""
    out = []
    for line in state.history(domain, run_id):
        drift = " drift" if line["drift"] else ""
        error = f" {line['error_code']}" if line["error_code"] else ""
        out.append(
            f"{line['at']}  {line['run_id']}  {line['account_id'] or '?'}/{line['region'] or '?'}  {line['domain']}  "
            f"{line['certificate_before'] or '-'} -> {line['certificate_after']}  {line['status']}{error}{drift}"
        )
    return out


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


def holds_lines(state: Checkpoint, domain: str | None = None) -> list[str]:
    """Every hold and release (a domain's and the fleet's, when ``domain`` is given), oldest first; and who holds
    what now."""
    out = []
    for act in state.hold_log(domain):
        what = act["domain"] or "the fleet"
        detail = f" on {act['certificate_arn']} by {act['rollback_id']}" if act["rollback_id"] else ""
        reason = f" ({act['reason']})" if act["reason"] else ""
        out.append(f"{act['at']}  {act['act']}  {what}{detail}{reason}  by {act['who'] or '?'}")
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
