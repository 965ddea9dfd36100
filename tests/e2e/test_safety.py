"""Safe migrations: plan, certificate pre-flight, verification, canary, failure budget, rollback."""

from __future__ import annotations

import time
from pathlib import Path

from click.testing import CliRunner

from fleet.cli import main
from fleet.migration.row import Mode

from ..conftest import Fleet
from ..files import by_domain


def report_of(path: Path) -> dict[str, dict[str, str]]:
    return by_domain(path)


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def test_plan_is_read_only_and_says_what_a_run_would_do(make_fleet, tmp_path: Path) -> None:
    fleet: Fleet = make_fleet(accounts=2, regions=("us-east-1",), per_region=2)
    a, b, c, _ = fleet.domains
    fleet.cognito(a.account_id, a.region).update_user_pool_domain(
        Domain=a.domain, UserPoolId=a.user_pool_id, CustomDomainConfig={"CertificateArn": a.new_certificate_arn}
    )
    manifest = fleet.write_manifest("plan.csv", {b.domain: c.new_certificate_arn.replace(c.account_id, b.account_id)})
    fleet.box.state.reset_counters()
    code, out = invoke("plan", str(manifest), "--endpoint-url", fleet.box.endpoint, "--no-progress")
    assert code == 1, out
    assert fleet.box.state.writes == {} and "UpdateUserPoolDomain" not in fleet.box.state.calls
    assert set(fleet.box.state.calls) == {"DescribeUserPoolDomain", "acm:DescribeCertificate"}
    report = report_of(tmp_path / "plan.plan.csv")
    assert report[a.domain]["status"] == "unchanged"
    assert (report[b.domain]["status"], report[b.domain]["error_code"]) == ("failed", "CertificateNotFound")
    assert report[c.domain]["status"] == "planned"
    assert report[c.domain]["previous_certificate_arn"] == c.old_certificate_arn
    assert not (tmp_path / "plan.checkpoint.sqlite").exists()
    assert fleet.box.certificate_of(c.domain) == c.old_certificate_arn


def test_preflight_refuses_bad_certificates_once_per_certificate(make_fleet) -> None:
    fleet: Fleet = make_fleet(accounts=1, regions=("us-east-1", "eu-west-1"), per_region=3)
    d = fleet.domains
    acct = d[0].account_id
    pending = fleet.import_certificate(acct, [d[0].domain])
    fleet.box.set_certificate_status(pending, "PENDING_VALIDATION")
    soon = fleet.import_certificate(acct, [d[1].domain], days=10)
    p384 = fleet.import_certificate(acct, [d[2].domain], curve="secp384r1")
    deep = fleet.import_certificate(acct, ["*.example.com"])  # a wildcard covers one level only
    shared = fleet.import_certificate(acct, [f"*.{d[4].domain.split('.', 1)[1]}"])  # covers d[4] and d[5]
    manifest = fleet.write_manifest(
        "bad.csv",
        {
            d[0].domain: pending,
            d[1].domain: soon,
            d[2].domain: p384,
            d[3].domain: deep,
            d[4].domain: shared,
            d[5].domain: shared,
        },
    )
    fleet.box.state.reset_counters()
    result = fleet.run(manifest)
    report = report_of(fleet.report)
    assert [report[x.domain]["error_code"] for x in d[:4]] == [
        "CertificateNotIssued",
        "CertificateExpiresSoon",
        "CertificateKeyAlgorithmUnsupported",
        "CertificateDoesNotCoverDomain",
    ]
    assert "EC_secp384r1" in report[d[2].domain]["error_message"]
    assert result.counts == {"failed": 4, "pending": 2}
    assert set(fleet.box.state.writes) == {d[4].domain, d[5].domain}
    assert fleet.box.state.calls["acm:DescribeCertificate"] == 5  # 6 rows, 5 distinct certificates
    # A lower bar lets the 10-day certificate through; the earlier writes are now verified.
    assert fleet.run(manifest, min_validity_days=5).counts == {"failed": 3, "verified": 2, "pending": 1}
    assert fleet.box.state.writes[d[1].domain] == 1


