"""Reading what the tool writes (reports, manifests, inventories): one helper for every test."""

from __future__ import annotations

import csv
from pathlib import Path


def csv_rows(path: Path) -> list[dict[str, str]]:
    """Every record of a CSV file with a header."""
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def by_domain(path: Path) -> dict[str, dict[str, str]]:
    """A report (or manifest) keyed by its domain column."""
    return {r["domain"]: r for r in csv_rows(path)}
