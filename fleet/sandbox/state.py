"""The sandbox's knobs and counters, shared by the HTTP layer and the tests that read them."""

from __future__ import annotations

import collections
import random
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from fleet.sandbox.faults import REFUSE, Injection, parse_injections, parse_outage_mode

# AWS's default Cognito quotas per account and region (requests per second), by category.
AWS_QUOTAS = {"UserPoolResourceUpdate": 15.0, "UserPoolResourceRead": 20.0, "UserPoolRead": 15.0}
OPERATION_CATEGORY = {
    "UpdateUserPoolDomain": "UserPoolResourceUpdate",
    "CreateUserPoolDomain": "UserPoolResourceUpdate",
    "DeleteUserPoolDomain": "UserPoolResourceUpdate",
    "DescribeUserPoolDomain": "UserPoolResourceRead",
    "DescribeUserPool": "UserPoolRead",
    "ListUserPools": "UserPoolRead",
}
POOL_QUOTA = 5.0  # per user pool, per operation


KNOB_HELP = {
    "latency": "seconds added to every Cognito call (plus up to 20% jitter)",
    "latency_everywhere": "the same latency on STS, ACM and Organizations calls too (a far region)",
    "throttle_rate": "share of Cognito calls answered TooManyRequestsException (HTTP 400)",
    "error_rate": "share answered InternalErrorException (HTTP 500), before any change",
    "reset_rate": "share whose connection is reset without an answer, before any change",
    "seed": "seed of the fault dice (the same seed, the same faults)",
    "enforce_quotas": "AWS's per-account Cognito quotas (token buckets), scaled by quota_scale",
    "quota_scale": "multiplies the quotas (0.1: a tenth of AWS's)",
    "propagation_delay": "seconds a domain stays UPDATING (CREATING) after a write (a create)",
    "credential_lifetime": "caps assumed-role credentials' lifetime in seconds (refresh tests)",
    "deny_accounts": "accounts whose role cannot be assumed (AccessDenied)",
    "outside_organization": "accounts outside the sandbox's organization (the hub policy's aws:ResourceOrgID)",
    "external_ids": "account -> the ExternalId its role requires",
    "fail_domains": "domains that go FAILED, not ACTIVE, after a write",
    "write_loss_before_rate": "share of UpdateUserPoolDomain requests dropped before the change",
    "write_loss_after_rate": "share of UpdateUserPoolDomain answers dropped after the change was made",
    "refuse_while_updating": "ConcurrentModificationException for an update while the domain is UPDATING",
    "edge_lag": "seconds the edge keeps serving a domain's previous certificate after its UPDATING time",
    "edge_stuck": "domains whose edge never switches: it serves their previous certificate for ever",
    "verify_signatures": "recompute every SigV4 signature with its key's secret (on by default)",
    "enforce_iam": "hold the hub and assumed roles to iam/*.json (on by default)",
    "outage_seconds": "cut every connection for this many seconds from now (an endpoint outage; then it heals)",
    "outage_mode": "how the outage looks: refuse (connections reset in the handshake), reset-after-request, "
    "html-503 (a load balancer's HTML page), blackhole (no answer until the client's read timeout)",
    "inject": 'errors on demand: [{"operation": "UpdateUserPoolDomain" or "*", "code": ..., "status": 400, '
    '"count": N or null (always), "service": null}]',
}


