"""Grouped --help (fleet/cli/help_sections.py): every option of every long command is in a named section, listed
once, everyday options first. A new option must be given a section here (it would show under "Other options")."""

from __future__ import annotations

import re
from collections.abc import Iterator

import click
from click.testing import CliRunner

from fleet.cli import main
from fleet.cli.help_sections import OTHER, SECTIONS, SectionedCommand, section_of

LONG = 15  # a command with more options than this is sectioned


def commands(group: click.Group = main, prefix: str = "") -> Iterator[tuple[str, click.Command]]:
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None, name
        yield f"{prefix}{name}", command
        if isinstance(command, click.Group):
            yield from commands(command, f"{prefix}{name} ")


def unsectioned(command: click.Command) -> list[str]:
    ctx = click.Context(command)
    return [p.opts[0] for p in command.get_params(ctx) if isinstance(p, click.Option) and section_of(p) == OTHER]


def test_every_option_of_every_sectioned_command_has_a_section() -> None:
    sectioned = {name: unsectioned(c) for name, c in commands() if isinstance(c, SectionedCommand)}
    assert set(sectioned) >= {"run", "plan", "discover"}
    assert {name: missing for name, missing in sectioned.items() if missing} == {}


def test_every_long_command_is_sectioned() -> None:
    long = [n for n, c in commands() if len([p for p in c.params if isinstance(p, click.Option)]) > LONG]
    assert long and [n for n, c in commands() if n in long and not isinstance(c, SectionedCommand)] == []


def test_no_option_is_in_two_sections() -> None:
    names = [name for section in SECTIONS.values() for name in section]
    assert len(names) == len(set(names))


def test_run_help_lists_each_option_once_under_its_section_everyday_first() -> None:
    result = CliRunner().invoke(main, ["run", "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    titles = re.findall(r"^(\S[^:\n]*):$", result.output, re.MULTILINE)
    assert titles[: len(SECTIONS)] == list(SECTIONS) and OTHER not in titles
    listed = re.findall(r"^  (?:-\w, )?(--[\w-]+)", result.output, re.MULTILINE)
    declared = [
        p.opts[-1] if p.opts[0].startswith("-") and not p.opts[0].startswith("--") else p.opts[0]
        for p in main.commands["run"].params
        if isinstance(p, click.Option)
    ]
    assert sorted(listed) == sorted([*declared, "--help"])
    everyday = result.output.split("Everyday options:", 1)[1].split("\n\n", 1)[0]
    assert "--checkpoint" in everyday and "--rate-per-account" not in everyday


def test_an_option_without_a_section_is_seen() -> None:
    @click.command(cls=SectionedCommand)
    @click.option("--checkpoint")
    @click.option("--brand-new-knob")
    def planted(checkpoint: str, brand_new_knob: str) -> None:
        """A command with an option no section names."""

    assert unsectioned(planted) == ["--brand-new-knob"]
    output = CliRunner().invoke(planted, ["--help"]).output
    assert output.index("Everyday options:") < output.index(OTHER + ":") < output.index("--brand-new-knob")
