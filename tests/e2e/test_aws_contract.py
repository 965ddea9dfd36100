"""docs/aws-contract.md against the code and the pinned botocore: every operation the tool calls, every error its
service model documents (and the common ones), each injected by the sandbox and met with the documented reaction."""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import botocore.session
import pytest

from fleet.aws.credentials import AwsSettings
from fleet.aws.edge import EdgeSettings
from fleet.aws.retry import BackoffPolicy
from fleet.discover.inputs import OrganizationUnreadable
from fleet.discover.job import Criteria, Sources, run_discovery
from fleet.errors import EXIT_FAILED_ROWS, EXIT_OK, HubUnavailable
from fleet.migration.engine import EngineSettings
from fleet.migration.pipeline import migrate
from fleet.sandbox.seed import SeededDomain, admin_client, organization_accounts, seed_accounts, write_manifest
from fleet.sandbox.server import Sandbox

from ..checks.test_iam_documents import fleet_aws_calls
from ..files import by_domain, csv_rows
from .test_outage import outage_when

ROOT = Path(__file__).resolve().parents[2]
CONTRACT = ROOT / "docs" / "aws-contract.md"
_ROW = re.compile(r"^\| `([^`]+)` \| `([^`]+)` \| ([^|]+) \| ([^|]+) \| ([^|]+) \|$")
# Errors any call can meet, by protocol (STS speaks the query protocol), besides what the service model lists.
COMMON = {
    "query": {"Throttling", "AccessDenied", "ExpiredToken", "InvalidClientTokenId", "SignatureDoesNotMatch"},
    "json": {
        "ThrottlingException",
        "AccessDeniedException",
        "ExpiredTokenException",
        "UnrecognizedClientException",
        "InvalidSignatureException",
    },
}
ALWAYS = {"InternalFailure", "ServiceUnavailable", "ConnectionReset"}  # 500, 503, an answer lost after sending
# HTTP statuses as AWS sends these codes (the rest: 400).
STATUS = {
    "InternalErrorException": 500,
    "InternalFailure": 500,
    "ServiceException": 500,
    "ServiceUnavailable": 503,
    "AccessDenied": 403,
    "ExpiredToken": 403,
    "InvalidClientTokenId": 403,
    "SignatureDoesNotMatch": 403,
    "RegionDisabledException": 403,
}


@dataclass(frozen=True)
class Clause:
    operation: str  # service:Operation, or * (any)
    error: str
    run: str  # the reaction token(s) of run/plan, "—" when run never calls it
    discover: str

    @property
    def service(self) -> str:
        return self.operation.split(":")[0]

    @property
    def name(self) -> str:
        return self.operation.split(":")[-1]


@cache
def contract() -> tuple[Clause, ...]:
    text = CONTRACT.read_text(encoding="utf-8").split("<!-- contract-table -->", 1)[1]
    clauses = []
    for line in text.splitlines():
        m = _ROW.match(line.strip())
        if m:
            op, error, _source, run, discover = m.groups()
            clauses.append(Clause(op, error, run.strip(), discover.strip()))
    return tuple(clauses)


def reaction(cell: str) -> tuple[str, str | None]:
    """'`fail as CertificateNotFound`' -> ('fail', 'CertificateNotFound'); '—' -> ('—', None)."""
    token = cell.split("(")[0].strip().strip("`")
    kind, _, code = token.partition(" as ")
    return kind, code or None


def protocol(service: str) -> str:
    return "query" if service in ("sts", "sns") else "json"


# ---- the table against the code and the models ------------------------------------------------------------------
def test_the_table_names_every_operation_the_tool_calls() -> None:
    # An s3:// state's S3 calls have their own table of reactions (docs/s3-state.md, "S3's answers").
    called = {c for c in fleet_aws_calls() if not c.startswith("s3:")} | {"sts:GetCallerIdentity"}
    listed = {c.operation for c in contract() if c.operation != "*"}
    assert listed == called, {"not in the table": called - listed, "not called": listed - called}


