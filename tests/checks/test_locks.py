"""The hash-locked requirements (issue 21): the image installs exactly what pyproject.toml pins, and everything
those pins need, each file checked by its SHA-256 (requirements/*.lock, pip --require-hashes)."""

from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
ENTRY = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\;]+)")


def lock(name: str) -> dict[str, tuple[str, list[str]]]:
    """A pip-compile --generate-hashes file: canonical name -> (version, its hashes)."""
    entries: dict[str, tuple[str, list[str]]] = {}
    current = ""
    for line in (ROOT / "requirements" / name).read_text(encoding="utf-8").splitlines():
        match = ENTRY.match(line)
        if match:
            current = canonicalize_name(match.group(1))
            entries[current] = (match.group(2), [])
        for digest in re.findall(r"--hash=sha256:([0-9a-f]{64})", line):
            entries[current][1].append(digest)
    return entries


def test_the_runtime_lock_pins_what_pyproject_pins() -> None:
    locked = lock("runtime.lock")
    for spec in PROJECT["project"]["dependencies"]:
        requirement = Requirement(spec)
        name = canonicalize_name(requirement.name)
        assert name in locked, f"{requirement.name} is not in requirements/runtime.lock: run pip-compile again"
        assert requirement.specifier.contains(locked[name][0]), f"{spec} but the lock has {locked[name][0]}"


def test_every_locked_file_has_a_hash() -> None:
    for name in ("runtime.lock", "build.lock"):
        for package, (_, hashes) in lock(name).items():
            assert hashes, f"{name}: {package} has no --hash"


def test_the_runtime_lock_is_closed_under_its_requirements() -> None:
    """Everything a locked package requires (for Python 3.11 on Linux, no extras) is locked too, as installed here;
    only the runtime set: no test tool, no sandbox package."""
    locked = lock("runtime.lock")
    environment = {**default_environment(), "python_version": "3.11", "sys_platform": "linux", "extra": ""}
    checked = 0
    for package, (version, _) in locked.items():
        try:
            installed = metadata.distribution(package)
        except metadata.PackageNotFoundError:
            continue
        if installed.version != version:
            continue  # another version here: its metadata says nothing about the locked one
        checked += 1
        for spec in installed.requires or []:
            requirement = Requirement(spec)
            if requirement.marker is None or requirement.marker.evaluate(environment):
                needed = canonicalize_name(requirement.name)
                assert needed in locked, f"{package} {version} needs {spec}, which requirements/runtime.lock lacks"
                assert requirement.specifier.contains(locked[needed][0], prereleases=True), (package, spec)
    assert checked >= len(PROJECT["project"]["dependencies"])
    # The sandbox and test tools stay out of what the image runs (cryptography is a runtime dependency: the edge
    # check reads the certificate the edge serves).
    assert not {"moto", "pytest", "mypy", "werkzeug", "flask"} & set(locked)


def test_the_build_lock_has_the_build_backend() -> None:
    locked = lock("build.lock")
    for spec in PROJECT["build-system"]["requires"]:
        requirement = Requirement(spec)
        name = canonicalize_name(requirement.name)
        assert name in locked and requirement.specifier.contains(locked[name][0]), spec
