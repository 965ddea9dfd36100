"""A plan a change board can approve: `plan --out P.json` saves it, `report P.json` renders it, and `run --plan P.json`
applies exactly it: a domain changed since the plan, not in it, or not planned to be written is not written."""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import re
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

from click.testing import CliRunner
from rich.console import Console

from fleet.cli import main
from fleet.cli.plan_table import CHROME, plan_table
from fleet.records.plan_file import fingerprint, read_plan, span
from fleet.sandbox.seed import DISTRUSTED, HEALTHY, HEALTHY_CA, NEW_CA, OLD_CA, Seeder, seed_accounts, write_manifest
from fleet.sandbox.server import Sandbox

from ..conftest import Fleet
from ..files import by_domain, events, finished
from .test_events import check


def refingerprint(doc: dict[str, object]) -> dict[str, object]:
    """What anyone can do to an edited plan: recompute its (unkeyed) fingerprint."""
    return {**doc, "fingerprint": fingerprint(doc)}


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def started(out: str) -> dict[str, object]:
    [found] = [e for e in events(out) if e["event"] == "run_started"]
    return found


def move_out_of_band(fleet: Fleet, index: int) -> str:
    """The sandbox admin puts a domain on a third certificate (its own, covering it), as someone outside the tool
    would: a real UpdateUserPoolDomain over HTTP."""
    d = fleet.domains[index]
    seeder = Seeder(fleet.box.endpoint)
    session = seeder.session(d.account_id)
    other = seeder.import_certificate(seeder.client(session, "acm", "us-east-1"), [d.domain])
    fleet.cognito(d.account_id, d.region).update_user_pool_domain(
        Domain=d.domain, UserPoolId=d.user_pool_id, CustomDomainConfig={"CertificateArn": other}
    )
    assert fleet.box.certificate_of(d.domain) == other
    return other


def test_a_domain_moved_since_the_plan_is_not_written_the_others_are(make_fleet, tmp_path: Path) -> None:
    fleet: Fleet = make_fleet(accounts=3, regions=("us-east-1",), per_region=2)
    d = fleet.domains
    plan_path, base = tmp_path / "P.json", ["--endpoint-url", fleet.box.endpoint, "--no-progress"]
    code, out = invoke("plan", str(fleet.manifest), "--out", str(plan_path), *base)
    assert code == 0, out
    check(out, "plan")  # the documented event stream (docs/events.md)
    assert stat.S_IMODE(plan_path.stat().st_mode) == 0o600
    doc = json.loads(plan_path.read_text())
    assert (doc["format"], doc["version"]) == ("cognito-fleet-plan", 2)
    assert doc["hub"] == started(out)["hub"] and doc["plan_id"] == started(out)["run_id"]
    assert doc["manifest"] == {
        "path": str(fleet.manifest),
        "sha256": hashlib.sha256(fleet.manifest.read_bytes()).hexdigest(),
    }
    assert datetime.now(UTC) - datetime.fromisoformat(doc["made_at"]) < timedelta(minutes=5)
    planned = {e["domain"]: e for e in doc["domains"]}
    assert set(planned) == {x.domain for x in d} and doc["counts"] == {"planned": 6}
    for x in d:  # the fleet's fingerprint: every domain's certificate at plan time, and its target
        assert planned[x.domain]["current_certificate_arn"] == x.old_certificate_arn
        assert planned[x.domain]["certificate_arn"] == x.new_certificate_arn
        assert planned[x.domain]["action"] == "planned"
    assert fleet.box.state.writes == {}  # planning wrote nothing
    # On a terminal: the per-domain table, as much as fits on the screen, then how many more and where.
    screen = Console(file=io.StringIO(), height=CHROME + 5, width=200)
    assert plan_table(tmp_path / "manifest.plan.csv", plan_path, screen) == 4
    shown = screen.file.getvalue()  # type: ignore[attr-defined]
    assert sum(x.domain in shown for x in d) == 4 and f"… and 2 more domains: see {plan_path}" in shown

    other = move_out_of_band(fleet, 2)
    fleet.box.state.reset_counters()
    code, out = invoke("run", str(fleet.manifest), "--plan", str(plan_path), *base)
    assert code == 1, out  # a domain not written: cron notices
    check(out, "run")
    assert finished(out)["counts"] == {"pending": 5, "drifted-since-plan": 1}
    applied = started(out)["plan"]
    assert applied["sha256"] == hashlib.sha256(plan_path.read_bytes()).hexdigest()  # type: ignore[index]
    assert applied["pinned"] is False  # type: ignore[index]
    [unpinned] = [e for e in events(out) if e["event"] == "plan_not_pinned"]  # said on stderr too
    assert unpinned["level"] == "warning" and unpinned["sha256"] == applied["sha256"]  # type: ignore[index]
    assert set(fleet.box.state.writes) == {x.domain for x in d} - {d[2].domain}
    assert set(fleet.box.state.writes.values()) == {1}
    assert fleet.box.certificate_of(d[2].domain) == other
    report = by_domain(tmp_path / "manifest.report.csv")
    assert report[d[2].domain]["status"] == "drifted-since-plan"
    assert report[d[2].domain]["error_code"] == "CertificateChangedSincePlan"
    message = report[d[2].domain]["error_message"]
    assert other in message and f"saw {d[2].old_certificate_arn}" in message
    assert report[d[2].domain]["previous_certificate_arn"] == other

    # The same plan again (cron): its own writes are not drift; the moved domain still is; nothing written again.
    fleet.box.state.reset_counters()
    code, out = invoke("run", str(fleet.manifest), "--plan", str(plan_path), *base)
    assert code == 1 and fleet.box.state.writes == {}, out
    counts = finished(out)["counts"]
    assert counts["drifted-since-plan"] == 1 and sum(counts.values()) == 6, counts  # type: ignore[union-attr]


