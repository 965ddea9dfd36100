"""The event stream (structlog): JSON lines for machines (cron, files), readable lines on a terminal.

Every layer logs through here (``get_logger``, ``event``); the CLI configures it and adds the engine's observer
(fleet.cli.logs). Pure: it imports nothing of the tool but ``fleet.text``.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Mapping, MutableMapping
from typing import Any, Literal

import structlog

from fleet.text import printable

LogFormat = Literal["auto", "json", "console"]


_level = {"debug": False, "json": False}
_run: dict[str, Any] = {}  # the run whose run_started was emitted and whose run_finished is still owed


def debug_enabled() -> bool:
    """Whether --log-level debug (or COGNITO_FLEET_DEBUG=1) was asked for: tracebacks of unexpected errors."""
    return _level["debug"] or os.environ.get("COGNITO_FLEET_DEBUG") == "1"


def json_mode() -> bool:
    """Whether logs are JSON lines: then every line on stdout and stderr is a JSON object (cron, files)."""
    return _level["json"]


def unbind_all() -> None:
    """Forget every bound field: a command starts with none (several commands in one process: the tests)."""
    structlog.contextvars.clear_contextvars()


def bind(**fields: Any) -> None:
    """Fields every later event of this command carries (``run_id``, ``command``, ``manifest``): with several jobs
    appending to one log, each line says whose it is."""
    structlog.contextvars.bind_contextvars(**{k: str(v) for k, v in fields.items() if v is not None})


def bound(name: str) -> str | None:
    value = structlog.contextvars.get_contextvars().get(name)
    return None if value is None else str(value)


def say(line: str, **fields: Any) -> None:
    """A line for the operator on stdout: plain text on a terminal, a JSON event (``message``, with the run id,
    time and level every event has) when logs are JSON."""
    if json_mode():
        _stdout_logger().info("message", message=line, **fields)
    else:
        print(printable(line, newlines=True), flush=True)


def _stdout_logger() -> Any:
    """The configured processors (context, level, time, JSON) writing to stdout instead of stderr."""
    config = structlog.get_config()
    return structlog.wrap_logger(
        structlog.PrintLogger(sys.stdout), processors=config["processors"], wrapper_class=config["wrapper_class"]
    )


def error(message: str, exit_code: int, code: str | None = None) -> None:
    """The one line of a command that ends in an error (stderr), closing a started run's events first. ``code``
    names the kind of error (the exception's class: HubUnavailable, StateWriteError, ManifestError ...)."""
    finish_run(exit_code, error=message, error_code=code)
    if json_mode():
        get_logger().error("error", message=message, exit_code=exit_code, code=code)
    else:
        print(printable(message, newlines=True), file=sys.stderr, flush=True)


def event(name: str, level: str = "info", **fields: Any) -> None:
    """A run's news that is no row's (a signal, the canary passed, the failure budget spent)."""
    getattr(get_logger(), level)(name, **fields)


def start_run(**info: Any) -> None:
    """``run_started``: who runs what, on which fleet, with which options that matter."""
    _run.clear()
    _run.update(run_id=info.get("run_id"), started=time.monotonic())
    get_logger().info("run_started", **info)


def finish_run(exit_code: int, **fields: Any) -> None:
    """``run_finished`` of the started run (once), with ``exit_code`` equal to the process's."""
    if not _run:
        return
    started = _run.pop("started")
    run_id = _run.pop("run_id")
    get_logger().info(
        "run_finished", run_id=run_id, exit_code=exit_code, duration_s=round(time.monotonic() - started, 3), **fields
    )
    _run.clear()


def _drop_none(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> Mapping[str, Any]:
    """Fields without a value are noise on a terminal (``error=None error_code=None``) and in JSON."""
    return {k: v for k, v in event.items() if v is not None}


# On a terminal, the facts a machine reads in full (every endpoint, every option) would be screens of dicts before
# the progress bar: the JSON stream keeps them; the console shows the line without them.
_CONSOLE_HIDES = {"hub_identity": ("endpoints",), "run_started": ("endpoints", "options", "manifest_sha256")}


def _printable(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> Mapping[str, Any]:
    """On the console, text from AWS or a manifest (error codes and messages, domains) shows control characters
    as escapes: it never drives the terminal. (JSON lines escape them already.)"""
    hidden = _CONSOLE_HIDES.get(str(event.get("event")), ())
    return {k: printable(v) if isinstance(v, str) else v for k, v in event.items() if k not in hidden}


def configure(fmt: LogFormat = "auto", level: str = "info") -> None:
    _level["debug"] = level == "debug"
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    _level["json"] = use_json
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer() if use_json else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    safe: list[structlog.typing.Processor] = [] if use_json else [_printable]
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            _drop_none,
            *safe,
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
