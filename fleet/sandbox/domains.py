"""Cognito user pool *domains* as AWS keeps them (moto's lack CustomDomainConfig, are always ACTIVE and take any
certificate): the true account, CustomDomainConfig in Describe, pool/prefix/certificate checks on Update, a stable
CloudFront domain, UPDATING -> ACTIVE, one name per partition, at most 4 custom domains per account and region."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from fleet.manifest import validate_domain
from fleet.migration.certificates import covers
from fleet.sandbox.state import SandboxState
from fleet.sandbox.wire import AwsError

COGNITO_PREFIX = "AWSCognitoIdentityProviderService."
DOMAIN_OPERATIONS = (
    "CreateUserPoolDomain",
    "DescribeUserPoolDomain",
    "UpdateUserPoolDomain",
    "DeleteUserPoolDomain",
)
MAX_CUSTOM_DOMAINS = 4  # per account and region (AWS, not adjustable)
AUTH_FAULTS = {
    "signature": "bad_signature",
    "missing": "bad_signature",
    "token": "invalid_token",
    "expired": "expired_token",
    "denied": "denied",
}


@dataclass
class DomainRecord:
    domain: str
    account: str
    region: str
    pool_id: str
    certificate_arn: str | None  # None: a prefix domain
    cloudfront: str
    managed_login_version: int | None
    version: int = 1
    status_until: float = 0.0  # UPDATING until this monotonic time, then ACTIVE
    status_while: str = "UPDATING"
    edge_previous: str | None = None  # what the edge served when the certificate last changed

    def status(self, now: float) -> str:
        return self.status_while if now < self.status_until else "ACTIVE"


class _DomainStore:
    """The domains kept, what moto must mirror of them, and what the tests and the edge read back."""

    state: SandboxState
    domains: dict[str, DomainRecord]

    def _pool(self, account: str, region: str, pool_id: str) -> Any:
        from moto.cognitoidp.models import cognitoidp_backends

        pool = cognitoidp_backends[account][region].user_pools.get(pool_id)
        if pool is None:
            raise AwsError("ResourceNotFoundException", f"User pool {pool_id} does not exist.")
        return pool

    @staticmethod
    def _mirror_in_moto(account: str, region: str, record: DomainRecord, delete: bool = False) -> None:
        """Keep moto's own domain list in step, so DescribeUserPool names the pool's domain."""
        from moto.cognitoidp.models import CognitoIdpUserPoolDomain, cognitoidp_backends

        domains = cognitoidp_backends[account][region].user_pool_domains
        if delete:
            domains.pop(record.domain, None)
        else:
            config = {"CertificateArn": record.certificate_arn} if record.certificate_arn else None
            domains[record.domain] = CognitoIdpUserPoolDomain(record.pool_id, record.domain, config)

    def edge_certificate(self, name: str) -> str | None:
        """The ACM certificate the edge presents for ``name`` now (None: not a custom domain here)."""
        with self.state.lock:
            record = self.domains.get(name)
            if record is None or record.certificate_arn is None:
                return None
            knobs = self.state.knobs
            spreading = self.state.clock() < record.status_until + knobs.edge_lag
            if record.edge_previous and (name in knobs.edge_stuck or spreading):
                return record.edge_previous
            return record.certificate_arn

    def certificate_of(self, domain: str) -> str | None:
        with self.state.lock:
            record = self.domains.get(domain)
            return record.certificate_arn if record else None


class Domains(_DomainStore):
    """The domain store and its four operations (called under the state's lock)."""

    state: SandboxState
    domains: dict[str, DomainRecord]

    def _check_certificate(self, account: str, arn: str, domain: str) -> None:
        from moto.acm.models import acm_backends

        parts = arn.split(":")
        if len(parts) < 6 or parts[2] != "acm" or parts[3] != "us-east-1" or parts[4] != account:
            raise AwsError(
                "InvalidParameterException",
                f"The certificate {arn} must be an ACM certificate in us-east-1 of account {account}.",
            )
        bundle = acm_backends[account]["us-east-1"]._certificates.get(arn)
        if bundle is None:
            raise AwsError("InvalidParameterException", f"The certificate {arn} does not exist.")
        if bundle.status != "ISSUED":
            raise AwsError("InvalidParameterException", f"The certificate {arn} is {bundle.status}, not ISSUED.")
        if not covers([bundle.common_name, *bundle.sans], domain):
            raise AwsError("InvalidParameterException", f"The certificate {arn} does not cover {domain}.")

    def _CreateUserPoolDomain(self, req: dict[str, Any], account: str, region: str) -> dict[str, Any]:
        domain, pool_id = req.get("Domain", ""), req.get("UserPoolId", "")
        self._pool(account, region, pool_id)
        if domain in self.domains:
            raise AwsError("InvalidParameterException", "Domain already associated with another user pool.")
        cert = (req.get("CustomDomainConfig") or {}).get("CertificateArn")
        if "." in domain:
            if not cert:
                raise AwsError("InvalidParameterException", "A custom domain needs CustomDomainConfig.CertificateArn.")
            reason = validate_domain(domain)
            if reason:
                raise AwsError("InvalidParameterException", f"Domain {domain} {reason}.")
            self._check_certificate(account, cert, domain)
            custom = [
                d for d in self.domains.values() if d.account == account and d.region == region and d.certificate_arn
            ]
            if len(custom) >= MAX_CUSTOM_DOMAINS:
                raise AwsError("LimitExceededException", "At most 4 custom domains per account and region.")
        elif cert:
            raise AwsError("InvalidParameterException", "A prefix domain takes no certificate.")
        cloudfront = "d" + hashlib.sha256(domain.encode()).hexdigest()[:13] + ".cloudfront.net"
        record = DomainRecord(domain, account, region, pool_id, cert, cloudfront, req.get("ManagedLoginVersion"))
        record.status_until, record.status_while = (
            self.state.clock() + self.state.knobs.propagation_delay,
            "CREATING",
        )
        self.domains[domain] = record
        self._mirror_in_moto(account, region, record)
        return {"CloudFrontDomain": cloudfront} if cert else {}

    def _DescribeUserPoolDomain(self, req: dict[str, Any], account: str, region: str) -> dict[str, Any]:
        record = self.domains.get(req.get("Domain", ""))
        if record is None or record.account != account or record.region != region:
            return {"DomainDescription": {}}  # what AWS answers for an unknown domain
        description: dict[str, Any] = {
            "UserPoolId": record.pool_id,
            "AWSAccountId": record.account,
            "Domain": record.domain,
            "S3Bucket": f"aws-cognito-prod-{region}-assets",
            "CloudFrontDistribution": record.cloudfront
            if record.certificate_arn
            else f"{record.domain}.auth.{region}.amazoncognito.com",
            "Version": str(record.version),
            "Status": record.status(self.state.clock()),
        }
        if record.certificate_arn:
            description["CustomDomainConfig"] = {"CertificateArn": record.certificate_arn}
        if record.managed_login_version is not None:
            description["ManagedLoginVersion"] = record.managed_login_version
        self.state.events.append(("DescribeUserPoolDomain", record.domain))
        return {"DomainDescription": description}

    def _UpdateUserPoolDomain(self, req: dict[str, Any], account: str, region: str) -> dict[str, Any]:
        domain, pool_id = req.get("Domain", ""), req.get("UserPoolId", "")
        record = self.domains.get(domain)
        if record is None or record.account != account or record.region != region:
            raise AwsError("ResourceNotFoundException", f"Domain {domain} does not exist in this account and region.")
        self._pool(account, region, pool_id)
        if record.pool_id != pool_id:
            raise AwsError("InvalidParameterException", f"Domain {domain} is associated with another user pool.")
        if self.state.knobs.refuse_while_updating and record.status(self.state.clock()) == "UPDATING":
            raise AwsError(
                "ConcurrentModificationException", f"Domain {domain} is being updated; try again when it is ACTIVE."
            )
        cert = (req.get("CustomDomainConfig") or {}).get("CertificateArn")
        if record.certificate_arn is None:
            if cert:
                raise AwsError("InvalidParameterException", "Cannot add a certificate to a prefix domain.")
        else:
            if not cert:
                raise AwsError("InvalidParameterException", "Cannot convert custom domain to prefix domain.")
            self._check_certificate(account, cert, domain)
            if cert != record.certificate_arn:
                record.edge_previous = self.edge_certificate(domain)
            record.certificate_arn = cert
        if req.get("ManagedLoginVersion") is not None:
            record.managed_login_version = int(req["ManagedLoginVersion"])
        record.version += 1
        record.status_until, record.status_while = (
            self.state.clock() + self.state.knobs.propagation_delay,
            "UPDATING",
        )
        if domain in self.state.knobs.fail_domains:
            record.status_until, record.status_while = float("inf"), "FAILED"
        self.state.writes[domain] += 1
        self.state.events.append(("UpdateUserPoolDomain", domain))
        result: dict[str, Any] = {"CloudFrontDomain": record.cloudfront}
        if record.managed_login_version is not None:
            result["ManagedLoginVersion"] = record.managed_login_version
        return result

    def _DeleteUserPoolDomain(self, req: dict[str, Any], account: str, region: str) -> dict[str, Any]:
        domain = req.get("Domain", "")
        record = self.domains.get(domain)
        if record is None or record.account != account or record.pool_id != req.get("UserPoolId"):
            raise AwsError("InvalidParameterException", f"Domain {domain} is not associated with this user pool.")
        del self.domains[domain]
        self._mirror_in_moto(account, region, record, delete=True)
        return {}
