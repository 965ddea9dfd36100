"""On a terminal: a live progress bar and a final summary table (rich). Under cron: nothing here."""

from __future__ import annotations

import collections
import time
from types import TracebackType

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from fleet.engine import Observer
from fleet.manifest import Row
from fleet.outcome import Outcome, Status
from fleet.retry import Failure


class Fanout(Observer):
    """Send every engine event to several observers."""

    def __init__(self, *observers: Observer) -> None:
        self.observers = observers

    def row_done(self, row: Row, outcome: Outcome, seconds: float) -> None:
        for o in self.observers:
            o.row_done(row, outcome, seconds)

    def retry(self, row: Row, failure: Failure, delay: float) -> None:
        for o in self.observers:
            o.retry(row, failure, delay)


class ProgressBar(Observer):
    def __init__(self, total: int, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self.counts: collections.Counter[str] = collections.Counter()
        self.throttled = 0
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
        self._progress.start()
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self._progress.stop()

    def _refresh(self) -> None:
        done = sum(self.counts.values())
        rate = done / max(time.monotonic() - self.t0, 1e-9)
        detail = (
            f"updated {self.counts[Status.UPDATED]}  unchanged {self.counts[Status.UNCHANGED]}  "
            f"failed {self.counts[Status.FAILED]}  throttled {self.throttled}  {rate:.1f} rows/s"
        )
        self._progress.update(self._task, completed=done, detail=detail)

    def row_done(self, row: Row, outcome: Outcome, seconds: float) -> None:
        self.counts[str(outcome.status)] += 1
        self._refresh()

    def retry(self, row: Row, failure: Failure, delay: float) -> None:
        self.throttled += failure.throttled
        self._refresh()


def summary_table(counts: collections.Counter[str], console: Console | None = None) -> None:
    table = Table(title="cognito-fleet summary")
    table.add_column("status")
    table.add_column("rows", justify="right")
    for status in Status:
        if counts[str(status)]:
            table.add_row(str(status), str(counts[str(status)]))
    table.add_row("[bold]total", f"[bold]{sum(counts.values())}")
    (console or Console(stderr=True)).print(table)
