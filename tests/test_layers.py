"""The rooms of the house (fleet/*/__init__.py say what each owns): which may import which, checked from the AST,
imports inside functions included. A new import across a wall fails here until the table (and the design) says
so."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PURE = frozenset({"manifest", "shard", "clock", "errors", "files", "text", "csv_cells", "outcome"})
# Room -> the rooms it may import ("pure": the top modules above; every room may import itself).
ALLOWED: dict[str, frozenset[str]] = {
    "pure": frozenset(),
    "events": frozenset({"pure"}),
    "aws": frozenset({"pure", "events"}),
    "state": frozenset({"pure", "events"}),
    "records": frozenset({"pure", "state"}),
    "migrate": frozenset({"pure", "events", "aws", "state", "records"}),
    "discover": frozenset({"pure", "events", "aws", "migrate", "records"}),
    "observe": frozenset({"pure", "events", "aws", "state", "records", "migrate"}),
    "cli": frozenset({"pure", "events", "aws", "state", "records", "migrate", "discover", "observe", "sandbox"}),
    "sandbox": frozenset({"pure", "events", "aws", "state", "records", "migrate"}),
    "entry": frozenset({"cli"}),
    "facade": frozenset({"pure", "aws", "state", "migrate"}),
}
# The sandbox's own commands (`sandbox serve|seed`, `demo`) are command-line code: the CLI's room.
SANDBOX_COMMANDS = frozenset({"fleet.sandbox.cli", "fleet.sandbox.demo"})
# Only the CLI's room imports the terminal and command-line libraries.
UI_LIBRARIES = frozenset({"click", "rich"})
MAX_TOP_MODULES = 12


def room(module: str) -> str:
    """fleet.aws.calls -> aws; fleet.manifest -> pure; fleet.events -> events; fleet.__main__ -> entry; '' for
    anything outside the package."""
    parts = module.split(".")
    if parts[0] != "fleet":
        return ""
    if module in SANDBOX_COMMANDS:
        return "cli"
    if len(parts) == 1:
        return "facade"  # fleet/__init__.py: the names it offers, imported on first use
    if parts[1] in PURE:
        return "pure"
    return "entry" if parts[1] == "__main__" else parts[1]


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path) -> list[tuple[int, str]]:
    """Every module ``path`` imports (``from fleet import x`` as fleet.x), anywhere in it."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            if node.module == "fleet":
                found += [(node.lineno, f"fleet.{a.name}") for a in node.names]
            else:
                found.append((node.lineno, node.module))
    return found


def violations(root: Path = ROOT) -> list[str]:
    out = []
    for path in sorted((root / "fleet").rglob("*.py")):
        name = module_name(path, root)
        here = room(name)
        for line, target in imports(path):
            where = f"{path.relative_to(root)}:{line}: {name} imports {target}"
            library = target.split(".")[0]
            if library in UI_LIBRARIES and here != "cli":
                out.append(f"{where} (only the CLI uses {library})")
            there = room(target)
            if not there or there == here:
                continue
            if there not in ALLOWED[here]:
                out.append(f"{where} ({here} may not import {there})")
    return out


def test_every_import_respects_the_rooms() -> None:
    assert violations() == []


def test_a_forbidden_import_is_seen(tmp_path: Path) -> None:
    # The check is only worth something if it fails: aws importing the engine, a function-level import included.
    import shutil

    copy = tmp_path / "fleet"
    shutil.copytree(ROOT / "fleet", copy, ignore=shutil.ignore_patterns("__pycache__"))
    with (copy / "aws" / "calls.py").open("a", encoding="utf-8") as fh:
        fh.write("\n\ndef _sneaky() -> None:\n    from fleet.migrate.engine import run_rows  # noqa\n")
    with (copy / "records" / "report.py").open("a", encoding="utf-8") as fh:
        fh.write("\nimport rich  # noqa\n")
    found = violations(tmp_path)
    assert any("fleet.aws.calls imports fleet.migrate.engine (aws may not import migrate)" in v for v in found), found
    assert any("fleet.records.report imports rich" in v for v in found), found


@pytest.mark.parametrize("room_name", sorted(set(ALLOWED) - {"pure", "events", "entry", "facade"}))
def test_each_room_says_what_it_owns_and_may_import(room_name: str) -> None:
    doc = ast.get_docstring(ast.parse((ROOT / "fleet" / room_name / "__init__.py").read_text(encoding="utf-8")))
    assert doc and "import" in doc.lower(), room_name


def test_few_modules_at_the_top_and_none_too_big() -> None:
    top = [p for p in (ROOT / "fleet").glob("*.py")]
    assert len(top) <= MAX_TOP_MODULES, sorted(p.name for p in top)
    for path in (ROOT / "fleet").rglob("*.py"):
        lines = len(path.read_text(encoding="utf-8").splitlines())
        assert lines <= 400, f"{path.relative_to(ROOT)}: {lines} lines"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef):
                size = (node.end_lineno or node.lineno) - node.lineno + 1
                assert size <= 150, f"{path.relative_to(ROOT)}: class {node.name} is {size} lines"
