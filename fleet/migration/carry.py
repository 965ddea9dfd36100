"""What a scheduled reconcile carries from one run to the next: domains written but not yet proven.

A domain reconcile moved is, the next time it looks, on the replacement: discover no longer selects it. Left
``pending`` (no --wait, or Cognito still distributing) it would never be proven at the edge, and the rerun would
say "nothing to do" too soon. So the previous manifest's rows that the state holds as written and unproven, for
the same target, go into the new manifest, and the run proves them (no second write: they are on their target).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from fleet.manifest import Row, parse, write
from fleet.outcome import Status
from fleet.state.checkpoint import Checkpoint

UNPROVEN = frozenset({Status.PENDING, Status.IN_FLIGHT})


def unproven(manifest_path: Path, state_path: Path) -> list[Row]:
    """Rows of the previous manifest whose domain the state holds as written and not yet proven."""
    if not manifest_path.is_file() or not state_path.is_file():
        return []
    previous = parse(manifest_path)
    with Checkpoint(state_path, create=False) as state:
        out = []
        for row in previous.rows:
            outcome = state.get(row.domain)
            if outcome is not None and outcome.status in UNPROVEN and outcome.certificate_arn == row.certificate_arn:
                out.append(row)
        return out


def carry(manifest_path: Path, rows: Sequence[Row]) -> int:
    """Add to the manifest (as discover wrote it) the ``rows`` whose domain it lacks; how many were added."""
    current = parse(manifest_path)
    have = {r.domain for r in current.rows}
    extra = [r for r in rows if r.domain not in have]
    if extra:
        merged = sorted([*current.rows, *extra], key=lambda r: (r.account_id, r.region, r.domain, r.user_pool_id))
        write(manifest_path, merged, roles=True)
    return len(extra)
