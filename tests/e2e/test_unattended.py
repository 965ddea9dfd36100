"""Left alone under cron: a rollback stays rolled back, a fleet hold stops every run, rows that fail before a write
never block the fleet, a stuck domain raises the alarm, and the external id stays out of the command line."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from fleet.cli import main
from fleet.migration.pipeline import RunResult, migrate
from fleet.migration.row import Mode
from fleet.records.rollback import Part, RollbackError, plan_rollback, state_name
from fleet.sandbox.seed import write_manifest
from fleet.state.checkpoint import Checkpoint

from ..clocks import ManualClock
from ..conftest import Fleet
from ..files import by_domain, csv_rows, events, finished


def invoke(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), env=env)
    return result.exit_code, result.output


def test_the_cron_run_after_a_rollback_writes_nothing_until_released(make_fleet, tmp_path: Path) -> None:
    fleet: Fleet = make_fleet(accounts=2, regions=("us-east-1",), per_region=2)
    d = fleet.domains
    prod, undo = write_manifest(d, tmp_path / "prod.csv"), tmp_path / "undo.csv"
    base = ["--endpoint-url", fleet.box.endpoint, "--no-progress"]
    assert invoke("run", str(prod), *base)[0] == 0
    # The README's rollback, with its default paths.
    code, out = invoke("rollback", str(tmp_path / "prod.report.csv"), "--manifest", str(prod), "--out", str(undo))
    assert code == 0 and "4 domains back to their previous certificates (pending=4)" in out, out
    state = tmp_path / "prod.checkpoint.sqlite"
    assert f"held in {state} by rollback-" in out
    code, out = invoke("run", str(undo), *base)
    assert code == 0 and f"its run records into the forward state {state}" in out, out
    assert not (tmp_path / "undo.checkpoint.sqlite").exists()  # the rollback's run is part of the forward story
    assert all(fleet.box.certificate_of(x.domain) == x.old_certificate_arn for x in d)

    # A plan of the forward manifest reads the state's holds: it plans nothing for the held domains.
    code, out = invoke("plan", str(prod), *base, "--out", str(tmp_path / "plan.json"))
    assert code == 0 and finished(out)["counts"] == {"held": 4}, out
    planned = json.loads((tmp_path / "plan.json").read_text(encoding="utf-8"))
    assert {e["action"] for e in planned["domains"]} == {"held"}

    fleet.box.state.reset_counters()
    code, out = invoke("run", str(prod), *base)  # the next cron run
    assert code == 0, out
    assert finished(out)["counts"] == {"held": 4} and finished(out)["drift"] == 0
    assert fleet.box.state.writes == {} and not fleet.box.state.assume_role_calls  # nothing called at all
    assert all(fleet.box.certificate_of(x.domain) == x.old_certificate_arn for x in d)
    report = by_domain(tmp_path / "prod.report.csv")
    for x in d:
        assert report[x.domain]["status"] == "held"
        assert report[x.domain]["previous_certificate_arn"] == x.old_certificate_arn
        message = report[x.domain]["error_message"]
        assert "by rollback rollback-" in message and f"release {state} --domain {x.domain}" in message

    # Moving forward again is explicit: one domain, then the rest.
    code, out = invoke("release", str(state), "--domain", d[0].domain)
    assert code == 0 and "released 1 domain;" in out
    code, out = invoke("run", str(prod), *base)
    assert code == 0 and finished(out)["counts"] == {"pending": 1, "held": 3}, out
    assert set(fleet.box.state.writes) == {d[0].domain}
    assert invoke("release", str(state), "--domain", "nope.example.com")[0] == 2  # not held: nothing released
    assert invoke("release", str(state), "--all")[0] == 0
    code, out = invoke("run", str(prod), *base)
    assert code == 0 and finished(out)["counts"] == {"pending": 3, "verified": 1}, out
    assert all(fleet.box.certificate_of(x.domain) == x.new_certificate_arn for x in d)
    assert set(fleet.box.state.writes.values()) == {1}
    code, out = invoke("history", str(state))
    assert code == 0 and out.count("  hold  ") == 4 and out.count("  release  ") == 4, out


def test_a_rollback_finds_its_state_and_its_run_is_part_of_the_forward_story(make_fleet, tmp_path: Path) -> None:
    fleet: Fleet = make_fleet(accounts=2, regions=("us-east-1",), per_region=2)
    d = fleet.domains  # two domains in each of two accounts
    state, report, undo = tmp_path / "elsewhere" / "s.db", tmp_path / "r.csv", tmp_path / "undo.csv"
    base = ["--endpoint-url", fleet.box.endpoint, "--no-progress"]
    forward = ["run", str(fleet.manifest), "--checkpoint", str(state), "--report", str(report), *base]
    assert invoke(*forward)[0] == 0
    run = json.loads((tmp_path / "r.run.json").read_text(encoding="utf-8"))
    assert run["state"] == str(state) and run["counts"] == {"pending": 4}  # counts: an object

    # A name the report does not have is refused, not a smaller rollback.
    code, out = invoke("rollback", str(report), "--out", str(undo), "--domain", "nope.example.com")
    assert code == 2 and "not in the report: nope.example.com" in out and not undo.exists(), out
    # No --state: the run record names elsewhere/s.db. Part of the report: one domain, and a whole account.
    code, out = invoke(
        "rollback", str(report), "--out", str(undo), "--domain", d[0].domain, "--account", d[2].account_id
    )
    assert code == 0 and "3 domains back to their previous certificates" in out, out
    assert f"held in {state} by rollback-" in out
    assert set(by_domain(undo)) == {d[0].domain, d[2].domain, d[3].domain}

    code, out = invoke("run", str(undo), *base)  # no --checkpoint: the rollback record names the forward state
    assert code == 0 and f"its run records into the forward state {state}" in out, out
    assert not (tmp_path / "undo.checkpoint.sqlite").exists()
    assert [fleet.box.certificate_of(x.domain) == x.old_certificate_arn for x in d] == [True, False, True, True]
    undo_run = json.loads((tmp_path / "undo.report.run.json").read_text(encoding="utf-8"))
    assert undo_run["state"] == str(state)
    assert by_domain(tmp_path / "undo.report.csv")[d[0].domain]["written_by_run"] == undo_run["run_id"]
    # The forward state tells the whole story: the forward write, the hold, the rollback's write.
    code, out = invoke("history", str(state), "--domain", d[0].domain)
    assert code == 0 and "  hold  " in out, out
    lines = out.splitlines()
    forward_write = next(i for i, line in enumerate(lines) if run["run_id"] in line and "  pending" in line)
    undo_write = next(i for i, line in enumerate(lines) if undo_run["run_id"] in line and "  pending" in line)
    assert (
        forward_write < undo_write and f"{d[0].new_certificate_arn} -> {d[0].old_certificate_arn}" in lines[undo_write]
    )

    fleet.box.state.reset_counters()
    code, out = invoke(*forward)  # the next forward (cron) run
    assert code == 0 and finished(out)["counts"]["held"] == 3, out  # type: ignore[index]
    assert fleet.box.state.writes == {}
    assert {x.domain for x in d if by_domain(report)[x.domain]["status"] == "held"} == {
        d[0].domain,
        d[2].domain,
        d[3].domain,
    }


@pytest.mark.parametrize(
    ("report", "state"),
    [
        ("prod.report.csv", "prod.checkpoint.sqlite"),
        ("prod.shard-1-of-4.report.csv", "prod.shard-1-of-4.checkpoint.sqlite"),
        ("r.csv", "r.checkpoint.sqlite"),
        ("r", "r.checkpoint.sqlite"),
    ],
)
def test_the_state_named_like_a_report(report: str, state: str) -> None:
    assert state_name(report) == state


def test_a_fleet_hold_stops_every_run_in_one_line_until_released(make_fleet) -> None:
    fleet: Fleet = make_fleet(accounts=1, regions=("us-east-1",), per_region=2)
    args = ["run", str(fleet.manifest), "--checkpoint", str(fleet.checkpoint), "--report", str(fleet.report)]
    args += ["--endpoint-url", fleet.box.endpoint, "--no-progress"]
    Checkpoint(fleet.checkpoint).close()
    code, out = invoke("hold", str(fleet.checkpoint), "--reason", "INC-42: broken chain on the new certificates")
    assert code == 0 and "the fleet is held by" in out
    fleet.box.state.reset_counters()
    code, out = invoke(*args)
    assert code == 0, out
    [line] = events(out)  # one line, and no call to AWS
    assert line["event"] == "message" and "held by" in str(line["message"]) and "INC-42" in str(line["message"])
    assert sum(fleet.box.state.calls.values()) == 0 and not fleet.box.state.assume_role_calls
    assert not fleet.report.exists()
    code, out = invoke("release", str(fleet.checkpoint))
    assert code == 0 and "fleet hold is lifted" in out
    code, out = invoke(*args)
    assert code == 0 and finished(out)["counts"] == {"pending": 2}
    code, out = invoke("history", str(fleet.checkpoint))
    assert "hold-fleet  the fleet (INC-42" in out and "release-fleet" in out


def test_a_hold_made_while_a_run_waits_at_its_prompt_stops_it_before_any_write(make_fleet) -> None:
    # The run read "not held" before its hub check; on-call holds the fleet while the prompt waits and the
    # operator answers yes: the state, read again under the lock, stops the run before any write.
    fleet: Fleet = make_fleet(accounts=1, regions=("us-east-1",), per_region=2)
    Checkpoint(fleet.checkpoint).close()
    asked: list[int] = []

    def approve(info: dict[str, object]) -> bool:
        asked.append(int(str(info["writes"])))
        code, out = invoke("hold", str(fleet.checkpoint), "--reason", "INC-43: hold now")
        assert code == 0, out
        return True

    fleet.box.state.reset_counters()
    result = migrate(fleet.manifest, fleet.checkpoint, fleet.report, fleet.settings(), approve=approve)
    assert asked == [2]  # it was about to write both
    assert result.fleet_held and "INC-43" in result.fleet_held and result.exit_code == 0
    assert fleet.box.state.writes == {}
    with Checkpoint(fleet.checkpoint, create=False) as state:
        assert state.fleet_hold() is not None and state.run_info(result.run_id) is None  # no run began


def test_a_rollback_covers_a_domain_that_went_failed_after_its_write(make_fleet, tmp_path: Path) -> None:
    fleet: Fleet = make_fleet(accounts=1, regions=("us-east-1",), per_region=3)
    bad = fleet.domains[0]
    fleet.box.state.configure(propagation_delay=0.2, fail_domains={bad.domain})
    result = fleet.run(mode=Mode(wait=True, wait_timeout=5, wait_interval=0.1))
    assert result.counts == {"failed": 1, "verified": 2}
    assert by_domain(fleet.report)[bad.domain]["error_code"] == "DomainFailed"
    back = tmp_path / "back.csv"
    code, out = invoke("rollback", str(fleet.report), "--out", str(back))
    assert code == 0 and "3 domains back to their previous certificates (failed=1, verified=2)" in out, out
    assert by_domain(back)[bad.domain]["certificate_arn"] == bad.old_certificate_arn
    fleet.box.state.configure(fail_domains=set())
    code, out = invoke("run", str(back), "--endpoint-url", fleet.box.endpoint, "--no-progress")
    assert code == 0, out
    assert all(fleet.box.certificate_of(x.domain) == x.old_certificate_arn for x in fleet.domains)


def test_a_rollback_names_what_it_cannot_cover(tmp_path: Path) -> None:
    report = tmp_path / "r.report.csv"
    header = "account_id,region,user_pool_id,domain,previous_certificate_arn,certificate_arn,status\n"
    cert = "arn:aws:acm:us-east-1:111122223333:certificate/"
    report.write_text(
        header
        + f"111122223333,us-east-1,us-east-1_a,a.example.com,{cert}old,{cert}new,verified\n"
        + f"111122223333,us-east-1,us-east-1_b,b.example.com,,{cert}new,pending\n"
        + f"111122223333,us-east-1,us-east-1_c,c.example.com,{cert}new,{cert}new,unchanged\n"
    )
    plan = plan_rollback(report, None)
    assert [r.domain for r in plan.rows] == ["a.example.com"] and plan.by_status == {"verified": 1}
    assert plan.missed == ["b.example.com (pending): no previous certificate in the report or the state"]
    code, out = invoke("rollback", str(report), "--out", str(tmp_path / "u.csv"))
    assert code == 2 and "cannot find its state" in out and "--state" in out  # no silent rollback cron undoes
    assert not (tmp_path / "u.csv").exists()
    part = plan_rollback(report, None, part=Part(domains=frozenset({"c.example.com"})))
    assert part.rows == [] and part.missed == [
        "c.example.com (unchanged): not written by the tool, nothing to roll back"
    ]
    with pytest.raises(RollbackError, match="not in the report: 444455556666; nothing rolled back"):
        plan_rollback(report, None, part=Part(accounts=frozenset({"444455556666"})))


def _two_bad_rows_first(fleet: Fleet) -> Path:
    """The first account's two rows fail pre-flight: a certificate that does not exist, one that does not cover."""
    a0, a1 = fleet.domains[0], fleet.domains[1]
    assert a0.account_id == a1.account_id != fleet.domains[2].account_id
    missing = a0.new_certificate_arn.rsplit("/", 1)[0] + "/00000000-0000-0000-0000-000000000000"
    elsewhere = fleet.import_certificate(a1.account_id, ["elsewhere.example.org"])
    return fleet.write_manifest("prod.csv", {a0.domain: missing, a1.domain: elsewhere})


