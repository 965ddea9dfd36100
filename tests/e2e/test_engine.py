"""The engine end to end against the sandbox over HTTP."""

from __future__ import annotations

import csv
import json

import anyio

from fleet.outcome import Outcome, Status, utc_now
from fleet.records.report import COLUMNS

from ..conftest import Fleet
from ..files import by_domain


def read_report(fleet: Fleet) -> dict[str, dict[str, str]]:
    return by_domain(fleet.report)


def test_multi_account_multi_region_run_moves_every_domain(make_fleet) -> None:
    fleet: Fleet = make_fleet(accounts=3, regions=("us-east-1", "eu-west-1", "ap-southeast-2"), per_region=2)
    result = fleet.run()
    assert result.exit_code == 0
    assert result.counts == {"pending": 18}
    stats = fleet.box.state.stats()
    assert stats["calls"] == {"DescribeUserPoolDomain": 18, "acm:DescribeCertificate": 18, "UpdateUserPoolDomain": 18}
    assert set(stats["writes"].values()) == {1}
    assert stats["assume_role_calls"] == {d.account_id: 1 for d in fleet.domains}
    for d in fleet.domains:
        described = fleet.describe(d)
        assert described["CustomDomainConfig"]["CertificateArn"] == d.new_certificate_arn
        assert described["UserPoolId"] == d.user_pool_id


def test_report_columns_statuses_and_jsonl(make_fleet) -> None:
    fleet: Fleet = make_fleet(accounts=2, regions=("us-east-1",), per_region=2)
    fleet.run()
    with fleet.report.open(newline="") as fh:
        reader = csv.DictReader(fh)
        assert tuple(reader.fieldnames or ()) == COLUMNS
        rows = list(reader)
    lines = [json.loads(x) for x in fleet.report.with_suffix(".jsonl").read_text().splitlines()]
    assert [r["domain"] for r in rows] == [d.domain for d in fleet.domains] == [x["domain"] for x in lines]
    for row, line, d in zip(rows, lines, fleet.domains, strict=True):
        assert row["status"] == line["status"] == "pending"
        assert row["previous_certificate_arn"] == d.old_certificate_arn
        assert row["certificate_arn"] == d.new_certificate_arn
        assert row["cloudfront_domain"].endswith(".cloudfront.net")
        # Describe, DescribeCertificate (each row has its own certificate), Update.
        assert line["attempts"] == 3 and row["attempts"] == "3"
        assert row["started_at"] <= row["finished_at"]
        assert row["error_code"] == "" and line["error_code"] is None
    assert oct(fleet.report.stat().st_mode & 0o777) == "0o600"


def test_rows_already_on_target_are_unchanged_without_a_write(make_fleet) -> None:
    fleet: Fleet = make_fleet(accounts=2, regions=("us-east-1",), per_region=2)
    first = fleet.domains[0]
    fleet.cognito(first.account_id, first.region).update_user_pool_domain(
        Domain=first.domain,
        UserPoolId=first.user_pool_id,
        CustomDomainConfig={"CertificateArn": first.new_certificate_arn},
    )
    fleet.box.state.reset_counters()
    result = fleet.run()
    assert result.counts == {"pending": 3, "unchanged": 1}
    assert first.domain not in fleet.box.state.writes
    assert read_report(fleet)[first.domain]["status"] == "unchanged"


def test_update_changes_only_the_certificate(make_fleet) -> None:
    fleet: Fleet = make_fleet(accounts=1, regions=("us-east-1",), per_region=2)
    before = {d.domain: fleet.describe(d) for d in fleet.domains}
    assert {b.get("ManagedLoginVersion") for b in before.values()} == {None, 2}
    fleet.run()
    for d in fleet.domains:
        after = fleet.describe(d)
        assert after["CustomDomainConfig"]["CertificateArn"] == d.new_certificate_arn
        for key in ("ManagedLoginVersion", "CloudFrontDistribution", "UserPoolId", "AWSAccountId"):
            assert after.get(key) == before[d.domain].get(key), key


def test_throttles_5xx_and_resets_are_retried_to_success(make_fleet) -> None:
    fleet: Fleet = make_fleet(accounts=4, regions=("us-east-1",), per_region=3)
    fleet.box.state.configure(throttle_rate=0.25, error_rate=0.1, reset_rate=0.05, seed=7)
    result = fleet.run()
    assert result.exit_code == 0 and result.counts == {"pending": 12}
    faults = fleet.box.state.faults
    assert faults["throttle"] > 0 and faults["error"] > 0 and faults["reset"] > 0
    report = read_report(fleet)
    # Every attempt is a call the sandbox received: 2 Cognito calls and 1 certificate check per row, one more
    # per injected fault, and a describe after each write that failed with its outcome unknown (5xx, reset).
    calls = fleet.box.state.calls
    assert sum(int(r["attempts"]) for r in report.values()) == sum(calls.values())
    assert 24 + 12 + sum(faults.values()) <= sum(calls.values())
    assert set(fleet.box.state.writes.values()) == {1}
    for d in fleet.domains:
        assert fleet.box.certificate_of(d.domain) == d.new_certificate_arn


def test_retries_give_up_after_max_attempts(make_fleet) -> None:
    fleet: Fleet = make_fleet(accounts=1, regions=("us-east-1",), per_region=1)
    fleet.box.state.configure(throttle_rate=1.0)
    result = fleet.run(max_attempts=3)
    assert result.exit_code == 1
    row = read_report(fleet)[fleet.domains[0].domain]
    # 3 throttled describes, and the certificate's describe made at the same time (the sandbox throttles
    # Cognito only).
    assert (row["status"], row["error_code"], row["attempts"]) == ("failed", "TooManyRequestsException", "4")
    assert (
        fleet.box.state.calls["DescribeUserPoolDomain"] == 3 and fleet.box.state.calls["acm:DescribeCertificate"] == 1
    )


