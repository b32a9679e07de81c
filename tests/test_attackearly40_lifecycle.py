"""The lifecycle of a big zip's extraction workers started before its member list is read
(overlap40), attacked: every way a ``pull --extract`` ends between their start and their
first batch - a member list refused, a zip not followed, a download that fails, a worker
killed, a Ctrl-C at each call - leaves no worker process, no temporary folder in DEST and
nothing under a final name, says one line with the README's exit code, and a rerun
succeeds."""
from __future__ import annotations

import os
import re
import signal
import struct
import subprocess
import sys
import threading

import pytest

import drivestage
from drivestage.extract import overlapped, tempdir, workers
from drivestage.stage import pull

from _archives import a_fixed_zip, a_zip, tree
from _cli import child_env, run
from _sweep import ALL, every
from test_extract_workers import worker_pids
from test_interrupt_commands import _interrupted_then_rerun


#: The size from which a zip's members are written by worker processes, as drivestage has it.
_USUAL_WORTH = workers._WORTH


@pytest.fixture(autouse=True)
def _big(fast_retries, monkeypatch):
    """Every zip is big here (its workers start before its member list is read)."""
    monkeypatch.setattr(workers, "_WORTH", 1)


def _left(dest) -> list[str]:
    """What an extraction into ``dest`` left of its own: temporary folders."""
    return sorted(p.name for p in dest.rglob(".drivestage-*")
                  if p.name.startswith((tempdir.TEMP_PREFIX, tempdir.OLD_PREFIX)))


def _members(n: int = 60) -> dict[str, bytes]:
    return {f"ds/f{i:03d}.bin": os.urandom(3000 + i) for i in range(n)}


def _lying(blob: bytes) -> bytes:
    """``blob`` (a zip) whose central directory says its first member is 1 GiB long."""
    at = blob.rindex(b"PK\x05\x06")
    start = struct.unpack_from("<I", blob, at + 16)[0]
    out = bytearray(blob)
    struct.pack_into("<I", out, start + 20, 1 << 30)   # compressed size
    struct.pack_into("<I", out, start + 24, 1 << 30)   # uncompressed size
    return bytes(out)


@pytest.mark.parametrize("kind", ["dotdot", "link", "lying"])
def test_a_hostile_zip_ends_the_early_workers_and_says_one_line(emulator, drive_env,
                                                               tmp_path, kind, monkeypatch):
    seen: list[int] = []
    real = overlapped.zip_directory

    def zip_directory(path, fd, **kw):  # the workers alive as the list is read
        seen.append(len(worker_pids(os.getpid())))
        return real(path, fd, **kw)

    monkeypatch.setattr(overlapped, "zip_directory", zip_directory)
    members = _members(20)
    blob = {"dotdot": lambda: a_zip({**members, "../evil.txt": b"x"}),
            "link": lambda: a_fixed_zip(members, links={"ds/out": "../../etc/passwd"}),
            "lying": lambda: _lying(a_zip(members))}[kind]()
    emulator.add_file("d/h.zip", blob)
    dest = tmp_path / "data"
    code, out, err = run("pull", "drive:d/h.zip", str(dest), "-x", "-q")
    assert code == 1, err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), err
    assert seen == [2]   # started before the list was read
    assert worker_pids(os.getpid()) == []
    assert _left(dest) == []
    assert tree(dest) == {"h.zip": blob}   # staged and verified; no member under its name
    # The same pull again: the same one line, nothing more left.
    assert run("pull", "drive:d/h.zip", str(dest), "-x", "-q")[:2] == (1, out)
    assert worker_pids(os.getpid()) == [] and _left(dest) == []


