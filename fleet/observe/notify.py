"""A message when a person is needed: once per run, to every ``--notify`` target, and only then.

What needs a person (``reasons``): failed rows (stuck ones named as such), a failed canary, the failure budget
spent, an outage that stopped the run, domains the plan cannot move (drifted since the plan), a held fleet (once:
the run that first finds it held), a command that ended in an error, and the watcher's findings (domains off their
target, edges not serving it). A quiet rerun (unchanged, verified, pending) sends nothing.

Targets: an HTTPS webhook (a JSON body with a ``text`` line, which Slack, Teams and generic receivers show, plus
the structured fields) or ``sns:TOPIC_ARN`` (SNS Publish as the hub identity). A message that cannot be delivered
is logged (``notify_failed``); the run's result and exit code never change.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import anyio

from fleet.aws.calls import Calls
from fleet.aws.credentials import AwsSettings, Hub
from fleet.aws.endpoints import is_loopback
from fleet.aws.limits import DEFAULT_RATE_PER_ACCOUNT, Limits
from fleet.aws.retry import BackoffPolicy, classify
from fleet.events import event
from fleet.observe.facts import RunFacts
from fleet.outcome import Status

SNS = "sns:"
_TOPIC = re.compile(r"arn:aws[a-z-]*:sns:([a-z0-9-]+):(\d{12}):[A-Za-z0-9_-]{1,256}(\.fifo)?")
TIMEOUT = 10.0  # seconds per webhook request: a stuck receiver never holds the run's exit
SHOWN = 20  # domains named per reason in the text line (all of them are in the structured fields)
STUCK = "StuckUpdating"  # fleet.migration.stuck.STUCK: a failed row that waited too long


@dataclass(frozen=True, slots=True)
class Webhook:
    url: str


@dataclass(frozen=True, slots=True)
class Topic:
    arn: str

    @property
    def region(self) -> str:
        return self.arn.split(":")[3]


Target = Webhook | Topic


def target(text: str) -> Target:
    """``--notify``'s value: ``sns:TOPIC_ARN`` or an https:// URL (http:// only to this machine's loopback, as
    for AWS endpoints: a webhook URL is a secret and the message names the fleet's domains). ValueError says why
    not."""
    value = text.strip()
    if value.startswith(SNS):
        arn = value[len(SNS) :]
        if not _TOPIC.fullmatch(arn):
            raise ValueError(f"{value!r}: not an SNS topic ARN (sns:arn:aws:sns:REGION:ACCOUNT:NAME)")
        return Topic(arn)
    parts = urlsplit(value)
    if parts.scheme == "https" and parts.hostname:
        return Webhook(value)
    if parts.scheme == "http" and parts.hostname:
        if is_loopback(parts.hostname):
            return Webhook(value)
        raise ValueError(
            f"{parts.scheme}://{parts.hostname}/...: plain HTTP to another machine (the webhook's URL and the "
            "fleet's domains would travel unencrypted); use https://"
        )
    raise ValueError(f"{value!r}: neither an https:// webhook URL nor sns:TOPIC_ARN")


@dataclass(frozen=True, slots=True)
class Reason:
    kind: str  # failed | stuck | canary | budget | outage | drifted-since-plan | held | error | off-target | edge
    summary: str
    domains: tuple[str, ...] = ()


def reasons(facts: RunFacts, held_before: bool = False) -> list[Reason]:
    """What in this run needs a person; empty for a quiet run. ``held_before``: the last run of this job already
    found the fleet held (its metrics say so): a hold is told once."""
    out: list[Reason] = []
    if facts.held and not held_before:
        out.append(Reason("held", facts.held))
    if facts.held and facts.command != "check":
        return out  # nothing was looked at: the domains are the last report's, told when they were new
    error = facts.extra.get("error")
    if error:
        out.append(Reason("error", str(error)))
    stopped = facts.stopped or ""
    for kind, marker in (("canary", "canary failed"), ("budget", "failure budget exceeded")):
        if stopped.startswith(marker):
            out.append(Reason(kind, stopped))
    if "--outage-patience" in stopped:
        out.append(Reason("outage", stopped))
    failed = [d for d in facts.domains if d.status == Status.FAILED and d.error_code != STUCK]
    stuck = [d for d in facts.domains if d.status == Status.FAILED and d.error_code == STUCK]
    drifted = [d for d in facts.domains if d.status == Status.DRIFTED_SINCE_PLAN]
    for kind, rows, what in (
        ("failed", failed, "failed"),
        ("stuck", stuck, "stuck (written, still not served past --stuck-after)"),
        ("drifted-since-plan", drifted, "not written: changed since the plan (make a new plan)"),
    ):
        if rows:
            codes = sorted({d.error_code or "unknown" for d in rows})
            out.append(Reason(kind, f"{len(rows)} domains {what} ({', '.join(codes)})", tuple(d.domain for d in rows)))
    for finding in facts.extra.get("findings", ()):
        out.append(Reason(str(finding["kind"]), str(finding["summary"]), tuple(finding["domains"])))
    return out


def message(facts: RunFacts, why: Sequence[Reason]) -> dict[str, Any]:
    """The body: a ``text`` line for people (Slack, Teams), then the structured fields for machines."""
    parts = []
    for r in why:
        named = ", ".join(r.domains[:SHOWN]) + (f" and {len(r.domains) - SHOWN} more" if len(r.domains) > SHOWN else "")
        parts.append(f"{r.summary}: {named}" if named else r.summary)
    where = facts.manifest + (f" shard {facts.shard}" if facts.shard else "")
    return {
        "text": f"cognito-fleet {facts.command} {where} (exit {facts.exit_code}) needs a person: " + "; ".join(parts),
        "command": facts.command,
        "manifest": facts.manifest,
        "shard": facts.shard or None,
        "run_id": facts.run_id,
        "exit_code": facts.exit_code,
        "reasons": [{"kind": r.kind, "summary": r.summary, "domains": list(r.domains)} for r in why],
    }


def send(targets: Sequence[Target], body: dict[str, Any], aws: AwsSettings) -> int:
    """Deliver ``body`` to every target (each once); returns how many were delivered. Each one that fails is a
    ``notify_failed`` event, never an exception."""
    delivered = 0
    for where in targets:
        label = where.url if isinstance(where, Webhook) else SNS + where.arn
        try:
            if isinstance(where, Webhook):
                _post(where.url, body)
            else:
                anyio.run(_publish, where, body, aws)
        except Exception as exc:  # whatever the receiver did: logged, the run's result unchanged
            failure = classify(exc)
            event("notify_failed", "warning", target=_redacted(label), code=failure.code, message=failure.message)
            continue
        delivered += 1
        event("notified", target=_redacted(label), reasons=[r["kind"] for r in body["reasons"]])
    return delivered


def _redacted(label: str) -> str:
    """A webhook's path is its secret (Slack's, Teams'): the logs name its host only."""
    if label.startswith(SNS):
        return label
    parts = urlsplit(label)
    return f"{parts.scheme}://{parts.netloc}/..."


def _post(url: str, body: dict[str, Any]) -> None:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "User-Agent": "cognito-fleet"},
        method="POST",
    )
    with _OPENER.open(request, timeout=TIMEOUT) as answer:  # the scheme was checked by target()
        answer.read()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect could lead to plain HTTP elsewhere: not followed (the 3xx is a delivery failure, logged)."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


async def _publish(topic: Topic, body: dict[str, Any], aws: AwsSettings) -> None:
    """SNS Publish as the hub identity (its profile, endpoints and the plain-HTTP rule); retried like every call."""
    calls = Calls(Limits(None, DEFAULT_RATE_PER_ACCOUNT), BackoffPolicy(max_attempts=3))
    async with Hub(aws, calls) as hub:
        sns = await hub.client("sns", topic.region)
        await calls.call(
            sns,
            "Publish",
            None,  # the hub's own call, as its STS calls: no politeness limit of an account
            topic.arn,
            despite_stop=True,
            TopicArn=topic.arn,
            Subject=f"cognito-fleet {body['command']}: a person is needed"[:100],
            Message=body["text"] + "\n\n" + json.dumps(body, indent=2),
        )
