"""Certificate rules as pure logic, on an injected clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from fleet.errors import RowFailed
from fleet.migration.certificates import check, covers

NOW = datetime(2026, 11, 26, tzinfo=UTC)


def cert(**overrides: object) -> dict[str, object]:
    base: dict[str, object] = {
        "CertificateArn": "arn:aws:acm:us-east-1:111122223333:certificate/x",
        "Status": "ISSUED",
        "DomainName": "*.example.com",
        "SubjectAlternativeNames": ["*.example.com", "example.com"],
        "KeyAlgorithm": "RSA_2048",
        "NotAfter": NOW + timedelta(days=90),
    }
    base.update(overrides)
    return base


@pytest.mark.parametrize(
    ("names", "domain", "ok"),
    [
        (["auth.example.com"], "auth.example.com", True),
        (["*.example.com"], "auth.example.com", True),
        (["*.example.com"], "a.b.example.com", False),
        (["*.example.com"], "example.com", False),
        (["*.b.example.com"], "a.b.example.com", True),
        (["other.example.com"], "auth.example.com", False),
    ],
)
def test_covers(names: list[str], domain: str, ok: bool) -> None:
    assert covers(names, domain) is ok


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"Status": "PENDING_VALIDATION"}, "CertificateNotIssued"),
        ({"Status": "EXPIRED"}, "CertificateNotIssued"),
        ({"DomainName": "other.org", "SubjectAlternativeNames": ["other.org"]}, "CertificateDoesNotCoverDomain"),
        ({"KeyAlgorithm": "EC_secp384r1"}, "CertificateKeyAlgorithmUnsupported"),
        ({"KeyAlgorithm": "RSA_8192"}, "CertificateKeyAlgorithmUnsupported"),
        ({"NotAfter": NOW + timedelta(days=29)}, "CertificateExpiresSoon"),
    ],
)
def test_rejections(overrides: dict[str, object], code: str) -> None:
    with pytest.raises(RowFailed) as info:
        check(cert(**overrides), "auth.example.com", 30, NOW)
    assert info.value.code == code


@pytest.mark.parametrize("algorithm", ["RSA_1024", "RSA_2048", "RSA_3072", "RSA_4096", "EC_prime256v1"])
def test_accepted(algorithm: str) -> None:
    check(cert(KeyAlgorithm=algorithm, NotAfter=NOW + timedelta(days=31)), "auth.example.com", 30, NOW)
