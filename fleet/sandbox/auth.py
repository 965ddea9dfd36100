"""Who is calling, and may they: the sandbox checks SigV4 signatures and IAM policies as AWS does.

A test that passes against a sandbox that accepts any key with any signature proves little about the real
network. Here every request's signature is recomputed with the
secret of its access key, a session token must be the one issued with its key, and each call is held to the
caller's policy document from ``iam/`` at the repository root:

- the hub's static keys (``HUB_CREDENTIALS``) to ``iam/hub-policy.json``;
- every assumed-role session to ``iam/role-policy.json``, whatever the role's name, but the read-only role's
  (``CognitoFleetReadOnlyRole``: discover, plan, the watcher) to ``iam/readonly-role-policy.json``;
- the sandbox's own *admin* keys (``ADMIN_CREDENTIALS``, for seeding and test setup) to nothing, and so are
  the sessions the admin assumes: the admin stands for whoever built the fleet, not for cognito-fleet.
"""

from __future__ import annotations

import calendar
import hashlib
import hmac
import json
import re
import sys
import threading
import time
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

# The sandbox's unrestricted identity: seeds fleets and sets tests up. Same default account as the hub.
# The hub's static keys (what `sandbox serve` prints) and the admin's (seeding); moto maps both to its default
# account 123456789012.
HUB_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "AKIASANDBOXHUB000000", "AWS_SECRET_ACCESS_KEY": "sandbox-hub-secret"}
ADMIN_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "AKIASANDBOXADMIN0000", "AWS_SECRET_ACCESS_KEY": "sandbox-admin-secret"}
ADMIN_ROLE_NAME = "SandboxAdmin"  # the role the admin assumes in member accounts (any name would do)
DEFAULT_ACCOUNT = "123456789012"


def _iam_dir() -> Path:
    """The policies a security team reviews: the repository's iam/ (editable install or checkout), else the copy
    a wheel installs under ``<prefix>/share/cognito-fleet/iam`` (pyproject's data-files)."""
    checkout = Path(__file__).resolve().parents[2] / "iam"
    installed = Path(sys.prefix) / "share" / "cognito-fleet" / "iam"
    return checkout if checkout.is_dir() or not installed.is_dir() else installed


IAM_DIR = _iam_dir()
# The organization every sandbox account belongs to (but those of the knob ``outside_organization``): the
# placeholder iam/hub-policy.json's aws:ResourceOrgID condition carries, as if it had been filled in.
SANDBOX_ORGANIZATION = "o-exampleorgid"
OTHER_ORGANIZATION = "o-someoneelses0"
POLICY_FILES = {
    "hub": "hub-policy.json",
    "role": "role-policy.json",
    "readonly": "readonly-role-policy.json",
    "state": "state-bucket-policy.json",
}
READONLY_ROLE_NAME = "CognitoFleetReadOnlyRole"  # iam/role-stackset.yaml's second role
MAX_SKEW = 15 * 60  # seconds: AWS refuses a signature dated further from its clock ("Signature expired")

Reason = Literal["signature", "token", "missing", "expired", "denied"]
# (code, HTTP status) by protocol: JSON services (Cognito, ACM, Organizations) and the query protocol (STS).
ERROR_CODES: dict[str, dict[Reason, tuple[str, int]]] = {
    "json": {
        "signature": ("InvalidSignatureException", 400),
        "token": ("UnrecognizedClientException", 400),
        "missing": ("MissingAuthenticationTokenException", 400),
        "expired": ("ExpiredTokenException", 400),
        "denied": ("AccessDeniedException", 400),
    },
    "query": {
        "signature": ("SignatureDoesNotMatch", 403),
        "token": ("InvalidClientTokenId", 403),
        "missing": ("MissingAuthenticationToken", 403),
        "expired": ("ExpiredToken", 403),
        "denied": ("AccessDenied", 403),
    },
}
_AUTHORIZATION = re.compile(
    r"AWS4-HMAC-SHA256\s+Credential=([^/,\s]+)/(\d{8})/([^/,\s]+)/([^/,\s]+)/aws4_request\s*,\s*"
    r"SignedHeaders=([^,\s]+)\s*,\s*Signature=([0-9a-f]{64})\s*$"
)
# JSON services by X-Amz-Target prefix: the service their credential scope must name.
_TARGET_SERVICES = {
    "AWSCognitoIdentityProviderService": "cognito-idp",
    "CertificateManager": "acm",
    "AWSOrganizationsV20161128": "organizations",
}
_STAMP = re.compile(r"\d{8}T\d{6}Z")
_TOKEN_INVALID = "The security token included in the request is invalid."