def test_rows_that_fail_before_a_write_never_block_the_fleet(make_fleet) -> None:
    fleet: Fleet = make_fleet(accounts=3, regions=("us-east-1",), per_region=2)
    fleet.box.state.configure(propagation_delay=0.2)
    manifest = _two_bad_rows_first(fleet)
    a0, a1 = fleet.domains[0], fleet.domains[1]
    args = ["run", str(manifest), "--endpoint-url", fleet.box.endpoint, "--no-progress", "--wait-interval", "0.1"]
    args += ["--canary", "1", "--max-failures", "1"]
    for attempt in ("first", "rerun"):
        code, out = invoke(*args)
        assert code == 1, (attempt, out)
        report = by_domain(fleet.tmp / "prod.report.csv")
        assert (report[a0.domain]["status"], report[a0.domain]["error_code"]) == ("failed", "CertificateNotFound")
        assert (report[a1.domain]["status"], report[a1.domain]["error_code"]) == (
            "failed",
            "CertificateDoesNotCoverDomain",
        )
        others = [report[x.domain]["status"] for x in fleet.domains[2:]]
        assert set(others) <= {"pending", "verified"} and len(others) == 4, (attempt, report)
        end = finished(out)
        assert "skipped" not in end["counts"] and "stop_reason" not in end  # type: ignore[operator]
        assert end["failures_before_write"] == {"CertificateNotFound": 1, "CertificateDoesNotCoverDomain": 1}
        assert f"canary: account {a0.account_id} has no row to write" in str(end["canary"])
    assert all(fleet.box.certificate_of(x.domain) == x.new_certificate_arn for x in fleet.domains[2:])
    assert set(fleet.box.state.writes) == {x.domain for x in fleet.domains[2:]}
    assert set(fleet.box.state.writes.values()) == {1}


