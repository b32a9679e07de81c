"""pushremount49: a folder push could not read is remembered across processes.

A FUSE mount in SRC whose program ended reads ENOTCONN; unmounted, it reads as the empty folder
it was mounted on. pushread48 and attackr248 kept its copies on Drive within one process; a
new process (a cron push, a restarted mirror, the trainer after a restart) took the empty
folder as emptied and ``--delete`` trashed everything Drive held under it. The folders push
could not read are now written to ``unread.json`` in the state folder as the walk finds them,
before push sends a request; a push of any process that reads one of them as holding nothing
keeps it (one line, exit 1), until it holds something, is gone, or ``push --emptied PATH``
says it was emptied on purpose. The memory attacked: a push killed after its walk, two
processes writing it at once, a damaged or another version's file, one that cannot be
written (push works, saying so)."""
from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys

import pytest

from _cli import child_env, run
from _drivemount import FullDriveMount, _mounted
from _messages import error_line
from test_pushread48_unread import live

ON_DRIVE = {"mnt/m.txt": b"mounted, old", "mnt/n.txt": b"n"}
KEPT = {"a.txt": b"a", **ON_DRIVE}


@pytest.fixture
def mounted(tmp_path, emulator):
    """SRC (tmp_path/src: ``a.txt`` and a FUSE mount at ``mnt``), and Drive's runs/x holding
    the mount's files as an earlier push sent them."""
    for mount in _mounted(tmp_path / "src" / "mnt", writable=True):
        (tmp_path / "src" / "a.txt").write_bytes(b"a")
        for rel, data in ON_DRIVE.items():
            emulator.add_file(f"runs/x/{rel}", data)
        yield mount


@pytest.fixture(autouse=True)
def _memory_of_this_process_none(monkeypatch):
    """Each test starts as a new process: none of unread_memory's in-process fallback, nor
    unread's lines said (a process says a line once while it lasts)."""
    from drivestage import unread, unread_guard, unread_memory

    monkeypatch.setattr(unread_memory, "_here", {})
    monkeypatch.setattr(unread_guard, "_warned", set())
    monkeypatch.setattr(unread, "_SAID", {})


def _memory(tmp_path) -> dict:
    return json.loads((tmp_path / "state" / "unread.json").read_text())["folders"]


def _errnos(tmp_path) -> dict:
    """path -> errno of this machine's records (attackint49: records are by machine)."""
    import socket
    return {path: rec[socket.gethostname()]["errno"] for path, rec in _memory(tmp_path).items()}


def _push(tmp_path, *more: str) -> tuple[int, str, str]:
    return run("push", str(tmp_path / "src"), "drive:runs/x", "--delete", *more)


def _again_line(tmp_path) -> str:
    mnt = tmp_path / "src" / "mnt"
    return (f"ERROR drivestage.upload_tree: {mnt} reads as an empty folder where the last push could not read it "
            "(Transport endpoint is not connected): a mount point not mounted again? Not sent, "
            "and nothing at drive:runs/x/mnt or under it on Drive is removed this time; mount "
            f"it again, then push again; if it was emptied on purpose, push once with "
            f"--emptied {mnt}")


def _said(err: str, tmp_path) -> list[str]:
    return [line for line in err.splitlines() if str(tmp_path / "src" / "mnt") in line
            and line.startswith("ERROR")]


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_a_push_killed_after_its_walk_is_remembered_by_the_next_process(
        emulator, drive_env, local_state, tmp_path, mounted: FullDriveMount):
    """A cron push over the stopped mount, killed (SIGKILL) at its first request to Drive:
    the next push, after the mount was undone, keeps the mount's copies (before: the memory
    was the process's, and was written after DEST was found on Drive, if at all)."""
    mounted.disconnect()
    emulator.faults.latency(60, "GET", times=1)   # (its first request: after the walk)
    child = subprocess.Popen([sys.executable, "-m", "drivestage", "push",
                              str(tmp_path / "src"), "drive:runs/x", "--delete"],
                             env=child_env(emulator), stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE)
    try:
        came, _ = emulator.faults.wait_latencies(lambda n: n >= 1, timeout=30)
        assert came, child.stderr.read().decode() if child.poll() is not None else "no request"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(30)
        emulator.faults.hurry()
    assert _errnos(tmp_path) == {str(tmp_path / "src" / "mnt"): errno.ENOTCONN}
    mounted.stop()   # unmounted: the empty folder it was made on
    code, _out, err = _push(tmp_path)
    assert code == 1, err
    assert _said(err, tmp_path) == [_again_line(tmp_path)]
    assert error_line(err).startswith("Error: 1 path of SRC could not be read")
    assert live(emulator) == KEPT


