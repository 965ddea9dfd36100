"""The JSON event stream against docs/events.md: every line of run, a converge run, plan, discover and a refused
start carries run_id, timestamp, level and event, and has the fields the page documents for its event."""

from __future__ import annotations

import json
import re
import socket
from functools import cache
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from fleet.cli import main
from fleet.sandbox.server import Sandbox

from ..conftest import Fleet
from ..files import by_domain

ROOT = Path(__file__).resolve().parents[2]
COMMON = {"event", "run_id", "timestamp", "level", "command", "manifest", "out"}


@cache
def schema() -> dict[str, tuple[set[str], set[str], set[str]]]:
    """event -> (levels, always, may have)."""
    text = (ROOT / "docs" / "events.md").read_text(encoding="utf-8").split("<!-- events-table -->", 1)[1]
    out = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 5 and (m := re.fullmatch(r"`(\w+)`", cells[0])):
            name, levels, always, may = m.group(1), *cells[1:4]
            out[name] = (
                {lv.strip() for lv in levels.split(",")},
                set(re.findall(r"`(\w+)`", always)),
                set(re.findall(r"`(\w+)`", may)),
            )
    return out


def check(output: str, command: str) -> list[dict[str, Any]]:
    """Every line is a documented event of one run of ``command``; returns them."""
    events = [json.loads(line) for line in output.splitlines() if line.strip()]  # a non-JSON line fails here
    assert events, output
    for e in events:
        assert {"event", "run_id", "timestamp", "level"} <= set(e), e
        assert e["event"] in schema(), f"undocumented event {e['event']!r} (docs/events.md): {e}"
        levels, always, may = schema()[e["event"]]
        assert e["level"] in levels, e
        assert always <= set(e), (e["event"], always - set(e))
        assert set(e) <= COMMON | always | may, (e["event"], set(e) - COMMON - always - may)
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z", e["timestamp"]), e["timestamp"]
        assert e.get("command", command) == command
    assert len({e["run_id"] for e in events}) == 1, "one run id for every line of one command"
    return events


def cli(*args: str) -> Any:
    return CliRunner().invoke(main, [*args, "--log-format", "json"])


def test_every_event_of_run_plan_and_discover_is_documented(make_fleet, tmp_path: Path) -> None:
    fleet: Fleet = make_fleet(accounts=2, regions=("us-east-1",), per_region=2)
    box: Sandbox = fleet.box
    bad = fleet.domains[3]
    box.state.configure(propagation_delay=0.2, fail_domains={bad.domain})
    common = ["--endpoint-url", box.endpoint, "--checkpoint", str(fleet.checkpoint), "--report", str(fleet.report)]
    wait = ["--wait", "--wait-interval", "0.2", "--edge-address", box.edge_address]
    first = cli("run", str(fleet.manifest), *common, *wait, "--yes", "--canary", "1", "--max-failures", "0")
    assert len(schema()) >= 16, schema()  # the table was read
    events = check(first.output, "run")
    names = [e["event"] for e in events]
    assert names[:2] == ["hub_identity", "run_started"] and names[-1] == "run_finished", names
    assert {"canary_passed", "budget_exceeded", "row"} <= set(names), names
    started = events[1]
    for key in ("host", "user", "version", "manifest_sha256", "hub"):
        assert started.get(key), key
    finished = events[-1]
    assert finished["writes"] == sum(box.state.writes.values()) > 0  # this run's successful writes

    box.state.configure(fail_domains=set())
    again = cli("run", str(fleet.manifest), *common, *wait, "--yes")
    converge = check(again.output, "run")
    assert converge[0]["run_id"] != events[0]["run_id"]

    plan = cli("plan", str(fleet.manifest), "--endpoint-url", box.endpoint, "--report", str(tmp_path / "p.csv"))
    assert check(plan.output, "plan")[-1]["event"] == "run_finished"

    accounts = tmp_path / "accounts.txt"
    accounts.write_text("\n".join(sorted({d.account_id for d in fleet.domains})) + "\n")
    found = tmp_path / "found.csv"
    discover = cli(
        "discover", "--accounts", str(accounts), "--regions", "us-east-1", "--auto", "--out", str(found),
        "--endpoint-url", box.endpoint,
    )  # fmt: skip
    assert [e["event"] for e in check(discover.output, "discover")][-2:] == ["run_finished", "message"]


def test_a_refused_start_is_one_documented_error_with_its_code(make_fleet) -> None:
    fleet: Fleet = make_fleet(accounts=1, regions=("us-east-1",), per_region=1)
    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        closed = f"https://127.0.0.1:{s.getsockname()[1]}"
    result = cli("run", str(fleet.manifest), "--endpoint-url", closed, "--yes")
    assert result.exit_code == 2
    (error,) = check(result.output, "run")
    assert error["event"] == "error" and error["code"] == "HubUnavailable" and error["exit_code"] == 2
    assert error["manifest"] == str(fleet.manifest)


def test_a_converge_run_reports_who_wrote_what_and_when(make_fleet) -> None:
    fleet: Fleet = make_fleet(accounts=3, regions=("us-east-1",), per_region=2)
    first = fleet.run()
    report_1 = by_domain(first.report)
    second = fleet.run()
    report_2 = by_domain(second.report)
    assert first.run_id != second.run_id
    for d in fleet.domains:
        one, two = report_1[d.domain], report_2[d.domain]
        assert one["run_id"] == one["written_by_run"] == first.run_id
        assert two["run_id"] == second.run_id and two["written_by_run"] == first.run_id
        assert two["written_at"] == one["written_at"] != ""  # the write's time, from the state
    assert first.tally.writes == 6 and second.tally.writes == 0
    record = json.loads(Path(str(second.report).replace(".csv", ".run.json")).read_text(encoding="utf-8"))
    assert record["run_id"] == second.run_id and record["writes"] == 0 and record["hub"]


def test_the_change_record_of_a_converge_run_says_it_wrote_nothing(make_fleet) -> None:
    from fleet.records.change_record import load
    from fleet.records.markdown import markdown

    fleet: Fleet = make_fleet(accounts=3, regions=("us-east-1",), per_region=2)
    first = fleet.run()
    second = fleet.run()
    record = load(second.report)
    assert record.run_id == second.run_id and record.hub.startswith("arn:aws:sts::")
    assert record.written_here() == 0
    assert [(run, n) for run, _at, n in record.written_before()] == [(first.run_id, 6)]
    written = sorted(r["written_at"] for r in by_domain(first.report).values())
    assert [t.isoformat(timespec="milliseconds").replace("+00:00", "Z") for t in record.writes()] == written
    text = markdown(record)
    assert "**Written in this run:** 0" in text and f"6 from run {first.run_id}" in text
    assert "Hub identity:** arn:aws:sts::" in text and "cognito-fleet " in text  # who ran it, with what
