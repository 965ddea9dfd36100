"""The checkpoint as the fleet's state: manifests that change, drift that is caught, history rollback can trust."""

from __future__ import annotations

import shutil
import sqlite3
from dataclasses import replace
from pathlib import Path

import anyio
from click.testing import CliRunner

from fleet.cli import main
from fleet.manifest import parse
from fleet.outcome import Status
from fleet.records.report import write_report
from fleet.sandbox.seed import seed_accounts, write_manifest
from fleet.state.checkpoint import CONVERGE, RESUME, SCHEMA_VERSION, Checkpoint

from ..conftest import Fleet
from ..files import by_domain, csv_rows, finished

DATA = Path(__file__).resolve().parents[1] / "data"


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def test_a_changed_manifest_on_the_same_state_writes_only_new_and_drifted_domains(make_fleet) -> None:
    fleet: Fleet = make_fleet(accounts=2, regions=("us-east-1",), per_region=3)
    d = fleet.domains
    manifest_a = write_manifest(d[:5], fleet.tmp / "a.csv")
    first = fleet.run(manifest_a)
    assert first.counts == {"pending": 5}
    # Someone puts d1 back on its old certificate by hand.
    fleet.box.set_domain_certificate(d[1].domain, d[1].old_certificate_arn)
    # Manifest B: d0 and d4 left, d5 is new.
    manifest_b = write_manifest([d[1], d[2], d[3], d[5]], fleet.tmp / "b.csv")
    fleet.box.state.reset_counters()
    second = fleet.run(manifest_b)
    assert second.exit_code == 0, second.counts
    assert set(fleet.box.state.writes) == {d[1].domain, d[5].domain}  # the drifted and the new domain only
    assert fleet.box.state.calls["DescribeUserPoolDomain"] == 4  # every row of B described once
    assert second.drift == 1 and any("drift: 1 domains" in line for line in second.lines())
    report = by_domain(fleet.report)
    assert set(report) == {d[1].domain, d[2].domain, d[3].domain, d[5].domain}  # d0, d4 left: not reported
    assert report[d[1].domain]["drift"] == "yes" and report[d[2].domain]["drift"] == ""
    assert {k: r["status"] for k, r in report.items()} == {
        d[1].domain: "pending",
        d[2].domain: "verified",  # moved by run A, seen ACTIVE on its target now
        d[3].domain: "verified",
        d[5].domain: "pending",
    }
    # Every domain the tool moved names its original certificate, also those this run did not write.
    for x in (d[1], d[2], d[3], d[5]):
        assert report[x.domain]["previous_certificate_arn"] == x.old_certificate_arn
    back = fleet.tmp / "back.csv"
    code, out = invoke("rollback", str(fleet.report), "--out", str(back))
    assert code == 0, out
    assert {r["domain"]: r["certificate_arn"] for r in csv_rows(back)} == {
        x.domain: x.old_certificate_arn for x in (d[1], d[2], d[3], d[5])
    }
    # A second run of B writes nothing (it describes every domain: the pass had ended).
    fleet.box.state.reset_counters()
    third = fleet.run(manifest_b)
    assert third.exit_code == 0 and fleet.box.state.writes == {} and third.drift == 0
    # The history keeps every record: d1 was written by run A and again (drift) by run B.
    state = Checkpoint(fleet.checkpoint)
    try:
        writes = [h for h in state.history(domain=d[1].domain) if h["status"] == "in_flight"]
        assert [(h["run_id"], h["drift"]) for h in writes] == [(first.run_id, 0), (second.run_id, 1)]
        assert [r["run_id"] for r in state.runs()] == [first.run_id, second.run_id, third.run_id]
    finally:
        state.close()
    code, out = invoke("history", str(fleet.checkpoint), "--domain", d[1].domain)
    assert code == 0 and out.count("in_flight") == 2 and "drift" in out
    again = fleet.tmp / "a-again.csv"
    code, out = invoke("history", str(fleet.checkpoint), "--run", first.run_id, "--report", str(again))
    assert code == 0, out
    assert {r["domain"]: r["status"] for r in csv_rows(again)} == {x.domain: "pending" for x in d[:5]}