class AuthError(Exception):
    """A request refused before it reaches a service; ``reason`` picks the code of the service's protocol."""

    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(message)
        self.reason, self.message = reason, message

    def code(self, protocol: str) -> tuple[str, int]:
        return ERROR_CODES[protocol][self.reason]


@dataclass(frozen=True, slots=True)
class Identity:
    """A known access key. ``policy`` names a document in ``iam/``; None: unrestricted."""

    access_key: str
    secret: str = field(repr=False)  # never shown: an identity may end up in a log or a traceback
    account: str
    arn: str
    policy: str | None
    token: str | None = field(default=None, repr=False)  # assumed-role keys only; static keys come without one
    expiry: float | None = None  # epoch seconds


@dataclass(frozen=True, slots=True)
class Credential:
    """The parsed ``Authorization`` header of a SigV4 request."""

    access_key: str
    date: str
    region: str
    service: str
    signed_headers: tuple[str, ...]
    signature: str


def parse_authorization(header: str) -> Credential | None:
    m = _AUTHORIZATION.match(header.strip())
    if m is None:
        return None
    key, date, region, service, signed, signature = m.groups()
    return Credential(key, date, region, service, tuple(signed.split(";")), signature)


class Authority:
    """The sandbox's key store, signature checker and policy evaluator. Thread-safe."""

    def __init__(self, hub_credentials: dict[str, str], iam_dir: Path = IAM_DIR) -> None:
        self.iam_dir = iam_dir
        self._lock = threading.Lock()
        self._identities: dict[str, Identity] = {}
        for creds, name, policy in ((hub_credentials, "hub", "hub"), (ADMIN_CREDENTIALS, "sandbox-admin", None)):
            key = creds["AWS_ACCESS_KEY_ID"]
            arn = f"arn:aws:iam::{DEFAULT_ACCOUNT}:user/{name}"
            self._identities[key] = Identity(key, creds["AWS_SECRET_ACCESS_KEY"], DEFAULT_ACCOUNT, arn, policy)
        self._signing_keys: dict[tuple[str, str, str, str], bytes] = {}
        self._decisions: dict[tuple[str, ...], bool] = {}
        self._policies: dict[str, Any] = {}

    # ---- keys -------------------------------------------------------------------------------
    def identity(self, access_key: str) -> Identity | None:
        return self._identities.get(access_key)

    def add_session(
        self,
        caller: Identity | None,
        access_key: str,
        secret: str,
        token: str,
        role_arn: str,
        session: str,
        expiry: float,
    ) -> Identity:
        """Record the keys of an AssumeRole answer: the role's session, held to the role policy."""
        account = role_arn.split(":")[4]
        role_name = role_arn.rsplit("/", 1)[-1]
        unrestricted = caller is not None and caller.policy is None  # the admin's own sessions
        identity = Identity(
            access_key,
            secret,
            account,
            f"arn:aws:sts::{account}:assumed-role/{role_name}/{session}",
            None if unrestricted else "readonly" if role_name == READONLY_ROLE_NAME else "role",
            token,
            expiry,
        )
        with self._lock:
            self._identities[access_key] = identity
        return identity

    def authenticate(self, environ: dict[str, Any], body: bytes, credential: Credential | None) -> Identity:
        """The identity of a signed request, or AuthError: unknown key, token not the key's, bad signature."""
        if credential is None:
            if environ.get("HTTP_AUTHORIZATION"):
                raise AuthError("signature", "Authorization header requires a valid AWS4-HMAC-SHA256 signature.")
            raise AuthError("missing", "Request is missing Authentication Token")
        identity = self._identities.get(credential.access_key)
        token = environ.get("HTTP_X_AMZ_SECURITY_TOKEN", "").encode()
        if identity is None or not hmac.compare_digest(token, (identity.token or "").encode()):
            raise AuthError("token", _TOKEN_INVALID)
        check_expiry(identity)
        target = environ.get("HTTP_X_AMZ_TARGET", "").partition(".")[0]
        if _TARGET_SERVICES.get(target, credential.service) != credential.service:
            # moto routes by the scope's service: a mismatch would run another service's operation.
            raise AuthError(
                "signature", f"Credential should be scoped to correct service: '{_TARGET_SERVICES[target]}'."
            )
        expected = self.signature(environ, body, credential, identity.secret)
        if not hmac.compare_digest(expected, credential.signature):
            raise AuthError(
                "signature",
                "The request signature we calculated does not match the signature you provided. "
                "Check your AWS Secret Access Key and signing method.",
            )
        return identity

    # ---- signatures -------------------------------------------------------------------------
    def signature(self, environ: dict[str, Any], body: bytes, credential: Credential, secret: str) -> str:
        """SigV4 as botocore.auth.SigV4Auth computes it, from what arrived on the wire."""
        stamp = environ.get("HTTP_X_AMZ_DATE", "")
        if not stamp.startswith(credential.date) or "host" not in credential.signed_headers:
            raise AuthError("signature", "The request must sign the host header and X-Amz-Date of its scope.")
        if not _STAMP.fullmatch(stamp):
            raise AuthError("signature", f"Invalid X-Amz-Date {stamp!r}.")
        fields = (stamp[0:4], stamp[4:6], stamp[6:8], stamp[9:11], stamp[11:13], stamp[13:15])
        skew = abs(time.time() - calendar.timegm((*map(int, fields), 0, 0, 0)))  # 5x cheaper than strptime
        if skew > MAX_SKEW:
            raise AuthError("signature", f"Signature expired: {stamp} is more than 15 minutes from the server's time.")
        scope = f"{credential.date}/{credential.region}/{credential.service}/aws4_request"
        canonical = canonical_request(environ, body, credential.signed_headers)
        to_sign = f"AWS4-HMAC-SHA256\n{stamp}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
        key = self._signing_key(secret, credential.date, credential.region, credential.service)
        return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()

    def _signing_key(self, secret: str, date: str, region: str, service: str) -> bytes:
        # Four HMACs per request saved: the key only changes with the day, region and service.
        cached = self._signing_keys.get((secret, date, region, service))
        if cached is None:
            cached = ("AWS4" + secret).encode()
            for part in (date, region, service, "aws4_request"):
                cached = hmac.new(cached, part.encode(), hashlib.sha256).digest()
            if len(self._signing_keys) > 4096:  # every assumed session has its own secret: stay bounded
                self._signing_keys.clear()
            self._signing_keys[(secret, date, region, service)] = cached
        return cached

    # ---- policies ---------------------------------------------------------------------------
    def authorize(self, identity: Identity, action: str, resource: str, context: dict[str, str] | None = None) -> None:
        """AuthError("denied") unless the identity's policy allows ``action`` on ``resource`` (``context``: the
        request's condition keys, e.g. aws:ResourceOrgID)."""
        if identity.policy is None or action == "sts:GetCallerIdentity":  # always allowed, as in AWS
            return
        key = (identity.policy, action, resource, *(f"{k}={v}" for k, v in sorted((context or {}).items())))
        allowed = self._decisions.get(key)
        if allowed is None:
            from moto.iam.access_control import PermissionResult

            # NEUTRAL (no statement matches) is an implicit deny, as in AWS.
            decision = self._policy(identity.policy).is_action_permitted(
                action, resource, incoming_condition_values=context
            )
            allowed = decision == PermissionResult.PERMITTED
            if len(self._decisions) > 65536:
                self._decisions.clear()
            self._decisions[key] = allowed
        if not allowed:
            raise AuthError(
                "denied",
                f"User: {identity.arn} is not authorized to perform: {action} on resource: {resource} "
                f"because no identity-based policy allows the {action} action",
            )

    def _policy(self, name: str) -> Any:
        policy = self._policies.get(name)
        if policy is None:
            from moto.iam.access_control import IAMPolicy

            from fleet.sandbox.s3 import teach_moto_string_like

            teach_moto_string_like()

            path = self.iam_dir / POLICY_FILES[name]
            try:
                document = path.read_text(encoding="utf-8")
            except OSError as exc:
                raise RuntimeError(
                    f"sandbox IAM checks need {path} (the repository's iam/ directory); "
                    "run from a source checkout, or turn the check off with the knob enforce_iam=false"
                ) from exc
            json.loads(document)  # a clear error for a broken document, before moto's
            policy = self._policies[name] = IAMPolicy(document)
        return policy


