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
    ``_key_file``, ``_proxy_config``): they are where it builds TLS, and ``tests/test_tls.py`` fails if they
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
        if proxy_url or self._cert_file:
            # aiobotocore's own path would verify nothing behind a proxy without a proxy CA bundle (ssl=False):
            # here the context is always a verifying one, extended with the proxy's CA and client certificates.
            context = trusting(ca_bundle)  # a context of its own: the proxy's CA and the client certificate
            proxy = self._proxy_config.settings if proxy_url else {}
            if proxy.get("proxy_ca_bundle"):
                context.load_verify_locations(cafile=proxy["proxy_ca_bundle"])
            client_cert = proxy.get("proxy_client_cert")
            if isinstance(client_cert, tuple):
                context.load_cert_chain(client_cert[0], keyfile=client_cert[1])
            elif isinstance(client_cert, str):
                context.load_cert_chain(client_cert)
            if self._cert_file:
                context.load_cert_chain(self._cert_file, self._key_file)
        return aiohttp.TCPConnector(limit=self._max_pool_connections, ssl=context, **self._connector_args)
