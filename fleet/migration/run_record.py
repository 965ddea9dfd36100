"""Who ran a run, where, with what: ``run_started``'s facts, the runs table's line, the run record beside the report."""

from __future__ import annotations

import getpass
import hashlib
import importlib.metadata
import json
import os
import socket
from collections.abc import Mapping
from pathlib import Path

from fleet.aws.credentials import Hub
from fleet.aws.endpoints import summary
from fleet.files import atomic_writer
from fleet.manifest import Manifest
from fleet.migration.engine import EngineSettings
from fleet.records.own_files import RUN_RECORD, refuse_foreign
from fleet.records.report import run_record_path
from fleet.records.rollback import rollback_of
from fleet.state.s3_objects import S3Location


def run_info(
    command: str,
    run_id: str,
    hub: Hub,
    manifest: Manifest,
    settings: EngineSettings,
    state: Path | S3Location | None = None,
    plan: Mapping[str, object] | None = None,
    **more: object,
) -> dict[str, object]:
    """What ``run_started`` says: who runs what on which fleet, where the calls go (each service's endpoint and
    the setting it came from), and the options that matter (no secret); ``state``: the run's state file, and
    ``plan``: the plan applied (both named absolute: the run record is how ``rollback REPORT`` finds the state, and
    an auditor the approved plan, from any directory)."""
    aws = settings.aws
    return {
        "run_id": run_id,
        "command": command,
        "hub": hub.arn,
        "endpoints": summary(hub.endpoints),
        **where_and_who(),
        "manifest": manifest.path,
        "manifest_sha256": manifest_sha256(manifest.path),
        "rows": len(manifest.rows),
        "accounts": len(manifest.accounts),
        "regions": sorted(manifest.regions),
        "options": {
            "endpoint_url": aws.endpoint_url,
            "insecure_endpoint": aws.insecure_endpoint,
            "profile": aws.profile,
            "role_name": aws.role_name,
            "external_id": "set" if aws.external_id else None,
            "rate_per_account": settings.rate_per_account,
            "concurrency": settings.concurrency,
            "account_concurrency": settings.account_concurrency,
            "max_attempts": settings.policy.max_attempts,
            "min_validity_days": settings.min_validity_days,
            "wait": settings.mode.wait,
            "wait_timeout": settings.mode.wait_timeout if settings.mode.wait else None,
            "canary": settings.canary,
            "max_failures": settings.max_failures,
            "edge_check": settings.edge.check,
            "edge_address": settings.edge.address if settings.edge.check else None,
        },
        **({"state": _named(state)} if state is not None else {}),
        **({"plan": {**plan, "path": os.path.abspath(str(plan["path"]))}} if plan is not None else {}),
        **({"change_ref": settings.change_ref} if settings.change_ref else {}),
        **({"settings_file": settings.settings_file.facts()} if settings.settings_file else {}),
        **_rollback(manifest.path),
        **more,
    }


def _rollback(manifest: str) -> dict[str, object]:
    """A rollback manifest's run names its rollback (the id its holds carry): ``history`` shows it."""
    found = rollback_of(manifest)
    return {} if found is None else {"rollback": {k: found[k] for k in ("rollback_id", "record")}}


def where_and_who() -> dict[str, str]:
    """The host, the OS user and the tool's version: with the hub ARN, who ran a run, where, with what."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (a container's arbitrary uid)
        user = f"uid {os.getuid()}"
    try:
        version = importlib.metadata.version("cognito-fleet")
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    return {"host": socket.gethostname(), "user": user, "version": version}


def manifest_sha256(path: str | Path) -> str | None:
    """The manifest file's SHA-256, as run (None if it cannot be read again)."""
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return None


def write_run_record(report_path: Path, info: dict[str, object]) -> None:
    """Beside the report, written whole (0600) like it, never over a file the tool did not write: what the change
    record names as the run, and where its state is (``rollback REPORT`` reads it). ``counts`` is an object (the
    runs table keeps it as JSON text)."""
    record = dict(info)
    if isinstance(record.get("counts"), str):
        record["counts"] = json.loads(str(record["counts"]))
    path = run_record_path(report_path)
    refuse_foreign(path, RUN_RECORD)
    with atomic_writer(path) as fh:
        json.dump(record, fh, indent=2, sort_keys=True, default=str)
        fh.write("\n")


def _named(state: Path | S3Location) -> str:
    """A local state by its absolute path; an S3 one by its s3:// URL."""
    return str(state) if isinstance(state, S3Location) else os.path.abspath(state)


def for_state(info: dict[str, object]) -> dict[str, object]:
    """What the state's runs table keeps of ``run_started``: who, where, with what (no secret: the options
    already say only whether an external id was set)."""
    keep = ("command", "hub", "host", "user", "version", "manifest_sha256", "endpoints", "options", "report")
    # where the state is; the plan applied, the change ticket; the settings file that set options; the rollback run
    keep_too = ("state", "plan", "change_ref", "settings_file", "rollback")
    return {k: info[k] for k in (*keep, *keep_too) if k in info}