def test_a_download_that_fails_for_good_ends_the_early_workers_then_a_rerun(
        emulator, drive_env, tmp_path, monkeypatch):
    members = {f"ds/f{i:03d}.bin": os.urandom(20_000) for i in range(100)}
    blob = a_zip(members)
    emulator.add_file("d/set.zip", blob)
    emulator.faults.throttle(8 << 20)   # the 2 MB still coming as the member list is read
    real = overlapped.zip_directory

    def zip_directory(path, fd, **kw):  # the workers run: from now on Drive answers 500 only
        emulator.faults.inject("GET", status=500, times=None)
        return real(path, fd, **kw)

    monkeypatch.setattr(overlapped, "zip_directory", zip_directory)
    dest = tmp_path / "data"
    code, out, err = run("pull", "drive:d/set.zip", str(dest), "-x", "-q",
                         "--chunk-size", "64KiB")   # a request per 64 KiB: they all fail
    assert code == 1, err
    said = [ln for ln in err.splitlines() if not ln.startswith("WARNING ")]
    assert len(said) == 1 and re.fullmatch(
        r"Error: download drive:d/set\.zip bytes \d+-\d+: still failing after 8 attempts "
        r"\(500 backendError: Backend Error\); try again later", said[0]), err
    assert worker_pids(os.getpid()) == []
    assert _left(dest) == []
    # The partial is kept for the rerun to resume; nothing under a final name.
    assert [n for n in tree(dest) if not n.startswith(".")] == []
    emulator.faults.clear()
    emulator.faults.throttle(None)
    monkeypatch.setattr(overlapped, "zip_directory", real)
    code, out, err = run("pull", "drive:d/set.zip", str(dest), "-x", "-q")
    assert code == 0, err
    assert tree(dest) == {"set.zip": blob, **members}
    assert worker_pids(os.getpid()) == [] and _left(dest) == []


def test_an_md5_mismatch_ends_the_early_workers_then_a_rerun(emulator, drive_env, tmp_path):
    members = _members(200)
    blob = a_zip(members)
    fid = emulator.add_file("d/set.zip", blob)
    emulator.faults.corrupt(fid)   # every answer has a byte flipped
    dest = tmp_path / "data"
    code, out, err = run("pull", "drive:d/set.zip", str(dest), "-x", "-q")
    assert code == 1, err
    lines = err.splitlines()
    assert len(lines) == 2 and "starting again from zero" in lines[0], err
    assert lines[1].startswith("Error: drive:d/set.zip: the downloaded bytes do not match "
                               "Drive (expected "), err
    assert lines[1].endswith("), twice. Deleted the download for safety. The file may be "
                             "changing on Drive, or something between here and Drive "
                             "alters data."), err
    assert worker_pids(os.getpid()) == []
    assert _left(dest) == []
    assert [n for n in tree(dest) if not n.startswith(".drivestage")] == []
    emulator.faults.clear()
    code, out, err = run("pull", "drive:d/set.zip", str(dest), "-x", "-q")
    assert code == 0, err
    assert tree(dest) == {"set.zip": blob, **members}
    assert worker_pids(os.getpid()) == [] and _left(dest) == []


def test_a_worker_killed_before_its_first_batch(emulator, drive_env, tmp_path, monkeypatch):
    members = _members(200)
    blob = a_zip(members)
    emulator.add_file("d/set.zip", blob)
    killed = []
    real = overlapped.zip_directory

    def zip_directory(path, fd, **kw):  # the workers run; one is killed before the list is read
        pids = worker_pids(os.getpid())
        os.kill(pids[0], signal.SIGKILL)
        killed.append(pids[0])
        return real(path, fd, **kw)

    monkeypatch.setattr(overlapped, "zip_directory", zip_directory)
    dest = tmp_path / "data"
    code, out, err = run("pull", "drive:d/set.zip", str(dest), "-x", "-q")
    assert code == 0, err
    assert len(killed) == 1
    assert tree(dest) == {"set.zip": blob, **members}
    assert worker_pids(os.getpid()) == []
    assert _left(dest) == []


@pytest.mark.parametrize("module,stride,last", [
    ("extract/overlapped.py", 3, 400), ("extract/job.py", 5, 400), ("unpack.py", 1, 400),
    ("checksums.py", 1, 400),
    # Every call as the two workers start (12 calls; DRIVESTAGE_TEST_SWEEP=all: every one).
    ("extract/workers.py", 1, 13)])
