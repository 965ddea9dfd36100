"""reconcile end to end (issue 28's "Done when"): a CA is distrusted; a settings file selects its domains; reconcile
moves exactly those, proves them at the edge, leaves the others untouched; a rerun writes nothing. And discover's
inventory alone, with each certificate's issuer, serial, type and expiry."""

from __future__ import annotations

import hashlib
import itertools
from pathlib import Path

from click.testing import CliRunner

from fleet.cli import main
from fleet.sandbox.seed import DISTRUSTED, HEALTHY, NEW_CA, OLD_CA, seed_accounts
from fleet.sandbox.server import Sandbox

from ..files import by_domain, events, finished

_ids = itertools.count(470000000000, 1000)


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def test_reconcile_moves_the_distrusted_ca_domains_only_and_a_rerun_writes_nothing(
    box: Sandbox, tmp_path: Path
) -> None:
    old_ids, healthy_ids = [str(next(_ids)) for _ in range(2)], [str(next(_ids))]
    distrusted = seed_accounts(box.endpoint, old_ids, ["eu-west-1"], 2, by=DISTRUSTED)
    healthy = seed_accounts(box.endpoint, healthy_ids, ["eu-west-1"], 2, by=HEALTHY)
    (tmp_path / "accounts.txt").write_text("\n".join(old_ids + healthy_ids) + "\n")
    config = tmp_path / "cognito-fleet.toml"
    config.write_text(
        f"""# what the platform team keeps in its repository
[defaults]
endpoint-url = "{box.endpoint}"
log-format = "json"

[reconcile]
issuer = ["{OLD_CA}"]
auto = true
accounts = "accounts.txt"          # relative to this file
regions = ["eu-west-1"]
checkpoint = "state/fleet.checkpoint.sqlite"
canary = 2
wait = true
wait-interval = 0.05
"""
    )
    (tmp_path / "state").mkdir()
    box.state.reset_counters()

    # The command line wins: a canary of 1, and no waiting (the rest end pending: written, not yet proven).
    code, out = invoke("reconcile", "--config", str(config), "--canary", "1", "--no-wait")

    assert code == 0, out
    assert box.state.calls["UpdateUserPoolDomain"] == len(distrusted)  # the healthy ones: 0 writes
    for d in distrusted:
        assert box.certificate_of(d.domain) == d.new_certificate_arn
    for d in healthy:
        assert box.certificate_of(d.domain) == d.old_certificate_arn
    report = by_domain(tmp_path / "state" / "fleet.report.csv")
    assert set(report) == {d.domain for d in distrusted}
    assert sorted(r["status"] for r in report.values()) == ["pending", "pending", "pending", "verified"]
    started = [e for e in events(out) if e["event"] == "run_started" and e["command"] == "run"]
    assert (started[0]["options"]["canary"], started[0]["options"]["wait"]) == (1, False)  # type: ignore[index]
    recorded = started[0]["settings_file"]
    assert recorded["path"] == str(config) and len(recorded["sha256"]) == 64  # type: ignore[index]
    assert "canary" not in recorded["options"] and "issuer" in recorded["options"]  # type: ignore[index]
    inventory = by_domain(tmp_path / "state" / "fleet.inventory.csv")
    assert {inventory[d.domain]["selection"] for d in healthy} == {"other-issuer"}
    assert {inventory[d.domain]["target_issuer"] for d in distrusted} == {NEW_CA}
    # The replacements expire before the distrusted certificates: selected by issuer, they need not outlive them.
    assert all(inventory[d.domain]["target_not_after"] < inventory[d.domain]["not_after"] for d in distrusted)

    # The next scheduled run (the file's wait = true): the moved domains are no longer selected, but the ones
    # not yet proven are carried over and proven at the edge, with no second write.
    box.state.reset_counters()
    code, out = invoke("reconcile", "--config", str(config))
    assert code == 0, out
    assert box.state.calls["UpdateUserPoolDomain"] == 0
    report = by_domain(tmp_path / "state" / "fleet.report.csv")
    assert len(report) == 3 and set(report) < {d.domain for d in distrusted}  # the canary was proven already
    assert {(r["status"], r["edge"]) for r in report.values()} == {("verified", "served")}
    assert "3 written earlier and not yet proven" in out

    code, again = invoke("reconcile", "--config", str(config))
    assert code == 0, again
    assert box.state.calls["UpdateUserPoolDomain"] == 0
    said = [e["message"] for e in events(again) if e["event"] == "message"]
    assert len(said) == 1 and said[0].startswith("reconcile: nothing to do"), said


