"""Faults on demand: an endpoint outage, and any AWS error on any operation (the contract tests' lever).

- ``outage_seconds``: from the moment it is set, every connection is cut for that long: new connections are
  reset before a request can be sent (on HTTPS during the TLS handshake: the client sees a connection that never
  carried anything, as with a refused or unreachable endpoint), and a kept connection is reset at its next
  request (the request is lost). Then the sandbox answers again by itself.
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