def test_a_plan_renders_as_what_will_change(make_fleet, tmp_path: Path) -> None:
    fleet: Fleet = make_fleet(accounts=1, regions=("us-east-1",), per_region=2)
    plan_path = tmp_path / "P.json"
    code, out = invoke("plan", str(fleet.manifest), "--out", str(plan_path), "--endpoint-url", fleet.box.endpoint)
    assert code == 0, out
    code, md = invoke("report", str(plan_path))
    assert code == 0, md
    assert md.startswith("# Plan: P.json") and "## What will change (2 writes)" in md
    assert hashlib.sha256(plan_path.read_bytes()).hexdigest() in md  # the approved file, by its digest
    assert json.loads(plan_path.read_text())["fingerprint"] in md
    for x in fleet.domains:
        assert x.domain in md
    code, out = invoke("report", str(plan_path), "--format", "html", "--out", str(tmp_path / "plan.html"))
    assert code == 0, out
    page = (tmp_path / "plan.html").read_text()
    assert "<h1>Plan: P.json</h1>" in page and "What will change" in page
    assert all(x.domain.replace(".", ".<wbr />") in page for x in fleet.domains)


def test_an_old_malformed_or_foreign_plan_is_refused_in_one_line(make_fleet, tmp_path: Path) -> None:
    fleet: Fleet = make_fleet(accounts=1, regions=("us-east-1",), per_region=2)
    plan_path, base = tmp_path / "P.json", ["--endpoint-url", fleet.box.endpoint, "--no-progress"]
    assert invoke("plan", str(fleet.manifest), "--out", str(plan_path), *base)[0] == 0
    good = json.loads(plan_path.read_text())
    fleet.box.state.reset_counters()

    def refused(*extra: str, manifest: Path = fleet.manifest) -> str:
        code, out = invoke("run", str(manifest), "--plan", str(plan_path), *base, *extra)
        assert code == 2, out
        [line] = events(out)
        assert line["event"] == "error"
        assert sum(fleet.box.state.calls.values()) == 0 and not fleet.checkpoint.exists()  # nothing touched
        return str(line["message"])

    plan_path.write_text(
        json.dumps(refingerprint({**good, "made_at": (datetime.now(UTC) - timedelta(days=8)).isoformat()}))
    )
    assert "older than --plan-max-age 7d" in refused()  # the default
    assert "older than --plan-max-age 2d" in refused("--plan-max-age", "2d")
    plan_path.write_text(json.dumps(good))
    other = write_manifest(fleet.domains[:1], tmp_path / "other.csv")
    assert "is not the plan's manifest" in refused(manifest=other)
    plan_path.write_text(json.dumps(good)[:-20])
    assert refused().startswith(f"error: {plan_path}:1:") and "bad JSON" in refused()
    plan_path.write_text(json.dumps({**good, "format": "something-else"}))
    assert f"{plan_path}: not a usable cognito-fleet plan" in refused()
    edited = json.loads(json.dumps(good))
    edited["domains"][0]["current_certificate_arn"] = "arn:aws:acm:us-east-1:111122223333:certificate/x"
    plan_path.write_text(json.dumps(edited))
    assert "fingerprint does not match" in refused()
    del edited["domains"][0]["domain"]
    plan_path.write_text(json.dumps(edited))
    assert "domains[0].domain: expected a str" in refused()


