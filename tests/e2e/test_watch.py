"""The watcher that cannot write (issue 29): `plan --check` reads everything, writes nothing, exits 1 naming each
domain off its target or not served at its edge, exports the same metrics; a held fleet is still watched. The
read-only role (iam/readonly-role-policy.json) lets it read and refuses a write."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from prometheus_client.parser import text_string_to_metric_families

from fleet.cli import main
from fleet.sandbox.auth import READONLY_ROLE_NAME
from fleet.sandbox.seed import Seeder

from ..conftest import Fleet
from ..files import by_domain, finished
from ..receiver import Receiver
from .test_events import check as documented


def metric(path: Path, name: str) -> dict[tuple[str, ...], float]:
    """A metric's samples by (account, region, domain, status), those of them it has."""
    out = {}
    for family in text_string_to_metric_families(path.read_text(encoding="utf-8")):
        for s in family.samples:
            if s.name == name:
                out[tuple(s.labels[k] for k in ("account", "region", "domain", "status") if k in s.labels)] = s.value
    return out


def not_after(fleet: Fleet, account: str, arn: str) -> float:
    acm = Seeder(fleet.box.endpoint).session(account).client("acm", "us-east-1", endpoint_url=fleet.box.endpoint)
    return float(acm.describe_certificate(CertificateArn=arn)["Certificate"]["NotAfter"].timestamp())


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_readonly_role_reads_but_cannot_write(make_fleet) -> None:
    fleet: Fleet = make_fleet(accounts=1, regions=("us-east-1",), per_region=1)
    result = fleet.run(aws={"role_name": READONLY_ROLE_NAME})
    (row,) = by_domain(fleet.report).values()
    # Describe and the certificate checks went through; the sandbox's IAM check refused the write.
    assert (row["status"], row["error_code"]) == ("failed", "AccessDeniedException"), row
    assert result.exit_code == 1 and not fleet.box.state.writes
    assert "UpdateUserPoolDomain" in row["error_message"]


def test_the_watcher_names_a_domain_its_edge_does_not_serve_writes_nothing_and_watches_a_held_fleet(
    make_fleet, tmp_path: Path
) -> None:
    fleet: Fleet = make_fleet(accounts=1, regions=("us-east-1",), per_region=2)
    stuck, fine = fleet.domains
    fleet.box.state.configure(edge_stuck={stuck.domain})  # Cognito moves it; its edge keeps the old certificate
    run = CliRunner().invoke(main, fleet.run_args("--wait", "--wait-timeout", "1", "--wait-interval", "0.05"))
    assert run.exit_code == 0, run.output
    fleet.box.state.reset_counters()
    state_before = digest(fleet.checkpoint)
    prom = tmp_path / "watch.prom"

    def check(hook: str) -> tuple[int, str]:
        args = [
            "plan", str(fleet.manifest), "--check", "--endpoint-url", fleet.box.endpoint, "--checkpoint",
            str(fleet.checkpoint), "--report", str(tmp_path / "check.csv"), "--log-format", "json",
            "--role-name", READONLY_ROLE_NAME, "--metrics-file", str(prom), "--notify", hook,
        ]  # fmt: skip
        result = CliRunner().invoke(main, args)
        return result.exit_code, result.output

    with Receiver() as hook:
        code, out = check(hook.url)
        assert code == 1, out
        documented(out, "plan")  # every line an event docs/events.md documents (notified included)
        assert finished(out)["check"] == [
            {
                "kind": "edge",
                "summary": "1 domains on their target whose edge does not serve it (other)",
                "domains": [stuck.domain],
            }
        ]
        # Read-only: no Cognito write, the state not changed (not even a run line), the read-only role enough.
        assert not fleet.box.state.writes and digest(fleet.checkpoint) == state_before
        # (A plan knows no previous certificate of a domain already on its target: what else the edge serves is
        # "other", not "old".)
        assert metric(prom, "cognito_fleet_edge_status") == {
            (stuck.account_id, stuck.region, stuck.domain, "other"): 1.0,
            (fine.account_id, fine.region, fine.domain, "served"): 1.0,
        }
        assert metric(prom, "cognito_fleet_domain_status") == {
            (d.account_id, d.region, d.domain, "unchanged"): 1.0 for d in fleet.domains
        }
        assert metric(prom, "cognito_fleet_last_run_exit_code") == {(): 1.0}
        assert metric(prom, "cognito_fleet_fleet_held") == {(): 0.0}
        # Both on their target: the expiry is the target's (the edge's of the stuck one is the old certificate's).
        expiry = metric(prom, "cognito_fleet_certificate_expiration_timestamp_seconds")
        edge = metric(prom, "cognito_fleet_edge_certificate_expiration_timestamp_seconds")
        assert set(expiry) == {(d.account_id, d.region, d.domain) for d in fleet.domains}
        key = (stuck.account_id, stuck.region, stuck.domain)
        assert expiry[key] == pytest.approx(not_after(fleet, stuck.account_id, stuck.new_certificate_arn))
        assert edge[key] == pytest.approx(not_after(fleet, stuck.account_id, stuck.old_certificate_arn))

        # An operator holds the fleet: runs write nothing, the watcher still watches, and says held.
        held = CliRunner().invoke(main, ["hold", str(fleet.checkpoint), "--reason", "incident 42"])
        assert held.exit_code == 0, held.output
        code, out = check(hook.url)
        assert code == 1 and finished(out)["check"][0]["domains"] == [stuck.domain], out
        assert metric(prom, "cognito_fleet_fleet_held") == {(): 1.0}
        code, _ = check(hook.url)  # the next watch: still failing, the hold not told again
        assert code == 1
        kinds = [[r["kind"] for r in json.loads(m.body)["reasons"]] for m in hook.received]
    assert kinds == [["edge"], ["held", "edge"], ["edge"]]
    assert stuck.domain in json.loads(hook.received[0].body)["text"]
    assert not fleet.box.state.writes
