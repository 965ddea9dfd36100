"""The settings file (fleet/cli/settings.py): the command line wins over the environment, which wins over the file,
which wins over the defaults; an unknown table or key, or a wrong value, names file:line:column; run records which
file set what."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from fleet.cli import main, settings
from fleet.cli.state_options import LocationArg, StateArg
from fleet.records.report import run_record_path

from ..conftest import Fleet
from ..files import events


def probe_group() -> click.Group:
    """A group of one command with options of each kind the real commands have."""

    @click.group()
    def group() -> None:
        pass

    @group.command("probe")
    @click.argument("manifest", type=click.Path(path_type=Path), required=True)
    @click.option("--canary", type=click.IntRange(0, 1000), default=0, envvar="PROBE_CANARY")
    @click.option("--rate-per-account", type=float, default=1.0)
    @click.option("--wait/--no-wait", default=False)
    @click.option("--regions")
    @click.option("--issuer", "issuers", multiple=True)
    @click.option("--checkpoint", type=click.Path(path_type=Path))
    def probe(**opts: object) -> None:
        used = settings.used()
        click.echo(json.dumps({**opts, "from_file": list(used.options) if used else None}, default=str))

    @group.command("other")
    @click.option("--log-level", default="info")
    def other(log_level: str) -> None:
        click.echo(log_level)

    settings.attach(group)
    return group


def call(group: click.Group, *args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(group, list(args), env=env)
    return result.exit_code, result.output


def test_precedence_command_line_then_environment_then_file_then_defaults(tmp_path: Path) -> None:
    config = tmp_path / "fleet.toml"
    config.write_text(
        '[defaults]\ncanary = 2\nrate-per-account = 9\nlog-level = "debug"\n\n'
        '[probe]\nmanifest = "m.csv"\ncanary = 3\nwait = true\nregions = ["eu-west-1", "us-east-1"]\n'
        'issuer = "Old CA"\ncheckpoint = "state/x.sqlite"\n'
    )
    group = probe_group()
    code, out = call(group, "probe", "--config", str(config))
    assert code == 0, out
    got = json.loads(out)
    assert got["canary"] == 3  # [probe] over [defaults]
    assert got["rate_per_account"] == 9.0 and got["wait"] is True
    assert got["regions"] == "eu-west-1,us-east-1"  # a list for a comma-list option
    assert got["issuers"] == ["Old CA"]  # one value for a repeatable option
    assert got["manifest"] == str(tmp_path / "m.csv")  # paths are relative to the file
    assert got["checkpoint"] == str(tmp_path / "state" / "x.sqlite")
    assert got["from_file"] == ["canary", "checkpoint", "issuer", "manifest", "rate-per-account", "regions", "wait"]

    code, out = call(group, "probe", "--canary", "5", "--no-wait", env={"COGNITO_FLEET_CONFIG": str(config)})
    got = json.loads(out)
    assert (got["canary"], got["wait"]) == (5, False) and "canary" not in got["from_file"]

    code, out = call(group, "probe", "--config", str(config), env={"PROBE_CANARY": "7"})
    assert json.loads(out)["canary"] == 7  # the environment wins over the file

    assert call(group, "other", "--config", str(config)) == (0, "debug\n")  # [defaults] reach every command


def test_the_working_directory_file_is_read_when_no_other_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    group = probe_group()
    monkeypatch.chdir(tmp_path)
    (tmp_path / settings.DEFAULT_NAME).write_text("[probe]\ncanary = 4\nmanifest = 'm.csv'\n")
    code, out = call(group, "probe")
    assert code == 0, out
    assert json.loads(out)["canary"] == 4
    code, out = call(group, "probe", "x.csv", env={"COGNITO_FLEET_CONFIG": ""})
    assert json.loads(out)["canary"] == 4  # an empty variable is no file: the directory's


def test_a_state_or_report_in_the_file_is_relative_to_it_unless_in_s3(tmp_path: Path) -> None:
    """--checkpoint and --report take a file or s3://: a file named in the settings file is relative to it."""

    @click.group()
    def group() -> None:
        pass

    @group.command("probe")
    @click.option("--checkpoint", type=StateArg())
    @click.option("--report", type=LocationArg())
    def probe(checkpoint: object, report: object) -> None:
        click.echo(json.dumps([str(checkpoint), str(report)]))

    settings.attach(group)
    config = tmp_path / "conf" / "cognito-fleet.toml"
    config.parent.mkdir()
    config.write_text("[probe]\ncheckpoint = 'state/fleet.checkpoint.sqlite'\nreport = 's3://bucket/r/prod.csv'\n")
    code, out = call(group, "probe", "--config", str(config))
    assert code == 0, out
    assert json.loads(out) == [str(config.parent / "state" / "fleet.checkpoint.sqlite"), "s3://bucket/r/prod.csv"]


