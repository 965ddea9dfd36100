"""After a run (or plan, or check): its facts go to the metrics textfile, the Pushgateway and, when a person is
needed, the notification targets. Each output that fails is logged and the next one still goes out: what
watches never changes the run's result."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from fleet.aws.credentials import AwsSettings
from fleet.aws.endpoints import redacted
from fleet.events import event
from fleet.observe import metrics, notify
from fleet.observe.facts import RunFacts, epoch
from fleet.outcome import Status
from fleet.state.checkpoint import Checkpoint


@dataclass(frozen=True, slots=True)
class Outputs:
    metrics_file: Path | None = None
    pushgateway: str | None = None
    notify: tuple[notify.Target, ...] = ()

    @property
    def metrics(self) -> bool:
        return self.metrics_file is not None or self.pushgateway is not None

    @property
    def wanted(self) -> bool:
        return self.metrics or bool(self.notify)


def last_success(facts: RunFacts, outputs: Outputs, state: Path | None) -> float | None:
    """When this job last exited 0: now, if it did; else what its previous textfile said; else the state's last
    run that finished every row without a failure (a watcher or a plan reads it, never writes it)."""
    if facts.exit_code == 0:
        return facts.finished_at
    carried = metrics.previous(outputs.metrics_file, "cognito_fleet_last_success_timestamp_seconds", facts.identity)
    if carried is not None or facts.command != "run":
        return carried
    return _state_success(state)


def _state_success(state: Path | None) -> float | None:
    if state is None or not state.exists():
        return None
    try:
        checkpoint = Checkpoint(state, create=False)
    except Exception:  # unreadable or from another version: no carried value, never an error of the run
        return None
    try:
        for run in reversed(checkpoint.runs()):
            counts = dict(json.loads(run.get("counts") or "{}"))
            bad = counts.get(str(Status.FAILED), 0) + counts.get(str(Status.DRIFTED_SINCE_PLAN), 0)
            if run.get("complete") and not bad:
                return epoch(run.get("finished_at"))
        return None
    finally:
        checkpoint.close()


def publish(facts: RunFacts, outputs: Outputs, aws: AwsSettings, state: Path | None = None) -> RunFacts:
    """Write, push and notify; returns the facts as published (with the carried last success)."""
    held_before = bool(metrics.previous(outputs.metrics_file, "cognito_fleet_fleet_held", facts.identity))
    facts = dataclasses.replace(facts, last_success=last_success(facts, outputs, state))
    if outputs.metrics_file is not None:
        try:
            metrics.write_file(outputs.metrics_file, facts)
        except OSError as exc:
            event("metrics_failed", "warning", target=str(outputs.metrics_file), message=str(exc.strerror or exc))
    if outputs.pushgateway is not None:
        try:
            metrics.push(outputs.pushgateway, facts)
        except Exception as exc:  # unreachable, refused, 4xx/5xx: logged, the run's result unchanged
            # A gateway URL may carry basic-auth credentials: never logged (the error text may quote the URL too).
            shown, said = redacted(outputs.pushgateway), f"{type(exc).__name__}: {exc}"
            userinfo = urlsplit(outputs.pushgateway).netloc.rpartition("@")[0]
            if userinfo:
                said = said.replace(userinfo, "***")
            event("metrics_failed", "warning", target=shown, message=said)
    why = notify.reasons(facts, held_before)
    if outputs.notify and why:
        notify.send(outputs.notify, notify.message(facts, why), aws)
    return facts
