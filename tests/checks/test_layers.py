"""The rooms of the house (fleet/*/__init__.py say what each owns): which may import which, checked from the AST,
imports inside functions included. A new import across a wall fails here until the table (and the design) says
so. And the walls inside: no import cycle, no underscore name imported from another module, no function over 80
lines. Each check is shown to fail on a fault planted in a copy of the package."""

from __future__ import annotations

import ast
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PURE = frozenset({"manifest", "shard", "clock", "errors", "files", "text", "csv_cells", "outcome"})
# Room -> the rooms it may import ("pure": the top modules above; every room may import itself).
ALLOWED: dict[str, frozenset[str]] = {
    "pure": frozenset(),
    "events": frozenset({"pure"}),
    "aws": frozenset({"pure", "events"}),
    "state": frozenset({"pure", "events"}),
    "records": frozenset({"pure", "state"}),
    "migration": frozenset({"pure", "events", "aws", "state", "records"}),
    "discover": frozenset({"pure", "events", "aws", "migration", "records"}),
    "observe": frozenset({"pure", "events", "aws", "state", "records", "migration"}),
    "cli": frozenset({"pure", "events", "aws", "state", "records", "migration", "discover", "observe", "sandbox"}),
    "sandbox": frozenset({"pure", "events", "aws", "state", "records", "migration"}),
    "entry": frozenset({"cli"}),
    "facade": frozenset({"pure", "aws", "state", "migration"}),
}
# The sandbox's own commands (`sandbox serve|seed`, `demo`) are command-line code: the CLI's room.
SANDBOX_COMMANDS = frozenset({"fleet.sandbox.cli", "fleet.sandbox.demo"})
# Only the CLI's room imports the terminal and command-line libraries.
UI_LIBRARIES = frozenset({"click", "rich"})
MAX_TOP_MODULES = 12
MAX_FUNCTION_LINES = 80


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


def copy_of_the_package(tmp_path: Path) -> Path:
    copy = tmp_path / "fleet"
    shutil.copytree(ROOT / "fleet", copy, ignore=shutil.ignore_patterns("__pycache__"))
    return copy


def plant(path: Path, code: str) -> None:
    with path.open("a", encoding="utf-8") as fh:
        fh.write(code)


def test_a_forbidden_import_is_seen(tmp_path: Path) -> None:
    # The check is only worth something if it fails: aws importing the engine, a function-level import included.
    copy = copy_of_the_package(tmp_path)
    with (copy / "aws" / "calls.py").open("a", encoding="utf-8") as fh:
        fh.write("\n\ndef _sneaky() -> None:\n    from fleet.migration.engine import run_rows  # noqa\n")
    with (copy / "records" / "report.py").open("a", encoding="utf-8") as fh:
        fh.write("\nimport rich  # noqa\n")
    found = violations(tmp_path)
    planted = "fleet.aws.calls imports fleet.migration.engine (aws may not import migration)"
    assert any(planted in v for v in found), found
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


# --- the walls inside: cycles, underscore names, long functions ----------------------------------------------


def modules(root: Path = ROOT) -> dict[str, Path]:
    return {module_name(p, root): p for p in sorted((root / "fleet").rglob("*.py"))}


def dependencies(root: Path = ROOT) -> dict[str, set[str]]:
    """Module -> the package modules its imports run (anywhere in it, TYPE_CHECKING blocks included): the module
    imported and the packages above it, except this module's own packages (importing a sibling is no cycle)."""
    known = modules(root)
    graph: dict[str, set[str]] = {}
    for name, path in known.items():
        graph[name] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                targets = [f"{node.module}.{a.name}" for a in node.names]
            else:
                continue
            for target in targets:
                while target and target not in known:  # `from fleet.x import name`: the module fleet.x
                    target = target.rpartition(".")[0]
                parts = target.split(".") if target else []
                above = (".".join(parts[:i]) for i in range(1, len(parts) + 1))
                graph[name] |= {m for m in above if m in known and not (name == m or name.startswith(m + "."))}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The graph's strongly connected components of more than one module (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        while work:
            node, edges = work[-1]
            for nxt in edges:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    work.append((nxt, iter(sorted(graph[nxt]))))
                    break
                if nxt in stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return found


def private_imports(root: Path = ROOT) -> list[str]:
    """``from fleet.x import _name``: a name its module keeps to itself, used by another (dunders aside)."""
    out = []
    for name, path in modules(root).items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "fleet":
                for alias in node.names:
                    if alias.name.startswith("_") and not alias.name.startswith("__"):
                        out.append(f"{path.relative_to(root)}:{node.lineno}: {name} imports {node.module}.{alias.name}")
    return out


def long_functions(root: Path = ROOT) -> list[str]:
    out = []
    for path in modules(root).values():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                size = (node.end_lineno or node.lineno) - node.lineno + 1
                if size > MAX_FUNCTION_LINES:
                    out.append(f"{path.relative_to(root)}:{node.lineno}: {node.name} is {size} lines")
    return out


def test_no_import_cycle() -> None:
    assert cycles(dependencies()) == []


def test_no_underscore_name_is_imported_from_another_module() -> None:
    assert private_imports() == []


def test_no_function_is_over_80_lines() -> None:
    assert long_functions() == []


def test_a_cycle_an_underscore_import_and_a_long_function_are_seen(tmp_path: Path) -> None:
    copy = copy_of_the_package(tmp_path)
    # A cycle through a package's __init__ and a function-level import: clock -> cli (its package runs) -> clock.
    plant(copy / "clock.py", "\n\ndef _sneaky() -> None:\n    from fleet.cli.options import split_list  # noqa\n")
    plant(copy / "records" / "markdown.py", "\nfrom fleet.records.html import _pill  # noqa\n")
    body = "".join(f"    x{i} = {i}\n" for i in range(MAX_FUNCTION_LINES))
    plant(copy / "shard.py", f"\n\ndef too_long() -> None:\n{body}")
    found = cycles(dependencies(tmp_path))
    assert any({"fleet.clock", "fleet.cli"} <= set(c) for c in found), found
    assert private_imports(tmp_path) == [
        f"fleet/records/markdown.py:{len((copy / 'records' / 'markdown.py').read_text().splitlines())}: "
        "fleet.records.markdown imports fleet.records.html._pill"
    ]
    assert [f for f in long_functions(tmp_path) if "too_long" in f] == [
        f"fleet/shard.py:{len((copy / 'shard.py').read_text().splitlines()) - MAX_FUNCTION_LINES}: too_long is 81 lines"
    ]