def test_after_a_rollback_the_forward_manifest_writes_again_not_verified(make_fleet) -> None:
    fleet: Fleet = make_fleet(accounts=1, regions=("us-east-1",), per_region=2)
    assert fleet.run().counts == {"pending": 2}
    back = fleet.tmp / "back.csv"
    assert invoke("rollback", str(fleet.report), "--out", str(back))[0] == 0
    code, out = invoke("run", str(back), "--endpoint-url", fleet.box.endpoint, "--no-progress")  # its own state
    assert code == 0, out
    assert all(fleet.box.certificate_of(x.domain) == x.old_certificate_arn for x in fleet.domains)
    fleet.box.state.reset_counters()
    assert fleet.run().counts == {"held": 2} and fleet.box.state.writes == {}  # the rollback holds them
    assert invoke("release", str(fleet.checkpoint), "--all")[0] == 0
    result = fleet.run()  # the forward manifest again, on its state: no "verified" for what it did not see
    # Written again, not drift: the tool's own rollback moved them, not someone else.
    assert result.counts == {"pending": 2} and result.drift == 0
    assert set(fleet.box.state.writes.values()) == {1} and len(fleet.box.state.writes) == 2


def test_a_rollback_runs_as_printed_although_the_old_certificates_expire_soon(box, tmp_path: Path) -> None:
    domains = seed_accounts(box.endpoint, ["310000000000", "310000000001"], ["us-east-1"], 1, old_days=10)
    manifest = write_manifest(domains, tmp_path / "m.csv")
    base = ["--endpoint-url", box.endpoint, "--no-progress"]
    assert invoke("run", str(manifest), *base)[0] == 0
    back = tmp_path / "back.csv"
    code, out = invoke("rollback", str(tmp_path / "m.report.csv"), "--out", str(back))
    assert code == 0 and f"next: cognito-fleet run {back}" in out
    # The old certificates expire in 10 days, within the default --min-validity-days 30: still a valid return.
    box.set_certificate_status(domains[1].old_certificate_arn, "REVOKED")  # ...but a revoked one is not
    code, out = invoke("run", str(back), *base)
    report = by_domain(tmp_path / "back.report.csv")
    assert code == 1, out
    assert report[domains[0].domain]["status"] == "pending"
    assert report[domains[1].domain]["error_code"] == "CertificateNotIssued"
    assert box.certificate_of(domains[0].domain) == domains[0].old_certificate_arn
    # Without rollback_from (a hand-made manifest back to the expiring certificate), the usual rule holds.
    forward = write_manifest([domains[0]], tmp_path / "f.csv")
    assert invoke("run", str(forward), *base)[0] == 0
    plain = write_manifest(
        [replace(domains[0], new_certificate_arn=domains[0].old_certificate_arn)], tmp_path / "p.csv"
    )
    code, _ = invoke("run", str(plain), *base)
    assert code == 1 and by_domain(tmp_path / "p.report.csv")[domains[0].domain]["error_code"] == (
        "CertificateExpiresSoon"
    )


def test_a_0_1_checkpoint_is_upgraded_in_place(tmp_path: Path) -> None:
    path = tmp_path / "checkpoint.sqlite"
    shutil.copy(DATA / "checkpoint-0.1.sqlite", path)
    # The repository's copy is 0644: a state others can read is refused (tests/e2e/test_state_files.py).
    path.chmod(0o600)
    manifest = parse(DATA / "checkpoint-0.1.manifest.csv")
    state = Checkpoint(path)
    try:
        assert state.runs()[0]["run_id"] == "0.1"
        rows = {r.domain: r for r in manifest.rows}
        statuses = {domain: state.get(domain).status for domain in rows}  # type: ignore[union-attr]
        assert sorted(statuses.values()) == [Status.FAILED, Status.PENDING, Status.PENDING, Status.PENDING]
        for domain, status in statuses.items():
            outcome = state.get(domain)
            assert outcome is not None
            moved = state.original(domain, rows[domain].certificate_arn)
            assert moved == (outcome.previous_certificate_arn if status is Status.PENDING else None)
        # 0.1 could not tell whether its last run ended: the first run on the file resumes, as 0.1 would.
        assert state.begin("upgrade-test", str(manifest.path), len(manifest.rows)) == RESUME
        counts = write_report(manifest.rows, state, tmp_path / "r.csv")
        assert counts == {"pending": 3, "failed": 1}
        state.finish(dict(counts), complete=True)
    finally:
        state.close()
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == (str(SCHEMA_VERSION),)
        assert db.execute("SELECT COUNT(*) FROM meta WHERE key = 'fingerprint'").fetchone() == (0,)
    reopened = Checkpoint(path)  # opening again changes nothing, and the next run starts a new pass
    try:
        assert reopened.begin("after", str(manifest.path), len(manifest.rows)) == CONVERGE
    finally:
        reopened.close()