@dataclass
class Knobs:
    """Behaviour of the sandbox; every rate is a probability per Cognito call."""

    latency: float = 0.0  # seconds added to every Cognito call (plus up to 20% jitter)
    latency_everywhere: bool = False  # the same latency on STS, ACM and Organizations calls (a far region)
    throttle_rate: float = 0.0  # TooManyRequestsException (HTTP 400)
    error_rate: float = 0.0  # InternalErrorException (HTTP 500)
    reset_rate: float = 0.0  # connection dropped without a response
    seed: int = 1
    enforce_quotas: bool = False  # AWS's per-account quotas (scaled by quota_scale)
    quota_scale: float = 1.0
    propagation_delay: float = 0.0  # seconds a domain stays UPDATING after a write
    credential_lifetime: float | None = None  # cap assumed-role credentials' lifetime (seconds)
    deny_accounts: set[str] = field(default_factory=set)  # AssumeRole into these is AccessDenied
    outside_organization: set[str] = field(default_factory=set)  # accounts whose aws:ResourceOrgID is another org
    external_ids: dict[str, str] = field(default_factory=dict)  # account -> the ExternalId its role requires
    fail_domains: set[str] = field(default_factory=set)  # these go FAILED (not ACTIVE) after a write
    # Lost writes (UpdateUserPoolDomain only): the connection is reset before the change is applied, or after
    # it (the change is made, the caller never hears of it), as a lost packet or a 5xx at the edge would.
    write_loss_before_rate: float = 0.0
    write_loss_after_rate: float = 0.0
    refuse_while_updating: bool = False  # ConcurrentModificationException while a domain distributes
    # The edge (edge.py) serves a moved domain's previous certificate until its UPDATING time + edge_lag, and
    # for ever for the domains in edge_stuck.
    edge_lag: float = 0.0
    edge_stuck: set[str] = field(default_factory=set)
    # As AWS (auth.py): every SigV4 signature recomputed with its key's secret, every call held to the
    # caller's policy in iam/. On by default, so that a green test means something on the real network.
    verify_signatures: bool = True
    enforce_iam: bool = True
    outage_seconds: float = 0.0  # set: every connection is cut for this long, from when it was set (faults.py)
    outage_mode: str = REFUSE  # how the outage looks to a client (faults.OUTAGE_MODES)
    inject: list[Any] = field(default_factory=list)  # faults.Injection rules

    def update(self, values: dict[str, Any]) -> None:
        """All the values or none: each is checked against its knob's type first (a string where a number goes
        would break every later connection, and the config endpoint with it)."""
        checked = {key: self._checked(key, value) for key, value in values.items()}
        for key, value in checked.items():
            setattr(self, key, value)

    def _checked(self, key: str, value: Any) -> Any:
        kinds = {f.name: str(f.type) for f in fields(self)}
        if key not in kinds:
            raise KeyError(f"unknown sandbox knob {key!r}")
        kind = kinds[key]
        if kind.startswith("set["):
            if not isinstance(value, list | tuple | set) or not all(isinstance(v, str) for v in value):
                raise ValueError(f"sandbox knob {key!r}: a list of strings, not {value!r}")
            return set(value)
        if key == "inject":
            return parse_injections(value)
        if key == "outage_mode":
            return parse_outage_mode(value)
        if kind.startswith("dict["):
            if not isinstance(value, dict):
                raise ValueError(f"sandbox knob {key!r}: an object, not {value!r}")
            return value
        if kind == "bool":
            if not isinstance(value, bool):
                raise ValueError(f"sandbox knob {key!r}: true or false, not {value!r}")
            return value
        if value is None and "None" in kind:
            return None
        number = (int,) if kind == "int" else (int, float)
        if isinstance(value, bool) or not isinstance(value, number):
            raise ValueError(f"sandbox knob {key!r}: a number, not {value!r}")
        return value


class TokenBucket:
    def __init__(self, rate: float, clock: Callable[[], float]) -> None:
        self.rate, self.capacity, self.tokens = rate, max(rate, 1.0), max(rate, 1.0)
        self.clock, self.stamp = clock, clock()

    def take(self) -> bool:
        now = self.clock()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


