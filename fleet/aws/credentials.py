"""Hub session, AssumeRole into each account, and the clients every account shares.

Credentials are ``AioRefreshableCredentials`` fed by our own AssumeRole call, so a run that outlasts
a role session refreshes before expiry. There is one client per (service, region) for the whole run; an
account calls it through ``AccountClient``, which binds the account's credentials to that call only.
Secrets never leave this module's objects: nothing here logs, returns or formats a secret key or session token.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import anyio

from fleet.aws.endpoints import Endpoint, credential_endpoints, require_encryption, resolve
from fleet.aws.limits import call_ceiling

if TYPE_CHECKING:  # the AWS stack is imported when first used: `validate` and `--help` never need it
    from aiobotocore.config import AioConfig
    from aiobotocore.credentials import AioRefreshableCredentials

    from fleet.aws.calls import Calls


@dataclass(frozen=True, slots=True)
class AwsSettings:
    profile: str | None = None
    endpoint_url: str | None = None
    role_name: str = "CognitoFleetRole"
    external_id: str | None = None
    session_name: str = "cognito-fleet"
    session_duration: int = 3600
    sts_region: str = "us-east-1"
    connect_timeout: float = 5.0
    read_timeout: float = 20.0
    pool_connections: int | None = (
        None  # per shared client (all accounts' calls to a region); None: limits.call_ceiling
    )
    insecure_endpoint: bool = False  # allow plain HTTP to a host that is not loopback (fleet/aws/endpoints.py)
    state_region: str | None = None  # an s3:// state's bucket region; None: found (GetBucketLocation)
    lock_lease: float = 120.0  # seconds an s3:// state's lock lasts without renewal (fleet/state/s3_lock.py)


def client_config(settings: AwsSettings) -> AioConfig:
    from aiobotocore.config import AioConfig

    from fleet.aws.http import SharedTLSSession

    # One attempt in botocore: the engine's own policy retries (retry.py), so attempts never multiply.
    return AioConfig(
        retries={"mode": "standard", "total_max_attempts": 1},
        connect_timeout=settings.connect_timeout,
        read_timeout=settings.read_timeout,
        max_pool_connections=settings.pool_connections or call_ceiling(),
        http_session_cls=SharedTLSSession,
    )


def role_arn_for(account_id: str, settings: AwsSettings, row_role_arn: str | None) -> str:
    return row_role_arn or f"arn:aws:iam::{account_id}:role/{settings.role_name}"


class Hub:
    """The calling identity: one STS client that assumes every account's role, through the job's ``calls`` (its
    retry policy, clock, stop and outage gate: ``fleet.aws.runtime``)."""

    def __init__(self, settings: AwsSettings, calls: Calls) -> None:
        self.settings = settings
        self.calls = calls
        import aioboto3

        self._stack = contextlib.AsyncExitStack()
        self._session = aioboto3.Session(profile_name=settings.profile)
        self._config = client_config(settings)
        self._sts: Any = None
        self.arn: str | None = None  # the calling identity, once checked (hub_check.checked_hub)
        self._shared: dict[tuple[str, str], Any] = {}
        self.endpoints: dict[tuple[str, str], Endpoint] = {}  # (service, region) -> where its calls go, and why
        self._shared_lock = anyio.Lock()

    async def __aenter__(self) -> Hub:
        # Before any credential is resolved: where botocore's own providers (a role's AssumeRole, SSO) would call.
        for endpoint in credential_endpoints(self._session._session, self.settings.sts_region):
            require_encryption(endpoint, self.settings.insecure_endpoint)
            self.endpoints[(f"{endpoint.service} ({endpoint.use})", endpoint.region)] = endpoint
        self._sts = await self.client("sts", self.settings.sts_region)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()

    @property
    def sts(self) -> Any:
        """The hub's STS client (open while the hub is)."""
        return self._sts

    async def client(self, service: str, region: str = "us-east-1", **keys: str) -> Any:
        """A client of the hub identity itself (e.g. Organizations) unless ``keys`` say otherwise; closed with
        the hub."""
        client = await self._stack.enter_async_context(
            self._session.client(
                service, region_name=region, endpoint_url=self.settings.endpoint_url, config=self._config, **keys
            )
        )
        # Before the client's first connection: where it will call, from which setting, and never in clear text.
        endpoint = resolve(client, service, region, self.settings.endpoint_url, self._session._session)
        require_encryption(endpoint, self.settings.insecure_endpoint)
        self.endpoints[(service, region)] = endpoint
        return client

    async def prepare(self, regions: Iterable[str]) -> None:
        """Create the run's shared clients (Cognito in ``regions``, ACM in us-east-1) now, before any call: their
        endpoints are checked and can be shown before anything is sent to them."""
        for region in sorted(set(regions)):
            await self.shared_client("cognito-idp", region)
        await self.shared_client("acm", "us-east-1")

    async def shared_client(self, service: str, region: str) -> Any:
        """The run's one client for (service, region), used by every account through AccountClient.

        Creating a client is most of a new account's cost (benchmarks/README.md), and the regional endpoint is
        the same for all accounts: one client per region shares its connection pool (and TLS sessions) too.
        """
        key = (service, region)
        async with self._shared_lock:  # accounts starting together create it once
            client: Any = self._shared.get(key)
            if client is None:
                # Placeholder keys, replaced before any request by the bound account's credentials.
                client = await self.client(
                    service, region, aws_access_key_id=_PLACEHOLDER, aws_secret_access_key=_PLACEHOLDER
                )
                client._request_signer._credentials = _BOUND_CREDENTIALS
                _build_user_agent_once(client)
                self._shared[key] = client
        return client

    async def assume(self, account_id: str, role_arn: str, external_id: str | None) -> AccountSession:
        """AssumeRole now (so a denied account fails before any row starts) and keep it fresh."""
        from aiobotocore.credentials import AioRefreshableCredentials

        settings = self.settings
        kwargs: dict[str, Any] = {
            "RoleArn": role_arn,
            "RoleSessionName": settings.session_name,
            "DurationSeconds": settings.session_duration,
        }
        if external_id:
            kwargs["ExternalId"] = external_id

        async def fetch(refresh: bool = True) -> dict[str, str]:
            # The job's call path (retries, outage gate). A refresh happens inside a call already under way, so it
            # goes despite a stop; the first AssumeRole is an account not yet started, left when the job stops.
            resp = await self.calls.call(self._sts, "AssumeRole", None, role_arn, despite_stop=refresh, **kwargs)
            creds = resp["Credentials"]
            expiration = creds["Expiration"]
            return {
                "access_key": creds["AccessKeyId"],
                "secret_key": creds["SecretAccessKey"],
                "token": creds["SessionToken"],
                "expiry_time": expiration.isoformat() if isinstance(expiration, datetime) else str(expiration),
            }

        metadata = await fetch(refresh=False)
        # botocore refreshes 15 min (advisory) / 10 min (mandatory) before expiry: with short sessions
        # that would mean an AssumeRole before every call, so scale the margins to the real lifetime.
        lifetime = max(1.0, (datetime.fromisoformat(metadata["expiry_time"]) - datetime.now(UTC)).total_seconds())
        # botocore's default clock, datetime.now(tzlocal()), pays for utcoffset() at every signing; UTC compares
        # the same. ``time_fetcher`` is a constructor argument (create_from_metadata does not take it).
        credentials = AioRefreshableCredentials(
            access_key=metadata["access_key"],
            secret_key=metadata["secret_key"],
            token=metadata["token"],
            expiry_time=datetime.fromisoformat(metadata["expiry_time"]),
            refresh_using=fetch,
            method="sts-assume-role",
            time_fetcher=_utc_now,
            advisory_timeout=min(15 * 60, lifetime / 3),
            mandatory_timeout=min(10 * 60, lifetime / 5),
        )
        return AccountSession(account_id, credentials, self)