def check_expiry(identity: Identity) -> None:
    if identity.expiry is not None and time.time() >= identity.expiry:
        raise AuthError("expired", "The security token included in the request is expired")


def canonical_request(environ: dict[str, Any], body: bytes, signed_headers: tuple[str, ...]) -> str:
    """The SigV4 canonical request of a WSGI request (raw URI as sent, signed headers, hash of the body)."""
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI") or environ.get("PATH_INFO", "/")
    path, _, query = raw.partition("?")
    lines = [environ.get("REQUEST_METHOD", "GET").upper(), _canonical_path(path or "/"), _canonical_query(query)]
    for name in signed_headers:
        value = environ.get(_environ_key(name))
        if value is None:
            raise AuthError("signature", f"The signed header {name!r} is missing from the request.")
        lines.append(f"{name}:{' '.join(str(value).split())}")
    # The body's own hash, never a client's X-Amz-Content-SHA256 claim: a body changed after signing fails.
    lines += ["", ";".join(signed_headers), hashlib.sha256(body).hexdigest()]
    return "\n".join(lines)


@cache
def _environ_key(header: str) -> str:
    if header in ("content-type", "content-length"):
        return header.upper().replace("-", "_")
    return "HTTP_" + header.upper().replace("-", "_")


@cache
def _canonical_path(path: str) -> str:
    from botocore.utils import normalize_url_path

    # As botocore: dot segments removed, then encoded again (every service but S3 double-encodes).
    return quote(normalize_url_path(path), safe="/~")