def test_a_denied_account_is_no_canary_and_spends_no_budget(make_fleet) -> None:
    fleet: Fleet = make_fleet(accounts=3, regions=("us-east-1",), per_region=2)
    fleet.box.state.configure(propagation_delay=0.2, deny_accounts={fleet.domains[0].account_id})
    result = fleet.run(canary=1, max_failures=0, mode=Mode(wait_interval=0.1))
    assert result.exit_code == 1 and not result.stopped
    assert result.counts == {"failed": 2, "verified": 1, "pending": 3}
    assert result.tally.before_write == {"AccessDenied": 2} and not result.tally.after_write
    assert any("has no row to write (2 failed AccessDenied)" in n for n in result.tally.notes)
    lines = result.lines()
    assert any(line.startswith("failed before any write (pre-flight, access;") for line in lines)
    # Without a canary as well: pre-flight failures and the denied account leave the budget of 0 untouched.
    fleet.box.state.configure(deny_accounts=set())
    manifest = _two_bad_rows_first(fleet)
    for x in fleet.domains:
        fleet.box.set_domain_certificate(x.domain, x.old_certificate_arn)
    fleet.box.state.configure(deny_accounts={fleet.domains[4].account_id})
    fleet.checkpoint.unlink()
    result = fleet.run(manifest, max_failures=0)
    assert result.counts == {"failed": 4, "pending": 2} and not result.stopped and result.exit_code == 1
    assert result.tally.before_write == {
        "CertificateNotFound": 1,
        "CertificateDoesNotCoverDomain": 1,
        "AccessDenied": 2,
    }


