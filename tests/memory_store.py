"""An in-memory ``ObjectStore`` with S3's conditional-write answers (412 as RaceLost) and an age per object on a
clock the test moves: the S3 state's decisions tested without the sandbox."""

from __future__ import annotations

import hashlib
import itertools
from collections import Counter

from fleet.state.s3_objects import Found, RaceLost


class MemoryStore:
    def __init__(self, bucket: str = "fleet-state") -> None:
        self.bucket = bucket
        self.objects: dict[str, tuple[bytes, str, float]] = {}  # key -> body, etag, written at
        self.time = 0.0
        self.calls: Counter[str] = Counter()
        self._versions = itertools.count(1)
        self.before_put: dict[str, bytes] = {}  # key -> a body someone else writes there just before our PUT

    def get(self, key: str) -> Found | None:
        self.calls["get"] += 1
        found = self.objects.get(key)
        return None if found is None else Found(found[0], found[1], self.time - found[2])

    def put(self, key: str, body: bytes, *, if_match: str | None = None, if_none_match: bool = False) -> str:
        self.calls["put"] += 1
        if key in self.before_put:
            self._store(key, self.before_put.pop(key))
        current = self.objects.get(key)
        if if_none_match and current is not None:
            raise RaceLost(f"{key}: exists")
        if if_match is not None and (current is None or current[1] != if_match):
            raise RaceLost(f"{key}: changed")
        return self._store(key, body)

    def _store(self, key: str, body: bytes) -> str:
        etag = '"' + hashlib.md5(body + str(next(self._versions)).encode()).hexdigest() + '"'
        self.objects[key] = (body, etag, self.time)
        return etag

    def delete(self, keys: list[str]) -> None:
        self.calls["delete"] += 1
        for key in keys:
            self.objects.pop(key, None)

    def list(self, prefix: str) -> list[str]:
        self.calls["list"] += 1
        return sorted(k for k in self.objects if k.startswith(prefix))
