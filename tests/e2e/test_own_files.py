"""The tool writes over its own files only: a report's JSON Lines and run record, a change record, a plan, a rollback
record replace a file already there only when the tool wrote it (fleet/records/own_files.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from fleet.cli import main
from fleet.records.change_record import load
from fleet.records.html import html
from fleet.records.markdown import markdown
from fleet.records.own_files import (
    CHANGE_RECORD,
    PLAN,
    REPORT,
    REPORT_JSONL,
    ROLLBACK,
    RUN_RECORD,
    Kind,
    OverwriteRefused,
    refuse_foreign,
)
from fleet.records.report import COLUMNS, check_report_paths, write_lines

from ..conftest import Fleet
from ..files import events

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "report-sample.csv"


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


@pytest.mark.parametrize(
    ("kind", "ours"),
    [
        (REPORT, ",".join(COLUMNS) + "\n"),
        (REPORT, "\ufeffaccount_id,region,domain,status,previous_certificate_arn,certificate_arn\n"),  # an older one
        (REPORT_JSONL, json.dumps({"domain": "a.example.com", "status": "verified", "run_id": "r"}) + "\n"),
        (RUN_RECORD, json.dumps({"run_id": "r", "command": "run", "counts": "{}"})),
        (CHANGE_RECORD, markdown(load(SAMPLE))),
        (CHANGE_RECORD, html(load(SAMPLE))),
        (PLAN, json.dumps({"format": "cognito-fleet-plan", "version": 1})),
        (ROLLBACK, json.dumps({"format": "cognito-fleet-rollback", "version": 1})),
        (RUN_RECORD, ""),  # empty: nothing to lose
    ],
)
def test_the_tools_own_files_are_written_over(tmp_path: Path, kind: Kind, ours: str) -> None:
    path = tmp_path / "f"
    path.write_text(ours, encoding="utf-8")
    refuse_foreign(path, kind)
    refuse_foreign(tmp_path / "absent", kind)


@pytest.mark.parametrize(
    ("kind", "foreign"),
    [
        (REPORT, "account_id,region,user_pool_id,domain,certificate_arn\n"),  # a manifest
        (REPORT_JSONL, '{"level": "info", "msg": "an application log"}\n'),
        (REPORT_JSONL, "not json\n"),
        (RUN_RECORD, json.dumps({"name": "package.json"})),
        (CHANGE_RECORD, "# Release notes\n"),
        (CHANGE_RECORD, "<!DOCTYPE html><h1>Home</h1>"),
        (PLAN, json.dumps({"format": "something-else"})),
        (ROLLBACK, "[]"),
    ],
)
def test_any_other_file_is_refused_and_left_as_it_was(tmp_path: Path, kind: Kind, foreign: str) -> None:
    path = tmp_path / "f"
    path.write_text(foreign, encoding="utf-8")
    with pytest.raises(OverwriteRefused) as caught:
        refuse_foreign(path, kind)
    assert str(caught.value).startswith(f"{path}: exists and is not {kind.name}") and caught.value.exit_code == 2
    assert path.read_text(encoding="utf-8") == foreign


def test_a_report_is_written_again_over_itself_and_never_beside_a_stranger(tmp_path: Path) -> None:
    report = tmp_path / "x.csv"
    line = dict.fromkeys(COLUMNS, "v")
    write_lines(report, [line])
    write_lines(report, [line, line])  # its own files: written again
    check_report_paths(report)
    assert len((tmp_path / "x.jsonl").read_text(encoding="utf-8").splitlines()) == 2
    (tmp_path / "x.jsonl").write_text("my notes\n", encoding="utf-8")
    with pytest.raises(OverwriteRefused, match=re.escape("x.jsonl: exists and is not a report's JSON Lines")):
        write_lines(report, [line])
    assert (tmp_path / "x.jsonl").read_text(encoding="utf-8") == "my notes\n"
    with pytest.raises(OverwriteRefused, match=re.escape("a report is a .csv")):
        check_report_paths(tmp_path / "x.jsonl")


def test_run_plan_and_report_refuse_before_anything(make_fleet, tmp_path: Path) -> None:
    fleet: Fleet = make_fleet(accounts=1, regions=("us-east-1",), per_region=1)
    base = ["--endpoint-url", fleet.box.endpoint, "--no-progress", "--checkpoint", str(fleet.checkpoint)]
    notes, manifest = tmp_path / "x.jsonl", fleet.manifest.read_bytes()
    notes.write_text("an unrelated file\n", encoding="utf-8")
    for report in (tmp_path / "x.csv", fleet.manifest):  # beside a stranger; over the manifest itself
        code, out = invoke("run", str(fleet.manifest), "--report", str(report), *base)
        assert code == 2, out
        [line] = events(out)
        assert "exists and is not a report" in str(line["message"]) and line["code"] == "OverwriteRefused"
    assert notes.read_text(encoding="utf-8") == "an unrelated file\n" and fleet.manifest.read_bytes() == manifest
    assert sum(fleet.box.state.calls.values()) == 0 and not fleet.checkpoint.exists()  # nothing touched
    code, out = invoke("plan", str(fleet.manifest), "--report", str(tmp_path / "p.csv"), "--out", str(notes), *base)
    assert code == 2 and "is not a plan" in out and not (tmp_path / "p.csv").exists(), out

    code, out = invoke("run", str(fleet.manifest), "--report", str(fleet.report), *base)
    assert code == 0, out
    code, out = invoke("run", str(fleet.manifest), "--report", str(fleet.report), *base)  # its own files: again
    assert code == 0, out
    code, out = invoke("report", str(fleet.report), "--out", str(tmp_path / "x.jsonl"))
    assert code == 2 and "is not a change record" in out
    code, out = invoke("report", str(fleet.report), "--out", str(tmp_path / "record.md"))
    assert code == 0 and invoke("report", str(fleet.report), "--out", str(tmp_path / "record.md"))[0] == 0
