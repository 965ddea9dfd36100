"""TLS on the wire: every client verifies the sandbox's certificate *and* its hostname (fleet/aws/http.py).

The sandbox serves HTTPS with a certificate from a throw-away CA. With that CA trusted (``AWS_CA_BUNDLE`` or a
profile's ``ca_bundle``) a run migrates every domain; a certificate from the same CA for another name, or one
from a CA nobody trusts, is refused before any request is sent, so nothing reaches the sandbox.
"""

from __future__ import annotations

import contextlib
import inspect
import itertools
import os
import queue
import signal
import socket
import ssl
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from aiobotocore.httpsession import AIOHTTPSession
from botocore.config import Config

from fleet.aws.credentials import AwsSettings
from fleet.aws.edge import EdgeSettings
from fleet.aws.http import SharedTLSSession
from fleet.aws.retry import BackoffPolicy
from fleet.errors import HubUnavailable
from fleet.migration.engine import EngineSettings
from fleet.migration.pipeline import RunResult, migrate
from fleet.sandbox.auth import HUB_CREDENTIALS
from fleet.sandbox.demo import isolate_from_real_aws
from fleet.sandbox.seed import SeededDomain, seed_fleet, write_manifest
from fleet.sandbox.server import Sandbox
from fleet.sandbox.state import Knobs
from fleet.sandbox.tls import ThrowAwayCA, TLSFiles

# Accounts of their own: moto's backends are process-global, shared with the session sandbox's tests.
_accounts = itertools.count(710000000000, 1000)
VERIFY_FAILED = "certificate verify failed"


@pytest.fixture(scope="module")
def ca() -> ThrowAwayCA:
    return ThrowAwayCA()


@pytest.fixture(scope="module")
def tls_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("tls")


@pytest.fixture(scope="module")
def good(ca: ThrowAwayCA, tls_dir: Path) -> TLSFiles:
    """The sandbox's certificate: for 127.0.0.1 and localhost, from the trusted CA."""
    return ca.write(tls_dir / "good")


@pytest.fixture(scope="module")
def https_box(good: TLSFiles) -> Iterator[Sandbox]:
    saved = dict(os.environ)  # isolation for this module only: the session may trust a CA of its own
    isolate_from_real_aws()
    try:
        with Sandbox(knobs=Knobs(), tls=good) as box:
            yield box
    finally:
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture
def trusted(monkeypatch: pytest.MonkeyPatch, good: TLSFiles) -> TLSFiles:
    """Clients (boto3 for seeding, the tool's aiobotocore) trust the sandbox's CA through AWS_CA_BUNDLE."""
    monkeypatch.setenv("AWS_CA_BUNDLE", str(good.ca))
    return good


@pytest.fixture
def hbox(https_box: Sandbox, good: TLSFiles) -> Iterator[Sandbox]:
    """The HTTPS sandbox with default knobs and zeroed counters; back on its good certificate afterwards."""
    https_box.state.knobs = Knobs()
    https_box.state.configure(seed=1)
    https_box.state.reset_counters()
    yield https_box
    https_box.use_certificate(good)


def seed(box: Sandbox, tmp: Path, accounts: int = 2) -> tuple[list[SeededDomain], Path]:
    domains = seed_fleet(box.endpoint, accounts, ("us-east-1", "eu-west-1"), 2, first_account=next(_accounts))
    box.state.reset_counters()
    return domains, write_manifest(domains, tmp / "manifest.csv")


def run(box: Sandbox, tmp: Path, manifest: Path, profile: str | None = None) -> RunResult:
    settings = EngineSettings(
        policy=BackoffPolicy(max_attempts=8, base=0.01, cap=0.05),
        aws=AwsSettings(endpoint_url=box.endpoint, profile=profile),
        edge=EdgeSettings(address=box.edge_address),
    )
    return migrate(manifest, tmp / "checkpoint.sqlite", tmp / "report.csv", settings)


def assert_all_moved(box: Sandbox, domains: list[SeededDomain], result: RunResult) -> None:
    assert result.exit_code == 0, dict(result.counts)
    assert [box.certificate_of(d.domain) for d in domains] == [d.new_certificate_arn for d in domains]


