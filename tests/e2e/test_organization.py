"""The hub confined to the organization (issue 21): the hub policy's aws:ResourceOrgID condition refuses an
AssumeRole outside it, and validate/plan warn about manifest accounts outside an allow-list beforehand."""

from __future__ import annotations

import contextlib

from click.testing import CliRunner

from fleet.cli import main
from fleet.sandbox.seed import admin_client

from ..conftest import Fleet
from ..files import by_domain, events


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def test_an_account_outside_the_organization_is_refused_by_the_hub_policy(make_fleet) -> None:
    fleet: Fleet = make_fleet(accounts=2, regions=("us-east-1",), per_region=1)
    stranger, member = sorted({d.account_id for d in fleet.domains})
    fleet.box.state.knobs.outside_organization = {stranger}
    code, out = invoke(*fleet.run_args("--no-progress"))
    assert code == 1, out
    report = by_domain(fleet.report)
    for d in fleet.domains:
        line = report[d.domain]
        if d.account_id == stranger:
            assert line["status"] == "failed" and line["error_code"] == "AccessDenied", line
            assert "AssumeRole" in line["error_message"]
        else:
            assert line["status"] == "pending"
    assert set(fleet.box.state.writes) == {d.domain for d in fleet.domains if d.account_id == member}
    assert fleet.box.state.faults.get("denied", 0) >= 1


def test_validate_warns_about_accounts_outside_the_allow_list(make_fleet) -> None:
    fleet: Fleet = make_fleet(accounts=2, regions=("us-east-1",), per_region=1)
    a, b = sorted({d.account_id for d in fleet.domains})
    code, out = invoke("validate", str(fleet.manifest), "--allowed-accounts", a)
    assert code == 0 and "valid: 2 rows" in out, out
    assert f"warning: 1 manifest account(s) not in --allowed-accounts: {b};" in out
    code, out = invoke("validate", str(fleet.manifest), "--allowed-accounts", f"{a},{b}")
    assert code == 0 and "warning" not in out


def test_plan_warns_about_accounts_outside_the_organization(make_fleet) -> None:
    fleet: Fleet = make_fleet(accounts=2, regions=("us-east-1",), per_region=1)
    a, b = sorted({d.account_id for d in fleet.domains})
    org = admin_client("organizations", fleet.box.endpoint)
    with contextlib.suppress(org.exceptions.AlreadyInOrganizationException):
        org.create_organization(FeatureSet="ALL")
    members = {x["Id"] for x in org.list_accounts()["Accounts"]}
    assert a not in members and b not in members  # seeded accounts are not members of moto's organization
    base = ["plan", str(fleet.manifest), "--endpoint-url", fleet.box.endpoint, "--no-progress"]
    code, out = invoke(*base, "--organization", "--allowed-accounts", a)
    assert code == 0, out
    warned = {str(e["source"]): e["accounts"] for e in events(out) if e["event"] == "accounts_outside_allow_list"}
    assert warned == {"--allowed-accounts": [b], "the hub's organization": [a, b]}
