"""The CSV manifest: one row per custom domain to move to a new certificate.

Everything is validated before anything is called: a manifest with one bad row yields
every problem at once (``FILE:LINE:COL: column: reason``) and no AWS call is made.
"""

from __future__ import annotations

import csv
import difflib
import re
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from fleet import csv_cells
from fleet.errors import FleetError
from fleet.files import atomic_writer

REQUIRED_COLUMNS = ("account_id", "region", "user_pool_id", "domain", "certificate_arn")
# rollback_from: the manifest returns the domain to a certificate the tool moved it from (written by `rollback`).
OPTIONAL_COLUMNS = ("role_arn", "external_id", "rollback_from")
KNOWN_COLUMNS = REQUIRED_COLUMNS + OPTIONAL_COLUMNS

_ACCOUNT = re.compile(r"\d{12}")
_POOL_ID = re.compile(r"([a-z]{2}(?:-[a-z]+)+-\d)_([0-9a-zA-Z]+)")
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?")
_DOMAIN = re.compile(r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_CERT_ARN = re.compile(
    r"arn:aws:acm:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):certificate/"
    r"(?P<id>[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})"
)
_ROLE_ARN = re.compile(r"arn:aws:iam::(?P<account>\d{12}):role/(?:[\x21-\x7e]*/)?(?P<name>[\w+=,.@-]{1,64})")
_EXTERNAL_ID = re.compile(r"[\w+=,.@:/-]{2,1224}")
CERT_REGION = "us-east-1"  # CloudFront (and so Cognito custom domains) only takes us-east-1 certificates


@dataclass(frozen=True, slots=True)
class Row:
    """One validated manifest row. ``line`` is the 1-based line where the row starts."""

    line: int
    account_id: str
    region: str
    user_pool_id: str
    domain: str
    certificate_arn: str
    role_arn: str | None = None
    external_id: str | None = None
    rollback_from: str | None = None  # a rollback row: the certificate the tool moved the domain to


@dataclass(frozen=True, slots=True)
class Problem:
    path: str
    line: int
    column: int  # 1-based field number; 1 for whole-row and file problems
    column_name: str | None
    reason: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}:{self.column}:"
        return f"{where} {self.column_name}: {self.reason}" if self.column_name else f"{where} {self.reason}"


class ManifestError(FleetError):
    """The manifest is invalid; ``problems`` lists every problem found (each as FILE:LINE:COL)."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))

    def lines(self) -> list[str]:
        path = self.problems[0].path if self.problems else "manifest"
        return [*map(str, self.problems), f"{path}: {len(self.problems)} problem(s); nothing was called"]


@dataclass(frozen=True, slots=True)
class Manifest:
    path: str
    rows: tuple[Row, ...]

    @property
    def accounts(self) -> set[str]:
        return {r.account_id for r in self.rows}

    @property
    def regions(self) -> set[str]:
        return {r.region for r in self.rows}


def group_by(rows: Iterable[Row], attribute: str) -> dict[str, list[Row]]:
    """Rows grouped by one of their fields (account_id, region), groups and rows in manifest order."""
    groups: dict[str, list[Row]] = {}
    for row in rows:
        groups.setdefault(getattr(row, attribute), []).append(row)
    return groups


@cache
def cognito_regions() -> frozenset[str]:
    """Regions of the aws partition where Cognito user pools exist, from botocore's endpoint data.

    Read from the data file, not through a botocore session: a session reads the user's AWS profile, and
    `validate` must work (and call nothing) whatever AWS_PROFILE says.
    """
    import botocore.loaders
    import botocore.regions

    endpoints = botocore.loaders.create_loader().load_data("endpoints")
    return frozenset(botocore.regions.EndpointResolver(endpoints).get_available_endpoints("cognito-idp", "aws"))


def validate_domain(domain: str) -> str | None:
    """Return why ``domain`` is not a valid custom domain name, or None."""
    if len(domain) <= 253 and _DOMAIN.fullmatch(domain):
        return None  # the common case in one regex; the detailed checks below only explain failures
    if not domain:
        return "is empty"
    if len(domain) > 253:
        return f"is {len(domain)} characters long (at most 253)"
    labels = domain.split(".")
    if len(labels) < 2:
        return "must be a full domain name with at least two labels (a prefix domain has no certificate)"
    for label in labels:
        if not label:
            return "has an empty label"
        if len(label) > 63:
            return f"label {label[:20]!r}... is {len(label)} characters long (at most 63)"
        if not _LABEL.fullmatch(label):
            if label.startswith("-") or label.endswith("-"):
                return f"label {label!r} starts or ends with a hyphen"
            return f"label {label!r} may hold only lowercase letters, digits and hyphens"
    return None


# A valid row without role/external id, in one match: the pool's region and the certificate's account are
# back-references to the row's. Only rows that miss it take the long way below, which says what is wrong.
_VALID_ROW = re.compile(
    r"(?P<account>\d{12})\x1f(?P<region>[a-z]{2}(?:-[a-z]+)+-\d)\x1f(?P=region)_[0-9a-zA-Z]+\x1f"
    + _DOMAIN.pattern
    + r"\x1farn:aws:acm:us-east-1:(?P=account):certificate/"
    + _CERT_ARN.pattern.rsplit("certificate/", 1)[1]
)


def _certificate_problems(column: str, cert: str, account: str | None) -> list[tuple[str, str]]:
    """An ACM certificate ARN in us-east-1 of the row's account, or why not."""
    cm = _CERT_ARN.fullmatch(cert)
    if not cm:
        return [
            (column, f"{cert!r} is not an ACM certificate ARN (arn:aws:acm:us-east-1:<account>:certificate/<uuid>)")
        ]
    problems = []
    if cm.group("region") != CERT_REGION:
        problems.append(
            (column, f"certificate is in {cm.group('region')}; Cognito custom domains need one in {CERT_REGION}")
        )
    if account and cm.group("account") != account:
        problems.append((column, f"certificate belongs to account {cm.group('account')}, not to the row's {account}"))
    return problems


