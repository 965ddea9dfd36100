"""Packaging (issue 13 §7): the wheel, and the Containerfile and its ignore files, checked offline and fast.

The wheel is built from a copy of the work tree (so a stale build/ or egg-info there can neither leak in nor be
written), inspected as a zip, then installed with --no-deps into a throwaway prefix and run from there. The
Containerfile is checked by rules (``containerfile_problems``) that are also run on broken variants, so each rule
is shown to catch what it is for. Nothing here needs podman or docker.
"""

from __future__ import annotations

import email.parser
import fnmatch
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
import zipfile
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as installed_version
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PROJECT = PYPROJECT["project"]
DIST = PROJECT["name"].replace("-", "_")  # cognito_fleet
VERSION = PROJECT["version"]
DATA_FILES: dict[str, list[str]] = PYPROJECT["tool"]["setuptools"]["data-files"]
CONTAINERFILE = ROOT / "Containerfile"
IGNORE_FILES = [ROOT / ".containerignore", ROOT / ".dockerignore"]
UID = "10001"

# What the copy of the tree leaves out: what a fresh clone does not have, or what is rebuilt.
COPY_IGNORE = shutil.ignore_patterns(
    ".git",
    ".venv",
    "venv",
    "build",
    "dist",
    "*.egg-info",
    "__pycache__",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
    "cognito-fleet-demo",
    "*.sqlite",
    "*.sqlite-wal",
    "*.sqlite-shm",
)


def _pip(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "pip", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=180
    )


def _build_requirements_installed() -> bool:
    """True when this interpreter has every [build-system].requires, so the wheel builds offline."""
    for spec in PYPROJECT["build-system"]["requires"]:
        req = Requirement(spec)
        try:
            have = installed_version(req.name)
        except PackageNotFoundError:
            return False
        if not req.specifier.contains(have, prereleases=True):
            return False
    return True


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("packaging")
    src = tmp / "src"
    shutil.copytree(ROOT, src, ignore=COPY_IGNORE)
    out = tmp / "wheelhouse"
    args = ["wheel", "--no-deps", "-q", "-w", str(out), "."]
    if _build_requirements_installed():
        # Offline. Otherwise pip sets up [build-system].requires from the package index, as `pip install .` does.
        args.insert(1, "--no-build-isolation")
    done = _pip(*args, cwd=src)
    assert done.returncode == 0, done.stdout + done.stderr
    wheels = list(out.glob("*.whl"))
    assert [w.name for w in wheels] == [f"{DIST}-{VERSION}-py3-none-any.whl"]
    return wheels[0]


def _metadata(whl: Path) -> email.message.Message:
    with zipfile.ZipFile(whl) as z:
        return email.parser.Parser().parsestr(z.read(f"{DIST}-{VERSION}.dist-info/METADATA").decode())


# --- the wheel ------------------------------------------------------------------------------------------------


