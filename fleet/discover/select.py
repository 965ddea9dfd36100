"""Which certificate each discovered domain moves to: pure functions of what the inventory found.

--map: the mapped target of the domain's current certificate. --auto: for a domain whose certificate expires
within the horizon, the newest (NotBefore, then NotAfter) candidate that passes the same certificate checks as
`run` (``preflight.check``: ISSUED, covers the domain, a key CloudFront takes, valid long enough) and outlives
the current certificate. No candidate is said so, never guessed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from fleet.errors import RowFailed
from fleet.preflight import DEFAULT_MIN_VALIDITY_DAYS, check


@dataclass(frozen=True, slots=True)
class Selection:
    mapping: dict[str, str] | None = None  # old certificate ARN -> new
    expiring_within_days: float = 30.0  # --auto: only domains whose certificate expires within this
    min_validity_days: float = DEFAULT_MIN_VALIDITY_DAYS


SELECTED, NOT_MAPPED, NOT_EXPIRING, NO_CANDIDATE = "selected", "not-mapped", "not-expiring", "no-candidate"
REJECTED = "rejected"  # --map: the mapped target fails run's certificate checks (error_code says which)


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
) -> tuple[str, str]:
    """--auto: (target, selection) among the account's described ISSUED certificates."""
    best: tuple[datetime, datetime, str] | None = None
    for cert in candidates:
        expires = not_after(cert)
        if cert["CertificateArn"] == current_arn or expires is None:
            continue
        if current_not_after is not None and expires <= current_not_after:
            continue
        try:
            check(cert, domain, selection.min_validity_days, now)
        except RowFailed:
            continue
        key = (cert.get("NotBefore") or datetime.min.replace(tzinfo=UTC), expires, cert["CertificateArn"])
        if best is None or key > best:
            best = key
    return (best[2], SELECTED) if best else ("", NO_CANDIDATE)
