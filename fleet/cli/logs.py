"""The engine's observer that logs: one event per row outcome, retries at debug level, the run's own news.

The stream itself (configuration, run_started/run_finished, errors) is ``fleet.events``; this module adds what
only the CLI's observer of a run knows.
"""

from __future__ import annotations

from typing import Any

from fleet.aws.outage import OutageEvent, log_fields
from fleet.aws.retry import Failure
from fleet.events import (
    LogFormat,
    bind,
    bound,
    configure,
    debug_enabled,
    error,
    event,
    finish_run,
    get_logger,
    json_mode,
    say,
    start_run,
    unbind_all,
)
from fleet.manifest import Row
from fleet.migration.engine import Observer
from fleet.outcome import Outcome, Status

__all__ = [
    "LogFormat",
    "RowLogger",
    "bind",
    "bound",
    "configure",
    "debug_enabled",
    "error",
    "event",
    "finish_run",
    "get_logger",
    "json_mode",
    "say",
    "start_run",
    "unbind_all",
]


class RowLogger(Observer):
    """Engine observer: one event per row outcome, one debug event per retry; counts throttles.

    ``quiet`` (a progress bar is shown): only failures and warnings are logged, one line each.
    """

    def __init__(self, quiet: bool = False) -> None:
        self.log = get_logger()
        self.quiet = quiet
        self.throttles = 0

    def started(self, info: dict[str, Any]) -> None:
        start_run(**info)

    def note(self, name: str, level: str, fields: dict[str, Any]) -> None:
        event(name, level, **fields)

    def row_done(self, row: Row, outcome: Outcome, seconds: float) -> None:
        if outcome.status is Status.HELD:
            self.log.info(
                "held",
                account=row.account_id,
                region=row.region,
                domain=row.domain,
                certificate=outcome.previous_certificate_arn,
                message=outcome.error_message,
            )
        if outcome.drift:
            self.log.warning(
                "drift",
                account=row.account_id,
                region=row.region,
                domain=row.domain,
                found_on=outcome.previous_certificate_arn,
                target=row.certificate_arn,
                message="moved off its target by someone else since the state last saw it: written again",
            )
        if self.quiet and not outcome.error_code:
            return
        level = self.log.warning if outcome.error_code else self.log.info
        level(
            "row",
            account=row.account_id,
            region=row.region,
            domain=row.domain,
            status=str(outcome.status),
            attempts=outcome.attempts,
            duration_ms=round(seconds * 1000),
            error_code=outcome.error_code,
            error=outcome.error_message,
        )

    def outage(self, event: OutageEvent) -> None:
        # Always logged, progress bar or not: an outage is the run's news, not a row's.
        self.log.warning("outage", **log_fields(event))

    def retry(self, row: Row, failure: Failure, delay: float) -> None:
        self.throttles += failure.throttled
        self.log.debug(
            "retry",
            account=row.account_id,
            domain=row.domain,
            error_code=failure.code,
            throttled=failure.throttled,
            sleep_s=round(delay, 3),
        )
