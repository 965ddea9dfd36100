"""S3 in the sandbox: moto stores the objects (and answers conditional writes with 412, as S3 does); this module
says which IAM action and resource each path-style request is, so the fidelity layer holds it to a policy.

The hub's S3 requests are held to ``iam/state-bucket-policy.json`` (the statement a state bucket needs), whose
placeholder bucket ``STATE_BUCKET`` is the one tests and the demo use. Actions and resources as AWS's service
authorization reference for Amazon S3 names them: GetObject/PutObject/DeleteObject on ``arn:aws:s3:::B/K``,
ListBucket (condition key ``s3:prefix``) and GetBucketLocation on ``arn:aws:s3:::B``; DeleteObjects (the
multi-object delete) is authorized as s3:DeleteObject on each key.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, unquote

STATE_BUCKET = "example-fleet-state"  # iam/state-bucket-policy.json's placeholder
STATE_PREFIX = "cognito-fleet/"  # and its prefix
_KEYS = re.compile(rb"<Key>(.*?)</Key>", re.DOTALL)


def s3_requests(environ: dict[str, Any], body: bytes) -> list[tuple[str, str, dict[str, str]]]:
    """(action, resource, condition keys) of a path-style S3 request; several for a multi-object delete."""
    method = environ.get("REQUEST_METHOD", "GET").upper()
    path = unquote(environ.get("PATH_INFO", "/"))
    query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
    bucket, _, key = path.lstrip("/").partition("/")
    bucket_arn = f"arn:aws:s3:::{bucket}"
    if not key:
        if "location" in query:
            return [("s3:GetBucketLocation", bucket_arn, {})]
        if method == "POST" and "delete" in query:
            keys = [k.decode() for k in _KEYS.findall(body)]
            return [("s3:DeleteObject", f"{bucket_arn}/{k}", {}) for k in keys] or [("s3:DeleteObject", bucket_arn, {})]
        if method == "PUT":
            return [("s3:CreateBucket", bucket_arn, {})]
        if method == "DELETE":
            return [("s3:DeleteBucket", bucket_arn, {})]
        return [("s3:ListBucket", bucket_arn, {"s3:prefix": query.get("prefix", [""])[0]})]
    action = {"GET": "s3:GetObject", "HEAD": "s3:GetObject", "PUT": "s3:PutObject", "DELETE": "s3:DeleteObject"}
    return [(action.get(method, "s3:" + method.title()), f"{bucket_arn}/{key}", {})]


def operation_name(environ: dict[str, Any]) -> str:
    """For the sandbox's call counters: ``s3:PUT`` (object), ``s3:LIST``, ``s3:DELETE``..."""
    method = environ.get("REQUEST_METHOD", "GET").upper()
    path = environ.get("PATH_INFO", "/").lstrip("/")
    if "/" not in path and method == "GET":
        return "s3:LIST"
    if "delete" in environ.get("QUERY_STRING", ""):
        return "s3:DELETE"
    return f"s3:{method}"


def _string_like(expected_value: list[str] | str, actual_value: str) -> bool:
    """IAM's StringLike: ``*`` any run of characters, ``?`` one character, case-sensitive."""
    actual = actual_value
    patterns = [expected_value] if isinstance(expected_value, str) else expected_value
    for pattern in patterns:
        regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
        if re.fullmatch(regex, actual, re.DOTALL):
            return True
    return False


def teach_moto_string_like() -> None:
    """moto 5.2.5 evaluates only StringEquals and *ignores* (allows) any other condition operator
    (``moto.iam.policy_conditions.CONDITION_OPERATIONS``, private): the state policy's ``s3:prefix`` StringLike
    would grant a listing of the whole bucket. tests/checks/test_iam_documents.py fails if that dict changes shape."""
    from moto.iam import policy_conditions

    policy_conditions.CONDITION_OPERATIONS.setdefault("StringLike", _string_like)