def test_only_the_plans_writes_a_row_not_in_it_or_not_planned_is_not_written(make_fleet, tmp_path: Path) -> None:
    fleet: Fleet = make_fleet(accounts=2, regions=("us-east-1",), per_region=2)
    d = fleet.domains
    first = d[0].account_id
    plan_path, base = tmp_path / "P.json", ["--endpoint-url", fleet.box.endpoint, "--no-progress"]
    fleet.box.set_certificate_status(d[1].new_certificate_arn, "PENDING_VALIDATION")
    code, out = invoke("plan", str(fleet.manifest), "--out", str(plan_path), "--accounts", first, *base)
    assert code == 1 and finished(out)["counts"] == {"planned": 1, "failed": 1}, out
    fleet.box.set_certificate_status(d[1].new_certificate_arn, "ISSUED")  # fixed after the approval

    fleet.box.state.reset_counters()
    code, out = invoke("run", str(fleet.manifest), "--plan", str(plan_path), *base)
    assert code == 1, out
    report = by_domain(tmp_path / "manifest.report.csv")
    assert report[d[0].domain]["status"] == "pending"
    assert (report[d[1].domain]["status"], report[d[1].domain]["error_code"]) == (
        "drifted-since-plan",
        "NotPlannedToWrite",
    )
    assert "CertificateNotIssued" in report[d[1].domain]["error_message"]
    for x in d[2:]:  # the other account was not planned: nothing called for it
        assert (report[x.domain]["status"], report[x.domain]["error_code"]) == ("drifted-since-plan", "NotInPlan")
    assert set(fleet.box.state.writes) == {d[0].domain}
    assert fleet.box.state.calls["DescribeUserPoolDomain"] == 2  # the first account's rows only


def test_a_drifted_row_is_passed_over_by_the_canary_not_a_canary_failure(make_fleet, tmp_path: Path) -> None:
    fleet: Fleet = make_fleet(accounts=2, regions=("us-east-1",), per_region=2)
    d = fleet.domains
    plan_path, base = tmp_path / "P.json", ["--endpoint-url", fleet.box.endpoint, "--no-progress"]
    assert invoke("plan", str(fleet.manifest), "--out", str(plan_path), *base)[0] == 0
    move_out_of_band(fleet, 0)  # the first row of the first account: where the canary looks first
    fleet.box.state.reset_counters()
    code, out = invoke(
        "run", str(fleet.manifest), "--plan", str(plan_path), "--canary", "1", "--wait-interval", "0.1", *base
    )
    assert code == 1, out
    assert finished(out)["counts"] == {"verified": 1, "pending": 2, "drifted-since-plan": 1}
    assert finished(out).get("stop_reason") is None  # the canary (the account's next row) passed: the run went on
    assert set(fleet.box.state.writes) == {x.domain for x in d[1:]}


def test_plan_ages_read_in_days() -> None:
    assert span(timedelta(days=7)) == "7d" and span(timedelta(days=8, hours=2, minutes=5)) == "8d2h"
    assert span(timedelta(minutes=90)) == "1h30m" and span(timedelta(0)) == "0s"