def _check_row(cells: dict[str, str]) -> list[tuple[str, str]]:
    """Rule violations of one row as (column, reason) pairs."""
    if (
        not cells.get("role_arn")
        and not cells.get("external_id")
        and not cells.get("rollback_from")
        and len(cells["domain"]) <= 253
        and cells["region"] in cognito_regions()
        and _VALID_ROW.fullmatch(
            "\x1f".join(
                (cells["account_id"], cells["region"], cells["user_pool_id"], cells["domain"], cells["certificate_arn"])
            )
        )
    ):
        return []
    errors: list[tuple[str, str]] = []
    account = cells["account_id"]
    account_ok = bool(_ACCOUNT.fullmatch(account))
    if not account_ok:
        errors.append(("account_id", f"{account!r} is not a 12-digit AWS account id"))
    region = cells["region"]
    region_ok = region in cognito_regions()
    if not region_ok:
        hint = difflib.get_close_matches(region, sorted(cognito_regions()), n=1)
        more = f" (did you mean {hint[0]!r}?)" if hint else ""
        errors.append(("region", f"{region!r} is not an AWS region with Cognito user pools{more}"))
    pool = cells["user_pool_id"]
    m = _POOL_ID.fullmatch(pool)
    if not m:
        errors.append(("user_pool_id", f"{pool!r} is not a user pool id of the form <region>_<id>"))
    elif region_ok and m.group(1) != region:
        errors.append(("user_pool_id", f"{pool!r} belongs to region {m.group(1)}, not to the row's {region}"))
    reason = validate_domain(cells["domain"])
    if reason:
        errors.append(("domain", f"{cells['domain']!r} {reason}"))
    errors += _certificate_problems("certificate_arn", cells["certificate_arn"], account if account_ok else None)
    if cells.get("rollback_from"):
        errors += _certificate_problems("rollback_from", cells["rollback_from"], account if account_ok else None)
    role = cells.get("role_arn", "")
    if role:
        rm = _ROLE_ARN.fullmatch(role)
        if not rm:
            errors.append(("role_arn", f"{role!r} is not an IAM role ARN (arn:aws:iam::<account>:role/<name>)"))
        elif account_ok and rm.group("account") != account:
            errors.append(("role_arn", f"role belongs to account {rm.group('account')}, not to the row's {account}"))
    external = cells.get("external_id", "")
    if external and not _EXTERNAL_ID.fullmatch(external):
        errors.append(("external_id", "must be 2 to 1224 characters of letters, digits and +=,.@:/-_"))
    return errors


def _decode(path: str, data: bytes) -> str | Problem:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        offset = exc.start + (3 if data.startswith(b"\xef\xbb\xbf") else 0)
        before = data[:offset]
        line = before.count(b"\n") + 1
        column = offset - (before.rfind(b"\n") + 1) + 1
        return Problem(path, line, column, None, f"byte 0x{data[offset]:02x} is not UTF-8 (the manifest must be UTF-8)")


class _CsvError(Exception):
    def __init__(self, line: int, reason: str) -> None:
        super().__init__(reason)
        self.line, self.reason = line, reason


def _lines(text: str) -> Iterator[str]:
    """The text's lines, ends kept, one at a time (io.StringIO would hold a 4-byte-per-character copy)."""
    start, size = 0, len(text)
    while start < size:
        end = text.find("\n", start)
        end = size if end < 0 else end + 1
        yield text[start:end]
        start = end


def _records(text: str) -> Iterator[tuple[int, list[str]]]:
    """CSV records with the line each starts on; blank lines are skipped."""
    reader = csv.reader(_lines(text), strict=True)
    start = 1
    while True:
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise _CsvError(reader.line_num or start, str(exc)) from None
        if record and "".join(record).strip():  # some cell is not blank (one C call, not a generator)
            yield start, record
        start = reader.line_num + 1


