"""The tool's own errors: each carries the process exit code the CLI ends with, and a one-line message."""

from __future__ import annotations

EXIT_OK, EXIT_FAILED_ROWS, EXIT_USAGE, EXIT_LOCKED, EXIT_RESUMABLE = 0, 1, 2, 3, 75


class FleetError(Exception):
    """An expected failure: the CLI prints ``lines()`` (no traceback) and exits with ``exit_code``."""

    exit_code = EXIT_USAGE

    def lines(self) -> list[str]:
        return [f"error: {self}"]


class RowFailed(Exception):
    """One row cannot be done (no write is sent): ``code`` and ``message`` go to its report line."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


class HubUnavailable(FleetError):
    """The hub (calling) identity could not be confirmed: nothing in any account was touched."""