def test_a_plan_edited_and_refingerprinted_after_approval_is_refused_when_pinned(make_fleet, tmp_path: Path) -> None:
    fleet: Fleet = make_fleet(accounts=2, regions=("us-east-1",), per_region=1)
    a, b = fleet.domains
    plan_path, base = tmp_path / "P.json", ["--endpoint-url", fleet.box.endpoint, "--no-progress"]
    fleet.box.set_certificate_status(b.new_certificate_arn, "PENDING_VALIDATION")  # b's account fails at plan time
    code, out = invoke("plan", str(fleet.manifest), "--out", str(plan_path), "--change-ref", "CHG-1234", *base)
    assert code == 1 and finished(out)["counts"] == {"planned": 1, "failed": 1}, out
    fleet.box.set_certificate_status(b.new_certificate_arn, "ISSUED")
    # The board approves the digest `report` shows, and the ticket is in the plan.
    code, md = invoke("report", str(plan_path))
    found = re.search(r"\*\*Plan file SHA-256:\*\* ([0-9a-f]{64})", md)
    assert code == 0 and found is not None, md
    approved = found.group(1)
    assert approved == hashlib.sha256(plan_path.read_bytes()).hexdigest()
    assert "**Change reference:** CHG-1234" in md and f"--plan-sha256 {approved}" in md
    original = plan_path.read_bytes()

    # After the approval: the failed account's row set to planned, the fingerprint recomputed.
    doc = json.loads(original)
    [entry] = [e for e in doc["domains"] if e["action"] == "failed"]
    entry.update(action="planned", error_code=None, error_message=None)
    plan_path.write_text(json.dumps(refingerprint(doc)))
    assert read_plan(plan_path).domains  # the edit passes the fingerprint: only the approved digest tells
    tampered = hashlib.sha256(plan_path.read_bytes()).hexdigest()
    fleet.box.state.reset_counters()
    code, out = invoke("run", str(fleet.manifest), "--plan", str(plan_path), "--plan-sha256", approved, *base)
    assert code == 2, out
    [line] = events(out)
    assert line["event"] == "error" and approved in str(line["message"]) and tampered in str(line["message"])
    assert sum(fleet.box.state.calls.values()) == 0 and not fleet.box.state.assume_role_calls  # nothing called
    assert not (tmp_path / "manifest.checkpoint.sqlite").exists() and not (tmp_path / "manifest.report.csv").exists()

    # The approved file, pinned (the digest as pasted: any case), applies as approved: b stays unwritten.
    plan_path.write_bytes(original)
    code, out = invoke("run", str(fleet.manifest), "--plan", str(plan_path), "--plan-sha256", approved.upper(), *base)
    assert code == 1, out
    check(out, "run")
    assert not [e for e in events(out) if e["event"] == "plan_not_pinned"]
    applied = started(out)["plan"]
    assert applied == {  # type: ignore[comparison-overlap]
        "path": str(plan_path),
        "sha256": approved,
        "plan_id": doc["plan_id"],
        "made_at": doc["made_at"],
        "pinned": True,
        "change_ref": "CHG-1234",
    }
    assert started(out)["change_ref"] == "CHG-1234"  # the plan's ticket: none given with the run
    assert set(fleet.box.state.writes) == {a.domain}
    run = json.loads((tmp_path / "manifest.report.run.json").read_text(encoding="utf-8"))
    assert run["plan"] == applied and run["change_ref"] == "CHG-1234"
    assert run["counts"] == {"pending": 1, "drifted-since-plan": 1}  # an object, not JSON text
    assert run["state"] == str((tmp_path / "manifest.checkpoint.sqlite").absolute())
    code, md = invoke("report", str(tmp_path / "manifest.report.csv"))
    assert code == 0 and "**Change reference:** CHG-1234" in md, md
    assert f"SHA-256 {approved} (pinned: matched --plan-sha256)" in md
    code, page = invoke("report", str(tmp_path / "manifest.report.csv"), "--format", "html")
    assert "<dt>Plan applied</dt>" in page and approved in page and "<dd>CHG-1234</dd>" in page


def test_a_version_1_plan_is_read_and_applied_only_pinned(make_fleet, tmp_path: Path) -> None:
    fleet: Fleet = make_fleet(accounts=1, regions=("us-east-1",), per_region=1)
    plan_path, base = tmp_path / "P.json", ["--endpoint-url", fleet.box.endpoint, "--no-progress"]
    assert invoke("plan", str(fleet.manifest), "--out", str(plan_path), *base)[0] == 0
    doc = json.loads(plan_path.read_text(encoding="utf-8"))
    del doc["change_ref"]
    pairs = sorted((d["domain"], d["current_certificate_arn"] or "") for d in doc["domains"])
    old = hashlib.sha256(json.dumps(pairs, separators=(",", ":")).encode()).hexdigest()
    plan_path.write_text(json.dumps({**doc, "version": 1, "fingerprint": old}))  # as cognito-fleet 0.x wrote it
    code, md = invoke("report", str(plan_path))
    assert code == 0 and "version 1" in md, md
    fleet.box.state.reset_counters()
    code, out = invoke("run", str(fleet.manifest), "--plan", str(plan_path), *base)
    assert code == 2 and "a version 1 plan" in out and sum(fleet.box.state.calls.values()) == 0, out
    digest = hashlib.sha256(plan_path.read_bytes()).hexdigest()
    code, out = invoke("run", str(fleet.manifest), "--plan", str(plan_path), "--plan-sha256", digest, *base)
    assert code == 0 and set(fleet.box.state.writes) == {fleet.domains[0].domain}, out


def test_a_plan_digest_is_checked_before_anything_and_goes_with_plan() -> None:
    code, out = invoke("run", "m.csv", "--plan-sha256", "0" * 64)
    assert code == 2 and "--plan-sha256 goes with --plan" in out
    code, out = invoke("run", "m.csv", "--plan", "P.json", "--plan-sha256", "abc")
    assert code == 2 and "is not a SHA-256" in out
    code, out = invoke("run", "m.csv", "--change-ref", "CHG-1\x1b[2J")
    assert code == 2 and "printable" in out


_ids = itertools.count(560000000000, 1000)


