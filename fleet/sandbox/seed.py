"""Build a multi-account fleet in a sandbox and write the manifest that migrates it.

Each (account, region) gets K user pools, each with a custom domain on an OLD wildcard certificate;
each domain gets its own NEW certificate. Everything goes through the AWS API (boto3 over HTTP), so
it also seeds a sandbox running in another process. Seeding is the sandbox admin's work (auth.py): its keys
and the sessions it assumes are not held to cognito-fleet's policies, which forbid creating anything.
"""

from __future__ import annotations

import contextlib
import datetime
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from fleet.sandbox.auth import ADMIN_CREDENTIALS, ADMIN_ROLE_NAME

FIRST_ACCOUNT = 200000000000
# The distrusted-CA scenario (`sandbox seed --distrusted-share`): domains on "Old CA" certificates that must move
# (replacements from "New CA", valid for less time than the old ones), the rest on long-valid "Healthy CA" ones.
OLD_CA, NEW_CA, HEALTHY_CA = "Old CA", "New CA", "Healthy CA"


@dataclass(frozen=True, slots=True)
class Issuers:
    """Who issues a seeded account's certificates, and for how long (None: self-signed, the domain's own name)."""

    old: str | None = None
    new: str | None = None
    old_days: float = 365
    new_days: float = 365


DISTRUSTED = Issuers(OLD_CA, NEW_CA, old_days=730, new_days=365)
HEALTHY = Issuers(HEALTHY_CA, HEALTHY_CA, old_days=1095, new_days=1095)


@dataclass(frozen=True, slots=True)
class SeededDomain:
    account_id: str
    region: str
    user_pool_id: str
    domain: str
    old_certificate_arn: str
    new_certificate_arn: str


@cache
def _key(curve: str = "secp256r1") -> Any:
    from cryptography.hazmat.primitives.asymmetric import ec

    # EC P-256: CloudFront accepts it (EC_prime256v1) and it is fast to make; P-384 is for refusal tests.
    return ec.generate_private_key(ec.SECP384R1() if curve == "secp384r1" else ec.SECP256R1())