def test_wheel_holds_the_package_its_marker_and_the_iam_data_files_and_nothing_else(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
    sources = {p.relative_to(ROOT).as_posix() for p in (ROOT / "fleet").rglob("*.py")}
    assert sources <= names, sorted(sources - names)
    assert "fleet/py.typed" in names
    assert (
        "fleet/cli/__init__.py" in names and "fleet/sandbox/server.py" in names
    )  # the sandbox code ships; moto does not
    data = {
        f"{DIST}-{VERSION}.data/data/{target}/{Path(source).name}"
        for target, sources_ in DATA_FILES.items()
        for source in sources_
    }
    assert any(n.endswith("/iam/role-policy.json") for n in data)
    assert {n for n in names if ".data/" in n} == data
    top = {n.split("/", 1)[0] for n in names}
    assert top == {"fleet", f"{DIST}-{VERSION}.dist-info", f"{DIST}-{VERSION}.data"}, top  # no tests/, benchmarks/
    assert not any(n.endswith((".pyc", ".sqlite")) or "__pycache__" in n for n in names)


def test_wheel_data_files_are_the_repository_iam_files_byte_for_byte(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as z:
        for target, sources in DATA_FILES.items():
            for source in sources:
                packed = z.read(f"{DIST}-{VERSION}.data/data/{target}/{Path(source).name}")
                assert packed == (ROOT / source).read_bytes(), source
                if source.endswith(".json"):
                    json.loads(packed)


def test_wheel_declares_the_console_script(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as z:
        entry_points = z.read(f"{DIST}-{VERSION}.dist-info/entry_points.txt").decode()
    lines = [line.strip() for line in entry_points.splitlines()]
    section = lines[lines.index("[console_scripts]") + 1 :]
    assert "cognito-fleet = fleet.cli:main" in section
    assert PROJECT["scripts"] == {"cognito-fleet": "fleet.cli:main"}


def test_pyproject_dependencies_are_exact_pins() -> None:
    for spec in PROJECT["dependencies"]:
        req = Requirement(spec)
        assert [s.operator for s in req.specifier] == ["=="], spec
        assert not req.extras and req.marker is None, spec


def test_wheel_requires_exactly_the_pinned_dependencies(wheel: Path) -> None:
    meta = _metadata(wheel)
    assert meta["Name"] == PROJECT["name"] and meta["Version"] == VERSION
    assert meta["Requires-Python"] == PROJECT["requires-python"]
    requires = [Requirement(r) for r in meta.get_all("Requires-Dist") or []]
    unconditional = sorted(str(r) for r in requires if r.marker is None)
    assert unconditional == sorted(str(Requirement(d)) for d in PROJECT["dependencies"])
    # Extras stay optional: moto and the test tools come only with [sandbox] / [test] (cryptography is a
    # dependency of the tool itself since the edge check reads served certificates).
    assert "cryptography" in {r.name for r in requires if r.marker is None}
    for r in requires:
        if r.name in {"moto", "pytest", "mypy"}:
            assert r.marker is not None and "extra" in str(r.marker), str(r)
    assert set(meta.get_all("Provides-Extra") or []) == set(PROJECT["optional-dependencies"])


def test_installed_wheel_runs_from_its_own_prefix(wheel: Path, tmp_path: Path) -> None:
    prefix = tmp_path / "prefix"
    # --ignore-installed: never uninstall the copy this venv runs (the editable install the suite tests)
    args = ("install", "--no-deps", "--no-index", "--ignore-installed", "--no-warn-script-location", "--prefix")
    done = _pip(*args, str(prefix), str(wheel))
    assert done.returncode == 0, done.stdout + done.stderr
    site = prefix / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    assert (site / "fleet" / "py.typed").is_file()
    for target, sources in DATA_FILES.items():
        for source in sources:
            assert (prefix / target / Path(source).name).read_bytes() == (ROOT / source).read_bytes()
    # The dependencies come from this venv; the package itself must come from the prefix, not the work tree.
    env = {**os.environ, "PYTHONPATH": str(site), "PYTHONDONTWRITEBYTECODE": "1"}
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import fleet.cli, importlib.metadata as m; print(fleet.cli.__file__); "
            "print(m.distribution('cognito-fleet').locate_file(''))",
        ],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert probe.returncode == 0, probe.stderr
    module_file, dist_root = probe.stdout.split()
    assert Path(module_file).is_relative_to(site) and Path(dist_root) == site
    script = prefix / "bin" / "cognito-fleet"
    version = subprocess.run(
        [str(script), "--version"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert version.returncode == 0, version.stderr
    assert version.stdout.strip() == f"cognito-fleet, version {VERSION}"
    helped = subprocess.run([str(script), "--help"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert helped.returncode == 0 and all(c in helped.stdout for c in ("run", "plan", "rollback", "history"))


# --- the Containerfile ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    stage: int
    keyword: str
    args: str


def parse_containerfile(text: str) -> list[Instruction]:
    """Instructions in order (continuations joined, comments dropped), each with its stage (0-based)."""
    logical: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    if pending:
        logical.append(pending)
    out: list[Instruction] = []
    stage = -1
    for line in logical:
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            stage += 1
        out.append(Instruction(stage, keyword, " ".join(args.split())))
    return out


BASE = re.compile(r"^(docker\.io/(library/)?)?python:3\.11(\.\d+)?-slim(-(bookworm|trixie))?(@sha256:[0-9a-f]{64})?$")
DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")
SECRETISH = re.compile(r"SECRET|TOKEN|KEY|PASSWORD|CREDENTIAL|AWS_", re.IGNORECASE)


def _env_names(args: str) -> list[str]:
    words = shlex.split(args)
    if len(words) >= 2 and "=" not in words[0]:  # legacy `ENV NAME value`
        return [words[0]]
    return [w.split("=", 1)[0] for w in words]


def _pip_installs(ins: list[Instruction]) -> list[str]:
    return [i.args for i in ins if i.keyword == "RUN" and re.search(r"\bpip3? install\b", i.args)]


def containerfile_problems(text: str) -> list[str]:
    """Every way this Containerfile breaks issue 13 §7's rules; [] when it keeps them all."""
    ins = parse_containerfile(text)
    problems: list[str] = []
    if not ins or ins[0].keyword not in {"FROM", "ARG"}:
        problems.append("does not start with FROM")
    final_stage = max((i.stage for i in ins), default=0)
    final = [i for i in ins if i.stage == final_stage]
    for i in ins:
        if i.keyword == "FROM":
            image = next((w for w in i.args.split() if not w.startswith("--")), "")
            if not BASE.match(image):
                problems.append(f"FROM {image}: not an explicit python 3.11 slim tag")
            elif not DIGEST.search(image):
                problems.append(f"FROM {image}: not pinned by digest (issue 21)")
        if i.keyword == "ADD" and re.search(r"\b(https?|git)://|git@", i.args):
            problems.append(f"ADD of a remote source: {i.args}")
        if i.keyword in {"ENV", "ARG"}:
            names = _env_names(i.args) if i.keyword == "ENV" else [i.args.split("=", 1)[0]]
            problems += [f"{i.keyword} {n}: looks like a secret" for n in names if SECRETISH.search(n)]
        if i.keyword == "RUN" and re.search(r"--mount=type=secret|AWS_SECRET|aws configure", i.args):
            problems.append(f"RUN handles credentials: {i.args}")
    for cmd in _pip_installs(ins):  # issue 21: nothing unverified from an index, in any stage
        if "--no-cache-dir" not in shlex.split(cmd):
            problems.append(f"pip install without --no-cache-dir: {cmd}")
        for part in re.split(r"&&|;", cmd):
            words = shlex.split(part)
            if "install" not in words:
                continue
            hashed = "--require-hashes" in words and "-r" in words
            own_wheel = "--no-deps" in words and any(w.endswith(".whl") for w in words)
            if not (hashed or own_wheel):
                problems.append(f"pip install neither hash-locked nor --no-deps of our wheel: {part.strip()}")
    installs = _pip_installs(final)
    if not installs:
        problems.append("the final stage installs nothing with pip")
    for cmd in installs:
        words = shlex.split(cmd)
        if "-e" in words or "--editable" in words or any(w.startswith("--editable=") for w in words):
            problems.append(f"editable install: {cmd}")
        if re.search(r"\[[^\]]*\]", cmd):
            problems.append(f"installs extras: {cmd}")
        if not any(w in {".", "./"} or w.endswith(".whl") for w in words):
            problems.append(f"does not install this project (. or its wheel): {cmd}")
    users = [(n, i) for n, i in enumerate(final) if i.keyword == "USER"]
    if not users:
        problems.append("no USER in the final stage (runs as root)")
    else:
        n_user, user = users[-1]
        name = user.args.split(":")[0]
        if name in {"root", "0"}:
            problems.append(f"USER {user.args} is root")
        if name != UID:
            problems.append(f"USER {user.args}: expected uid {UID}")
        last_install = max((n for n, i in enumerate(final) if i.keyword == "RUN" and i.args in installs), default=-1)
        if n_user < last_install:
            problems.append("USER comes before the install")
        if any(i.keyword == "RUN" for i in final[n_user + 1 :]):
            problems.append("RUN after USER")
    creates = [i.args for i in final if i.keyword == "RUN" and "useradd" in i.args]
    if not creates or f"--uid {UID}" not in creates[0] or "/usr/sbin/nologin" not in creates[0]:
        problems.append(f"no useradd of uid {UID} with the nologin shell")
    elif not re.search(rf"chown {UID}(:{UID})? /state\b", creates[0]):
        problems.append("/state is not handed to the user")

    def last(keyword: str) -> str | None:
        found = [i.args for i in final if i.keyword == keyword]
        return found[-1] if found else None

    entrypoint, cmd_, workdir, volume = last("ENTRYPOINT"), last("CMD"), last("WORKDIR"), last("VOLUME")
    if entrypoint is None or json.loads(entrypoint) != ["cognito-fleet"]:
        problems.append(f'ENTRYPOINT {entrypoint}: expected ["cognito-fleet"]')
    if cmd_ is None or json.loads(cmd_) != ["--help"]:
        problems.append(f'CMD {cmd_}: expected ["--help"]')
    if workdir != "/state":
        problems.append(f"WORKDIR {workdir}: expected /state")
    if volume is None or "/state" not in (json.loads(volume) if volume.startswith("[") else volume.split()):
        problems.append("/state is not a VOLUME")
    env = " ".join(i.args for i in final if i.keyword == "ENV")
    for setting in ("PYTHONDONTWRITEBYTECODE=1", "PYTHONUNBUFFERED=1"):
        if setting not in env.split():
            problems.append(f"ENV {setting} missing")
    return problems


def labels(text: str) -> dict[str, str]:
    ins = parse_containerfile(text)
    final_stage = max(i.stage for i in ins)
    args = {}
    for i in ins:
        if i.stage == final_stage and i.keyword == "ARG" and "=" in i.args:
            key, value = i.args.split("=", 1)
            args[key] = value
    found: dict[str, str] = {}
    for i in ins:
        if i.stage == final_stage and i.keyword == "LABEL":
            for word in shlex.split(i.args):
                key, _, value = word.partition("=")
                found[key] = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), m.group(0)), value)
    return found


# The base image's digest in the Containerfile (its header has the command that refreshes it).
PINNED = "@sha256:2e32f7d302adc1c37428355c1e646897c0c53f4fd60b6a551245fb90ee129f91"


def test_containerfile_keeps_every_rule() -> None:
    assert containerfile_problems(CONTAINERFILE.read_text()) == []


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        (
            f"python:3.11-slim-bookworm{PINNED} AS build",
            "python:latest AS build",
            "not an explicit python 3.11 slim tag",
        ),
        (
            f"FROM docker.io/library/python:3.11-slim-bookworm{PINNED}\n",
            "FROM python:3.12-slim\n",
            "not an explicit python",
        ),
        (f"python:3.11-slim-bookworm{PINNED}\n", "python:3.11-slim-bookworm\n", "not pinned by digest"),
        ("--require-hashes -r /tmp/runtime.lock", "-r /tmp/runtime.lock", "neither hash-locked"),
        ("--require-hashes -r /tmp/build.lock", "setuptools wheel", "neither hash-locked"),
        ("--no-deps /tmp/wheels", "/tmp/wheels", "neither hash-locked"),
        ("USER 10001:10001", "USER root", "is root"),
        ("USER 10001:10001\n", "", "no USER"),
        ("/tmp/wheels/cognito_fleet-*.whl", "-e .", "editable install"),
        ("/tmp/wheels/cognito_fleet-*.whl", "'/tmp/wheels/cognito_fleet-0.1.0-py3-none-any.whl[sandbox]'", "extras"),
        ("pip install --no-cache-dir", "pip install", "without --no-cache-dir"),
        ('ENTRYPOINT ["cognito-fleet"]', 'ENTRYPOINT ["python", "-m", "fleet"]', "ENTRYPOINT"),
        ('CMD ["--help"]', 'CMD ["run"]', "CMD"),
        ('VOLUME ["/state"]', "", "not a VOLUME"),
        ("WORKDIR /state", "WORKDIR /", "WORKDIR"),
        ("PYTHONUNBUFFERED=1", "PYTHONUNBUFFERED=0", "PYTHONUNBUFFERED=1 missing"),
        ("ARG VERSION=0.1.0\n", "ARG VERSION=0.1.0\nADD https://example.com/x.tgz /x\n", "remote source"),
        ("ARG VERSION=0.1.0\n", "ARG VERSION=0.1.0\nENV AWS_SECRET_ACCESS_KEY=x\n", "looks like a secret"),
        ("ARG VERSION=0.1.0\n", "ARG VERSION=0.1.0\nENV GITHUB_TOKEN x\n", "looks like a secret"),
        ("ARG VERSION=0.1.0\n", "ARG VERSION=0.1.0\nARG API_KEY\n", "looks like a secret"),
        ("--shell /usr/sbin/nologin", "--shell /bin/bash", "nologin"),
        ('VOLUME ["/state"]\n', 'VOLUME ["/state"]\nRUN pip list\n', "RUN after USER"),
    ],
)
def test_containerfile_rules_catch_a_broken_variant(old: str, new: str, problem: str) -> None:
    text = CONTAINERFILE.read_text()
    assert old in text, old  # the variant must really differ from the file
    problems = containerfile_problems(text.replace(old, new, 1))
    assert any(problem in p for p in problems), problems


def test_containerfile_user_comes_after_the_install_even_when_moved() -> None:
    text = CONTAINERFILE.read_text()
    moved = text.replace("USER 10001:10001\n", "").replace("COPY --from=build", "USER 10001:10001\nCOPY --from=build")
    assert "USER comes before the install" in containerfile_problems(moved)


def test_containerfile_labels_match_pyproject() -> None:
    found = labels(CONTAINERFILE.read_text())
    license_ = PROJECT["license"]  # a table ({text = ...}) or, in newer metadata, an SPDX string
    assert found["org.opencontainers.image.licenses"] == (license_ if isinstance(license_, str) else license_["text"])
    assert found["org.opencontainers.image.description"] == PROJECT["description"]
    assert found["org.opencontainers.image.version"] == VERSION
    assert found["org.opencontainers.image.source"].startswith("https://")


def test_build_stage_copies_everything_the_wheel_is_made_of() -> None:
    ins = parse_containerfile(CONTAINERFILE.read_text())
    copied = {
        word.rstrip("/")
        for i in ins
        if i.stage == 0 and i.keyword == "COPY" and "--from" not in i.args
        for word in i.args.split()[:-1]
    }
    needed = {"pyproject.toml", PROJECT["readme"], "fleet"}
    needed |= {Path(source).parts[0] for sources in DATA_FILES.values() for source in sources}
    assert needed <= copied, needed - copied
    for name in copied:
        assert (ROOT / name).exists(), name
    wheel_steps = [i.args for i in ins if i.stage == 0 and i.keyword == "RUN" and "pip wheel" in i.args]
    assert len(wheel_steps) == 1 and "--no-deps" in wheel_steps[0].split()


# --- .containerignore / .dockerignore --------------------------------------------------------------------------


def ignore_patterns(path: Path) -> list[str]:
    lines = [line.strip() for line in path.read_text().splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def excluded(relpath: str, patterns: list[str]) -> bool:
    """Docker's rules, closely enough: the last matching pattern wins, `!` re-includes, `**/` matches any depth,
    and excluding a folder excludes what is in it. (fnmatch's `*` also crosses `/`: that errs towards 'excluded'.)"""
    parts = relpath.split("/")
    candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    result = False
    for raw in patterns:
        negate = raw.startswith("!")
        pattern = raw[1:] if negate else raw
        pattern = pattern.strip("/")
        forms = {pattern, pattern[3:]} if pattern.startswith("**/") else {pattern}
        for candidate in candidates:
            tails = {"/".join(candidate.split("/")[k:]) for k in range(len(candidate.split("/")))}
            hit = any(fnmatch.fnmatchcase(candidate, f) for f in forms) or (
                pattern.startswith("**/") and any(fnmatch.fnmatchcase(t, pattern[3:]) for t in tails)
            )
            if hit:
                result = not negate
                break
    return result


def test_ignore_files_exist_and_are_the_same() -> None:
    texts = [p.read_text() for p in IGNORE_FILES]
    assert texts[0] == texts[1], "keep .containerignore (podman, buildah) and .dockerignore (docker) identical"


@pytest.mark.parametrize(
    "path",
    [
        ".venv/bin/python",
        ".git/HEAD",
        "cognito-fleet-demo/fleet.csv",
        "prod.checkpoint.sqlite",
        "manifests/prod.checkpoint.sqlite-wal",
        "state/x.sqlite-shm",
        "tests/data/anything.csv",
        "tests/test_cli.py",
        "benchmarks/results-2026-11-26.json",
        ".pytest_cache/v/cache",
        ".mypy_cache/3.11/x.json",
        "fleet/__pycache__/cli.cpython-311.pyc",
        "build/lib/fleet/cli.py",
        "cognito_fleet.egg-info/PKG-INFO",
        "prod.report.csv",
        "runs/prod.report.jsonl",
    ],
)
def test_ignore_files_leave_out(path: str) -> None:
    for ignore in IGNORE_FILES:
        assert excluded(path, ignore_patterns(ignore)), f"{ignore.name} lets {path} into the build context"


def test_ignore_files_keep_everything_the_build_copies() -> None:
    wanted = [
        "pyproject.toml",
        PROJECT["readme"],
        "Containerfile",
        "requirements/runtime.lock",
        "requirements/build.lock",
    ]
    wanted += [
        p.relative_to(ROOT).as_posix()
        for p in (ROOT / "fleet").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    ]
    wanted += [source for sources in DATA_FILES.values() for source in sources]
    assert "fleet/py.typed" in wanted
    for ignore in IGNORE_FILES:
        patterns = ignore_patterns(ignore)
        left_out = [path for path in wanted if excluded(path, patterns)]
        assert left_out == [], f"{ignore.name} leaves out {left_out}"


def test_ignore_matcher_follows_docker_rules() -> None:
    assert excluded("tests/x.py", ["tests"]) and not excluded("fleet/tests.py", ["tests"])
    assert excluded("a/b/c.sqlite", ["**/*.sqlite"]) and excluded("c.sqlite", ["**/*.sqlite"])
    assert not excluded("iam/x.json", ["iam", "!iam"])
    assert not excluded("README.md", ["*.csv"])
