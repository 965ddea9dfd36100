"""Nobody else can remove or replace the state, its holds or its lock (issue 25, controls 2 and 3): a directory
another user may write to (or owns), a symlinked directory, a hard link at the state or lock path, and a SQLite
side file SQLite cannot use are refused (exit 2, one line), unless the operator trusts the directory by name.

The tests run as root: "another user" is uid 65534 (nobody), by ``chown`` or in a forked child that becomes it."""

from __future__ import annotations

import json
import os
import re
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from fleet.cli import main
from fleet.state.checkpoint import Checkpoint
from fleet.state.directory import TRUST_ENV, UnsafeStateDirectory, unsafe
from fleet.state.lock import CheckpointLock
from fleet.state.ownership import UnsafeStateFile

from ..conftest import Fleet
from ..files import events

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="another user's directory needs root to make")
NOBODY = 65534


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def errors(out: str) -> list[str]:
    return [str(e["message"]) for e in events(out) if e["event"] == "error"]


def directory(parent: Path, name: str, mode: int, uid: int = 0, gid: int = 0) -> Path:
    made = parent / name
    made.mkdir()
    os.chown(made, uid, gid)
    made.chmod(mode)  # after chown: chown clears setgid
    return made


def held_fleet(fleet: Fleet, state: Path) -> None:
    """A state that holds the fleet: a run on it writes nothing."""
    code, out = invoke(*fleet.run_args("--checkpoint", str(state), "--no-wait"))
    assert code == 0, out
    code, out = invoke("hold", str(state), "--reason", "incident 42")
    assert code == 0, out


@pytest.mark.parametrize(
    ("mode", "uid", "gid", "why"),
    [
        (0o700, 0, 0, None),
        (0o755, 0, 0, None),
        (0o1777, 0, 0, None),  # /tmp: only an entry's owner may remove it
        (0o777, 0, 0, "writable by others (mode 0777, no sticky bit)"),
        (0o2775, 0, NOBODY, f"writable by group {NOBODY} (mode 2775, no sticky bit)"),
        (0o755, NOBODY, 0, f"owned by uid {NOBODY}"),
        (0o1777, NOBODY, 0, f"owned by uid {NOBODY}"),  # its owner may remove anything in it, sticky or not
    ],
)
def test_who_may_remove_entries_of_a_directory(tmp_path: Path, mode: int, uid: int, gid: int, why: str | None) -> None:
    made = directory(tmp_path, "d", mode, uid, gid)
    found = unsafe(os.stat(made))
    assert found == why if why is None else (found is not None and found.startswith(why)), found


def test_another_users_directory_cannot_make_a_held_fleet_start_afresh(make_fleet, tmp_path: Path) -> None:
    """The review's attack: the held state lives in a directory another user controls; they delete it, and the
    next run would start afresh and write the held domains. Now nothing is used there at all."""
    fleet: Fleet = make_fleet(accounts=1, regions=("us-east-1",), per_region=2)
    theirs = directory(tmp_path, "theirs", 0o755, NOBODY, NOBODY)
    state = theirs / "s.sqlite"
    code, out = invoke(*fleet.run_args("--checkpoint", str(state), "--no-wait"))
    assert code == 2, out
    (message,) = errors(out)
    assert message.startswith(f"error: {theirs}: the state's directory is owned by uid {NOBODY}"), message
    assert "--trust-state-dir" in message
    assert fleet.box.state.writes == {} and list(theirs.iterdir()) == []  # not even a lock file


def test_a_held_state_in_a_world_writable_directory_is_refused_by_every_command(make_fleet, tmp_path: Path) -> None:
    fleet: Fleet = make_fleet(accounts=1, regions=("us-east-1",), per_region=2)
    shared = directory(tmp_path, "shared", 0o700)
    state = shared / "s.sqlite"
    held_fleet(fleet, state)
    writes = dict(fleet.box.state.writes)
    shared.chmod(0o777)  # now anyone could delete the held state and its lock
    for args in (
        fleet.run_args("--checkpoint", str(state)),
        ["history", str(state)],
        ["release", str(state)],
        ["hold", str(state), "--reason", "x"],
    ):
        code, out = invoke(*args)
        assert code == 2, (args, out)
        assert f"{shared}: the state's directory is writable by others (mode 0777" in out, out
    assert fleet.box.state.writes == writes


def test_a_directory_above_the_state_counts_too(tmp_path: Path) -> None:
    theirs = directory(tmp_path, "theirs", 0o755, NOBODY, NOBODY)  # they may rename "mine" and put another there
    mine = directory(theirs, "mine", 0o700)
    with pytest.raises(UnsafeStateDirectory, match=f"^{re.escape(str(theirs))}: a directory above the state's"):
        Checkpoint(mine / "s.sqlite")
    assert list(mine.iterdir()) == []


def test_a_world_writable_directory_above_a_private_one_is_allowed(tmp_path: Path) -> None:
    """As a Kubernetes emptyDir at /tmp (0777, no sticky bit) with the plan's private scratch directory in it."""
    empty_dir = directory(tmp_path, "tmp", 0o777)
    scratch = directory(empty_dir, "tmpabc", 0o700)
    Checkpoint(scratch / "plan.sqlite").close()


