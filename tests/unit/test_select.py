"""Selection by what is wrong with a certificate (fleet/discover/select.py): pure decisions, no sandbox."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fleet.discover import select
from fleet.discover.select import Selection

NOW = datetime(2026, 12, 1, tzinfo=UTC)
DOMAIN = "auth.example.com"


def cert(arn: str, issuer: str, days: float, kind: str = "IMPORTED", names: tuple[str, ...] = (DOMAIN,)) -> Any:
    return {
        "CertificateArn": f"arn:aws:acm:us-east-1:111122223333:certificate/{arn}",
        "Issuer": issuer,
        "Type": kind,
        "Status": "ISSUED",
        "KeyAlgorithm": "EC_prime256v1",
        "DomainName": names[0],
        "SubjectAlternativeNames": list(names),
        "NotBefore": NOW - timedelta(days=1),
        "NotAfter": NOW + timedelta(days=days),
    }


def test_issuer_matches_acm_issuer_or_the_served_certificates_issuer_names_case_insensitively() -> None:
    assert select.from_issuer(cert("a", "Old CA", 400), [" old ca "])
    assert not select.from_issuer(cert("a", "Entrust, Inc.", 400), ["Entrust Certification Authority - L1K"])
    assert select.from_issuer(
        cert("a", "Entrust, Inc.", 400), ["Entrust Certification Authority - L1K"], ("Entrust, Inc.",
        "Entrust Certification Authority - L1K"),
    )  # fmt: skip
    assert not select.from_issuer(cert("a", "", 400), ["Old CA"])


def test_every_criterion_given_must_hold_and_the_first_failed_says_why() -> None:
    by_issuer = Selection(issuers=("Old CA",))
    assert select.left_alone(cert("a", "Old CA", 700), by_issuer, NOW) == ""
    assert select.left_alone(cert("a", "Healthy CA", 10), by_issuer, NOW) == select.OTHER_ISSUER
    both = Selection(issuers=("Old CA",), imported=True, expiring_within_days=30)
    assert select.left_alone(cert("a", "Old CA", 700, "AMAZON_ISSUED"), both, NOW) == select.NOT_IMPORTED
    assert select.left_alone(cert("a", "Old CA", 700), both, NOW) == select.NOT_EXPIRING
    assert select.left_alone(cert("a", "Old CA", 20), both, NOW) == ""
    assert select.left_alone(cert("a", "Any", 700), Selection(), NOW) == ""  # no criterion: every domain


def test_selected_by_issuer_the_replacement_need_not_outlive_it_and_is_never_from_a_selected_issuer() -> None:
    current = cert("cur", "Old CA", 700)
    shorter = cert("new", "New CA", 365)
    same_ca = cert("old2", "Old CA", 900)
    by_issuer = Selection(issuers=("Old CA",), auto=True)
    target, selection, why = select.best_candidate(
        DOMAIN, current["CertificateArn"], select.not_after(current), [current, shorter, same_ca], by_issuer, NOW
    )
    assert (target, selection, why) == (shorter["CertificateArn"], select.SELECTED, "")

    by_expiry = Selection(expiring_within_days=800, auto=True)  # not selected by issuer: must outlive it
    target, selection, why = select.best_candidate(
        DOMAIN, current["CertificateArn"], select.not_after(current), [shorter], by_expiry, NOW
    )
    assert (target, selection) == ("", select.NO_CANDIDATE) and "does not outlive" in why

    target, selection, why = select.best_candidate(
        DOMAIN, current["CertificateArn"], select.not_after(current), [same_ca], by_issuer, NOW
    )
    assert selection == select.NO_CANDIDATE and "from a selected issuer (Old CA)" in why
