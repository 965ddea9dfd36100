"""The example alert rules (docs/alert-rules.yml) parse, and name only metrics the tool exports."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from fleet.observe import metrics

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "docs" / "alert-rules.yml"


def exported(expr: str) -> set[str]:
    """The metric names an expression uses (cognito_fleet_*; PromQL functions and keywords are not ours)."""
    return set(re.findall(r"\bcognito_fleet_[a-z_]+\b", expr))


def test_example_alert_rules_parse_and_name_only_exported_metrics() -> None:
    document = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    rules = [rule for group in document["groups"] for rule in group["rules"]]
    names = {rule["alert"] for rule in rules}
    assert {"CognitoFleetCertificateExpiringNotVerified", "CognitoFleetDomainFailed", "CognitoFleetNoSuccessfulRun",
            "CognitoFleetHeld"} <= names  # fmt: skip
    used: set[str] = set()
    for rule in rules:
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule
        assert rule["labels"]["severity"] in ("warning", "critical") and rule["annotations"]["summary"]
        used |= exported(rule["expr"])
        assert exported(rule["expr"]), f"{rule['alert']} names none of the tool's metrics"
    assert used <= set(metrics.METRICS), used - set(metrics.METRICS)
    # The check sees a misspelt metric (it is not vacuous).
    assert exported("cognito_fleet_last_sucess_timestamp_seconds") - set(metrics.METRICS)
