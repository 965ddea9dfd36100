"""Where an S3 state is kept, and what the state needs of S3: a small object store with conditional writes.

The state room never calls AWS itself (``fleet/state/__init__``): ``fleet.aws.s3`` implements ``ObjectStore`` with
botocore, and the unit tests with a dictionary. Everything the S3 backend decides (journal names, replay, the lock's
lease) is written against this protocol.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from fleet.errors import EXIT_USAGE, FleetError, RaceLost

__all__ = ["Found", "ObjectStore", "RaceLost", "S3Location", "StoredObject"]

SCHEME = "s3://"


class StateLocationError(FleetError):
    """An ``s3://`` state location that cannot be used (no bucket, no key)."""

    exit_code = EXIT_USAGE


@dataclass(frozen=True, slots=True)
class S3Location:
    """``s3://BUCKET/KEY``: the state's snapshot is KEY; its journals, lock and records are beside it."""

    bucket: str
    key: str

    @classmethod
    def parse(cls, text: str) -> S3Location:
        if not text.startswith(SCHEME):
            raise StateLocationError(f"{text}: not an s3:// location")
        bucket, _, key = text[len(SCHEME) :].partition("/")
        if not bucket or not key or key.endswith("/"):
            raise StateLocationError(f"{text}: expected s3://BUCKET/KEY (a key, not a prefix)")
        return cls(bucket, key)

    def __str__(self) -> str:
        return f"{SCHEME}{self.bucket}/{self.key}"

    def beside(self, suffix: str) -> S3Location:
        """``KEY`` + suffix in the same bucket (``.lock``, ``.journal/``)."""
        return S3Location(self.bucket, self.key + suffix)

    def exists(self) -> bool:  # what callers ask of a local Path: an S3 state is looked up when opened
        return True


def is_s3(text: object) -> bool:
    return isinstance(text, S3Location) or (isinstance(text, str) and text.startswith(SCHEME))


class StoredObject(Protocol):
    """An object as read: its body, its ETag (for ``If-Match``) and its age by S3's own clock (the response's
    ``Date`` minus ``Last-Modified``: no client clock is trusted for a lease)."""

    @property
    def body(self) -> bytes: ...
    @property
    def etag(self) -> str: ...
    @property
    def age(self) -> float: ...


@dataclass(frozen=True, slots=True)
class Found:
    """A ``StoredObject``."""

    body: bytes
    etag: str
    age: float


class ObjectStore(Protocol):
    """One bucket. ``put`` raises RaceLost when its condition fails; every other failure is the store's own error
    (``fleet.aws.s3`` raises StateWriteError for those)."""

    bucket: str

    def get(self, key: str) -> StoredObject | None: ...

    def put(self, key: str, body: bytes, *, if_match: str | None = None, if_none_match: bool = False) -> str:
        """Write ``body``; returns the new ETag."""
        ...

    def delete(self, keys: list[str]) -> None: ...

    def list(self, prefix: str) -> list[str]:
        """Every key under ``prefix``, sorted."""
        ...
