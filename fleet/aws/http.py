"""TLS for every client: the server's certificate *and* its hostname are verified, with one context per CA bundle.

botocore's ``create_urllib3_context`` leaves ``check_hostname`` off because urllib3 checks names itself;
aiobotocore hands that context to aiohttp, which does not. Left as is, any certificate signed by a trusted CA
would be accepted for any host, and a man in the middle would read every AssumeRole answer. So the context is
built here, with ``CERT_REQUIRED`` and ``check_hostname``, and never turned off.

One context per CA bundle is shared by every client: aiobotocore builds a new context and reloads the bundle
for each client's connector, which with thousands of accounts dominated the run's CPU.
"""

from __future__ import annotations

import ssl
from functools import cache
from typing import Any

import aiohttp
from aiobotocore.httpsession import AIOHTTPSession
from botocore.httpsession import create_urllib3_context, get_cert_path


def verifying_context() -> ssl.SSLContext:
    """A new client context that verifies the chain and the hostname (botocore's ciphers and options)."""
    context: ssl.SSLContext = create_urllib3_context()
    context.verify_mode = ssl.CERT_REQUIRED
    context.check_hostname = True
    return context


def trusting(ca_bundle: str | None) -> ssl.SSLContext:
    """A new verifying context that trusts ``ca_bundle`` (AWS_CA_BUNDLE or a profile's; None: the system's)."""
    context = verifying_context()
    if ca_bundle:
        context.load_verify_locations(ca_bundle, None, None)
    else:
        context.load_default_certs(ssl.Purpose.SERVER_AUTH)
    return context


@cache
def shared_ssl_context(ca_bundle: str | None) -> ssl.SSLContext:
    """The one verifying context per CA bundle that every plain client shares."""
    return trusting(ca_bundle)


class SharedTLSSession(AIOHTTPSession):  # type: ignore[misc]
    """aiobotocore's HTTP session with verifying TLS (shared context when nothing client-specific is set).

    Private hooks of aiobotocore 2.25.1 (``_get_ssl_context``, ``_create_connector``, ``_verify``, ``_cert_file``,
    ``_key_file``, ``_proxy_config``): they are where it builds TLS, and ``tests/e2e/test_tls.py`` fails if they
    change shape.
    """

    def _get_ssl_context(self) -> ssl.SSLContext:
        # aiobotocore's own path (client certificates, proxies) starts from this context: verifying too.
        return verifying_context()

    def _create_connector(self, proxy_url: str | None) -> Any:
        # ``verify`` is botocore's resolved setting: a CA bundle path, True (the default bundle) or False; we
        # never pass False, and a False from elsewhere still gets a verifying context.
        ca_bundle = get_cert_path(self._verify) if self._verify else None
        context = shared_ssl_context(ca_bundle)
        if self._cert_file:  # a client certificate for the endpoint: a context of its own
            context = trusting(ca_bundle)
            context.load_cert_chain(self._cert_file, self._key_file)
        if not proxy_url:
            return aiohttp.TCPConnector(limit=self._max_pool_connections, ssl=context, **self._connector_args)
        # Behind a proxy, as botocore does: the proxy's CA bundle and client certificate are for the connection to
        # the proxy only. The AWS endpoint, reached through the tunnel, is verified with the endpoint's own trust:
        # a proxy CA (often a TLS-inspecting middlebox's) must not be able to vouch for sts.amazonaws.com.
        proxy = self._proxy_config.settings
        proxy_context = trusting(proxy.get("proxy_ca_bundle") or ca_bundle)
        client_cert = proxy.get("proxy_client_cert")
        if isinstance(client_cert, tuple):
            proxy_context.load_cert_chain(client_cert[0], keyfile=client_cert[1])
        elif isinstance(client_cert, str):
            proxy_context.load_cert_chain(client_cert)
        return ProxyTLSConnector(proxy_context, limit=self._max_pool_connections, ssl=context, **self._connector_args)


class ProxyTLSConnector(aiohttp.TCPConnector):
    """aiohttp's connector, with a TLS context of its own for an HTTPS proxy.

    aiohttp 3.14 builds the request to the proxy with the target's ``ssl`` (``_update_proxy_auth_header_and_build_
    proxy_req``, private; ``tests/e2e/test_tls.py`` fails if it changes shape): one context would have to trust both
    the proxy's CA and the endpoint's. Here the proxy's request gets the proxy's context.
    """

    def __init__(self, proxy_ssl: ssl.SSLContext, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.proxy_ssl = proxy_ssl

    def _update_proxy_auth_header_and_build_proxy_req(self, req: Any) -> Any:
        proxy_req = super()._update_proxy_auth_header_and_build_proxy_req(req)
        proxy_req._ssl = self.proxy_ssl
        return proxy_req
