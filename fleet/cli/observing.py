"""--metrics-file, --pushgateway, --notify (run and plan), and plan's --check: the options, and the glue that
hands a run's result (or its error) to ``fleet.observe`` once the run is over."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import click

from fleet.aws.credentials import AwsSettings
from fleet.errors import EXIT_FAILED_ROWS, EXIT_RESUMABLE, EXIT_USAGE, FleetError
from fleet.migration.pipeline import RunResult
from fleet.observe import check, notify
from fleet.observe.facts import Expiries, RunFacts, domains_of
from fleet.observe.publish import Outputs, publish
from fleet.shard import Shard


def _targets(_c: click.Context, _p: click.Parameter, values: tuple[str, ...]) -> tuple[notify.Target, ...]:
    try:
        return tuple(notify.target(v) for v in values)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def observe_options(fn: Any) -> Any:
    for option in reversed(
        [
            click.option(
                "--metrics-file",
                type=click.Path(dir_okay=False, path_type=Path),
                help="Write Prometheus metrics here when the run ends (text format, atomically: for node_exporter's "
                "textfile collector, e.g. /var/lib/node_exporter/textfile/cognito-fleet-prod.prom). See "
                "docs/metrics.md.",
            ),
            click.option(
                "--pushgateway",
                metavar="URL",
                help="Push the same metrics to this Prometheus Pushgateway (job cognito_fleet, grouped by command, "
                "manifest and shard).",
            ),
            click.option(
                "--notify",
                multiple=True,
                callback=_targets,
                metavar="URL|sns:TOPIC_ARN",
                help="When something needs a person (failures, canary, budget, outage stop, held fleet, stuck, "
                "--check findings), send one message: an https:// webhook (JSON with a `text` line: Slack, Teams, "
                "generic) or SNS Publish as the hub identity. Repeatable. Never for a quiet run; a message that "
                "cannot be delivered is logged and changes no exit code.",
            ),
        ]
    ):
        fn = option(fn)
    return fn


check_option = click.option(
    "--check",
    is_flag=True,
    help="The watcher: read-only as plan is, and exit 1 while any domain is off its target or its edge does not "
    "serve it (naming each). A held fleet is still checked (and shows held in the metrics). Pair it with a "
    "read-only role: --role-name CognitoFleetReadOnlyRole (iam/readonly-role-policy.json).",
)


class Watch:
    """The sinks that only watch a run: built from the options, given the result (or error) at the end."""

    def __init__(
        self,
        opts: dict[str, Any],
        command: str,
        manifest: Path,
        shard: Shard | None = None,
        nowhere: Sequence[tuple[str, str]] = (),
    ) -> None:
        self.outputs = Outputs(opts.get("metrics_file"), opts.get("pushgateway"), tuple(opts.get("notify") or ()))
        self.command, self.manifest, self.shard = command, str(manifest), shard.suffix if shard else ""
        self.expiries = Expiries()
        # reconcile: selected domains with nowhere to go (discover's no-candidate / rejected) need a person too.
        self.findings: list[dict[str, Any]] = check.nowhere(nowhere)

    @property
    def wanted(self) -> bool:
        return self.outputs.wanted

    def exit_code(self, result: RunResult) -> int:
        """The command's exit code: the run's, or for --check, 1 while anything is off (or failed)."""
        if self.command != "check":
            return result.exit_code
        self.findings = check.findings(domains_of(result.report)) + self.findings
        code = replace(result, fleet_held=None).exit_code  # held or not, the rows' verdict
        return EXIT_FAILED_ROWS if code == 0 and self.findings else code

    def lines(self, result: RunResult) -> list[str]:
        if self.command != "check":
            return []
        held = (
            [f"check: {result.fleet_held.split('; ')[0]}: runs write nothing; watched anyway"]
            if result.fleet_held
            else []
        )
        return held + check.lines(self.findings, domains_of(result.report))

    def finished(self, result: RunResult, exit_code: int, aws: AwsSettings, state: Path | None) -> None:
        if not self.wanted:
            return
        facts = self._facts(result.report, exit_code, result.run_id)
        extra = {"findings": self.findings} if self.findings else {}
        publish(replace(facts, held=result.fleet_held, stopped=result.stopped, extra=extra), self.outputs, aws, state)

    def failed(self, exc: FleetError, report: Path, aws: AwsSettings, state: Path | None, run_id: str) -> None:
        """The command ended in an error (hub not confirmed, state not writable ...): the metrics say so (the last
        report's domains kept), and a person is told: exit 2 (usage, state, hub) or 75 (state not writable); not
        exit 3 (another run holds the lock: the next one goes on) nor a no at the terminal's prompt."""
        if not self.wanted:
            return
        facts = self._facts(report, exc.exit_code, run_id)
        extra = {"error": "; ".join(exc.lines())} if exc.exit_code in (EXIT_USAGE, EXIT_RESUMABLE) else {}
        publish(replace(facts, extra=extra), self.outputs, aws, state)

    def discovered(self, report: Path, exit_code: int, run_id: str, aws: AwsSettings, state: Path | None) -> None:
        """reconcile found nothing to run: the metrics (the last report's domains) and, when some selected domains
        have nowhere to go, the message."""
        if self.wanted:
            extra = {"findings": self.findings} if self.findings else {}
            publish(replace(self._facts(report, exit_code, run_id), extra=extra), self.outputs, aws, state)

    def _facts(self, report: Path, exit_code: int, run_id: str) -> RunFacts:
        return RunFacts(
            command=self.command,
            manifest=self.manifest,
            shard=self.shard,
            exit_code=exit_code,
            finished_at=time.time(),
            domains=domains_of(report, self.expiries.not_after),
            run_id=run_id,
        )
