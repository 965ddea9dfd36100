"""Where each AWS call really goes, and why: in plain sight, and never unencrypted off this machine.

botocore sends a client's calls to ``--endpoint-url`` if given, else to ``AWS_ENDPOINT_URL_<SERVICE>`` or
``AWS_ENDPOINT_URL``, else to a profile's ``services`` section or ``endpoint_url``, else to AWS's own endpoint
(https://docs.aws.amazon.com/sdkref/latest/guide/feature-ss-endpoints.html). Any of them can redirect every call,
AssumeRole answers (keys) included, so the URL each client was built with (``client.meta.endpoint_url``, after
all of them) is what the logs and the prompt show, with its source. Plain HTTP is refused unless the host is this
machine's loopback or the operator said ``--insecure-endpoint``.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from fleet.errors import FleetError

AWS_DEFAULT = "AWS default"
# botocore's ConfiguredEndpointProvider (private): its lookup order and its getters name each source.
# tests/e2e/test_endpoints.py fails if their shape changes.
_SOURCES = {
    "environment_service": None,  # the env var's own name, e.g. AWS_ENDPOINT_URL_STS
    "environment_global": "AWS_ENDPOINT_URL",
    "config_service": "profile {profile}: services section",
    "config_global": "profile {profile}: endpoint_url",
}


class InsecureEndpoint(FleetError):
    """An endpoint over plain HTTP to another machine: keys and tokens would travel unencrypted."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    service: str
    region: str
    url: str
    source: str

    @property
    def label(self) -> str:
        return f"{self.service} {self.region}"


def resolve(client: Any, service: str, region: str, flag: str | None, botocore_session: Any) -> Endpoint:
    """The endpoint ``client`` calls and the configuration it came from."""
    url = str(client.meta.endpoint_url)
    return Endpoint(service, region, url, "--endpoint-url" if flag else _source(service, url, botocore_session))


def _source(service: str, url: str, botocore_session: Any) -> str:
    from botocore.configprovider import ConfiguredEndpointProvider

    if botocore_session.get_config_variable("ignore_configured_endpoint_urls"):
        return AWS_DEFAULT
    provider = ConfiguredEndpointProvider(
        full_config=botocore_session.full_config,
        scoped_config=botocore_session.get_scoped_config(),
        client_name=service,
    )
    profile = botocore_session.profile or os.environ.get("AWS_PROFILE") or "default"
    for location in provider._ENDPOINT_URL_LOOKUP_ORDER:
        configured = getattr(provider, f"_get_endpoint_url_{location}")()
        if configured:
            name = _SOURCES.get(location) or provider._get_service_env_var_name()
            return name.format(profile=profile)
    return AWS_DEFAULT


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def require_encryption(endpoint: Endpoint, allow_plain_http: bool) -> None:
    """Refuse (before any connection) an ``http://`` endpoint on another machine, unless explicitly allowed."""
    parts = urlsplit(endpoint.url)
    if parts.scheme.lower() == "https" or allow_plain_http or is_loopback(parts.hostname or ""):
        return
    raise InsecureEndpoint(
        f"endpoint {endpoint.url} for {endpoint.label} (from {endpoint.source}) is plain HTTP to another machine: "
        "the tool would send AWS keys, session tokens and the external id unencrypted; use https:// "
        "(or --insecure-endpoint if you really mean it)"
    )


def summary(endpoints: dict[tuple[str, str], Endpoint]) -> dict[str, dict[str, str]]:
    """For logs: ``{"sts us-east-1": {"url": ..., "source": ...}, ...}``."""
    return {e.label: {"url": e.url, "source": e.source} for e in sorted(endpoints.values(), key=lambda e: e.label)}