def test_wait_verifies_and_a_timeout_leaves_rows_pending_for_the_next_run(make_fleet) -> None:
    fleet: Fleet = make_fleet(accounts=2, regions=("us-east-1",), per_region=1)
    fleet.box.state.configure(propagation_delay=0.6)
    result = fleet.run(mode=Mode(wait=True, wait_timeout=10, wait_interval=0.1))
    assert result.counts == {"verified": 2}
    assert fleet.box.state.calls["DescribeUserPoolDomain"] >= 4  # polled
    # Back to the old certificates, then a migration whose wait times out.
    fleet.checkpoint.unlink()
    for d in fleet.domains:
        fleet.cognito(d.account_id, d.region).update_user_pool_domain(
            Domain=d.domain, UserPoolId=d.user_pool_id, CustomDomainConfig={"CertificateArn": d.old_certificate_arn}
        )
    fleet.box.state.configure(propagation_delay=3.0)  # long enough for two more runs on a loaded machine
    fleet.box.state.reset_counters()
    assert fleet.run(mode=Mode(wait=True, wait_timeout=0.3, wait_interval=0.1)).counts == {"pending": 2}
    assert fleet.run().counts == {"pending": 2}  # still UPDATING: pending, no second write
    assert set(fleet.box.state.writes.values()) == {1}
    time.sleep(3.0)
    assert fleet.run().counts == {"verified": 2}  # the next (cron) run verifies without writing
    assert set(fleet.box.state.writes.values()) == {1}


def test_a_domain_that_goes_failed_fails_its_row(make_fleet) -> None:
    fleet: Fleet = make_fleet(accounts=1, regions=("us-east-1",), per_region=2)
    bad = fleet.domains[0]
    fleet.box.state.configure(propagation_delay=0.3, fail_domains={bad.domain})
    result = fleet.run(mode=Mode(wait=True, wait_timeout=5, wait_interval=0.1))
    assert result.counts == {"failed": 1, "verified": 1} and result.exit_code == 1
    assert report_of(fleet.report)[bad.domain]["error_code"] == "DomainFailed"


def test_canary_goes_first_in_distinct_accounts(make_fleet) -> None:
    fleet: Fleet = make_fleet(accounts=4, regions=("us-east-1",), per_region=2)
    fleet.box.state.configure(propagation_delay=0.3)
    result = fleet.run(canary=2, mode=Mode(wait_interval=0.1))
    assert result.exit_code == 0
    canaries = [fleet.domains[0], fleet.domains[2]]  # first row of the first two accounts
    report = report_of(fleet.report)
    assert [report[c.domain]["status"] for c in canaries] == ["verified", "verified"]
    events = fleet.box.state.events
    writes = [d for op, d in events if op == "UpdateUserPoolDomain"]
    assert set(writes[:2]) == {c.domain for c in canaries}
    last_canary_check = max(
        i for i, (op, d) in enumerate(events) if op == "DescribeUserPoolDomain" and d in {c.domain for c in canaries}
    )
    first_other = min(i for i, (op, d) in enumerate(events) if d not in {c.domain for c in canaries})
    assert last_canary_check < first_other  # the rest started only after the canaries were verified


def test_a_failed_canary_stops_the_run(make_fleet) -> None:
    fleet: Fleet = make_fleet(accounts=3, regions=("us-east-1",), per_region=2)
    canary = fleet.domains[0]
    fleet.box.state.configure(propagation_delay=0.2, fail_domains={canary.domain})
    result = fleet.run(canary=1, mode=Mode(wait_interval=0.1))
    assert result.exit_code == 1 and result.counts == {"failed": 1, "skipped": 5}
    assert set(fleet.box.state.writes) == {canary.domain}
    report = report_of(fleet.report)
    skipped = [r for r in report.values() if r["status"] == "skipped"]
    assert all("canary failed" in r["error_message"] for r in skipped)