def test_a_trusted_directory_is_used_and_named_in_the_warning(
    make_fleet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Kubernetes volume given through fsGroup: group-writable, setgid. Trusted by name (option or environment),
    it is used, with the shared-directory warning; trusting another directory does not trust it."""
    fleet: Fleet = make_fleet(accounts=1, regions=("us-east-1",), per_region=1)
    volume = directory(tmp_path, "volume", 0o2775, 0, NOBODY)
    state = volume / "s.sqlite"
    code, out = invoke(*fleet.run_args("--checkpoint", str(state), "--trust-state-dir", str(tmp_path)))
    assert code == 2 and f"writable by group {NOBODY} (mode 2775" in out, out
    code, out = invoke(*fleet.run_args("--checkpoint", str(state), "--trust-state-dir", str(volume), "--no-wait"))
    assert code == 0, out
    shared = [e for e in events(out) if e["event"] == "state_directory_shared"]
    assert [(e["directory"], e["mode"]) for e in shared] == [(str(volume), "2775")], out
    code, out = invoke("history", str(state))  # each command sets its own trust: none given, none kept
    assert code == 2 and "--trust-state-dir" in out, out
    monkeypatch.setenv(TRUST_ENV, f"/nonexistent{os.pathsep}{volume}")
    code, out = invoke("history", str(state))
    assert code == 0 and "pending=1" in out, out


def test_the_warning_names_the_directory_as_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A sticky shared directory (/tmp's kind) is used, with one warning that names the path the operator gave,
    not where symlinks lead."""
    real = directory(tmp_path, "real", 0o700)
    (tmp_path / "link").symlink_to(real)
    sticky = directory(real, "sticky", 0o1777)
    given = tmp_path / "link" / "sticky"
    warned: list[dict[str, object]] = []
    import fleet.events

    class Recorder:
        def warning(self, event: str, **fields: object) -> None:
            warned.append({"event": event, **fields})

    monkeypatch.setattr(fleet.events, "get_logger", lambda: Recorder())
    with CheckpointLock(given / "s.sqlite"):
        Checkpoint(given / "s.sqlite").close()
    assert warned == [
        {
            "event": "state_directory_shared",
            "directory": str(given),
            "mode": "1777",
            "message": "other users may write to the state's directory: keep checkpoints in a directory only you "
            "can write to (--checkpoint)",
        }
    ]
    assert (sticky / "s.sqlite").exists()


def test_a_symlinked_state_directory_is_refused(tmp_path: Path) -> None:
    real = directory(tmp_path, "real", 0o700)
    (tmp_path / "link").symlink_to(real)
    with pytest.raises(UnsafeStateDirectory, match="is a symbolic link"):
        Checkpoint(tmp_path / "link" / "s.sqlite")
    assert list(real.iterdir()) == []


def test_a_hard_link_planted_at_the_lock_path_is_refused_and_its_file_unchanged(make_fleet, tmp_path: Path) -> None:
    """Written through, the link would truncate the file it shares (an empty file at the state path would become
    SQLite): refused before anything is written."""
    fleet: Fleet = make_fleet(accounts=1, regions=("us-east-1",), per_region=1)
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious\n")
    victim.chmod(0o600)
    os.link(victim, f"{fleet.checkpoint}.lock")
    code, out = invoke(*fleet.run_args())
    assert code == 2, out
    (message,) = errors(out)
    assert ".lock: has 2 hard links" in message, message
    assert victim.read_bytes() == b"precious\n" and fleet.box.state.writes == {}
    assert not fleet.checkpoint.exists()


def test_a_state_with_a_second_name_is_refused(tmp_path: Path) -> None:
    state = tmp_path / "s.sqlite"
    Checkpoint(state).close()
    os.link(state, tmp_path / "copy-they-keep")
    before = state.read_bytes()
    with pytest.raises(UnsafeStateFile, match=r"s\.sqlite: has 2 hard links"):
        Checkpoint(state)
    assert state.read_bytes() == before


@pytest.fixture
def reachable() -> Iterator[Path]:
    """A directory uid 65534 can reach (pytest's are root's, 0700)."""
    with tempfile.TemporaryDirectory(prefix="cognito-fleet-test-") as made:
        os.chmod(made, 0o755)
        yield Path(made)


def as_nobody(work: Callable[[], str]) -> str:
    """``work()``'s answer, run in a forked child that became uid/gid 65534 (root bypasses file modes)."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover (the child)
        os.close(read)
        try:
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            answer = work()
        except BaseException as exc:
            answer = f"child failed: {exc!r}"
        os.write(write, answer.encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    with os.fdopen(read) as answer:
        return answer.read()


@pytest.mark.parametrize(("suffix", "name"), [("-wal", "write-ahead log"), ("-shm", "shared-memory index")])
def test_a_side_file_sqlite_cannot_use_is_named_as_such_not_taken_for_a_full_disk(
    reachable: Path, suffix: str, name: str
) -> None:
    theirs = directory(reachable, "nobody", 0o700, NOBODY, NOBODY)
    state = theirs / "s.sqlite"

    def work() -> str:
        Checkpoint(state).close()
        side = Path(f"{state}{suffix}")
        side.write_bytes(b"")
        side.chmod(0o200)  # theirs and private, but SQLite cannot read it
        try:
            Checkpoint(state).close()
        except Exception as exc:  # the CLI's one line and exit code
            return json.dumps({"code": getattr(exc, "exit_code", None), "message": str(exc)})
        return json.dumps({"code": 0})

    answer = json.loads(as_nobody(work))
    assert answer["code"] == 2, answer
    assert answer["message"].startswith(f"{state}{suffix}: SQLite's {name} of {state} is mode 0200"), answer
    assert "free space" not in answer["message"]
    assert stat.S_IMODE(os.stat(f"{state}{suffix}").st_mode) == 0o200  # not "fixed" behind the operator's back
