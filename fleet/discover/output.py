"""discover's outputs: the manifest of selected domains and the inventory (CSV + JSON Lines), sorted so that
reruns diff cleanly."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from fleet import csv_cells, manifest
from fleet.discover.inputs import Account
from fleet.discover.inventory import Inventory
from fleet.discover.select import SELECTED
from fleet.files import atomic_writer

INVENTORY_COLUMNS = (
    "account_id",
    "region",
    "user_pool_id",
    "domain",
    "certificate_arn",
    "issuer",
    "serial",
    "type",
    "key_algorithm",
    "not_after",
    "days_left",
    "domain_status",
    "edge",
    "edge_serial",
    "edge_issuer",
    "target_certificate_arn",
    "target_issuer",
    "target_not_after",
    "selection",
    "error_code",
    "error_message",
)


def write_outputs(
    inventory: Inventory, manifest_path: Path | None, inventory_path: Path, accounts: Sequence[Account], now: datetime
) -> int:
    """Write the manifest of selected domains (unless ``manifest_path`` is None: the inventory alone) and the
    inventory (CSV + JSONL); return the manifest's rows."""
    how = {a.account_id: a for a in accounts}
    found = inventory.sorted()
    rows = [
        manifest.Row(
            line=0,
            account_id=f.account_id,
            region=f.region,
            user_pool_id=f.user_pool_id,
            domain=f.domain,
            certificate_arn=f.target_certificate_arn,
            role_arn=how.get(f.account_id, Account(f.account_id)).role_arn,
            external_id=how.get(f.account_id, Account(f.account_id)).external_id,
        )
        for f in found
        if f.selection == SELECTED
    ]
    if manifest_path is not None:
        manifest.write(manifest_path, rows, roles=True)
    with atomic_writer(inventory_path) as csv_fh, atomic_writer(inventory_path.with_suffix(".jsonl")) as json_fh:
        writer = csv.DictWriter(csv_fh, fieldnames=INVENTORY_COLUMNS)
        writer.writeheader()
        for f in found:
            line = f.line(now)
            writer.writerow(dict(zip(line, csv_cells.row(line.values()), strict=True)))  # AWS text stays data
            json_fh.write(json.dumps(line, separators=(",", ":")) + "\n")
    return len(rows)
