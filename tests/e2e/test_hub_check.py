"""The hub first: a run that cannot confirm its calling identity stops in one line, exit 2, touching nothing."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fleet.aws.credentials import AwsSettings
from fleet.aws.retry import BackoffPolicy
from fleet.aws.runtime import aws_runtime
from fleet.errors import HubUnavailable

from ..conftest import Fleet

ISOLATED: dict[str, str | None] = {
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_PROFILE": None,
}


def cli(*args: str, env: dict[str, str | None] | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """The console entry point in a subprocess; ``env`` values of None remove the variable."""
    merged = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "fleet", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={k: v for k, v in merged.items() if v is not None},
        stdin=subprocess.DEVNULL,
    )


def _no_keys(env: dict[str, str | None]) -> dict[str, str | None]:
    return {**ISOLATED, "AWS_ACCESS_KEY_ID": None, "AWS_SECRET_ACCESS_KEY": None, **env}


def error_line(proc: subprocess.CompletedProcess[str], exit_code: int) -> str:
    """The one line a failed command prints on stderr (no traceback): a JSON ``error`` event under cron, where
    every line is JSON (the subprocess has no terminal), carrying the same message as on a terminal."""
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    events = [json.loads(line) for line in lines]  # every line is a JSON object
    errors = [e for e in events if e["event"] == "error"]
    assert len(errors) == 1 and errors[0]["exit_code"] == exit_code == proc.returncode, proc.stderr
    finished = [e for e in events if e["event"] == "run_finished"]
    assert all(e["exit_code"] == exit_code for e in finished)
    return str(errors[0]["message"])


def _assert_refused(proc, fleet: Fleet, *needles: str) -> None:  # type: ignore[no-untyped-def]
    assert proc.returncode == 2, proc.stderr
    line = error_line(proc, 2)
    assert line.startswith("error: hub: ") and "\n" not in line, line
    assert proc.stdout == ""  # nothing else said, on stdout either
    for needle in needles:
        assert needle in line
    # Nothing was recorded or locked: no checkpoint, no lock, no report; no account was touched.
    leftovers = sorted(p.name for p in fleet.tmp.iterdir() if p.name != "manifest.csv")
    assert leftovers == []
    assert fleet.box.state.assume_role_calls == {}


@pytest.fixture
def fleet(make_fleet) -> Fleet:  # type: ignore[no-untyped-def]
    return make_fleet(accounts=2, regions=("us-east-1",), per_region=1)  # type: ignore[no-any-return]


def test_unknown_profile(fleet: Fleet) -> None:
    proc = cli("run", str(fleet.manifest), "--endpoint-url", fleet.box.endpoint, "--profile", "nope", env=ISOLATED)
    _assert_refused(proc, fleet, "profile 'nope'", "--profile")


def test_no_credentials_anywhere(fleet: Fleet) -> None:
    proc = cli("plan", str(fleet.manifest), "--endpoint-url", fleet.box.endpoint, env=_no_keys({}))
    _assert_refused(proc, fleet, "no AWS credentials found", "AWS_ACCESS_KEY_ID", "aws sso login")


def test_expired_sso_session_names_the_login_command(fleet: Fleet, tmp_path_factory: pytest.TempPathFactory) -> None:
    home = tmp_path_factory.mktemp("home")
    config = home / "config"
    config.write_text(
        "[profile corp]\nsso_session = corp\nsso_account_id = 111122223333\nsso_role_name = Ops\n"
        "[sso-session corp]\nsso_start_url = https://corp.awsapps.com/start\nsso_region = us-east-1\n"
    )
    env = _no_keys({"AWS_CONFIG_FILE": str(config), "HOME": str(home)})
    proc = cli("run", str(fleet.manifest), "--endpoint-url", fleet.box.endpoint, "--profile", "corp", env=env)
    _assert_refused(proc, fleet, "aws sso login --profile corp")


def test_unreachable_endpoint_fails_fast_and_names_it(fleet: Fleet) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}"
    started = time.monotonic()
    proc = cli("run", str(fleet.manifest), "--endpoint-url", url, timeout=60)
    assert time.monotonic() - started < 15
    _assert_refused(proc, fleet, f"cannot reach STS at {url}", "--endpoint-url")


async def test_silent_endpoint_is_bounded_by_the_connect_timeout() -> None:
    with socket.socket() as server:  # accepts connections (the kernel does), never answers
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        settings = AwsSettings(endpoint_url=f"http://127.0.0.1:{server.getsockname()[1]}", connect_timeout=0.5)
        started = time.monotonic()
        with pytest.raises(HubUnavailable, match=r"did not answer within 1 s; check --endpoint-url"):
            async with aws_runtime(settings, BackoffPolicy()):
                pass
        assert time.monotonic() - started < 3  # 2 x the connect timeout; the read timeout would be 20 s


def test_rejected_secret_is_named_and_the_next_good_run_proceeds(fleet: Fleet) -> None:
    bad = {"AWS_SECRET_ACCESS_KEY": "not-the-secret"}
    proc = cli("run", str(fleet.manifest), "--endpoint-url", fleet.box.endpoint, env=bad)
    _assert_refused(proc, fleet, "STS rejected the hub credentials (SignatureDoesNotMatch")
    proc = cli("run", str(fleet.manifest), "--endpoint-url", fleet.box.endpoint)
    assert proc.returncode == 0, proc.stderr
    assert '"counts": {"pending": 2}' in proc.stderr
    assert ('"hub_identity"' in proc.stderr and ":user/" in proc.stderr) or ":root" in proc.stderr


def test_discover_checks_the_hub_first(fleet: Fleet, tmp_path: Path) -> None:
    accounts = tmp_path / "accounts.txt"
    accounts.write_text("".join(f"{d.account_id}\n" for d in fleet.domains))
    out = tmp_path / "found.csv"
    args = ["discover", "--accounts", str(accounts), "--regions", "us-east-1", "--auto", "--out", str(out)]
    proc = cli(*args, "--endpoint-url", fleet.box.endpoint, "--profile", "nope", env=ISOLATED)
    assert proc.returncode == 2 and error_line(proc, 2).startswith("error: hub: the AWS profile 'nope'")
    assert not out.exists() and fleet.box.state.assume_role_calls == {}


def test_validate_builds_no_aws_session(fleet: Fleet) -> None:
    proc = cli("validate", str(fleet.manifest), env={**ISOLATED, "AWS_PROFILE": "nope"})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().endswith("valid: 2 rows, 2 accounts, 1 regions") and proc.stderr == ""


def test_an_unexpected_error_is_one_line_and_exit_1(fleet: Fleet) -> None:
    args = ["plan", str(fleet.manifest), "--endpoint-url", fleet.box.endpoint, "--report", "/proc/no/report.csv"]
    proc = cli(*args)
    assert proc.returncode == 1
    line = error_line(proc, 1)
    assert line.startswith("error: unexpected ") and "--log-level debug" in line and "Traceback" not in proc.stderr
    debug = cli(*args, "--log-level", "debug")
    assert debug.returncode == 1 and "Traceback (most recent call last)" in debug.stderr