def test_the_table_names_every_error_the_models_document_and_the_common_ones() -> None:
    session = botocore.session.get_session()
    by_operation: dict[str, set[str]] = {}
    for c in contract():
        by_operation.setdefault(c.operation, set()).add(c.error)
    for operation, errors in by_operation.items():
        if operation == "*":
            continue
        service, name = operation.split(":")
        modelled = {e.name for e in session.get_service_model(service).operation_model(name).error_shapes}
        needed = modelled | COMMON[protocol(service)] | ALWAYS
        assert needed <= errors, f"{operation}: not in docs/aws-contract.md: {sorted(needed - errors)}"
    assert ("*", "(never connected)") in {(c.operation, c.error) for c in contract()}


def test_every_reaction_is_one_the_page_defines() -> None:
    defined = {"retry", "describe-first", "fail", "account", "hub", "error", "abort", "outage", "notify", "—"}
    for c in contract():
        assert reaction(c.run)[0] in defined and reaction(c.discover)[0] in defined, c
        if c.name == "UpdateUserPoolDomain":
            assert reaction(c.discover)[0] == "—"  # discover never writes


def test_the_contract_check_sees_a_missing_error(tmp_path: Path) -> None:
    # The coverage test above is only worth something if dropping a row makes it fail.
    text = CONTRACT.read_text(encoding="utf-8")
    row = "| `cognito-idp:UpdateUserPoolDomain` | `ConcurrentModificationException` |"
    assert text.count(row) == 1
    kept = [line for line in text.splitlines() if not line.startswith(row)]
    listed = {
        m.group(2)
        for line in kept
        if (m := _ROW.match(line.strip())) and m.group(1) == "cognito-idp:UpdateUserPoolDomain"
    }
    assert "ConcurrentModificationException" not in listed


# ---- each row injected and its reaction checked -------------------------------------------------------------------
_ids = itertools.count(500000000000, 1000)


@pytest.fixture(scope="module")
def one(sandbox: Sandbox) -> SeededDomain:
    """One account, one domain (us-east-1) for every case of this module; each case puts it back on its old
    certificate and uses a state of its own."""
    ids, _ou = organization_accounts(sandbox.endpoint, 1, f"contract-{next(_ids)}")  # an OU of its own
    (domain,) = seed_accounts(sandbox.endpoint, ids, ["us-east-1"], 1, old_days=20)  # expiring: --auto moves it
    return domain


def settings(box: Sandbox) -> EngineSettings:
    return EngineSettings(
        policy=BackoffPolicy(max_attempts=3, base=0.01, cap=0.05),
        aws=AwsSettings(endpoint_url=box.endpoint),
        edge=EdgeSettings(address=box.edge_address),  # loopback only: never a real CloudFront host
    )


def inject(box: Sandbox, c: Clause, count: int | None) -> None:
    rule: dict[str, Any] = {"operation": c.name, "service": c.service, "code": c.error, "count": count}
    rule["status"] = STATUS.get(c.error, 400)
    box.state.configure(inject=[rule])


def cases(column: str) -> list[Any]:
    return [
        pytest.param(c, id=f"{c.operation}-{c.error}")
        for c in contract()
        # `notify` (SNS Publish after the run, for --notify): injected in tests/e2e/test_notify.py
        if reaction(getattr(c, column))[0] not in ("—", "notify") and c.operation != "*"
    ]


@pytest.mark.parametrize("clause", cases("run"))
def test_run_reacts_as_documented(clause: Clause, box: Sandbox, one: SeededDomain, tmp_path: Path) -> None:
    kind, code = reaction(clause.run)
    box.set_domain_certificate(one.domain, one.old_certificate_arn)
    manifest = write_manifest([one], tmp_path / "m.csv")
    box.state.reset_counters()
    inject(box, clause, 1 if kind in ("retry", "describe-first") else None)
    run = lambda: migrate(manifest, tmp_path / "c.sqlite", tmp_path / "r.csv", settings(box))  # noqa: E731
    if kind == "hub":
        with pytest.raises(HubUnavailable):
            run()
        assert box.state.writes == {} and not (tmp_path / "c.sqlite").exists()
        return
    result = run()
    row = by_domain(result.report)[one.domain]
    assert box.state.faults["injected"] >= 1, "the error was injected"
    if kind in ("retry", "describe-first"):
        assert result.exit_code == EXIT_OK, row
        assert row["status"] in ("pending", "verified") and box.state.writes == {one.domain: 1}
        describes = box.state.calls["DescribeUserPoolDomain"]
        if clause.name == "UpdateUserPoolDomain":  # describe-first: one look before the write went again
            assert describes == (2 if kind == "describe-first" else 1), describes
        return
    assert result.exit_code == EXIT_FAILED_ROWS
    assert row["status"] == "failed" and row["error_code"] == (code or clause.error), row
    assert box.state.writes == {}, "no write for a row that failed before it"
    if kind == "account":
        assert row["error_message"].startswith("AssumeRole:")
    else:
        assert kind == "fail", kind


