"""Run the sandbox: moto's WSGI app behind the fidelity layer, on 127.0.0.1 and a free port."""

from __future__ import annotations

import logging
import threading
from types import TracebackType
from typing import Any

from werkzeug.serving import BaseWSGIServer, make_server

from fleet.sandbox.fidelity import FidelityApp
from fleet.sandbox.state import Knobs, SandboxState

# The sandbox hub identity: moto maps unknown keys to its default account 123456789012.
HUB_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "AKIASANDBOXHUB000000", "AWS_SECRET_ACCESS_KEY": "sandbox-hub-secret"}


def _moto_app() -> Any:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    return DomainDispatcherApplication(create_backend_app)


class Sandbox:
    """A local AWS for demos and tests. Loopback only."""

    def __init__(self, port: int = 0, knobs: Knobs | None = None) -> None:
        from moto.moto_server.werkzeug_app import MotoRequestHandler

        from fleet.sandbox import speedups

        speedups.apply()
        for name in ("werkzeug", "moto"):
            logging.getLogger(name).setLevel(logging.ERROR)
        self.state = SandboxState(knobs)
        self.app = FidelityApp(_moto_app(), self.state)

        class Handler(MotoRequestHandler):
            # werkzeug 3 closes every connection after its response (no keep-alive): each call is a new
            # TCP connection here, unlike AWS. Benchmarks say so.
            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server: BaseWSGIServer = make_server("127.0.0.1", port, self.app, threaded=True, request_handler=Handler)
        self._server.daemon_threads = True  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._server.serve_forever, name="sandbox", daemon=True)

    @property
    def endpoint(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> Sandbox:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def certificate_of(self, domain: str) -> str | None:
        return self.app.certificate_of(domain)

    def set_domain_certificate(self, domain: str, arn: str) -> None:
        """Put a domain on ``arn`` directly (ACTIVE, no write counted): resets a fleet between benchmark runs."""
        with self.state.lock:
            record = self.app.domains[domain]
            record.certificate_arn, record.status_until = arn, 0.0

    def set_certificate_status(self, arn: str, status: str) -> None:
        """Put an ACM certificate in another state (PENDING_VALIDATION, EXPIRED, REVOKED...)."""
        from moto.acm.models import acm_backends

        account = arn.split(":")[4]
        acm_backends[account]["us-east-1"]._certificates[arn].status = status
