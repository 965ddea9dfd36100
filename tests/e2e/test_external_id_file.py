"""An --external-id-file that group or others may read is used, with a warning naming it (issue 25, item 5)."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from fleet.cli import main

from ..conftest import Fleet
from ..files import events


def test_an_external_id_file_others_may_read_is_warned_about(make_fleet, tmp_path: Path) -> None:
    fleet: Fleet = make_fleet(accounts=1, regions=("us-east-1",), per_region=1)
    secret = tmp_path / "external-id"
    secret.write_text("ext-2b9e-private\n")
    args = ["plan", str(fleet.manifest), "--endpoint-url", fleet.box.endpoint, "--external-id-file", str(secret)]
    args += ["--log-format", "json", "--no-progress"]
    for mode, warned in ((0o644, True), (0o640, True), (0o600, False), (0o400, False)):
        secret.chmod(mode)
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 0, result.output
        found = [e for e in events(result.output) if e["event"] == "external_id_file_readable"]
        assert "ext-2b9e-private" not in result.output
        if warned:
            assert [(e["path"], e["mode"], e["level"]) for e in found] == [(str(secret), f"{mode:04o}", "warning")]
            assert f"chmod 600 {secret}" in str(found[0]["message"])
        else:
            assert found == [], mode