_PLACEHOLDER = "cognito-fleet-placeholder"

# The credentials of the account whose call is being made. Set by AccountClient around each operation, in
# the calling task's own context, so concurrent calls of different accounts never see each other's.
_bound: ContextVar[AioRefreshableCredentials | None] = ContextVar("cognito_fleet_account_credentials", default=None)


class _BoundCredentials:
    """The signer's credentials of a shared client: whichever account is bound to the current call."""

    async def get_frozen_credentials(self) -> Any:
        credentials = _bound.get()
        if credentials is None:  # fail closed: never sign with anything but the calling account's keys
            raise RuntimeError("a shared client was called outside AccountClient: no account credentials bound")
        # Refreshable: re-assumes the role before expiry, once for all concurrent callers.
        return await credentials.get_frozen_credentials()


_BOUND_CREDENTIALS = _BoundCredentials()


def _build_user_agent_once(client: Any) -> None:
    """Drop botocore's second User-Agent build per request.

    botocore builds the header when it prepares a request, then rebuilds it in a last ``request-created``
    hook only to append per-request feature codes (usage metrics for AWS). Each build sanitises every
    component, and the rebuild was a fifth of a run's CPU (benchmarks/README.md). The header keeps the first
    build. Private API (``_user_agent_creator``, pinned botocore): ``tests/e2e/test_credentials.py`` fails if it moves.
    """
    service_id = client.meta.service_model.service_id.hyphenize()
    client.meta.events.unregister(
        f"request-created.{service_id}", client._user_agent_creator.rebuild_and_replace_user_agent_handler
    )


def _utc_now() -> datetime:
    return datetime.now(UTC)


class AccountClient:
    """One account's view of a shared client: its API operations, each run with the account's credentials.

    Only operations (and ``exceptions``/``meta``) are exposed: a paginator or waiter would call the shared
    client outside the binding, which fails closed.
    """

    def __init__(self, client: Any, credentials: AioRefreshableCredentials) -> None:
        self._client = client
        self._credentials = credentials
        self.exceptions = client.exceptions
        self.meta = client.meta

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name not in self.meta.method_to_api_mapping:
            raise AttributeError(f"{name}: an account's client offers API operations only")
        method = getattr(self._client, name)
        credentials = self._credentials

        async def call(**kwargs: Any) -> Any:
            token = _bound.set(credentials)
            try:
                return await method(**kwargs)
            finally:
                _bound.reset(token)

        setattr(self, name, call)  # later lookups skip __getattr__
        return call

    def __repr__(self) -> str:  # never show credentials
        return f"AccountClient({self.meta.service_model.service_name}, {self.meta.region_name})"


class AccountSession:
    """One account's clients: views of the run's shared clients, bound to this account's credentials."""

    def __init__(self, account_id: str, credentials: AioRefreshableCredentials, hub: Hub) -> None:
        self.account_id = account_id
        self._credentials = credentials
        self._hub = hub
        self._clients: dict[tuple[str, str], AccountClient] = {}

    async def client(self, service: str, region: str) -> AccountClient:
        key = (service, region)
        client = self._clients.get(key)
        if client is None:
            client = self._clients[key] = AccountClient(
                await self._hub.shared_client(service, region), self._credentials
            )
        return client

    async def aclose(self) -> None:
        self._clients.clear()  # the shared clients close with the hub

    def __repr__(self) -> str:  # never show credentials
        return f"AccountSession({self.account_id})"
