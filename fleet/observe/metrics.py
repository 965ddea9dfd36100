"""Prometheus metrics of a run, for alerting: a textfile for node_exporter's textfile collector (written
atomically) and/or a push to a Pushgateway, both by ``prometheus_client``.

Names follow cert-manager's (``certmanager_certificate_expiration_timestamp_seconds``,
``certmanager_certificate_ready_status{condition}``), the ones on-call teams already alert on: snake_case, times
in seconds since the epoch with a ``_seconds`` suffix, a ``status`` label whose series is 1 for the current one.
Unlike cert-manager, the other statuses get no 0 series: a domain has one of nine statuses, and at fleet scale
(10,000 domains) nine series each would be 90,000 series for one fact; a rule matches ``== 1`` (docs/metrics.md).

Every series carries the job's identity (``command``, ``manifest``, ``shard``): two manifests' textfiles in one
collector directory, or a run and a watcher pushing to one Pushgateway, never collide.
"""

from __future__ import annotations

import collections
from collections.abc import Iterator
from pathlib import Path

from prometheus_client import CollectorRegistry, push_to_gateway, write_to_textfile
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from fleet.observe.facts import RunFacts

JOB = "cognito_fleet"  # the Pushgateway's job name
DOMAIN = ("account", "region", "domain")
# Every metric the tool exports, with its help (docs/metrics.md lists them; tests/checks/test_alert_rules.py checks
# that the example alert rules name only these).
METRICS: dict[str, tuple[str, tuple[str, ...]]] = {
    "cognito_fleet_domain_status": (
        "1 for the domain's current status (the report's status column)",
        (*DOMAIN, "status"),
    ),
    "cognito_fleet_edge_status": (
        "1 for what the domain's edge serves: served (the target), old, other, unreachable, unchecked",
        (*DOMAIN, "status"),
    ),
    "cognito_fleet_certificate_expiration_timestamp_seconds": (
        "NotAfter of the certificate Cognito has the domain on",
        DOMAIN,
    ),
    "cognito_fleet_edge_certificate_expiration_timestamp_seconds": (
        "NotAfter of the certificate the domain's edge served (TLS handshake, SNI = the domain)",
        DOMAIN,
    ),
    "cognito_fleet_domains": ("Domains by status", ("status",)),
    "cognito_fleet_last_run_timestamp_seconds": ("When the last run ended", ()),
    "cognito_fleet_last_run_exit_code": ("The last run's exit code (0 ok, 1 failed rows or check, 2, 3, 75)", ()),
    "cognito_fleet_last_success_timestamp_seconds": ("When a run of this job last exited 0", ()),
    "cognito_fleet_fleet_held": ("1 while an operator holds the fleet (`cognito-fleet hold`): nothing is written", ()),
}
IDENTITY = ("command", "manifest", "shard")


def registry(facts: RunFacts) -> CollectorRegistry:
    """A registry of its own (never the process's default one) holding this run's metrics."""
    reg = CollectorRegistry(auto_describe=False)
    reg.register(_Collector(facts))
    return reg


class _Collector(Collector):
    """The run's facts as metric families, built when collected: prometheus_client's way for an exporter of
    someone else's data (a labelled Gauge child per series took 3.8 s to write 10,000 domains; this, 0.5 s)."""

    def __init__(self, facts: RunFacts) -> None:
        self.facts = facts

    def collect(self) -> Iterator[Metric]:
        facts = self.facts
        job = [facts.identity[k] for k in IDENTITY]
        families = {
            name: GaugeMetricFamily(name, text, labels=[*IDENTITY, *labels]) for name, (text, labels) in METRICS.items()
        }
        status, edge = families["cognito_fleet_domain_status"], families["cognito_fleet_edge_status"]
        expiry = families["cognito_fleet_certificate_expiration_timestamp_seconds"]
        edge_expiry = families["cognito_fleet_edge_certificate_expiration_timestamp_seconds"]
        counts: collections.Counter[str] = collections.Counter()
        for d in facts.domains:
            where = [*job, d.account, d.region, d.domain]
            counts[d.status] += 1
            status.add_metric([*where, d.status], 1)
            if d.edge:
                edge.add_metric([*where, d.edge], 1)
            if d.certificate_not_after is not None:
                expiry.add_metric(where, d.certificate_not_after)
            if d.edge_not_after is not None:
                edge_expiry.add_metric(where, d.edge_not_after)
        for name, value in sorted(counts.items()):
            families["cognito_fleet_domains"].add_metric([*job, name], value)
        families["cognito_fleet_last_run_timestamp_seconds"].add_metric(job, facts.finished_at)
        families["cognito_fleet_last_run_exit_code"].add_metric(job, facts.exit_code)
        if facts.last_success is not None:
            families["cognito_fleet_last_success_timestamp_seconds"].add_metric(job, facts.last_success)
        families["cognito_fleet_fleet_held"].add_metric(job, 1 if facts.held else 0)
        yield from families.values()


def write_file(path: Path, facts: RunFacts) -> None:
    """The textfile, whole or not at all: prometheus_client writes a temporary file beside it and renames it (the
    collector never reads half a file). Name it ``*.prom`` in the collector's directory."""
    write_to_textfile(str(path), registry(facts))


def push(url: str, facts: RunFacts, timeout: float = 10.0) -> None:
    """PUT the run's metrics to a Pushgateway (job ``cognito_fleet``, grouped by the job's identity): this group's
    previous metrics are replaced whole, so a domain gone from the manifest leaves no stale series."""
    grouping = {k: v for k, v in facts.identity.items() if v}
    push_to_gateway(url, job=JOB, registry=registry(facts), grouping_key=grouping, timeout=timeout)


def previous(path: Path | None, name: str, identity: dict[str, str]) -> float | None:
    """A value the last run of this job left in its textfile (``path``), e.g. its last success; None if the file
    is absent, unreadable, or has no such sample for this job."""
    if path is None or not path.exists():
        return None
    try:
        families = list(text_string_to_metric_families(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    for family in families:
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k, "") == v for k, v in identity.items()):
                return float(sample.value)
    return None
