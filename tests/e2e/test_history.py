"""`history` tells the story in time order: the forward write (of an approved plan), the rollback's hold, the
rollback's run (named by its rollback id), the release and the next forward write, under a header line."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from click.testing import CliRunner

from fleet.cli import main
from fleet.records.history import RECORDS_HEADER, RUNS_HEADER

from ..conftest import Fleet


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def timeline(out: str, header: str) -> list[str]:
    """The listing's lines after its header, up to who holds what now; checked to be in time order."""
    lines = out.splitlines()
    assert lines[0] == header, out
    body = [line for line in lines[1:] if not line.startswith("now")]
    times = [line.split("  ")[0] for line in body]
    assert times == sorted(times), out
    return body


def test_history_tells_the_forward_write_hold_rollback_release_and_next_write_in_time_order(
    make_fleet, tmp_path: Path
) -> None:
    fleet: Fleet = make_fleet(accounts=1, regions=("us-east-1",), per_region=2)
    a = fleet.domains[0]
    state, plan, undo = tmp_path / "prod.sqlite", tmp_path / "P.json", tmp_path / "undo.csv"
    base = ["--endpoint-url", fleet.box.endpoint, "--no-progress"]
    forward = ["run", str(fleet.manifest), "--checkpoint", str(state), "--report", str(tmp_path / "r.csv"), *base]
    assert invoke("plan", str(fleet.manifest), "--out", str(plan), *base)[0] == 0
    digest, plan_id = hashlib.sha256(plan.read_bytes()).hexdigest(), json.loads(plan.read_text())["plan_id"]
    code, out = invoke(*forward, "--plan", str(plan), "--plan-sha256", digest)
    assert code == 0, out
    code, out = invoke("rollback", str(tmp_path / "r.csv"), "--out", str(undo), "--domain", a.domain)
    assert code == 0, out
    rollback_id = json.loads((tmp_path / "undo.rollback.json").read_text())["rollback_id"]
    assert invoke("run", str(undo), *base)[0] == 0  # records into the forward state
    assert invoke("release", str(state), "--all")[0] == 0
    assert invoke(*forward)[0] == 0  # the next forward (cron) run writes a again
    undo_run = json.loads((tmp_path / "undo.report.run.json").read_text())
    assert undo_run["rollback"]["rollback_id"] == rollback_id  # the run record names it too

    code, out = invoke("history", str(state))
    assert code == 0, out
    body = timeline(out, RUNS_HEADER)
    assert [line.split("  ")[1] for line in body] == ["run", "hold", "run", "release", "run"], out
    assert f"(plan {plan_id}, pinned)" in body[0] and f"by {rollback_id}" in body[1]
    assert f"{undo_run['run_id']} (rollback {rollback_id})" in body[2] and "undo.csv" in body[2]
    assert "(" not in body[4].split("  ")[2]  # the cron run applied no plan and is no rollback

    code, out = invoke("history", str(state), "--domain", a.domain)
    assert code == 0, out
    body = timeline(out, RECORDS_HEADER)
    names = {"  hold  ": "hold", "  release  ": "release", f"(rollback {rollback_id})": "rollback"}
    names[f"(plan {plan_id}, pinned)"] = "plan"
    kinds = [next((name for mark, name in names.items() if mark in line), "cron") for line in body]
    assert kinds == ["plan", "plan", "hold", "rollback", "rollback", "release", "cron", "cron"], out
    assert f"{a.new_certificate_arn} -> {a.old_certificate_arn}  in_flight" in body[3], out
