"""What a plan shows of a certificate: its issuer, serial, type, key algorithm and expiry, as ACM's
DescribeCertificate gives them (``CertificateDetail``: Issuer, Serial, Type, KeyAlgorithm, NotAfter;
https://docs.aws.amazon.com/acm/latest/APIReference/API_CertificateDetail.html). A change board approves a move
"from Old CA, expiring then, to New CA, expiring then": the plan file keeps these per domain, for the certificate it
is on and its target, and the plan record renders them (fleet/records/plan_record.py, markdown.py, html.py).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any

from fleet.records.formatting import at_utc

# The certificates table's extra columns (a record that knows its certificates' facts: a plan's).
FACT_HEADER = ["Issuer", "Serial", "Type", "Key algorithm", "Expires (NotAfter)"]


@dataclass(frozen=True, slots=True)
class CertificateFacts:
    """One certificate as ACM described it; None where ACM gave no value (Serial and NotAfter of a certificate
    not yet issued, say)."""

    issuer: str | None = None
    serial: str | None = None
    type: str | None = None  # IMPORTED | AMAZON_ISSUED | PRIVATE
    key_algorithm: str | None = None  # RSA_2048, EC_prime256v1, ...
    not_after: str | None = None  # ISO 8601 UTC, Z

    @classmethod
    def of(cls, certificate: Mapping[str, Any]) -> CertificateFacts:
        """From DescribeCertificate's ``Certificate`` (botocore gives NotAfter as a datetime)."""

        def text(key: str) -> str | None:
            value = certificate.get(key)
            return None if value in (None, "") else str(value)

        not_after = certificate.get("NotAfter")
        if isinstance(not_after, datetime):
            moment = not_after if not_after.tzinfo else not_after.replace(tzinfo=UTC)
            expires: str | None = moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
        else:
            expires = text("NotAfter")
        return cls(text("Issuer"), text("Serial"), text("Type"), text("KeyAlgorithm"), expires)

    def expires(self) -> str:
        """NotAfter as the records show times (2027-01-01 00:00:00Z); as stored when it is not a time."""
        if not self.not_after:
            return ""
        try:
            return at_utc(datetime.fromisoformat(self.not_after).astimezone(UTC))
        except ValueError:
            return self.not_after

    def cells(self) -> list[str]:
        """The certificates table's cells, in FACT_HEADER's order ("" where unknown)."""
        return [self.issuer or "", self.serial or "", self.type or "", self.key_algorithm or "", self.expires()]

    def summary(self) -> str:
        """One line for a "What will change" cell: issuer; type and key; expiry; serial (what is known)."""
        kind = " ".join(p for p in (self.type, self.key_algorithm) if p)
        parts = [
            self.issuer or "issuer unknown",
            kind,
            f"expires {self.expires()}" if self.not_after else "",
            f"serial {self.serial}" if self.serial else "",
        ]
        return "; ".join(p for p in parts if p)


NAMES = tuple(f.name for f in fields(CertificateFacts))


def read_facts(value: object, where: str, bad: Callable[[str], Exception]) -> CertificateFacts | None:
    """A plan file's certificate object (or null: not known, or a plan made before these were kept); ``bad``
    makes the error naming the plan file and ``where``. Other keys are left alone, as in the rest of a plan's domain
    (a later version's additions)."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise bad(f"{where}: expected an object or null, found {type(value).__name__}")
    for name in NAMES:
        if value.get(name) is not None and not isinstance(value.get(name), str):
            raise bad(f"{where}.{name}: expected a str or null")
    return CertificateFacts(**{name: value.get(name) for name in NAMES})
