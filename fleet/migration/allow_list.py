"""Manifest accounts outside the operator's allow-list (validate/plan ``--allowed-accounts``, plan ``--organization``).

The hub sends every account it assumes a role in the external id all accounts share, so a manifest row naming an
account outside the estate (a typo, a pasted row) is worth a warning before any run. The hub policy's
aws:ResourceOrgID condition (iam/hub-policy.json) refuses such an AssumeRole; this names the rows beforehand.
"""

from __future__ import annotations

from collections.abc import Iterable

SHOWN = 20


def outside(accounts: Iterable[str], allowed: Iterable[str]) -> list[str]:
    """The accounts not in ``allowed``, sorted."""
    return sorted(set(accounts) - set(allowed))


def warning(accounts: list[str], source: str) -> str:
    listed = ", ".join(accounts[:SHOWN]) + (f" and {len(accounts) - SHOWN} more" if len(accounts) > SHOWN else "")
    return (
        f"{len(accounts)} manifest account(s) not in {source}: {listed}; a run would assume a role there and send "
        "it the external id: remove those rows or correct the list"
    )
