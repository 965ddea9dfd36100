"""What users would write instead of cognito-fleet, for the benchmark: plain boto3, same per-row logic.

    python -m benchmarks.peers sequential MANIFEST ENDPOINT
    python -m benchmarks.peers threads MANIFEST ENDPOINT --workers 20     # the botocove model

Per account: AssumeRole; per row: DescribeUserPoolDomain -> acm:DescribeCertificate -> UpdateUserPoolDomain
(skipped when already on the target). botocore "standard" retries. Prints one JSON line: rows, failed.
"""

from __future__ import annotations

import argparse
import csv
import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
from botocore.config import Config

CONFIG = Config(retries={"mode": "standard"})


def migrate_account(endpoint: str, account: str, rows: list[dict[str, str]]) -> int:
    """Return the number of rows that failed."""
    sts = boto3.client("sts", region_name="us-east-1", endpoint_url=endpoint, config=CONFIG)
    creds = sts.assume_role(RoleArn=f"arn:aws:iam::{account}:role/CognitoFleetRole", RoleSessionName="benchmark-peer")[
        "Credentials"
    ]
    session = boto3.Session(
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )
    acm = session.client("acm", region_name="us-east-1", endpoint_url=endpoint, config=CONFIG)
    clients: dict[str, Any] = {}
    failed = 0
    for row in rows:
        region = row["region"]
        cognito = clients.get(region) or clients.setdefault(
            region, session.client("cognito-idp", region_name=region, endpoint_url=endpoint, config=CONFIG)
        )
        try:
            described = cognito.describe_user_pool_domain(Domain=row["domain"])["DomainDescription"]
            current = described.get("CustomDomainConfig", {}).get("CertificateArn")
            if current == row["certificate_arn"]:
                continue
            cert = acm.describe_certificate(CertificateArn=row["certificate_arn"])["Certificate"]
            if cert["Status"] != "ISSUED":
                failed += 1
                continue
            cognito.update_user_pool_domain(
                Domain=row["domain"],
                UserPoolId=row["user_pool_id"],
                CustomDomainConfig={"CertificateArn": row["certificate_arn"]},
            )
        except Exception:
            failed += 1
    return failed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["sequential", "threads"])
    parser.add_argument("manifest")
    parser.add_argument("endpoint")
    parser.add_argument("--workers", type=int, default=20)
    args = parser.parse_args()
    with open(args.manifest, newline="") as fh:
        rows = list(csv.DictReader(fh))
    accounts: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        accounts.setdefault(row["account_id"], []).append(row)
    if args.mode == "sequential":
        failed = sum(migrate_account(args.endpoint, a, r) for a, r in accounts.items())
    else:
        with ThreadPoolExecutor(max_workers=args.workers) as pool:
            failed = sum(pool.map(lambda item: migrate_account(args.endpoint, *item), accounts.items()))
    print(json.dumps({"rows": len(rows), "failed": failed}))


if __name__ == "__main__":
    main()
