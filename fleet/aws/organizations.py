"""The hub's Organizations listing: the ACTIVE accounts of the organization, or of some OUs and their children.

Used by `discover --organization` (the fleet) and `plan --organization` (the allow-list). The hub's own calls,
through the run's calls layer (limits, retries, outages); errors are raised as they come, for the caller to word.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from fleet.aws.calls import Calls
from fleet.aws.credentials import Hub


async def active_accounts(hub: Hub, calls: Calls, ous: Sequence[str], exclude: Iterable[str]) -> list[str]:
    """ACTIVE account ids, sorted: of the whole organization (ListAccounts), or of ``ous`` and every OU below."""
    org = await hub.client("organizations")
    limits = calls.limits.for_region()
    found: dict[str, dict[str, Any]] = {}
    if not ous:
        found.update({a["Id"]: a for a in await calls.pages(org, "ListAccounts", limits, "org", "Accounts")})
    pending = list(ous)
    while pending:
        parent = pending.pop()
        accounts = await calls.pages(org, "ListAccountsForParent", limits, "org", "Accounts", ParentId=parent)
        found.update({a["Id"]: a for a in accounts})
        units = await calls.pages(
            org, "ListOrganizationalUnitsForParent", limits, "org", "OrganizationalUnits", ParentId=parent
        )
        pending.extend(ou["Id"] for ou in units)
    skip = set(exclude)
    return [i for i, a in sorted(found.items()) if (a.get("State") or a.get("Status")) == "ACTIVE" and i not in skip]