def test_a_domain_updating_past_stuck_after_fails_stuck_updating(make_fleet) -> None:
    fleet: Fleet = make_fleet(accounts=1, regions=("us-east-1",), per_region=2)
    fleet.box.state.configure(propagation_delay=100_000)  # real seconds: the domains stay UPDATING
    clock = ManualClock()  # virtual time: the runs' clock, and the write times the state records

    def cron_run() -> RunResult:
        return migrate(fleet.manifest, fleet.checkpoint, fleet.report, fleet.settings(), clock=clock)

    assert cron_run().counts == {"pending": 2}
    clock.advance(3600)  # an hour later: still within Cognito's hour: pending, with its age
    result = cron_run()
    assert result.counts == {"pending": 2} and [round(a) for _, a in result.pending] == [3600, 3600]
    assert any(
        line.startswith("pending: 2 domains still distributing; oldest written 1h00m ago") for line in result.lines()
    )
    clock.advance(3601)  # past the default --stuck-after (2 h) since the write
    result = cron_run()
    assert result.counts == {"failed": 2} and result.exit_code == 1
    for row in csv_rows(fleet.report):
        assert row["error_code"] == "StuckUpdating"
        assert "still UPDATING 2h00m after the write at" in row["error_message"]
        assert "(--stuck-after 2h00m)" in row["error_message"]
    assert set(fleet.box.state.writes.values()) == {1}  # the alarm writes nothing


