"""Attacks on the extraction that follows a download (issue 15), second round: archives of
the shapes users really have, kills and concurrent pulls at real moments. Each test states
what a user relies on: the members are written while the archive downloads, DEST ends
exactly as the usual extraction of the verified archive leaves it, and nothing of a killed
or concurrent run stays behind."""
from __future__ import annotations

import os
import subprocess
import sys
import time
import zipfile

import pytest

import drivestage
from drivestage.unpack import Unpacking

from _archives import a_zip, tree
from _cli import run
from _forkcli import Child, cli_server
from _signal_env import _cli_server, _fast  # noqa: F401  (autouse fixtures)


def _zip64_end_records(members: dict[str, bytes], monkeypatch) -> bytes:
    """A zip ending as one of more than 65,535 members does (``zip`` and Python both write
    it so): zip64 end records before the end record, which still holds the directory's true
    size and offset. Built with Python's own writer, told that the limit is one member."""
    with monkeypatch.context() as m:
        m.setattr(zipfile, "ZIP_FILECOUNT_LIMIT", 1)
        blob = a_zip(members, zipfile.ZIP_DEFLATED)
    assert b"PK\x06\x06" in blob[-120:] and b"PK\x06\x07" in blob[-50:]
    return blob


def test_a_zip_with_zip64_end_records_is_extracted_while_it_downloads(emulator, drive_env,
                                                                      tmp_path, monkeypatch):
    """VOC07+12 zips hold more than 65,535 members, so their end is zip64's: the central
    directory is still found, fetched first and followed (before the fix, its start was read
    76 bytes too late, the directory did not parse and nothing overlapped the download),
    and DEST ends with exactly the members."""
    members = {f"VOCdevkit/a/{i:05d}.xml": os.urandom(800) for i in range(1500)}
    blob = _zip64_end_records(members, monkeypatch)
    emulator.add_file("d/voc.zip", blob)
    store = drivestage.connect()
    entry = store.resolve("d/voc.zip")
    dest = tmp_path / "data"
    dest.mkdir()
    target = str(dest / "voc.zip")
    unpacking = Unpacking(store, entry, target, str(dest), extract=True, jobs=None,
                          chunk_size=None, progress=None, describe="drive:d/voc.zip",
                          reserve=0, lock_dir=None)
    try:
        assert unpacking.follower is not None, "the zip is not extracted while it downloads"
        unpacking.download()
        result = unpacking.extract(target)
    finally:
        unpacking.close()
    assert sorted(result.paths) == sorted(members)
    assert tree(dest) == {"voc.zip": blob, **members}


# ------------------------------------------------------------------ temporary folders

def _env(emulator) -> dict:
    return dict(os.environ, DRIVESTAGE_API_ROOT=emulator.url, DRIVESTAGE_TOKEN="test-token",
                DRIVESTAGE_RETRY_BASE="0.001", DRIVESTAGE_RETRY_JITTER="0")


def _pull_child(emulator, name: str, dest, *args: str) -> Child:
    return cli_server().popen(["pull", f"drive:d/{name}", str(dest), "-x", "-q", *args],
                              env=_env(emulator), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE)


def _temps_with_members(dest, n: int = 2) -> list:
    return [p for p in dest.glob(".drivestage-extract-*") if len(list(p.glob("ds/*"))) >= n]


