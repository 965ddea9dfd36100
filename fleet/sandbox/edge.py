"""The sandbox's CloudFront edge: TLS on 127.0.0.1 that presents, for each custom domain (the SNI name), the ACM
certificate the domain is on, as clients of the real edge would see it.

A domain moved to another certificate is served its previous one until the update has spread: the UPDATING time
plus the ``edge_lag`` knob, and for ever for domains named in ``edge_stuck`` (an edge that never switched). An
unknown name gets a handshake failure (an ``unrecognized_name`` alert). The certificates and keys are the ones
imported into the sandbox's ACM (moto keeps both); each is loaded into a server context once.
"""

from __future__ import annotations

import contextlib
import os
import socket
import socketserver
import ssl
import tempfile
import threading
from collections.abc import Callable
from typing import Any

from fleet.sandbox.state import SandboxState

HANDSHAKE_TIMEOUT = 10.0


class EdgeServer:
    """Listens on 127.0.0.1 (a free port); ``certificate_for(name)`` says which ACM certificate to present."""

    def __init__(self, state: SandboxState, certificate_for: Callable[[str], str | None], port: int = 0) -> None:
        self.state, self.certificate_for = state, certificate_for
        self._contexts: dict[str, ssl.SSLContext] = {}
        self._lock = threading.Lock()
        self._local = threading.local()
        self.base = self._listening_context()
        self._server = _Server(("127.0.0.1", port), self)
        self._thread = threading.Thread(target=self._server.serve_forever, name="sandbox-edge", daemon=True)

    @property
    def address(self) -> str:
        host, port = self._server.server_address[:2]
        return f"{host!s}:{port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def _listening_context(self) -> ssl.SSLContext:
        """The listening context: no certificate of its own, the SNI callback picks the domain's."""
        base = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        base.minimum_version = ssl.TLSVersion.TLSv1_2
        base.sni_callback = self._select
        return base

    def _select(self, sock: ssl.SSLObject | ssl.SSLSocket, name: str | None, _base: ssl.SSLContext) -> int | None:
        self._local.name = name  # the handshake runs in the connection's thread: its handler reads this
        arn = self.certificate_for(name) if name else None
        context = self._context_of(arn) if arn else None
        if context is None:
            return ssl.ALERT_DESCRIPTION_UNRECOGNIZED_NAME
        sock.context = context
        return None

    def _context_of(self, arn: str) -> ssl.SSLContext | None:
        with self._lock:
            if arn not in self._contexts:
                pem = _certificate_and_key(arn)
                if pem is None:
                    return None
                self._contexts[arn] = _server_context(*pem)
            return self._contexts[arn]

    def sni_name(self) -> str | None:
        """The SNI name of the handshake this thread just did."""
        return getattr(self._local, "name", None)

    def count(self, name: str | None, ok: bool) -> None:
        """Handshakes by SNI name (``state.edge_handshakes``); refused ones are the ``edge_refused`` fault."""
        if ok and name:
            with self.state.lock:
                self.state.edge_handshakes[name] += 1
        else:
            self.state.count_fault("edge_refused")


class _Handler(socketserver.BaseRequestHandler):
    server: _Server

    def handle(self) -> None:
        edge = self.server.edge
        sock: socket.socket = self.request
        sock.settimeout(HANDSHAKE_TIMEOUT)  # a silent client frees its thread
        try:
            tls = edge.base.wrap_socket(sock, server_side=True)
        except (OSError, ValueError):
            edge.count(None, ok=False)
            return
        edge.count(edge.sni_name(), ok=True)
        with contextlib.suppress(OSError):
            tls.close()


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024

    def __init__(self, address: tuple[str, int], edge: EdgeServer) -> None:
        self.edge = edge
        super().__init__(address, _Handler)


def _certificate_and_key(arn: str) -> tuple[bytes, bytes] | None:
    from moto.acm.models import acm_backends

    parts = arn.split(":")
    if len(parts) < 6:
        return None
    bundle: Any = acm_backends[parts[4]][parts[3]]._certificates.get(arn)
    if bundle is None or not bundle.key:
        return None
    chain = bundle.cert + (b"\n" + bundle.chain if getattr(bundle, "chain", None) else b"")
    return chain, bundle.key


def _server_context(chain: bytes, key: bytes) -> ssl.SSLContext:
    """A server context for one certificate. ssl loads keys only from files: a 0600 temporary file, removed at once."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    with tempfile.TemporaryDirectory(prefix="cognito-fleet-edge-") as scratch:
        cert_path, key_path = os.path.join(scratch, "cert.pem"), os.path.join(scratch, "key.pem")
        for path, data in ((cert_path, chain), (key_path, key)):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
        context.load_cert_chain(cert_path, key_path)
    return context
