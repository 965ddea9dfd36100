"""Proof at the edge: a domain is verified only when a TLS handshake with its edge (SNI = the domain) shows the
target certificate. Against the sandbox's edge (TLS on loopback, the ACM certificate each domain is on, the previous
one until the update has spread), plus the serial formats as pure logic."""

from __future__ import annotations

import datetime
import socket
from pathlib import Path

import pytest

from fleet.aws.edge import Served, compare, format_serial, is_certificate, parse_serial, split_address
from fleet.outcome import Edge, reason_kind
from fleet.sandbox.seed import Seeder
from tests.conftest import Fleet
from tests.files import by_domain

# --- the serial formats (pure) -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("0c:55:3d:5f", 0x0C553D5F),  # AWS: lower-case hex bytes joined by colons
        ("0C:55:3D:5F", 0x0C553D5F),
        ("00:ff", 255),  # a DER integer's leading zero byte
        ("206101423", 206101423),  # moto: the decimal integer as a string
        ("1f3a", 0x1F3A),  # bare hex (letters, no colon)
        (12345, 12345),
    ],
)
def test_serials_parse_from_every_form_acm_writes(text: object, value: int) -> None:
    assert parse_serial(text) == value


@pytest.mark.parametrize("bad", ["", "0c:5g", "0c::55", "12-34", "serial", "abc:1234"])
def test_a_serial_that_is_none_of_them_is_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_serial(bad)


def test_a_serial_written_as_aws_does_reads_back() -> None:
    for n in (1, 255, 256, 2**159 + 12345):
        text = format_serial(n)
        assert text == text.lower() and all(len(p) == 2 for p in text.split(":"))
        assert parse_serial(text) == n


