"""Run the sandbox: moto's WSGI app behind the fidelity layer, on 127.0.0.1 and a free port."""

from __future__ import annotations

import contextlib
import io
import logging
import select
import socket
import ssl
import struct
import threading
import time
from types import TracebackType
from typing import TYPE_CHECKING, Any, cast

from werkzeug.serving import ThreadedWSGIServer, WSGIRequestHandler

from fleet.sandbox.edge import EdgeServer
from fleet.sandbox.faults import ALB_503_BODY, BLACKHOLE, HTML_503, REFUSE
from fleet.sandbox.fidelity import DROP, FidelityApp
from fleet.sandbox.state import Knobs, SandboxState

if TYPE_CHECKING:
    from fleet.sandbox.tls import TLSFiles


def _moto_app() -> Any:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    return DomainDispatcherApplication(create_backend_app)


def _keep_alive_handler() -> type[WSGIRequestHandler]:
    from moto.moto_server.werkzeug_app import MotoRequestHandler

    class KeepAliveHandler(MotoRequestHandler):
        """moto's request handler, keeping HTTP/1.1 connections open between requests as AWS endpoints do.

        werkzeug 3 answers every request with ``Connection: close`` and then drains the socket (which would
        swallow the next request of a kept connection), so every call paid a new TCP connection here and
        the benchmarks measured a cost AWS does not have. This reads the whole request body first and sends
        a buffered response with its length, so the connection is left clean for the next request.
        """

        protocol_version = "HTTP/1.1"
        timeout = 120  # an idle kept connection frees its thread after this
        disable_nagle_algorithm = True  # else Nagle + the client's delayed ACK add ~40 ms per call

        def run_wsgi(self) -> None:
            self.server.count_request()  # type: ignore[attr-defined]
            state = cast(_Server, self.server).state
            outage = state.outage_now()
            if outage == REFUSE:
                # A kept connection during an outage: its request is lost, the connection reset.
                state.count_fault("outage_reset")
                _reset(self)
                return
            if self.headers.get("Expect", "").lower().strip(" \t") == "100-continue":
                self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            environ = self.make_environ()
            if environ.get("wsgi.input_terminated"):  # chunked request: werkzeug's reader de-chunks it
                body = environ["wsgi.input"].read()
            else:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if outage is not None:  # the request is read whole: what the outage does with it (faults.py)
                state.count_fault("outage_" + outage.replace("-", "_"))
                _outage(self, outage)
                return
            environ["wsgi.input"], environ["CONTENT_LENGTH"] = io.BytesIO(body), str(len(body))
            status, headers, chunks = "500 Internal Server Error", list[tuple[str, str]](), list[bytes]()

            def start_response(s: str, h: list[tuple[str, str]], exc_info: Any = None) -> Any:
                nonlocal status, headers
                status, headers = s, h
                return chunks.append

            try:
                result = self.server.app(environ, start_response)
                try:
                    chunks.extend(result)
                finally:
                    if hasattr(result, "close"):
                        result.close()
            except Exception:
                logging.getLogger(__name__).exception("sandbox: request failed")
                status, headers, chunks = "500 Internal Server Error", [("Content-Type", "text/plain")], [b"error"]
            if environ.get(DROP):  # a reset fault: no answer, and the close sends an RST (SO_LINGER 0)
                cast(_Server, self.server).reset.add(id(self.request))
                self.close_connection = True
                return
            data = b"".join(chunks)
            code, _, reason = status.partition(" ")
            try:
                self.send_response(int(code), reason)
                for key, value in headers:
                    if key.lower() not in _FRAMING_HEADERS:
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self._headers_buffer.append(b"\r\n" + data)  # head and body in one send
                self.flush_headers()
            except OSError:  # the client went away, or a reset fault shut the socket
                self.close_connection = True

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return KeepAliveHandler


def _reset(handler: WSGIRequestHandler) -> None:
    """No answer, and the close sends an RST (SO_LINGER 0): the client sees "connection reset"."""
    with contextlib.suppress(OSError):
        handler.request.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    cast(_Server, handler.server).reset.add(id(handler.request))
    handler.close_connection = True


def _outage(handler: WSGIRequestHandler, mode: str) -> None:
    """A request read during an outage of ``mode`` (other than refuse): reset, an ALB's 503, or silence."""
    if mode == HTML_503:
        # As an ALB: its own HTML page, no x-amzn-RequestId, and the connection kept open.
        handler.send_response(503, "Service Temporarily Unavailable")
        handler.send_header("Server", "awselb/2.0")
        handler.send_header("Content-Type", "text/html")
        handler.send_header("Content-Length", str(len(ALB_503_BODY)))
        handler._headers_buffer.append(b"\r\n" + ALB_503_BODY)  # head and body in one send
        with contextlib.suppress(OSError):
            handler.flush_headers()
        return
    if mode == BLACKHOLE:
        _hold_until_closed(handler.request)
        handler.close_connection = True
        return
    _reset(handler)


BLACKHOLE_HOLD_MAX = 600.0  # seconds a black-holed connection is held at most (a client without a read timeout)


def _hold_until_closed(sock: socket.socket) -> None:
    """Send nothing until the client closes the connection (its read timeout) or BLACKHOLE_HOLD_MAX passes."""
    deadline = time.monotonic() + BLACKHOLE_HOLD_MAX
    while time.monotonic() < deadline:
        readable, _, _ = select.select([sock], [], [], 1.0)
        if not readable:
            continue
        try:
            if not sock.recv(4096):  # the client's close (a TLS close_notify or a FIN)
                return
        except (OSError, ValueError):  # reset, or a TLS connection cut without close_notify
            return


