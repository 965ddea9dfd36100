"""Certificate pre-flight: refuse a write that Cognito/CloudFront would reject or regret.

The target certificate is described once per run (``CertificateChecks`` caches the answer per ARN; rows
that share a certificate wait for the first one's call) and checked against every domain that uses it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from fleet.aws.calls import Once
from fleet.aws.retry import classify
from fleet.aws.stop import StopRequested
from fleet.errors import RowFailed

# CloudFront accepts these for viewer certificates (not EC P-384 / P-521).
ACCEPTED_KEY_ALGORITHMS = frozenset({"RSA_1024", "RSA_2048", "RSA_3072", "RSA_4096", "EC_prime256v1"})
DEFAULT_MIN_VALIDITY_DAYS = 30


def covers(names: Iterable[str], domain: str) -> bool:
    """An exact name, or a wildcard exactly one level up (*.example.com covers a.example.com, not a.b.example.com)."""
    parent = domain.split(".", 1)[1] if "." in domain else ""
    return any(n == domain or (n.startswith("*.") and n[2:] == parent) for n in names)


def check(certificate: dict[str, Any], domain: str, min_validity_days: float, now: datetime) -> None:
    """Raise RowFailed if ``certificate`` (ACM DescribeCertificate's Certificate) can't serve ``domain``."""
    arn = certificate.get("CertificateArn", "?")
    status = certificate.get("Status")
    if status != "ISSUED":
        raise RowFailed("CertificateNotIssued", f"certificate {arn} is {status}, not ISSUED")
    names = [certificate.get("DomainName", ""), *certificate.get("SubjectAlternativeNames", [])]
    if not covers(names, domain):
        raise RowFailed(
            "CertificateDoesNotCoverDomain",
            f"certificate {arn} names {sorted(set(filter(None, names)))}, none of which covers {domain}",
        )
    algorithm = certificate.get("KeyAlgorithm")
    if algorithm not in ACCEPTED_KEY_ALGORITHMS:
        raise RowFailed(
            "CertificateKeyAlgorithmUnsupported",
            f"certificate {arn} uses {algorithm}; CloudFront accepts {', '.join(sorted(ACCEPTED_KEY_ALGORITHMS))}",
        )
    not_after = certificate.get("NotAfter")
    if isinstance(not_after, datetime):
        expires = not_after if not_after.tzinfo else not_after.replace(tzinfo=UTC)
        if expires <= now:
            raise RowFailed("CertificateExpired", f"certificate {arn} expired {expires.date().isoformat()}")
        if expires - now < timedelta(days=min_validity_days):
            raise RowFailed(
                "CertificateExpiresSoon",
                f"certificate {arn} expires {expires.date().isoformat()}, within {min_validity_days:g} days",
            )


class CertificateChecks:
    """Describe each certificate once; every row using it waits for that one answer."""

    def __init__(
        self, min_validity_days: float = DEFAULT_MIN_VALIDITY_DAYS, now: Callable[[], datetime] | None = None
    ) -> None:
        self.min_validity_days = min_validity_days
        self.now = now or (lambda: datetime.now(UTC))
        self._described: Once[str, dict[str, Any]] = Once()

    async def fetch(self, arn: str, describe: Callable[[], Awaitable[dict[str, Any]]]) -> None:
        """Describe ``arn`` now (once), so that ``verify`` later finds the answer; errors are kept for ``verify``."""
        with contextlib.suppress(Exception):
            await self._described.get(arn, describe)

    async def described(self, arn: str, describe: Callable[[], Awaitable[dict[str, Any]]]) -> dict[str, Any]:
        """DescribeCertificate's answer for ``arn`` (described once; its error raised to every caller)."""
        return await self._described.get(arn, describe)

    async def not_after(self, arn: str, describe: Callable[[], Awaitable[dict[str, Any]]]) -> str | None:
        """The certificate's NotAfter (ISO 8601 UTC), for the metrics: None when it cannot be described (deleted,
        another account's, the run stopping); never an error of the row."""
        try:
            not_after = (await self._described.get(arn, describe)).get("Certificate", {}).get("NotAfter")
        except Exception:
            return None
        if not isinstance(not_after, datetime):
            return None
        return (not_after if not_after.tzinfo else not_after.replace(tzinfo=UTC)).isoformat().replace("+00:00", "Z")

    async def known(
        self, arns: Iterable[str], describer: Callable[[str], Callable[[], Awaitable[dict[str, Any]]]]
    ) -> dict[str, dict[str, Any]]:
        """DescribeCertificate's Certificate of each of ``arns`` that ACM describes, by ARN, for the plan file's
        certificate facts: each described once per account and run (the pre-flight's and the expiry's answers are
        these); one that cannot be described is left out, never an error of the row."""
        out: dict[str, dict[str, Any]] = {}
        for arn in dict.fromkeys(arns):
            try:
                out[arn] = dict((await self._described.get(arn, describer(arn))).get("Certificate") or {})
            except Exception:
                continue
        return out

    async def verify(
        self,
        arn: str,
        domain: str,
        describe: Callable[[], Awaitable[dict[str, Any]]],
        min_validity_days: float | None = None,
    ) -> None:
        """RowFailed unless certificate ``arn`` can serve ``domain`` for ``min_validity_days`` (default: the
        run's); StopRequested passes through."""
        try:
            described = await self._described.get(arn, describe)
        except StopRequested:
            raise
        except Exception as exc:
            raise rejection(exc, arn) from None
        days = self.min_validity_days if min_validity_days is None else min_validity_days
        check(described["Certificate"], domain, days, self.now())


def rejection(exc: Exception, arn: str) -> RowFailed:
    """Why a certificate that could not be described cannot be a target (CertificateNotFound, or the error)."""
    failure = classify(exc)
    if failure.code in ("ResourceNotFoundException", "ValidationException", "InvalidArnException"):
        return RowFailed("CertificateNotFound", f"certificate {arn}: {failure.message}")
    return RowFailed(failure.code, f"DescribeCertificate {arn}: {failure.message}")
