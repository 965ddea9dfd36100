"""Certificate pre-flight: refuse a write that Cognito/CloudFront would reject or regret.

The target certificate is described once per run (``CertificateChecks`` caches the answer per ARN; rows
that share a certificate wait for the first one's call) and checked against every domain that uses it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio

from fleet.errors import RowFailed
from fleet.stop import StopRequested

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
        if expires - now < timedelta(days=min_validity_days):
            raise RowFailed(
                "CertificateExpiresSoon",
                f"certificate {arn} expires {expires.date().isoformat()}, within {min_validity_days:g} days",
            )


@dataclass
class _Entry:
    done: anyio.Event
    certificate: dict[str, Any] | None = None
    error: RowFailed | None = None


class CertificateChecks:
    """Describe each certificate once; every row using it waits for that one answer."""

    def __init__(
        self,
        min_validity_days: float = DEFAULT_MIN_VALIDITY_DAYS,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.min_validity_days = min_validity_days
        self.now = now
        self._entries: dict[str, _Entry] = {}
        self.described = 0

    async def verify(self, arn: str, domain: str, describe: Callable[[], Awaitable[dict[str, Any]]]) -> None:
        entry = self._entries.get(arn)
        if entry is None:
            entry = self._entries[arn] = _Entry(anyio.Event())
            try:
                self.described += 1
                entry.certificate = (await describe())["Certificate"]
            except StopRequested:
                del self._entries[arn]  # not an answer: whoever comes next asks again
                raise
            except Exception as exc:
                entry.error = _rejection(exc, arn)
            finally:
                entry.done.set()
        else:
            await entry.done.wait()
            if entry.certificate is None and entry.error is None:  # its asker stopped: ask again
                return await self.verify(arn, domain, describe)
        if entry.error is not None:
            raise entry.error
        assert entry.certificate is not None
        check(entry.certificate, domain, self.min_validity_days, self.now())

    def forget_account(self, arns: Iterable[str]) -> None:
        for arn in arns:
            self._entries.pop(arn, None)


def _rejection(exc: Exception, arn: str) -> RowFailed:
    from fleet.retry import classify

    failure = classify(exc)
    if failure.code in ("ResourceNotFoundException", "ValidationException", "InvalidArnException"):
        return RowFailed("CertificateNotFound", f"certificate {arn}: {failure.message}")
    return RowFailed(failure.code, f"DescribeCertificate {arn}: {failure.message}")
