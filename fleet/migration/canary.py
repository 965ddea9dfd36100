"""The canary: per account, the first row that gets as far as a write goes first and must end verified before the
rest of the fleet starts; rows that fail before any write are passed over (they never block the fleet)."""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, Protocol

from fleet.aws.credentials import AccountSession, Hub
from fleet.aws.stop import Stop
from fleet.manifest import Row, group_by
from fleet.migration.row import Mode, RowContext
from fleet.outcome import Outcome, Status
from fleet.state.checkpoint import Checkpoint

CANARY_OK = frozenset({Status.VERIFIED})  # a canary is a write, verified (unchanged rows are passed over)


class _Settings(Protocol):
    @property
    def mode(self) -> Mode: ...


class _Notes(Protocol):
    @property
    def notes(self) -> list[str]: ...


class _Observer(Protocol):
    def note(self, name: str, level: str, fields: dict[str, Any]) -> None: ...


class Runner(Protocol):
    """What the canary needs of the engine's runner, by shape: the canary does not import the engine (which calls
    it), so the two modules make no import cycle."""

    @property
    def settings(self) -> _Settings: ...
    @property
    def tally(self) -> _Notes: ...
    @property
    def obs(self) -> _Observer: ...
    @property
    def stop(self) -> Stop: ...
    @property
    def checkpoint(self) -> Checkpoint: ...
    @property
    def recorded(self) -> set[str]: ...
    async def _contexts(self, session: AccountSession, rows: list[Row], mode: Mode) -> dict[str, RowContext]: ...
    async def _row(self, ctx: RowContext, row: Row) -> Outcome | None: ...
    async def _accounts(
        self, hub: Hub, groups: Iterable[list[Row]], work: Callable[[AccountSession, list[Row]], Awaitable[None]]
    ) -> None: ...


async def run_canaries(self: Runner, hub: Hub, rows: Sequence[Row], count: int) -> bool:
    """Per account, in manifest order, the first row that gets written (or was, by an earlier run: then it is
    described) is the account's canary, and is waited for. Rows that fail before any write, rows already on
    their target, and accounts whose role cannot be assumed are recorded as they end and passed over (noted,
    not a canary failure). Accounts are taken until ``count`` canaries are verified or none is left. False
    when a canary did not end verified: the run is stopped."""
    groups = list(group_by(rows, "account_id").values())
    mode = dataclasses.replace(self.settings.mode, wait=True)
    picked: dict[str, Row] = {}

    async def work(session: AccountSession, group: list[Row]) -> None:
        contexts = await self._contexts(session, group, mode)
        for row in group:
            outcome = await self._row(contexts[row.region], row)
            if outcome is None:
                return  # the run is stopping
            if outcome.status not in (Status.UNCHANGED, Status.DRIFTED_SINCE_PLAN) and (
                outcome.status is not Status.FAILED or outcome.after_write
            ):
                picked[row.account_id] = row
                return

    verified, taken = 0, 0
    while verified < count and taken < len(groups) and not self.stop.requested:
        wave = groups[taken : taken + count - verified]
        taken += len(wave)
        await self._accounts(hub, wave, work)
        for group in wave:
            canary = picked.get(group[0].account_id)
            if canary is None:
                if not self.stop.requested:
                    self.tally.notes.append(_no_canary(self, group))
                continue
            outcome = self.checkpoint.get(canary.domain)
            if outcome is None or outcome.status not in CANARY_OK:
                what = f"{outcome.status} {outcome.error_code or ''}".strip() if outcome else "not finished"
                self.stop.request(f"canary failed: {canary.domain} ended {what}", abort=True)
                self.obs.note(
                    "canary_failed",
                    "error",
                    {"domain": canary.domain, "ended": what, "message": "no other row is started: exit 1"},
                )
                return False
            verified += 1
    if verified and not self.stop.requested:
        domains = sorted(r.domain for r in picked.values())
        self.obs.note(
            "canary_passed",
            "info",
            {"domains": domains, "message": f"{verified} canary domains verified: the rest of the fleet starts"},
        )
    return True


def _no_canary(self: Runner, group: list[Row]) -> str:
    """Why an account gave no canary: what its rows ended as (before any write)."""
    ended = collections.Counter(
        f"{o.status}" + (f" {o.error_code}" if o.error_code else "")
        for r in group
        if (o := self.checkpoint.get(r.domain)) is not None and r.domain in self.recorded
    )
    what = ", ".join(f"{n} {k}" for k, n in sorted(ended.items())) or "nothing recorded"
    return f"canary: account {group[0].account_id} has no row to write ({what}); no canary there, not a failure"
