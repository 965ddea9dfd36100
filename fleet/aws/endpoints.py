"""Where each AWS call really goes, and why: in plain sight, and never unencrypted off this machine.

botocore sends a client's calls to ``--endpoint-url`` if given, else to ``AWS_ENDPOINT_URL_<SERVICE>`` or
``AWS_ENDPOINT_URL``, else to a profile's ``services`` section or ``endpoint_url``, else to AWS's own endpoint
(https://docs.aws.amazon.com/sdkref/latest/guide/feature-ss-endpoints.html). Any of them can redirect every call,
AssumeRole answers (keys) included, so the URL each client was built with (``client.meta.endpoint_url``, after
all of them) is what the logs and the prompt show, with its source. Plain HTTP is refused unless the host is this
machine's loopback or the operator said ``--insecure-endpoint``.

Every other way a request could leave in clear text goes through the same rule, before any connection:

- the proxy a request goes through (``HTTP_PROXY``/``HTTPS_PROXY`` unless ``NO_PROXY`` covers the host, as
  botocore resolves them: ``botocore.utils.get_environ_proxies``): a plain-HTTP request (to a loopback endpoint)
  is sent whole to its proxy, so that proxy must be loopback or https. An https request only opens a CONNECT
  tunnel through its proxy (TLS stays end to end, verified against the endpoint's own CA bundle: fleet/aws/http.py):
  any proxy is fine, and it is shown;
- the endpoints botocore's own credential providers call, which ``--endpoint-url`` does not reach: STS for a
  profile with ``role_arn`` (``source_profile``, ``credential_source``) or a web identity, the SSO portal and
  SSO-OIDC for an SSO profile. Their URL comes from ``AWS_ENDPOINT_URL_<SERVICE>``, ``AWS_ENDPOINT_URL`` or the
  profile (https://docs.aws.amazon.com/sdkref/latest/guide/feature-ss-endpoints.html), and an AssumeRole sent
  there carries a signature and brings back keys. They are checked when the hub opens, before any credential is
  resolved.

Each endpoint's summary names its URL, its source, its proxy (without the proxy's user and password) and the CA
bundle its TLS trusts.
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
    proxy: str | None = None  # the proxy requests go through (HTTP(S)_PROXY), as configured (with its password)
    ca_bundle: str | None = None  # the CA bundle its TLS trusts, and where that came from
    use: str = ""  # "credentials": called by botocore's credential providers, not by the tool

    @property
    def label(self) -> str:
        return f"{self.service} {self.region}" + (f" ({self.use})" if self.use else "")


def resolve(client: Any, service: str, region: str, flag: str | None, botocore_session: Any) -> Endpoint:
    """The endpoint ``client`` calls, the configuration it came from, its proxy and its CA bundle."""
    url = str(client.meta.endpoint_url)
    source = "--endpoint-url" if flag else _source(service, url, botocore_session)
    return Endpoint(service, region, url, source, proxy_for(url), ca_bundle(botocore_session))


def credential_endpoints(botocore_session: Any, sts_region: str) -> list[Endpoint]:
    """The endpoints botocore's own credential providers would call for this session's profile (before any of
    them is called): STS for a role (``role_arn``, followed through ``source_profile``) or a web identity, the SSO
    portal and SSO-OIDC for an SSO profile. ``--endpoint-url`` does not reach these clients: their URL is the
    configured one (environment, profile) or AWS's own. ProfileNotFound for an unknown profile."""
    full = botocore_session.full_config
    scoped = botocore_session.get_scoped_config()
    profiles, sso_sessions = full.get("profiles", {}), full.get("sso_sessions", {})
    services: dict[str, str] = {}  # service -> region
    if os.environ.get("AWS_WEB_IDENTITY_TOKEN_FILE"):
        services["sts"] = sts_region
    config, seen = scoped, set()
    while config and id(config) not in seen:  # the profile, then its source_profile, and so on
        seen.add(id(config))
        if "role_arn" in config or "web_identity_token_file" in config:
            services["sts"] = botocore_session.get_config_variable("region") or sts_region
        sso = sso_sessions.get(config.get("sso_session", ""), {})
        sso_region = config.get("sso_region") or sso.get("sso_region")
        if sso_region:
            services["sso"] = sso_region
        if sso:  # a token from an sso-session is refreshed through SSO-OIDC
            services["sso-oidc"] = sso_region or sts_region
        config = profiles.get(config.get("source_profile", ""), {})
    trust = ca_bundle(botocore_session)
    found = []
    for service, region in sorted(services.items()):
        url, source = _configured(service, botocore_session)
        url = url or _DEFAULT_URL[service].format(region=region)
        found.append(Endpoint(service, region, url, source, proxy_for(url), trust, use="credentials"))
    return found


_DEFAULT_URL = {
    "sts": "https://sts.{region}.amazonaws.com",
    "sso": "https://portal.sso.{region}.amazonaws.com",
    "sso-oidc": "https://oidc.{region}.amazonaws.com",
}


