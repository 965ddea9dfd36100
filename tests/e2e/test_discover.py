"""discover: inventory many accounts, select targets (--map / --auto), write a manifest that run executes."""

from __future__ import annotations

import contextlib
import itertools
import re
from pathlib import Path

from click.testing import CliRunner

from fleet.aws.credentials import AwsSettings
from fleet.aws.retry import BackoffPolicy
from fleet.cli import main
from fleet.discover.job import Criteria, Sources, run_discovery
from fleet.migration.engine import EngineSettings
from fleet.sandbox.seed import SeededDomain, Seeder, admin_client, seed_accounts
from fleet.sandbox.server import Sandbox

from ..files import csv_rows, events, finished

_ids = itertools.count(400000000000, 1000)


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def discover(box: Sandbox, *args: str) -> tuple[int, str]:
    """`cognito-fleet discover ARGS` against the sandbox, without a progress bar."""
    return invoke("discover", *args, "--endpoint-url", box.endpoint)


def inventory_of(path: Path) -> list[dict[str, str]]:
    return csv_rows(path)


def map_file(tmp_path: Path, domains: list[SeededDomain]) -> Path:
    """--map: each domain's OLD certificate to its NEW one."""
    path = tmp_path / "map.csv"
    path.write_text(
        "old_certificate_arn,new_certificate_arn\n"
        + "".join(f"{d.old_certificate_arn},{d.new_certificate_arn}\n" for d in domains)
    )
    return path


def accounts_file(tmp_path: Path, ids: list[str]) -> Path:
    path = tmp_path / "accounts.txt"
    path.write_text("# accounts to inventory\n" + "\n".join(ids) + "\n")
    return path


def test_map_mode_discover_validate_run(box: Sandbox, tmp_path: Path) -> None:
    ids = [str(next(_ids)) for _ in range(3)]
    domains = seed_accounts(box.endpoint, ids, ["us-east-1", "eu-west-1"], 1)
    mapping = map_file(tmp_path, domains)
    out = tmp_path / "found.csv"
    code, text = discover(
        box,
        "--accounts",
        str(accounts_file(tmp_path, ids)),
        "--regions",
        "us-east-1,eu-west-1",
        "--map",
        str(mapping),
        "--out",
        str(out),
    )
    assert code == 0, text
    assert "6 custom domains, 6 selected, 0 errors" in text
    manifest = out.read_text().splitlines()
    assert manifest[1:] == sorted(manifest[1:])  # deterministic order
    code, text = invoke("validate", str(out))
    assert code == 0 and "6 rows, 3 accounts, 2 regions" in text
    code, text = invoke("run", str(out), "--endpoint-url", box.endpoint, "--no-progress")
    assert code == 0, text
    for d in domains:
        assert box.certificate_of(d.domain) == d.new_certificate_arn
    inventory = inventory_of(tmp_path / "found.inventory.csv")
    assert {r["selection"] for r in inventory} == {"selected"} and len(inventory) == 6
    assert all(int(r["days_left"]) > 300 for r in inventory)


def test_map_targets_pass_the_certificate_checks_of_run(box: Sandbox, tmp_path: Path) -> None:
    ids = [str(next(_ids))]
    domains = seed_accounts(box.endpoint, ids, ["us-east-1"], 2)
    good, bad = domains
    # Both domains share one old (wildcard) certificate; map it to bad's NEW certificate, which names bad only.
    mapping = tmp_path / "map.csv"
    mapping.write_text(
        f"old_certificate_arn,new_certificate_arn\n{good.old_certificate_arn},{bad.new_certificate_arn}\n"
    )
    out = tmp_path / "found.csv"
    args = ["--accounts", str(accounts_file(tmp_path, ids)), "--regions", "us-east-1", "--map", str(mapping)]
    code, text = discover(box, *args, "--out", str(out))
    assert code == 1, text  # a mapped domain that cannot move: not "nothing to do"
    assert (
        "1 domains must move and cannot" in text and f"{good.domain} (rejected: CertificateDoesNotCoverDomain)" in text
    )
    inventory = {r["domain"]: r for r in inventory_of(tmp_path / "found.inventory.csv")}
    assert inventory[good.domain]["selection"] == "rejected"
    assert inventory[good.domain]["error_code"] == "CertificateDoesNotCoverDomain"
    assert f"none of which covers {good.domain}" in inventory[good.domain]["error_message"]
    assert inventory[bad.domain]["selection"] == "selected"
    assert [r["domain"] for r in csv_rows(out)] == [bad.domain]  # plan would not fail it: never selected
    end = finished(text)  # discover calls AWS: it says when it started, as whom, and how it ended
    assert end["exit_code"] == 1 and end["selected"] == 1 and end["selections"] == {"rejected": 1, "selected": 1}
    assert end["cannot_move"] == 1
    assert any(e["event"] == "run_started" and e["command"] == "discover" for e in events(text))


