"""The watcher's verdict (`plan --check`): read-only, it exits 1 while any domain is off its target or its edge
does not serve the target, naming each.

It judges a plan's report: ``planned`` is a domain Cognito has on another certificate than its target;
``unchanged`` is on it, and then its edge must serve it (``served``; ``unchecked`` with --no-edge-check, where
Cognito's word is all there is). Failed rows fail the plan already. A domain a rollback holds is where a person
put it: not a finding (its status says ``held``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fleet.observe.facts import DomainFacts
from fleet.outcome import Edge, Status

_PROVEN = frozenset({Edge.SERVED, Edge.UNCHECKED})


def findings(domains: Sequence[DomainFacts]) -> list[dict[str, Any]]:
    """Each kind of finding with its domains (the notification's reasons and the command's lines)."""
    off = [d.domain for d in domains if d.status == Status.PLANNED]
    edge = [d for d in domains if d.status == Status.UNCHANGED and d.edge not in _PROVEN]
    out: list[dict[str, Any]] = []
    if off:
        out.append({"kind": "off-target", "summary": f"{len(off)} domains off their target", "domains": off})
    if edge:
        seen = ", ".join(sorted({str(d.edge or "not looked at") for d in edge}))
        out.append(
            {
                "kind": "edge",
                "summary": f"{len(edge)} domains on their target whose edge does not serve it ({seen})",
                "domains": [d.domain for d in edge],
            }
        )
    return out


def lines(found: Sequence[dict[str, Any]], domains: Sequence[DomainFacts]) -> list[str]:
    """What `plan --check` prints: one line per domain found, then the verdict."""
    by_name = {d.domain: d for d in domains}
    out = []
    for finding in found:
        for name in finding["domains"]:
            d = by_name.get(name)
            if d is None:  # reconcile's selected domain with nowhere to go: not in the checked manifest
                out.append(f"check: {name}: must move and has nowhere to go ({finding['why'][name]})")
                continue
            what = "off its target" if finding["kind"] == "off-target" else f"edge serves {d.edge or 'unknown'}"
            out.append(f"check: {name} ({d.account}/{d.region}): {what}")
    failed = sum(d.status == Status.FAILED for d in domains)
    if found or failed:
        total = sum(len(f["domains"]) for f in found) + failed
        out.append(f"check: {total} domains need attention (exit 1)" + (f"; {failed} failed" if failed else ""))
    else:
        out.append(f"check: all {len(domains)} domains on their target and served at their edge")
    return out


def nowhere(domains: Sequence[tuple[str, str]]) -> list[dict[str, Any]]:
    """reconcile's selected domains that must move and cannot (no candidate, or the mapped one rejected): a finding
    that names each with why."""
    if not domains:
        return []
    why = "; ".join(f"{d}: {reason}" for d, reason in domains[:10]) + ("; ..." if len(domains) > 10 else "")
    return [
        {
            "kind": "nowhere",
            "summary": f"{len(domains)} selected domains must move and have nowhere to go ({why})",
            "domains": [d for d, _ in domains],
            "why": dict(domains),
        }
    ]
