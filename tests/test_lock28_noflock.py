"""drivestage's state folder on a file system without file locks: an NFS home whose server
runs no lock daemon (``flock`` fails with ENOLCK), Lustre mounted without ``flock`` (ENOSYS),
some FUSE and SMB mounts (EOPNOTSUPP). The folder can be written; it cannot be locked.

Every push failed with "point DRIVESTAGE_STATE_DIR at a folder you can write" (lock28):
misleading, and nothing the user could do about it said. The push locks only serialise
processes of this machine, so they are kept in a local folder instead (the user's runtime
folder, else /dev/shm or the temporary folder, one per state folder), said once.

Modelled with a ``bindfs`` mount (its own device: bindfs itself passes flock through, as the
kernel emulates it for FUSE) on which ``fcntl.flock`` fails with the file system's error:
failure injected on that device only, never success.
"""
from __future__ import annotations

import errno
import fcntl
import logging
import os
import shutil
import subprocess

import pytest
from click.testing import CliRunner

from drivestage import lockdir
from drivestage.cli import cli
from drivestage.locks import tree_lock

from test_push27_nested import _folders, _live_in, _two_at_once
from test_push_safety import _md5, _no_duplicates, _run_tree

ERRORS = {"nfs-without-lockd": errno.ENOLCK, "lustre-noflock": errno.ENOSYS,
          "fuse": errno.EOPNOTSUPP}


@pytest.fixture
def mount(tmp_path):
    """A folder on a FUSE mount of its own (its own st_dev)."""
    if shutil.which("bindfs") is None or os.geteuid() != 0:
        pytest.skip("needs bindfs and root (.ci/run installs bindfs)")
    src, mnt = tmp_path / "nfs-src", tmp_path / "nfs"
    src.mkdir()
    mnt.mkdir()
    made = subprocess.run(["bindfs", str(src), str(mnt)], capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"bindfs cannot mount here: {made.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


def _no_flock_on(monkeypatch, folder, code: int) -> None:
    """``flock`` on a file of ``folder``'s device fails with ``code``, as that file system's
    does; every other file locks as before."""
    dev, real = os.stat(folder).st_dev, fcntl.flock

    def flock(fd, op):  # noqa: ANN001 - fcntl's own signature
        if os.fstat(fd if isinstance(fd, int) else fd.fileno()).st_dev == dev:
            raise OSError(code, os.strerror(code))
        return real(fd, op)

    monkeypatch.setattr(fcntl, "flock", flock)


@pytest.fixture
def runtime(tmp_path, monkeypatch):
    """The user's runtime folder ($XDG_RUNTIME_DIR), where the locks go instead."""
    run = tmp_path / "run"
    run.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(run))
    return run


@pytest.mark.parametrize("code", ERRORS.values(), ids=ERRORS.keys())
def test_a_push_with_its_state_folder_there_works_and_says_where_its_locks_are(
        mount, runtime, emulator, drive_env, local_state, monkeypatch, code):
    state = mount / "state"
    monkeypatch.setenv("DRIVESTAGE_STATE_DIR", str(state))
    _no_flock_on(monkeypatch, mount, code)
    # What this process chose for each state folder path, forgotten: pytest may give this
    # test the path an earlier one had (its folder removed), and the choice is said once.
    monkeypatch.setattr(lockdir, "_CHOSEN", {})
    files = _run_tree(local_state / "runs")
    emulator.add_folder("runs")
    said = []
    for _ in range(2):   # said once a process
        result = CliRunner().invoke(cli, ["push", str(local_state / "runs"), "drive:runs"])
        assert result.exit_code == 0, result.output
        said += [line for line in result.output.splitlines() if "without file locks" in line]
    assert _no_duplicates(emulator) == {}
    assert {k: _md5(v) for k, v in files.items() if "/" not in k} == _live_in(
        emulator, emulator.find("runs")["id"])
    held = sorted(p.name for p in runtime.joinpath("drivestage").iterdir())
    assert len(held) == 1 and held[0].startswith("locks-")
    assert len(said) == 1   # (as the CLI's log handler shows it)
    assert said[0].endswith(f"drivestage's state folder {state} is on a file system without file "
                    f"locks (fuse at {mount}: {os.strerror(code)}); its locks are kept in "
                    f"{runtime / 'drivestage' / held[0]} instead, which serialises pushes of "
                    "this machine only")


def test_two_nested_pushes_with_the_state_folder_there_still_wait_for_each_other(
        mount, runtime, emulator, local_state, monkeypatch):
    monkeypatch.setenv("DRIVESTAGE_STATE_DIR", str(mount / "state"))
    _no_flock_on(monkeypatch, mount, errno.ENOLCK)
    exp1 = _folders(emulator)
    runs = local_state / "runs"
    files = _run_tree(runs / "exp1")
    said = _two_at_once(emulator, monkeypatch, (str(runs), "drive:runs"),
                        (str(runs / "exp1"), "drive:runs/exp1"))
    assert _no_duplicates(emulator) == {}
    assert _live_in(emulator, exp1) == {k: _md5(v) for k, v in files.items() if "/" not in k}
    assert len(said) == 1 and "waiting for it" in said[0]


def test_without_any_local_folder_to_lock_in_the_push_says_what_is_wrong(
        mount, tmp_path, monkeypatch):
    """The state folder cannot be locked and neither can the folders tried instead (here all
    on the same file system): one line naming the file system and what to do."""
    state = mount / "state"
    monkeypatch.setenv("DRIVESTAGE_STATE_DIR", str(state))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(mount / "run"))
    monkeypatch.setenv("TMPDIR", str(mount / "tmp"))
    monkeypatch.setattr("drivestage.lockdir.SHM", str(mount / "shm"))
    for name in ("run", "tmp", "shm"):
        (mount / name).mkdir(mode=0o700)
    _no_flock_on(monkeypatch, mount, errno.ENOLCK)
    with pytest.raises(Exception) as caught:
        with tree_lock([("dir|/x", "/x")]):
            pass
    assert str(caught.value) == (
        f"cannot lock /x for this push: drivestage's state folder {state} is on a file "
        f"system without file locks (fuse at {mount}: {os.strerror(errno.ENOLCK)}), and so "
        f"is every local folder tried instead ({mount / 'run'}, {mount / 'shm'}, "
        f"{mount / 'tmp'}); point DRIVESTAGE_STATE_DIR at a folder on a local disk (e.g. "
        "/tmp/drivestage-state)")
    assert type(caught.value).__name__ == "LocalFileError"
