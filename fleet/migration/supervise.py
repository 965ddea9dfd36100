"""The engine supervised: SIGTERM/SIGINT and the runtime deadline stop starting rows, drain, then cancel."""

from __future__ import annotations

import signal
from collections.abc import Sequence
from dataclasses import dataclass

import anyio

from fleet.aws.runtime import Runtime
from fleet.errors import reduce_group
from fleet.manifest import Row
from fleet.migration.engine import EngineSettings, Observer, Tally, run_rows
from fleet.state.checkpoint import Checkpoint


@dataclass(frozen=True, slots=True)
class StopPolicy:
    drain_seconds: float = 20.0  # after a stop request, in-flight calls get this long to finish
    max_runtime: float | None = None  # stop requested at this many seconds
    handle_signals: bool = True


async def supervise(
    rows: Sequence[Row],
    checkpoint: Checkpoint,
    settings: EngineSettings,
    runtime: Runtime,
    observer: Observer | None,
    policy: StopPolicy,
) -> Tally:
    """Run the engine; on SIGTERM/SIGINT or the deadline stop starting rows, drain, then cancel.

    A second signal cancels at once. Cancelling never corrupts the checkpoint: each record is one SQLite
    transaction that its worker thread finishes even when the awaiting task is cancelled.
    """
    stop, clock = runtime.stop, runtime.clock
    try:
        work = anyio.CancelScope()
        async with anyio.create_task_group() as tg:

            async def drain_then_cancel() -> None:
                await clock.sleep(policy.drain_seconds)
                work.cancel()

            def begin_stop(reason: str) -> str:
                if stop.requested:
                    work.cancel()  # second request: stop now
                    return (
                        "cancel now: calls in flight are cut (a cut write stays in flight: described first next time)"
                    )
                stop.request(reason)
                tg.start_soon(drain_then_cancel)
                return f"stop starting rows; calls in flight get {policy.drain_seconds:g}s to finish; then exit 75"

            async def signals() -> None:
                with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as received:
                    async for signum in received:
                        name = signal.Signals(signum).name
                        action = begin_stop(name)
                        if observer is not None:
                            observer.note("signal", "warning", {"signal": name, "action": action})

            async def deadline(seconds: float) -> None:
                await clock.sleep(seconds)
                begin_stop(f"max-runtime {seconds:g}s")

            if policy.handle_signals:
                tg.start_soon(signals)
            if policy.max_runtime is not None:
                tg.start_soon(deadline, policy.max_runtime)
            tally = Tally()  # what the engine tallied; empty if the drain cut it short
            with work:
                tally = await run_rows(rows, checkpoint, settings, runtime, observer)
            tg.cancel_scope.cancel()
        return tally
    except BaseExceptionGroup as group:  # the tool's own error (a full disk), not a group of its echoes
        raise reduce_group(group) from None