def test_a_plan_shows_both_certificates_issuer_serial_type_key_and_expiry(box: Sandbox, tmp_path: Path) -> None:
    """Issue 28 (item 2): a CA is distrusted; the plan to approve says, for every domain, what ACM says of the
    certificate it is on and of its target, in the file and in its Markdown and HTML records; one DescribeCertificate
    per distinct certificate."""
    old_id, healthy_id = str(next(_ids)), str(next(_ids))
    distrusted = seed_accounts(box.endpoint, [old_id], ["us-east-1"], 2, by=DISTRUSTED)  # one Old CA cert, shared
    healthy = seed_accounts(box.endpoint, [healthy_id], ["us-east-1"], 1, by=HEALTHY)
    manifest, plan_path = write_manifest(distrusted + healthy, tmp_path / "m.csv"), tmp_path / "P.json"
    box.state.reset_counters()
    code, out = invoke("plan", str(manifest), "--out", str(plan_path), "--endpoint-url", box.endpoint, "--no-progress")
    assert code == 0, out
    assert box.state.calls["acm:DescribeCertificate"] == 5  # 1 + 2 certificates in one account, 1 + 1 in the other

    seeder = Seeder(box.endpoint)
    acm = {a: seeder.client(seeder.session(a), "acm", "us-east-1") for a in (old_id, healthy_id)}
    lines = {e["domain"]: e for e in json.loads(plan_path.read_text())["domains"]}
    expected: dict[str, tuple[str, str]] = {}  # domain -> (current, target) as one line of "What will change"
    by_arn: dict[str, list[str]] = {}  # certificate -> its row of the certificates table
    for d, (was, will) in [(d, (OLD_CA, NEW_CA)) for d in distrusted] + [
        (d, (HEALTHY_CA, HEALTHY_CA)) for d in healthy
    ]:
        summaries = []
        for key, arn, issuer, days in (
            (
                "current_certificate",
                d.old_certificate_arn,
                was,
                DISTRUSTED.old_days if was == OLD_CA else HEALTHY.old_days,
            ),
            (
                "target_certificate",
                d.new_certificate_arn,
                will,
                DISTRUSTED.new_days if will == NEW_CA else HEALTHY.new_days,
            ),
        ):
            said = acm[d.account_id].describe_certificate(CertificateArn=arn)["Certificate"]  # as the admin reads it
            facts = lines[d.domain][key]
            assert facts["issuer"] == said["Issuer"] == issuer
            assert facts["serial"] == said["Serial"] and re.fullmatch(r"[0-9a-f]{2}(:[0-9a-f]{2})+", facts["serial"])
            assert (
                (facts["type"], facts["key_algorithm"])
                == (said["Type"], said["KeyAlgorithm"])
                == (
                    "IMPORTED",
                    "EC_prime256v1",
                )
            )
            expires = datetime.fromisoformat(facts["not_after"])
            assert expires == said["NotAfter"] and abs((expires - datetime.now(UTC)).days - days) <= 1
            when = expires.strftime("%Y-%m-%d %H:%M:%SZ")
            summaries.append(f"{issuer}; IMPORTED EC_prime256v1; expires {when}; serial {facts['serial']}")
            by_arn[arn] = [issuer, facts["serial"], "IMPORTED", "EC_prime256v1", when]
        expected[d.domain] = (summaries[0], summaries[1])

    code, md = invoke("report", str(plan_path))
    assert code == 0, md
    change = md.split("## What will change (3 writes)", 1)[1].split("## Failures", 1)[0]
    for domain, (current, target) in expected.items():
        [row] = [line for line in change.splitlines() if f"| {domain} |" in line]
        assert f"… ({current}) | " in row and f"… ({target}) | " in row and row.index(current) < row.index(target)
    table = md.split("## Certificates", 1)[1]
    assert "| Shown as | ARN | Issuer | Serial | Type | Key algorithm | Expires (NotAfter) |" in table
    for arn, cells in by_arn.items():
        assert f"| {arn} | {' | '.join(cells)} |" in table

    code, out = invoke("report", str(plan_path), "--format", "html", "--out", str(tmp_path / "plan.html"))
    assert code == 0, out
    page = (tmp_path / "plan.html").read_text()
    will_change = page.split('id="will-change"', 1)[1].split("</section>", 1)[0]
    assert all(f'<small class="facts">{s}</small>' in will_change for pair in expected.values() for s in pair)
    certificates = page.split('id="certificates"', 1)[1].split("</section>", 1)[0]
    for arn, cells in by_arn.items():
        row = certificates.split(arn, 1)[1].split("</tr>", 1)[0]
        assert all(cell in row for cell in cells)
