"""The edge check: which certificate clients are served for a custom domain, proven by a TLS handshake.

Cognito's ``ACTIVE`` is its word; the certificate CloudFront presents is what clients see (Cognito "requires up to
1 hour to distribute" a new certificate). For a domain we open TCP to its CloudFront host (``CloudFrontDistribution``
from ``DescribeUserPoolDomain``), port 443 (or ``--edge-address``), do a TLS handshake with SNI = the domain, read
the leaf certificate and close: no HTTP request, no credential. The certificate is *identified*, not trusted: its
serial and NotAfter are compared with the exact ACM certificate (``acm:DescribeCertificate``), so no CA bundle is
needed and verification is off on purpose for this one context (it never carries data).
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import anyio
from anyio.streams.tls import TLSAttribute, TLSStream

from fleet.clock import Clock
from fleet.outcome import Edge

EDGE_ADDRESS_ENV = "COGNITO_FLEET_EDGE_ADDRESS"
HTTPS_PORT = 443


@dataclass(frozen=True, slots=True)
class EdgeSettings:
    check: bool = True  # --no-edge-check turns it off (a runner without egress)
    address: str | None = None  # HOST:PORT for every domain (the sandbox, a proxy); None: the CloudFront host:443
    connect_timeout: float = 5.0
    handshake_timeout: float = 5.0
    # An unreachable edge is tried this many times, the tries starting ``retry_spacing`` apart: 3 tries within
    # about 30 s (each bounded by the two timeouts), then the row stops waiting for it.
    tries: int = 3
    retry_spacing: float = 10.0
    concurrency: int = 64  # handshakes in flight over the whole run


@dataclass(frozen=True, slots=True)
class Served:
    """The leaf certificate an edge presented."""

    serial: int
    not_after: datetime
    issuer: tuple[str, ...] = ()  # the issuer's organization and common name (discover --issuer matches them)


@dataclass(frozen=True, slots=True)
class Seen:
    """One edge check's result: the classification, and the certificate (None when unreachable)."""

    edge: Edge
    served: Served | None = None
    reason: str | None = None  # why unreachable

    @property
    def not_after(self) -> str | None:
        return self.served.not_after.strftime("%Y-%m-%dT%H:%M:%SZ") if self.served else None


@dataclass(frozen=True, slots=True)
class NotSeen:
    """What ``EdgeChecker.look`` returns when no certificate could be seen: why, where, how many tries
    ("WHY; edge HOST:PORT, SNI NAME, N tries": ``fleet.outcome.reason_kind`` keeps the WHY)."""

    reason: str


class EdgeUnreachable(Exception):
    """No handshake with the edge; the message says why."""