def test_history_of_an_unknown_run_exits_2(make_fleet) -> None:
    fleet: Fleet = make_fleet(accounts=1, regions=("us-east-1",), per_region=1)
    result = fleet.run()
    code, out = invoke("history", str(fleet.checkpoint), "--run", "bogus")
    assert code == 2 and "no run 'bogus'" in out
    code, out = invoke("history", str(fleet.checkpoint), "--run", "bogus", "--report", str(fleet.tmp / "x.csv"))
    assert code == 2 and not (fleet.tmp / "x.csv").exists()
    code, out = invoke("history", str(fleet.checkpoint), "--run", result.run_id)
    assert code == 0 and fleet.domains[0].domain in out


def test_the_external_id_from_a_file_or_the_environment_is_never_shown(make_fleet, tmp_path: Path) -> None:
    fleet: Fleet = make_fleet(accounts=1, regions=("us-east-1",), per_region=1)
    secret = "ext-7c1f-not-for-ps"
    fleet.box.state.configure(external_ids={fleet.domains[0].account_id: secret})
    base = ["run", str(fleet.manifest), "--endpoint-url", fleet.box.endpoint, "--no-progress"]
    base += ["--checkpoint", str(fleet.checkpoint), "--report", str(fleet.report)]
    code, out = invoke(*base, env={"COGNITO_FLEET_EXTERNAL_ID": ""})
    assert code == 1 and finished(out)["failures"] == {"AccessDenied": 1}  # the role wants the external id
    secret_file = tmp_path / "external-id"
    secret_file.write_text(secret + "\n")
    code, out = invoke(*base, "--external-id-file", str(secret_file))
    assert code == 0 and secret not in out, out
    started = next(e for e in events(out) if e["event"] == "run_started")
    assert started["options"]["external_id"] == "set"  # type: ignore[index]
    fleet.box.set_domain_certificate(fleet.domains[0].domain, fleet.domains[0].old_certificate_arn)
    code, out = invoke(*base, env={"COGNITO_FLEET_EXTERNAL_ID": secret})
    assert code == 0 and secret not in out and finished(out)["counts"] == {"pending": 1}, out
    code, out = invoke(*base, "--external-id-file", str(tmp_path / "absent"))
    assert code == 2 and f"{tmp_path / 'absent'}: cannot read" in out
    code, out = invoke(*base, "--external-id-file", str(secret_file), "--external-id", "x")
    assert code == 2 and "give one of --external-id and --external-id-file" in out