def refused_run(box: Sandbox, tmp: Path, manifest: Path) -> str:
    """Run against a certificate the client must refuse: the hub check stops the run (exit 2, one line) before
    any account, checkpoint or report is touched. Return that line."""
    with pytest.raises(HubUnavailable) as info:
        run(box, tmp, manifest)
    assert info.value.exit_code == 2 and len(info.value.lines()) == 1
    assert "hub: TLS verification of https://127.0.0.1:" in str(info.value)
    assert not (tmp / "checkpoint.sqlite").exists() and not (tmp / "report.csv").exists()
    return str(info.value)


def eventually(condition: Callable[[], bool], timeout: float = 5) -> bool:
    """The server records a failed handshake in its own thread, maybe just after the client gave up."""
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)
    return condition()


def assert_nothing_reached(box: Sandbox, domains: list[SeededDomain], requests_before: int) -> None:
    assert box.requests == requests_before, "a request reached the sandbox over an unverified connection"
    assert sum(box.state.calls.values()) == 0
    assert [box.certificate_of(d.domain) for d in domains] == [d.old_certificate_arn for d in domains]


def test_trusted_ca_bundle_migrates_every_domain(hbox: Sandbox, trusted: TLSFiles, tmp_path: Path) -> None:
    assert hbox.endpoint.startswith("https://127.0.0.1:")
    domains, manifest = seed(hbox, tmp_path)
    result = run(hbox, tmp_path, manifest)
    assert_all_moved(hbox, domains, result)
    assert hbox.state.calls["UpdateUserPoolDomain"] == len(domains)
    assert hbox.handshake_failures == 0


def test_certificate_for_another_name_is_refused(
    hbox: Sandbox, trusted: TLSFiles, ca: ThrowAwayCA, tls_dir: Path, tmp_path: Path
) -> None:
    domains, manifest = seed(hbox, tmp_path)
    # Signed by the trusted CA, valid, but for another host: only the hostname check can refuse it.
    hbox.use_certificate(ca.write(tls_dir / "other-name", names=["other.example.com"]))
    before, failures = hbox.requests, hbox.handshake_failures
    errors = refused_run(hbox, tmp_path, manifest)
    assert VERIFY_FAILED in errors and "not valid for '127.0.0.1'" in errors, errors
    assert_nothing_reached(hbox, domains, before)
    assert eventually(lambda: hbox.handshake_failures > failures)  # the client did connect, and refused it


def test_certificate_from_an_unknown_ca_is_refused(
    hbox: Sandbox, trusted: TLSFiles, tls_dir: Path, tmp_path: Path
) -> None:
    domains, manifest = seed(hbox, tmp_path)
    hbox.use_certificate(ThrowAwayCA(common_name="someone else's CA").write(tls_dir / "unknown-ca"))
    before, failures = hbox.requests, hbox.handshake_failures
    errors = refused_run(hbox, tmp_path, manifest)
    assert VERIFY_FAILED in errors, errors
    assert_nothing_reached(hbox, domains, before)
    assert eventually(lambda: hbox.handshake_failures > failures)