def test_auto_mode_picks_the_newest_fitting_certificate_and_lists_the_rest(box: Sandbox, tmp_path: Path) -> None:
    expiring, fresh, stuck = (str(next(_ids)) for _ in range(3))
    soon = seed_accounts(box.endpoint, [expiring, stuck], ["us-east-1"], 2, old_days=10)
    later = seed_accounts(box.endpoint, [fresh], ["us-east-1"], 2, old_days=365)
    for d in soon:
        if d.account_id == stuck:
            box.set_certificate_status(d.new_certificate_arn, "PENDING_VALIDATION")  # no ISSUED candidate
    seeder = Seeder(box.endpoint)
    acm = seeder.session(expiring).client("acm", region_name="us-east-1", endpoint_url=box.endpoint)
    first = soon[0]
    unsuitable = seeder.import_certificate(acm, [first.domain], curve="secp384r1")  # CloudFront refuses P-384
    # The stuck account's only ISSUED certificates besides the current one: each refused, each said why.
    stuck_acm = seeder.session(stuck).client("acm", region_name="us-east-1", endpoint_url=box.endpoint)
    elsewhere = seeder.import_certificate(stuck_acm, ["other.example.org"])
    short = seeder.import_certificate(stuck_acm, [d.domain for d in soon if d.account_id == stuck], days=5)
    out = tmp_path / "auto.csv"
    code, text = discover(
        box,
        "--accounts",
        str(accounts_file(tmp_path, [expiring, fresh, stuck])),
        "--regions",
        "us-east-1",
        "--auto",
        "--expiring-within",
        "30",
        "--out",
        str(out),
    )
    assert code == 1, text  # expiring domains with nowhere to go: the manifest of the rest is still written
    assert "2 domains must move and cannot" in text and "nothing to do" not in text
    by_domain = {r["domain"]: r for r in inventory_of(tmp_path / "auto.inventory.csv")}
    for d in soon + later:
        row = by_domain[d.domain]
        if d.account_id == expiring:
            assert (row["selection"], row["target_certificate_arn"]) == ("selected", d.new_certificate_arn)
            assert int(row["days_left"]) <= 10
        elif d.account_id == stuck:
            assert (row["selection"], row["target_certificate_arn"], row["error_code"]) == (
                "no-candidate",
                "",
                "NoCandidate",
            )
            assert f"{elsewhere}: does not cover the domain" in row["error_message"]
            assert f"{short}: expires too soon" in row["error_message"]
        else:
            assert row["selection"] == "not-expiring"
    assert unsuitable not in out.read_text()
    code, text = invoke("run", str(out), "--endpoint-url", box.endpoint, "--no-progress")
    assert code == 0, text
    assert box.certificate_of(first.domain) == first.new_certificate_arn


def test_pagination_and_a_denied_account(box: Sandbox, tmp_path: Path) -> None:
    crowded, denied = str(next(_ids)), str(next(_ids))
    domains = seed_accounts(box.endpoint, [crowded, denied], ["eu-west-1"], 1)
    seeder = Seeder(box.endpoint)
    cognito = seeder.session(crowded).client("cognito-idp", region_name="eu-west-1", endpoint_url=box.endpoint)
    for i in range(2):  # 3 pools: two ListUserPools pages of 2
        cognito.create_user_pool(PoolName=f"no-domain-{i}")
    box.state.reset_counters()
    box.state.configure(deny_accounts={denied})
    out = tmp_path / "paged.csv"
    settings = EngineSettings(policy=BackoffPolicy(base=0.01, cap=0.05), aws=AwsSettings(endpoint_url=box.endpoint))
    done = run_discovery(
        settings,
        Sources(accounts_file(tmp_path, [crowded, denied]), False, (), (), ["eu-west-1"]),
        Criteria(map_file(tmp_path, domains)),
        out,
        tmp_path / "paged.inventory.csv",
        page_size=2,
    )
    code, text = done.code, done.summary
    assert code == 1, text  # one account could not be read
    assert box.state.calls["ListUserPools"] == 2 and box.state.calls["DescribeUserPool"] == 3
    inventory = inventory_of(tmp_path / "paged.inventory.csv")
    errors = [r for r in inventory if r["selection"] == "error"]
    assert [(r["account_id"], r["error_code"]) for r in errors] == [(denied, "AccessDenied")]
    assert [r["domain"] for r in inventory if r["selection"] == "selected"] == [domains[0].domain]
    assert "1 selected" in text
    assert f"could not read: {denied} (AccessDenied: AssumeRole:" in text  # the summary names it, and why


