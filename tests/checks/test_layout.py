"""Tests in layers: every test file lives in ``tests/unit`` (no sandbox: fake seams, virtual time; seconds on its
own), ``tests/e2e`` (over the sandbox, or a whole command) or ``tests/checks`` (the repository's own checks). A unit
test file that starts the sandbox is misplaced too (asking for the ``sandbox`` fixture fails in tests/unit)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LAYERS = ("unit", "e2e", "checks")
SANDBOX = ("fleet.sandbox.server", "fleet.sandbox.seed", "moto")


def misplaced(tests: Path) -> list[str]:
    out = []
    for path in sorted(tests.rglob("test_*.py")):
        where = path.relative_to(tests)
        if len(where.parts) != 2 or where.parts[0] not in LAYERS:
            out.append(f"{where}: not in a layer (tests/unit, tests/e2e or tests/checks)")
        elif where.parts[0] == "unit":
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
                if isinstance(node, ast.ImportFrom) and node.module:
                    names = [node.module]
                out += [f"{where}: imports {n} (the sandbox: tests/e2e)" for n in names if n.startswith(SANDBOX)]
    return out


def test_every_test_file_is_in_its_layer() -> None:
    assert misplaced(ROOT / "tests") == []


def test_a_misplaced_test_file_is_seen(tmp_path: Path) -> None:
    for layer in LAYERS:
        (tmp_path / layer).mkdir()
    (tmp_path / "test_loose.py").write_text("def test_x() -> None:\n    pass\n")
    (tmp_path / "unit" / "test_fast.py").write_text("from fleet.manifest import parse\n")
    slow = "def test_y() -> None:\n    from fleet.sandbox.server import Sandbox\n"
    (tmp_path / "unit" / "test_slow.py").write_text(slow)
    (tmp_path / "e2e" / "test_real.py").write_text("from fleet.sandbox.server import Sandbox\n")
    assert misplaced(tmp_path) == [
        "test_loose.py: not in a layer (tests/unit, tests/e2e or tests/checks)",
        "unit/test_slow.py: imports fleet.sandbox.server (the sandbox: tests/e2e)",
    ]
