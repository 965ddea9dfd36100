"""discover's inputs: the accounts (a file, or the Organization) and the certificate map."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from fleet.aws.calls import Calls
from fleet.aws.credentials import Hub
from fleet.aws.organizations import active_accounts
from fleet.aws.retry import classify
from fleet.aws.stop import StopRequested
from fleet.errors import EXIT_FAILED_ROWS, FleetError

_ACCOUNT = re.compile(r"\d{12}")
_CERT = re.compile(r"arn:aws:acm:us-east-1:(\d{12}):certificate/[0-9a-fA-F-]{36}")


class DiscoverError(FleetError):
    """Bad input to discover (accounts file, map file, regions): the message names the file and line."""


@dataclass(frozen=True, slots=True)
class Account:
    account_id: str
    role_arn: str | None = None
    external_id: str | None = None


def read_accounts(path: Path) -> list[Account]:
    """One id per line, or a CSV with a header account_id[,role_arn,external_id]."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise DiscoverError(f"{path}: cannot read: {exc}") from None
    lines = text.splitlines()
    first = lines[0].strip() if lines else ""
    accounts: list[Account] = []
    if first.startswith("account_id"):
        reader = csv.DictReader(lines)
        for n, rec in enumerate(reader, start=2):
            account = (rec.get("account_id") or "").strip()
            if not account:
                continue
            if not _ACCOUNT.fullmatch(account):
                raise DiscoverError(f"{path}:{n}:1: account_id: {account!r} is not a 12-digit AWS account id")
            accounts.append(
                Account(
                    account, (rec.get("role_arn") or "").strip() or None, (rec.get("external_id") or "").strip() or None
                )
            )
    else:
        for n, raw in enumerate(lines, start=1):
            account = raw.split("#", 1)[0].strip()
            if not account:
                continue
            if not _ACCOUNT.fullmatch(account):
                raise DiscoverError(f"{path}:{n}:1: {account!r} is not a 12-digit AWS account id")
            accounts.append(Account(account))
    if not accounts:
        raise DiscoverError(f"{path}: no account ids")
    return accounts


def read_map(path: Path) -> dict[str, str]:
    """CSV old_certificate_arn,new_certificate_arn; both in us-east-1 of the same account."""
    mapping: dict[str, str] = {}
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            if set(reader.fieldnames or ()) != {"old_certificate_arn", "new_certificate_arn"}:
                raise DiscoverError(f"{path}:1:1: the header must be old_certificate_arn,new_certificate_arn")
            for n, rec in enumerate(reader, start=2):
                old, new = rec["old_certificate_arn"].strip(), rec["new_certificate_arn"].strip()
                for col, arn in (("old_certificate_arn", old), ("new_certificate_arn", new)):
                    if not _CERT.fullmatch(arn):
                        raise DiscoverError(f"{path}:{n}: {col}: {arn!r} is not an ACM certificate ARN in us-east-1")
                if old.split(":")[4] != new.split(":")[4]:
                    raise DiscoverError(f"{path}:{n}: new_certificate_arn: not in the old certificate's account")
                if mapping.get(old, new) != new:
                    raise DiscoverError(f"{path}:{n}: old_certificate_arn: mapped twice to different targets")
                mapping[old] = new
    except OSError as exc:
        raise DiscoverError(f"{path}: cannot read: {exc.strerror}") from None
    return mapping


class OrganizationUnreadable(FleetError):
    """Organizations would not list the accounts: discover cannot know the fleet, so it writes nothing."""

    exit_code = EXIT_FAILED_ROWS


async def organization_accounts(hub: Hub, calls: Calls, ous: Sequence[str], exclude: Iterable[str]) -> list[Account]:
    """ACTIVE accounts of the organization, or of the given OUs and their children (the hub's own calls)."""
    try:
        return [Account(i) for i in await active_accounts(hub, calls, ous, exclude)]
    except StopRequested:
        raise
    except Exception as exc:
        failure = classify(exc)
        raise OrganizationUnreadable(
            f"discover: Organizations did not list the accounts ({failure.code}: {failure.message}); run from the "
            "management account or a delegated administrator, with iam/hub-policy.json's Organizations actions, "
            "or give --accounts FILE; nothing was written"
        ) from None
