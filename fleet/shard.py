"""Taking some of a manifest's rows: a shard (``--shard I/N``) or a filter (``--accounts``, ``--regions`` ...).

Shards: a deterministic split by account, so N machines each take a disjoint share.

An account's rows always land in the same shard (its role is assumed once, its quota is shared), and the
choice depends only on the account id (SHA-256), not on the manifest's order or size.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass

from fleet.manifest import Row

_SPEC = re.compile(r"(\d+)/(\d+)")


@dataclass(frozen=True, slots=True)
class Shard:
    index: int  # 0-based
    count: int

    @classmethod
    def parse(cls, spec: str) -> Shard:
        m = _SPEC.fullmatch(spec.strip())
        if not m or not 0 <= int(m.group(1)) < int(m.group(2)):
            raise ValueError(f"{spec!r}: expected I/N with 0 <= I < N (e.g. 0/4)")
        return cls(int(m.group(1)), int(m.group(2)))

    def owns(self, account_id: str) -> bool:
        digest = hashlib.sha256(account_id.encode()).digest()
        return int.from_bytes(digest[:8], "big") % self.count == self.index

    def select(self, rows: Iterable[Row]) -> list[Row]:
        return [r for r in rows if self.owns(r.account_id)]

    @property
    def suffix(self) -> str:
        return f"shard-{self.index}-of-{self.count}"


@dataclass(frozen=True, slots=True)
class RowFilter:
    """Rows of some accounts and regions, minus some accounts (plan/run --accounts, --exclude-accounts,
    --regions): selects rows the way --shard does, without editing the manifest or touching the state."""

    accounts: frozenset[str] | None = None
    exclude: frozenset[str] = frozenset()
    regions: frozenset[str] | None = None

    def select(self, rows: Iterable[Row]) -> list[Row]:
        return [
            r
            for r in rows
            if (self.accounts is None or r.account_id in self.accounts)
            and r.account_id not in self.exclude
            and (self.regions is None or r.region in self.regions)
        ]