def test_nothing_to_do_is_success(box, tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("account_id,region,user_pool_id,domain,certificate_arn\n")
    code, out = invoke("validate", str(empty))
    assert code == 0 and "valid: 0 rows" in out and "nothing to do" in out
    box.state.reset_counters()
    for command in ("plan", "run"):
        code, out = invoke(command, str(empty), "--endpoint-url", box.endpoint, "--no-progress")
        assert code == 0 and "nothing to do" in out, out
    assert sum(box.state.calls.values()) == 0 and not box.state.assume_role_calls
    assert not (tmp_path / "empty.checkpoint.sqlite").exists()


def test_filters_select_rows_without_changing_the_state(make_fleet) -> None:
    fleet: Fleet = make_fleet(accounts=3, regions=("us-east-1", "eu-west-1"), per_region=1)
    a, b, c = sorted({x.account_id for x in fleet.domains})
    accounts_file = fleet.tmp / "accounts.txt"
    accounts_file.write_text(f"# the first two\n{a}\n{b}\n")
    base = ["run", str(fleet.manifest), "--endpoint-url", fleet.box.endpoint, "--no-progress"]
    code, out = invoke(*base, "--accounts", f"@{accounts_file}", "--exclude-accounts", b, "--regions", "eu-west-1")
    assert code == 0, out
    assert set(fleet.box.state.writes) == {
        x.domain for x in fleet.domains if x.account_id == a and x.region == "eu-west-1"
    }
    assert finished(out)["counts"] == {"pending": 1}
    code, out = invoke(*base)  # unfiltered, same state: the rest is done, the filtered row verified
    assert code == 0 and finished(out)["counts"] == {"pending": 5, "verified": 1}, out
    assert set(fleet.box.state.writes.values()) == {1} and len(fleet.box.state.writes) == 6
    code, out = invoke(*base, "--accounts", f"@{fleet.tmp / 'absent.txt'}")
    assert code == 2 and "cannot read" in out
    assert c  # three accounts seeded


async def test_history_of_an_unknown_domain_says_so(tmp_path: Path) -> None:
    state = Checkpoint(tmp_path / "s.sqlite")
    state.close()
    code, out = await anyio.to_thread.run_sync(lambda: invoke("history", str(tmp_path / "s.sqlite"), "--domain", "x"))
    assert code == 0 and "nothing recorded for x" in out


def test_history_of_several_state_files_the_shards_of_a_fleet(make_fleet) -> None:
    from fleet.migration.pipeline import migrate
    from fleet.shard import Shard

    fleet: Fleet = make_fleet(accounts=4, regions=("us-east-1",), per_region=1)
    states = []
    for i in range(2):
        shard = Shard.parse(f"{i}/2")
        state = fleet.tmp / f"prod.{i}.sqlite"
        migrate(fleet.manifest, state, fleet.tmp / f"prod.{i}.csv", fleet.settings(), shard=shard)
        states.append(state)
    code, out = invoke("history", *map(str, states))
    assert code == 0, out
    assert [line for line in out.splitlines() if line.startswith("== ")] == [f"== {s}" for s in states]
    for d in fleet.domains:  # every domain's record is in exactly one of the shards' states
        code, out = invoke("history", *map(str, states), "--domain", d.domain)
        assert code == 0 and out.count(d.domain) == 2 and out.count("== ") == 1  # its in-flight mark and outcome
    code, out = invoke("history", *map(str, states), "--run", "x", "--report", str(fleet.tmp / "r.csv"))
    assert code == 2 and "one state file" in out
