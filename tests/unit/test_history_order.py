"""`history`'s listing: one time order across runs, holds and releases (or a domain's records and its holds), under
a header line; a run named by the plan it applied and the rollback it is."""

from __future__ import annotations

import time
from pathlib import Path

import anyio

from fleet.manifest import Row
from fleet.outcome import Outcome, Status
from fleet.records.history import RECORDS_HEADER, RUNS_HEADER, in_time_order, listing, run_label
from fleet.state.checkpoint import Checkpoint

PLAN = {"plan": {"plan_id": "P1", "pinned": True, "sha256": "ab" * 32, "path": "p.json"}}


def test_streams_merge_by_time_each_keeping_its_own_order() -> None:
    runs = [("2026-12-04T17:01:40.000Z", "run A"), ("2026-12-04T17:02:03.000Z", "run B")]
    holds = [("2026-12-04T17:01:48.000Z", "hold"), ("2026-12-04T17:02:03.000Z", "release")]
    assert in_time_order(runs, holds) == ["run A", "hold", "run B", "release"]  # a tie: the earlier stream first
    assert in_time_order([], holds) == ["hold", "release"]


def test_a_run_is_named_by_its_plan_pinned_or_not_and_its_rollback() -> None:
    assert run_label({}) == ""
    assert run_label(PLAN) == " (plan P1, pinned)"
    assert run_label({"plan": {"plan_id": "P2", "pinned": False}}) == " (plan P2, NOT pinned)"
    assert run_label({"rollback": {"rollback_id": "rollback-1"}}) == " (rollback rollback-1)"
    assert run_label({}, "rollback-2") == " (rollback rollback-2)"  # found by its record, not recorded


def _record(state: Checkpoint, target: str, before: str) -> None:
    row = Row(2, "111122223333", "us-east-1", "us-east-1_abc", "a.example.com", target)
    anyio.run(state.record, Outcome("a.example.com", Status.PENDING, target, before), row)


def _pause() -> None:
    time.sleep(0.003)  # the state's times have milliseconds: keep each step's its own


def test_a_state_lists_runs_holds_and_releases_in_time_order(tmp_path: Path) -> None:
    with Checkpoint(tmp_path / "s.sqlite") as state:
        assert listing(state) == []  # nothing recorded: no header either
        state.begin("run-1", "prod.csv", 1, PLAN)
        _record(state, "arn:new", "arn:old")
        state.finish({"pending": 1}, complete=True)
        _pause()
        state.hold_domains([("a.example.com", "arn:old")], "rollback-1", "me@host")
        _pause()
        state.begin("run-2", "undo.csv", 1, {"rollback": {"rollback_id": "rollback-1", "record": "x"}})
        _record(state, "arn:old", "arn:new")
        state.finish({"pending": 1}, complete=True)
        _pause()
        state.release_domains(None, "me@host")
        _pause()
        state.set_fleet_hold("me@host", "INC-1")
        lines = listing(state)
        assert lines[0] == RUNS_HEADER
        assert [line.split("  ")[1] for line in lines[1:-1]] == ["run", "hold", "run", "release", "hold-fleet"]
        assert "run-1 (plan P1, pinned)  pass 1 (converge), ended " in lines[1] and "pending=1" in lines[1]
        assert "run-2 (rollback rollback-1)  pass 2" in lines[3] and lines[3].endswith("undo.csv")
        assert lines[-1].startswith("now: the fleet is held by me@host")

        lines = listing(state, domain="a.example.com")
        assert lines[0] == RECORDS_HEADER
        kinds = [line.split("  ")[1].split(" ")[0] for line in lines[1:]]
        assert kinds == ["run-1", "hold", "run-2", "release", "hold-fleet"], lines
        assert "arn:new -> arn:old  pending" in lines[3]
        assert listing(state, run_id="run-2")[1:] == [lines[3]]  # a run's records: no holds
