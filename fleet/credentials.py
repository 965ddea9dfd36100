"""Hub session, AssumeRole into each account, and the per-(account, region) client cache.

Credentials are ``AioRefreshableCredentials`` fed by our own AssumeRole call, so a run that outlasts
a role session refreshes before expiry. Secrets never leave this module's objects: nothing here logs,
returns or formats a secret key or session token.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aioboto3
import anyio
from aiobotocore.config import AioConfig
from aiobotocore.credentials import AioRefreshableCredentials

from fleet.http import SharedTLSSession
from fleet.retry import AttemptCounter, BackoffPolicy, Sleep, call_with_retry


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
    pool_connections: int = 10


def client_config(settings: AwsSettings) -> AioConfig:
    # One attempt in botocore: the engine's own policy retries (retry.py), so attempts never multiply.
    return AioConfig(
        retries={"mode": "standard", "total_max_attempts": 1},
        connect_timeout=settings.connect_timeout,
        read_timeout=settings.read_timeout,
        max_pool_connections=settings.pool_connections,
        http_session_cls=SharedTLSSession,
    )


def role_arn_for(account_id: str, settings: AwsSettings, row_role_arn: str | None) -> str:
    return row_role_arn or f"arn:aws:iam::{account_id}:role/{settings.role_name}"


class Hub:
    """The calling identity: one STS client that assumes every account's role."""

    def __init__(self, settings: AwsSettings, policy: BackoffPolicy, sleep: Sleep) -> None:
        self.settings = settings
        self.policy = policy
        self.sleep = sleep
        self._stack = contextlib.AsyncExitStack()
        self._session = aioboto3.Session(profile_name=settings.profile)
        self._config = client_config(settings)
        self._sts: Any = None

    async def __aenter__(self) -> Hub:
        self._sts = await self._stack.enter_async_context(
            self._session.client(
                "sts",
                region_name=self.settings.sts_region,
                endpoint_url=self.settings.endpoint_url,
                config=self._config,
            )
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()

    async def client(self, service: str, region: str = "us-east-1") -> Any:
        """A client of the hub identity itself (e.g. Organizations), closed with the hub."""
        return await self._stack.enter_async_context(
            self._session.client(
                service, region_name=region, endpoint_url=self.settings.endpoint_url, config=self._config
            )
        )

    @property
    def session(self) -> aioboto3.Session:
        return self._session

    async def assume(self, account_id: str, role_arn: str, external_id: str | None) -> AccountSession:
        """AssumeRole now (so a denied account fails before any row starts) and keep it fresh."""
        settings = self.settings

        async def fetch() -> dict[str, str]:
            kwargs: dict[str, Any] = {
                "RoleArn": role_arn,
                "RoleSessionName": settings.session_name,
                "DurationSeconds": settings.session_duration,
            }
            if external_id:
                kwargs["ExternalId"] = external_id
            resp = await call_with_retry(
                lambda: self._sts.assume_role(**kwargs), self.policy, AttemptCounter(), self.sleep
            )
            creds = resp["Credentials"]
            expiration = creds["Expiration"]
            return {
                "access_key": creds["AccessKeyId"],
                "secret_key": creds["SecretAccessKey"],
                "token": creds["SessionToken"],
                "expiry_time": expiration.isoformat() if isinstance(expiration, datetime) else str(expiration),
            }

        metadata = await fetch()
        # botocore refreshes 15 min (advisory) / 10 min (mandatory) before expiry: with short sessions
        # that would mean an AssumeRole before every call, so scale the margins to the real lifetime.
        lifetime = max(1.0, (datetime.fromisoformat(metadata["expiry_time"]) - datetime.now(UTC)).total_seconds())
        credentials = AioRefreshableCredentials.create_from_metadata(
            metadata,
            refresh_using=fetch,
            method="sts-assume-role",
            advisory_timeout=min(15 * 60, lifetime / 3),
            mandatory_timeout=min(10 * 60, lifetime / 5),
        )
        # botocore's default clock is datetime.now(tzlocal()), whose utcoffset() costs ~0.3 ms: checked at
        # every signing, that was a visible share of the CPU per call. UTC compares the same.
        credentials._time_fetcher = _utc_now
        return AccountSession(account_id, credentials, self)


_PLACEHOLDER = "cognito-fleet-placeholder"


def _utc_now() -> datetime:
    return datetime.now(UTC)


class AccountSession:
    """Clients of one account, one per (service, region), created on first use and closed together."""

    def __init__(self, account_id: str, credentials: AioRefreshableCredentials, hub: Hub) -> None:
        self.account_id = account_id
        self._credentials = credentials
        # Clients come from the hub's own session: its service models, event handlers and their alias cache
        # are warm, which a new session per account would rebuild (~40% of a new account's CPU, measured).
        self._session = hub.session
        self._settings = hub.settings
        self._config = client_config(hub.settings)
        self._clients: dict[tuple[str, str], Any] = {}
        self._stack = contextlib.AsyncExitStack()
        self._lock = anyio.Lock()

    async def client(self, service: str, region: str) -> Any:
        key = (service, region)
        async with self._lock:  # rows of one region start together: create their client once
            if key not in self._clients:
                client = await self._stack.enter_async_context(
                    self._session.client(
                        service,
                        region_name=region,
                        endpoint_url=self._settings.endpoint_url,
                        config=self._config,
                        # Placeholders: the signer's credentials are replaced below, before any request.
                        aws_access_key_id=_PLACEHOLDER,
                        aws_secret_access_key=_PLACEHOLDER,
                    )
                )
                # The account's refreshable credentials sign every request (aiobotocore asks the signer's
                # credentials for frozen ones at each signing, which refreshes them before expiry).
                client._request_signer._credentials = self._credentials
                self._clients[key] = client
        return self._clients[key]

    async def aclose(self) -> None:
        self._clients.clear()
        await self._stack.aclose()

    def __repr__(self) -> str:  # never show credentials
        return f"AccountSession({self.account_id})"
