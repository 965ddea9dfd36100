"""An s3:// state end to end against the sandbox's S3 (moto behind the fidelity layer: SigV4, the hub held to
iam/state-bucket-policy.json, conditional writes answered 412): kills, two runs at once, a lease that runs out,
a rollback's holds. No local state anywhere."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from botocore.config import Config
from click.testing import CliRunner

from fleet.cli import main
from fleet.sandbox.s3 import STATE_BUCKET, STATE_PREFIX
from fleet.sandbox.seed import admin_client, create_bucket
from fleet.sandbox.server import Sandbox

from ..conftest import Fleet
from ..files import finished


@pytest.fixture
def state(box: Sandbox, request: pytest.FixtureRequest) -> str:
    """A state key of this test's own in the sandbox's state bucket."""
    create_bucket(box.endpoint, STATE_BUCKET)
    return f"s3://{STATE_BUCKET}/{STATE_PREFIX}{request.node.name}/state.sqlite"


def s3(box: Sandbox) -> Any:
    return admin_client("s3", box.endpoint, config=Config(s3={"addressing_style": "path"}))


def keys(box: Sandbox, state: str) -> list[str]:
    prefix = state.removeprefix(f"s3://{STATE_BUCKET}/").rsplit("/", 1)[0] + "/"  # the test's own folder
    listed = s3(box).list_objects_v2(Bucket=STATE_BUCKET, Prefix=prefix)
    return [o["Key"] for o in listed.get("Contents", [])]


def args(fleet: Fleet, state: str, *extra: str, manifest: Path | None = None) -> list[str]:
    return [
        "run",
        str(manifest or fleet.manifest),
        "--endpoint-url",
        fleet.box.endpoint,
        "--checkpoint",
        state,
        "--log-format",
        "json",
        "--no-progress",
        *extra,
    ]


def start(cli_args: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "fleet", *cli_args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
        stdin=subprocess.DEVNULL,
    )


def finish(proc: subprocess.Popen[str], timeout: float = 90) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def invoke(*cli_args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(cli_args))
    return result.exit_code, result.output


def no_local_state(fleet: Fleet) -> None:
    assert not list(fleet.tmp.rglob("*.sqlite*")), "a state file was written locally"


def test_killed_then_unlocked_and_rerun_writes_each_domain_once_and_history_lists_both_runs(
    make_fleet: Any, state: str
) -> None:
    fleet: Fleet = make_fleet(accounts=6, regions=("us-east-1",), per_region=2)  # 12 domains
    fleet.box.state.configure(latency=0.15)
    proc = start(args(fleet, state, "--rate-per-account", "2", "--account-concurrency", "2", "--lock-lease", "5"))
    deadline = time.monotonic() + 60
    while sum(fleet.box.state.writes.values()) < 3 and proc.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    finish(proc)
    assert any(".journal/" in k for k in keys(fleet.box, state))  # the killed run's marks are in S3, uncompacted
    fleet.box.state.configure(latency=0.0)
    code, out, err = finish(start(args(fleet, state)))
    assert code == 3 and "in use by run 20" in err and f"pid {proc.pid} on" in err, err  # its lease is not out
    # The forced unlock (the holder is known dead): it fences the holder's journal, then deletes the lock.
    code, out = invoke("unlock", state, "--yes", "--endpoint-url", fleet.box.endpoint)
    assert code == 0 and "locked by run 20" in out and "fenced at journal" in out, out
    code, out, err = finish(start(args(fleet, state)))
    assert code == 0, err
    assert all(fleet.box.certificate_of(d.domain) == d.new_certificate_arn for d in fleet.domains)
    assert sorted(fleet.box.state.writes) == sorted(d.domain for d in fleet.domains)
    assert set(fleet.box.state.writes.values()) == {1}  # exactly one write per domain across the kill
    left = [k for k in keys(fleet.box, state) if ".journal/" in k]
    assert left  # compacted: only the fences that stop the killed run if it was merely stalled are left
    for key in left:
        assert b'"fence"' in s3(fleet.box).get_object(Bucket=STATE_BUCKET, Key=key)["Body"].read()
    code, out = invoke("history", state, "--endpoint-url", fleet.box.endpoint)
    assert code == 0, out
    first_run = [line for line in out.splitlines() if "resume" in line or "converge" in line]
    assert len(first_run) == 2, out  # the killed run and the one that finished (refused runs never began)
    no_local_state(fleet)


def test_two_runs_at_once_one_is_refused_in_seconds_naming_the_holder_then_a_dead_holders_lease_runs_out(
    make_fleet: Any, state: str
) -> None:
    fleet: Fleet = make_fleet(accounts=2, regions=("us-east-1",), per_region=3)
    fleet.box.state.configure(latency=1.0)  # the first run outlasts the second's start (a few seconds)
    first = start(args(fleet, state, "--rate-per-account", "1", "--lock-lease", "6"))
    lock = state.removeprefix(f"s3://{STATE_BUCKET}/") + ".lock"
    deadline = time.monotonic() + 30
    while lock not in keys(fleet.box, state):
        assert time.monotonic() < deadline and first.poll() is None
        time.sleep(0.05)
    began = time.monotonic()
    code, _out, err = finish(start(args(fleet, state)))
    assert code == 3, err
    assert time.monotonic() - began < 10
    assert f"pid {first.pid} on " in err and "in use by run 20" in err
    assert first.poll() is None, "the first run ended before it could be killed: the test proved nothing"
    first.send_signal(signal.SIGKILL)
    finish(first)
    fleet.box.state.configure(latency=0.0)
    code, _out, err = finish(start(args(fleet, state)))
    assert code == 3, err  # the lease has not run out yet: still refused
    time.sleep(6.5)
    code, _out, err = finish(start(args(fleet, state)))
    assert code == 0, err
    assert "state_lock_taken_over" in err and f"pid {first.pid}" in err
    assert lock not in keys(fleet.box, state)  # released at the end of the run
    no_local_state(fleet)


def test_a_rollback_recorded_in_an_s3_state_holds_its_domains_in_the_next_forward_run(
    make_fleet: Any, state: str
) -> None:
    fleet: Fleet = make_fleet(accounts=1, regions=("us-east-1",), per_region=2)
    endpoint = ["--endpoint-url", fleet.box.endpoint]
    report = state.replace("state.sqlite", "reports/prod.report.csv")  # records beside the state, in S3
    code, out, err = finish(start(args(fleet, state, "--report", report)))
    assert code == 0, err
    stem = report.removeprefix(f"s3://{STATE_BUCKET}/").removesuffix(".csv")
    assert {stem + s for s in (".csv", ".jsonl", ".run.json")} <= set(keys(fleet.box, state))
    # A local copy of the report: its run record names the S3 state (no --state needed), kept as a URL.
    local = fleet.tmp / "copy" / "prod.report.csv"
    local.parent.mkdir()
    for suffix in (".csv", ".run.json"):
        body = s3(fleet.box).get_object(Bucket=STATE_BUCKET, Key=stem + suffix)["Body"].read()
        local.with_name("prod.report" + suffix).write_bytes(body)
    first = fleet.domains[0].domain
    code, out = invoke("rollback", str(local), "--out", str(fleet.tmp / "one.csv"), "--domain", first, *endpoint)
    assert code == 0 and f"held in {state} by rollback-" in out, out
    back = fleet.tmp / "back.csv"
    code, out = invoke("rollback", report, "--out", str(back), "--state", state, *endpoint)
    assert code == 0 and f"held in {state} by rollback-" in out, out
    code, out = invoke("run", str(back), *endpoint, "--no-progress", "--checkpoint",
                       state.replace("state.sqlite", "rollback.sqlite"))  # fmt: skip
    assert code == 0, out
    fleet.box.state.reset_counters()
    code, out = invoke("plan", str(fleet.manifest), *endpoint, "--checkpoint", state, "--log-format", "json")
    assert code == 0 and finished(out)["counts"] == {"held": 2}, out  # plan reads the S3 state's holds
    code, out, err = finish(start(args(fleet, state, "--report", report)))
    assert code == 0, err
    assert finished(err)["counts"] == {"held": 2}
    assert fleet.box.state.writes == {}
    change = report.replace(".csv", ".md")
    code, out = invoke("report", report, "--out", change, *endpoint)
    assert code == 0, out
    text = s3(fleet.box).get_object(Bucket=STATE_BUCKET, Key=stem + ".md")["Body"].read().decode()
    assert all(d.domain in text for d in fleet.domains) and "held" in text
    assert invoke("release", state, "--all", *endpoint)[0] == 0
    code, out = invoke("history", state, *endpoint)
    assert "release" in out, out
    no_local_state(fleet)