def test_failure_budget_stops_new_writes(make_fleet) -> None:
    fleet: Fleet = make_fleet(accounts=4, regions=("us-east-1",), per_region=2)
    first, second = fleet.domains[0], fleet.domains[1]
    fleet.box.state.configure(fail_domains={first.domain, second.domain})  # FAILED after their writes
    result = fleet.run(max_failures=1, account_concurrency=1, mode=Mode(wait=True, wait_interval=0.1))
    assert result.exit_code == 1
    assert result.counts == {"failed": 2, "skipped": 6}
    assert set(fleet.box.state.writes) == {first.domain, second.domain}  # no new write once exceeded
    assert result.tally.after_write == {"DomainFailed": 2} and not result.tally.before_write
    report = report_of(fleet.report)
    assert all(
        "failure budget exceeded: 2 written rows failed (budget 1)" in r["error_message"]
        for r in report.values()
        if r["status"] == "skipped"
    )


def test_max_failures_accepts_a_percentage(make_fleet, tmp_path: Path) -> None:
    fleet: Fleet = make_fleet(accounts=4, regions=("us-east-1",), per_region=2)
    first, second = fleet.domains[0], fleet.domains[1]  # both rows of the first account go FAILED after the write
    fleet.box.state.configure(fail_domains={first.domain, second.domain})
    manifest = fleet.manifest

    def run(budget: str, name: str) -> tuple[int, dict[str, dict[str, str]]]:
        report = tmp_path / f"{name}.csv"
        args = ["run", str(manifest), "--endpoint-url", fleet.box.endpoint, "--account-concurrency", "1", "--wait"]
        args += ["--wait-interval", "0.1"]
        code, _ = invoke(
            *args,
            "--checkpoint",
            str(tmp_path / f"{name}.sqlite"),
            "--report",
            str(report),
            "--max-failures",
            budget,
            "--no-progress",
        )
        return code, report_of(report)

    # 25% of 8 rows is 2: two failures stay within the budget, and every other row is done.
    code, report = run("25%", "within")
    statuses = sorted(r["status"] for r in report.values())
    assert code == 1 and statuses == ["failed"] * 2 + ["verified"] * 6
    # 24% of 8 rows rounds down to 1: the second failure exceeds it, and the accounts after it are skipped.
    for d in fleet.domains:
        fleet.box.set_domain_certificate(d.domain, d.old_certificate_arn)
    code, report = run("24%", "over")
    assert code == 1 and sorted(r["status"] for r in report.values()) == ["failed"] * 2 + ["skipped"] * 6
    assert all("(budget 1)" in r["error_message"] for r in report.values() if r["status"] == "skipped")
    code, out = invoke("run", str(fleet.manifest), "--max-failures", "lots")
    assert code == 2 and "neither a count" in out


def test_rollback_puts_every_written_domain_back(make_fleet, tmp_path: Path) -> None:
    fleet: Fleet = make_fleet(accounts=2, regions=("us-east-1", "eu-west-1"), per_region=1)
    unchanged = fleet.domains[0]
    fleet.cognito(unchanged.account_id, unchanged.region).update_user_pool_domain(
        Domain=unchanged.domain,
        UserPoolId=unchanged.user_pool_id,
        CustomDomainConfig={"CertificateArn": unchanged.new_certificate_arn},
    )
    assert fleet.run().counts == {"unchanged": 1, "pending": 3}
    back = tmp_path / "rollback.csv"
    code, out = invoke("rollback", str(fleet.report), "--out", str(back), "--manifest", str(fleet.manifest))
    assert code == 0 and "3 domains" in out, out
    code, out = invoke("run", str(back), "--endpoint-url", fleet.box.endpoint, "--no-progress")
    assert code == 0, out
    for d in fleet.domains[1:]:
        assert fleet.box.certificate_of(d.domain) == d.old_certificate_arn
    assert fleet.box.certificate_of(unchanged.domain) == unchanged.new_certificate_arn  # never ours to undo
    code, out = invoke("rollback", str(fleet.manifest), "--out", str(tmp_path / "x.csv"))
    assert code == 2 and "not a cognito-fleet report" in out
