"""What watches a run (issue 29), decided without the sandbox: what needs a person and the message, the
notification targets and the plain-HTTP rule, the watcher's findings, the textfile's memory of the last success."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from fleet.cli import main
from fleet.observe import metrics, notify
from fleet.observe.check import findings, lines
from fleet.observe.facts import DomainFacts, RunFacts

from ..files import per_domain, samples


def facts(*statuses: tuple[str, str | None], **overrides: Any) -> RunFacts:
    domains = tuple(
        DomainFacts("111122223333", "us-east-1", f"d{i}.example.com", status, error_code=code)
        for i, (status, code) in enumerate(statuses)
    )
    fields: dict[str, Any] = {"command": "run", "manifest": "prod.csv", "shard": "", "exit_code": 0}
    return RunFacts(**{**fields, "finished_at": 1.7e9, "domains": domains, **overrides})


def test_a_quiet_run_needs_nobody() -> None:
    quiet = facts(("unchanged", None), ("verified", None), ("pending", None), ("held", None))
    assert notify.reasons(quiet) == []


def test_failures_and_stuck_domains_are_told_apart_and_named() -> None:
    found = notify.reasons(facts(("failed", "AccessDenied"), ("failed", "StuckUpdating"), ("verified", None)))
    assert [(r.kind, r.domains) for r in found] == [("failed", ("d0.example.com",)), ("stuck", ("d1.example.com",))]
    assert "AccessDenied" in found[0].summary


@pytest.mark.parametrize(
    ("stopped", "kind"),
    [
        ("canary failed: d0.example.com ended failed", "canary"),
        ("failure budget exceeded: 3 written rows failed (budget 2)", "budget"),
        ("endpoint https://x unreachable since 2026-01-01T00:00:00Z (more than --outage-patience 300s; ...)", "outage"),
    ],
)
def test_a_stop_that_needs_a_person(stopped: str, kind: str) -> None:
    assert [r.kind for r in notify.reasons(facts(("skipped", None), stopped=stopped))] == [kind]


def test_a_signal_or_max_runtime_stop_needs_nobody() -> None:
    assert notify.reasons(facts(("skipped", None), stopped="max-runtime 60s")) == []


def test_a_held_fleet_is_told_once_and_only_the_hold() -> None:
    held = facts(("failed", "AccessDenied"), held="held: the fleet is held by ops@host since ...")
    # Nothing was looked at: the domains are the last report's, told when they were new.
    assert [r.kind for r in notify.reasons(held)] == ["held"]
    assert notify.reasons(held, held_before=True) == []


def test_the_message_has_a_text_line_and_the_structured_fields() -> None:
    f = facts(("failed", "CertificateNotFound"), exit_code=1, run_id="r1")
    body = notify.message(f, notify.reasons(f))
    assert body["text"].startswith("cognito-fleet run prod.csv (exit 1) needs a person: 1 domains failed")
    assert "d0.example.com" in body["text"] and "CertificateNotFound" in body["text"]
    assert body["reasons"] == [
        {"kind": "failed", "summary": "1 domains failed (CertificateNotFound)", "domains": ["d0.example.com"]}
    ]
    assert (body["run_id"], body["exit_code"], body["manifest"]) == ("r1", 1, "prod.csv")


def test_targets_and_the_plain_http_rule() -> None:
    assert notify.target("https://hooks.example.com/x") == notify.Webhook("https://hooks.example.com/x")
    assert notify.target("http://127.0.0.1:8080/hook") == notify.Webhook("http://127.0.0.1:8080/hook")
    topic = "arn:aws:sns:eu-west-1:123456789012:cognito-fleet-alerts"
    assert notify.target(f"sns:{topic}") == notify.Topic(topic) and notify.Topic(topic).region == "eu-west-1"
    with pytest.raises(ValueError, match="plain HTTP to another machine"):
        notify.target("http://hooks.example.com/secret")
    with pytest.raises(ValueError, match="not an SNS topic ARN"):
        notify.target("sns:arn:aws:sqs:eu-west-1:123456789012:q")
    with pytest.raises(ValueError, match="neither"):
        notify.target("ftp://x")


def test_a_plain_http_webhook_elsewhere_is_a_usage_error_before_anything_runs(tmp_path) -> None:
    result = CliRunner().invoke(main, ["run", str(tmp_path / "none.csv"), "--notify", "http://hooks.example.com/s"])
    assert result.exit_code == 2 and "plain HTTP to another machine" in result.output


def test_check_findings_off_target_and_edges() -> None:
    d = [
        DomainFacts("1", "r", "planned.example.com", "planned", "old"),
        DomainFacts("1", "r", "served.example.com", "unchanged", "served"),
        DomainFacts("1", "r", "unchecked.example.com", "unchanged", "unchecked"),
        DomainFacts("1", "r", "other.example.com", "unchanged", "other"),
        DomainFacts("1", "r", "far.example.com", "unchanged", "unreachable"),
        DomainFacts("1", "r", "held.example.com", "held"),
    ]
    found = findings(d)
    assert [(f["kind"], f["domains"]) for f in found] == [
        ("off-target", ["planned.example.com"]),
        ("edge", ["other.example.com", "far.example.com"]),
    ]
    text = lines(found, d)
    assert text[-1] == "check: 3 domains need attention (exit 1)"
    assert "check: far.example.com (1/r): edge serves unreachable" in text
    assert findings(d[1:3] + d[5:]) == []
    assert lines([], d[1:3]) == ["check: all 2 domains on their target and served at their edge"]


def metric_facts(**overrides: Any) -> RunFacts:
    domains = (
        DomainFacts("111122223333", "us-east-1", "a.example.com", "verified", "served", 2e9, 2e9),
        DomainFacts("111122223333", "us-east-1", "b.example.com", "failed", error_code="AccessDenied"),
    )
    return RunFacts(**{"command": "run", "manifest": "prod.csv", "shard": "", "exit_code": 1, "finished_at": 1.7e9,
                       "domains": domains, **overrides})  # fmt: skip


def test_the_last_success_is_carried_from_the_previous_textfile(tmp_path: Path) -> None:
    prom = tmp_path / "fleet.prom"
    metrics.write_file(prom, metric_facts(exit_code=0, last_success=1.6e9))
    found = samples(prom.read_text(encoding="utf-8"))
    # Only the current status has a series (no 0s for the other eight: docs/metrics.md).
    assert per_domain(found, "cognito_fleet_domain_status") == {
        "a.example.com": ("verified", 1.0),
        "b.example.com": ("failed", 1.0),
    }
    assert "b.example.com" not in per_domain(found, "cognito_fleet_certificate_expiration_timestamp_seconds")
    identity = metric_facts().identity
    assert metrics.previous(prom, "cognito_fleet_last_success_timestamp_seconds", identity) == 1.6e9
    # Another job's file (another manifest) is not this job's memory; a broken file is no memory.
    assert metrics.previous(prom, "cognito_fleet_last_success_timestamp_seconds", {**identity, "manifest": "x"}) is None
    prom.write_text("not { a metrics file", encoding="utf-8")
    assert metrics.previous(prom, "cognito_fleet_last_success_timestamp_seconds", identity) is None
