"""structlog setup: JSON lines for machines (cron, files), readable lines on a terminal."""

from __future__ import annotations

import logging
import sys
from typing import Literal

import structlog

from fleet.engine import Observer
from fleet.manifest import Row
from fleet.outcome import Outcome
from fleet.retry import Failure

LogFormat = Literal["auto", "json", "console"]


_level = {"debug": False}


def debug_enabled() -> bool:
    """Whether --log-level debug was asked for (tracebacks of unexpected errors are shown then)."""
    return _level["debug"]


def configure(fmt: LogFormat = "auto", level: str = "info") -> None:
    _level["debug"] = level == "debug"
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer() if use_json else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level.upper()]),
        logger_factory=_stderr_logger,
        cache_logger_on_first_use=False,
    )
    # botocore's debug log prints request headers (the session token among them), and its warnings print
    # tracebacks (a failed SSO refresh) that the tool reports itself in one line: keep them quiet.
    for noisy in ("botocore", "aiobotocore", "aioboto3", "urllib3", "werkzeug"):
        logging.getLogger(noisy).setLevel(logging.ERROR)


def _stderr_logger(*args: object) -> structlog.PrintLogger:
    # Resolve sys.stderr at each use: a progress bar swaps it to print log lines above itself.
    return structlog.PrintLogger(sys.stderr)


def get_logger() -> structlog.typing.FilteringBoundLogger:
    return structlog.get_logger("cognito-fleet")  # type: ignore[no-any-return]


class RowLogger(Observer):
    """Engine observer: one event per row outcome, one debug event per retry."""

    def __init__(self) -> None:
        self.log = get_logger()

    def row_done(self, row: Row, outcome: Outcome, seconds: float) -> None:
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

    def retry(self, row: Row, failure: Failure, delay: float) -> None:
        self.log.debug(
            "retry",
            account=row.account_id,
            domain=row.domain,
            error_code=failure.code,
            throttled=failure.throttled,
            sleep_s=round(delay, 3),
        )