def _canonical_query(query: str) -> str:
    if not query:
        return ""
    pairs = sorted(pair.partition("=")[::2] for pair in query.split("&"))
    return "&".join(f"{k}={v}" for k, v in pairs)


# Permissions AWS demands beyond the operation's own action. AWS's Cognito developer guide, "Using your own
# domain for managed login" (docs.aws.amazon.com/cognito/latest/developerguide/
# cognito-user-pools-add-custom-domain.html): to set up a custom domain or update its certificate the caller
# must be allowed cloudfront:UpdateDistribution (Resource "*": the distribution is in an AWS-owned account).
_CUSTOM_DOMAIN_WRITES = frozenset({"CreateUserPoolDomain", "UpdateUserPoolDomain"})


def also_required(service: str, operation: str, params: dict[str, Any]) -> list[tuple[str, str]]:
    """(action, resource) pairs AWS also checks for this request, beyond ``service:operation`` itself."""
    if service == "cognito-idp" and operation in _CUSTOM_DOMAIN_WRITES and params.get("CustomDomainConfig"):
        return [("cloudfront:UpdateDistribution", "*")]
    return []


def resource_of(service: str, operation: str, params: dict[str, Any], account: str, region: str) -> str:
    """The resource an operation acts on, for IAM (AWS's service authorization reference); else ``*``."""
    if service == "cognito-idp" and isinstance(params.get("UserPoolId"), str):
        return f"arn:aws:cognito-idp:{region}:{account}:userpool/{params['UserPoolId']}"
    if service == "acm" and isinstance(params.get("CertificateArn"), str):
        return str(params["CertificateArn"])
    if service == "sts" and operation == "AssumeRole":
        return str(params.get("RoleArn", "*"))
    if service == "sns" and isinstance(params.get("TopicArn"), str):
        return str(params["TopicArn"])
    return "*"
