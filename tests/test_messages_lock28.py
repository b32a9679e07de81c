"""The messages of lock28: a state folder on a file system without file locks (said once,
or an error where no local folder can lock either), and who holds a lock a push waits for."""
from __future__ import annotations

import errno

import pytest
from click.testing import CliRunner

from _messages import renders, shown
from drivestage.cli import cli
from test_lock28_noflock import _no_flock_on, mount, runtime  # noqa: F401 - fixtures
from test_push_safety import _run_tree

KEPT = "is on a file system without file locks (…); its locks are kept in … instead"
NONE = ("cannot lock … for this push: drivestage's state folder … is on a file system without "
        "file locks (…), and so is every local folder tried instead (…); point "
        "DRIVESTAGE_STATE_DIR at a folder on a local disk")


@renders(KEPT)
def test_a_push_says_once_where_its_locks_are_kept(mount, runtime, emulator, drive_env,  # noqa: F811
                                                   local_state, monkeypatch):
    monkeypatch.setenv("DRIVESTAGE_STATE_DIR", str(mount / "state"))
    _no_flock_on(monkeypatch, mount, errno.ENOLCK)
    _run_tree(local_state / "runs")
    result = CliRunner().invoke(cli, ["push", str(local_state / "runs"), "drive:runs"])
    assert result.exit_code == 0, result.output
    said = [line for line in result.output.splitlines() if "without file locks" in line]
    assert len(said) == 1
    shown(KEPT, said[0])


@renders(NONE)
def test_a_push_with_no_folder_to_lock_in_says_what_to_do(mount, emulator, drive_env,  # noqa: F811
                                                          local_state, monkeypatch):
    monkeypatch.setenv("DRIVESTAGE_STATE_DIR", str(mount / "state"))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(mount / "run"))
    monkeypatch.setenv("TMPDIR", str(mount / "tmp"))
    monkeypatch.setattr("drivestage.lockdir.SHM", str(mount / "shm"))
    _no_flock_on(monkeypatch, mount, errno.ENOSYS)
    _run_tree(local_state / "runs")
    result = CliRunner().invoke(cli, ["push", str(local_state / "runs"), "drive:runs"])
    assert result.exit_code == 1, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(lines) == 1, result.output
    shown(NONE, lines[0])
    assert emulator.find("runs") is None or not [
        f for f in emulator.files() if not f["mimeType"].endswith(".folder")]


if __name__ == "__main__":  # pragma: no cover
    pytest.main([__file__])
