"""A WSGI layer in front of moto that makes it behave like AWS where cognito-fleet depends on it.

moto stays the store for user pools, ACM certificates, STS and IAM. This layer adds what moto lacks (its domains
have no CustomDomainConfig, are always ACTIVE and take any certificate): Cognito user pool *domains* are
implemented here in full (the true account, CustomDomainConfig in Describe, pool/prefix/certificate checks on
Update, a stable CloudFront domain, UPDATING -> ACTIVE, one name per partition), plus AWS's quotas, faults,
latency and expiring credentials. Before any of that, each request's SigV4 signature and the caller's IAM
policy are checked (auth.py).
"""

from __future__ import annotations

import io
import json
import re
import time
from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from fleet.aws.edge import format_serial
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
from fleet.sandbox.domains import AUTH_FAULTS, COGNITO_PREFIX, DOMAIN_OPERATIONS, DomainRecord, Domains
from fleet.sandbox.faults import RESET
from fleet.sandbox.s3 import operation_name, s3_requests
from fleet.sandbox.state import SandboxState
from fleet.sandbox.wire import (
    DROP,
    AwsError,
    ResetConnection,
    StartResponse,
    WsgiApp,
    drop_connection,
    json_error,
    json_ok,
    read_body,
    request_params,
    respond,
    xml_error,
)

__all__ = ["DROP", "AwsError", "DomainRecord", "FidelityApp"]


class _Reads(Domains):
    """Reads AWS answers differently from moto: DescribeUserPool's CustomDomain, ACM's Serial in colon hex."""

    moto_app: WsgiApp

    def _forward(self, environ: dict[str, Any], start_response: StartResponse, body: bytes) -> Iterable[bytes]:
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        return self.moto_app(environ, start_response)

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
        return respond(start_response, status, headers, out)

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
        return respond(start_response, status, headers, out)


class _Services(_Reads):
    """What the layer answers itself or reshapes from moto: STS's AssumeRole (denials, external ids, expiry), ACM
    and Cognito reads AWS answers differently, Cognito's faults, quotas and latency."""

    moto_app: WsgiApp
    authority: Authority

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
            return xml_error(
                start_response,
                "AccessDenied",
                f"User: {caller.arn} is not authorized to perform: sts:AssumeRole on resource: {role_arn}",
                403,
            )
        required = knobs.external_ids.get(target)
        if required is not None and params.get("ExternalId") != required:
            return xml_error(
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
        return respond(start_response, status, headers, text.encode())

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
            drop_connection(environ)
            raise ResetConnection
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
        return json_ok(start_response, result)

    def _lose(self, environ: dict[str, Any], fault: str) -> None:
        self.state.count_fault(fault)
        drop_connection(environ)
        raise ResetConnection


class FidelityApp(_Services):
    """The WSGI app: control API, SigV4 and IAM checks, injected faults, then the services."""

    def __init__(self, moto_app: WsgiApp, state: SandboxState) -> None:
        self.moto_app = moto_app
        self.state = state
        self.domains: dict[str, DomainRecord] = {}
        self.authority = Authority(HUB_CREDENTIALS)
        self._unchecked: dict[str, Identity] = {}  # keys seen while verify_signatures is off

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path.startswith("/_sandbox/"):
            return self._control(environ, start_response, path)
        body = read_body(environ)
        if path.startswith("/moto-api/"):  # moto's own control API: not AWS, nothing to sign
            return self._forward(environ, start_response, body)
        credential = parse_authorization(environ.get("HTTP_AUTHORIZATION", ""))
        region, service = (credential.region, credential.service) if credential else ("us-east-1", "")
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        protocol = "json" if target else "query"
        params = request_params(environ, body, protocol) if service != "s3" else {}  # an S3 body is an object
        operation = target.rpartition(".")[2] if target else str(params.get("Action", ""))
        try:
            identity = self._identify(environ, body, credential)
            if service == "s3":
                self._count_s3(environ, body)
            if self.state.knobs.enforce_iam and service == "s3":
                # The hub's S3 calls are held to the state bucket's policy (fleet/sandbox/s3.py).
                as_state = replace(identity, policy="state") if identity.policy == "hub" else identity
                for action, resource, keys in s3_requests(environ, body):
                    self.authority.authorize(as_state, action, resource, keys)
            elif self.state.knobs.enforce_iam:
                resource = resource_of(service, operation, params, identity.account, region)
                parts = resource.split(":")  # the account that owns the resource (an ARN's fifth field)
                owner = parts[4] if len(parts) > 5 and parts[4] else identity.account
                outside = owner in self.state.knobs.outside_organization
                context = {"aws:ResourceOrgID": OTHER_ORGANIZATION if outside else SANDBOX_ORGANIZATION}
                self.authority.authorize(identity, f"{service}:{operation}", resource, context)
                for action, extra in also_required(service, operation, params):
                    self.authority.authorize(identity, action, extra, context)
        except AuthError as exc:
            self.state.count_fault(AUTH_FAULTS[exc.reason])
            code, status = exc.code(protocol)
            if service == "sns" and exc.reason == "denied":
                code = "AuthorizationError"  # SNS's own name for an IAM denial (SNS API Reference, Publish: Errors)
            if protocol == "query":
                return xml_error(start_response, code, exc.message, status)
            return json_error(start_response, AwsError(code, exc.message, status))
        injected = self.state.injection(service, operation)
        if injected is not None:
            if injected.code == RESET:
                drop_connection(environ)
                start_response("500 Internal Server Error", [("Content-Length", "0")])
                return []
            if protocol == "query":
                return xml_error(start_response, injected.code, injected.message, injected.status)
            return json_error(start_response, AwsError(injected.code, injected.message, injected.status))
        try:
            knobs = self.state.knobs
            if knobs.latency and knobs.latency_everywhere and not target.startswith(COGNITO_PREFIX):
                time.sleep(knobs.latency * (1 + 0.2 * self.state.roll()))  # STS, ACM, Organizations as slow too
            if service == "sts":
                return self._sts(environ, start_response, body, params, identity)
            if target.startswith("CertificateManager."):
                with self.state.lock:
                    self.state.calls["acm:" + operation] += 1
                if operation == "DescribeCertificate":
                    return self._describe_certificate(environ, start_response, body)
            if target.startswith(COGNITO_PREFIX):
                return self._cognito(environ, start_response, body, params, identity.account, region, operation)
        except AwsError as exc:
            return json_error(start_response, exc)
        except ResetConnection:
            # The socket is already shut: werkzeug's write of this status fails quietly (a ConnectionError).
            start_response("500 Internal Server Error", [("Content-Length", "0")])
            return []
        return self._forward(environ, start_response, body)

    def _count_s3(self, environ: dict[str, Any], body: bytes) -> None:
        with self.state.lock:
            self.state.calls[operation_name(environ)] += 1
            if environ.get("REQUEST_METHOD") == "PUT":
                self.state.calls["s3:bytes_written"] += len(body)

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

    def _control(self, environ: dict[str, Any], start_response: StartResponse, path: str) -> Iterable[bytes]:
        if path == "/_sandbox/config" and environ.get("REQUEST_METHOD") == "POST":
            try:
                self.state.configure(**json.loads(read_body(environ) or b"{}"))
            except (KeyError, ValueError) as exc:
                return json_error(start_response, AwsError("InvalidParameterException", str(exc)))
        elif path == "/_sandbox/reset" and environ.get("REQUEST_METHOD") == "POST":
            self.state.reset_counters()
        elif path != "/_sandbox/stats":
            return json_error(start_response, AwsError("ResourceNotFoundException", path, 404))
        return json_ok(start_response, self.state.stats())
