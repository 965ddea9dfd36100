"""Holds: a rollback keeps its domains on their previous certificate until someone releases them, and an operator
can hold the whole fleet during an incident. Both live in the state (``Checkpoint``), so cron cannot undo them.

- A *domain hold* is written by ``rollback``: the domain stays on ``certificate_arn`` (the one the tool moved it
  from); a run whose row would move it elsewhere reports it ``held`` and calls nothing for it.
- The *fleet hold* (``hold STATE --reason``) stops every run on that state before any AWS call: exit 0, one line.
- ``release`` lifts them; every hold and release is kept in the state's history (``hold_log``).
"""

from __future__ import annotations

import getpass
import json
import os
import secrets
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fleet.outcome import utc_now
from fleet.state.base import CheckpointBase


@dataclass(frozen=True, slots=True)
class Hold:
    """A domain held on ``certificate_arn`` by rollback ``rollback_id``."""

    domain: str
    certificate_arn: str
    rollback_id: str
    at: str
    who: str

    def message(self, state: str) -> str:
        return (
            f"held on its previous certificate {self.certificate_arn} by rollback {self.rollback_id} at {self.at}; "
            f"to move it forward again: cognito-fleet release {state} --domain {self.domain}"
        )


@dataclass(frozen=True, slots=True)
class FleetHold:
    """The whole fleet held: no run on the state writes (or calls) anything until released."""

    who: str
    reason: str
    at: str

    def message(self, state: str) -> str:
        return (
            f"held: the fleet is held by {self.who} since {self.at} ({self.reason}); nothing was called or written; "
            f"to resume: cognito-fleet release {state}"
        )


def who() -> str:
    """The operator, for the record: user@host (no secret; the same identity the lock file names)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (a container's arbitrary uid)
        user = f"uid {os.getuid()}"
    return f"{user}@{socket.gethostname()}"


def new_rollback_id() -> str:
    """Unique in the state's history, readable in a report: when, and a random part."""
    return "rollback-" + datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + f"-{secrets.token_hex(3)}"


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


class HoldsMixin(CheckpointBase):
    """Domain holds (a rollback's) and the fleet hold (an operator's), with their log."""

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
