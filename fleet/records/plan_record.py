"""`cognito-fleet report PLAN.json`: a saved plan as the record a change board approves ("what will change").

It is a change record (``fleet.records.change_record``: status table and chart, failures, every domain by account
and region, the certificates) whose header says what is to be approved — the plan file and its SHA-256 (the digest
the board approves and the run is pinned to), when and by which hub identity it was made, for which change ticket,
from which manifest, its fingerprint — and which adds the writes it plans.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import ClassVar

from fleet.outcome import Status
from fleet.records.certificate_facts import CertificateFacts
from fleet.records.change_record import Entry, Record
from fleet.records.formatting import at_utc, plural, short_names
from fleet.records.html import arn_cell, esc, html_table, wrappable
from fleet.records.markdown import md_table
from fleet.records.plan_file import DEFAULT_MAX_AGE, Plan, read_plan, span

WILL_CHANGE = ["Domain", "Account", "Region", "Current certificate", "New certificate", "Edge serves now"]


def is_plan(path: Path) -> bool:
    """A JSON document (a plan), not a report CSV: its first non-blank byte opens an object."""
    try:
        with path.open("rb") as fh:
            return fh.read(4096).lstrip().startswith(b"{")
    except OSError:
        return False


@dataclass(frozen=True, slots=True, kw_only=True)
class PlanRecord(Record):
    plan: Plan
    kind: ClassVar[str] = "Plan"
    shows_writes: ClassVar[bool] = False

    def certificate_facts(self) -> Mapping[str, CertificateFacts]:
        """What ACM said of each certificate the plan names (its domains' current ones and targets)."""
        facts: dict[str, CertificateFacts] = {}
        for d in self.plan.domains:
            for arn, known in (
                (d.current_certificate_arn, d.current_certificate),
                (d.certificate_arn, d.target_certificate),
            ):
                if arn and known is not None:
                    facts.setdefault(arn, known)
        return facts

    def planned(self) -> list[Entry]:
        return [e for e in self.entries if e.status == Status.PLANNED]

    def facts(self) -> list[tuple[str, str]]:
        plan, counts = self.plan, self.counts()
        until = plan.made_at + timedelta(seconds=DEFAULT_MAX_AGE)
        failed = self.failures()
        accounts = len({e.account_id for e in self.entries})
        regions = len({e.region for e in self.entries})
        edges = ", ".join(f"{k}={v}" for k, v in self.edges().items()) or "not checked"
        if plan.version == 1:
            covers = "version 1: SHA-256 of every domain's certificate at plan time only; applied only pinned"
        else:
            covers = "SHA-256 of every other field: domains, certificates, targets, actions, when, manifest"
        return [
            ("Plan", plan.plan_id),
            ("Plan file", str(plan.path)),
            ("Plan file SHA-256", f"{plan.sha256} (approve this digest: the run is given it with --plan-sha256)"),
            ("Made", f"{at_utc(plan.made_at)} ({span(datetime.now(UTC) - plan.made_at)} ago)"),
            ("Hub identity", plan.hub),
            *([("Change reference", plan.change_ref)] if plan.change_ref else []),
            ("Manifest", plan.manifest_path),
            ("Manifest SHA-256", plan.manifest_sha256),
            ("Plan fingerprint", f"{plan.fingerprint} ({covers})"),
            ("Domains", f"{len(self.entries)} in {plural(accounts, 'account')} and {plural(regions, 'region')}"),
            ("Will be written", str(counts.get(str(Status.PLANNED), 0))),
            ("Unchanged", str(counts.get(str(Status.UNCHANGED), 0))),
            (
                "Will fail",
                f"{counts.get(str(Status.FAILED), 0)} ({plural(len(failed), 'error code')})" if failed else "0",
            ),
            ("Edge serves now", edges),
            (
                "Apply",
                f"cognito-fleet run {plan.manifest_path} --plan {plan.path} --plan-sha256 {plan.sha256}: until "
                f"{at_utc(until)} (--plan-max-age, "
                f"default {span(timedelta(seconds=DEFAULT_MAX_AGE))}); a domain no longer on the certificate shown "
                "here is not written (drifted-since-plan)",
            ),
        ]

    def _rows(self) -> tuple[list[Entry], dict[str, str], Callable[[str], str]]:
        """The planned rows, their certificates' shown names, and each certificate's facts in one line ("" when
        unknown: a plan made before they were kept, or a certificate ACM would not describe)."""
        planned, facts = self.planned(), self.certificate_facts()
        names = short_names(a for e in planned for a in (e.previous, e.certificate))

        def known(arn: str) -> str:
            found = facts.get(arn) if arn else None
            return found.summary() if found else ""

        return planned, names, known

    def extra_markdown(self) -> list[str]:
        planned, names, known = self._rows()
        out = ["", f"## What will change ({plural(len(planned), 'write')})", ""]
        if not planned:
            return [*out, "Nothing: no domain is planned to be written."]

        def cell(arn: str) -> str:
            shown, facts = names.get(arn, "—"), known(arn)
            return f"{shown} ({facts})" if facts else shown

        rows = ([e.domain, e.account_id, e.region, cell(e.previous), cell(e.certificate), e.edge] for e in planned)
        return out + md_table(WILL_CHANGE, rows)

    def extra_html(self) -> str:
        planned, names, known = self._rows()

        def cell(arn: str) -> str:  # the shown name (its ARN on hover), and under it what ACM said of it, escaped
            facts = known(arn)
            return arn_cell(arn, names) + (f'<br /><small class="facts">{esc(facts)}</small>' if facts else "")

        out = [f'<section id="will-change"><h2>What will change ({esc(plural(len(planned), "write"))})</h2>']
        if not planned:
            out.append("<p>Nothing: no domain is planned to be written.</p>")
        else:
            rows = [
                [
                    wrappable(e.domain),
                    esc(e.account_id),
                    esc(e.region),
                    cell(e.previous),
                    cell(e.certificate),
                    esc(e.edge),
                ]
                for e in planned
            ]
            out.append(html_table(WILL_CHANGE, rows, [20, 12, 10, 24, 24, 10], ["planned"] * len(rows)))
        return "".join(out) + "</section>"


def load_plan_record(path: Path) -> PlanRecord:
    """A plan file as a record (PlanError, exit 2, when it is not a usable plan)."""
    plan = read_plan(path)
    entries = tuple(
        Entry(
            account_id=d.account_id,
            region=d.region,
            user_pool_id=d.user_pool_id,
            domain=d.domain,
            previous=d.current_certificate_arn or "",
            certificate=d.certificate_arn,
            status=d.action,
            attempts="",
            error_code=d.error_code or "",
            error_message=d.error_message or "",
            started=None,
            finished=None,
            drift=False,
            edge=d.edge or "",
        )
        for d in plan.domains
    )
    return PlanRecord(source=path, sha256=plan.sha256, run_id=plan.plan_id, hub=plan.hub, entries=entries, plan=plan)
