"""Reading what the tool writes (reports, manifests, inventories): one helper for every test."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any


def csv_rows(path: Path) -> list[dict[str, str]]:
    """Every record of a CSV file with a header."""
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def by_domain(path: Path) -> dict[str, dict[str, str]]:
    """A report (or manifest) keyed by its domain column."""
    return {r["domain"]: r for r in csv_rows(path)}


def events(text: str) -> list[dict[str, object]]:
    """The JSON events of a command's output (under cron every line of stdout and stderr is one)."""
    out = []
    for line in text.splitlines():
        if line.strip():
            out.append(json.loads(line))  # a line that is not JSON fails here
    return out


def finished(text: str) -> dict[str, object]:
    """The one run_finished event of a command's output."""
    found = [e for e in events(text) if e["event"] == "run_finished"]
    assert len(found) == 1, text
    return found[0]


def samples(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Every sample of a Prometheus text exposition by metric name (the library's parser: a malformed file fails
    here)."""
    from prometheus_client.parser import text_string_to_metric_families

    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.setdefault(s.name, []).append((dict(s.labels), s.value))
    return out


def per_domain(found: dict[str, list[tuple[dict[str, str], float]]], name: str) -> dict[str, Any]:
    """One metric's samples by their domain label: (status label or None, value)."""
    return {labels["domain"]: (labels.get("status"), value) for labels, value in found.get(name, [])}
