"""State and lock files only their owner controls; somebody else's SQLite file is never touched (issues 21, 17)."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from fleet.cli import main
from fleet.state.checkpoint import APPLICATION_ID, Checkpoint, CheckpointError
from fleet.state.ownership import UnsafeStateFile, open_owned

from ..conftest import Fleet


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def run_args(fleet: Fleet, *more: str) -> list[str]:
    checkpoint = [] if "--checkpoint" in more else ["--checkpoint", str(fleet.checkpoint)]
    return ["run", str(fleet.manifest), "--endpoint-url", fleet.box.endpoint, "--no-progress", *checkpoint, *more]


def foreign_database(path: Path) -> bytes:
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)")
        db.execute("INSERT INTO notes (text) VALUES ('someone else''s data')")
    db.close()
    path.chmod(0o600)
    return path.read_bytes()


def test_a_symlinked_lock_is_refused_and_its_target_unchanged(make_fleet, tmp_path: Path) -> None:
    fleet: Fleet = make_fleet(accounts=1, regions=("us-east-1",), per_region=1)
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious\n")
    victim.chmod(0o600)
    Path(f"{fleet.checkpoint}.lock").symlink_to(victim)
    code, out = invoke(*run_args(fleet))
    assert code == 2, out
    assert "symbolic link" in out and ".lock" in out
    assert victim.read_bytes() == b"precious\n"
    assert fleet.box.state.writes == {} and not fleet.checkpoint.exists()


def test_a_symlinked_state_file_is_refused(make_fleet, tmp_path: Path) -> None:
    fleet: Fleet = make_fleet(accounts=1, regions=("us-east-1",), per_region=1)
    victim = tmp_path / "victim.sqlite"
    before = foreign_database(victim)
    fleet.checkpoint.symlink_to(victim)
    code, out = invoke(*run_args(fleet))
    assert code == 2 and "symbolic link" in out, out
    assert victim.read_bytes() == before and fleet.box.state.writes == {}


def test_a_planted_world_writable_state_is_refused_untouched(make_fleet) -> None:
    fleet: Fleet = make_fleet(accounts=1, regions=("us-east-1",), per_region=1)
    Checkpoint(fleet.checkpoint).close()  # a genuine state ...
    fleet.checkpoint.chmod(0o666)  # ... that others may edit (the moves table feeds every rollback)
    before = fleet.checkpoint.read_bytes()
    for args in (run_args(fleet), ["history", str(fleet.checkpoint)]):
        code, out = invoke(*args)
        assert code == 2, out
        assert "mode 0666" in out and "chmod 600" in out and str(fleet.checkpoint) in out
        assert len([line for line in out.splitlines() if "error" in line]) == 1, out
    assert fleet.checkpoint.read_bytes() == before and fleet.box.state.writes == {}
    assert oct(fleet.checkpoint.stat().st_mode & 0o777) == "0o666"  # not "fixed" behind the operator's back


@pytest.mark.skipif(os.geteuid() != 0, reason="making a file another user's needs root")
def test_a_state_file_of_another_user_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "theirs.sqlite"
    Checkpoint(path).close()
    os.chown(path, 65534, 65534)
    with pytest.raises(UnsafeStateFile, match="owned by uid 65534"):
        Checkpoint(path)
    lock = tmp_path / "theirs.sqlite.lock"
    lock.write_text("{}")
    lock.chmod(0o600)
    os.chown(lock, 65534, 65534)
    with pytest.raises(UnsafeStateFile, match="owned by uid 65534"):
        open_owned(lock, create=True)


def test_a_new_state_is_created_0600_with_our_application_id(tmp_path: Path) -> None:
    path = tmp_path / "new.sqlite"
    Checkpoint(path).close()
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA application_id").fetchone() == (APPLICATION_ID,)


def test_history_never_creates_a_state(tmp_path: Path) -> None:
    with pytest.raises(UnsafeStateFile, match="no such file"):
        Checkpoint(tmp_path / "absent.sqlite", create=False)
    assert not (tmp_path / "absent.sqlite").exists()


def test_a_foreign_sqlite_file_is_refused_by_run_and_history_and_left_byte_identical(make_fleet) -> None:
    fleet: Fleet = make_fleet(accounts=1, regions=("us-east-1",), per_region=1)
    other = fleet.tmp / "other.sqlite"
    before = foreign_database(other)
    for args in (
        run_args(fleet, "--checkpoint", str(other)),
        ["history", str(other)],
        ["history", str(other), "--domain", "x"],
    ):
        code, out = invoke(*args)
        assert code == 2, out
        assert "not a cognito-fleet state file" in out and "unexpected" not in out, out
    assert other.read_bytes() == before
    assert fleet.box.state.writes == {}
    with sqlite3.connect(other) as db:  # not switched to WAL, no table of ours
        assert db.execute("PRAGMA journal_mode").fetchone() == ("delete",)
        assert {r[0] for r in db.execute("SELECT name FROM sqlite_master")} == {"notes"}


def test_a_file_that_is_not_sqlite_or_has_another_application_id_is_refused(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_bytes(b"not a database at all, but long enough to have a header\n" * 20)
    text.chmod(0o600)
    other = tmp_path / "app.sqlite"
    with sqlite3.connect(other) as db:
        db.execute("PRAGMA application_id = 1234")
        db.execute("CREATE TABLE meta (key TEXT, value TEXT)")
        db.execute("CREATE TABLE outcomes (domain TEXT)")
    db.close()
    other.chmod(0o600)
    for path in (text, other):
        before = path.read_bytes()
        with pytest.raises(CheckpointError, match="not a cognito-fleet state file"):
            Checkpoint(path)
        assert path.read_bytes() == before


def test_a_planted_side_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    Checkpoint(path).close()
    wal = Path(f"{path}-wal")
    wal.write_bytes(b"")
    wal.chmod(0o666)
    with pytest.raises(UnsafeStateFile, match="-wal: mode 0666"):
        Checkpoint(path)


def test_a_state_directory_others_may_write_to_is_warned_about(make_fleet) -> None:
    """Sticky (as /tmp): others cannot remove the state, but could plant files at its names first. Without the
    sticky bit the directory is refused (tests/test_state_directory.py)."""
    fleet: Fleet = make_fleet(accounts=1, regions=("us-east-1",), per_region=1)
    fleet.tmp.chmod(0o1777)
    try:
        code, out = invoke(*run_args(fleet))
    finally:
        fleet.tmp.chmod(0o700)
    assert code == 0, out
    assert out.count("state_directory_shared") == 1, out  # once, though the lock and the state both live there
