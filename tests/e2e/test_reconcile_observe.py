"""reconcile with issue 29's sinks: a selected domain with nowhere to go is told once (named, with why) and
exported; `reconcile --check` (the same settings) watches what the selection picks now and every domain the state
manages, read-only; once all is moved, a run and a watch are quiet."""

from __future__ import annotations

import hashlib
import itertools
import json
from datetime import UTC, datetime
from pathlib import Path

from click.testing import CliRunner
from prometheus_client.parser import text_string_to_metric_families

from fleet.cli import main
from fleet.records.plan_file import write_plan
from fleet.sandbox.auth import READONLY_ROLE_NAME
from fleet.sandbox.seed import DISTRUSTED, OLD_CA, seed_accounts
from fleet.sandbox.server import Sandbox

from ..files import by_domain, events
from ..receiver import Receiver

_ids = itertools.count(480000000000, 1000)


def samples(path: Path, name: str) -> dict[tuple[str, ...], float]:
    out = {}
    for family in text_string_to_metric_families(path.read_text(encoding="utf-8")):
        for s in family.samples:
            if s.name == name:
                out[tuple(s.labels[k] for k in ("command", "domain", "status") if k in s.labels)] = s.value
    return out


def digests(directory: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(directory.iterdir())}


def test_nowhere_to_go_is_told_once_and_reconcile_check_watches_read_only(box: Sandbox, tmp_path: Path) -> None:
    account = str(next(_ids))
    stranded, movable = seed_accounts(box.endpoint, [account], ["eu-west-1"], 2, by=DISTRUSTED)
    box.set_certificate_status(stranded.new_certificate_arn, "PENDING_VALIDATION")  # no replacement for it
    (tmp_path / "accounts.txt").write_text(account + "\n")
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    common = [
        "--accounts", str(tmp_path / "accounts.txt"), "--regions", "eu-west-1", "--issuer", OLD_CA, "--auto",
        "--endpoint-url", box.endpoint, "--checkpoint", str(state_dir / "fleet.checkpoint.sqlite"),
        "--log-format", "json",
    ]  # fmt: skip

    def reconcile(hook: str, *more: str) -> tuple[int, str]:
        result = CliRunner().invoke(main, ["reconcile", *common, "--notify", hook, *more])
        return result.exit_code, result.output

    with Receiver() as hook:
        code, out = reconcile(hook.url, "--wait", "--wait-interval", "0.05", "--metrics-file", str(tmp_path / "r.prom"))
        assert code == 1, out  # a domain that must move and cannot is not a success
        assert box.certificate_of(movable.domain) == movable.new_certificate_arn
        (message,) = hook.received
        body = json.loads(message.body)
        assert [(r["kind"], r["domains"]) for r in body["reasons"]] == [("nowhere", [stranded.domain])]
        assert f"{stranded.domain}: no-candidate: NoCandidate" in body["text"]
        exported = samples(tmp_path / "r.prom", "cognito_fleet_domain_status")
        assert exported == {("reconcile", movable.domain, "verified"): 1.0}

        # The watcher, with the same settings and the read-only role: reads, writes nothing (no call, no file).
        box.state.reset_counters()
        before = digests(state_dir)
        code, out = reconcile(
            hook.url, "--check", "--role-name", READONLY_ROLE_NAME, "--metrics-file", str(tmp_path / "c.prom")
        )
        assert code == 1, out
        (checked,) = [e for e in events(out) if e["event"] == "run_finished" and "check" in e]  # discover's, then this
        assert [f["domains"] for f in checked["check"]] == [[stranded.domain]]
        assert {e["command"] for e in events(out)} == {"reconcile"}  # run_finished, notified: every line
        assert not box.state.writes and digests(state_dir) == before
        assert samples(tmp_path / "c.prom", "cognito_fleet_domain_status") == {
            ("check", movable.domain, "unchanged"): 1.0  # the state manages it: on its target, served
        }
        assert len(hook.received) == 2 and "nowhere" in hook.received[1].body.decode()

        # The replacement is issued now: reconcile moves it (a clean run), and the watch is quiet.
        box.set_certificate_status(stranded.new_certificate_arn, "ISSUED")
        code, out = reconcile(hook.url, "--wait", "--wait-interval", "0.05")
        assert code == 0, out
        code, out = reconcile(hook.url, "--check", "--role-name", READONLY_ROLE_NAME)
        assert code == 0, out
        assert len(hook.received) == 2  # neither the clean run nor the quiet watch sent anything
    report = by_domain(state_dir / "fleet.report.csv")
    assert report[stranded.domain]["status"] == "verified"


def test_a_refused_plan_is_one_json_error_notified_and_exported(tmp_path: Path) -> None:
    """reconcile --plan and run --plan, refused before any call (not the approved file; another manifest): one
    JSON `error` event, one message to on-call, and the metrics say exit 2."""
    manifest = tmp_path / "prod.csv"
    manifest.write_bytes((Path(__file__).parents[2] / "manifests" / "example.csv").read_bytes())
    plan = tmp_path / "prod.plan.json"
    write_plan(plan, "plan-1", datetime.now(UTC), "arn:aws:iam::1:user/hub", str(manifest), [], {})
    last = {"account_id": "111122223333", "region": "eu-west-1", "domain": "auth.example.com", "status": "verified"}
    (tmp_path / "prod.report.jsonl").write_text(json.dumps(last) + "\n")  # the last run's report: kept in the metrics
    with Receiver() as hook:
        config = tmp_path / "cognito-fleet.toml"
        config.write_text(f'[defaults]\nnotify = ["{hook.url}"]\nmetrics-file = "m.prom"\nlog-format = "json"\n')
        wrong = ["--plan", str(plan), "--plan-sha256", "0" * 64]
        refused = [
            ["reconcile", "--config", str(config), *wrong],
            ["run", str(manifest), "--config", str(config), *wrong],
        ]
        manifest.write_text(manifest.read_text() + "\n")  # not the plan's manifest any more
        refused.append(["run", str(manifest), "--config", str(config), "--plan", str(plan)])
        for n, args in enumerate(refused, 1):
            result = CliRunner().invoke(main, args)
            assert result.exit_code == 2, result.output
            (error,) = [e for e in events(result.output) if e["event"] == "error"]  # every line JSON
            assert error["code"] == "PlanError" and error["command"] == args[0], error
            assert len(hook.received) == n
            body = json.loads(hook.received[-1].body)
            assert [r["kind"] for r in body["reasons"]] == ["error"] and "PlanError" not in body["text"]
            assert "plan" in body["text"] and body["command"] == args[0]
            assert samples(tmp_path / "m.prom", "cognito_fleet_last_run_exit_code") == {(args[0],): 2.0}
        domains = samples(tmp_path / "m.prom", "cognito_fleet_domain_status")
        assert domains == {("run", "auth.example.com", "verified"): 1.0}  # run's: the last report's domains