def test_discover_without_map_or_auto_writes_the_inventory_alone(box: Sandbox, tmp_path: Path) -> None:
    ids = [str(next(_ids)) for _ in range(2)]
    distrusted = seed_accounts(box.endpoint, ids[:1], ["eu-west-1"], 1, by=DISTRUSTED)
    healthy = seed_accounts(box.endpoint, ids[1:], ["eu-west-1"], 1, by=HEALTHY)
    (tmp_path / "accounts.txt").write_text("\n".join(ids) + "\n")
    config = tmp_path / "cognito-fleet.toml"
    config.write_text(f'[discover]\nregions = "us-east-1"\naccounts = "accounts.txt"\nissuer = ["{OLD_CA}"]\n')
    inventory = tmp_path / "inventory.csv"
    box.state.reset_counters()

    code, out = invoke(
        "discover", "--config", str(config), "--regions", "eu-west-1", "--inventory", str(inventory),
        "--endpoint-url", box.endpoint, "--log-format", "json",
    )  # fmt: skip

    assert code == 0, out
    assert box.state.calls["UpdateUserPoolDomain"] == 0
    assert (tmp_path / "inventory.jsonl").read_text().count("\n") == 2
    lines = by_domain(inventory)
    old, other = lines[distrusted[0].domain], lines[healthy[0].domain]
    assert (old["issuer"], old["type"], old["key_algorithm"], old["selection"]) == (
        OLD_CA, "IMPORTED", "EC_prime256v1", "matched",
    )  # fmt: skip
    assert (other["issuer"], other["selection"]) == ("Healthy CA", "other-issuer")
    for line in (old, other):
        assert line["serial"].count(":") >= 7 and line["not_after"] and line["days_left"]
        assert line["edge"] == "current" and line["edge_serial"] == line["serial"]
        assert line["edge_issuer"] == line["issuer"]  # O and CN are the same name in the sandbox's certificates
        assert line["target_certificate_arn"] == ""
    assert "manifest" not in finished(out) and "2 custom domains, 1 match the selection" in out


def test_plan_only_saves_a_plan_and_plan_applies_exactly_it(box: Sandbox, tmp_path: Path) -> None:
    ids = [str(next(_ids))]
    (moving,) = seed_accounts(box.endpoint, ids, ["us-east-1"], 1, by=DISTRUSTED)
    (tmp_path / "accounts.txt").write_text(ids[0] + "\n")
    config = tmp_path / "cognito-fleet.toml"
    config.write_text(
        f'[reconcile]\nendpoint-url = "{box.endpoint}"\nlog-format = "json"\naccounts = "accounts.txt"\n'
        f'regions = "us-east-1"\nissuer = ["{OLD_CA}"]\nauto = true\ncheckpoint = "fleet.checkpoint.sqlite"\n'
    )
    box.state.reset_counters()

    code, out = invoke("reconcile", "--config", str(config), "--plan-only")
    assert code == 0, out
    plan = tmp_path / "fleet.plan.json"
    assert plan.is_file() and box.state.calls["UpdateUserPoolDomain"] == 0
    assert box.certificate_of(moving.domain) == moving.old_certificate_arn
    said = [e["message"] for e in events(out) if e["event"] == "message"]
    assert said[-1].startswith(f"reconcile: plan saved: {plan}")

    digest = hashlib.sha256(plan.read_bytes()).hexdigest()
    assert said[-1].endswith(f"--plan {plan} --plan-sha256 {digest}")

    code, out = invoke("reconcile", "--config", str(config), "--plan", str(plan), "--plan-sha256", "0" * 64)
    assert code == 2 and box.state.calls["UpdateUserPoolDomain"] == 0, out  # not the approved file: nothing done

    code, out = invoke(
        "reconcile", "--config", str(config), "--plan", str(plan), "--plan-sha256", digest, "--wait",
        "--wait-interval", "0.05",
    )  # fmt: skip
    assert code == 0, out
    assert box.state.calls["UpdateUserPoolDomain"] == 1
    assert box.certificate_of(moving.domain) == moving.new_certificate_arn
    started = next(e for e in events(out) if e["event"] == "run_started")
    assert started["plan"]["path"] == str(plan)  # type: ignore[index]