def make_certificate(
    names: Sequence[str], days: float = 365, curve: str = "secp256r1", issuer: str | None = None
) -> tuple[bytes, bytes]:
    """A certificate for ``names`` (the first is the CN) and its key, both PEM: self-signed, or naming ``issuer``
    as its issuer (CN and O; ACM's ``Issuer`` is read from it, moto takes the CN). Signed with the leaf's own key:
    the tool identifies certificates (serial, NotAfter), it never validates a chain, so no CA key is needed."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import NameOID

    key = _key(curve)
    now = datetime.datetime.now(datetime.UTC)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    signer = subject
    if issuer:
        signer = x509.Name(
            [x509.NameAttribute(NameOID.ORGANIZATION_NAME, issuer), x509.NameAttribute(NameOID.COMMON_NAME, issuer)]
        )
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(signer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def admin_client(service: str, endpoint_url: str, region: str = "us-east-1", config: Config | None = None) -> Any:
    """A boto3 client of the sandbox admin (account 123456789012, the hub's): for setup, never for the tool."""
    return boto3.client(
        service,
        region_name=region,
        endpoint_url=endpoint_url,
        config=config,
        aws_access_key_id=ADMIN_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=ADMIN_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )


def create_bucket(endpoint_url: str, bucket: str) -> None:
    """An S3 bucket for an s3:// state (the admin's; the hub reads and writes it under
    iam/state-bucket-policy.json, whose placeholder bucket is fleet.sandbox.s3.STATE_BUCKET). Kept if it exists."""
    s3 = admin_client("s3", endpoint_url, config=Config(s3={"addressing_style": "path"}))
    with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
        s3.create_bucket(Bucket=bucket)


def probe(endpoint_url: str) -> None:
    """One quick call (no retries): an endpoint that does not answer fails here in seconds, not after the seeder's
    retries with backoff."""
    config = Config(retries={"mode": "standard", "total_max_attempts": 1}, connect_timeout=3, read_timeout=10)
    admin_client("sts", endpoint_url, config=config).get_caller_identity()


def account_ids(count: int, first: int = FIRST_ACCOUNT) -> list[str]:
    return [f"{first + i:012d}" for i in range(count)]


class Seeder:
    """Builds fleets as the sandbox admin: one admin session per account it touches."""

    def __init__(self, endpoint_url: str) -> None:
        self.endpoint_url = endpoint_url
        self._config = Config(retries={"mode": "standard", "max_attempts": 10})
        self._local = threading.local()

    def _admin_sts(self) -> Any:
        if not hasattr(self._local, "sts"):
            self._local.sts = admin_client("sts", self.endpoint_url, config=self._config)
        return self._local.sts

    def session(self, account_id: str) -> boto3.Session:
        """An unrestricted session in ``account_id`` (the admin's own AssumeRole: tests read back with it)."""
        creds = self._admin_sts().assume_role(
            RoleArn=f"arn:aws:iam::{account_id}:role/{ADMIN_ROLE_NAME}", RoleSessionName="cognito-fleet-seed"
        )["Credentials"]
        return boto3.Session(
            aws_access_key_id=creds["AccessKeyId"],
            aws_secret_access_key=creds["SecretAccessKey"],
            aws_session_token=creds["SessionToken"],
        )

    def client(self, session: boto3.Session, service: str, region: str) -> Any:
        return session.client(service, region_name=region, endpoint_url=self.endpoint_url, config=self._config)

    def import_certificate(
        self, acm: Any, names: Sequence[str], days: float = 365, curve: str = "secp256r1", issuer: str | None = None
    ) -> str:
        cert, key = make_certificate(names, days, curve, issuer)
        return str(acm.import_certificate(Certificate=cert, PrivateKey=key)["CertificateArn"])

    def seed_account(
        self, account_id: str, regions: Sequence[str], per_region: int, old_days: float = 365, by: Issuers | None = None
    ) -> list[SeededDomain]:
        by = by or Issuers(old_days=old_days)
        session = self.session(account_id)
        acm = self.client(session, "acm", "us-east-1")
        out: list[SeededDomain] = []
        for region in regions:
            zone = f"{region}.a{account_id}.example.com"
            old = self.import_certificate(acm, [f"*.{zone}"], days=by.old_days, issuer=by.old)
            cognito = self.client(session, "cognito-idp", region)
            for j in range(per_region):
                domain = f"auth{j}.{zone}"
                pool = cognito.create_user_pool(PoolName=f"pool-{j}")["UserPool"]["Id"]
                new = self.import_certificate(acm, [domain], days=by.new_days, issuer=by.new)
                kwargs: dict[str, Any] = {
                    "Domain": domain,
                    "UserPoolId": pool,
                    "CustomDomainConfig": {"CertificateArn": old},
                }
                if j % 2:
                    kwargs["ManagedLoginVersion"] = 2  # a mix of classic and managed login
                cognito.create_user_pool_domain(**kwargs)
                out.append(SeededDomain(account_id, region, pool, domain, old, new))
        return out


def seed_fleet(
    endpoint_url: str,
    accounts: int,
    regions: Sequence[str],
    domains_per_account: int,
    first_account: int = FIRST_ACCOUNT,
    workers: int = 8,
) -> list[SeededDomain]:
    """Seed ``accounts`` accounts, each with ``domains_per_account`` custom domains in every region."""
    return seed_accounts(
        endpoint_url, account_ids(accounts, first_account), regions, domains_per_account, workers=workers
    )


def seed_accounts(
    endpoint_url: str,
    ids: Sequence[str],
    regions: Sequence[str],
    domains_per_account: int,
    old_days: float = 365,
    workers: int = 8,
    by: Issuers | None = None,
) -> list[SeededDomain]:
    """Seed the given accounts; ``old_days``: validity of the OLD certificates (short = expiring soon); ``by``:
    who issues the certificates (default: self-signed)."""
    if not 1 <= domains_per_account <= 4:
        raise ValueError("AWS allows 1 to 4 custom domains per account and region")
    seeder = Seeder(endpoint_url)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = pool.map(lambda a: seeder.seed_account(a, regions, domains_per_account, old_days, by), ids)
        return [d for account in results for d in account]


def organization_accounts(endpoint_url: str, count: int, ou_name: str | None = None) -> tuple[list[str], str]:
    """Create ``count`` member accounts in the hub's organization (created if needed), optionally in a new OU;
    return their ids and the OU (or root) id they are in."""
    org = admin_client("organizations", endpoint_url)
    with contextlib.suppress(org.exceptions.AlreadyInOrganizationException):
        org.create_organization(FeatureSet="ALL")
    root = org.list_roots()["Roots"][0]["Id"]
    parent = (
        org.create_organizational_unit(ParentId=root, Name=ou_name)["OrganizationalUnit"]["Id"] if ou_name else root
    )
    ids = []
    for n in range(count):
        status = org.create_account(Email=f"member{n}-{parent}@example.com", AccountName=f"member{n}")
        account = status["CreateAccountStatus"]["AccountId"]
        if parent != root:
            org.move_account(AccountId=account, SourceParentId=root, DestinationParentId=parent)
        ids.append(account)
    return ids, parent


def wait_active(endpoint_url: str, domains: Sequence[SeededDomain], timeout: float = 120.0) -> None:
    """Return once every seeded domain is ACTIVE (a sandbox with a propagation delay creates them CREATING, and
    a run right after the seed would fail them ``DomainNotActive``); TimeoutError after ``timeout`` seconds."""
    seeder = Seeder(endpoint_url)
    clients: dict[tuple[str, str], Any] = {}
    waiting = list(domains)
    deadline = time.monotonic() + timeout
    while waiting:
        still = []
        for d in waiting:
            key = (d.account_id, d.region)
            if key not in clients:
                clients[key] = seeder.client(seeder.session(d.account_id), "cognito-idp", d.region)
            status = clients[key].describe_user_pool_domain(Domain=d.domain)["DomainDescription"].get("Status")
            if status != "ACTIVE":
                still.append(d)
        waiting = still
        if waiting and time.monotonic() > deadline:
            raise TimeoutError(f"{len(waiting)} seeded domains not ACTIVE after {timeout:g} s")
        if waiting:
            time.sleep(0.2)


def write_manifest(domains: Sequence[SeededDomain], path: str | Path) -> Path:
    """The manifest that moves ``domains`` to their NEW certificates."""
    from fleet import manifest

    rows = [manifest.Row(0, d.account_id, d.region, d.user_pool_id, d.domain, d.new_certificate_arn) for d in domains]
    return manifest.write(path, rows)
