"""A throw-away CA and server certificates for the sandbox's HTTPS mode.

The sandbox over HTTPS lets tests and the demo prove that every client verifies the server's certificate
*and* its hostname (``fleet/aws/http.py``). The CA lives for one run: clients trust it through ``AWS_CA_BUNDLE``
(or a profile's ``ca_bundle``); its private key is never written, and the server's key is a 0600 file.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePrivateKey

# The sandbox listens on 127.0.0.1; its endpoint names that address, so the certificate must (an IP SAN).
DEFAULT_NAMES = ("localhost", "127.0.0.1")
CA_FILE, CERT_FILE, KEY_FILE = "ca.pem", "server.pem", "server-key.pem"


@dataclass(frozen=True, slots=True)
class TLSFiles:
    """Where a server's certificate chain and key are; ``ca`` is the CA certificate clients trust (if known)."""

    cert: Path
    key: Path
    ca: Path | None = None


def _key() -> EllipticCurvePrivateKey:
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1())  # P-256: fast to make, every TLS stack speaks it


def _subject_names(names: Sequence[str]) -> list[x509.GeneralName]:
    from cryptography import x509

    out: list[x509.GeneralName] = []
    for name in names:
        try:
            out.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            out.append(x509.DNSName(name))
    return out


class ThrowAwayCA:
    """A CA made in memory, valid from a day ago (clock skew) for ``days``; its key stays in this object."""

    def __init__(self, common_name: str = "cognito-fleet sandbox CA", days: float = 30) -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes
        from cryptography.x509.oid import NameOID

        self._key = _key()
        self.name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        now = datetime.datetime.now(datetime.UTC)
        public = self._key.public_key()
        self.certificate = (
            x509.CertificateBuilder()
            .subject_name(self.name)
            .issuer_name(self.name)
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_key_usage(cert_sign=True), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .sign(self._key, hashes.SHA256())
        )

    def pem(self) -> bytes:
        """The CA certificate (public), PEM."""
        from cryptography.hazmat.primitives import serialization

        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def issue(self, names: Sequence[str] = DEFAULT_NAMES, days: float = 30) -> tuple[bytes, bytes]:
        """A server certificate for ``names`` (DNS names or IP addresses) signed by this CA: (chain PEM, key PEM)."""
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

        key = _key()
        now = datetime.datetime.now(datetime.UTC)
        ca_public = self._key.public_key()
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(self.name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName(_subject_names(names)), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(cert_sign=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_public), critical=False)
            .sign(self._key, hashes.SHA256())
        )
        chain = cert.public_bytes(serialization.Encoding.PEM) + self.pem()
        key_pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        return chain, key_pem

    def write(self, directory: str | Path, names: Sequence[str] = DEFAULT_NAMES, days: float = 30) -> TLSFiles:
        """Issue a server certificate for ``names`` and write it, its key (0600) and the CA certificate."""
        target = Path(directory)
        target.mkdir(parents=True, exist_ok=True, mode=0o700)
        chain, key = self.issue(names, days)
        cert, key_path, ca = target / CERT_FILE, target / KEY_FILE, target / CA_FILE
        _write_private(key_path, key)
        cert.write_bytes(chain)
        ca.write_bytes(self.pem())
        return TLSFiles(cert=cert, key=key_path, ca=ca)


def _key_usage(cert_sign: bool) -> x509.KeyUsage:
    from cryptography import x509

    return x509.KeyUsage(
        digital_signature=not cert_sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _write_private(path: Path, data: bytes) -> None:
    # Created 0600 from the start (never briefly readable by others), and never over another file's mode.
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def make_tls_files(directory: str | Path, names: Sequence[str] = DEFAULT_NAMES, days: float = 30) -> TLSFiles:
    """A new throw-away CA and a server certificate it signed for ``names``, written into ``directory``."""
    return ThrowAwayCA(days=days).write(directory, names, days)


def server_context(files: TLSFiles) -> ssl.SSLContext:
    """The sandbox's server-side TLS context (TLS 1.2+), serving ``files``' certificate chain."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(files.cert, files.key)
    return context
