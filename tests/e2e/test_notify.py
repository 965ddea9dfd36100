"""Notifications (issue 29): one message per run when a person is needed, none for a quiet run; a webhook or SNS;
an undeliverable message changes no exit code; plain HTTP to another machine is refused."""

from __future__ import annotations

import json

from click.testing import CliRunner

from fleet.cli import main
from fleet.sandbox.auth import DEFAULT_ACCOUNT
from fleet.sandbox.seed import Seeder

from ..conftest import Fleet
from ..files import events
from ..receiver import Receiver
from .test_events import check as documented

# ---- what needs a person -----------------------------------------------------------------------------------------


# ---- targets -----------------------------------------------------------------------------------------------------


# ---- end to end --------------------------------------------------------------------------------------------------
def test_one_message_for_a_failed_row_none_for_a_clean_run_or_a_quiet_rerun(make_fleet, tmp_path) -> None:
    fleet: Fleet = make_fleet(accounts=1, regions=("us-east-1",), per_region=2)
    bad = fleet.domains[0]
    with Receiver() as hook:
        notify_args = ("--notify", hook.url + "/hook", "--metrics-file", str(tmp_path / "m.prom"))
        assert CliRunner().invoke(main, fleet.run_args(*notify_args)).exit_code == 0  # clean
        assert CliRunner().invoke(main, fleet.run_args(*notify_args)).exit_code == 0  # quiet rerun
        assert hook.received == []
        # The same manifest now names a certificate that does not exist for one domain: that row fails.
        missing = bad.new_certificate_arn.rsplit("/", 1)[0] + "/00000000-0000-4000-8000-000000000000"
        fleet.manifest.write_text(
            fleet.write_manifest("next.csv", {bad.domain: missing}).read_text(encoding="utf-8"), encoding="utf-8"
        )
        failed = CliRunner().invoke(main, fleet.run_args(*notify_args))
    assert failed.exit_code == 1, failed.output
    (message,) = hook.received
    body = json.loads(message.body)
    assert message.method == "POST" and message.path == "/hook"
    assert body["reasons"] == [
        {"kind": "failed", "summary": "1 domains failed (CertificateNotFound)", "domains": [bad.domain]}
    ]
    assert bad.domain in body["text"] and body["exit_code"] == 1
    assert [e["event"] for e in documented(failed.output, "run") if str(e["event"]).startswith("notif")] == ["notified"]
    # The webhook's path (its secret) stays out of the logs.
    assert "/hook" not in failed.output

    # Nobody listening: logged, and the exit code is the run's own.
    with Receiver() as gone:
        url = gone.url
    undelivered = CliRunner().invoke(main, fleet.run_args("--notify", url))
    assert undelivered.exit_code == 1
    found = documented(undelivered.output, "run")
    assert [e["event"] for e in found if str(e["event"]).startswith("notif")] == ["notify_failed"]


def test_sns_publish_as_the_hub_identity(make_fleet, tmp_path) -> None:
    from moto.sns.models import sns_backends

    fleet: Fleet = make_fleet(accounts=1, regions=("us-east-1",), per_region=1)
    admin = Seeder(fleet.box.endpoint).session(DEFAULT_ACCOUNT)
    sns = admin.client("sns", "us-east-1", endpoint_url=fleet.box.endpoint)
    topic = sns.create_topic(Name="cognito-fleet-alerts")["TopicArn"]
    other = sns.create_topic(Name="payments-alerts")["TopicArn"]
    fleet.box.state.configure(deny_accounts=[fleet.domains[0].account_id])  # the row fails: a person is needed
    result = CliRunner().invoke(main, fleet.run_args("--notify", f"sns:{topic}", "--notify", f"sns:{other}"))
    assert result.exit_code == 1, result.output
    sent = sns_backends[DEFAULT_ACCOUNT]["us-east-1"].topics[topic].sent_notifications
    assert len(sent) == 1 and fleet.domains[0].domain in sent[0][1]
    # iam/hub-policy.json allows Publish to topics named cognito-fleet-* only: the other is refused, and logged.
    assert not sns_backends[DEFAULT_ACCOUNT]["us-east-1"].topics[other].sent_notifications
    outcomes = [(e["event"], e.get("code")) for e in events(result.output) if str(e["event"]).startswith("notif")]
    assert outcomes == [("notified", None), ("notify_failed", "AuthorizationError")]


def test_an_sns_error_is_retried_then_logged_and_the_exit_code_is_the_runs(make_fleet) -> None:
    # docs/aws-contract.md's `notify` reaction: a 500 twice is retried through; one that persists is logged.
    from moto.sns.models import sns_backends

    fleet: Fleet = make_fleet(accounts=1, regions=("us-east-1",), per_region=1)
    sns = (
        Seeder(fleet.box.endpoint).session(DEFAULT_ACCOUNT).client("sns", "us-east-1", endpoint_url=fleet.box.endpoint)
    )
    topic = sns.create_topic(Name="cognito-fleet-retried")["TopicArn"]
    fleet.box.state.configure(deny_accounts=[fleet.domains[0].account_id])
    rule = {"service": "sns", "operation": "Publish", "code": "InternalFailure", "status": 500}
    fleet.box.state.configure(inject=[{**rule, "count": 2}])
    assert CliRunner().invoke(main, fleet.run_args("--notify", f"sns:{topic}")).exit_code == 1
    assert len(sns_backends[DEFAULT_ACCOUNT]["us-east-1"].topics[topic].sent_notifications) == 1
    fleet.box.state.configure(inject=[{**rule, "count": None}])
    result = CliRunner().invoke(main, fleet.run_args("--notify", f"sns:{topic}"))
    assert result.exit_code == 1
    failed = [e for e in events(result.output) if e["event"] == "notify_failed"]
    assert [e["code"] for e in failed] == ["InternalFailure"]


def test_a_command_that_ends_in_an_error_is_told_and_exported(make_fleet, tmp_path) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    fleet: Fleet = make_fleet(accounts=1, regions=("us-east-1",), per_region=1)
    prom = tmp_path / "m.prom"
    with Receiver() as hook:
        # No hub at this address: the hub check fails (exit 2) before anything is touched.
        args = fleet.run_args(
            "--endpoint-url", "https://127.0.0.1:9", "--notify", hook.url, "--metrics-file", str(prom)
        )
        result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    (message,) = hook.received
    (reason,) = json.loads(message.body)["reasons"]
    assert reason["kind"] == "error" and "127.0.0.1:9" in reason["summary"]
    codes = [
        s.value
        for f in text_string_to_metric_families(prom.read_text(encoding="utf-8"))
        for s in f.samples
        if s.name == "cognito_fleet_last_run_exit_code"
    ]
    assert codes == [2]
