"""On a terminal: a live progress bar and a final summary table (rich). Under cron: nothing here."""

from __future__ import annotations

import collections
import time
from types import TracebackType
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from fleet.aws.outage import OutageEvent
from fleet.aws.retry import Failure
from fleet.manifest import Row
from fleet.migration.engine import Observer
from fleet.outcome import Outcome, Status
from fleet.text import printable


class Fanout(Observer):
    """Send every engine event to several observers."""

    def __init__(self, *observers: Observer) -> None:
        self.observers = observers

    def started(self, info: dict[str, Any]) -> None:
        for o in self.observers:
            o.started(info)

    def row_done(self, row: Row, outcome: Outcome, seconds: float) -> None:
        for o in self.observers:
            o.row_done(row, outcome, seconds)

    def retry(self, row: Row, failure: Failure, delay: float) -> None:
        for o in self.observers:
            o.retry(row, failure, delay)

    def outage(self, event: OutageEvent) -> None:
        for o in self.observers:
            o.outage(event)

    def note(self, name: str, level: str, fields: dict[str, Any]) -> None:
        for o in self.observers:
            o.note(name, level, fields)


SHOWN = (
    Status.PENDING,
    Status.VERIFIED,
    Status.UNCHANGED,
    Status.PLANNED,
    Status.FAILED,
    Status.SKIPPED,
    Status.HELD,
    Status.DRIFTED_SINCE_PLAN,  # run --plan: shown when some row ends so
)
RUN_STATUSES = frozenset({Status.PENDING, Status.VERIFIED, Status.UNCHANGED, Status.FAILED, Status.SKIPPED})
PLAN_STATUSES = frozenset({Status.PLANNED, Status.UNCHANGED, Status.FAILED})


class ProgressBar(Observer):
    """Rows done, by the statuses a run (or a plan) produces, throttles and rate."""

    def __init__(self, total: int, console: Console | None = None, plan: bool = False) -> None:
        self.plan = plan
        self.console = console or Console(stderr=True)
        self.counts: collections.Counter[str] = collections.Counter()
        self.throttled = 0
        self.unreachable: dict[str, str] = {}  # endpoints in an outage now -> the shape seen
        self.t0 = time.monotonic()
        self._progress = Progress(
            TextColumn("[bold]rows"),
            BarColumn(bar_width=24),
            MofNCompleteColumn(),
            TextColumn("{task.fields[detail]}"),
            TimeElapsedColumn(),
            console=self.console,
            transient=False,
        )
        self._task = self._progress.add_task("rows", total=total, detail="")

    def __enter__(self) -> ProgressBar:
        return self  # drawn from ``started``: after the hub check and the y/N question, never over them

    def started(self, info: dict[str, Any]) -> None:
        self.t0 = time.monotonic()
        self._progress.start()

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self._progress.stop()

    def _refresh(self) -> None:
        done = sum(self.counts.values())
        rate = done / max(time.monotonic() - self.t0, 1e-9)
        expected = PLAN_STATUSES if self.plan else RUN_STATUSES
        shown = [s for s in SHOWN if s in expected or self.counts[s]]
        detail = "  ".join(f"{s} {self.counts[s]}" for s in shown)
        detail += f"  throttled {self.throttled}  {rate:.1f} rows/s"
        if self.unreachable:
            down = ", ".join(f"{url} (shape={shape})" for url, shape in sorted(self.unreachable.items()))
            detail += f"  [bold red]endpoint unreachable, waiting: {escape(down)}[/]"
        self._progress.update(self._task, completed=done, detail=detail)

    def row_done(self, row: Row, outcome: Outcome, seconds: float) -> None:
        self.counts[str(outcome.status)] += 1
        self._refresh()

    def retry(self, row: Row, failure: Failure, delay: float) -> None:
        self.throttled += failure.throttled
        self._refresh()

    def outage(self, event: OutageEvent) -> None:
        if event.ended:
            self.unreachable.pop(event.endpoint, None)
        else:
            self.unreachable[event.endpoint] = event.shape
        self._refresh()


def summary_table(
    counts: collections.Counter[str],
    failures_by_code: collections.Counter[str] | None = None,
    failures_by_account: collections.Counter[str] | None = None,
    console: Console | None = None,
) -> None:
    """Rows by status, then failures by error code and by account (on a terminal, after the bar)."""
    out = console or Console(stderr=True)
    table = Table(title="cognito-fleet summary")
    table.add_column("status")
    table.add_column("rows", justify="right")
    for status in Status:
        if counts[str(status)]:
            table.add_row(str(status), str(counts[str(status)]))
    table.add_row("[bold]total", f"[bold]{sum(counts.values())}")
    out.print(table)
    for title, failures in (("failures by error code", failures_by_code), ("failures by account", failures_by_account)):
        if failures:
            breakdown = Table(title=title)
            breakdown.add_column(title.split(" by ")[1])
            breakdown.add_column("rows", justify="right")
            for key, n in failures.most_common():
                breakdown.add_row(escape(printable(key)), str(n))  # an error code from AWS: text, not markup
            out.print(breakdown)