def test_a_killed_pulls_folder_goes_even_when_its_pid_is_alive_again(emulator, drive_env,
                                                                      tmp_path):
    """A spot VM is preempted while a pull writes members early; after the restart, the pull
    started by the same boot script gets the same process id (or another program has it).
    The killed pull's temporary folder - a copy of the members so far, up to the dataset's
    size - still goes with the rerun: before the fix, a live process of that id kept it
    there for good."""
    from _kill import sigkill_when

    members = {f"ds/p{i}.bin": os.urandom(128 << 10) for i in range(12)}
    blob = a_zip(members)
    emulator.add_file("d/set.zip", blob)
    dest = tmp_path / "data"
    emulator.faults.throttle(per_connection=1 << 20)
    proc = _pull_child(emulator, "set.zip", dest)
    sigkill_when(proc, lambda: bool(_temps_with_members(dest)),
                 "no member was written while the archive downloaded")
    emulator.faults.throttle(None)
    (left,) = dest.glob(".drivestage-extract-*")
    pid = left.name.split("-")[-2]
    assert pid == str(proc.pid)
    reused = left.with_name(left.name.replace(f"-{pid}-", f"-{os.getpid()}-"))
    left.rename(reused)  # the id the killed pull had is this (live) process's now
    code, out, err = run("pull", "drive:d/set.zip", str(dest), "-x", "-q")
    assert code == 0, err
    assert tree(dest) == {"set.zip": blob, **members}
    assert sorted(p for p in os.listdir(dest) if p.startswith(".")) == [".drivestage"]


def _unshare_works() -> bool:
    import shutil

    if shutil.which("unshare") is None:
        return False
    return subprocess.run(["unshare", "-Urpf", "true"], capture_output=True).returncode == 0


@pytest.mark.skipif(not _unshare_works(), reason="needs unprivileged pid namespaces")
def _wait_stopped(pid: int) -> None:
    """Until every thread of ``pid`` is stopped (SIGSTOP is delivered to each one as it
    next runs: one may still be inside a system call when kill() returns)."""
    deadline = time.monotonic() + 30
    while True:
        states = []
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{tid}/stat") as fh:
                    states.append(fh.read().rsplit(")", 1)[1].split()[0])
            except OSError:
                pass  # a thread that ended meanwhile
        if states and all(s in "Tt" for s in states):
            return
        assert time.monotonic() < deadline, states
        time.sleep(0.01)


def test_a_pull_in_another_container_leaves_a_running_extraction_alone(emulator, drive_env,
                                                                        tmp_path):
    """Two containers share DEST (one node's cache): a pull in the second, whose processes
    cannot see the first's, runs while the first writes members early. It leaves the
    first's temporary folder alone (before the fix it took the folder's process id for a
    dead one and removed the folder the first was writing, or moving into DEST), and both
    archives end in DEST exactly."""
    import signal

    a = {f"ds/p{i}.bin": os.urandom(128 << 10) for i in range(12)}
    b = {"other/b.txt": b"b" * 5000}
    za, zb = a_zip(a), a_zip(b)
    emulator.add_file("d/a.zip", za)
    emulator.add_file("d/b.zip", zb)
    dest = tmp_path / "data"
    emulator.faults.throttle(per_connection=1 << 20)
    first = _pull_child(emulator, "a.zip", dest)
    try:
        deadline = time.monotonic() + 30
        while not _temps_with_members(dest):
            assert first.poll() is None and time.monotonic() < deadline, first.communicate()
            time.sleep(0.01)
        first.send_signal(signal.SIGSTOP)  # it stays mid-download while the other runs
        _wait_stopped(first.pid)  # a member being created as the signal came is done
        (temp,) = dest.glob(".drivestage-extract-*")
        written = sorted(p.name for p in temp.glob("ds/*"))
        other = subprocess.run(["unshare", "-Urpf", sys.executable, "-m", "drivestage",
                                "pull", "drive:d/b.zip", str(dest), "-x", "-q"],
                               env=_env(emulator), capture_output=True, timeout=120)
        assert other.returncode == 0, other.stderr
        assert sorted(p.name for p in temp.glob("ds/*")) == written
        first.send_signal(signal.SIGCONT)
        emulator.faults.throttle(None)
        out, err = first.communicate(timeout=120)
        assert first.returncode == 0, err
    finally:
        if first.poll() is None:
            first.send_signal(signal.SIGCONT)
            first.kill()
            first.communicate()
    assert tree(dest) == {"a.zip": za, "b.zip": zb, **a, **b}
    assert sorted(p for p in os.listdir(dest) if p.startswith(".")) == [".drivestage"]
