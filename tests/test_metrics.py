"""Metrics for alerting (issue 29): the run's Prometheus textfile and Pushgateway push, read back with
prometheus_client's own parser; the example alert rules name only metrics the tool exports."""

from __future__ import annotations

import base64
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from prometheus_client.parser import text_string_to_metric_families

from fleet.cli import main
from fleet.observe import metrics
from fleet.observe.facts import DomainFacts, RunFacts
from fleet.sandbox.seed import Seeder

from .conftest import Fleet
from .files import by_domain, finished
from .receiver import Receiver

ROOT = Path(__file__).resolve().parent.parent
WAIT = ("--wait", "--wait-timeout", "1", "--wait-interval", "0.05")  # the stuck edge is given up after 1 s


def samples(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Every sample of a text exposition by metric name (the library's parser: a malformed file fails here)."""
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.setdefault(s.name, []).append((dict(s.labels), s.value))
    return out


def per_domain(found: dict[str, list[tuple[dict[str, str], float]]], name: str) -> dict[str, Any]:
    return {labels["domain"]: (labels.get("status"), value) for labels, value in found.get(name, [])}


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


def facts(**overrides: Any) -> RunFacts:
    domains = (
        DomainFacts("111122223333", "us-east-1", "a.example.com", "verified", "served", 2e9, 2e9),
        DomainFacts("111122223333", "us-east-1", "b.example.com", "failed", error_code="AccessDenied"),
    )
    return RunFacts(**{"command": "run", "manifest": "prod.csv", "shard": "", "exit_code": 1, "finished_at": 1.7e9,
                       "domains": domains, **overrides})  # fmt: skip


def test_the_last_success_is_carried_from_the_previous_textfile(tmp_path: Path) -> None:
    prom = tmp_path / "fleet.prom"
    metrics.write_file(prom, facts(exit_code=0, last_success=1.6e9))
    found = samples(prom.read_text(encoding="utf-8"))
    # Only the current status has a series (no 0s for the other eight: docs/metrics.md).
    assert per_domain(found, "cognito_fleet_domain_status") == {
        "a.example.com": ("verified", 1.0),
        "b.example.com": ("failed", 1.0),
    }
    assert "b.example.com" not in per_domain(found, "cognito_fleet_certificate_expiration_timestamp_seconds")
    identity = facts().identity
    assert metrics.previous(prom, "cognito_fleet_last_success_timestamp_seconds", identity) == 1.6e9
    # Another job's file (another manifest) is not this job's memory; a broken file is no memory.
    assert metrics.previous(prom, "cognito_fleet_last_success_timestamp_seconds", {**identity, "manifest": "x"}) is None
    prom.write_text("not { a metrics file", encoding="utf-8")
    assert metrics.previous(prom, "cognito_fleet_last_success_timestamp_seconds", identity) is None


# ---- the example alert rules -------------------------------------------------------------------------------------
RULES = ROOT / "docs" / "alert-rules.yml"


def exported(expr: str) -> set[str]:
    """The metric names an expression uses (cognito_fleet_*; PromQL functions and keywords are not ours)."""
    import re

    return set(re.findall(r"\bcognito_fleet_[a-z_]+\b", expr))


def test_example_alert_rules_parse_and_name_only_exported_metrics() -> None:
    document = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    rules = [rule for group in document["groups"] for rule in group["rules"]]
    names = {rule["alert"] for rule in rules}
    assert {"CognitoFleetCertificateExpiringNotVerified", "CognitoFleetDomainFailed", "CognitoFleetNoSuccessfulRun",
            "CognitoFleetHeld"} <= names  # fmt: skip
    used: set[str] = set()
    for rule in rules:
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule
        assert rule["labels"]["severity"] in ("warning", "critical") and rule["annotations"]["summary"]
        used |= exported(rule["expr"])
        assert exported(rule["expr"]), f"{rule['alert']} names none of the tool's metrics"
    assert used <= set(metrics.METRICS), used - set(metrics.METRICS)
    # The check sees a misspelt metric (it is not vacuous).
    assert exported("cognito_fleet_last_sucess_timestamp_seconds") - set(metrics.METRICS)
