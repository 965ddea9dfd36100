"""Reading the run record `run` writes beside its report (NAME.report.run.json: ``fleet.migration.run_record``): who ran
the run, where its state is, which plan it applied and for which change ticket.

Older run records lack ``state``, ``plan.pinned`` and ``change_ref``, and kept ``counts`` as JSON text inside the
JSON object: each is read as it is, or left out.
"""

from __future__ import annotations

import json
from pathlib import Path

from fleet.records.report import run_record_path
from fleet.state.s3_objects import S3Location, StateLocationError, is_s3


def read_run_record(report_csv: Path) -> dict[str, object]:
    """The run record beside ``report_csv`` ({} when there is none, or it is not a JSON object)."""
    try:
        data = json.loads(run_record_path(report_csv).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    if isinstance(data.get("counts"), str):  # before counts was an object
        try:
            data["counts"] = json.loads(data["counts"])
        except ValueError:
            del data["counts"]
    return data


def state_named(run: dict[str, object]) -> Path | S3Location | None:
    """The state the run used, as its record names it (an absolute path, or s3://BUCKET/KEY kept as a URL: a
    Path would fold it into ``s3:/BUCKET/KEY``), if it does."""
    state = run.get("state")
    if not isinstance(state, str) or not state:
        return None
    if is_s3(state):
        try:
            return S3Location.parse(state)
        except StateLocationError:
            return None
    return Path(state)


def ran_by_of(run: dict[str, object]) -> str:
    """Host, OS user, tool version and the manifest with its digest, as one line."""
    parts = []
    if run.get("user") or run.get("host"):
        parts.append(f"{run.get('user') or '?'}@{run.get('host') or '?'}")
    if run.get("version"):
        parts.append(f"cognito-fleet {run['version']}")
    if run.get("manifest"):
        digest = f" (SHA-256 {run['manifest_sha256']})" if run.get("manifest_sha256") else ""
        parts.append(f"manifest {run['manifest']}{digest}")
    return ", ".join(parts)


def plan_of(run: dict[str, object]) -> str:
    """The plan the run applied (``run --plan``): its id, file, SHA-256 and whether that was pinned; "" if none."""
    plan = run.get("plan")
    if not isinstance(plan, dict):
        return ""
    pinned = plan.get("pinned")
    if pinned is True:
        how = "pinned: matched --plan-sha256"
    else:
        how = "NOT pinned: no --plan-sha256" if pinned is False else "pinning not recorded"
    return f"{plan.get('plan_id') or '?'} ({plan.get('path') or '?'}), SHA-256 {plan.get('sha256') or '?'} ({how})"


def change_ref_of(run: dict[str, object]) -> str:
    """The change ticket the run carried out: its own --change-ref, else the one its plan was made for."""
    plan = run.get("plan")
    for ref in (run.get("change_ref"), plan.get("change_ref") if isinstance(plan, dict) else None):
        if isinstance(ref, str) and ref:
            return ref
    return ""