def _configured(service: str, botocore_session: Any) -> tuple[str | None, str]:
    """The URL configured for ``service`` (environment or profile) and its source; (None, AWS default) if none."""
    from botocore.configprovider import ConfiguredEndpointProvider

    if botocore_session.get_config_variable("ignore_configured_endpoint_urls"):
        return None, AWS_DEFAULT
    provider = ConfiguredEndpointProvider(
        full_config=botocore_session.full_config,
        scoped_config=botocore_session.get_scoped_config(),
        client_name=service,
    )
    url = provider.provide()
    return (str(url), _source(service, str(url), botocore_session)) if url else (None, AWS_DEFAULT)


def proxy_for(url: str) -> str | None:
    """The proxy botocore sends a request for ``url`` through: its scheme's ``*_PROXY`` unless ``NO_PROXY`` covers
    the host (what botocore's EndpointCreator does when the client's config names no proxies: ours never does)."""
    from botocore.httpsession import ProxyConfiguration
    from botocore.utils import get_environ_proxies

    proxy = ProxyConfiguration(proxies=get_environ_proxies(url)).proxy_url_for(url)
    return str(proxy) if proxy else None


def ca_bundle(botocore_session: Any) -> str:
    """The CA bundle every client's TLS trusts (fleet/aws/http.py), and its source."""
    from botocore.httpsession import get_cert_path

    configured = botocore_session.get_config_variable("ca_bundle")
    if not configured:
        return f"{get_cert_path(True)} (botocore default)"
    source = "AWS_CA_BUNDLE" if os.environ.get("AWS_CA_BUNDLE") else f"profile {_profile(botocore_session)}"
    return f"{configured} ({source})"


def redacted(proxy: str) -> str:
    """A URL (a proxy's, a Pushgateway's) without its user and password: they are credentials."""
    parts = urlsplit(proxy)
    if "@" not in parts.netloc:
        return proxy
    return parts._replace(netloc="***@" + parts.netloc.rsplit("@", 1)[1]).geturl()


def _source(service: str, url: str, botocore_session: Any) -> str:
    from botocore.configprovider import ConfiguredEndpointProvider

    if botocore_session.get_config_variable("ignore_configured_endpoint_urls"):
        return AWS_DEFAULT
    provider = ConfiguredEndpointProvider(
        full_config=botocore_session.full_config,
        scoped_config=botocore_session.get_scoped_config(),
        client_name=service,
    )
    profile = _profile(botocore_session)
    for location in provider._ENDPOINT_URL_LOOKUP_ORDER:
        configured = getattr(provider, f"_get_endpoint_url_{location}")()
        if configured:
            name = _SOURCES.get(location) or provider._get_service_env_var_name()
            return name.format(profile=profile)
    return AWS_DEFAULT


def _profile(botocore_session: Any) -> str:
    return str(botocore_session.profile or os.environ.get("AWS_PROFILE") or "default")


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def require_encryption(endpoint: Endpoint, allow_plain_http: bool) -> None:
    """Refuse (before any connection) an ``http://`` endpoint on another machine, or an ``http://`` endpoint whose
    requests go through a proxy on another machine over plain HTTP, unless explicitly allowed."""
    parts = urlsplit(endpoint.url)
    if parts.scheme.lower() == "https" or allow_plain_http:
        return
    if not is_loopback(parts.hostname or ""):
        raise InsecureEndpoint(
            f"endpoint {endpoint.url} for {endpoint.label} (from {endpoint.source}) is plain HTTP to another "
            f"machine: {_WHAT_TRAVELS}; use https:// (or --insecure-endpoint if you really mean it)"
        )
    proxy = urlsplit(endpoint.proxy or "")
    if endpoint.proxy and proxy.scheme.lower() != "https" and not is_loopback(proxy.hostname or ""):
        raise InsecureEndpoint(
            f"endpoint {endpoint.url} for {endpoint.label} (from {endpoint.source}) is plain HTTP, and its requests "
            f"go through the proxy {redacted(endpoint.proxy)} (HTTP_PROXY) on another machine: {_WHAT_TRAVELS}; "
            f"exclude the endpoint's host with NO_PROXY (e.g. NO_PROXY={parts.hostname}), use an https:// or "
            "loopback proxy (or --insecure-endpoint if you really mean it)"
        )


_WHAT_TRAVELS = "the tool would send AWS keys, session tokens and the external id unencrypted"


def summary(endpoints: dict[tuple[str, str], Endpoint]) -> dict[str, dict[str, str]]:
    """For logs: ``{"sts us-east-1": {"url": ..., "source": ..., "ca_bundle": ...}, ...}``, with ``"proxy"``
    (user and password masked) where requests go through one."""
    out = {}
    for e in sorted(endpoints.values(), key=lambda e: e.label):
        entry = {"url": e.url, "source": e.source}
        if e.proxy:
            entry["proxy"] = redacted(e.proxy)
        if e.ca_bundle and urlsplit(e.url).scheme.lower() == "https":
            entry["ca_bundle"] = e.ca_bundle
        out[e.label] = entry
    return out
