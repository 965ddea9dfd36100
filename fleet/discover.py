"""Discover the fleet: find every Cognito custom domain in the accounts, and the certificate to move it to.

Per account (assumed role, the same limiter and retry policy as `run`) and region:
ListUserPools (paginated) -> DescribeUserPool -> its CustomDomain -> DescribeUserPoolDomain -> current
certificate -> ACM DescribeCertificate. Targets come from a map (old ARN -> new ARN) or, with --auto, from the
newest ISSUED certificate of the account that covers the domain, CloudFront accepts and outlives the current
one. An account that cannot be read is reported and skipped. Output is sorted, so reruns are comparable.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio

from fleet.credentials import AccountSession, Hub, role_arn_for
from fleet.domain import snake
from fleet.engine import EngineSettings
from fleet.errors import FleetError
from fleet.hub_check import checked_hub
from fleet.limits import Limits, RegionLimits
from fleet.manifest import CERT_REGION
from fleet.preflight import ACCEPTED_KEY_ALGORITHMS, covers
from fleet.report import atomic_writer
from fleet.retry import AttemptCounter, call_with_retry, classify

_ACCOUNT = re.compile(r"\d{12}")
_CERT = re.compile(r"arn:aws:acm:us-east-1:(\d{12}):certificate/[0-9a-fA-F-]{36}")
INVENTORY_COLUMNS = (
    "account_id",
    "region",
    "user_pool_id",
    "domain",
    "certificate_arn",
    "not_after",
    "days_left",
    "domain_status",
    "target_certificate_arn",
    "selection",
    "error_code",
    "error_message",
)


class DiscoverError(FleetError):
    """Bad input to discover (accounts file, map file): the message names the file and line."""


@dataclass(frozen=True, slots=True)
class Account:
    account_id: str
    role_arn: str | None = None
    external_id: str | None = None


@dataclass(slots=True)
class Found:
    account_id: str
    region: str = ""
    user_pool_id: str = ""
    domain: str = ""
    certificate_arn: str = ""
    not_after: datetime | None = None
    domain_status: str = ""
    target_certificate_arn: str = ""
    selection: str = ""  # selected | not-mapped | not-expiring | no-candidate | error
    error_code: str = ""
    error_message: str = ""

    def line(self, now: datetime) -> dict[str, str]:
        days = "" if self.not_after is None else str((self.not_after - now).days)
        return {
            "account_id": self.account_id,
            "region": self.region,
            "user_pool_id": self.user_pool_id,
            "domain": self.domain,
            "certificate_arn": self.certificate_arn,
            "not_after": self.not_after.isoformat() if self.not_after else "",
            "days_left": days,
            "domain_status": self.domain_status,
            "target_certificate_arn": self.target_certificate_arn,
            "selection": self.selection,
            "error_code": self.error_code,
            "error_message": self.error_message,
        }


@dataclass(frozen=True, slots=True)
class Selection:
    mapping: dict[str, str] | None = None  # old certificate ARN -> new
    expiring_within_days: float = 30.0  # --auto: only domains whose certificate expires within this
    min_validity_days: float = 30.0


@dataclass
class Inventory:
    found: list[Found] = field(default_factory=list)

    def sorted(self) -> list[Found]:
        return sorted(self.found, key=lambda f: (f.account_id, f.region, f.domain, f.user_pool_id))


# ---- inputs ---------------------------------------------------------------------------------------
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


async def organization_accounts(hub: Hub, ous: Sequence[str], exclude: Iterable[str]) -> list[Account]:
    """ACTIVE accounts of the organization, or of the given OUs and their children."""
    org = await hub.client("organizations")
    found: dict[str, dict[str, Any]] = {}
    if not ous:
        async for page in org.get_paginator("list_accounts").paginate():
            found.update({a["Id"]: a for a in page["Accounts"]})
    else:
        pending = list(ous)
        while pending:
            parent = pending.pop()
            async for page in org.get_paginator("list_accounts_for_parent").paginate(ParentId=parent):
                found.update({a["Id"]: a for a in page["Accounts"]})
            async for page in org.get_paginator("list_organizational_units_for_parent").paginate(ParentId=parent):
                pending.extend(ou["Id"] for ou in page["OrganizationalUnits"])
    skip = set(exclude)
    return [
        Account(i)
        for i, a in sorted(found.items())
        if (a.get("State") or a.get("Status")) == "ACTIVE" and i not in skip
    ]


# ---- inventory ------------------------------------------------------------------------------------
class Discoverer:
    def __init__(self, settings: EngineSettings, selection: Selection, now: datetime | None = None) -> None:
        self.settings, self.selection = settings, selection
        self.now = now or datetime.now(UTC)
        self.limits = Limits(settings.concurrency, settings.rate_per_account)
        self.inventory = Inventory()

    async def run(self, hub: Hub, accounts: Sequence[Account], regions: Sequence[str]) -> Inventory:
        slots = anyio.CapacityLimiter(self.settings.account_concurrency)
        async with anyio.create_task_group() as tg:
            for account in accounts:
                await slots.acquire_on_behalf_of(account.account_id)
                tg.start_soon(self._account, hub, account, regions, slots)
        return self.inventory

    async def _call(self, client: Any, operation: str, limits: RegionLimits, key: str, **kwargs: Any) -> Any:
        method = getattr(client, snake(operation))

        async def attempt() -> Any:
            async with self.limits.call(limits, key, operation):
                return await method(**kwargs)

        return await call_with_retry(attempt, self.settings.policy, AttemptCounter())

    async def _account(self, hub: Hub, account: Account, regions: Sequence[str], slots: anyio.CapacityLimiter) -> None:
        try:
            try:
                session = await hub.assume(
                    account.account_id,
                    role_arn_for(account.account_id, self.settings.aws, account.role_arn),
                    account.external_id or self.settings.aws.external_id,
                )
            except Exception as exc:
                failure = classify(exc)
                self.inventory.found.append(
                    Found(
                        account.account_id,
                        selection="error",
                        error_code=failure.code,
                        error_message=f"AssumeRole: {failure.message}",
                    )
                )
                return
            try:
                certificates = _Certificates(self, session)
                async with anyio.create_task_group() as tg:
                    for region in regions:
                        tg.start_soon(self._region, session, account, region, certificates)
            finally:
                await session.aclose()
        finally:
            slots.release_on_behalf_of(account.account_id)

    async def _region(
        self, session: AccountSession, account: Account, region: str, certificates: _Certificates
    ) -> None:
        limits = self.limits.for_region()
        try:
            cognito = await session.client("cognito-idp", region)
            pool_ids: list[str] = []
            token: str | None = None
            while True:
                kwargs: dict[str, Any] = {"MaxResults": 60} | ({"NextToken": token} if token else {})
                page = await self._call(cognito, "ListUserPools", limits, "list", **kwargs)
                pool_ids += [p["Id"] for p in page.get("UserPools", [])]
                token = page.get("NextToken")
                if not token:
                    break
        except Exception as exc:
            failure = classify(exc)
            self.inventory.found.append(
                Found(
                    account.account_id,
                    region,
                    selection="error",
                    error_code=failure.code,
                    error_message=failure.message,
                )
            )
            return
        async with anyio.create_task_group() as tg:
            for pool_id in pool_ids:
                tg.start_soon(self._pool, cognito, limits, account, region, pool_id, certificates)

    async def _pool(
        self,
        cognito: Any,
        limits: RegionLimits,
        account: Account,
        region: str,
        pool_id: str,
        certificates: _Certificates,
    ) -> None:
        found = Found(account.account_id, region, pool_id)
        try:
            pool = (await self._call(cognito, "DescribeUserPool", limits, pool_id, UserPoolId=pool_id))["UserPool"]
            domain = pool.get("CustomDomain")
            if not domain:
                return  # no custom domain: nothing to migrate (a prefix domain has no certificate)
            found.domain = domain
            described = await self._call(cognito, "DescribeUserPoolDomain", limits, pool_id, Domain=domain)
            description = described.get("DomainDescription") or {}
            found.domain_status = str(description.get("Status", ""))
            found.certificate_arn = (description.get("CustomDomainConfig") or {}).get("CertificateArn", "")
            current = await certificates.describe(found.certificate_arn) if found.certificate_arn else None
            found.not_after = _not_after(current)
            found.target_certificate_arn, found.selection = await self._select(found, certificates)
        except Exception as exc:
            failure = classify(exc)
            found.selection, found.error_code, found.error_message = "error", failure.code, failure.message
        self.inventory.found.append(found)

    async def _select(self, found: Found, certificates: _Certificates) -> tuple[str, str]:
        if self.selection.mapping is not None:
            target = self.selection.mapping.get(found.certificate_arn)
            return (target, "selected") if target else ("", "not-mapped")
        horizon = self.now + timedelta(days=self.selection.expiring_within_days)
        if found.not_after is not None and found.not_after > horizon:
            return "", "not-expiring"
        best: tuple[datetime, datetime, str] | None = None
        for cert in await certificates.candidates():
            not_after = _not_after(cert)
            not_before = cert.get("NotBefore") or datetime.min.replace(tzinfo=UTC)
            if (
                cert["CertificateArn"] == found.certificate_arn
                or not_after is None
                or not covers([cert.get("DomainName", ""), *cert.get("SubjectAlternativeNames", [])], found.domain)
                or cert.get("KeyAlgorithm") not in ACCEPTED_KEY_ALGORITHMS
                or not_after - self.now < timedelta(days=self.selection.min_validity_days)
                or (found.not_after is not None and not_after <= found.not_after)
            ):
                continue
            key = (not_before, not_after, cert["CertificateArn"])
            if best is None or key > best:
                best = key
        return (best[2], "selected") if best else ("", "no-candidate")


class _Certificates:
    """An account's ACM certificates in us-east-1, each described once."""

    def __init__(self, owner: Discoverer, session: AccountSession) -> None:
        self.owner, self.session = owner, session
        self.limits = owner.limits.for_region()
        self._described: dict[str, dict[str, Any]] = {}
        self._issued: list[str] | None = None
        self._lock = anyio.Lock()

    async def describe(self, arn: str) -> dict[str, Any]:
        if arn not in self._described:
            acm = await self.session.client("acm", CERT_REGION)
            out = await self.owner._call(acm, "DescribeCertificate", self.limits, arn, CertificateArn=arn)
            self._described[arn] = out["Certificate"]
        return self._described[arn]

    async def candidates(self) -> list[dict[str, Any]]:
        async with self._lock:  # list once per account, however many domains ask
            if self._issued is None:
                acm = await self.session.client("acm", CERT_REGION)
                arns: list[str] = []
                token: str | None = None
                while True:
                    kwargs: dict[str, Any] = {"CertificateStatuses": ["ISSUED"]} | (
                        {"NextToken": token} if token else {}
                    )
                    page = await self.owner._call(acm, "ListCertificates", self.limits, "list", **kwargs)
                    arns += [c["CertificateArn"] for c in page.get("CertificateSummaryList", [])]
                    token = page.get("NextToken")
                    if not token:
                        break
                self._issued = arns
        return [await self.describe(arn) for arn in self._issued]


