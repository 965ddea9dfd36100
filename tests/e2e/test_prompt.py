"""On a terminal, `run` shows the hub and the fleet and asks before writing; without one it never asks."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time

from ..conftest import Fleet


def run_on_a_terminal(fleet: Fleet, answer: bytes, *args: str) -> tuple[int, str]:
    """`cognito-fleet run` with stdin and stderr on a pseudo-terminal; answer the prompt when it shows."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "fleet", "run", str(fleet.manifest), "--endpoint-url", fleet.box.endpoint, *args],
        stdin=slave,
        stdout=subprocess.PIPE,
        stderr=slave,
        env=os.environ.copy(),
    )
    os.close(slave)
    seen, deadline = b"", time.monotonic() + 60
    try:
        while b"Write the new certificates?" not in seen and proc.poll() is None and time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    seen += os.read(master, 4096)
                except OSError:
                    break
        if b"Write the new certificates?" in seen:
            os.write(master, answer)
        proc.wait(timeout=60)
        while select.select([master], [], [], 0.1)[0]:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, seen.decode(errors="replace")


def test_no_at_the_prompt_writes_nothing_and_yes_writes(make_fleet) -> None:
    fleet: Fleet = make_fleet(accounts=2, regions=("us-east-1",), per_region=1)
    code, screen = run_on_a_terminal(fleet, b"n\n", "--no-progress")
    assert "About to write as arn:aws:" in screen
    assert "2 writes in 2 accounts (of 2 domains in 2 accounts, regions us-east-1)" in screen
    assert f"cognito-idp us-east-1: {fleet.box.endpoint} (--endpoint-url)" in screen  # where the calls go, and why
    assert "TLS trusts the CA bundle " in screen
    assert code == 1 and "nothing was written" in screen
    assert fleet.box.state.writes == {} and not fleet.checkpoint.exists()
    assert not (fleet.tmp / "manifest.checkpoint.sqlite").exists()
    assert list(fleet.tmp.glob("*.lock")) == []  # the lock file this run created is gone with it
    code, screen = run_on_a_terminal(fleet, b"y\n", "--no-progress")
    assert code == 0, screen
    assert set(fleet.box.state.writes.values()) == {1} and len(fleet.box.state.writes) == 2


def test_yes_skips_the_question(make_fleet) -> None:
    fleet: Fleet = make_fleet(accounts=1, regions=("us-east-1",), per_region=1)
    code, screen = run_on_a_terminal(fleet, b"", "--no-progress", "--yes")
    assert code == 0 and "Write the new certificates?" not in screen
    assert len(fleet.box.state.writes) == 1


def test_nothing_to_write_asks_nothing(make_fleet) -> None:
    fleet: Fleet = make_fleet(accounts=1, regions=("us-east-1",), per_region=1)
    code, screen = run_on_a_terminal(fleet, b"y\n", "--no-progress")
    assert code == 0 and "1 write in 1 account" in screen, screen
    code, screen = run_on_a_terminal(fleet, b"", "--no-progress")  # the rerun only verifies: no question
    assert code == 0 and "Write the new certificates?" not in screen, screen
    assert "nothing to write (1 domains checked): not asking" in screen
    assert set(fleet.box.state.writes.values()) == {1}