def test_the_served_leaf_matches_by_serial_and_not_after() -> None:
    when = datetime.datetime(2027, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
    served = Served(0xABCDEF, when)
    target = {"Serial": "ab:cd:ef", "NotAfter": when}
    previous = {"Serial": "11", "NotAfter": when}
    assert is_certificate(served, target) and compare(served, target, previous) is Edge.SERVED
    assert compare(served, {**target, "NotAfter": when + datetime.timedelta(days=1)}, None) is Edge.OTHER
    assert compare(Served(11, when), target, previous) is Edge.OLD
    assert compare(Served(12, when), target, previous) is Edge.OTHER
    assert not is_certificate(served, {"NotAfter": when})  # no serial: never a match


def test_edge_address_and_reason_kinds() -> None:
    assert split_address("127.0.0.1:8443") == ("127.0.0.1", 8443)
    assert split_address("[::1]:443") == ("::1", 443)
    for bad in ("localhost", ":443", "host:0", "host:http"):
        with pytest.raises(ValueError):
            split_address(bad)
    message = "edge not reached: connect failed: Connection refused; edge 127.0.0.1:1, SNI a.example.com, 3 tries"
    assert reason_kind(message) == "connect failed: Connection refused"


# --- against the sandbox's edge ----------------------------------------------------------------------------------


def _acm(fleet: Fleet, account: str) -> object:
    seeder = Seeder(fleet.box.endpoint)
    return seeder.session(account).client("acm", region_name="us-east-1", endpoint_url=fleet.box.endpoint)


def test_acm_writes_serial_as_aws_and_the_edge_serves_that_certificate(make_fleet) -> None:
    fleet: Fleet = make_fleet(accounts=1, regions=("us-east-1",), per_region=1)
    d = fleet.domains[0]
    described = _acm(fleet, d.account_id).describe_certificate(CertificateArn=d.old_certificate_arn)["Certificate"]  # type: ignore[attr-defined]
    assert ":" in described["Serial"] and described["Serial"] == described["Serial"].lower()
    import anyio

    from fleet.aws.edge import EdgeChecker, EdgeSettings, NotSeen
    from fleet.clock import SystemClock

    checker = EdgeChecker(EdgeSettings(address=fleet.box.edge_address, tries=1), SystemClock())
    served = anyio.run(checker.look, d.domain, None)
    assert isinstance(served, Served) and is_certificate(served, described)
    unknown = anyio.run(checker.look, "nobody.example.org", None)
    assert isinstance(unknown, NotSeen) and "TLS handshake failed" in unknown.reason  # an unknown name: none served
    assert fleet.box.state.faults["edge_refused"] == 1


def test_wait_verifies_only_once_the_edge_serves_the_target_and_a_stuck_edge_stays_pending(make_fleet) -> None:
    fleet: Fleet = make_fleet(accounts=2, regions=("us-east-1",), per_region=2)
    stuck = fleet.domains[0]
    # Cognito says ACTIVE after 0.3 s; the edge switches 1 s later; one edge never switches.
    fleet.box.state.configure(propagation_delay=0.3, edge_lag=1.0, edge_stuck={stuck.domain})
    result = fleet.run(mode=_wait(timeout=4.0))
    report = by_domain(fleet.report)
    assert result.counts == {"verified": 3, "pending": 1} and result.exit_code == 0
    assert (report[stuck.domain]["status"], report[stuck.domain]["edge"]) == ("pending", "old")
    assert "the edge still serves the previous certificate" in report[stuck.domain]["error_message"]
    for d in fleet.domains[1:]:
        row = report[d.domain]
        assert (row["status"], row["edge"], row["error_message"]) == ("verified", "served", "")
        assert row["edge_not_after"].startswith(str(datetime.datetime.now(datetime.UTC).year + 1))
        # Seen on the old certificate first (ACTIVE at 0.3 s, the edge at 1.3 s): verified only after the switch.
        assert fleet.box.state.edge_handshakes[d.domain] >= 2
    assert fleet.box.state.edge_handshakes[stuck.domain] >= 3  # polled until --wait-timeout
    assert any(line.startswith("edge: ") and "old=1" in line and "served=3" in line for line in result.lines())


def test_an_edge_on_another_certificate_is_other(make_fleet) -> None:
    fleet: Fleet = make_fleet(accounts=1, regions=("us-east-1",), per_region=1)
    d = fleet.domains[0]
    # Someone else moved the domain to X while its edge kept serving the old certificate: the tool's "previous"
    # is X, so what the edge serves is neither the target nor the previous one.
    other = fleet.import_certificate(d.account_id, [d.domain])
    fleet.box.state.configure(edge_stuck={d.domain})
    fleet.cognito(d.account_id, d.region).update_user_pool_domain(
        Domain=d.domain, UserPoolId=d.user_pool_id, CustomDomainConfig={"CertificateArn": other}
    )
    result = fleet.run(mode=_wait(timeout=0.5))
    row = by_domain(fleet.report)[d.domain]
    assert result.counts == {"pending": 1} and (row["edge"], row["previous_certificate_arn"]) == ("other", other)
    assert "another certificate" in row["error_message"]


def test_an_unreachable_edge_ends_pending_after_its_tries_and_the_summary_names_the_way_out(make_fleet) -> None:
    fleet: Fleet = make_fleet(accounts=1, regions=("us-east-1",), per_region=2)
    with socket.socket() as closed:  # a port nobody listens on: connection refused
        closed.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{closed.getsockname()[1]}"
    result = fleet.run(mode=_wait(timeout=60.0), edge={"address": address, "tries": 3, "retry_spacing": 0.2})
    assert result.counts == {"pending": 2} and result.exit_code == 0  # never failed, never held for --wait-timeout
    for row in by_domain(fleet.report).values():
        assert (row["status"], row["edge"], row["error_code"]) == ("pending", "unreachable", "EdgeUnreachable")
        assert "connect failed" in row["error_message"] and "3 tries" in row["error_message"]
    warning = [line for line in result.lines() if "could not be reached" in line]
    assert len(warning) == 1 and "2 edges" in warning[0] and "--no-edge-check" in warning[0]


def test_no_edge_check_verifies_on_cognitos_word_and_warns_once(make_fleet) -> None:
    fleet: Fleet = make_fleet(accounts=1, regions=("us-east-1",), per_region=2)
    fleet.box.state.configure(edge_stuck={d.domain for d in fleet.domains})  # the edge would never prove it
    result = fleet.run(mode=_wait(timeout=5.0), edge={"check": False})
    assert result.counts == {"verified": 2}
    assert {row["edge"] for row in by_domain(fleet.report).values()} == {"unchecked"}
    assert not fleet.box.state.edge_handshakes
    assert sum("edge not checked (--no-edge-check)" in line for line in result.lines()) == 1


def test_the_next_run_converges_a_pending_edge_without_writing(make_fleet) -> None:
    fleet: Fleet = make_fleet(accounts=1, regions=("us-east-1",), per_region=2)
    late = fleet.domains[0]
    fleet.box.state.configure(edge_stuck={late.domain})
    assert fleet.run().counts == {"pending": 2}  # no --wait: written rows end pending
    assert fleet.run().counts == {"verified": 1, "pending": 1}  # the next run: ACTIVE, and one look at each edge
    assert by_domain(fleet.report)[late.domain]["edge"] == "old"
    fleet.box.state.configure(edge_stuck=set())  # the edge has switched meanwhile
    fleet.box.state.reset_counters()
    second = fleet.run()
    report = by_domain(fleet.report)
    assert second.counts == {"verified": 2} and not fleet.box.state.writes
    assert (report[late.domain]["status"], report[late.domain]["edge"]) == ("verified", "served")
    # The domain proven at the edge before is not looked at again.
    assert set(fleet.box.state.edge_handshakes) == {late.domain}


def test_plan_shows_what_each_edge_serves_and_until_when(make_fleet, tmp_path: Path) -> None:
    from fleet.migration.pipeline import plan

    fleet: Fleet = make_fleet(accounts=1, regions=("us-east-1",), per_region=2)
    d = fleet.domains[0]
    old = _acm(fleet, d.account_id).describe_certificate(CertificateArn=d.old_certificate_arn)["Certificate"]  # type: ignore[attr-defined]
    result = plan(fleet.manifest, tmp_path / "plan.csv", fleet.settings())
    assert result.counts == {"planned": 2}
    for row in by_domain(tmp_path / "plan.csv").values():
        assert row["edge"] == "old"  # clients are served the certificate the plan would replace
        assert row["edge_not_after"] == old["NotAfter"].strftime("%Y-%m-%dT%H:%M:%SZ")
    assert not fleet.box.state.writes


def _wait(timeout: float) -> object:
    from fleet.migration.row import Mode

    return Mode(wait=True, wait_timeout=timeout, wait_interval=0.1)