def parse(path: str | Path, data: bytes | None = None) -> Manifest:
    """Read and validate a manifest; raise ManifestError listing every problem."""
    name = str(path)
    if data is None:
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise ManifestError([Problem(name, 1, 1, None, f"cannot read: {exc.strerror}")]) from None
    text = _decode(name, data)
    data = None  # only the decoded text is needed from here on
    if isinstance(text, Problem):
        raise ManifestError([text])
    records = _records(text)
    checker: _RowChecker | None = None
    malformed: list[Problem] = []
    try:
        first = next(records, None)
        if first is None:
            raise ManifestError([Problem(name, 1, 1, None, "the manifest is empty (a header row is required)")])
        checker = _RowChecker(name, *first)
        for line, record in records:
            checker.check(line, record)
    except _CsvError as exc:
        malformed.append(Problem(name, exc.line, 1, None, f"malformed CSV: {exc.reason}"))
    problems = (checker.problems if checker else []) + malformed
    if problems:
        raise ManifestError(problems)
    rows = checker.rows if checker else []  # a header and no rows is valid: nothing to do
    return Manifest(name, tuple(rows))


def _header(name: str, line: int, raw: list[str]) -> tuple[list[str], dict[str, int]]:
    """The header's columns and where each known one is; ManifestError for unknown, doubled or missing ones."""
    header = [h.strip() for h in raw]
    index: dict[str, int] = {}
    problems: list[Problem] = []
    for i, col in enumerate(header):
        if col in index:
            problems.append(Problem(name, line, i + 1, col, "column appears twice in the header"))
        elif col not in KNOWN_COLUMNS:
            hint = difflib.get_close_matches(col, KNOWN_COLUMNS, n=1)
            more = f" (did you mean {hint[0]!r}?)" if hint else ""
            reason = f"unknown column{more}; known: {', '.join(KNOWN_COLUMNS)}"
            problems.append(Problem(name, line, i + 1, col or "<empty>", reason))
        else:
            index[col] = i
    for col in REQUIRED_COLUMNS:
        if col not in index:
            problems.append(Problem(name, line, 1, col, "required column is missing from the header"))
    if problems:
        raise ManifestError(problems)
    return header, index


class _RowChecker:
    """Checks each data row against the header, its own rules and the rows before it (domains listed once; one
    role and external id per account, since AssumeRole happens once per account)."""

    def __init__(self, name: str, header_line: int, raw_header: list[str]) -> None:
        self.name = name
        self.header, self.index = _header(name, header_line, raw_header)
        self.rows: list[Row] = []
        self.problems: list[Problem] = []
        self._seen: dict[str, int] = {}  # domain -> line
        self._roles: dict[str, tuple[str, str, int]] = {}  # account -> (role_arn, external_id, line)

    def _problem(self, line: int, col: str, reason: str) -> None:
        self.problems.append(Problem(self.name, line, self.index[col] + 1, col, reason))

    def check(self, line: int, record: list[str]) -> None:
        if len(record) != len(self.header):
            column = min(len(record), len(self.header)) + 1
            reason = f"row has {len(record)} fields, the header has {len(self.header)}"
            self.problems.append(Problem(self.name, line, column, None, reason))
            return
        cells = {col: csv_cells.restore(record[i].strip()) for col, i in self.index.items()}  # as written
        row_errors = _check_row(cells)
        for col, reason in row_errors:
            self._problem(line, col, reason)
        domain = cells["domain"]
        if domain in self._seen:
            self._problem(line, "domain", f"{domain!r} is already listed on line {self._seen[domain]}")
            return
        self._seen[domain] = line
        how = (cells.get("role_arn", ""), cells.get("external_id", ""))
        first = self._roles.setdefault(cells["account_id"], (*how, line))
        if not row_errors and first[:2] != how:
            col = "role_arn" if first[0] != how[0] else "external_id"
            self._problem(line, col, f"differs from line {first[2]} for the same account {cells['account_id']}")
            return
        if not row_errors:
            self.rows.append(
                Row(
                    line=line,
                    account_id=sys.intern(cells["account_id"]),  # shared by the account's rows
                    region=sys.intern(cells["region"]),
                    user_pool_id=cells["user_pool_id"],
                    domain=domain,
                    certificate_arn=cells["certificate_arn"],
                    role_arn=cells.get("role_arn") or None,
                    external_id=cells.get("external_id") or None,
                    rollback_from=cells.get("rollback_from") or None,
                )
            )


def write(path: str | Path, rows: Iterable[Row], roles: bool | None = None) -> Path:
    """Write ``rows`` as a manifest (whole or not at all). ``roles``: add the role_arn/external_id columns
    (None: when some row has one); rollback_from is added when some row has one."""
    rows = list(rows)
    if roles is None:
        roles = any(r.role_arn or r.external_id for r in rows)
    rollback = any(r.rollback_from for r in rows)
    columns = [
        *REQUIRED_COLUMNS,
        *(("role_arn", "external_id") if roles else ()),
        *(("rollback_from",) if rollback else ()),
    ]
    target = Path(path)
    with atomic_writer(target) as fh:
        out = csv.writer(fh)
        out.writerow(columns)
        for r in rows:
            values = {c: getattr(r, c) or "" for c in columns}
            out.writerow(csv_cells.row(values[c] for c in columns))  # an external id may start with = + - @
    return target