@pytest.mark.timeout(60)
def test_emptied_names_the_folder_emptied_on_purpose_and_something_in_it_forgets_it(
        emulator, drive_env, local_state, tmp_path, mounted: FullDriveMount):
    """The only ways past the memory are ones an unmounted mount point cannot give: the
    user's ``--emptied PATH`` (then --delete takes its copies, once), or the folder holding
    something (read: it is no empty mount point)."""
    mounted.disconnect()
    assert _push(tmp_path)[0] == 1
    mounted.stop()
    for _ in range(2):   # (as often as it is pushed: kept)
        code, _out, err = _push(tmp_path)
        assert code == 1 and live(emulator) == KEPT, err
    code, _out, err = _push(tmp_path, "--emptied", str(tmp_path / "src" / "mnt"))
    assert code == 0, err
    assert live(emulator) == {"a.txt": b"a"}
    assert _memory(tmp_path) == {}
    # Remembered again without the mount it was on (a record of an earlier build, or no
    # mount table), then something written into the folder: pushed, and --delete acts on
    # what is not there (with the mount noted and not mounted: kept, test_messages_mount50).
    emulator.add_file("runs/x/mnt/n.txt", b"n")
    from drivestage import unread_memory
    unread_memory._change((), {str(tmp_path / "src" / "mnt"): errno.ENOTCONN})
    code, _out, err = _push(tmp_path)
    assert code == 1 and live(emulator) == {"a.txt": b"a", "mnt/n.txt": b"n"}, err
    (tmp_path / "src" / "mnt" / "new.txt").write_bytes(b"new")
    code, _out, err = _push(tmp_path)
    assert code == 0, err
    assert live(emulator) == {"a.txt": b"a", "mnt/new.txt": b"new"}
    assert _memory(tmp_path) == {}


def test_emptied_outside_src_is_a_usage_error(emulator, drive_env, local_state, tmp_path):
    (tmp_path / "src").mkdir()
    code, _out, err = _push(tmp_path, "--emptied", str(tmp_path / "other"))
    assert code == 2
    assert error_line(err) == (f"Error: --emptied {tmp_path}/other is not SRC {tmp_path}/src "
                               "or a folder in it; name the folder of SRC that was emptied on "
                               "purpose")


@pytest.mark.parametrize("content", [b"{not json", json.dumps(
    {"version": 0, "unread": ["mnt"]}).encode()], ids=["damaged", "older"])
@pytest.mark.timeout(60)
def test_a_damaged_or_other_version_memory_is_said_and_written_anew(
        emulator, drive_env, local_state, tmp_path, mounted: FullDriveMount, content):
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "unread.json").write_bytes(content)
    mounted.disconnect()
    code, _out, err = _push(tmp_path)
    assert code == 1, err
    warned = [line for line in err.splitlines() if "unread.json" in line]
    assert len(warned) == 1 and warned[0].startswith(
        f"WARNING drivestage.upload_tree: ignoring {tmp_path}/state/unread.json ("), err
    assert warned[0].endswith("): a folder an earlier push could not read is not known to "
                              "this one; it is written anew"), err
    assert list(_memory(tmp_path)) == [str(tmp_path / "src" / "mnt")]   # (written anew)
    mounted.stop()
    code, _out, err = _push(tmp_path)
    assert code == 1 and live(emulator) == KEPT, err
    assert _said(err, tmp_path) == [_again_line(tmp_path)]


@pytest.mark.timeout(60)
def test_a_memory_that_cannot_be_written_is_said_and_held_by_the_process(
        emulator, drive_env, local_state, tmp_path, mounted: FullDriveMount):
    """``unread.json`` cannot be replaced (a folder has its name, as a full or read-only
    disk refuses it): the push works and says the next process will not know; this process
    still keeps the unmounted mount point."""
    (tmp_path / "state" / "unread.json").mkdir(parents=True)
    mounted.disconnect()
    code, _out, err = _push(tmp_path)
    assert code == 1, err
    warned = [line for line in err.splitlines() if line.startswith("WARNING drivestage.state: cannot write")]
    assert len(warned) == 1 and warned[0].endswith(
        ": a folder push could not read is not known to the next process (an empty mount "
        "point there would be taken for a folder emptied): free the disk, or point "
        "DRIVESTAGE_STATE_DIR at a folder you can write"), err
    assert live(emulator) == KEPT
    mounted.stop()
    code, _out, err = _push(tmp_path)
    assert code == 1 and live(emulator) == KEPT, err
    assert _said(err, tmp_path) == [_again_line(tmp_path)]


_WRITER = """
import sys
from drivestage import unread_memory
for i in range(int(sys.argv[2])):
    unread_memory._change((), {f"{sys.argv[1]}/{i}": 5})
"""


@pytest.mark.slow
def test_two_processes_writing_the_memory_at_once_keep_each_others(tmp_path, local_state):
    """Two pushes at once (of two SRCs; two into one DEST wait for each other's place lock)
    each add what they could not read: neither write loses the other's."""
    env = dict(os.environ, DRIVESTAGE_STATE_DIR=str(tmp_path / "state"))
    children = [subprocess.Popen([sys.executable, "-c", _WRITER, f"/{who}", "40"], env=env)
                for who in ("a", "b")]
    assert [c.wait(60) for c in children] == [0, 0]
    assert set(_memory(tmp_path)) == {f"/{who}/{i}" for who in "ab" for i in range(40)}