def test_a_ctrl_c_at_each_call_into_the_early_start_then_a_rerun(emulator, drive_env,
                                                                 tmp_path, module, stride,
                                                                 last):
    """A Ctrl-C at each call into the modules that start the workers early, in a process
    that lives on (a notebook): no worker left, no temporary folder, the rerun stages the
    archive and its members. Every call into workers.py: a Ctrl-C as a worker's Popen
    returned (SIGINT, blocked in that thread meanwhile, raised as it is let through) left
    that worker running, nobody's."""
    members = _members(4)
    blob = a_zip(members)
    emulator.add_file("d/set.zip", blob)
    store = drivestage.connect()
    root = os.path.join(os.path.dirname(drivestage.__file__), module)
    before = set(threading.enumerate())
    landed = 0
    early = workers._WORTH   # (1: _big's)
    pulls = [0]

    def pull_into(dest) -> None:
        # The interrupted pull starts its workers early; its rerun extracts the small zip in
        # this process, as a zip this size is (what the rerun is for: it finds what the
        # Ctrl-C left and stages the archive; two fresh worker interpreters more per point,
        # a third of the sweep's time, tested nothing the interrupted pull had not).
        pulls[0] += 1
        workers._WORTH = early if pulls[0] % 2 else _USUAL_WORTH
        pull("drive:d/set.zip", str(dest), extract=True, quiet=True, store=store)

    for k in range(1, last if not ALL else 400, every(stride)):
        dest = tmp_path / f"d{k}"
        pulls[0] = 0
        where = _interrupted_then_rerun(k, root, before, lambda: pull_into(dest))
        if where is None:
            break
        landed += 1
        assert worker_pids(os.getpid()) == [], f"after {where}"
        assert tree(dest) == {"set.zip": blob, **members}, f"after {where}"
        assert _left(dest) == [], f"after {where}"
    assert landed >= 2


#: A pull -x in a child process whose big zip's workers start, then the member list's read
#: waits (it writes a byte to fd argv[1] and reads one from fd argv[2]) for the test's signal.
_CHILD = """
import os, sys
from drivestage.extract import overlapped, workers
workers._WORTH = 1
real = overlapped.zip_directory
said, held = int(sys.argv[1]), int(sys.argv[2])
def zip_directory(path, fd, **kw):
    os.write(said, b"w")
    os.read(held, 1)
    return real(path, fd, **kw)
overlapped.zip_directory = zip_directory
from drivestage.cli import main
sys.argv[:] = ["drivestage"] + sys.argv[3:]
main()
"""


@pytest.mark.parametrize("sig,code,line", [(signal.SIGINT, 130, "Interrupted."),
                                           (signal.SIGTERM, 143, "Interrupted by SIGTERM."),
                                           (signal.SIGHUP, 129, "Interrupted by SIGHUP.")])
def test_a_signal_while_the_early_workers_wait_for_the_member_list(emulator, drive_env,
                                                                  tmp_path, sig, code, line):
    """SIGINT (Ctrl-C), SIGTERM or SIGHUP: its exit code and line, the workers and the
    temporary folder gone. (SIGTERM and SIGHUP ended the process at once, its temporary
    folder left for the rerun to remove: leftovers41.)"""
    members = _members(60)
    blob = a_zip(members)
    emulator.add_file("d/set.zip", blob)
    dest = tmp_path / "data"
    ready_r, ready_w = os.pipe()
    hold_r, hold_w = os.pipe()
    # (this very drivestage: the editable install's is another checkout's)
    env = dict(child_env(emulator),
               PYTHONPATH=os.path.dirname(os.path.dirname(drivestage.__file__)))
    proc = subprocess.Popen([sys.executable, "-c", _CHILD, str(ready_w), str(hold_r), "pull",
                             "drive:d/set.zip", str(dest), "-x", "-q"], env=env,
                            pass_fds=(ready_w, hold_r), stderr=subprocess.PIPE)
    os.close(ready_w)
    os.close(hold_r)
    try:
        if os.read(ready_r, 1) != b"w":
            raise AssertionError(proc.communicate(timeout=30), proc.returncode)
        assert len(worker_pids(proc.pid)) == 2   # started before the list is read
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=30)
    finally:
        os.close(ready_r)
        os.close(hold_w)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == code, err
    assert err.decode().splitlines()[-1] == line, err
    assert worker_pids(proc.pid) == []
    assert _left(dest) == []
    assert [n for n in tree(dest) if not n.startswith(".")] == []
    rc, out, err2 = run("pull", "drive:d/set.zip", str(dest), "-x", "-q")
    assert rc == 0, err2
    assert tree(dest) == {"set.zip": blob, **members}
    assert worker_pids(os.getpid()) == [] and _left(dest) == []
