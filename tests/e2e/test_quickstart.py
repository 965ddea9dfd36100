"""The README's quickstart works when followed literally in a fresh shell."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

from ..files import csv_rows

ROOT = Path(__file__).resolve().parents[2]


def quickstart() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- quickstart -->\n```\n(.*?)```", readme, re.DOTALL)
    assert block, "README.md has no quickstart block"
    return block.group(1)


def test_the_readme_quickstart_runs_as_written(tmp_path: Path) -> None:
    # A fresh shell: the installed commands on PATH, no AWS configuration or credentials of anyone's.
    env = {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}/usr/bin:/bin",
        "HOME": str(tmp_path),
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
        "LANG": "C.UTF-8",
    }
    script = "set -euo pipefail\n" + quickstart()
    # Its own process group: on a timeout the background sandbox goes too (it holds the output pipes).
    proc = subprocess.Popen(
        ["bash", "-c", script],
        cwd=tmp_path,
        env=env,
        text=True,
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        out, err = proc.communicate(timeout=180)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, out[-3000:] + err[-3000:]
    # discover: every seeded domain in the inventory, half on the distrusted CA (selected), half left alone.
    affected = {r["domain"]: r for r in csv_rows(tmp_path / "affected.csv")}
    assert len(affected) == 16
    old = {d for d, r in affected.items() if r["selection"] == "matched"}
    assert len(old) == 8 and {affected[d]["issuer"] for d in old} == {"Old CA"}
    assert {r["selection"] for d, r in affected.items() if d not in old} == {"other-issuer"}
    # reconcile moved exactly the Old-CA domains, each proven at the sandbox's edge ...
    report = csv_rows(tmp_path / "fleet.report.csv")
    assert {r["domain"] for r in report} == old
    assert {r["status"] for r in report} == {"verified"} and {r["edge"] for r in report} == {"served"}
    # ... the others are still on the certificate they had, and nothing is on "Old CA" any more.
    after = {r["domain"]: r for r in csv_rows(tmp_path / "fleet.inventory.csv")}
    assert all(after[d]["certificate_arn"] == affected[d]["certificate_arn"] for d in affected if d not in old)
    assert {r["issuer"] for r in after.values()} == {"New CA", "Healthy CA"}
    # The rerun wrote nothing and said so.
    assert "reconcile: nothing to do" in out + err
    assert "<svg" in (tmp_path / "fleet.html").read_text()
    assert oct((tmp_path / "sandbox.env").stat().st_mode & 0o777) == "0o600"
