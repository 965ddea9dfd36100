"""cognito-fleet: move every Amazon Cognito custom domain of a multi-account AWS estate onto a new ACM certificate.

The package is a command line first (``cognito-fleet``, ``fleet.cli``); for people who call it from Python, these
are the entry points (each documented where it lives):

- ``parse`` (``fleet.manifest``): read and validate a manifest; ``ManifestError`` lists every problem.
- ``migrate`` / ``plan`` (``fleet.migration.pipeline``): the whole job, as ``run`` / ``plan`` do it, returning a
  ``RunResult``; settings in ``EngineSettings`` (``fleet.migration.engine``) and ``AwsSettings``
  (``fleet.aws.credentials``).
- ``Checkpoint`` (``fleet.state.checkpoint``): the state file a run reads and extends.
- ``FleetError`` (``fleet.errors``): every expected failure, with its exit code.

The rooms (each subpackage's docstring says what it owns and what it may import; ``tests/checks/test_layers.py`` holds
the table): the pure top modules (manifest, shard, clock, errors, files, text, csv_cells, outcome, events),
``aws``, ``state``, ``records``, ``migration``, ``discover``, ``cli``, ``sandbox``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["AwsSettings", "Checkpoint", "EngineSettings", "FleetError", "RunResult", "migrate", "parse", "plan"]

_WHERE = {
    "AwsSettings": "fleet.aws.credentials",
    "Checkpoint": "fleet.state.checkpoint",
    "EngineSettings": "fleet.migration.engine",
    "FleetError": "fleet.errors",
    "RunResult": "fleet.migration.result",
    "migrate": "fleet.migration.pipeline",
    "parse": "fleet.manifest",
    "plan": "fleet.migration.pipeline",
}

if TYPE_CHECKING:
    from fleet.aws.credentials import AwsSettings
    from fleet.errors import FleetError
    from fleet.manifest import parse
    from fleet.migration.engine import EngineSettings
    from fleet.migration.pipeline import migrate, plan
    from fleet.migration.result import RunResult
    from fleet.state.checkpoint import Checkpoint


def __getattr__(name: str) -> Any:
    """Imported on first use: `cognito-fleet validate` and `--help` never load the AWS stack. Kept once found, so
    each entry point is one object (``tests/checks/test_exported_members.py``); no subpackage shares its name."""
    if name not in _WHERE:
        raise AttributeError(f"module 'fleet' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(_WHERE[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
