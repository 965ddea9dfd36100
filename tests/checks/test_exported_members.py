"""The Python entry points (``fleet.__all__``): exactly the documented set, and each one object however many of
``fleet``'s submodules are imported (a subpackage named like an entry point once replaced it; issue 26)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import fleet

ROOT = Path(__file__).resolve().parents[2]
# The set README.md and fleet/__init__.py document; a change here is a change of the public API.
DOCUMENTED = ["AwsSettings", "Checkpoint", "EngineSettings", "FleetError", "RunResult", "migrate", "parse", "plan"]

# Run in a fresh interpreter: this process has imported half the package already.
PROBE = """
import importlib, json, pkgutil, sys
import fleet
names = list(fleet.__all__)
before = {n: getattr(fleet, n) for n in names}
imported = []
for info in pkgutil.walk_packages(fleet.__path__, "fleet."):
    if info.name != "fleet.__main__":  # it runs the CLI
        importlib.import_module(info.name)
        imported.append(info.name)
after = {n: getattr(fleet, n) for n in names}
star = {}
exec("from fleet import *", star)
from fleet import migrate, plan
print(json.dumps({
    "imported": imported,
    "changed": [n for n in names if after[n] is not before[n]],
    "modules": [n for n in names if type(after[n]).__name__ == "module"],
    "star": sorted(k for k in star if k != "__builtins__"),
    "from_import": [migrate is before["migrate"], plan is before["plan"]],
}))
"""


def probe() -> dict[str, object]:
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout)
    return result


def test_entry_points_stay_one_object_after_every_submodule_is_imported() -> None:
    found = probe()
    imported = found["imported"]
    assert isinstance(imported, list)
    assert "fleet.migration.pipeline" in imported and "fleet.cli" in imported and len(imported) > 50
    assert found["changed"] == []
    assert found["modules"] == []
    assert found["from_import"] == [True, True]
    assert found["star"] == sorted(DOCUMENTED)


def test_all_is_exactly_the_documented_set() -> None:
    assert sorted(fleet.__all__) == sorted(DOCUMENTED)
    assert len(set(fleet.__all__)) == len(fleet.__all__)
    doc = fleet.__doc__ or ""
    assert [name for name in DOCUMENTED if f"``{name}``" not in doc] == []
    assert set(DOCUMENTED) <= set(dir(fleet))


def test_no_submodule_is_named_like_an_entry_point() -> None:
    submodules = {p.stem for p in (ROOT / "fleet").iterdir() if p.suffix == ".py" or (p / "__init__.py").exists()}
    assert submodules & set(DOCUMENTED) == set()