def test_organization_active_accounts_of_an_ou(box: Sandbox, tmp_path: Path) -> None:
    org = admin_client("organizations", box.endpoint)  # the hub may only list the organization (iam/)
    with contextlib.suppress(org.exceptions.AlreadyInOrganizationException):
        org.create_organization(FeatureSet="ALL")
    root = org.list_roots()["Roots"][0]["Id"]
    ou = org.create_organizational_unit(ParentId=root, Name=f"certs-{next(_ids)}")["OrganizationalUnit"]["Id"]
    child = org.create_organizational_unit(ParentId=ou, Name="child")["OrganizationalUnit"]["Id"]
    ids = []
    for n, parent in enumerate([ou, ou, child, ou, ou]):
        status = org.create_account(Email=f"a{n}-{ou}@example.com", AccountName=f"a{n}")["CreateAccountStatus"]
        account = status["AccountId"]
        org.move_account(AccountId=account, SourceParentId=root, DestinationParentId=parent)
        ids.append(account)
    closed, excluded = ids[3], ids[4]
    org.close_account(AccountId=closed)
    domains = seed_accounts(box.endpoint, ids, ["us-east-1"], 1)
    mapping = map_file(tmp_path, domains)
    out = tmp_path / "org.csv"
    code, text = discover(
        box,
        "--organization",
        "--ou",
        ou,
        "--exclude",
        excluded,
        "--regions",
        "us-east-1",
        "--map",
        str(mapping),
        "--out",
        str(out),
    )
    assert code == 0, text
    accounts = {r["account_id"] for r in csv_rows(out)}
    assert accounts == set(ids[:3])  # the child OU's account included; closed and excluded left out


def test_bad_inputs_name_file_and_line(box: Sandbox, tmp_path: Path) -> None:
    bad = tmp_path / "accounts.txt"
    bad.write_text("123456789012\n12345\n")
    code, text = invoke(
        "discover",
        "--accounts",
        str(bad),
        "--regions",
        "us-east-1",
        "--auto",
        "--out",
        str(tmp_path / "x.csv"),
        "--endpoint-url",
        box.endpoint,
    )
    assert code == 2 and f"{bad}:2:1:" in text
    code, text = invoke(
        "discover",
        "--organization",
        "--accounts",
        str(bad),
        "--regions",
        "us-east-1",
        "--auto",
        "--out",
        str(tmp_path / "x.csv"),
    )
    assert code == 2 and "exactly one of --accounts FILE and --organization" in text
    good = accounts_file(tmp_path, ["123456789012"])
    code, text = invoke(
        "discover", "--accounts", str(good), "--regions", "mars-1", "--auto", "--out", str(tmp_path / "x.csv")
    )
    assert code == 2 and "not Cognito regions: mars-1" in text


def test_seeded_organization_with_expiring_certificates_end_to_end(box: Sandbox, tmp_path: Path) -> None:
    manifest = tmp_path / "seeded.csv"
    code, text = invoke(
        "sandbox",
        "seed",
        "--endpoint-url",
        box.endpoint,
        "--accounts",
        "4",
        "--regions",
        "us-east-1",
        "--domains-per-account",
        "1",
        "--organization",
        "--ou-name",
        f"expiring-{next(_ids)}",
        "--expiring-share",
        "0.5",
        "--out",
        str(manifest),
    )
    assert code == 0, text
    ou = re.search(r"\(OU (ou-[^)]+)\)", text)
    assert ou, text
    seeded = csv_rows(manifest)
    out = tmp_path / "auto.csv"
    code, text = discover(
        box,
        "--organization",
        "--ou",
        ou.group(1),  # this test's accounts only: other tests share the organization
        "--regions",
        "us-east-1",
        "--auto",
        "--out",
        str(out),
    )
    assert code == 0, text
    inventory = {r["domain"]: r for r in inventory_of(tmp_path / "auto.inventory.csv")}
    selections = sorted(inventory[r["domain"]]["selection"] for r in seeded)
    assert selections == ["not-expiring", "not-expiring", "selected", "selected"]
    for r in seeded:
        if inventory[r["domain"]]["selection"] == "selected":
            assert inventory[r["domain"]]["target_certificate_arn"] == r["certificate_arn"]
