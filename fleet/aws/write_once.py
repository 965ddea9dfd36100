"""The tool's first guarantee, in one place: a domain's certificate update is sent once, and never again blindly.

A write whose answer is lost may or may not have been applied (AWS-NOTES, "Lost responses"); sending it again
blindly writes twice, and each write restarts a distribution of up to an hour. ``WriteOnce`` is the rule; the
generic retry loop (``retry.call_with_retry``) asks it before each attempt, after each failure, and when the
attempts run out. Its decision table (one unit test per row: ``tests/unit/test_write_once_rule.py``, on virtual time):

- before the first send: the in-flight mark is made durable (``mark``, the caller's); a crash from here on makes
  the next run describe the domain first;
- the run is stopping before the first send: nothing is sent (``StopRequested``), no mark;
- sent and answered: done;
- refused (an answer: a 4xx, a throttle): that answer is the outcome, retried only if retryable like any call;
  no look;
- no connection was made: nothing left, so it is sent again (the outage gate waits for the endpoint); no look;
- sent, outcome unknown (a 5xx, ``ConcurrentModificationException``, a reset or read timeout after sending): look
  (describe) before anything else; on the target means it took effect (done, nothing resent), not on it means
  send again;
- the look fails: look again (the look has its own retries; it is never skipped);
- the attempts run out with the outcome unknown: one last look decides (on the target: done; else the error);
- the run stops after the first send: the looks still run (``despite_stop``): a sent write is always looked at.

The state keeps the other half of the rule: a move (the certificate a domain had before the tool) is stored only
from an in-flight mark (``fleet.state.rows``), and the next run describes every domain first.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from fleet.aws.retry import outcome_unknown

T = TypeVar("T")


class WriteOnce(Generic[T]):
    """One write's rule. ``mark``: the durable in-flight mark (before the first send); ``look``: describe the
    resource and return the write's result if it took effect, else None (it must run despite a stop)."""

    def __init__(self, mark: Callable[[], Awaitable[None]], look: Callable[[], Awaitable[T | None]]) -> None:
        self.mark, self.look = mark, look
        self.unknown = False  # an attempt was sent and its outcome is not known: look before anything else
        self.looks = 0

    async def before_attempt(self) -> T | None:
        """Before each attempt: the earlier attempt's result if a look finds it took effect (send nothing), else
        None (send). The look's own failure leaves the outcome unknown: the next attempt looks again."""
        if not self.unknown:
            return None
        self.looks += 1
        found = await self.look()
        if found is None:
            self.unknown = False  # it did not take effect: sending again is safe
        return found

    def failed(self, exc: BaseException) -> None:
        """After a failed attempt: an outcome that may have been applied must be looked at first."""
        if outcome_unknown(exc):
            self.unknown = True

    async def exhausted(self) -> T | None:
        """The attempts ran out: with the outcome unknown, one last look decides."""
        if not self.unknown:
            return None
        self.looks += 1
        return await self.look()
