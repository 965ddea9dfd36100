"""What a plan pass adds to the job: plan settings, the allow-list warning, the plan file's lines."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

from fleet.aws.organizations import active_accounts
from fleet.aws.retry import classify
from fleet.aws.runtime import Runtime
from fleet.errors import FleetError
from fleet.events import get_logger
from fleet.manifest import Manifest, Row
from fleet.migration import allow_list
from fleet.migration.engine import EngineSettings
from fleet.migration.row import Mode
from fleet.records.plan_file import PlannedDomain
from fleet.records.report import record
from fleet.state.checkpoint import Checkpoint


def planning(settings: EngineSettings) -> EngineSettings:
    """A plan pass's settings: describe and check only (no canary, no failure budget: nothing is written)."""
    return dataclasses.replace(settings, mode=Mode(plan=True), canary=0, max_failures=None)


def plan_facts(settings: EngineSettings) -> dict[str, object]:
    """What run_started says of the plan a run applies: which file (its SHA-256, to match the approved one), and
    whether that SHA-256 was pinned (--plan-sha256)."""
    assert settings.approved is not None
    return settings.approved.facts()


@dataclass(frozen=True, slots=True)
class Allowed:
    """plan's allow-list: manifest accounts outside it are warned about (``allow_list``)."""

    accounts: frozenset[str] | None = None
    organization: bool = False  # the hub's organization's ACTIVE accounts


async def warn_outside(manifest: Manifest, allowed: Allowed, aws: Runtime) -> None:
    """Warn (``accounts_outside_allow_list``) about the manifest's accounts that the allow-lists do not name."""
    lists: list[tuple[str, frozenset[str]]] = []
    if allowed.accounts is not None:
        lists.append(("--allowed-accounts", allowed.accounts))
    if allowed.organization:
        try:
            members = await active_accounts(aws.hub, aws.calls, (), ())
        except Exception as exc:  # not the management account, or no organization: say so, plan nothing
            failure = classify(exc)
            raise FleetError(
                f"--organization: cannot list the hub's organization ({failure.code}: {failure.message}); "
                "use --allowed-accounts instead"
            ) from None
        lists.append(("the hub's organization", frozenset(members)))
    for source, accounts in lists:
        strangers = allow_list.outside(manifest.accounts, accounts)
        if strangers:
            get_logger().warning(
                "accounts_outside_allow_list",
                accounts=strangers,
                source=source,
                message=allow_list.warning(strangers, source),
            )


def planned_domains(rows: Sequence[Row], checkpoint: Checkpoint) -> list[PlannedDomain]:
    """The plan's lines, from the plan's report lines: a plan's previous certificate is the one Describe showed."""
    out = []
    for row in rows:
        line = record(row, checkpoint.stored(row.domain), checkpoint.pass_, None)
        text = {k: None if v is None else str(v) for k, v in line.items()}
        out.append(
            PlannedDomain(
                account_id=row.account_id,
                region=row.region,
                user_pool_id=row.user_pool_id,
                domain=row.domain,
                current_certificate_arn=text["previous_certificate_arn"],
                certificate_arn=row.certificate_arn,
                action=str(line["status"]),
                error_code=text["error_code"],
                error_message=text["error_message"],
                edge=text["edge"],
                edge_not_after=text["edge_not_after"],
            )
        )
    return out