def _not_after(cert: dict[str, Any] | None) -> datetime | None:
    value = (cert or {}).get("NotAfter")
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return None


# ---- outputs --------------------------------------------------------------------------------------
def write_outputs(
    inventory: Inventory, manifest: Path, inventory_path: Path, accounts: Sequence[Account], now: datetime
) -> int:
    """Write the manifest of selected domains and the inventory (CSV + JSONL); return the manifest's rows."""
    import json

    roles = {a.account_id: a for a in accounts}
    found = inventory.sorted()
    rows = 0
    with atomic_writer(manifest) as fh:
        writer = csv.writer(fh)
        writer.writerow(
            ["account_id", "region", "user_pool_id", "domain", "certificate_arn", "role_arn", "external_id"]
        )
        for f in found:
            if f.selection == "selected":
                account = roles.get(f.account_id, Account(f.account_id))
                writer.writerow(
                    [
                        f.account_id,
                        f.region,
                        f.user_pool_id,
                        f.domain,
                        f.target_certificate_arn,
                        account.role_arn or "",
                        account.external_id or "",
                    ]
                )
                rows += 1
    with atomic_writer(inventory_path) as csv_fh, atomic_writer(inventory_path.with_suffix(".jsonl")) as json_fh:
        inventory_writer = csv.DictWriter(csv_fh, fieldnames=INVENTORY_COLUMNS)
        inventory_writer.writeheader()
        for f in found:
            line = f.line(now)
            inventory_writer.writerow(line)
            json_fh.write(json.dumps(line, separators=(",", ":")) + "\n")
    return rows


