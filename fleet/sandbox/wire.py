"""The sandbox's wire: AWS's error and answer shapes (JSON and STS's XML), request parameters, dropped connections."""

from __future__ import annotations

import contextlib
import json
import socket
import struct
import uuid
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class AwsError(Exception):
    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


class ResetConnection(Exception):
    pass


def request_params(environ: dict[str, Any], body: bytes, protocol: str) -> dict[str, Any]:
    """The request's parameters: its JSON document, or its form and query string (query protocol)."""
    if protocol == "json":
        try:
            document = json.loads(body or b"{}")
        except ValueError:
            return {}
        return document if isinstance(document, dict) else {}
    pairs = parse_qs(environ.get("QUERY_STRING", "")) | parse_qs(body.decode("utf-8", "replace"))
    return {k: v[0] for k, v in pairs.items()}


def read_body(environ: dict[str, Any]) -> bytes:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    return bytes(environ["wsgi.input"].read(length)) if length else b""


DROP = "fleet.sandbox.drop"  # environ flag: the handler sends no response and closes the connection


def drop_connection(environ: dict[str, Any]) -> None:
    """Reset the client's connection with no response (an RST, not a FIN), as a reset on the network would:
    with SO_LINGER 0 the handler's close (it sends nothing when ``DROP`` is set) aborts the connection."""
    sock = environ.get("werkzeug.socket")
    if isinstance(sock, socket.socket):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    environ[DROP] = True


def respond(start_response: StartResponse, status: str, headers: list[tuple[str, str]], data: bytes) -> list[bytes]:
    kept = [(k, v) for k, v in headers if k.lower() != "content-length"]
    start_response(status, [*kept, ("Content-Length", str(len(data)))])
    return [data]


def json_ok(start_response: StartResponse, payload: dict[str, Any]) -> list[bytes]:
    data = json.dumps(payload).encode()
    start_response(
        "200 OK",
        [
            ("Content-Type", "application/x-amz-json-1.1"),
            ("Content-Length", str(len(data))),
            ("x-amzn-RequestId", str(uuid.uuid4())),
        ],
    )
    return [data]


def json_error(start_response: StartResponse, exc: AwsError) -> list[bytes]:
    data = json.dumps({"__type": exc.code, "message": exc.message}).encode()
    reason = HTTPStatus(exc.status).phrase
    start_response(
        f"{exc.status} {reason}",
        [
            ("Content-Type", "application/x-amz-json-1.1"),
            ("Content-Length", str(len(data))),
            ("x-amzn-ErrorType", exc.code),
            ("x-amzn-RequestId", str(uuid.uuid4())),
        ],
    )
    return [data]


def xml_error(start_response: StartResponse, code: str, message: str, status: int) -> list[bytes]:
    data = (
        '<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type>'
        f"<Code>{code}</Code><Message>{_xml_escape(message)}</Message></Error>"
        f"<RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>"
    ).encode()
    start_response(
        f"{status} {HTTPStatus(status).phrase}", [("Content-Type", "text/xml"), ("Content-Length", str(len(data)))]
    )
    return [data]


def _xml_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