class SandboxState:
    """Thread-safe: the werkzeug server handles each connection in its own thread."""

    def __init__(self, knobs: Knobs | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.knobs = knobs or Knobs()
        self.clock = clock
        self.lock = threading.RLock()
        self._rng = random.Random(self.knobs.seed)
        self._buckets: dict[tuple[str, ...], TokenBucket] = {}
        self.calls: collections.Counter[str] = collections.Counter()
        self.writes: collections.Counter[str] = collections.Counter()  # UpdateUserPoolDomain per domain
        self.faults: collections.Counter[str] = collections.Counter()
        self.assume_role_calls: collections.Counter[str] = collections.Counter()  # per target account
        self.edge_handshakes: collections.Counter[str] = collections.Counter()  # by SNI name (edge.py)
        self.events: list[tuple[str, str]] = []  # (operation, domain) of every Describe/Update, in order
        self.issued_secrets: set[str] = set()  # secret keys and session tokens handed out (leak tests)
        self.outage_until = 0.0  # monotonic: connections are cut until then
        self._injected: dict[int, int] = {}  # rule index -> calls it answered

    def configure(self, **values: Any) -> None:
        with self.lock:
            self.knobs.update(values)
            if "seed" in values:
                self._rng = random.Random(self.knobs.seed)
            if "outage_seconds" in values:
                self.outage_until = self.clock() + float(values["outage_seconds"])
            if "inject" in values:
                self._injected.clear()

    def in_outage(self) -> bool:
        return self.knobs.outage_seconds > 0 and self.clock() < self.outage_until

    def outage_now(self) -> str | None:
        """The outage's mode while one lasts (faults.OUTAGE_MODES), else None."""
        return self.knobs.outage_mode if self.in_outage() else None

    def injection(self, service: str, operation: str) -> Injection | None:
        """The injected error this call gets, if a rule (with calls left) matches it; counted as a fault."""
        if not self.knobs.inject:
            return None
        with self.lock:
            for i, rule in enumerate(self.knobs.inject):
                used = self._injected.get(i, 0)
                if rule.matches(service, operation) and (rule.count is None or used < rule.count):
                    self._injected[i] = used + 1
                    self.faults["injected"] += 1
                    return rule  # type: ignore[no-any-return]
        return None

    def count_fault(self, kind: str) -> None:
        with self.lock:
            self.faults[kind] += 1

    def roll(self) -> float:
        with self.lock:
            return self._rng.random()

    def allow(self, account: str, region: str, operation: str, pool: str | None) -> bool:
        """Apply AWS's quotas: False means the call is throttled."""
        category = OPERATION_CATEGORY.get(operation)
        if not self.knobs.enforce_quotas or category is None:
            return True
        scale = self.knobs.quota_scale
        keys: list[tuple[tuple[str, ...], float]] = [((account, region, category), AWS_QUOTAS[category] * scale)]
        if pool:
            keys.append(((account, region, pool, operation), POOL_QUOTA * scale))
        with self.lock:
            buckets = []
            for key, rate in keys:
                bucket = self._buckets.get(key)
                if bucket is None:
                    bucket = self._buckets[key] = TokenBucket(rate, self.clock)
                buckets.append(bucket)
            return all([b.take() for b in buckets])

    def reset_counters(self) -> None:
        with self.lock:
            self.calls.clear()
            self.writes.clear()
            self.faults.clear()
            self.assume_role_calls.clear()
            self.edge_handshakes.clear()
            self.events.clear()

    def stats(self) -> dict[str, Any]:
        with self.lock:
            knobs = asdict(self.knobs)
            knobs["deny_accounts"] = sorted(self.knobs.deny_accounts)
            knobs["fail_domains"] = sorted(self.knobs.fail_domains)
            knobs["edge_stuck"] = sorted(self.knobs.edge_stuck)
            knobs["outside_organization"] = sorted(self.knobs.outside_organization)
            return {
                "calls": dict(self.calls),
                "writes": dict(self.writes),
                "faults": dict(self.faults),
                "assume_role_calls": dict(self.assume_role_calls),
                "edge_handshakes": sum(self.edge_handshakes.values()),
                "knobs": knobs,
            }
