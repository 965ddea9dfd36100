"""A plan's certificate facts (issuer, serial, type, key algorithm, NotAfter of each domain's current certificate and
target): from ACM's answer, through the plan pass's observer, into the plan file, and rendered by the plan record
(Markdown and HTML, escaped); plans made before the facts were kept still read and render."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path

import pytest

from fleet.manifest import Row
from fleet.migration.engine import Observer
from fleet.migration.plan_certificates import CertificatesSeen, with_certificates
from fleet.outcome import Outcome, Status
from fleet.records.certificate_facts import CertificateFacts
from fleet.records.html import html
from fleet.records.markdown import markdown
from fleet.records.plan_file import PlanError, PlannedDomain, fingerprint, read_plan, write_plan
from fleet.records.plan_record import load_plan_record

ACCOUNT = "111122223333"
OLD = f"arn:aws:acm:us-east-1:{ACCOUNT}:certificate/0123abcd-0000-4000-8000-000000000001"
NEW = f"arn:aws:acm:us-east-1:{ACCOUNT}:certificate/4567cdef-0000-4000-8000-000000000002"
OTHER = f"arn:aws:acm:us-east-1:{ACCOUNT}:certificate/89abef01-0000-4000-8000-000000000003"
HOSTILE = "Evil <b>CA</b> | *not* [a](link) & co"  # an issuer is the CA's own text: never markup
OLD_FACTS = CertificateFacts(HOSTILE, "0a:1b:2c", "IMPORTED", "RSA_2048", "2026-12-20T00:00:00Z")
NEW_FACTS = CertificateFacts("New CA", "3d:4e:5f", "AMAZON_ISSUED", "EC_prime256v1", "2027-11-30T12:00:00Z")


def test_acm_answer_becomes_facts_what_it_lacks_stays_unknown() -> None:
    naive = datetime(2027, 1, 2, 3, 4, 5)  # botocore's datetimes are aware; a naive one is read as UTC
    described = {
        "Issuer": "Old CA",
        "Serial": "0a:ff",
        "Type": "IMPORTED",
        "KeyAlgorithm": "RSA_2048",
        "NotAfter": naive,
    }
    facts = CertificateFacts.of(described)
    assert facts == CertificateFacts("Old CA", "0a:ff", "IMPORTED", "RSA_2048", "2027-01-02T03:04:05Z")
    assert facts.expires() == "2027-01-02 03:04:05Z"
    assert facts.summary() == "Old CA; IMPORTED RSA_2048; expires 2027-01-02 03:04:05Z; serial 0a:ff"
    pending = CertificateFacts.of({"Type": "AMAZON_ISSUED", "KeyAlgorithm": "RSA_2048", "Serial": ""})
    assert (pending.issuer, pending.serial, pending.not_after) == (None, None, None)
    assert pending.summary() == "issuer unknown; AMAZON_ISSUED RSA_2048" and pending.cells()[4] == ""


def test_the_plan_pass_keeps_what_its_rows_described_and_passes_every_event_on() -> None:
    class Seen(Observer):
        def __init__(self) -> None:
            self.rows: list[str] = []

        def row_done(self, row: Row, outcome: Outcome, seconds: float) -> None:
            self.rows.append(row.domain)

    inner = Seen()
    seen = CertificatesSeen(inner)
    for domain, certificates in (
        ("a.example.com", {OLD: {"Issuer": "Old CA"}, NEW: {"Issuer": "New CA"}}),
        ("b.example.com", {OLD: {"Issuer": "Old CA"}}),  # its target could not be described: left out
    ):
        row = Row(2, ACCOUNT, "eu-west-1", "eu-west-1_pool", domain, NEW if domain[0] == "a" else OTHER)
        outcome = Outcome(domain, Status.PLANNED, row.certificate_arn, certificates=certificates)
        seen.row_done(row, outcome, 0.1)
    assert inner.rows == ["a.example.com", "b.example.com"]
    assert {arn: f.issuer for arn, f in seen.facts.items()} == {OLD: "Old CA", NEW: "New CA"}
    lines = [_line("a.example.com", NEW), _line("b.example.com", OTHER), _line("c.example.com", NEW, current=None)]
    a, b, c = with_certificates(lines, seen.facts)
    assert (a.current_certificate, a.target_certificate) == (seen.facts[OLD], seen.facts[NEW])
    assert (b.current_certificate, b.target_certificate) == (seen.facts[OLD], None)
    assert (c.current_certificate, c.target_certificate) == (None, seen.facts[NEW])


def _line(
    domain: str,
    target: str,
    current: str | None = OLD,
    current_certificate: CertificateFacts | None = None,
    target_certificate: CertificateFacts | None = None,
) -> PlannedDomain:
    return PlannedDomain(
        ACCOUNT,
        "eu-west-1",
        "eu-west-1_pool",
        domain,
        current,
        target,
        "planned",
        current_certificate=current_certificate,
        target_certificate=target_certificate,
    )


def _plan(tmp_path: Path, domains: list[PlannedDomain]) -> Path:
    manifest = tmp_path / "m.csv"
    manifest.write_text("account_id,region,user_pool_id,domain,certificate_arn\n")
    path = tmp_path / "P.json"
    write_plan(path, "plan-1", datetime.now(UTC), "arn:aws:iam::999988887777:role/hub", str(manifest), domains, {})
    return path


def test_the_plan_record_shows_both_certificates_facts_escaped(tmp_path: Path) -> None:
    moving = _line("a.example.com", NEW, current_certificate=OLD_FACTS, target_certificate=NEW_FACTS)
    unknown = _line("b.example.com", OTHER)  # described by neither: shown by name only
    path = _plan(tmp_path, [moving, unknown])
    stored = json.loads(path.read_text())["domains"][0]
    assert stored["current_certificate"] == {
        "issuer": HOSTILE,
        "serial": "0a:1b:2c",
        "type": "IMPORTED",
        "key_algorithm": "RSA_2048",
        "not_after": "2026-12-20T00:00:00Z",
    }
    assert read_plan(path).domains == (moving, unknown)  # read back whole
    record = load_plan_record(path)

    md = markdown(record)
    change = md.split("## What will change", 1)[1].split("## Failures", 1)[0]
    [row_a] = [line for line in change.splitlines() if "a.example.com" in line]
    [row_b] = [line for line in change.splitlines() if "b.example.com" in line]
    escaped = r"Evil &lt;b&gt;CA&lt;/b&gt; \| \*not\* \[a\](link) &amp; co"
    assert f"0123abcd… ({escaped}; IMPORTED RSA_2048; expires 2026-12-20 00:00:00Z; serial 0a:1b:2c)" in row_a
    assert "4567cdef… (New CA; AMAZON_ISSUED EC_prime256v1; expires 2027-11-30 12:00:00Z; serial 3d:4e:5f)" in row_a
    assert "| 89abef01… |" in row_b and "New CA" not in row_b
    certificates = md.split("## Certificates", 1)[1].strip().splitlines()
    assert certificates[0] == "| Shown as | ARN | Issuer | Serial | Type | Key algorithm | Expires (NotAfter) |"
    assert f"| 0123abcd… | {OLD} | {escaped} | 0a:1b:2c | IMPORTED | RSA_2048 | 2026-12-20 00:00:00Z |" in certificates
    assert f"| 89abef01… | {OTHER} |   |   |   |   |   |" in certificates  # not described: blank, not a guess
    assert "<b>" not in md

    page = html(record)
    ET.fromstring(page.split("\n", 1)[1])  # well-formed (polyglot): no value broke the markup
    assert "<b>CA</b>" not in page and "Evil &lt;b&gt;CA&lt;/b&gt; | *not* [a](link) &amp; co" in page
    change_html = page.split('id="will-change"', 1)[1].split("</section>", 1)[0]
    assert "EC_prime256v1" in change_html and "2027-11-30 12:00:00Z" in change_html and "3d:4e:5f" in change_html
    table = page.split('id="certificates"', 1)[1].split("</section>", 1)[0]
    assert all(f'<th scope="col">{h}</th>' in table for h in ("Issuer", "Serial", "Type", "Key algorithm"))
    assert "AMAZON_ISSUED" in table and "2026-12-20 00:00:00Z" in table


def test_a_plan_made_before_the_facts_reads_and_renders_as_before(tmp_path: Path) -> None:
    path = _plan(tmp_path, [_line("a.example.com", NEW)])
    doc = json.loads(path.read_text())
    for d in doc["domains"]:  # as a plan from before this change was written: no such keys at all
        del d["current_certificate"], d["target_certificate"]
    path.write_text(json.dumps({**doc, "fingerprint": fingerprint(doc)}))
    (line,) = read_plan(path).domains
    assert line.current_certificate is None and line.target_certificate is None
    md = markdown(load_plan_record(path))
    assert "| Shown as | ARN |\n" in md and "Issuer" not in md
    assert "| a.example.com | 111122223333 | eu-west-1 | 0123abcd… | 4567cdef… |" in md


def test_the_fingerprint_covers_the_facts_and_a_malformed_one_is_named(tmp_path: Path) -> None:
    path = _plan(tmp_path, [_line("a.example.com", NEW, current_certificate=OLD_FACTS)])
    doc = json.loads(path.read_text())
    doc["domains"][0]["current_certificate"]["issuer"] = "Healthy CA"  # a distrusted issuer made to look fine
    path.write_text(json.dumps(doc))
    with pytest.raises(PlanError, match="fingerprint does not match its content"):
        read_plan(path)
    doc["domains"][0]["current_certificate"]["serial"] = 12
    path.write_text(json.dumps({**doc, "fingerprint": fingerprint(doc)}))
    with pytest.raises(PlanError, match=r"domains\[0\]\.current_certificate\.serial: expected a str or null"):
        read_plan(path)
    doc["domains"][0]["target_certificate"] = "New CA"
    doc["domains"][0]["current_certificate"]["serial"] = "0a"
    path.write_text(json.dumps({**doc, "fingerprint": fingerprint(doc)}))
    with pytest.raises(PlanError, match=r"domains\[0\]\.target_certificate: expected an object or null, found str"):
        read_plan(path)
