"""discover's inventory: every custom domain of the accounts, its certificate, and the chosen target.

Per account (assumed role; the same calls layer, limits and retry policy as `run`) and region:
ListUserPools (paged) -> DescribeUserPool -> its CustomDomain -> DescribeUserPoolDomain -> current certificate
-> ACM DescribeCertificate (each certificate once per account). An account or region that cannot be read is an
``error`` line, and the others go on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import anyio

from fleet.aws.accounts import Target, each_account
from fleet.aws.calls import Calls, Once
from fleet.aws.credentials import AccountSession, Hub
from fleet.aws.edge import EdgeChecker, NotSeen, Served, format_serial, is_certificate
from fleet.aws.limits import RegionLimits
from fleet.aws.retry import Failure, classify
from fleet.aws.stop import StopRequested
from fleet.discover import select
from fleet.discover.inputs import Account
from fleet.errors import RowFailed
from fleet.manifest import CERT_REGION
from fleet.migration.certificates import check, rejection


@dataclass(slots=True)
class Found:
    """One inventory line: a custom domain (or an account/region that could not be read)."""

    account_id: str
    region: str = ""
    user_pool_id: str = ""
    domain: str = ""
    certificate_arn: str = ""
    not_after: datetime | None = None
    domain_status: str = ""
    target_certificate_arn: str = ""
    # selected | matched | not-mapped | rejected | other-issuer | not-imported | not-expiring | no-candidate | error
    selection: str = ""
    error_code: str = ""
    error_message: str = ""
    current: dict[str, Any] = field(default_factory=dict)  # ACM's DescribeCertificate of the current certificate
    target: dict[str, Any] = field(default_factory=dict)  # ... of the target
    cloudfront: str = ""  # the domain's CloudFront host (its edge)
    edge: str = ""  # what the edge serves: current | target | other | unreachable | '' (not checked)
    edge_serial: str = ""
    edge_issuer: str = ""  # the served certificate's issuer (O, CN)

    def line(self, now: datetime) -> dict[str, str]:
        days = "" if self.not_after is None else str((self.not_after - now).days)
        target_expiry = select.not_after(self.target)
        return {
            "account_id": self.account_id,
            "region": self.region,
            "user_pool_id": self.user_pool_id,
            "domain": self.domain,
            "certificate_arn": self.certificate_arn,
            "issuer": str(self.current.get("Issuer") or ""),
            "serial": str(self.current.get("Serial") or ""),
            "type": str(self.current.get("Type") or ""),
            "key_algorithm": str(self.current.get("KeyAlgorithm") or ""),
            "not_after": self.not_after.isoformat() if self.not_after else "",
            "days_left": days,
            "domain_status": self.domain_status,
            "edge": self.edge,
            "edge_serial": self.edge_serial,
            "edge_issuer": self.edge_issuer,
            "target_certificate_arn": self.target_certificate_arn,
            "target_issuer": str(self.target.get("Issuer") or ""),
            "target_not_after": target_expiry.isoformat() if target_expiry else "",
            "selection": self.selection,
            "error_code": self.error_code,
            "error_message": self.error_message,
        }


@dataclass
class Inventory:
    found: list[Found] = field(default_factory=list)

    def sorted(self) -> list[Found]:
        return sorted(self.found, key=lambda f: (f.account_id, f.region, f.domain, f.user_pool_id))


class Discoverer:
    """Reads every account and region, and selects targets as it goes."""

    def __init__(
        self,
        calls: Calls,
        selection: select.Selection,
        account_concurrency: int,
        page_size: int = 60,
        edge: EdgeChecker | None = None,
    ) -> None:
        self.calls, self.selection, self.account_concurrency = calls, selection, account_concurrency
        self.page_size = page_size  # ListUserPools' MaxResults (AWS allows up to 60)
        self.edge = edge  # None: the edge is not looked at (--no-edge-check)
        self.now = calls.clock.now()
        self.inventory = Inventory()

    async def run(self, hub: Hub, accounts: Sequence[Account], regions: Sequence[str]) -> Inventory:
        async def work(session: AccountSession, account: Account) -> None:
            certificates = _Certificates(self.calls, session)
            async with anyio.create_task_group() as tg:
                for region in regions:
                    tg.start_soon(self._region, session, account, region, certificates)

        async def unreachable(account: Account, failure: Failure) -> None:
            message = f"AssumeRole: {failure.message}"
            self.inventory.found.append(
                Found(account.account_id, selection="error", error_code=failure.code, error_message=message)
            )

        await each_account(
            hub,
            accounts,
            lambda a: Target(a.account_id, a.role_arn, a.external_id),
            work,
            unreachable,
            self.account_concurrency,
            self.calls.stop,
        )
        return self.inventory

    async def _region(
        self, session: AccountSession, account: Account, region: str, certificates: _Certificates
    ) -> None:
        limits = self.calls.limits.for_region()
        try:
            cognito = await session.client("cognito-idp", region)
            pools = await self.calls.pages(
                cognito, "ListUserPools", limits, "list", "UserPools", MaxResults=self.page_size
            )
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
            for pool in pools:
                tg.start_soon(self._pool, cognito, limits, Found(account.account_id, region, pool["Id"]), certificates)

    async def _pool(self, cognito: Any, limits: RegionLimits, found: Found, certificates: _Certificates) -> None:
        pool_id = found.user_pool_id
        try:
            pool = (await self.calls.call(cognito, "DescribeUserPool", limits, pool_id, UserPoolId=pool_id))["UserPool"]
            domain = pool.get("CustomDomain")
            if not domain:
                return  # no custom domain: nothing to migrate (a prefix domain has no certificate)
            found.domain = domain
            described = await self.calls.call(cognito, "DescribeUserPoolDomain", limits, pool_id, Domain=domain)
            description = described.get("DomainDescription") or {}
            found.domain_status = str(description.get("Status", ""))
            found.certificate_arn = (description.get("CustomDomainConfig") or {}).get("CertificateArn", "")
            found.cloudfront = str(description.get("CloudFrontDistribution") or "")
            found.current = await certificates.describe(found.certificate_arn) if found.certificate_arn else {}
            found.not_after = select.not_after(found.current)
            served = await self._look(found, self.edge) if self.edge is not None else None
            found.target_certificate_arn, found.selection = await self._select(found, certificates, served)
            if found.target_certificate_arn and found.selection == select.SELECTED:
                found.target = await certificates.describe(found.target_certificate_arn)
                if served is not None and is_certificate(served, found.target):
                    found.edge = "target"
        except Exception as exc:
            failure = classify(exc)
            found.selection, found.error_code, found.error_message = "error", failure.code, failure.message
        self.inventory.found.append(found)

    async def _look(self, found: Found, edge: EdgeChecker) -> Served | None:
        """What the domain's edge serves now: its current certificate, another (the target: once known), or
        nothing (unreachable)."""
        served = await edge.look(found.domain, found.cloudfront or None)
        if isinstance(served, NotSeen):
            found.edge = "unreachable"
            return None
        found.edge_serial, found.edge_issuer = format_serial(served.serial), ", ".join(dict.fromkeys(served.issuer))
        found.edge = "current" if is_certificate(served, found.current) else "other"
        return served

    async def _select(self, found: Found, certificates: _Certificates, served: Served | None) -> tuple[str, str]:
        names = served.issuer if served is not None and found.edge == "current" else ()
        why = select.left_alone(found.current, self.selection, self.now, names)
        if why:
            return "", why
        if not self.selection.targets:
            return "", select.MATCHED  # the inventory alone: what would be selected
        if self.selection.mapping is not None:
            target, selection = select.mapped(found.certificate_arn, self.selection)
            if target:
                try:  # a mapped target passes the same certificate checks as `run` makes
                    try:
                        described = await certificates.describe(target)
                    except StopRequested:
                        raise
                    except Exception as exc:
                        raise rejection(exc, target) from None
                    check(described, found.domain, self.selection.min_validity_days, self.now)
                except RowFailed as exc:
                    found.error_code, found.error_message = exc.code, exc.message
                    return target, select.REJECTED
            return target, selection
        candidates = await certificates.candidates()
        target, selection, why = select.best_candidate(
            found.domain, found.certificate_arn, found.not_after, candidates, self.selection, self.now
        )
        if why:
            found.error_code, found.error_message = select.NO_CANDIDATE_CODE, why
        return target, selection


class _Certificates:
    """An account's ACM certificates in us-east-1: each described once, the ISSUED ones listed once."""

    def __init__(self, calls: Calls, session: AccountSession) -> None:
        self.calls, self.session = calls, session
        self.limits = calls.limits.for_region()
        self._described: Once[str, dict[str, Any]] = Once()
        self._listed: Once[str, list[dict[str, Any]]] = Once()

    async def describe(self, arn: str) -> dict[str, Any]:
        async def fetch() -> dict[str, Any]:
            acm = await self.session.client("acm", CERT_REGION)
            out = await self.calls.call(acm, "DescribeCertificate", self.limits, arn, CertificateArn=arn)
            return dict(out["Certificate"])

        return await self._described.get(arn, fetch)

    async def candidates(self) -> list[dict[str, Any]]:
        async def fetch() -> list[dict[str, Any]]:
            acm = await self.session.client("acm", CERT_REGION)
            return await self.calls.pages(
                acm, "ListCertificates", self.limits, "list", "CertificateSummaryList", CertificateStatuses=["ISSUED"]
            )

        listed = await self._listed.get("issued", fetch)
        return [await self.describe(c["CertificateArn"]) for c in listed]