def parse_serial(value: object) -> int:
    """A certificate serial as ACM writes it: AWS as lower-case hex bytes joined by colons (``0c:55:3d:...``;
    /work/shared/AWS-NOTES.md, "Certificate serial", checked against ACM's CertificateDetail reference), moto as a
    decimal string; a bare hex string (letters, no colon) is read as hex. ValueError for anything else."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if ":" in text:
        parts = text.split(":")
        if not all(len(p) in (1, 2) and _is_hex(p) for p in parts):
            raise ValueError(f"not a colon-separated hex serial: {value!r}")
        return int("".join(parts), 16)
    if text.isdigit():
        return int(text)
    if text and _is_hex(text):
        return int(text, 16)
    raise ValueError(f"not a certificate serial: {value!r}")


def _is_hex(text: str) -> bool:
    return bool(text) and all(c in "0123456789abcdef" for c in text)


def format_serial(serial: int) -> str:
    """The serial as AWS writes it: lower-case hex bytes joined by colons."""
    raw = serial.to_bytes(max(1, (serial.bit_length() + 7) // 8), "big")
    return ":".join(f"{b:02x}" for b in raw)


def leaf(der: bytes) -> Served:
    """Serial, NotAfter and issuer names (O, CN) of a DER certificate."""
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    cert = x509.load_der_x509_certificate(der)
    names = [
        str(a.value)
        for oid in (NameOID.ORGANIZATION_NAME, NameOID.COMMON_NAME)
        for a in cert.issuer.get_attributes_for_oid(oid)
    ]
    return Served(cert.serial_number, cert.not_valid_after_utc, tuple(names))


def is_certificate(served: Served, described: Mapping[str, Any] | None) -> bool:
    """Whether ``served`` is the ACM certificate ``described`` (DescribeCertificate's Certificate): the same serial
    and, when ACM gives one, the same NotAfter (to the second)."""
    if not described or described.get("Serial") in (None, ""):
        return False
    try:
        if parse_serial(described["Serial"]) != served.serial:
            return False
    except ValueError:
        return False
    not_after = described.get("NotAfter")
    if isinstance(not_after, datetime):
        expected = not_after if not_after.tzinfo else not_after.replace(tzinfo=UTC)
        return abs((expected - served.not_after).total_seconds()) < 1
    return True


def compare(served: Served, target: Mapping[str, Any] | None, previous: Mapping[str, Any] | None) -> Edge:
    if is_certificate(served, target):
        return Edge.SERVED
    if is_certificate(served, previous):
        return Edge.OLD
    return Edge.OTHER


def split_address(value: str) -> tuple[str, int]:
    """HOST:PORT (``[v6]:PORT`` too); ValueError saying what is wrong."""
    host, sep, port = value.strip().rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{value!r} is not HOST:PORT")
    return host, int(port)


def _client_context() -> ssl.SSLContext:
    # Identification, not trust: the leaf is compared with the exact ACM certificate, and nothing is sent over
    # this connection, so the chain is not verified (the edge of a domain mid-migration may serve anything).
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


class EdgeChecker:
    """The run's edge checks: one TLS context, a bound on handshakes in flight, timeouts, a few tries."""

    def __init__(self, settings: EdgeSettings, clock: Clock) -> None:
        self.settings, self.clock = settings, clock
        self._address = split_address(settings.address) if settings.address else None
        self._context = _client_context()
        self._limiter = anyio.CapacityLimiter(settings.concurrency)

    def where(self, cloudfront: str | None) -> tuple[str, int] | None:
        """Where the edge of a domain is: --edge-address, or its CloudFront host on 443."""
        if self._address is not None:
            return self._address
        return (cloudfront, HTTPS_PORT) if cloudfront else None

    async def handshake(self, host: str, port: int, name: str) -> Served:
        """One TLS handshake (SNI = ``name``): the leaf the edge presents. EdgeUnreachable (why) on any failure."""
        s = self.settings
        async with self._limiter:
            try:
                with anyio.fail_after(s.connect_timeout):
                    tcp = await anyio.connect_tcp(host, port)
            except TimeoutError:
                raise EdgeUnreachable(f"connect timed out after {s.connect_timeout:g} s") from None
            except OSError as exc:
                raise EdgeUnreachable(f"connect failed: {_reason(exc)}") from None
            try:
                with anyio.fail_after(s.handshake_timeout):
                    tls = await TLSStream.wrap(tcp, hostname=name, ssl_context=self._context, standard_compatible=False)
                der = tls.extra(TLSAttribute.peer_certificate_binary)
                await tls.aclose()
            except TimeoutError:
                raise EdgeUnreachable(f"TLS handshake timed out after {s.handshake_timeout:g} s") from None
            except (OSError, ssl.SSLError, anyio.BrokenResourceError, anyio.EndOfStream) as exc:
                raise EdgeUnreachable(f"TLS handshake failed: {_reason(exc)}") from None
            finally:
                await anyio.aclose_forcefully(tcp)
        if not der:
            raise EdgeUnreachable("no certificate presented")
        try:
            return leaf(der)
        except ValueError as exc:
            raise EdgeUnreachable(f"a certificate that cannot be read ({exc})") from None

    async def look(self, domain: str, cloudfront: str | None) -> Served | NotSeen:
        """The certificate the domain's edge serves, or why none could be seen after ``tries`` tries."""
        where = self.where(cloudfront)
        if where is None:
            return NotSeen(f"Cognito names no CloudFront distribution; SNI {domain}")
        start, reason = self.clock.monotonic(), ""
        for attempt in range(self.settings.tries):
            if attempt:
                await self.clock.sleep(max(0.0, start + attempt * self.settings.retry_spacing - self.clock.monotonic()))
            try:
                return await self.handshake(*where, domain)
            except EdgeUnreachable as exc:
                reason = str(exc)
        return NotSeen(f"{reason}; edge {where[0]}:{where[1]}, SNI {domain}, {self.settings.tries} tries")


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError):
        return exc.reason or exc.__class__.__name__
    text = getattr(exc, "strerror", None) or str(exc)
    return text or exc.__class__.__name__
