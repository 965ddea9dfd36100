"""Where a job keeps its state, and the one place it is opened (``state_at``): a local SQLite file
(``fleet.state.checkpoint``) beside its lock file, or ``s3://BUCKET/KEY`` (``S3State``: fleet/state/s3_state.py,
locked by fleet/state/s3_lock.py), with the same four methods.

Plans and the prompt's pre-check record into a throw-away state (``scratch``) that carries the run's holds, so they
leave held domains as the run would.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

from fleet.aws.credentials import AwsSettings
from fleet.aws.stop import Stop
from fleet.migration.state_backend import S3State
from fleet.state.checkpoint import Checkpoint
from fleet.state.holds import Hold
from fleet.state.lock import CheckpointLock
from fleet.state.s3_objects import S3Location


class LocalState:
    """The state at a local path: read for its holds, locked for one run (LockHeld), opened (created if new)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __str__(self) -> str:
        return str(self.path)

    def holds(self) -> tuple[str | None, dict[str, Hold]]:
        """The fleet hold (the one line a held job prints; None: not held) and the domains' holds; neither when
        there is no state yet (read only: never creates one)."""
        if not self.path.exists():
            return None, {}
        with Checkpoint(self.path, create=False) as state:
            fleet = state.fleet_hold()
            return (None if fleet is None else fleet.message(str(self.path))), state.holds()

    def lock(self, stop: Stop | None = None) -> contextlib.AbstractContextManager[object]:
        """One run at a time: held from before the prompt's pre-check until the report is written (the kernel
        drops it with its process: nothing can take it away, ``stop`` is not needed)."""
        return CheckpointLock(self.path)

    def open(self) -> Checkpoint:
        """The state itself, as a context manager (closed on leaving the ``with``)."""
        return Checkpoint(self.path)


StatePath = Path | S3Location


def state_at(path: StatePath, aws: AwsSettings | None = None, run_id: str = "") -> LocalState | S3State:
    """The state a job names (``--checkpoint``): an ``s3://`` one is reached with ``aws`` (the hub identity) and
    written as ``run_id``."""
    if isinstance(path, S3Location):
        return S3State(path, aws or AwsSettings(), run_id)
    return LocalState(path)


@contextlib.contextmanager
def scratch(holds: Mapping[str, Hold], prefix: str = "cognito-fleet-plan-") -> Iterator[Checkpoint]:
    """A throw-away state (removed on leaving) holding ``holds``, for a plan pass."""
    with tempfile.TemporaryDirectory(prefix=prefix) as where, Checkpoint(Path(where) / "plan.sqlite") as state:
        for hold in holds.values():
            state.hold_domains([(hold.domain, hold.certificate_arn)], hold.rollback_id, hold.who)
        yield state
