"""Manifest rules: every rule, valid and invalid, with the line and column reported."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleet.manifest import ManifestError, Problem, parse

HEADER = "account_id,region,user_pool_id,domain,certificate_arn"
CERT = "arn:aws:acm:us-east-1:111122223333:certificate/0f2b8c3e-1a2b-4c5d-8e9f-0123456789ab"
GOOD = f"111122223333,eu-west-1,eu-west-1_AbC123xyZ,auth.example.com,{CERT}"


def problems(text: str | bytes, tmp_path: Path) -> list[Problem]:
    path = tmp_path / "m.csv"
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    with pytest.raises(ManifestError) as info:
        parse(path)
    return info.value.problems


def one(text: str | bytes, tmp_path: Path) -> Problem:
    found = problems(text, tmp_path)
    assert len(found) == 1, found
    return found[0]


def test_valid_manifest_parses(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    path.write_text(f"{HEADER},role_arn,external_id\n{GOOD},arn:aws:iam::111122223333:role/ops/Fleet,ext-id_1\n")
    m = parse(path)
    (row,) = m.rows
    assert (row.line, row.domain, row.role_arn, row.external_id) == (
        2,
        "auth.example.com",
        "arn:aws:iam::111122223333:role/ops/Fleet",
        "ext-id_1",
    )
    assert m.accounts == {"111122223333"} and m.regions == {"eu-west-1"}


def test_bom_blank_lines_column_order_and_spaces(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    header = "\ufeffdomain , certificate_arn,region,user_pool_id,account_id\r\n"
    text = f"{header}\r\n auth.example.com ,{CERT},eu-west-1,eu-west-1_A1,111122223333\r\n\n"
    path.write_bytes(text.encode())
    (row,) = parse(path).rows
    assert (row.line, row.domain, row.account_id, row.role_arn) == (
        3,
        "auth.example.com",
        "111122223333",
        None,
    )


@pytest.mark.parametrize(
    ("cell", "value", "reason"),
    [
        ("account_id", "12345", "is not a 12-digit AWS account id"),
        ("account_id", "1111222233334", "is not a 12-digit AWS account id"),
        ("region", "eu-west-9", "is not an AWS region"),
        ("region", "eu-wset-1", "did you mean 'eu-west-1'"),
        ("user_pool_id", "AbC123xyZ", "is not a user pool id"),
        ("user_pool_id", "us-east-1_AbC123", "belongs to region us-east-1, not to the row's eu-west-1"),
        ("domain", "Auth.example.com", "may hold only lowercase letters, digits and hyphens"),
        ("domain", "auth_1.example.com", "may hold only lowercase letters, digits and hyphens"),
        ("domain", "-auth.example.com", "starts or ends with a hyphen"),
        ("domain", "auth-.example.com", "starts or ends with a hyphen"),
        ("domain", "auth", "at least two labels"),
        ("domain", "auth..example.com", "empty label"),
        ("domain", "a" * 64 + ".example.com", "at most 63"),
        ("domain", ".".join(["a" * 60] * 5), "at most 253"),
        ("domain", "", "is empty"),
        (
            "certificate_arn",
            "arn:aws:acm:eu-west-1:111122223333:certificate/0f2b8c3e-1a2b-4c5d-8e9f-0123456789ab",
            "Cognito custom domains need one in us-east-1",
        ),
        (
            "certificate_arn",
            "arn:aws:acm:us-east-1:999988887777:certificate/0f2b8c3e-1a2b-4c5d-8e9f-0123456789ab",
            "belongs to account 999988887777, not to the row's 111122223333",
        ),
        (
            "certificate_arn",
            "arn:aws:acm:us-east-1:111122223333:certificate/not-a-uuid",
            "is not an ACM certificate ARN",
        ),
        ("role_arn", "arn:aws:iam::999988887777:role/Fleet", "role belongs to account 999988887777"),
        ("role_arn", "arn:aws:iam::111122223333:user/Fleet", "is not an IAM role ARN"),
        ("external_id", "x", "2 to 1224 characters"),
        ("external_id", "bad id with spaces", "2 to 1224 characters"),
    ],
)
def test_each_rule_reports_file_line_column(tmp_path: Path, cell: str, value: str, reason: str) -> None:
    columns = [*HEADER.split(","), "role_arn", "external_id"]
    good = dict(zip(columns, [*GOOD.split(","), "", ""], strict=True))
    good["domain"] = "other.example.com"
    good[cell] = value
    text = ",".join(columns) + "\n" + GOOD + ",,\n" + ",".join(good[c] for c in columns) + "\n"
    p = one(text, tmp_path)
    assert (p.line, p.column, p.column_name) == (3, columns.index(cell) + 1, cell)
    assert reason in p.reason
    assert str(p).startswith(f"{tmp_path / 'm.csv'}:3:{columns.index(cell) + 1}: {cell}: ")


def test_all_problems_are_listed_at_once(tmp_path: Path) -> None:
    text = f"{HEADER}\n{GOOD}\n1,eu-west-1,eu-west-1_A,BAD,{CERT}\n{GOOD.replace('auth.', 'x.')}\n2,nowhere,p,d,c\n"
    found = problems(text, tmp_path)
    assert [(p.line, p.column_name) for p in found] == [
        (3, "account_id"),
        (3, "domain"),
        (5, "account_id"),
        (5, "region"),
        (5, "user_pool_id"),
        (5, "domain"),
        (5, "certificate_arn"),
    ]


def test_a_domain_listed_twice_is_an_error_even_when_identical(tmp_path: Path) -> None:
    p = one(f"{HEADER}\n{GOOD}\n\n{GOOD}\n", tmp_path)
    assert (p.line, p.column_name) == (4, "domain") and "already listed on line 2" in p.reason


def test_unknown_missing_and_repeated_columns(tmp_path: Path) -> None:
    found = problems("acount_id,region,user_pool_id,domain,certificate_arn,region\n", tmp_path)
    assert [(p.line, p.column, p.column_name) for p in found] == [
        (1, 1, "acount_id"),
        (1, 6, "region"),
        (1, 1, "account_id"),
    ]
    assert "did you mean 'account_id'" in found[0].reason
    assert "twice" in found[1].reason and "missing" in found[2].reason


def test_wrong_field_count(tmp_path: Path) -> None:
    p = one(f"{HEADER}\n{GOOD},extra\n", tmp_path)
    assert p.line == 2 and "6 fields, the header has 5" in p.reason


def test_undecodable_bytes_name_line_and_column(tmp_path: Path) -> None:
    p = one(f"{HEADER}\n{GOOD}\n1111,\xff".encode("latin-1"), tmp_path)
    assert (p.line, p.column) == (3, 6) and "not UTF-8" in p.reason


def test_empty_file_header_only_and_missing_file(tmp_path: Path) -> None:
    assert "empty" in one(b"", tmp_path).reason
    assert "empty" in one(b"\n\n  \n", tmp_path).reason
    header_only = tmp_path / "header.csv"
    header_only.write_text(f"{HEADER}\n")
    assert parse(header_only).rows == ()  # valid: nothing to do
    with pytest.raises(ManifestError, match="cannot read"):
        parse(tmp_path / "absent.csv")


def test_malformed_quoting_is_reported_with_its_line(tmp_path: Path) -> None:
    p = one(f'{HEADER}\n{GOOD}\n"111122223333"x,eu-west-1,eu-west-1_A,a.example.com,{CERT}\n', tmp_path)
    assert p.line == 3 and "malformed CSV" in p.reason


def test_quoted_multiline_cell_keeps_the_starting_line(tmp_path: Path) -> None:
    p = one(f'{HEADER}\n{GOOD}\n111122223333,eu-west-1,eu-west-1_A,"bad\nname",{CERT}\n', tmp_path)
    assert (p.line, p.column_name) == (3, "domain")


def test_conflicting_roles_in_one_account(tmp_path: Path) -> None:
    other = GOOD.replace("auth.", "x.")
    text = f"{HEADER},role_arn\n{GOOD},arn:aws:iam::111122223333:role/A\n{other},arn:aws:iam::111122223333:role/B\n"
    p = one(text, tmp_path)
    assert (p.line, p.column_name) == (3, "role_arn") and "line 2" in p.reason
