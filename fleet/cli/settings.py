"""The settings file: every command's options from TOML, through click's own ``default_map``.

Where: ``--config FILE``, else ``$COGNITO_FLEET_CONFIG``, else ``cognito-fleet.toml`` in the working directory (if
there). What: a table per command (``[run]``, ``[plan]``, ``[discover]``, ``[reconcile]``, ...) and ``[defaults]``
for every command that has the option; keys are the long option names without the dashes (``rate-per-account =
5``, ``wait = false`` for ``--no-wait``), or an argument's name (``manifest = "prod.csv"``). A relative path is
relative to the file (a crontab's working directory is not the repository's).

Precedence is click's: command line > environment > file (``default_map``) > the dataclasses' defaults. Unknown
tables and keys, and values of the wrong type, are errors naming ``file:line:column`` (tomllib gives no positions:
the key's line is found in the text). Which file set which options goes into ``run_started`` and the run record.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from fleet.cli.state_options import LocationArg, StateArg
from fleet.errors import FleetError
from fleet.migration.engine import SettingsFile
from fleet.state.s3_objects import SCHEME

CONFIG_ENV = "COGNITO_FLEET_CONFIG"
DEFAULT_NAME = "cognito-fleet.toml"
DEFAULTS = "defaults"
_META = "fleet.settings"
_HEADER = re.compile(r"""^\s*\[\s*([^\[\]]+?)\s*\]\s*(?:#.*)?$""")
_KEY = re.compile(r"""^\s*(["']?)([A-Za-z0-9_.-]+)\1\s*=""")
_AT = re.compile(r"\(at line (\d+), column (\d+)\)")


class SettingsError(FleetError, click.ClickException):
    """A settings file that cannot be used: the message names file, line and column (exit 2, nothing done). A
    ClickException too: a group other than ours (a test's, a plug-in's) shows it as a usage error (FleetError's
    exit code, 2, comes first)."""


@dataclass(frozen=True, slots=True)
class Loaded:
    """A read settings file: its tables, and where each key is written (line, column)."""

    path: Path
    sha256: str
    tables: dict[str, dict[str, Any]]
    text: str

    def where(self, table: str, key: str | None = None) -> str:
        line, column = _position(self.text, table, key)
        return f"{self.path}:{line}:{column}"


def _position(text: str, table: str, key: str | None) -> tuple[int, int]:
    """(line, column) of ``key`` in ``[table]`` (or of the table's header); (1, 1) when not found."""
    current = ""
    for number, line in enumerate(text.splitlines(), start=1):
        header = _HEADER.match(line)
        if header:
            current = header.group(1).strip().strip("\"'")
            if key is None and current == table:
                return number, line.index("[") + 1
            continue
        found = _KEY.match(line)
        if key is not None and found and current == table and found.group(2) == key:
            return number, found.start(2) + 1 - len(found.group(1))
    return 1, 1


# A file found in the working directory must not loosen a control: these come from the command line or their
# environment variable only (a plan's pin is the approver's word; trusting a directory or plain HTTP is a choice
# made where it is seen).
COMMAND_LINE_ONLY = frozenset({"plan-sha256", "trust-state-dir", "insecure-endpoint"})


def _controlled_by_others(path: Path) -> str | None:
    """Why someone other than you (or root) could change the file, if they could: it sets the run's options."""
    try:
        st = path.stat()
    except OSError:
        return None  # reading it says why
    if st.st_uid not in (os.geteuid(), 0):
        return f"it belongs to uid {st.st_uid}, not to you or root"
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"it is writable by group or others (mode {stat.S_IMODE(st.st_mode):04o}; chmod go-w {path})"
    return None


def read(path: Path) -> Loaded:
    """Read and parse ``path`` (SettingsError: someone else could change it, cannot read, not TOML, a key outside a
    table, a non-table)."""
    why = _controlled_by_others(path)
    if why is not None:
        raise SettingsError(f"{path}: the settings file is refused: {why}: whoever can change it controls the run")
    try:
        data = path.read_bytes()
        text = data.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        why = getattr(exc, "strerror", None) or type(exc).__name__
        raise SettingsError(f"{path}: cannot read the settings file: {why}") from None
    try:
        parsed = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        at = _AT.search(str(exc))
        place = f"{path}:{at.group(1)}:{at.group(2)}" if at else str(path)
        raise SettingsError(f"{place}: not TOML: {_AT.sub('', str(exc)).strip()}") from None
    loaded = Loaded(path, hashlib.sha256(data).hexdigest(), {}, text)
    for name, table in parsed.items():
        if not isinstance(table, dict):
            raise SettingsError(
                f"{loaded.where('', name)}: {name}: every setting goes in a table ([run], [defaults], ...)"
            )
        loaded.tables[name] = table
    return loaded


def locate(given: str | None, cwd: Path) -> Path | None:
    """The file to read: ``--config``/``$COGNITO_FLEET_CONFIG`` (click gives either as ``given``), else the working
    directory's cognito-fleet.toml, else none."""
    if given:
        return Path(given)
    here = cwd / DEFAULT_NAME
    return here if here.is_file() else None


def keys_of(command: click.Command) -> dict[str, click.Parameter]:
    """The keys a command takes: its long options without the dashes, and its arguments' names."""
    out: dict[str, click.Parameter] = {}
    for param in command.params:
        if param.name == "config":
            continue
        if isinstance(param, click.Argument) and param.name:
            out[param.name] = param
        for opt in param.opts:
            if opt.startswith("--"):
                out[opt[2:]] = param
    return out


def _commands(group: click.Group) -> Iterator[tuple[str, click.Command]]:
    """Every command of ``group`` (those it loads by name when asked included: ``fleet.cli.LAZY_COMMANDS``), not
    the sub-groups."""
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        if command is not None and not isinstance(command, click.Group):
            yield name, command


def check_tables(loaded: Loaded, group: click.Group) -> None:
    """Every table names a command (or is [defaults]) and every key of it is that command's option; every
    [defaults] key is some command's option."""
    names = dict(_commands(group))
    for table in loaded.tables:
        if table != DEFAULTS and table not in names:
            known = ", ".join(sorted(names))
            raise SettingsError(f"{loaded.where(table)}: [{table}]: not a command ({known}; or [defaults])")
        for key in loaded.tables[table]:
            if key in COMMAND_LINE_ONLY:
                raise SettingsError(
                    f"{loaded.where(table, key)}: [{table}] {key}: give --{key} on the command line (or its "
                    "environment variable), not in a settings file: a file must not loosen a control"
                )
        if table != DEFAULTS:  # every command reading the file checks every table: a typo in [run] fails validate
            keys = keys_of(names[table])
            for key in loaded.tables[table]:
                if key not in keys:
                    raise SettingsError(f"{loaded.where(table, key)}: [{table}] {key}: {table} has no option --{key}")
    every = {key for command in names.values() for key in keys_of(command)}
    for key in loaded.tables.get(DEFAULTS, {}):
        if key not in every:
            raise SettingsError(f"{loaded.where(DEFAULTS, key)}: [defaults] {key}: no command has --{key}")


def default_map(loaded: Loaded, name: str, command: click.Command, ctx: click.Context) -> dict[str, Any]:
    """The command's ``default_map`` ({parameter name: value}): [defaults] (its keys this command has), then the
    command's own table over it. Each value is checked as click will (type, range, the option's own check)."""
    keys = keys_of(command)
    out: dict[str, Any] = {}
    for table in (DEFAULTS, name):
        for key, value in loaded.tables.get(table, {}).items():
            param = keys.get(key)
            if param is None:
                if table == DEFAULTS:
                    continue  # another command's option
                raise SettingsError(f"{loaded.where(table, key)}: [{table}] {key}: {name} has no option --{key}")
            assert param.name is not None
            out[param.name] = _value(loaded, table, key, param, value, ctx)
    return out


def _value(loaded: Loaded, table: str, key: str, param: click.Parameter, value: Any, ctx: click.Context) -> Any:
    """The file's value as click takes it from a ``default_map``, checked now so the error names the line."""
    where = f"{loaded.where(table, key)}: [{table}] {key}"
    many = param.multiple or param.nargs != 1
    if isinstance(value, dict):
        raise SettingsError(f"{where}: a table is not a value")
    if many:
        value = list(value) if isinstance(value, list) else [value]
    elif isinstance(param, click.Option) and param.is_flag:
        if not isinstance(value, bool):
            raise SettingsError(f"{where}: must be true or false, not {value!r}")
    elif isinstance(value, list):
        if not isinstance(param.type, click.types.StringParamType):
            raise SettingsError(f"{where}: one value, not a list")
        value = ",".join(str(v) for v in value)  # regions = ["eu-west-1", "us-east-1"]: the comma list
    elif isinstance(value, bool):
        raise SettingsError(f"{where}: {value!r} is not a value of --{key}")
    if isinstance(param.type, click.Path | StateArg | LocationArg):  # a file, or s3:// (left as it is)
        value = [_relative(loaded, v) for v in value] if many else _relative(loaded, value)
    elif isinstance(param.type, click.types.StringParamType) and not many and not isinstance(value, bool):
        value = str(value)  # max-failures = 5, external-id = 123
    try:
        checked = param.type_cast_value(ctx, value)
        if param.callback is not None:
            param.callback(ctx, param, checked)
    except click.BadParameter as exc:
        raise SettingsError(f"{where}: {exc.message}") from None
    return value


def _relative(loaded: Loaded, value: Any) -> Any:
    if isinstance(value, str) and value and not value.startswith(("@", SCHEME)) and not Path(value).is_absolute():
        return str(loaded.path.parent / value)
    return value


def use(ctx: click.Context, _param: click.Parameter, given: str | None) -> str | None:
    """``--config``'s callback (eager: before every other option is read): the file's values become the command's
    ``default_map``, below the command line and the environment, above the defaults."""
    path = locate(given, Path.cwd())
    if path is None or ctx.resilient_parsing:
        return given
    loaded = read(path)
    root = ctx.find_root().command
    if isinstance(root, click.Group):
        check_tables(loaded, root)
    name = ctx.info_name or ctx.command.name or ""
    ctx.default_map = {**(ctx.default_map or {}), **default_map(loaded, name, ctx.command, ctx)}
    ctx.meta[_META] = loaded
    return str(path)


def used(ctx: click.Context | None = None) -> SettingsFile | None:
    """Which file set which of this command's options (for run_started and the run record); None if none did."""
    ctx = ctx or click.get_current_context(silent=True)
    loaded: Loaded | None = ctx.meta.get(_META) if ctx is not None else None
    if ctx is None or loaded is None:
        return None
    keys = {param.name: key for key, param in keys_of(ctx.command).items() if isinstance(param, click.Option)}
    keys.update({p.name: p.name for p in ctx.command.params if isinstance(p, click.Argument) and p.name})
    options = sorted(
        keys[name]
        for name in (ctx.default_map or {})
        if name in keys and ctx.get_parameter_source(name) is ParameterSource.DEFAULT_MAP
    )
    return SettingsFile(str(loaded.path), loaded.sha256, tuple(options))


def config_option() -> click.Option:
    return click.Option(
        ["--config"],
        envvar=CONFIG_ENV,
        is_eager=True,
        expose_value=False,
        callback=use,
        metavar="FILE",
        help=f"Read options from this TOML file ([defaults] and [COMMAND] tables; the command line wins) "
        f"[env: {CONFIG_ENV}; default: ./{DEFAULT_NAME} if present].",
    )


def attach(group: click.Group) -> None:
    """Give every command ``group`` holds (not the sub-groups) ``--config``; a command the group loads by name later
    gets it then (the group calls this again)."""
    for command in group.commands.values():
        if not isinstance(command, click.Group) and not any(p.name == "config" for p in command.params):
            command.params.append(config_option())
