"""Which domains to move, and to which certificate: pure functions of what the inventory found.

What is wrong with a domain's current certificate selects it (every criterion given must hold): its issuer
(``--issuer``: ACM's ``Issuer``, any of those named, case-insensitive), its type (``--imported``), its expiry
(``--expiring-within``). A domain not selected is left alone, and the inventory says why (``other-issuer``,
``not-imported``, ``not-expiring``).

Where a selected domain goes: --map: the mapped target of its current certificate. --auto: the newest
(NotBefore, then NotAfter) candidate that passes the same certificate checks as `run` (``preflight.check``:
ISSUED, covers the domain, a key CloudFront takes, valid long enough), is not from a selected issuer, and outlives
the current certificate -- except for a domain selected by its issuer: a distrusted CA's certificate must go
whatever its expiry, so its replacement need not outlive it. Neither: the inventory alone (``matched``). No
candidate is said so, never guessed, with the reason of each certificate refused.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from fleet.errors import RowFailed
from fleet.migration.certificates import DEFAULT_MIN_VALIDITY_DAYS, check

AUTO_HORIZON_DAYS = 30.0  # --auto with no criterion: domains whose certificate expires within this


@dataclass(frozen=True, slots=True)
class Selection:
    mapping: dict[str, str] | None = None  # old certificate ARN -> new
    expiring_within_days: float | None = None  # only domains whose certificate expires within this (None: any)
    min_validity_days: float = DEFAULT_MIN_VALIDITY_DAYS
    issuers: tuple[str, ...] = ()  # only domains on a certificate from one of these CAs
    imported: bool = False  # only domains on an IMPORTED certificate
    auto: bool = False  # pick a target among the account's certificates (mapping None and not auto: inventory only)

    @property
    def targets(self) -> bool:
        """Whether targets are sought (a manifest is written), or the inventory alone."""
        return self.mapping is not None or self.auto


SELECTED, NOT_MAPPED, NOT_EXPIRING, NO_CANDIDATE = "selected", "not-mapped", "not-expiring", "no-candidate"
OTHER_ISSUER, NOT_IMPORTED, MATCHED = "other-issuer", "not-imported", "matched"  # matched: inventory only
REJECTED = "rejected"  # --map: the mapped target fails run's certificate checks (error_code says which)
CANNOT_MOVE = frozenset({NO_CANDIDATE, REJECTED})  # must move and cannot: discover exits 1
NO_CANDIDATE_CODE = "NoCandidate"
# Why a certificate is not a candidate, in a few words (the codes are run's pre-flight codes).
REFUSED = {
    "CertificateNotIssued": "not issued",
    "CertificateDoesNotCoverDomain": "does not cover the domain",
    "CertificateKeyAlgorithmUnsupported": "key type CloudFront refuses",
    "CertificateExpiresSoon": "expires too soon",
    "CertificateExpired": "expired",
}


def from_issuer(certificate: dict[str, Any] | None, issuers: Iterable[str], names: Iterable[str] = ()) -> bool:
    """Whether ACM's ``Issuer`` of ``certificate``, or one of the certificate's own issuer ``names`` (its O and
    CN, as its edge serves it), is one of ``issuers`` (case and outer spaces ignored). ACM documents ``Issuer``
    only as "the name of the certificate authority that issued and signed the certificate" (CertificateDetail),
    not which part of the issuer's name it is: both are matched."""
    wanted = {i.strip().casefold() for i in issuers}
    found = {str(n).strip().casefold() for n in (str((certificate or {}).get("Issuer") or ""), *names)} - {""}
    return bool(wanted & found)


def left_alone(
    certificate: dict[str, Any] | None, selection: Selection, now: datetime, names: Iterable[str] = ()
) -> str:
    """Why a domain on ``certificate`` (issuer ``names`` as served at its edge) is not selected ('' when it is):
    the first criterion it fails."""
    if selection.issuers and not from_issuer(certificate, selection.issuers, names):
        return OTHER_ISSUER
    if selection.imported and (certificate or {}).get("Type") != "IMPORTED":
        return NOT_IMPORTED
    if selection.expiring_within_days is not None and not expiring(not_after(certificate), selection, now):
        return NOT_EXPIRING
    return ""


def not_after(certificate: dict[str, Any] | None) -> datetime | None:
    """A described certificate's NotAfter, timezone-aware; None when unknown."""
    value = (certificate or {}).get("NotAfter")
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return None


def mapped(current_arn: str, selection: Selection) -> tuple[str, str]:
    """--map: (target, selection) for a domain on ``current_arn``."""
    target = (selection.mapping or {}).get(current_arn)
    return (target, SELECTED) if target else ("", NOT_MAPPED)


def expiring(current_not_after: datetime | None, selection: Selection, now: datetime) -> bool:
    """Whether the current certificate expires within the horizon (or when is unknown)."""
    horizon = now + timedelta(days=selection.expiring_within_days or 0.0)
    return current_not_after is None or current_not_after <= horizon


def best_candidate(
    domain: str,
    current_arn: str,
    current_not_after: datetime | None,
    candidates: Iterable[dict[str, Any]],
    selection: Selection,
    now: datetime,
) -> tuple[str, str, str]:
    """--auto: (target, selection, why none) among the account's described ISSUED certificates; ``why none``
    names every certificate considered and why it was refused. A domain selected by its issuer may go to a
    certificate that expires sooner than its current one; never to one from a selected issuer."""
    outlive = not selection.issuers
    best: tuple[datetime, datetime, str] | None = None
    refused: list[str] = []
    for cert in candidates:
        arn, expires = cert["CertificateArn"], not_after(cert)
        if arn == current_arn:
            continue
        try:
            check(cert, domain, selection.min_validity_days, now)
        except RowFailed as exc:
            refused.append(f"{arn}: {REFUSED.get(exc.code, exc.code)}")
            continue
        if selection.issuers and from_issuer(cert, selection.issuers):
            refused.append(f"{arn}: from a selected issuer ({cert.get('Issuer')})")
            continue
        if expires is None or (outlive and current_not_after is not None and expires <= current_not_after):
            refused.append(f"{arn}: not newer (does not outlive the current certificate)")
            continue
        key = (cert.get("NotBefore") or datetime.min.replace(tzinfo=UTC), expires, arn)
        if best is None or key > best:
            best = key
    if best:
        return best[2], SELECTED, ""
    if not refused:
        return "", NO_CANDIDATE, "no certificate to move to: no other ISSUED certificate in us-east-1 of the account"
    return "", NO_CANDIDATE, f"no certificate to move to: {len(refused)} considered: " + "; ".join(refused)