@pytest.mark.parametrize(
    ("text", "where", "says"),
    [
        ("[probe]\ncanary = 1\n\n  canery = 2\n", ":4:3:", "[probe] canery: probe has no option --canery"),
        ("[probe]\ncanary = 'three'\n", ":2:1:", "[probe] canary: 'three' is not a valid integer range"),
        ("[probe]\ncanary = 2000\n", ":2:1:", "2000 is not in the range 0<=x<=1000"),
        ("[probe]\nwait = 'yes'\n", ":2:1:", "wait: must be true or false"),
        ("[probe]\nrate-per-account = [1, 2]\n", ":2:1:", "one value, not a list"),
        ("# c\n[prob]\ncanary = 1\n", ":2:1:", "[prob]: not a command (other, probe; or [defaults])"),
        ("[defaults]\nbogus = 1\n", ":2:1:", "[defaults] bogus: no command has --bogus"),
        ("[probe]\ncanary = \n", ":2:10:", "not TOML"),
        ("canary = 1\n", ":1:1:", "canary: every setting goes in a table"),
    ],
)
def test_a_file_that_cannot_be_used_names_file_line_and_column(
    tmp_path: Path, text: str, where: str, says: str
) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(text)
    code, out = call(probe_group(), "probe", "m.csv", "--config", str(config))
    assert code == 2
    assert f"{config}{where}" in out and says in out, out


@pytest.mark.parametrize("command", ["run", "discover", "reconcile"])
def test_an_unknown_key_stops_run_discover_and_reconcile_with_file_and_line(tmp_path: Path, command: str) -> None:
    config = tmp_path / "cognito-fleet.toml"
    config.write_text(f"[defaults]\nrate-per-account = 2\n\n[{command}]\ncanary-size = 3\n")
    result = CliRunner().invoke(main, [command, "--config", str(config)])
    assert result.exit_code == 2
    assert f"{config}:5:1: [{command}] canary-size: {command} has no option --canary-size" in result.output


def test_any_command_reading_the_file_checks_every_table(tmp_path: Path) -> None:
    # A typo in [run] is caught by validate (or plan) before the cron job that runs it ever starts.
    config = tmp_path / "cognito-fleet.toml"
    config.write_text("[run]\ncanary = 2\ncanery = 3\n")
    manifest = str(Path(__file__).resolve().parents[2] / "manifests" / "example.csv")
    result = CliRunner().invoke(main, ["validate", manifest, "--config", str(config)])
    assert result.exit_code == 2
    assert f"{config}:3:1: [run] canery: run has no option --canery" in result.output


@pytest.mark.parametrize(
    ("text", "mode", "owner", "says"),
    [
        ("[run]\ncanary = 2\n", 0o666, None, "writable by group or others (mode 0666"),
        ("[run]\ncanary = 2\n", 0o644, 65534, "belongs to uid 65534, not to you or root"),
        ('[run]\nplan-sha256 = "' + "0" * 64 + '"\n', 0o644, None, ":2:1: [run] plan-sha256: give --plan-sha256"),
        ('[defaults]\ntrust-state-dir = ["/tmp"]\n', 0o644, None, "[defaults] trust-state-dir: give --trust"),
        ("[plan]\ninsecure-endpoint = true\n", 0o644, None, "[plan] insecure-endpoint: give --insecure-endpoint"),
    ],
)
def test_a_settings_file_cannot_loosen_a_control(
    tmp_path: Path, text: str, mode: int, owner: int | None, says: str
) -> None:
    # Another user who can write the working directory's cognito-fleet.toml must not pin a tampered plan, trust a
    # shared directory or allow plain HTTP: those come from the command line; and a file others can change is refused.
    config = tmp_path / "cognito-fleet.toml"
    config.write_text(text)
    config.chmod(mode)
    if owner is not None:
        os.chown(config, owner, owner)
    manifest = str(Path(__file__).resolve().parents[2] / "manifests" / "example.csv")
    result = CliRunner().invoke(main, ["validate", manifest, "--config", str(config)])
    assert result.exit_code == 2 and says in result.output, result.output


def test_run_takes_its_options_from_the_file_below_the_command_line_and_records_the_file(make_fleet) -> None:
    fleet: Fleet = make_fleet(accounts=1, regions=("us-east-1",), per_region=2)
    config = fleet.tmp / "cognito-fleet.toml"
    config.write_text("[run]\ncanary = 2\nwait = true\nwait-interval = 0.05\nmax-failures = 1\n")
    result = CliRunner().invoke(main, fleet.run_args("--config", str(config), "--canary", "1"))
    assert result.exit_code == 0, result.output
    started = next(e for e in events(result.output) if e["event"] == "run_started")
    options = started["options"]
    assert (options["canary"], options["wait"], options["max_failures"]) == (1, True, 1)  # type: ignore[index]
    recorded = started["settings_file"]
    assert recorded == {
        "path": str(config),
        "sha256": hashlib.sha256(config.read_bytes()).hexdigest(),
        "options": ["max-failures", "wait", "wait-interval"],
    }
    assert json.loads(run_record_path(fleet.report).read_text())["settings_file"] == recorded
    assert {fleet.box.certificate_of(d.domain) for d in fleet.domains} == {d.new_certificate_arn for d in fleet.domains}
