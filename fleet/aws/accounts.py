"""The account loop of run and discover: accounts worked on concurrently (at most ``slots`` at once), the role
of each assumed once, then the account's work; an account whose role cannot be assumed is reported and the
others go on."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import TypeVar

import anyio

from fleet.aws.credentials import AccountSession, Hub, role_arn_for
from fleet.aws.retry import Failure, classify
from fleet.aws.stop import Stop, StopRequested

A = TypeVar("A")


@dataclass(frozen=True, slots=True)
class Target:
    """Who to be in one account: its id, and the role ARN / external id its manifest rows or list gave (if any)."""

    account_id: str
    role_arn: str | None = None
    external_id: str | None = None


async def each_account(
    hub: Hub,
    accounts: Iterable[A],
    target: Callable[[A], Target],
    work: Callable[[AccountSession, A], Awaitable[None]],
    unreachable: Callable[[A, Failure], Awaitable[None]],
    slots: int,
    stop: Stop,
) -> None:
    """Run ``work`` for every account until done or asked to stop (accounts not started by then are left)."""
    limiter = anyio.CapacityLimiter(slots)

    async def one(account: A, token: Hashable) -> None:
        try:
            if stop.requested:
                return
            who = target(account)
            try:
                session = await hub.assume(
                    who.account_id,
                    role_arn_for(who.account_id, hub.settings, who.role_arn),
                    who.external_id or hub.settings.external_id,
                )
            except StopRequested:
                return  # the run stopped while AssumeRole waited (an outage): the account is left for the next run
            except Exception as exc:
                await unreachable(account, classify(exc))
                return
            try:
                await work(session, account)
            finally:
                await session.aclose()
        finally:
            limiter.release_on_behalf_of(token)

    async with anyio.create_task_group() as tg:
        for account in accounts:
            token = object()
            # Start an account only when a slot is free: tasks, credentials and limits stay bounded.
            await limiter.acquire_on_behalf_of(token)
            if stop.requested:
                limiter.release_on_behalf_of(token)
                break
            tg.start_soon(one, account, token)
