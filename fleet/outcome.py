"""A row's result, as the checkpoint stores it and the report prints it."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any


class Edge(StrEnum):
    """What a domain's edge serves, compared with the row's target (the report's ``edge`` column)."""

    SERVED = "served"  # the target certificate
    OLD = "old"  # the certificate the domain had before (still being distributed, or stuck)
    OTHER = "other"  # some other certificate
    UNREACHABLE = "unreachable"  # no handshake (refused, timeout, DNS, TLS alert): the reason is in the message
    UNCHECKED = "unchecked"  # --no-edge-check: `verified` is Cognito's word only


UNREACHED = "edge not reached: "


def reason_kind(message: str) -> str:
    """An unreachable edge's reason without its address, SNI name and tries: what the summary groups by."""
    return message.removeprefix(UNREACHED).split("; ", 1)[0].strip() or "unknown"


class Status(StrEnum):
    PLANNED = "planned"  # plan only: a run would write the new certificate
    UNCHANGED = "unchanged"  # already on the target certificate: no write
    UPDATED = "updated"  # written by an earlier version of the tool (read from old checkpoints/reports)
    PENDING = "pending"  # written; Cognito is still distributing it (UPDATING): the next run verifies
    VERIFIED = "verified"  # written, and Cognito reports it ACTIVE on the new certificate
    FAILED = "failed"  # see error_code / error_message; retried on the next run
    SKIPPED = "skipped"  # not attempted (the run stopped before reaching it; error_message says why)
    HELD = "held"  # not attempted: held on its previous certificate by a rollback until released (fleet/state/holds.py)
    DRIFTED_SINCE_PLAN = "drifted-since-plan"  # run --plan: not written, the fleet changed since the plan (plan_file)
    IN_FLIGHT = "in_flight"  # checkpoint only: a write was about to be sent


DONE = frozenset({Status.UNCHANGED, Status.VERIFIED, Status.UPDATED})  # never called again
WRITTEN = frozenset({Status.UPDATED, Status.PENDING, Status.VERIFIED})  # rollback candidates
SUCCESS = DONE | {Status.PENDING, Status.PLANNED, Status.HELD}  # exit code 0 when every row is one of these


@dataclass(slots=True)
class Outcome:
    domain: str
    status: Status
    certificate_arn: str
    previous_certificate_arn: str | None = None
    cloudfront_domain: str | None = None
    attempts: int = 0
    error_code: str | None = None
    error_message: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    edge: str | None = None  # what the domain's edge served (an ``Edge`` above), None where not checked
    edge_not_after: str | None = None  # NotAfter of the certificate the edge served
    written_at: str | None = None  # when this run's UpdateUserPoolDomain was answered (None: this run wrote nothing)
    drift: bool = False  # seen moved off its target by someone else (and written again): not a stored column
    # The row got as far as a write (this run, or the tool's earlier write it found): a failure now is what the
    # failure budget and the canary exist for; before a write (pre-flight, access) it is not. Not stored.
    after_write: bool = False
    # NotAfter of the certificate Cognito is on when the row ended (the metrics' expiry), when asked for and
    # describable. Not stored: the next run looks again.
    certificate_not_after: str | None = None
    # A plan's: DescribeCertificate's Certificate of the current certificate and of the target, by ARN (those ACM
    # described), for the plan file's certificate facts. Not stored.
    certificates: dict[str, dict[str, Any]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        d = {name: getattr(self, name) for name in OUTCOME_FIELDS}  # flat: no deep copy as asdict() makes
        d["status"] = str(self.status)
        return d


_TRANSIENT = ("drift", "after_write", "certificate_not_after", "certificates")
OUTCOME_FIELDS = tuple(f.name for f in fields(Outcome) if f.name not in _TRANSIENT)


def stamp(moment: datetime) -> str:
    """ISO 8601 in UTC with milliseconds and a Z, as the checkpoint and report store times."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def utc_now() -> str:
    return stamp(datetime.now(UTC))
