"""--shard I/N: N machines take disjoint shares of a manifest, by account, covering every row once."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner

from fleet.cli import main
from fleet.manifest import Row, parse
from fleet.shard import Shard

from ..conftest import Fleet
from ..files import csv_rows


def rows(accounts: int, per_account: int) -> list[Row]:
    return [
        Row(
            line=i,
            account_id=f"{100000000000 + a:012d}",
            region="us-east-1",
            user_pool_id="us-east-1_X",
            domain=f"d{j}.a{a}.example.com",
            certificate_arn="arn",
        )
        for i, (a, j) in enumerate(((a, j) for a in range(accounts) for j in range(per_account)), start=2)
    ]


@pytest.mark.parametrize("count", [1, 2, 3, 7, 16])
def test_shards_cover_every_row_exactly_once_and_keep_accounts_whole(count: int) -> None:
    everything = rows(200, 3)
    seen: Counter[str] = Counter()
    owners: dict[str, int] = {}
    for index in range(count):
        for row in Shard(index, count).select(everything):
            seen[row.domain] += 1
            assert owners.setdefault(row.account_id, index) == index
    assert seen == Counter(r.domain for r in everything)
    if count > 1:
        sizes = [len(Shard(i, count).select(everything)) for i in range(count)]
        assert min(sizes) > 0  # 200 accounts spread over every shard


def test_shard_spec_is_validated() -> None:
    assert Shard.parse(" 2/5 ") == Shard(2, 5)
    for bad in ("5/5", "-1/3", "1", "a/b", "1/0"):
        with pytest.raises(ValueError, match="expected I/N"):
            Shard.parse(bad)


def test_two_shards_migrate_the_fleet_between_them(make_fleet, tmp_path: Path) -> None:
    for _ in range(10):  # account ids come from a shared counter: take a fleet that both shards have a part of
        fleet: Fleet = make_fleet(accounts=6, regions=("us-east-1",), per_region=2)
        rows = parse(fleet.manifest).rows
        if all(Shard(i, 2).select(rows) for i in (0, 1)):
            break
    domains = []
    for index in (0, 1):
        result = CliRunner().invoke(
            main,
            [
                "run",
                str(fleet.manifest),
                "--endpoint-url",
                fleet.box.endpoint,
                "--shard",
                f"{index}/2",
                "--no-progress",
            ],
        )
        assert result.exit_code == 0, result.output
        report = tmp_path / f"manifest.shard-{index}-of-2.report.csv"
        assert (tmp_path / f"manifest.shard-{index}-of-2.checkpoint.sqlite").exists()
        domains += [r["domain"] for r in csv_rows(report)]
    assert sorted(domains) == sorted(d.domain for d in fleet.domains)
    assert set(fleet.box.state.writes.values()) == {1} and len(fleet.box.state.writes) == 12
    bad = CliRunner().invoke(main, ["run", str(fleet.manifest), "--shard", "2/2"])
    assert bad.exit_code == 2 and "0 <= I < N" in bad.output