@pytest.mark.parametrize("clause", cases("discover"))
def test_discover_reacts_as_documented(clause: Clause, box: Sandbox, one: SeededDomain, tmp_path: Path) -> None:
    kind, code = reaction(clause.discover)
    box.set_domain_certificate(one.domain, one.old_certificate_arn)
    organization = clause.service == "organizations"
    accounts = tmp_path / "accounts.txt"
    accounts.write_text(one.account_id + "\n")
    ous: list[str] = []
    exclude: list[str] = []
    if organization:
        ous, exclude = _organization_of(box, one.account_id, clause.name)
    box.state.reset_counters()
    inject(box, clause, 1 if kind == "retry" else None)
    out, inventory = tmp_path / "found.csv", tmp_path / "found.inventory.csv"

    def discover() -> int:
        done = run_discovery(
            settings(box),
            Sources(None if organization else accounts, organization, ous, exclude, ["us-east-1"]),
            # --auto, every certificate "expiring": the domain is selected when its new certificate fits
            Criteria(auto=True, expiring_within_days=36500),
            out,
            inventory,
        )
        return done.code

    if kind == "hub":
        with pytest.raises(HubUnavailable):
            discover()
        return
    if kind == "abort":
        with pytest.raises(OrganizationUnreadable) as info:
            discover()
        assert info.value.exit_code == EXIT_FAILED_ROWS and clause.error in str(info.value)
        assert not out.exists() and not inventory.exists()
        return
    exit_code = discover()
    assert box.state.faults["injected"] >= 1, "the error was injected"
    lines = [r for r in csv_rows(inventory) if r["account_id"] == one.account_id]
    errors = [r for r in lines if r["selection"] == "error"]
    if kind == "retry":
        assert exit_code == EXIT_OK and errors == [], errors
        assert [r["selection"] for r in lines] == ["selected"]
        return
    assert kind == "error", kind
    assert exit_code == EXIT_FAILED_ROWS
    assert [r["error_code"] for r in errors] == [code or clause.error], lines


def _organization_of(box: Sandbox, account: str, operation: str) -> tuple[list[str], list[str]]:
    """The account's own OU (ListAccountsForParent and ListOrganizationalUnitsForParent walk it); ListAccounts
    (no --ou) lists the whole organization, so every other account of it is excluded."""
    org = admin_client("organizations", box.endpoint)
    if operation != "ListAccounts":
        return [org.list_parents(ChildId=account)["Parents"][0]["Id"]], []
    others = [a["Id"] for page in org.get_paginator("list_accounts").paginate() for a in page["Accounts"]]
    return [], [a for a in others if a != account]


def test_the_never_connected_row_discover_waits_out_an_outage(box: Sandbox, one: SeededDomain, tmp_path: Path) -> None:
    # The `*` row for discover (run's is tests/e2e/test_outage.py): an outage once the inventory began is waited out.
    box.set_domain_certificate(one.domain, one.old_certificate_arn)
    accounts = tmp_path / "accounts.txt"
    accounts.write_text(one.account_id + "\n")
    out = tmp_path / "found.csv"
    with outage_when(box, lambda: box.state.calls["ListUserPools"] >= 1, 2.0) as started:
        done = run_discovery(
            settings(box),
            Sources(accounts, False, (), (), ["us-east-1"]),
            Criteria(auto=True, expiring_within_days=36500),
            out,
            tmp_path / "inv.csv",
        )
    assert started and done.code == EXIT_OK
    assert box.state.faults["outage_refused"] + box.state.faults["outage_reset"] > 0
    assert [r["domain"] for r in csv_rows(out)] == [one.domain]
