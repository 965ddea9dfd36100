"""The command line: the `cognito-fleet` group, its one ``except`` (errors -> one line and the exit code), and the
commands, each in a module of this package (run/plan, discover, report, the state's commands; the sandbox adds its
own). Arguments become settings and the pipeline runs; no business logic here. With the sandbox's own commands,
the only users of click and rich.

May import anything of ``fleet``; nothing imports it but ``fleet.__main__`` (the entry point).
"""

from __future__ import annotations

import importlib
import sys
import traceback
from pathlib import Path
from typing import Any, TextIO, cast

import click

from fleet.cli import logs, options, settings
from fleet.cli.discover_command import discover
from fleet.cli.option_groups import ALLOWED_HELP, EXIT_HELP
from fleet.cli.reconcile_command import reconcile
from fleet.cli.report_command import report_command
from fleet.cli.run_commands import plan_command, run
from fleet.cli.state_commands import history_command, hold_command, release_command, rollback, unlock_command
from fleet.errors import EXIT_FAILED_ROWS, FleetError, reduce_group
from fleet.manifest import parse
from fleet.migration import allow_list

# The sandbox's own commands, imported when named (or listed by --help): the CLI does not import the sandbox, which
# imports the CLI's helpers, so the two make no import cycle (click's "lazily loading subcommands" pattern).
LAZY_COMMANDS = {"sandbox": "fleet.sandbox.cli:sandbox", "demo": "fleet.sandbox.cli:demo"}


class _Commands(click.Group):
    """The command group, with the CLI's one ``except``: expected errors are one line and their exit code;
    anything unexpected is one line and exit 1 (the traceback only with --log-level debug)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *LAZY_COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in LAZY_COMMANDS and cmd_name not in self.commands:
            module, name = LAZY_COMMANDS[cmd_name].split(":")
            command = getattr(importlib.import_module(module), name)
            assert isinstance(command, click.Command), LAZY_COMMANDS[cmd_name]
            self.add_command(command, cmd_name)
            settings.attach(self)  # its --config, as every command has
        return super().get_command(ctx, cmd_name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            try:
                return super().invoke(ctx)
            except BaseExceptionGroup as group:  # a task group's failures: the one that explains, not the group
                raise reduce_group(group) from None
        except FleetError as exc:
            logs.error("\n".join(exc.lines()), exc.exit_code, type(exc).__name__)
            sys.exit(exc.exit_code)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except Exception as exc:
            if logs.debug_enabled():
                traceback.print_exc()
            hint = "" if logs.debug_enabled() else " (for the traceback: COGNITO_FLEET_DEBUG=1, or --log-level debug)"
            logs.error(f"error: unexpected {type(exc).__name__}: {exc}{hint}", EXIT_FAILED_ROWS, "Unexpected")
            sys.exit(EXIT_FAILED_ROWS)


@click.group(cls=_Commands, epilog=EXIT_HELP)
@click.version_option(package_name="cognito-fleet")
def main() -> None:
    """Move Cognito user pool custom domains onto new ACM certificates, across many accounts."""
    # `cognito-fleet run ... | head -1`: a reader that goes away must not stop a run half-way; its output is dropped.
    sys.stdout, sys.stderr = Unbroken.wrap(sys.stdout), Unbroken.wrap(sys.stderr)
    logs.unbind_all()  # this command's events carry its own fields only (reconcile binds its state, say)


class Unbroken:
    """A stream that a closed pipe does not break: after the reader leaves, writes are dropped (no
    BrokenPipeError mid-run, none at exit), and the command ends with its own exit code."""

    def __init__(self, stream: TextIO) -> None:
        self._stream, self.broken = stream, False

    @classmethod
    def wrap(cls, stream: TextIO) -> TextIO:
        return stream if isinstance(stream, Unbroken) else cast(TextIO, cls(stream))

    def write(self, text: str) -> int:
        if not self.broken:
            try:
                self._stream.write(text)
            except BrokenPipeError:
                self.broken = True
        return len(text)

    def flush(self) -> None:
        if not self.broken:
            try:
                self._stream.flush()
            except BrokenPipeError:
                self.broken = True

    def __getattr__(self, name: str) -> Any:  # isatty, fileno, encoding ... as the stream has them
        return getattr(self._stream, name)


@main.command()
@click.argument("manifest", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--allowed-accounts", callback=lambda _c, _p, v: options.id_list(v), help=ALLOWED_HELP)
def validate(manifest: Path, allowed_accounts: frozenset[str] | None) -> None:
    """Check a manifest without calling AWS: list every problem, or summarise it."""
    m = parse(manifest)
    nothing = "; nothing to do" if not m.rows else ""
    click.echo(f"{manifest}: valid: {len(m.rows)} rows, {len(m.accounts)} accounts, {len(m.regions)} regions{nothing}")
    strangers = allow_list.outside(m.accounts, allowed_accounts or m.accounts)
    if strangers:
        click.echo("warning: " + allow_list.warning(strangers, "--allowed-accounts"), err=True)


for _command in (
    run,
    plan_command,
    discover,
    reconcile,
    rollback,
    hold_command,
    release_command,
    history_command,
    report_command,
    unlock_command,
):
    main.add_command(_command)


settings.attach(main)  # every command reads --config / $COGNITO_FLEET_CONFIG / ./cognito-fleet.toml
