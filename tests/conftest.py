"""Shared fixtures: one sandbox for the session (moto + fidelity layer over HTTP on 127.0.0.1)."""

from __future__ import annotations

import itertools
import os
import socket
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from botocore.config import Config

from fleet.aws.credentials import AwsSettings
from fleet.aws.edge import EDGE_ADDRESS_ENV, EdgeSettings
from fleet.aws.retry import BackoffPolicy
from fleet.migration.engine import EngineSettings
from fleet.migration.pipeline import RunResult, migrate
from fleet.sandbox.demo import isolate_from_real_aws
from fleet.sandbox.seed import SeededDomain, Seeder, seed_fleet, write_manifest
from fleet.sandbox.server import Sandbox
from fleet.sandbox.state import Knobs
from fleet.sandbox.tls import make_tls_files
from fleet.state.checkpoint import Checkpoint

_accounts = itertools.count(300000000000, 1000)  # each test seeds its own, disjoint accounts
_LOOPBACK_NAMES = ("localhost", "127.", "::1")


@pytest.fixture(scope="session", autouse=True)
def loopback_only() -> Iterator[None]:
    """No test resolves a name beyond loopback: a real CloudFront host (an edge check the test forgot to point at
    the sandbox's edge) fails as an unknown name instead of asking the network's resolver."""
    real = socket.getaddrinfo

    def guarded(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else str(host or "")
        if name and not name.startswith(_LOOPBACK_NAMES):
            raise socket.gaierror(socket.EAI_NONAME, f"tests resolve loopback names only, not {name!r}")
        return real(host, *args, **kwargs)

    socket.getaddrinfo = guarded  # type: ignore[assignment]
    try:
        yield
    finally:
        socket.getaddrinfo = real  # type: ignore[assignment]


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    """The session's sandbox, over HTTPS (a throw-away CA that every client trusts through AWS_CA_BUNDLE),
    checking signatures and IAM policies: what the tests prove holds for clients that talk to AWS."""
    isolate_from_real_aws()
    files = make_tls_files(tmp_path_factory.mktemp("sandbox-tls"))
    os.environ["AWS_CA_BUNDLE"] = str(files.ca)
    with Sandbox(tls=files) as box:
        # Every domain's edge is the sandbox's (as `sandbox serve` exports it): the CLI's edge checks go there.
        os.environ[EDGE_ADDRESS_ENV] = box.edge_address
        yield box


@pytest.fixture
def box(sandbox: Sandbox) -> Sandbox:
    """The session sandbox with default knobs and zeroed counters."""
    sandbox.state.knobs = Knobs()
    sandbox.state.configure(seed=1)
    sandbox.state.reset_counters()
    return sandbox


class Fleet:
    def __init__(self, box: Sandbox, tmp: Path, domains: list[SeededDomain]) -> None:
        self.box, self.tmp, self.domains = box, tmp, domains
        self.manifest = write_manifest(domains, tmp / "manifest.csv")
        self.checkpoint = tmp / "checkpoint.sqlite"
        self.report = tmp / "report.csv"
        self._clients: dict[tuple[str, str], Any] = {}

    def settings(self, **overrides: Any) -> EngineSettings:
        policy = BackoffPolicy(max_attempts=overrides.pop("max_attempts", 8), base=0.01, cap=0.05)
        aws = AwsSettings(endpoint_url=self.box.endpoint, **overrides.pop("aws", {}))
        edge = EdgeSettings(**{"address": self.box.edge_address, **overrides.pop("edge", {})})
        return EngineSettings(policy=policy, aws=aws, edge=edge, **overrides)

    def run_args(self, *extra: str) -> list[str]:
        """`cognito-fleet run` of this fleet against the sandbox, with its own state and report, as JSON lines."""
        return [
            "run",
            str(self.manifest),
            "--endpoint-url",
            self.box.endpoint,
            "--checkpoint",
            str(self.checkpoint),
            "--report",
            str(self.report),
            "--log-format",
            "json",
            *extra,
        ]

    def run(self, manifest: Path | None = None, **overrides: Any) -> RunResult:
        return migrate(manifest or self.manifest, self.checkpoint, self.report, self.settings(**overrides))

    def cognito(self, account_id: str, region: str) -> Any:
        """A plain boto3 client of the account, without botocore retries (tests see every error).

        It is the sandbox admin's session (fleet/sandbox/auth.py), not held to iam/role-policy.json: for setup and
        reading back. Calls as the engine makes them go through ``run()`` or the hub's AssumeRole."""
        key = (account_id, region)
        if key not in self._clients:
            seeder = Seeder(self.box.endpoint)
            self._clients[key] = seeder.session(account_id).client(
                "cognito-idp",
                region_name=region,
                endpoint_url=self.box.endpoint,
                config=Config(retries={"mode": "standard", "total_max_attempts": 1}),
            )
        return self._clients[key]

    def import_certificate(
        self, account_id: str, names: Sequence[str], days: float = 365, curve: str = "secp256r1"
    ) -> str:
        seeder = Seeder(self.box.endpoint)
        acm = seeder.session(account_id).client("acm", region_name="us-east-1", endpoint_url=self.box.endpoint)
        return seeder.import_certificate(acm, names, days, curve)

    def write_manifest(self, name: str, targets: dict[str, str]) -> Path:
        """A manifest of this fleet with some domains' target certificates replaced."""
        from dataclasses import replace

        domains = [replace(d, new_certificate_arn=targets.get(d.domain, d.new_certificate_arn)) for d in self.domains]
        return write_manifest(domains, self.tmp / name)

    def describe(self, d: SeededDomain) -> dict[str, Any]:
        """Read a domain back through the API, as a user would."""
        out = self.cognito(d.account_id, d.region).describe_user_pool_domain(Domain=d.domain)
        return dict(out["DomainDescription"])

    def open_checkpoint(self) -> Checkpoint:
        return Checkpoint(self.checkpoint)


@pytest.fixture
def make_fleet(box: Sandbox, tmp_path: Path) -> Any:
    def make(accounts: int = 3, regions: Sequence[str] = ("us-east-1", "eu-west-1"), per_region: int = 2) -> Fleet:
        domains = seed_fleet(box.endpoint, accounts, regions, per_region, first_account=next(_accounts))
        box.state.reset_counters()
        return Fleet(box, tmp_path, domains)

    return make
