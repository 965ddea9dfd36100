"""Which certificate each discovered domain moves to: pure functions of what the inventory found.

--map: the mapped target of the domain's current certificate. --auto: for a domain whose certificate expires
within the horizon, the newest (NotBefore, then NotAfter) candidate that passes the same certificate checks as
`run` (``preflight.check``: ISSUED, covers the domain, a key CloudFront takes, valid long enough) and outlives
the current certificate. No candidate is said so, never guessed, with the reason of each certificate refused.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from fleet.errors import RowFailed
from fleet.migration.certificates import DEFAULT_MIN_VALIDITY_DAYS, check


@dataclass(frozen=True, slots=True)
class Selection:
    mapping: dict[str, str] | None = None  # old certificate ARN -> new
    expiring_within_days: float = 30.0  # --auto: only domains whose certificate expires within this
    min_validity_days: float = DEFAULT_MIN_VALIDITY_DAYS


SELECTED, NOT_MAPPED, NOT_EXPIRING, NO_CANDIDATE = "selected", "not-mapped", "not-expiring", "no-candidate"
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
    """--auto looks for a target only when the current certificate expires within the horizon (or is unknown)."""
    horizon = now + timedelta(days=selection.expiring_within_days)
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
    names every certificate considered and why it was refused."""
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
        if expires is None or (current_not_after is not None and expires <= current_not_after):
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
