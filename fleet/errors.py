"""The tool's own errors: each carries the process exit code the CLI ends with, and a one-line message."""

from __future__ import annotations

EXIT_OK, EXIT_FAILED_ROWS, EXIT_USAGE, EXIT_LOCKED, EXIT_RESUMABLE = 0, 1, 2, 3, 75


class FleetError(Exception):
    """An expected failure: the CLI prints ``lines()`` (no traceback) and exits with ``exit_code``."""

    exit_code = EXIT_USAGE

    def lines(self) -> list[str]:
        return [f"error: {self}"]


class StateWriteError(FleetError):
    """The state file cannot be written (disk full, I/O error, read-only, removed): the run stops, resumable.

    Nothing is lost: a write is sent only after its in-flight mark is durable, so a mark that cannot be written
    means that write was never sent; the next run (after the cause is fixed) resumes from what the state holds.
    """

    exit_code = EXIT_RESUMABLE

    def __init__(self, path: str, cause: str, advice: str = "free space and rerun to resume") -> None:
        super().__init__(f"{path}: the state file cannot be written ({cause}): {advice}")
        self.path, self.cause = path, cause


class RaceLost(FleetError):
    """A conditional write to an S3 state lost (412 PreconditionFailed / 409 ConditionalRequestConflict): someone
    else changed the object since it was read. Never retried as an overwrite: the run is refused (exit 3)."""

    exit_code = EXIT_LOCKED


def leaves(group: BaseException) -> list[BaseException]:
    """The exceptions inside (nested) exception groups, in order; a plain exception is its own leaf."""
    if isinstance(group, BaseExceptionGroup):
        return [leaf for inner in group.exceptions for leaf in leaves(inner)]
    return [group]


def reduce_group(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """What a task group's failures mean to the operator: its one failure, else the tool's own first error
    (concurrent rows that hit the same full disk are one problem, not several), else the group."""
    found = leaves(group)
    if len(found) == 1:
        return found[0]
    own = [e for e in found if isinstance(e, FleetError)]
    return own[0] if own else group


class RowFailed(Exception):
    """One row cannot be done (no write is sent): ``code`` and ``message`` go to its report line."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


class HubUnavailable(FleetError):
    """The hub (calling) identity could not be confirmed: nothing in any account was touched."""
