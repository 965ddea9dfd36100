"""Metrics for alerting (issue 29): the run's Prometheus textfile and Pushgateway push, read back with
prometheus_client's own parser (the example alert rules: tests/checks/test_alert_rules.py)."""

from __future__ import annotations

import base64
import time
from datetime import datetime

import pytest
from click.testing import CliRunner

from fleet.cli import main
from fleet.sandbox.seed import Seeder

from ..conftest import Fleet
from ..files import by_domain, finished, per_domain, samples
from ..receiver import Receiver

WAIT = ("--wait", "--wait-timeout", "1", "--wait-interval", "0.05")  # the stuck edge is given up after 1 s




def not_after(fleet: Fleet, account: str, arn: str) -> float:
    acm = Seeder(fleet.box.endpoint).session(account).client("acm", "us-east-1", endpoint_url=fleet.box.endpoint)
    moment: datetime = acm.describe_certificate(CertificateArn=arn)["Certificate"]["NotAfter"]
    return moment.timestamp()


def test_run_exports_every_domain_status_and_expiry_to_a_textfile_and_a_pushgateway(make_fleet, tmp_path) -> None:
    fleet: Fleet = make_fleet(accounts=1, regions=("us-east-1",), per_region=2)
    stuck, moved = fleet.domains
    fleet.box.state.configure(edge_stuck={stuck.domain})  # its edge keeps serving the old certificate
    prom = tmp_path / "textfile" / "fleet.prom"
    prom.parent.mkdir()
    before = time.time()
    with Receiver() as gateway:
        result = CliRunner().invoke(
            main, fleet.run_args("--metrics-file", str(prom), "--pushgateway", gateway.url, *WAIT)
        )
    after = time.time()
    assert result.exit_code == 0, result.output
    report = by_domain(fleet.report)
    found = samples(prom.read_text(encoding="utf-8"))

    statuses = per_domain(found, "cognito_fleet_domain_status")
    assert statuses == {d.domain: (report[d.domain]["status"], 1.0) for d in fleet.domains}
    assert statuses[stuck.domain][0] == "pending" and statuses[moved.domain][0] == "verified"
    assert per_domain(found, "cognito_fleet_edge_status") == {stuck.domain: ("old", 1.0), moved.domain: ("served", 1.0)}
    # Cognito is on the target now: its certificate's expiry, as ACM says; the edge's: what it served.
    expiry = per_domain(found, "cognito_fleet_certificate_expiration_timestamp_seconds")
    for d in fleet.domains:
        assert expiry[d.domain] == (None, pytest.approx(not_after(fleet, d.account_id, d.new_certificate_arn)))
    edge = per_domain(found, "cognito_fleet_edge_certificate_expiration_timestamp_seconds")
    assert edge[stuck.domain][1] == pytest.approx(not_after(fleet, stuck.account_id, stuck.old_certificate_arn))
    assert edge[moved.domain][1] == pytest.approx(expiry[moved.domain][1])
    assert {lb["status"]: v for lb, v in found["cognito_fleet_domains"]} == {"pending": 1.0, "verified": 1.0}
    ((job, code),) = found["cognito_fleet_last_run_exit_code"]
    assert code == 0 and job == {"command": "run", "manifest": str(fleet.manifest), "shard": ""}
    ((_, ran),) = found["cognito_fleet_last_run_timestamp_seconds"]
    assert before <= ran <= after
    assert found["cognito_fleet_last_success_timestamp_seconds"][0][1] == ran
    assert found["cognito_fleet_fleet_held"][0][1] == 0
    assert not list(prom.parent.glob("*.tmp*")), "the textfile is renamed into place"

    # The same metrics, pushed once to the Pushgateway under the job's grouping key.
    (push,) = gateway.received
    encoded = base64.urlsafe_b64encode(str(fleet.manifest).encode()).decode()
    assert (push.method, push.path) == ("PUT", f"/metrics/job/cognito_fleet/command/run/manifest@base64/{encoded}")
    assert per_domain(samples(push.body.decode()), "cognito_fleet_domain_status") == statuses
    assert finished(result.output)["exit_code"] == 0


def test_an_unreachable_pushgateway_is_logged_and_changes_nothing(make_fleet, tmp_path) -> None:
    fleet: Fleet = make_fleet(accounts=1, regions=("us-east-1",), per_region=1)
    with Receiver(status=500) as gateway:
        result = CliRunner().invoke(main, fleet.run_args("--pushgateway", gateway.url))
        assert result.exit_code == 0, result.output
        assert '"event": "metrics_failed"' in result.output and len(gateway.received) == 1
        # Basic-auth credentials in the gateway's URL never reach the log, whatever the failure.
        url = gateway.url.replace("://", "://pusher:s3cret-pw@", 1)
        result = CliRunner().invoke(main, fleet.run_args("--pushgateway", url))
    assert result.exit_code == 0, result.output
    assert '"event": "metrics_failed"' in result.output
    assert "s3cret-pw" not in result.output and "***@127.0.0.1" in result.output
