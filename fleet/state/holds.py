"""Holds: a rollback keeps its domains on their previous certificate until someone releases them, and an operator
can hold the whole fleet during an incident. Both live in the state (``Checkpoint``), so cron cannot undo them.

- A *domain hold* is written by ``rollback``: the domain stays on ``certificate_arn`` (the one the tool moved it
  from); a run whose row would move it elsewhere reports it ``held`` and calls nothing for it.
- The *fleet hold* (``hold STATE --reason``) stops every run on that state before any AWS call: exit 0, one line.
- ``release`` lifts them; every hold and release is kept in the state's history (``hold_log``).
"""

from __future__ import annotations

import getpass
import os
import secrets
import socket
from dataclasses import dataclass
from datetime import UTC, datetime


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
