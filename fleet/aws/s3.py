"""S3 for the fleet's state and records: the hub identity's client (same credential chain, ``--profile``), the
bucket's region found or given, every call through the endpoint guard (``fleet.aws.endpoints``).

A plain (synchronous) botocore client: the state's journal is written from the group commit's worker thread and
the state commands (history, hold) have no event loop. botocore's urllib3 session verifies the server's chain and
its hostname itself (the aiohttp path needed ``fleet.aws.http``'s own context for that), with the same CA bundle
(``AWS_CA_BUNDLE`` or the profile's). Path-style addressing against an ``--endpoint-url`` (the sandbox, a proxy):
virtual-host names would need a DNS name per bucket there.

Conditional writes as S3 answers them (S3 user guide, "Add preconditions to S3 operations with conditional
requests"): 412 PreconditionFailed when ``If-None-Match: *`` meets an existing key or ``If-Match`` a changed
ETag; 409 ConditionalRequestConflict when two conditional writes to one key race. Both are RaceLost here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from fleet.aws.credentials import AwsSettings
from fleet.aws.endpoints import credential_endpoints, require_encryption, resolve
from fleet.errors import EXIT_RESUMABLE, FleetError, RaceLost, StateWriteError

_RACES = frozenset({"PreconditionFailed", "ConditionalRequestConflict"})
_ADVICE = "check the hub's S3 permissions (iam/state-bucket-policy.json) and the network, and rerun to resume"
_MISSING = frozenset({"NoSuchKey", "404", "NotFound"})


@dataclass(frozen=True, slots=True)
class S3Object:
    """An object as read (``fleet.state.s3_objects.StoredObject``): body, ETag, age by S3's clock."""

    body: bytes
    etag: str
    age: float


class S3Unavailable(FleetError):
    """The state's bucket cannot be reached or read (no such bucket, access denied, no credentials)."""


class S3Interrupted(S3Unavailable):
    """S3 became unreachable after the run had opened its state: what is written is in S3, rerun to resume."""

    exit_code = EXIT_RESUMABLE


def _code(exc: Exception) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


