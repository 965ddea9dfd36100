"""The plan file's certificate facts (issuer, serial, type, key algorithm, NotAfter of each domain's current
certificate and of its target): a plan pass asks its rows for them (``EngineSettings.expiry``: the certificate a
row ends on is described anyway; in plan mode the row also hands over the target's answer, which its pre-flight
already has, as ``Outcome.certificates``), this observer keeps them as the rows end, and ``with_certificates``
adds them to the plan's lines. No call of its own: one DescribeCertificate per distinct certificate and account.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

from fleet.aws.outage import OutageEvent
from fleet.aws.retry import Failure
from fleet.manifest import Row
from fleet.migration.engine import Observer
from fleet.outcome import Outcome
from fleet.records.certificate_facts import CertificateFacts
from fleet.records.plan_file import PlannedDomain


class CertificatesSeen(Observer):
    """Passes every engine event on to ``inner`` (the plan's own observer) and keeps, by ARN, what ACM said of
    each certificate a row described."""

    def __init__(self, inner: Observer | None) -> None:
        self.inner = inner or Observer()
        self.facts: dict[str, CertificateFacts] = {}

    def started(self, info: dict[str, Any]) -> None:
        self.inner.started(info)

    def row_done(self, row: Row, outcome: Outcome, seconds: float) -> None:
        for arn, certificate in outcome.certificates.items():
            if arn not in self.facts:
                self.facts[arn] = CertificateFacts.of(certificate)
        self.inner.row_done(row, outcome, seconds)

    def retry(self, row: Row, failure: Failure, delay: float) -> None:
        self.inner.retry(row, failure, delay)

    def outage(self, event: OutageEvent) -> None:
        self.inner.outage(event)

    def note(self, name: str, level: str, fields: dict[str, Any]) -> None:
        self.inner.note(name, level, fields)


def with_certificates(domains: Iterable[PlannedDomain], facts: dict[str, CertificateFacts]) -> list[PlannedDomain]:
    """The plan's lines with their certificates' facts (None where the plan could not describe one)."""
    return [
        dataclasses.replace(
            d,
            current_certificate=facts.get(d.current_certificate_arn or ""),
            target_certificate=facts.get(d.certificate_arn),
        )
        for d in domains
    ]
