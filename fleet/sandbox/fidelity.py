"""A WSGI layer in front of moto that makes it behave like AWS where cognito-fleet depends on it.

moto stays the store for user pools, ACM certificates, STS and IAM. This layer adds what moto lacks (its domains
have no CustomDomainConfig, are always ACTIVE and take any certificate): Cognito user pool *domains* are
implemented here in full (the true account, CustomDomainConfig in Describe, pool/prefix/certificate checks on
Update, a stable CloudFront domain, UPDATING -> ACTIVE, one name per partition), plus AWS's quotas, faults,
latency and expiring credentials. Before any of that, each request's SigV4 signature and the caller's IAM
policy are checked (auth.py).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import re
import socket
import struct
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs

from fleet.aws.edge import format_serial
from fleet.manifest import validate_domain
from fleet.migrate.certificates import covers
from fleet.sandbox.auth import (
    DEFAULT_ACCOUNT,
    HUB_CREDENTIALS,
    OTHER_ORGANIZATION,
    SANDBOX_ORGANIZATION,
    AuthError,
    Authority,
    Credential,
    Identity,
    also_required,
    check_expiry,
    parse_authorization,
    resource_of,
)
from fleet.sandbox.faults import RESET
from fleet.sandbox.state import SandboxState

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

_COGNITO_PREFIX = "AWSCognitoIdentityProviderService."
DOMAIN_OPERATIONS = (
    "CreateUserPoolDomain",
    "DescribeUserPoolDomain",
    "UpdateUserPoolDomain",
    "DeleteUserPoolDomain",
)
MAX_CUSTOM_DOMAINS = 4  # per account and region (AWS, not adjustable)
_AUTH_FAULTS = {
    "signature": "bad_signature",
    "missing": "bad_signature",
    "token": "invalid_token",
    "expired": "expired_token",
    "denied": "denied",
}


class AwsError(Exception):
    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


@dataclass
class DomainRecord:
    domain: str
    account: str
    region: str
    pool_id: str
    certificate_arn: str | None  # None: a prefix domain
    cloudfront: str
    managed_login_version: int | None
    version: int = 1
    status_until: float = 0.0  # UPDATING until this monotonic time, then ACTIVE
    status_while: str = "UPDATING"
    edge_previous: str | None = None  # what the edge served when the certificate last changed

    def status(self, now: float) -> str:
        return self.status_while if now < self.status_until else "ACTIVE"


class FidelityApp:
    def __init__(self, moto_app: WsgiApp, state: SandboxState) -> None:
        self.moto_app = moto_app
        self.state = state
        self.domains: dict[str, DomainRecord] = {}
        self.authority = Authority(HUB_CREDENTIALS)
        self._unchecked: dict[str, Identity] = {}  # keys seen while verify_signatures is off

    # ---- WSGI entry -------------------------------------------------------------------------
    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path.startswith("/_sandbox/"):
            return self._control(environ, start_response, path)
        body = _read_body(environ)
        if path.startswith("/moto-api/"):  # moto's own control API: not AWS, nothing to sign
            return self._forward(environ, start_response, body)
        credential = parse_authorization(environ.get("HTTP_AUTHORIZATION", ""))
        region, service = (credential.region, credential.service) if credential else ("us-east-1", "")
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        protocol = "json" if target else "query"
        params = _params(environ, body, protocol)
        operation = target.rpartition(".")[2] if target else str(params.get("Action", ""))
        try:
            identity = self._identify(environ, body, credential)
            if self.state.knobs.enforce_iam:
                resource = resource_of(service, operation, params, identity.account, region)
                parts = resource.split(":")  # the account that owns the resource (an ARN's fifth field)
                owner = parts[4] if len(parts) > 5 and parts[4] else identity.account
                outside = owner in self.state.knobs.outside_organization
                context = {"aws:ResourceOrgID": OTHER_ORGANIZATION if outside else SANDBOX_ORGANIZATION}
                self.authority.authorize(identity, f"{service}:{operation}", resource, context)
                for action, extra in also_required(service, operation, params):
                    self.authority.authorize(identity, action, extra, context)
        except AuthError as exc:
            self.state.count_fault(_AUTH_FAULTS[exc.reason])
            code, status = exc.code(protocol)
            if protocol == "query":
                return _xml_error(start_response, code, exc.message, status)
            return _json_error(start_response, AwsError(code, exc.message, status))
        injected = self.state.injection(service, operation)
        if injected is not None:
            if injected.code == RESET:
                _drop_connection(environ)
                start_response("500 Internal Server Error", [("Content-Length", "0")])
                return []
            if protocol == "query":
                return _xml_error(start_response, injected.code, injected.message, injected.status)
            return _json_error(start_response, AwsError(injected.code, injected.message, injected.status))
        try:
            knobs = self.state.knobs
            if knobs.latency and knobs.latency_everywhere and not target.startswith(_COGNITO_PREFIX):
                time.sleep(knobs.latency * (1 + 0.2 * self.state.roll()))  # STS, ACM, Organizations as slow too
            if service == "sts":
                return self._sts(environ, start_response, body, params, identity)
            if target.startswith("CertificateManager."):
                with self.state.lock:
                    self.state.calls["acm:" + operation] += 1
                if operation == "DescribeCertificate":
                    return self._describe_certificate(environ, start_response, body)
            if target.startswith(_COGNITO_PREFIX):
                return self._cognito(environ, start_response, body, params, identity.account, region, operation)
        except AwsError as exc:
            return _json_error(start_response, exc)
        except _Reset:
            # The socket is already shut: werkzeug's write of this status fails quietly (a ConnectionError).
            start_response("500 Internal Server Error", [("Content-Length", "0")])
            return []
        return self._forward(environ, start_response, body)

    def _forward(self, environ: dict[str, Any], start_response: StartResponse, body: bytes) -> Iterable[bytes]:
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        return self.moto_app(environ, start_response)

    # ---- identity ---------------------------------------------------------------------------
    def _identify(self, environ: dict[str, Any], body: bytes, credential: Credential | None) -> Identity:
        if self.state.knobs.verify_signatures:
            return self.authority.authenticate(environ, body, credential)
        # Unchecked: any key and signature go. Known keys keep their account and policy; others are
        # unrestricted, in the account moto maps them to.
        key = credential.access_key if credential else ""
        identity = self.authority.identity(key) or self._unchecked.get(key)
        if identity is None:
            from moto.iam.models import get_account_id_from

            account = get_account_id_from(key) if key else DEFAULT_ACCOUNT
            identity = Identity(key, "", account, f"arn:aws:iam::{account}:user/unchecked", None)
            with self.state.lock:
                self._unchecked[key] = identity
        check_expiry(identity)
        return identity

    def _sts(
        self,
        environ: dict[str, Any],
        start_response: StartResponse,
        body: bytes,
        params: dict[str, Any],
        caller: Identity,
    ) -> Iterable[bytes]:
        if params.get("Action") != "AssumeRole":
            return self._forward(environ, start_response, body)
        role_arn = str(params.get("RoleArn", ""))
        target = role_arn.split(":")[4] if role_arn.count(":") >= 5 else ""
        knobs = self.state.knobs
        with self.state.lock:
            self.state.assume_role_calls[target] += 1
        if target in knobs.deny_accounts:
            return _xml_error(
                start_response,
                "AccessDenied",
                f"User: {caller.arn} is not authorized to perform: sts:AssumeRole on resource: {role_arn}",
                403,
            )
        required = knobs.external_ids.get(target)
        if required is not None and params.get("ExternalId") != required:
            return _xml_error(
                start_response,
                "AccessDenied",
                f"ExternalId does not match the trust policy of {role_arn}",
                403,
            )
        status, headers, out = self._forward_captured(environ, body)
        text = out.decode()
        issued = dict(re.findall(r"<(AccessKeyId|SecretAccessKey|SessionToken)>([^<]+)</", text))
        if len(issued) == 3 and target:
            lifetime = float(params.get("DurationSeconds", 3600))
            if knobs.credential_lifetime is not None:
                lifetime = min(lifetime, knobs.credential_lifetime)
            expiry = time.time() + lifetime
            stamp = datetime.fromtimestamp(expiry, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            text = re.sub(r"<Expiration>[^<]+</Expiration>", f"<Expiration>{stamp}</Expiration>", text)
            session = str(params.get("RoleSessionName", ""))
            self.authority.add_session(
                caller,
                issued["AccessKeyId"],
                issued["SecretAccessKey"],
                issued["SessionToken"],
                role_arn,
                session,
                expiry,
            )
            with self.state.lock:
                self.state.issued_secrets.update((issued["SecretAccessKey"], issued["SessionToken"]))
        return _respond(start_response, status, headers, text.encode())

    def _forward_captured(self, environ: dict[str, Any], body: bytes) -> tuple[str, list[tuple[str, str]], bytes]:
        captured: dict[str, Any] = {}

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            captured["status"], captured["headers"] = status, headers
            return lambda data: None

        out = b"".join(self._forward(environ, capture, body))
        return captured["status"], captured["headers"], out

    def _describe_user_pool(self, environ: dict[str, Any], start_response: StartResponse, body: bytes) -> list[bytes]:
        """moto names a pool's custom domain ``Domain``; AWS names it ``CustomDomain`` (``Domain`` is the prefix)."""
        status, headers, out = self._forward_captured(environ, body)
        if status.startswith("200"):
            payload = json.loads(out)
            pool = payload.get("UserPool", {})
            name = pool.get("Domain")
            with self.state.lock:
                record = self.domains.get(name) if name else None
            if record is not None and record.certificate_arn:
                pool["CustomDomain"] = pool.pop("Domain")
            out = json.dumps(payload).encode()
        return _respond(start_response, status, headers, out)

    def _describe_certificate(self, environ: dict[str, Any], start_response: StartResponse, body: bytes) -> list[bytes]:
        """AWS writes ``Serial`` as colon-separated lower-case hex bytes; moto as a decimal string."""
        status, headers, out = self._forward_captured(environ, body)
        if status.startswith("200"):
            payload = json.loads(out)
            certificate = payload.get("Certificate") or {}
            serial = str(certificate.get("Serial") or "")
            if serial.isdigit():
                certificate["Serial"] = format_serial(int(serial))
            out = json.dumps(payload).encode()
        return _respond(start_response, status, headers, out)

    # ---- Cognito ----------------------------------------------------------------------------
    def _cognito(
        self,
        environ: dict[str, Any],
        start_response: StartResponse,
        body: bytes,
        request: dict[str, Any],
        account: str,
        region: str,
        operation: str,
    ) -> Iterable[bytes]:
        state, knobs = self.state, self.state.knobs
        with state.lock:
            state.calls[operation] += 1
        if knobs.latency:
            time.sleep(knobs.latency * (1 + 0.2 * state.roll()))
        roll = state.roll()
        if roll < knobs.reset_rate:
            state.count_fault("reset")
            _drop_connection(environ)
            raise _Reset
        if roll < knobs.reset_rate + knobs.error_rate:
            state.count_fault("error")
            raise AwsError("InternalErrorException", "Internal error (injected by the sandbox)", 500)
        if roll < knobs.reset_rate + knobs.error_rate + knobs.throttle_rate:
            state.count_fault("throttle")
            raise AwsError("TooManyRequestsException", "Too many requests (injected by the sandbox)")
        pool = request.get("UserPoolId")
        if pool is None and operation == "DescribeUserPoolDomain":
            with state.lock:
                record = self.domains.get(request.get("Domain", ""))
            pool = record.pool_id if record else None
        if not state.allow(account, region, operation, pool):
            state.count_fault("quota")
            raise AwsError("TooManyRequestsException", "Rate exceeded")
        if operation == "DescribeUserPool":
            return self._describe_user_pool(environ, start_response, body)
        if operation not in DOMAIN_OPERATIONS:
            return self._forward(environ, start_response, body)
        write = operation == "UpdateUserPoolDomain"
        if write and knobs.write_loss_before_rate and state.roll() < knobs.write_loss_before_rate:
            self._lose(environ, "write_lost_before")
        with state.lock:
            handler = getattr(self, "_" + operation)
            result = handler(request, account, region)
        if write and knobs.write_loss_after_rate and state.roll() < knobs.write_loss_after_rate:
            self._lose(environ, "write_lost_after")
        return _json_ok(start_response, result)

    def _lose(self, environ: dict[str, Any], fault: str) -> None:
        self.state.count_fault(fault)
        _drop_connection(environ)
        raise _Reset

    def _pool(self, account: str, region: str, pool_id: str) -> Any:
        from moto.cognitoidp.models import cognitoidp_backends

        pool = cognitoidp_backends[account][region].user_pools.get(pool_id)
        if pool is None:
            raise AwsError("ResourceNotFoundException", f"User pool {pool_id} does not exist.")
        return pool

    def _check_certificate(self, account: str, arn: str, domain: str) -> None:
        from moto.acm.models import acm_backends

        parts = arn.split(":")
        if len(parts) < 6 or parts[2] != "acm" or parts[3] != "us-east-1" or parts[4] != account:
            raise AwsError(
                "InvalidParameterException",
                f"The certificate {arn} must be an ACM certificate in us-east-1 of account {account}.",
            )
        bundle = acm_backends[account]["us-east-1"]._certificates.get(arn)
        if bundle is None:
            raise AwsError("InvalidParameterException", f"The certificate {arn} does not exist.")
        if bundle.status != "ISSUED":
            raise AwsError("InvalidParameterException", f"The certificate {arn} is {bundle.status}, not ISSUED.")
        if not covers([bundle.common_name, *bundle.sans], domain):
            raise AwsError("InvalidParameterException", f"The certificate {arn} does not cover {domain}.")

    def _CreateUserPoolDomain(self, req: dict[str, Any], account: str, region: str) -> dict[str, Any]:
        domain, pool_id = req.get("Domain", ""), req.get("UserPoolId", "")
        self._pool(account, region, pool_id)
        if domain in self.domains:
            raise AwsError("InvalidParameterException", "Domain already associated with another user pool.")
        cert = (req.get("CustomDomainConfig") or {}).get("CertificateArn")
        if "." in domain:
            if not cert:
                raise AwsError("InvalidParameterException", "A custom domain needs CustomDomainConfig.CertificateArn.")
            reason = validate_domain(domain)
            if reason:
                raise AwsError("InvalidParameterException", f"Domain {domain} {reason}.")
            self._check_certificate(account, cert, domain)
            custom = [
                d for d in self.domains.values() if d.account == account and d.region == region and d.certificate_arn
            ]
            if len(custom) >= MAX_CUSTOM_DOMAINS:
                raise AwsError("LimitExceededException", "At most 4 custom domains per account and region.")
        elif cert:
            raise AwsError("InvalidParameterException", "A prefix domain takes no certificate.")
        cloudfront = "d" + hashlib.sha256(domain.encode()).hexdigest()[:13] + ".cloudfront.net"
        record = DomainRecord(domain, account, region, pool_id, cert, cloudfront, req.get("ManagedLoginVersion"))
        record.status_until, record.status_while = (
            self.state.clock() + self.state.knobs.propagation_delay,
            "CREATING",
        )
        self.domains[domain] = record
        self._mirror_in_moto(account, region, record)
        return {"CloudFrontDomain": cloudfront} if cert else {}

    def _DescribeUserPoolDomain(self, req: dict[str, Any], account: str, region: str) -> dict[str, Any]:
        record = self.domains.get(req.get("Domain", ""))
        if record is None or record.account != account or record.region != region:
            return {"DomainDescription": {}}  # what AWS answers for an unknown domain
        description: dict[str, Any] = {
            "UserPoolId": record.pool_id,
            "AWSAccountId": record.account,
            "Domain": record.domain,
            "S3Bucket": f"aws-cognito-prod-{region}-assets",
            "CloudFrontDistribution": record.cloudfront
            if record.certificate_arn
            else f"{record.domain}.auth.{region}.amazoncognito.com",
            "Version": str(record.version),
            "Status": record.status(self.state.clock()),
        }
        if record.certificate_arn:
            description["CustomDomainConfig"] = {"CertificateArn": record.certificate_arn}
        if record.managed_login_version is not None:
            description["ManagedLoginVersion"] = record.managed_login_version
        self.state.events.append(("DescribeUserPoolDomain", record.domain))
        return {"DomainDescription": description}

    def _UpdateUserPoolDomain(self, req: dict[str, Any], account: str, region: str) -> dict[str, Any]:
        domain, pool_id = req.get("Domain", ""), req.get("UserPoolId", "")
        record = self.domains.get(domain)
        if record is None or record.account != account or record.region != region:
            raise AwsError("ResourceNotFoundException", f"Domain {domain} does not exist in this account and region.")
        self._pool(account, region, pool_id)
        if record.pool_id != pool_id:
            raise AwsError("InvalidParameterException", f"Domain {domain} is associated with another user pool.")
        if self.state.knobs.refuse_while_updating and record.status(self.state.clock()) == "UPDATING":
            raise AwsError(
                "ConcurrentModificationException", f"Domain {domain} is being updated; try again when it is ACTIVE."
            )
        cert = (req.get("CustomDomainConfig") or {}).get("CertificateArn")
        if record.certificate_arn is None:
            if cert:
                raise AwsError("InvalidParameterException", "Cannot add a certificate to a prefix domain.")
        else:
            if not cert:
                raise AwsError("InvalidParameterException", "Cannot convert custom domain to prefix domain.")
            self._check_certificate(account, cert, domain)
            if cert != record.certificate_arn:
                record.edge_previous = self.edge_certificate(domain)
            record.certificate_arn = cert
        if req.get("ManagedLoginVersion") is not None:
            record.managed_login_version = int(req["ManagedLoginVersion"])
        record.version += 1
        record.status_until, record.status_while = (
            self.state.clock() + self.state.knobs.propagation_delay,
            "UPDATING",
        )
        if domain in self.state.knobs.fail_domains:
            record.status_until, record.status_while = float("inf"), "FAILED"
        self.state.writes[domain] += 1
        self.state.events.append(("UpdateUserPoolDomain", domain))
        result: dict[str, Any] = {"CloudFrontDomain": record.cloudfront}
        if record.managed_login_version is not None:
            result["ManagedLoginVersion"] = record.managed_login_version
        return result

    def _DeleteUserPoolDomain(self, req: dict[str, Any], account: str, region: str) -> dict[str, Any]:
        domain = req.get("Domain", "")
        record = self.domains.get(domain)
        if record is None or record.account != account or record.pool_id != req.get("UserPoolId"):
            raise AwsError("InvalidParameterException", f"Domain {domain} is not associated with this user pool.")
        del self.domains[domain]
        self._mirror_in_moto(account, region, record, delete=True)
        return {}

    @staticmethod
    def _mirror_in_moto(account: str, region: str, record: DomainRecord, delete: bool = False) -> None:
        """Keep moto's own domain list in step, so DescribeUserPool names the pool's domain."""
        from moto.cognitoidp.models import CognitoIdpUserPoolDomain, cognitoidp_backends

        domains = cognitoidp_backends[account][region].user_pool_domains
        if delete:
            domains.pop(record.domain, None)
        else:
            config = {"CertificateArn": record.certificate_arn} if record.certificate_arn else None
            domains[record.domain] = CognitoIdpUserPoolDomain(record.pool_id, record.domain, config)

    # ---- control endpoint -------------------------------------------------------------------
    def _control(self, environ: dict[str, Any], start_response: StartResponse, path: str) -> Iterable[bytes]:
        if path == "/_sandbox/config" and environ.get("REQUEST_METHOD") == "POST":
            try:
                self.state.configure(**json.loads(_read_body(environ) or b"{}"))
            except (KeyError, ValueError) as exc:
                return _json_error(start_response, AwsError("InvalidParameterException", str(exc)))
        elif path == "/_sandbox/reset" and environ.get("REQUEST_METHOD") == "POST":
            self.state.reset_counters()
        elif path != "/_sandbox/stats":
            return _json_error(start_response, AwsError("ResourceNotFoundException", path, 404))
        return _json_ok(start_response, self.state.stats())

    def edge_certificate(self, name: str) -> str | None:
        """The ACM certificate the edge presents for ``name`` now (None: not a custom domain here)."""
        with self.state.lock:
            record = self.domains.get(name)
            if record is None or record.certificate_arn is None:
                return None
            knobs = self.state.knobs
            spreading = self.state.clock() < record.status_until + knobs.edge_lag
            if record.edge_previous and (name in knobs.edge_stuck or spreading):
                return record.edge_previous
            return record.certificate_arn

    def certificate_of(self, domain: str) -> str | None:
        with self.state.lock:
            record = self.domains.get(domain)
            return record.certificate_arn if record else None