def test_the_schedule_examples_use_a_settings_file_a_canary_a_budget_and_resume_after_75(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    readme = (root / "README.md").read_text(encoding="utf-8")
    operations = (root / "docs" / "operations.md").read_text(encoding="utf-8")
    section = operations.split("## Running from cron", 1)[1].split("\n## ", 1)[0]
    # The options live in a settings file (README and docs/operations.md), which the real loader accepts ...
    for text in (readme.split("## Running it on a schedule", 1)[1], section):
        settings = text.split("```toml", 1)[1].split("```", 1)[0]
        run = tomllib.loads(settings)["run"]
        assert run["canary"] >= 1 and run["max-failures"] and run["max-runtime"] and run["external-id-file"]
        assert "external-id" not in run  # never the secret itself
        (tmp_path / "cognito-fleet.toml").write_text(settings, encoding="utf-8")
        config = ["--config", str(tmp_path / "cognito-fleet.toml")]
        result = CliRunner().invoke(main, ["validate", str(root / "manifests" / "example.csv"), *config])
        assert result.exit_code == 0, result.output
        # ... and the crontab line carries only the command.
        [cron] = [line for line in text.splitlines() if line.startswith("*/15 * * * *")]
        assert " run " in cron and "--external-id" not in cron and "--canary" not in cron
    service = section.split("# /etc/systemd/system/cognito-fleet.service", 1)[1]
    assert "WorkingDirectory=/srv/certs" in service and "SuccessExitStatus=75" in service
    cronjob = yaml.safe_load(section.split("```yaml", 1)[1].split("```", 1)[0])
    job = cronjob["spec"]["jobTemplate"]["spec"]
    rules = job["podFailurePolicy"]["rules"]
    assert {"action": "Count", "onExitCodes": {"containerName": "run", "operator": "In", "values": [75]}} in rules
    assert {
        "action": "FailJob",
        "onExitCodes": {"containerName": "run", "operator": "NotIn", "values": [0, 75]},
    } in rules
    assert job["backoffLimit"] >= 1  # a 75 is resumed in a new pod, boundedly
    container = job["template"]["spec"]["containers"][0]
    assert container["name"] == "run" and job["template"]["spec"]["restartPolicy"] == "Never"
    assert "--external-id" not in container["args"]
    assert {"name": "COGNITO_FLEET_CONFIG", "value": "/config/cognito-fleet.toml"} in container["env"]
    assert "/config" in {mount["mountPath"] for mount in container["volumeMounts"]}
    # A restrictive container: no privilege escalation, read-only root, no capability; /tmp writable.
    for example in [cronjob, *(yaml.safe_load(block.split("```", 1)[0]) for block in operations.split("```yaml")[2:])]:
        spec = example["spec"].get("jobTemplate", example)["spec"]["template"]["spec"]
        for box in spec["containers"]:
            assert box["securityContext"]["allowPrivilegeEscalation"] is False
            assert box["securityContext"]["readOnlyRootFilesystem"] is True
            assert box["securityContext"]["capabilities"] == {"drop": ["ALL"]}
            assert "/tmp" in {mount["mountPath"] for mount in box["volumeMounts"]}
    # The options the examples use exist (click refuses unknown ones).
    for option in ("--canary", "--max-failures", "--external-id-file", "--stuck-after", "--max-runtime"):
        assert option in CliRunner().invoke(main, ["run", "--help"]).output