class _Server(ThreadedWSGIServer):
    """A thread per connection, as werkzeug's threaded server; a deep accept queue; TLS in the connection's thread.

    werkzeug wraps the *listening* socket, so each TLS handshake runs inside ``accept()`` on the one serving
    thread: a client that connects and stays silent stalls every other client, and the handshakes of hundreds
    of connections queue behind each other. Here the handshake runs in the connection's own thread, bounded by
    a timeout, and a failed one (a client refusing our certificate) closes that connection quietly.
    """

    # werkzeug listens with a backlog of 128: hundreds of accounts starting at once (each run opens up to
    # max(--concurrency, --account-concurrency) connections) overflowed it while moto held the GIL, and the
    # dropped SYNs became client connect timeouts that AWS's endpoints would not cause.
    request_queue_size = 1024
    daemon_threads = True
    handshake_timeout = 10.0

    def __init__(self, port: int, app: Any, tls: ssl.SSLContext | None, state: SandboxState) -> None:
        super().__init__("127.0.0.1", port, app, handler=_keep_alive_handler())
        self.state = state
        self.ssl_context = tls  # werkzeug reads it for wsgi.url_scheme; the socket stays plain until a handshake
        self.requests = 0  # HTTP requests parsed (a connection whose handshake failed never gets one)
        self.handshake_failures = 0
        self._count_lock = threading.Lock()
        self.reset: set[int] = set()  # ids of connections a reset fault drops: closed without a FIN

    def shutdown_request(self, request: Any) -> None:
        # socketserver sends a FIN (shutdown SHUT_WR) before closing; a reset fault's connection gets only the
        # close, which with SO_LINGER 0 is an RST: the client sees "connection reset", not a clean close.
        if id(request) in self.reset:
            self.reset.discard(id(request))
            self.close_request(request)
            return
        super().shutdown_request(request)

    def count_request(self) -> None:
        with self._count_lock:
            self.requests += 1

    def finish_request(self, request: Any, client_address: Any) -> None:
        if self.state.outage_now() == REFUSE:
            # An outage (knob outage_seconds): the connection is reset before anything can be sent on it (on
            # HTTPS, in the TLS handshake), as an endpoint that cannot be reached. Other modes accept it.
            self.state.count_fault("outage_refused")
            with contextlib.suppress(OSError):
                request.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.reset.add(id(request))
            return
        if self.ssl_context is None:
            super().finish_request(request, client_address)
            return
        try:
            request.settimeout(self.handshake_timeout)
            tls = self.ssl_context.wrap_socket(request, server_side=True)  # closes the socket if it fails
        except (OSError, ValueError):
            with self._count_lock:
                self.handshake_failures += 1
            return
        try:
            super().finish_request(tls, client_address)
        finally:
            # wrap_socket detached ``request`` (socketserver closes that empty shell): close the TLS one.
            self.shutdown_request(tls)


_FRAMING_HEADERS = frozenset({"content-length", "connection", "transfer-encoding", "keep-alive"})


class Sandbox:
    """A local AWS for demos and tests. Loopback only."""

    def __init__(self, port: int = 0, knobs: Knobs | None = None, tls: TLSFiles | None = None) -> None:
        from fleet.sandbox import speedups

        speedups.apply()
        for name in ("werkzeug", "moto"):
            logging.getLogger(name).setLevel(logging.ERROR)
        self.state = SandboxState(knobs)
        self.app = FidelityApp(_moto_app(), self.state)

        context = None
        if tls is not None:
            from fleet.sandbox.tls import server_context

            context = server_context(tls)
        self._server = _Server(port, self.app, context, self.state)
        self._thread = threading.Thread(target=self._server.serve_forever, name="sandbox", daemon=True)
        # Every custom domain's CloudFront edge (TLS on loopback), for the tool's edge check.
        self.edge = EdgeServer(self.state, self.app.edge_certificate)

    @property
    def endpoint(self) -> str:
        host, port = self._server.server_address[:2]
        scheme = "http" if self._server.ssl_context is None else "https"
        return f"{scheme}://{host!s}:{port}"

    @property
    def edge_address(self) -> str:
        """HOST:PORT of the edge (COGNITO_FLEET_EDGE_ADDRESS / --edge-address)."""
        return self.edge.address

    @property
    def requests(self) -> int:
        """HTTP requests the server parsed, of any kind (a refused TLS handshake sends none)."""
        return self._server.requests

    @property
    def handshake_failures(self) -> int:
        """Connections closed because the TLS handshake failed (e.g. the client refused the certificate)."""
        return self._server.handshake_failures

    def start(self) -> Sandbox:
        self._thread.start()
        self.edge.start()
        return self

    def stop(self) -> None:
        self.edge.stop()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def use_certificate(self, tls: TLSFiles) -> None:
        """Serve another certificate from the next TLS connection on (kept connections keep theirs)."""
        from fleet.sandbox.tls import server_context

        if self._server.ssl_context is None:
            raise ValueError("this sandbox serves plain HTTP")
        self._server.ssl_context = server_context(tls)

    def certificate_of(self, domain: str) -> str | None:
        return self.app.certificate_of(domain)

    def set_domain_certificate(self, domain: str, arn: str) -> None:
        """Put a domain on ``arn`` directly (ACTIVE, no write counted): resets a fleet between benchmark runs."""
        with self.state.lock:
            record = self.app.domains[domain]
            record.certificate_arn, record.status_until, record.edge_previous = arn, 0.0, None

    def set_certificate_status(self, arn: str, status: str) -> None:
        """Put an ACM certificate in another state (PENDING_VALIDATION, EXPIRED, REVOKED...)."""
        from moto.acm.models import acm_backends

        account = arn.split(":")[4]
        acm_backends[account]["us-east-1"]._certificates[arn].status = status
