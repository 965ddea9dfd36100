"""A run's facts, as the metrics and the notifications read them: every domain's status, edge and expiries (from
the report the run wrote, and the certificate expiries the engine saw), the exit code, when, and what it was of.

Read, never computed twice: the report is the run's one account of its domains (``fleet.records.report``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from fleet.manifest import Row
from fleet.migration.engine import Observer
from fleet.outcome import Outcome
from fleet.records.report import jsonl_path


def epoch(stamp: object) -> float | None:
    """An ISO 8601 time (the report's and the state's, with a Z) as seconds since the epoch; None if not one."""
    if not isinstance(stamp, str) or not stamp:
        return None
    try:
        moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment.timestamp() if moment.tzinfo else None


@dataclass(frozen=True, slots=True)
class DomainFacts:
    account: str
    region: str
    domain: str
    status: str
    edge: str | None = None  # served / old / other / unreachable / unchecked; None: not looked at
    edge_not_after: float | None = None  # NotAfter of what the edge served (epoch seconds)
    certificate_not_after: float | None = None  # NotAfter of the certificate Cognito is on
    error_code: str | None = None
    error_message: str | None = None


@dataclass(frozen=True, slots=True)
class RunFacts:
    """What one run (or plan, or check) of one manifest ended with."""

    command: str  # run | plan | check
    manifest: str
    shard: str  # "" when not sharded
    exit_code: int
    finished_at: float  # epoch seconds
    domains: tuple[DomainFacts, ...] = ()
    held: str | None = None  # the fleet hold's line, when the fleet is held
    stopped: str | None = None  # why the run stopped early
    run_id: str = ""
    last_success: float | None = None  # the last run of this job that exited 0 (this one, or carried)
    extra: Mapping[str, Any] = field(default_factory=dict)  # what a notification adds (the check's findings)

    @property
    def identity(self) -> dict[str, str]:
        """The labels that tell this job's series from another's (two manifests' textfiles in one node_exporter
        directory, or one Pushgateway): the Pushgateway's grouping key too."""
        return {"command": self.command, "manifest": self.manifest, "shard": self.shard}


class Expiries(Observer):
    """The engine's observer that keeps each domain's certificate expiry (``Outcome.certificate_not_after``, set
    when ``EngineSettings.expiry`` asks for it): not in the report, so the metrics get it here."""

    def __init__(self) -> None:
        self.not_after: dict[str, float] = {}

    def row_done(self, row: Row, outcome: Outcome, seconds: float) -> None:
        moment = epoch(outcome.certificate_not_after)
        if moment is not None:
            self.not_after[row.domain] = moment


def domains_of(report: Path, not_after: Mapping[str, float] | None = None) -> tuple[DomainFacts, ...]:
    """Every line of the report's JSON Lines twin (the exact values; absent when no report was written yet)."""
    path = jsonl_path(report)
    if not path.exists():
        return ()
    out = []
    with path.open(encoding="utf-8") as fh:
        for text in fh:
            if not text.strip():
                continue
            line = json.loads(text)
            domain = str(line["domain"])
            out.append(
                DomainFacts(
                    account=str(line["account_id"]),
                    region=str(line["region"]),
                    domain=domain,
                    status=str(line["status"]),
                    edge=line.get("edge") or None,
                    edge_not_after=epoch(line.get("edge_not_after")),
                    certificate_not_after=(not_after or {}).get(domain),
                    error_code=line.get("error_code") or None,
                    error_message=line.get("error_message") or None,
                )
            )
    return tuple(out)