def run_discovery(
    settings: EngineSettings,
    accounts_file: Path | None,
    organization: bool,
    ous: Sequence[str],
    exclude: Sequence[str],
    regions: Sequence[str],
    map_file: Path | None,
    expiring_within: float,
    out: Path,
    inventory_path: Path,
) -> tuple[int, str]:
    """The `discover` command: return (exit code, message)."""
    from fleet.manifest import cognito_regions

    unknown = [r for r in regions if r not in cognito_regions()]
    if unknown or not regions:
        raise DiscoverError(f"--regions: not Cognito regions: {', '.join(unknown) or '(none given)'}")
    mapping = read_map(map_file) if map_file else None
    listed = read_accounts(accounts_file) if accounts_file else []
    selection = Selection(
        mapping=mapping, expiring_within_days=expiring_within, min_validity_days=settings.min_validity_days
    )
    discoverer = Discoverer(settings, selection)

    async def go() -> list[Account]:
        async with checked_hub(settings.aws, settings.policy, anyio.sleep) as hub:
            accounts = listed or await organization_accounts(hub, ous, exclude)
            accounts = [a for a in accounts if a.account_id not in set(exclude)]
            await discoverer.run(hub, accounts, regions)
            return accounts

    accounts = anyio.run(go)
    rows = write_outputs(discoverer.inventory, out, inventory_path, accounts, discoverer.now)
    found = discoverer.inventory.found
    errors = [f for f in found if f.selection == "error"]
    domains = [f for f in found if f.domain]
    summary = (
        f"{len(accounts)} accounts x {len(regions)} regions: {len(domains)} custom domains, {rows} selected, "
        f"{len(errors)} errors; manifest: {out}; inventory: {inventory_path}"
    )
    if rows:
        from fleet.manifest import parse

        parse(out)  # what discover writes must be a manifest that validate and run accept
    return (1 if errors or not rows else 0), summary