def test_fatal_errors_fail_their_row_only(make_fleet, tmp_path) -> None:
    fleet: Fleet = make_fleet(accounts=2, regions=("us-east-1",), per_region=3)
    a, b, c = fleet.domains[0], fleet.domains[1], fleet.domains[2]
    text = fleet.manifest.read_text()
    text = text.replace(a.user_pool_id, b.user_pool_id, 1)  # a's row names another pool
    text = text.replace(b.new_certificate_arn, a.new_certificate_arn)  # b's target does not cover b
    text = text.replace(c.domain, "auth9." + c.domain.split(".", 1)[1])  # c's domain does not exist
    broken = tmp_path / "broken.csv"
    broken.write_text(text)
    result = fleet.run(broken)
    assert result.exit_code == 1
    assert result.counts == {"pending": 3, "failed": 3}
    report = read_report(fleet)
    assert report[a.domain]["error_code"] == "DomainPoolMismatch"
    assert report[b.domain]["error_code"] == "CertificateDoesNotCoverDomain"  # caught by the pre-flight
    assert "none of which covers" in report[b.domain]["error_message"]
    assert report["auth9." + c.domain.split(".", 1)[1]]["error_code"] == "DomainNotFound"
    assert fleet.box.state.calls["UpdateUserPoolDomain"] == 3  # only the 3 good rows were written
    for d in fleet.domains[3:]:
        assert fleet.box.certificate_of(d.domain) == d.new_certificate_arn


def test_assume_role_failure_fails_only_that_account(make_fleet) -> None:
    fleet: Fleet = make_fleet(accounts=3, regions=("us-east-1", "eu-west-1"), per_region=1)
    denied = fleet.domains[0].account_id
    fleet.box.state.configure(deny_accounts={denied})
    result = fleet.run()
    assert result.counts == {"pending": 4, "failed": 2}
    for domain, row in read_report(fleet).items():
        if row["account_id"] == denied:
            assert (row["status"], row["error_code"]) == ("failed", "AccessDenied")
            assert row["error_message"].startswith("AssumeRole:")
        else:
            assert row["status"] == "pending", domain
    assert all(d.account_id != denied for d in fleet.domains if d.domain in fleet.box.state.writes)


def test_external_id_from_settings_reaches_assume_role(make_fleet) -> None:
    fleet: Fleet = make_fleet(accounts=1, regions=("us-east-1",), per_region=1)
    fleet.box.state.configure(external_ids={fleet.domains[0].account_id: "s3cret-ext"})
    assert fleet.run().counts == {"failed": 1}
    fleet.checkpoint.unlink()
    assert fleet.run(aws={"external_id": "s3cret-ext"}).counts == {"pending": 1}


def test_failed_rows_are_done_by_the_next_run_and_a_finished_pass_is_described_again(make_fleet) -> None:
    fleet: Fleet = make_fleet(accounts=3, regions=("us-east-1",), per_region=2)
    denied = fleet.domains[0].account_id
    fleet.box.state.configure(deny_accounts={denied})
    assert fleet.run().counts == {"pending": 4, "failed": 2}
    fleet.box.state.configure(deny_accounts=set())
    fleet.box.state.reset_counters()
    second = fleet.run()
    # The earlier writes are verified (a Describe each, no write); the denied account's rows are written.
    assert second.exit_code == 0 and second.counts == {"verified": 4, "pending": 2}
    assert set(fleet.box.state.writes) == {d.domain for d in fleet.domains if d.account_id == denied}
    assert fleet.box.state.calls["DescribeUserPoolDomain"] == 6
    assert len(read_report(fleet)) == 6
    fleet.box.state.reset_counters()
    # Every row had ended: the next run starts a new pass that describes every domain once, and writes nothing.
    assert fleet.run().counts == {"verified": 6}
    # The 2 domains that ended pending are proven at the edge now: their target's serial is read (once each); the
    # 4 already proven verified cost no certificate call and no handshake.
    proven = {d.domain for d in fleet.domains if d.account_id == denied}
    assert fleet.box.state.calls == {"DescribeUserPoolDomain": 6, "acm:DescribeCertificate": 2}
    assert set(fleet.box.state.edge_handshakes) == proven and not fleet.box.state.writes


def test_row_in_flight_at_a_crash_is_described_before_any_write(make_fleet) -> None:
    fleet: Fleet = make_fleet(accounts=1, regions=("us-east-1",), per_region=2)
    done, pending = fleet.domains
    # The crash: done's write reached AWS, pending's did not; both were marked in flight.
    fleet.cognito(done.account_id, done.region).update_user_pool_domain(
        Domain=done.domain,
        UserPoolId=done.user_pool_id,
        CustomDomainConfig={"CertificateArn": done.new_certificate_arn},
    )
    checkpoint = fleet.open_checkpoint()
    for d in (done, pending):
        anyio.run(
            checkpoint.record,
            Outcome(
                domain=d.domain,
                status=Status.IN_FLIGHT,
                certificate_arn=d.new_certificate_arn,
                previous_certificate_arn=d.old_certificate_arn,
                started_at=utc_now(),
            ),
        )
    checkpoint.close()
    fleet.box.state.reset_counters()
    result = fleet.run()
    assert result.counts == {"verified": 1, "pending": 1}
    assert fleet.box.state.writes == {pending.domain: 1}
    events = fleet.box.state.events
    assert events.index(("DescribeUserPoolDomain", pending.domain)) < events.index(
        ("UpdateUserPoolDomain", pending.domain)
    )
    report = read_report(fleet)
    assert report[done.domain]["previous_certificate_arn"] == done.old_certificate_arn
