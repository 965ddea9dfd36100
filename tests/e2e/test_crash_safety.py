"""Cron-grade robustness: kills, faults, signals, the lock, secrets, credential refresh.

Every run here is a real `cognito-fleet run` subprocess talking HTTP to the sandbox on 127.0.0.1; each
test is bounded in count and time.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from ..conftest import Fleet
from ..files import csv_rows, finished


def start(fleet: Fleet, *extra: str) -> subprocess.Popen[str]:
    args = [sys.executable, "-m", "fleet", *fleet.run_args(*extra)]
    return subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy(), stdin=subprocess.DEVNULL
    )


def finish(proc: subprocess.Popen[str], timeout: float = 120) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def report_rows(fleet: Fleet) -> list[dict[str, str]]:
    return csv_rows(fleet.report)


def in_flight(fleet: Fleet) -> set[str]:
    if not fleet.checkpoint.exists():
        return set()
    db = sqlite3.connect(fleet.checkpoint)
    try:
        return {r[0] for r in db.execute("SELECT domain FROM outcomes WHERE status = 'in_flight'")}
    finally:
        db.close()


def assert_all_on_new_certificates(fleet: Fleet) -> None:
    for d in fleet.domains:
        assert fleet.box.certificate_of(d.domain) == d.new_certificate_arn, d.domain


def assert_rewrites_were_described_first(fleet: Fleet, allowed: set[str]) -> int:
    """A domain written twice was in flight at a kill, and was described between the two writes."""
    duplicates = 0
    for domain, writes in fleet.box.state.writes.items():
        if writes <= 1:
            continue
        assert domain in allowed, f"{domain} written {writes} times but never in flight at a kill"
        duplicates += writes - 1
        ops = [op for op, d in fleet.box.state.events if d == domain]
        positions = [i for i, op in enumerate(ops) if op == "UpdateUserPoolDomain"]
        for a, b in itertools.pairwise(positions):
            assert "DescribeUserPoolDomain" in ops[a + 1 : b], f"{domain}: second write without a Describe"
    return duplicates


def test_kill_torture(make_fleet) -> None:
    fleet: Fleet = make_fleet(accounts=25, regions=("us-east-1", "eu-west-1"), per_region=2)  # 100 domains
    fleet.box.state.configure(latency=0.2, throttle_rate=0.10, seed=3)
    rng = random.Random(20261126)
    kills, in_flight_at_kill, runs = 0, set(), 0
    while True:
        runs += 1
        assert runs <= 40, "did not converge"
        before = sum(fleet.box.state.writes.values())
        proc = start(fleet, "--rate-per-account", "3", "--account-concurrency", "3")
        if kills < 10:
            # Kill at a random moment while writes are landing: after a random number of them, plus jitter.
            target, deadline = rng.randint(1, 8), time.monotonic() + 30
            while proc.poll() is None and time.monotonic() < deadline:
                if sum(fleet.box.state.writes.values()) - before >= target:
                    time.sleep(rng.uniform(0, 0.3))
                    break
                time.sleep(0.005)
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                finish(proc)
                kills += 1
                in_flight_at_kill |= in_flight(fleet)
                continue
        code, _out, err = finish(proc)
        if code == 0:
            break
        assert code in (1, 75), err
    assert kills >= 10
    assert in_flight_at_kill, "no kill landed while a write was in flight: the torture proved nothing"
    rows = report_rows(fleet)
    assert sorted(r["domain"] for r in rows) == sorted(d.domain for d in fleet.domains)  # each exactly once
    assert {r["status"] for r in rows} <= {"pending", "verified"}
    assert_all_on_new_certificates(fleet)
    duplicates = assert_rewrites_were_described_first(fleet, in_flight_at_kill)
    print(
        f"kill torture: {kills} kills, {runs} runs, {len(in_flight_at_kill)} rows in flight at a kill, "
        f"{duplicates} duplicate writes, {fleet.box.state.faults['throttle']} throttles"
    )


def test_fault_matrix_loses_and_fails_nothing(make_fleet) -> None:
    fleet: Fleet = make_fleet(accounts=20, regions=("us-east-1", "eu-west-1"), per_region=2)
    fleet.box.state.configure(latency=0.02, throttle_rate=0.10, error_rate=0.03, reset_rate=0.01, seed=11)
    code, _out, err = finish(start(fleet))
    assert code == 0, err
    rows = report_rows(fleet)
    assert len(rows) == 80 and {r["status"] for r in rows} == {"pending"}
    faults = fleet.box.state.faults
    assert faults["throttle"] > 0 and faults["error"] > 0
    # Every attempt is recorded: each one is a call the sandbox saw (Cognito and ACM).
    assert sum(int(r["attempts"]) for r in rows) == sum(fleet.box.state.calls.values())
    assert_all_on_new_certificates(fleet)
    print(f"fault matrix: {dict(faults)} injected over {sum(fleet.box.state.calls.values())} calls; rows failed: 0")


def test_quota_below_our_rate_still_finishes(make_fleet) -> None:
    fleet: Fleet = make_fleet(accounts=3, regions=("us-east-1",), per_region=4)
    # AWS quotas at a tenth: 1.5 writes/s and 2 reads/s per account, 0.5/s per pool; we ask for 10/s.
    fleet.box.state.configure(enforce_quotas=True, quota_scale=0.1)
    code, _out, err = finish(start(fleet, "--rate-per-account", "10", "--max-attempts", "12"))
    assert code == 0, err
    assert fleet.box.state.faults["quota"] > 0
    assert {r["status"] for r in report_rows(fleet)} == {"pending"}
    print(f"quota below rate: {fleet.box.state.faults['quota']} quota throttles, rows failed: 0")


def until_writing(fleet: Fleet, already: int = 0, timeout: float = 60) -> None:
    """Until the run has written a domain (its signal handlers are set by then): a fixed sleep raced the start-up
    of a loaded machine, where the signal killed the process before the handler was there (exit -15)."""
    deadline = time.monotonic() + timeout
    while sum(fleet.box.state.writes.values()) <= already:
        assert time.monotonic() < deadline, "the run wrote nothing within the timeout"
        time.sleep(0.05)
    time.sleep(0.5)


def test_sigterm_drains_exits_75_and_resumes(make_fleet) -> None:
    fleet: Fleet = make_fleet(accounts=12, regions=("us-east-1",), per_region=2)
    fleet.box.state.configure(latency=0.3)
    proc = start(fleet, "--rate-per-account", "1", "--account-concurrency", "4", "--drain-seconds", "5")
    until_writing(fleet)
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    code, out, err = finish(proc)
    assert code == 75, err
    assert time.monotonic() - t0 < 5 + 3
    assert finished(out + err)["stop_reason"] == "SIGTERM"
    rows = report_rows(fleet)
    statuses = {r["status"] for r in rows}
    assert len(rows) == 24 and "skipped" in statuses and statuses <= {"pending", "skipped"}
    assert not in_flight(fleet)  # drained: every write that was sent got its answer recorded
    fleet.box.state.configure(latency=0.0)
    code, out, err = finish(start(fleet))
    assert code == 0, err
    assert {r["status"] for r in report_rows(fleet)} <= {"pending", "verified"}
    assert set(fleet.box.state.writes.values()) == {1}
    assert_all_on_new_certificates(fleet)


def test_max_runtime_stops_with_75_then_a_second_signal_stops_at_once(make_fleet) -> None:
    fleet: Fleet = make_fleet(accounts=8, regions=("us-east-1",), per_region=2)
    fleet.box.state.configure(latency=0.3)
    code, out, err = finish(start(fleet, "--rate-per-account", "1", "--account-concurrency", "2", "--max-runtime", "2"))
    assert code == 75 and "max-runtime" in str(finished(out + err)["stop_reason"]), err
    proc = start(fleet, "--rate-per-account", "1", "--account-concurrency", "2", "--drain-seconds", "60")
    until_writing(fleet, already=sum(fleet.box.state.writes.values()))
    fleet.box.state.configure(latency=3.0)  # calls sent from now on are still in flight when the signals come
    time.sleep(1.0)
    proc.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    code, out, err = finish(proc)
    assert code == 75 and time.monotonic() - t0 < 5, err
    # Requests the run sent before it was cut are still in the sandbox's 3 s latency: let them land (as AWS would
    # apply them) before the rerun describes, or the rerun races a write its predecessor sent.
    time.sleep(3.5)
    db = sqlite3.connect(fleet.checkpoint)
    assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    db.close()
    fleet.box.state.configure(latency=0.0)
    assert finish(start(fleet))[0] == 0
    assert_all_on_new_certificates(fleet)
    assert_rewrites_were_described_first(fleet, {d.domain for d in fleet.domains})


def test_lock_refuses_a_second_run_and_survives_kill_9(make_fleet) -> None:
    fleet: Fleet = make_fleet(accounts=4, regions=("us-east-1",), per_region=2)
    fleet.box.state.configure(latency=0.5)
    first = start(fleet, "--rate-per-account", "1")
    lock = Path(f"{fleet.checkpoint}.lock")
    deadline = time.monotonic() + 30
    while not (lock.exists() and lock.read_text()):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    code, _out, err = finish(start(fleet))
    assert code == 3, err
    assert f"pid {first.pid} on " in err and "started 20" in err
    first.send_signal(signal.SIGKILL)
    finish(first)
    fleet.box.state.configure(latency=0.0)
    code, _out, err = finish(start(fleet))
    assert code == 0, err
    assert oct(lock.stat().st_mode & 0o777) == "0o600"
    assert oct(fleet.checkpoint.stat().st_mode & 0o777) == "0o600"


def test_no_secret_reaches_logs_report_or_checkpoint(make_fleet, tmp_path: Path) -> None:
    fleet: Fleet = make_fleet(accounts=3, regions=("us-east-1",), per_region=1)
    # Every Cognito call throttled (twice, then the row fails): retry events are certain, not left to the dice.
    fleet.box.state.configure(throttle_rate=1.0, deny_accounts={fleet.domains[0].account_id})
    code, out, err = finish(start(fleet, "--log-level", "debug", "--max-attempts", "2"))
    assert code == 1
    assert '"event": "retry"' in err  # debug events were on
    secrets = set(fleet.box.state.issued_secrets) | {os.environ["AWS_SECRET_ACCESS_KEY"]}
    assert len(secrets) >= 5
    texts = {"stdout": out, "stderr": err}
    for path in tmp_path.iterdir():
        if path.is_file():
            texts[path.name] = path.read_bytes().decode("utf-8", "replace")
    assert any(name.endswith("-wal") or name.endswith(".sqlite") for name in texts)
    for name, text in texts.items():
        for secret in secrets:
            assert secret not in text, f"a secret leaked into {name}"


def test_credentials_refresh_in_a_run_that_outlasts_them(make_fleet) -> None:
    fleet: Fleet = make_fleet(accounts=2, regions=("us-east-1",), per_region=4)
    fleet.box.state.configure(credential_lifetime=2.0, latency=0.2)
    code, _out, err = finish(start(fleet, "--rate-per-account", "1"))  # 8 calls/account at 1/s: > 2 lifetimes
    assert code == 0, err
    assert fleet.box.state.faults["expired_token"] == 0
    assert all(n >= 2 for n in fleet.box.state.assume_role_calls.values()), fleet.box.state.assume_role_calls
    events = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert not [e for e in events if e.get("error_code")]