class S3Objects:
    """One bucket, as ``fleet.state.s3_objects.ObjectStore``."""

    def __init__(self, bucket: str, settings: AwsSettings, region: str | None = None) -> None:
        import botocore.session
        from botocore.config import Config

        self.bucket = bucket
        self.requests = 0
        self.bytes_written = 0
        session = botocore.session.Session(profile=settings.profile)
        # Before any credential is resolved (as Hub.__aenter__): a role profile's AssumeRole or SSO would go where
        # the environment or the profile says, which the S3 endpoint's check does not cover (issue 25, item 4).
        for endpoint in credential_endpoints(session, settings.sts_region):
            require_encryption(endpoint, settings.insecure_endpoint)
        self._config = Config(
            # botocore retries S3's own 5xx and throttles; a conditional PUT retried after a lost answer may meet
            # itself (412): the state compares the bytes (fleet.state.s3_state).
            retries={"mode": "standard", "total_max_attempts": 4},
            connect_timeout=settings.connect_timeout,
            read_timeout=settings.read_timeout,
            s3={"addressing_style": "path" if settings.endpoint_url else "auto"},
            # No trailing CRC checksums on PUT: the body is small, SigV4 signs it, S3 stores what it got.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        self._session, self._settings = session, settings
        self.region = region or self._bucket_region()
        self._client = self._client_for(self.region)

    def _client_for(self, region: str) -> Any:
        client = self._session.create_client(
            "s3", region_name=region, endpoint_url=self._settings.endpoint_url, config=self._config
        )
        endpoint = resolve(client, "s3", region, self._settings.endpoint_url, self._session)
        require_encryption(endpoint, self._settings.insecure_endpoint)  # before the first connection
        client.meta.events.register("before-send.s3", self._count)
        return client

    def _count(self, request: Any, **_: Any) -> None:
        self.requests += 1

    def _bucket_region(self) -> str:
        """GetBucketLocation (s3:GetBucketLocation on the bucket, nothing more): its LocationConstraint, where
        none means us-east-1 and ``EU`` eu-west-1 (Amazon S3 API reference, GetBucketLocation)."""
        from botocore.exceptions import BotoCoreError, ClientError

        probe = self._client_for("us-east-1")
        try:
            constraint = probe.get_bucket_location(Bucket=self.bucket).get("LocationConstraint")
        except ClientError as exc:
            raise S3Unavailable(
                f"s3://{self.bucket}: cannot find the bucket's region ({_code(exc) or exc}); check the bucket name "
                "and the hub's s3:GetBucketLocation permission, or give --state-region"
            ) from None
        except BotoCoreError as exc:
            raise S3Unavailable(f"s3://{self.bucket}: cannot reach S3 ({exc})") from None
        finally:
            probe.close()
        return {None: "us-east-1", "": "us-east-1", "EU": "eu-west-1"}.get(constraint, str(constraint))

    def _fail(self, key: str, exc: Exception) -> FleetError:
        return StateWriteError(f"s3://{self.bucket}/{key}", f"S3: {_code(exc) or exc}", _ADVICE)

    def get(self, key: str) -> S3Object | None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            response = self._client.get_object(Bucket=self.bucket, Key=key)
            body = response["Body"].read()
        except ClientError as exc:
            if _code(exc) in _MISSING:
                return None
            raise S3Unavailable(f"s3://{self.bucket}/{key}: cannot read it ({_code(exc) or exc})") from None
        except BotoCoreError as exc:
            raise S3Unavailable(f"s3://{self.bucket}/{key}: cannot read it ({exc})") from None
        headers = response["ResponseMetadata"]["HTTPHeaders"]
        now = parsedate_to_datetime(headers["date"]) if "date" in headers else datetime.now(UTC)
        age = (now - response["LastModified"]).total_seconds()
        return S3Object(body, str(response["ETag"]), age)

    def put(self, key: str, body: bytes, *, if_match: str | None = None, if_none_match: bool = False) -> str:
        from botocore.exceptions import BotoCoreError, ClientError

        extra: dict[str, str] = {}
        if if_match is not None:
            extra["IfMatch"] = if_match
        if if_none_match:
            extra["IfNoneMatch"] = "*"
        self.bytes_written += len(body)
        try:
            response = self._client.put_object(Bucket=self.bucket, Key=key, Body=body, **extra)
        except ClientError as exc:
            if _code(exc) in _RACES:
                raise RaceLost(f"s3://{self.bucket}/{key}: changed by someone else ({_code(exc)})") from None
            raise self._fail(key, exc) from None
        except BotoCoreError as exc:
            raise self._fail(key, exc) from None
        return str(response["ETag"])

    def delete(self, keys: list[str]) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        for start in range(0, len(keys), 1000):  # DeleteObjects takes up to 1,000 keys
            batch = [{"Key": k} for k in keys[start : start + 1000]]
            try:
                answer = self._client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})
            except (ClientError, BotoCoreError) as exc:
                raise self._fail(keys[start], exc) from None
            for error in answer.get("Errors", []):  # S3 answers 200 and lists the keys it could not delete
                cause = f"S3: {error.get('Code')} deleting it"
                raise StateWriteError(f"s3://{self.bucket}/{error.get('Key')}", cause, _ADVICE)

    def list(self, prefix: str) -> list[str]:
        from botocore.exceptions import BotoCoreError, ClientError

        keys: list[str] = []
        try:
            for page in self._client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
                keys += [str(o["Key"]) for o in page.get("Contents", [])]
        except (ClientError, BotoCoreError) as exc:
            raise S3Unavailable(f"s3://{self.bucket}/{prefix}: cannot list it ({_code(exc) or exc})") from None
        return sorted(keys)

    def upload_file(self, key: str, path: str) -> None:
        """A record (report, run record) as one object: last writer wins, as a local file's rename would."""
        with open(path, "rb") as data:
            self.put(key, data.read())

    def close(self) -> None:
        self._client.close()