class _Reset(Exception):
    pass


def _params(environ: dict[str, Any], body: bytes, protocol: str) -> dict[str, Any]:
    """The request's parameters: its JSON document, or its form and query string (query protocol)."""
    if protocol == "json":
        try:
            document = json.loads(body or b"{}")
        except ValueError:
            return {}
        return document if isinstance(document, dict) else {}
    pairs = parse_qs(environ.get("QUERY_STRING", "")) | parse_qs(body.decode("utf-8", "replace"))
    return {k: v[0] for k, v in pairs.items()}


def _read_body(environ: dict[str, Any]) -> bytes:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    return bytes(environ["wsgi.input"].read(length)) if length else b""


DROP = "fleet.sandbox.drop"  # environ flag: the handler sends no response and closes the connection


def _drop_connection(environ: dict[str, Any]) -> None:
    """Reset the client's connection with no response (an RST, not a FIN), as a reset on the network would:
    with SO_LINGER 0 the handler's close (it sends nothing when ``DROP`` is set) aborts the connection."""
    sock = environ.get("werkzeug.socket")
    if isinstance(sock, socket.socket):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    environ[DROP] = True


def _respond(start_response: StartResponse, status: str, headers: list[tuple[str, str]], data: bytes) -> list[bytes]:
    kept = [(k, v) for k, v in headers if k.lower() != "content-length"]
    start_response(status, [*kept, ("Content-Length", str(len(data)))])
    return [data]


def _json_ok(start_response: StartResponse, payload: dict[str, Any]) -> list[bytes]:
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


def _json_error(start_response: StartResponse, exc: AwsError) -> list[bytes]:
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


def _xml_error(start_response: StartResponse, code: str, message: str, status: int) -> list[bytes]:
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
