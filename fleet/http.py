"""One TLS context for every client: aiobotocore builds a new SSL context and reloads the CA bundle for
each client's connector (~45 ms of CPU); with thousands of accounts that dominates. Verification stays on.
"""

from __future__ import annotations

import ssl
from functools import cache
from typing import Any

import aiohttp
from aiobotocore.httpsession import AIOHTTPSession
from botocore.httpsession import create_urllib3_context, get_cert_path


@cache
def shared_ssl_context(ca_bundle: str | None) -> ssl.SSLContext:
    context: ssl.SSLContext = create_urllib3_context()
    if ca_bundle:
        context.load_verify_locations(ca_bundle, None, None)
    return context


class SharedTLSSession(AIOHTTPSession):  # type: ignore[misc]
    """aiobotocore's HTTP session, with the process-wide TLS context when nothing client-specific is set."""

    def _create_connector(self, proxy_url: str | None) -> Any:
        if proxy_url or self._cert_file or not self._verify:
            return super()._create_connector(proxy_url)
        return aiohttp.TCPConnector(
            limit=self._max_pool_connections,
            ssl=shared_ssl_context(get_cert_path(self._verify)),
            **self._connector_args,
        )
