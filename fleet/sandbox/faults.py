"""Faults on demand: an endpoint outage, and any AWS error on any operation (the contract tests' lever).

- ``outage_seconds``: from the moment it is set, the endpoint is out for that long, then answers again by itself.
  ``outage_mode`` says how the outage looks to a client (AWS-NOTES, "Outages"; ``OUTAGE_MODES``):

  - ``refuse``: new connections are reset before a request can be sent (on HTTPS during the TLS handshake: the
    client sees a connection that never carried anything, as with a refused or unreachable endpoint), and a kept
    connection is reset at its next request (the request is lost);
  - ``reset-after-request``: connections are accepted (TLS too) and each request is read whole, then the
    connection is reset with no answer (a load balancer or proxy whose backend connection broke);
  - ``html-503``: each request is read and answered ``503 Service Temporarily Unavailable`` with an HTML page,
    as an Application Load Balancer with no healthy target does (``Server: awselb/2.0``, not the service's JSON
    or XML error document);
  - ``blackhole``: connections are accepted and requests read, and nothing ever comes back: the connection is
    held until the client gives up (its read timeout) and closes it.
- ``inject``: rules ``{"operation": "UpdateUserPoolDomain" | "*", "code": "InvalidParameterException",
  "status": 400, "message": "...", "count": N | null, "service": "cognito-idp" | null}``: the first ``count``
  matching calls (every one when null) are answered with that error, in the service's protocol (JSON, or STS's
  XML), before the service sees them. ``code`` ``ConnectionReset`` drops the connection instead (a request
  sent, its answer lost).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

RESET = "ConnectionReset"

REFUSE, RESET_AFTER_REQUEST, HTML_503, BLACKHOLE = "refuse", "reset-after-request", "html-503", "blackhole"
OUTAGE_MODES = (REFUSE, RESET_AFTER_REQUEST, HTML_503, BLACKHOLE)

# What an Application Load Balancer sends when its target group has no healthy target (HTTP 503).
ALB_503_BODY = (
    b"<html>\r\n<head><title>503 Service Temporarily Unavailable</title></head>\r\n<body>\r\n"
    b"<center><h1>503 Service Temporarily Unavailable</h1></center>\r\n</body>\r\n</html>\r\n"
)


def parse_outage_mode(value: Any) -> str:
    """The ``outage_mode`` knob (ValueError for another, so /_sandbox/config answers 400)."""
    if value not in OUTAGE_MODES:
        raise ValueError(f"outage_mode: one of {', '.join(OUTAGE_MODES)}, not {value!r}")
    return str(value)


@dataclass(frozen=True, slots=True)
class Injection:
    operation: str  # an API operation name, or "*"
    code: str
    status: int = 400
    message: str = "injected by the sandbox"
    count: int | None = None  # the first N matching calls; None: every one
    service: str | None = None  # "cognito-idp", "acm", "sts", "organizations"; None: any

    def matches(self, service: str, operation: str) -> bool:
        return self.operation in ("*", operation) and self.service in (None, service)


def parse_injections(value: Any) -> list[Injection]:
    """The ``inject`` knob's rules (ValueError for a malformed one, so /_sandbox/config answers 400)."""
    if not isinstance(value, list):
        raise ValueError("inject: a list of rules")
    rules = []
    for item in value:
        if isinstance(item, Injection):
            rules.append(item)
            continue
        if not isinstance(item, dict) or not {"operation", "code"} <= set(item):
            raise ValueError(f"inject: each rule needs operation and code: {item!r}")
        unknown = set(item) - set(Injection.__dataclass_fields__)
        if unknown:
            raise ValueError(f"inject: unknown fields {sorted(unknown)}")
        status = int(item.get("status", 400))
        if not 400 <= status <= 599:
            raise ValueError(f"inject: status {status} is not an error")
        count = item.get("count")
        rules.append(
            Injection(
                str(item["operation"]),
                str(item["code"]),
                status,
                str(item.get("message") or "injected by the sandbox"),
                None if count is None else int(count),
                item.get("service"),
            )
        )
    return rules
