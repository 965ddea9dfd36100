"""Options of the commands that take a state: a local file or ``s3://BUCKET/KEY`` (docs/s3-state.md), and the
AWS settings an S3 state is read and written with (the hub identity: same chain, ``--profile``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from fleet.aws.credentials import AwsSettings
from fleet.migration.state_backend import StatePath
from fleet.state.s3_lock import DEFAULT_LEASE
from fleet.state.s3_objects import S3Location, StateLocationError, is_s3


class StateArg(click.ParamType[StatePath]):
    """A state: ``s3://BUCKET/KEY`` as an S3Location, anything else a local path (checked like click.Path)."""

    name = "STATE"

    def __init__(self, exists: bool = False) -> None:
        self._local = click.Path(dir_okay=False, exists=exists, path_type=Path)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> StatePath:
        if isinstance(value, S3Location | Path):
            return value
        if is_s3(value):
            try:
                return S3Location.parse(str(value))
            except StateLocationError as exc:
                self.fail(str(exc), param, ctx)
        local: Path = self._local.convert(value, param, ctx)
        return local


class LocationArg(StateArg):
    """A file argument that may also be ``s3://BUCKET/KEY`` (a report, a record): a state's rules, another name."""

    name = "PATH"


RUN_CHECKPOINT = click.option(
    "--checkpoint",
    type=StateArg(),
    help="SQLite checkpoint, or s3://BUCKET/KEY (docs/s3-state.md) [default: beside the manifest, "
    "NAME.checkpoint.sqlite]",
)
STATE_REGION = click.option(
    "--state-region",
    help="The region of an s3:// state's bucket [default: asked of S3 (GetBucketLocation)].",
)
LOCK_LEASE = click.option(
    "--lock-lease",
    type=click.FloatRange(5, 3600),
    default=DEFAULT_LEASE,
    show_default=True,
    help="Seconds an s3:// state's lock lasts without renewal (renewed every third of it while the run goes on); "
    "a lock older than its lease is taken over by the next run.",
)


def state_aws_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """What a state command needs to reach an s3:// state (a local one ignores them)."""
    for option in reversed(
        [
            click.option("--profile", help="AWS profile of the hub identity (an s3:// state)."),
            click.option("--endpoint-url", help="Send the S3 calls here (e.g. the sandbox)."),
            click.option("--insecure-endpoint", is_flag=True, help="Allow an http:// endpoint on another machine."),
            STATE_REGION,
        ]
    ):
        command = option(command)
    return command


def state_aws(opts: dict[str, Any]) -> AwsSettings:
    return AwsSettings(
        profile=opts.get("profile"),
        endpoint_url=opts.get("endpoint_url"),
        insecure_endpoint=bool(opts.get("insecure_endpoint")),
        state_region=opts.get("state_region"),
    )