def test_profile_ca_bundle_works_like_aws_ca_bundle(
    hbox: Sandbox, trusted: TLSFiles, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    domains, manifest = seed(hbox, tmp_path)  # seeding trusts the CA through AWS_CA_BUNDLE...
    monkeypatch.delenv("AWS_CA_BUNDLE")  # ...the run only through its profile
    config, credentials = tmp_path / "config", tmp_path / "credentials"
    config.write_text(f"[profile tls-rehearsal]\nregion = us-east-1\nca_bundle = {trusted.ca}\n")
    credentials.write_text(
        "[tls-rehearsal]\n"
        f"aws_access_key_id = {HUB_CREDENTIALS['AWS_ACCESS_KEY_ID']}\n"
        f"aws_secret_access_key = {HUB_CREDENTIALS['AWS_SECRET_ACCESS_KEY']}\n"
    )
    credentials.chmod(0o600)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    result = run(hbox, tmp_path, manifest, profile="tls-rehearsal")
    assert_all_moved(hbox, domains, result)


def test_reset_fault_over_tls_is_retried_quietly(
    hbox: Sandbox, trusted: TLSFiles, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """The reset fault shuts the TLS socket under the response: the client retries, the server prints nothing."""
    domains, manifest = seed(hbox, tmp_path)
    hbox.state.configure(reset_rate=0.2)
    result = run(hbox, tmp_path, manifest)
    assert_all_moved(hbox, domains, result)
    assert hbox.state.stats()["faults"].get("reset", 0) > 0
    assert "Traceback" not in capfd.readouterr().err


def test_failed_and_stalled_handshakes_are_quiet_and_block_no_one(
    hbox: Sandbox, trusted: TLSFiles, capfd: pytest.CaptureFixture[str]
) -> None:
    host, port = "127.0.0.1", int(hbox.endpoint.rsplit(":", 1)[1])
    failures = hbox.handshake_failures
    with socket.create_connection((host, port), timeout=5) as plain:  # plain HTTP to the HTTPS port
        plain.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = b""
        with contextlib.suppress(ConnectionResetError):  # an alert, then a close with our request unread
            answer = plain.recv(1024)
        assert not answer.startswith(b"HTTP/")
    refusing = ssl.create_default_context()  # trusts only the system's CAs: refuses the sandbox's certificate
    with pytest.raises(ssl.SSLCertVerificationError), socket.create_connection((host, port), timeout=5) as raw:
        refusing.wrap_socket(raw, server_hostname=host)
    assert eventually(lambda: hbox.handshake_failures == failures + 2)
    # A client that connects and never says hello must not hold up the others (werkzeug's own TLS would).
    with socket.create_connection((host, port), timeout=5):
        sts = boto3.client(
            "sts",
            region_name="us-east-1",
            endpoint_url=hbox.endpoint,
            config=Config(connect_timeout=3, read_timeout=3, retries={"total_max_attempts": 1}),
            aws_access_key_id=HUB_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=HUB_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        )
        assert sts.get_caller_identity()["Account"]
    assert "Traceback" not in capfd.readouterr().err


def test_tls_files_keep_the_key_private(good: TLSFiles) -> None:
    from cryptography import x509

    assert good.ca is not None
    assert stat.S_IMODE(good.key.stat().st_mode) == 0o600
    assert b"PRIVATE KEY" not in good.cert.read_bytes() + good.ca.read_bytes()
    leaf = x509.load_pem_x509_certificate(good.cert.read_bytes())
    names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert names.get_values_for_type(x509.DNSName) == ["localhost"]


def test_aiobotocore_hooks_that_fleet_http_overrides_keep_their_shape() -> None:
    """fleet/aws/http.py overrides private parts of aiobotocore's AIOHTTPSession: fail loudly if they change."""
    assert callable(AIOHTTPSession._get_ssl_context)
    assert list(inspect.signature(AIOHTTPSession._get_ssl_context).parameters) == ["self"]
    assert list(inspect.signature(AIOHTTPSession._create_connector).parameters) == ["self", "proxy_url"]
    session = SharedTLSSession(verify=True, max_pool_connections=7)
    for attribute in (
        "_verify",
        "_cert_file",
        "_key_file",
        "_max_pool_connections",
        "_connector_args",
        "_proxy_config",
    ):
        assert hasattr(session, attribute), attribute
    assert session._verify is True and session._cert_file is None and session._max_pool_connections == 7
    assert isinstance(session._connector_args, dict)
    context = session._get_ssl_context()
    assert context.check_hostname is True and context.verify_mode == ssl.CERT_REQUIRED


async def test_connector_context_verifies_chain_and_hostname(good: TLSFiles) -> None:
    session = SharedTLSSession(verify=str(good.ca), max_pool_connections=3)
    connector = session._create_connector(None)
    try:
        context = connector._ssl
        assert isinstance(context, ssl.SSLContext)
        assert context.check_hostname is True and context.verify_mode == ssl.CERT_REQUIRED
        assert connector.limit == 3
    finally:
        await connector.close()


async def test_behind_a_proxy_the_target_is_still_verified(good: TLSFiles) -> None:
    # aiobotocore's own connector passes ssl=False behind a proxy that has no CA bundle of its own.
    proxy = "http://127.0.0.1:3128"
    session = SharedTLSSession(verify=str(good.ca), proxies={"https": proxy}, max_pool_connections=2)
    connector = session._create_connector(proxy)
    try:
        context = connector._ssl
        assert isinstance(context, ssl.SSLContext)
        assert context.check_hostname is True and context.verify_mode == ssl.CERT_REQUIRED
        assert context.cert_store_stats()["x509_ca"] >= 1  # the CA bundle was loaded
    finally:
        await connector.close()


async def test_a_proxy_ca_is_trusted_for_the_proxy_only(good: TLSFiles, tmp_path: Path) -> None:
    """botocore trusts proxy_ca_bundle for the connection to the proxy; the AWS endpoint keeps its own trust."""
    import aiohttp
    from yarl import URL

    from fleet.aws.http import ProxyTLSConnector

    proxy_ca = ThrowAwayCA().write(tmp_path / "proxy").ca
    proxy = "https://127.0.0.1:3128"
    session = SharedTLSSession(
        verify=str(good.ca),
        proxies={"https": proxy},
        proxies_config={"proxy_ca_bundle": str(proxy_ca)},
        max_pool_connections=2,
    )
    connector = session._create_connector(proxy)
    try:
        assert isinstance(connector, ProxyTLSConnector)
        endpoint, to_proxy = connector._ssl, connector.proxy_ssl
        assert endpoint.cert_store_stats()["x509_ca"] == 1  # the endpoint's CA only, not the proxy's
        assert to_proxy.cert_store_stats()["x509_ca"] == 1 and to_proxy is not endpoint
        pem = {c["serialNumber"] for c in endpoint.get_ca_certs()} ^ {
            c["serialNumber"] for c in to_proxy.get_ca_certs()
        }
        assert len(pem) == 2  # two different CAs
        for context in (endpoint, to_proxy):
            assert context.check_hostname is True and context.verify_mode == ssl.CERT_REQUIRED
        # aiohttp's private hook (3.14): the request to the proxy gets the proxy's context, the target keeps its own.
        request = aiohttp.ClientRequest(
            "GET", URL("https://sts.us-east-1.amazonaws.com/"), proxy=URL(proxy), ssl=endpoint, loop=asyncio_loop()
        )
        assert connector._update_proxy_auth_header_and_build_proxy_req(request).ssl is to_proxy
        assert request.ssl is endpoint
    finally:
        await connector.close()


def asyncio_loop() -> Any:
    import asyncio

    return asyncio.get_running_loop()


class LineReader:
    """A process's stdout, read line by line in a thread so that waiting for a line is bounded in time."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc, self.lines = proc, queue.Queue[str]()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        for line in self.proc.stdout or ():
            self.lines.put(line.rstrip("\n"))

    def until(self, marker: str, timeout: float = 60) -> list[str]:
        """The lines up to the one starting with ``marker``."""
        seen: list[str] = []
        deadline = time.monotonic() + timeout
        while not (seen and seen[-1].startswith(marker)):
            try:
                seen.append(self.lines.get(timeout=max(deadline - time.monotonic(), 0.01)))
            except queue.Empty:
                pytest.fail(f"no {marker!r} line in {timeout}s: {seen}")
        return seen

    def close(self) -> None:
        """After the process ended: the reader sees end of file, then its pipe is closed."""
        self._thread.join(timeout=10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def test_sandbox_serve_tls_prints_the_ca_to_trust_and_removes_it_on_exit(tmp_path: Path) -> None:
    stderr = tmp_path / "stderr"
    with stderr.open("w") as err_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "fleet", "sandbox", "serve", "--tls"],
            stdout=subprocess.PIPE,
            stderr=err_file,
            stdin=subprocess.DEVNULL,
            text=True,
        )
    reader = LineReader(proc)
    try:
        lines = reader.until("export AWS_CA_BUNDLE=")
        endpoint = next(line.split(": ", 1)[1] for line in lines if line.startswith("sandbox endpoint: "))
        ca = Path(lines[-1].split("=", 1)[1])
        assert endpoint.startswith("https://127.0.0.1:") and ca.is_file()
        assert f"CA certificate: {ca}" in lines
        assert stat.S_IMODE((ca.parent / "server-key.pem").stat().st_mode) == 0o600
        sts = boto3.client(
            "sts",
            region_name="us-east-1",
            endpoint_url=endpoint,
            verify=str(ca),
            aws_access_key_id=HUB_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=HUB_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        )
        assert sts.get_caller_identity()["Account"]
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
        reader.close()
    err = stderr.read_text()
    assert proc.returncode == 0, err
    assert not ca.parent.exists()  # the throw-away CA's directory (and the server key) went with the sandbox
    assert "PRIVATE KEY" not in "\n".join(lines) + err
