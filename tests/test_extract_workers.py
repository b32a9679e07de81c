"""A big zip or plain tar is written by worker processes (issue 15: two threads spent their
time waiting for each other's GIL). The parent decides everything; a worker only copies
what it is sent. These tests hold them to the rules the threads keep: the same files and
records, the same errors, DEST as it was on any failure, no worker outliving its work (or
its parent) by more than a batch, the temporary folder's lock held while one writes."""
from __future__ import annotations

import io
import logging
import os
import signal
import subprocess
import sys
import tarfile
import threading
import time
import zipfile

import pytest

from drivestage.errors import ArchiveError
from drivestage.extract import extract
from drivestage.extract import workers
from drivestage.extract.job import Job
from drivestage.extract.members import list_members
from drivestage.extract.tempdir import OWNER_LOCK, TEMP_PREFIX
from drivestage.extract.copying import Progress

from _archives import tree
from _cli import run

#: Enough members that workers pay (each file counts as 256 KiB of work).
COUNT = 600


def members(seed: int = 0) -> dict[str, bytes]:
    out = {}
    for i in range(COUNT):
        body = os.urandom(64 + (i * 37 + seed) % 3000) if i % 3 else b"<xml>%d</xml>" % i * 40
        out[f"set/{i % 7}/m{i:04d}.{'bin' if i % 3 else 'xml'}"] = body
    return out


def big_zip(data: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for n, (name, body) in enumerate(data.items()):
            info = zipfile.ZipInfo(name, (2023, 5, 6, 7, 8, 10 + n % 40))
            info.compress_type = zipfile.ZIP_DEFLATED if name.endswith(".xml") \
                else zipfile.ZIP_STORED
            zf.writestr(info, body)
    return buf.getvalue()


def big_tar(data: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, body in data.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(body), 1_700_000_000
            tf.addfile(info, io.BytesIO(body))
    return buf.getvalue()


def worker_pids(parent: int) -> list[int]:
    """The extraction workers of process ``parent`` alive now (``ps`` shows their marker)."""
    marker = f"{workers.MARKER}{parent}".encode()
    out = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as fh:
                state, ppid = fh.read().rsplit(")", 1)[1].split()[:2]
            args = _cmdline(pid, again=int(ppid) == parent and state != "Z")
        except OSError:
            continue
        if marker in args and state != "Z":
            out.append(int(pid))
    return out


def _cmdline(pid: str, again: bool) -> list[bytes]:
    """The arguments of process ``pid``; with ``again``, read again while there are none: a
    child in the middle of its exec (a worker whose Popen has just returned: the exec closed
    the pipe Popen waits on before it set up the new arguments) shows none for a moment, and
    the test that counted the workers as the member list was read saw one of two."""
    for _ in range(10_000 if again else 1):
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            args = fh.read()
        if args:
            break
    return args.split(b"\0")


def no_workers_within(parent: int, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while worker_pids(parent):
        assert time.monotonic() < deadline, f"workers of {parent} still run"
        time.sleep(0.01)


@pytest.mark.parametrize("kind", ["zip", "tar"])
def test_workers_write_what_one_thread_writes(tmp_path, caplog, kind):
    data = members()
    archive = tmp_path / f"set.{kind}"
    archive.write_bytes(big_zip(data) if kind == "zip" else big_tar(data))
    with caplog.at_level(logging.DEBUG, logger="drivestage.extract.workers"):
        many = extract(archive, tmp_path / "many", jobs=2)
    assert f"writing {COUNT} members of {archive} in 2 worker processes" in caplog.text
    one = extract(archive, tmp_path / "one", jobs=1)
    assert tree(tmp_path / "many") == tree(tmp_path / "one") == data
    assert [(r.path, r.kind, r.size, r.mtime_ns) for r in many.members] == \
        [(r.path, r.kind, r.size, r.mtime_ns) for r in one.members]
    for r in many.members:  # each record is the file that is there (its inode too)
        st = os.lstat(tmp_path / "many" / r.path)
        assert (st.st_ino, st.st_mtime_ns, st.st_size) == (r.ino, r.mtime_ns, r.size) or \
            r.kind == "dir"
    assert not list((tmp_path / "many").glob(TEMP_PREFIX + "*"))
    assert worker_pids(os.getpid()) == []


def test_a_corrupt_member_fails_as_it_does_in_one_thread(tmp_path):
    data = members()
    blob = bytearray(big_zip(data))
    name = b"set/3/m0500.bin"  # stored: its bytes follow its local header
    at = blob.index(name) + len(name)
    blob[at + 10] ^= 0xFF
    archive = tmp_path / "bad.zip"
    archive.write_bytes(bytes(blob))
    messages = []
    for jobs in (2, 1):
        dest = tmp_path / f"d{jobs}"
        dest.mkdir()
        (dest / "mine.txt").write_bytes(b"kept")
        with pytest.raises(ArchiveError) as got:
            extract(archive, dest, jobs=jobs)
        messages.append(str(got.value))
        assert sorted(os.listdir(dest)) == ["mine.txt"]  # nothing else, no temporary folder
    assert messages[0] == messages[1]
    assert "member 'set/3/m0500.bin'" in messages[0] and "CRC-32" in messages[0]
    assert worker_pids(os.getpid()) == []


def started(tmp_path, data: dict[str, bytes]):
    """A zip of ``data`` and a job checked into ``tmp_path/dest`` (its folders made)."""
    archive = tmp_path / "set.zip"
    archive.write_bytes(big_zip(data))
    job = Job(str(archive), str(tmp_path / "dest"))
    kind, entries = list_members(str(archive))
    files = job.check(entries)
    return archive, job, files


def writing(archive, job, files, **options) -> tuple[threading.Thread, list[BaseException]]:
    """``write_in_processes`` of ``files`` (two workers) in a thread of its own, not started
    yet, and the list its error lands in; the archive's descriptor closes as the thread ends."""
    afd = os.open(archive, os.O_RDONLY)
    errors: list[BaseException] = []

    def run_it() -> None:
        try:
            workers.write_in_processes("zip", afd, os.fstat(afd).st_size, job.root, files, 2,
                                       Progress(None), label=str(archive),
                                       hold_fd=job.owner_fd, **options)
        except BaseException as exc:
            errors.append(exc)
        finally:
            os.close(afd)

    return threading.Thread(target=run_it, daemon=True), errors


def written_through(archive, job, files, tmp_path, script: str) -> None:
    """``write_in_processes`` of ``files`` (two workers) started as the shell ``script``
    (it ends by exec'ing this interpreter), then the job closed."""
    python = tmp_path / "python"
    python.write_text(f"#!/bin/sh\n{script}\n")
    python.chmod(0o755)
    afd = os.open(archive, os.O_RDONLY)
    try:
        workers.write_in_processes("zip", afd, os.fstat(afd).st_size, job.root, files, 2,
                                   Progress(None), label=str(archive), hold_fd=job.owner_fd,
                                   python=str(python))
    finally:
        os.close(afd)
        job.close()


def test_a_worker_holds_the_folder_lock_and_reads_the_archive_by_descriptor(tmp_path):
    """The worker's descriptors, listed by the interpreter it was started as."""
    archive, job, files = started(tmp_path, members())
    seen = tmp_path / "fds"
    written_through(archive, job, files, tmp_path,
                    f"ls -l /proc/$$/fd >> {seen}\nexec {sys.executable} \"$@\"")
    listed = seen.read_text()
    assert listed.count(os.path.join(job.tmp, OWNER_LOCK)) == 2
    assert listed.count(str(archive)) == 2
    assert all(e.written is not None for e in files)


def test_where_no_worker_starts_threads_write_everything(tmp_path):
    data = members()
    archive, job, files = started(tmp_path, data)
    afd = os.open(archive, os.O_RDONLY)
    try:
        workers.write_in_processes("zip", afd, os.fstat(afd).st_size, job.root, files, 2,
                                   Progress(None), label=str(archive), hold_fd=job.owner_fd,
                                   python=str(tmp_path / "no-such-python"))
        result = job.finish()
    finally:
        os.close(afd)
        job.close()
    assert tree(tmp_path / "dest") == data
    assert len(result.members) == len(data)


def held_after_first_batches(archive, job, files):
    """``write_in_processes`` in a thread whose download 'stops' after each worker's first
    batch; returns (thread, release, errors) once both workers are ready, each with its
    second batch held."""
    calls: dict[int, int] = {}
    lock, go_on = threading.Lock(), threading.Event()

    def wait(start: int, end: int) -> None:
        me = threading.get_ident()
        with lock:
            calls[me] = calls.get(me, 0) + 1
            first = calls[me] == 1
        if not first:
            assert go_on.wait(30)

    t, errors = writing(archive, job, files, wait=wait)
    t.start()
    deadline = time.monotonic() + 30
    while sorted(calls.values()) != [2, 2]:
        assert time.monotonic() < deadline and t.is_alive()
        time.sleep(0.01)
    return t, go_on, errors


def test_a_worker_killed_mid_way_fails_the_extraction(tmp_path):
    """The download the workers follow stops after each has its first batch; then one of
    them is killed: the extraction fails with what happened, and no worker is left."""
    archive, job, files = started(tmp_path, members())
    t, go_on, errors = held_after_first_batches(archive, job, files)
    try:
        victim = worker_pids(os.getpid())[0]
        os.kill(victim, signal.SIGKILL)
        go_on.set()
        t.join(30)
    finally:
        go_on.set()
        t.join(30)
        job.close()
    assert len(errors) == 1 and isinstance(errors[0], OSError), errors
    assert f"the extraction worker process {victim} was killed by SIGKILL before its work " \
        "was done; run the command again" in str(errors[0])
    assert worker_pids(os.getpid()) == []
    assert not (tmp_path / "dest" / "set").exists()


_KILLED = """
import os, sys, threading
sys.path.insert(0, sys.argv[2])
from drivestage.extract import workers
from drivestage.extract.job import Job
from drivestage.extract.members import list_members
from drivestage.extract.copying import Progress
archive, dest = sys.argv[1], sys.argv[3]
job = Job(archive, dest)
files = job.check(list_members(archive)[1])
hold = threading.Event()
def wait(start, end):
    if start > 0:
        hold.wait()  # the download never goes on: the test kills this process
afd = os.open(archive, os.O_RDONLY)
workers.write_in_processes("zip", afd, os.fstat(afd).st_size, job.root, files, 2,
                           Progress(None), label=archive, hold_fd=job.owner_fd, wait=wait)
"""


def test_workers_end_with_their_parent_and_the_next_run_cleans_up(tmp_path):
    data = members()
    archive = tmp_path / "set.zip"
    archive.write_bytes(big_zip(data))
    dest = tmp_path / "dest"
    root = os.path.dirname(os.path.dirname(os.path.abspath(workers.__file__)))
    proc = subprocess.Popen([sys.executable, "-c", _KILLED, str(archive),
                             os.path.dirname(root), str(dest)])
    try:
        deadline = time.monotonic() + 30
        while len(worker_pids(proc.pid)) < 2 or not list(dest.glob(TEMP_PREFIX + "*/set/*/*")):
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    no_workers_within(proc.pid)
    [temp] = dest.glob(TEMP_PREFIX + "*")  # left by the killed run
    result = extract(archive, dest, jobs=2)
    assert not temp.exists()
    assert tree(dest) == data and len(result.members) == len(data)


def test_pull_extract_of_a_big_zip_follows_it_with_workers(emulator, drive_env, tmp_path,
                                                          fast_retries):
    data = members(1)
    blob = big_zip(data)
    emulator.add_file("d/set.zip", blob)
    dest = tmp_path / "data"
    code, out, err = run("-vv", "pull", "drive:d/set.zip", str(dest), "-x", "-q")
    assert code == 0, err
    assert "in 2 worker processes" in err, err
    assert tree(dest) == {"set.zip": blob, **data}
    assert not list(dest.glob(TEMP_PREFIX + "*"))
    assert worker_pids(os.getpid()) == []


def test_a_zip_whose_members_overlap_is_extracted_the_usual_way(emulator, drive_env, tmp_path,
                                                               fast_retries):
    """Two directory entries name one local header (two stored members, the same bytes): a
    worker following the download refuses the first (its bytes reach past where the next
    member starts), and the verified archive is then extracted as it always was."""
    data = members(2)
    data["set/2/m0002.bin"] = data["set/1/m0001.bin"]
    blob = bytearray(big_zip(data))
    entries = [i for i in range(len(blob)) if blob.startswith(b"PK\x01\x02", i)][:3]
    blob[entries[2] + 42:entries[2] + 46] = blob[entries[1] + 42:entries[1] + 46]
    blob = bytes(blob)
    emulator.add_file("d/overlap.zip", blob)
    (tmp_path / "overlap.zip").write_bytes(blob)
    usual = extract(tmp_path / "overlap.zip", tmp_path / "usual", jobs=1)
    assert tree(tmp_path / "usual") == data
    dest = tmp_path / "data"
    code, out, err = run("-vv", "pull", "drive:d/overlap.zip", str(dest), "-x", "-q")
    assert code == 0, err
    assert "extracting the verified archive again (member 'set/1/m0001.bin' of" in err, err
    assert "overlaps the member after it" in err
    assert tree(dest) == {"overlap.zip": blob, **data}
    assert len(usual.members) == len(data)


def test_a_corrupted_download_followed_by_workers_leaves_nothing(emulator, drive_env, tmp_path,
                                                                 fast_retries):
    """Every answer has a byte flipped: the download fails its checksum twice, the workers
    that followed it are stopped, and DEST holds nothing extracted, no temporary folder."""
    blob = big_zip(members(3))
    fid = emulator.add_file("d/set.zip", blob)
    emulator.faults.corrupt(fid)
    dest = tmp_path / "data"
    code, out, err = run("-vv", "pull", "drive:d/set.zip", str(dest), "-x", "-q")
    assert code == 1 and "do not match Drive" in err
    assert "in 2 worker processes" in err, err
    assert [p for p in os.listdir(dest) if p != ".drivestage"] == []
    assert worker_pids(os.getpid()) == []


def test_a_worker_loads_only_what_it_writes_with(tmp_path):
    """A worker imports the worker module and the little it needs, not the whole extract
    package (zipfile, tarfile, the member rules...): 8 MB and about 0.1 s less per worker.
    Seen through ``-X importtime`` of the interpreter it was started as."""
    archive, job, files = started(tmp_path, members())
    seen = tmp_path / "imports"
    written_through(archive, job, files, tmp_path,
                    f"exec {sys.executable} -X importtime \"$@\" 2>> {seen}")
    loaded = [line.rsplit("|", 1)[-1].strip() for line in seen.read_text().splitlines()
              if line.startswith("import time:")]
    assert loaded.count("drivestage.extract.worker") == 2  # both started, both imported it
    heavy = {"zipfile", "tarfile", "shutil", "logging", "subprocess", "drivestage.store",
             "drivestage.extract.members", "drivestage.extract.writing",
             "drivestage.extract.workers", "drivestage.extract.tempdir"}
    assert sorted(heavy & set(loaded)) == []
    assert all(e.written is not None for e in files)


_SHADOWED = """
import logging, sys, zlib  # the real zlib, before the copy's folder is on the path
site, archive, dest = sys.argv[1:4]
sys.path.insert(0, site)
from drivestage.extract import extract, workers
assert workers.__file__.startswith(site), workers.__file__
logging.basicConfig(level=logging.DEBUG)
extract(archive, dest, jobs=2)
"""


def test_a_module_beside_drivestage_named_like_a_standard_one_does_not_shadow_it(tmp_path):
    """drivestage installed by pip lives in site-packages; a worker puts that folder on its
    path after the standard library's, so a ``zlib.py`` there (any package named like a
    standard module) is not what the worker imports."""
    import shutil

    site = tmp_path / "lib" / "site-packages"
    package = os.path.dirname(os.path.dirname(os.path.abspath(workers.__file__)))
    shutil.copytree(package, site / "drivestage",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shadowed = tmp_path / "shadowed"
    (site / "zlib.py").write_text(f"open({str(shadowed)!r}, 'w').close()\n"
                                  "raise ImportError('not the standard zlib')\n")
    data = members()
    archive = tmp_path / "set.zip"
    archive.write_bytes(big_zip(data))
    proc = subprocess.run([sys.executable, "-c", _SHADOWED, str(site), str(archive),
                           str(tmp_path / "dest")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "in 2 worker processes" in proc.stderr and "did not start" not in proc.stderr
    assert not shadowed.exists()
    assert tree(tmp_path / "dest") == data


def test_a_ctrl_c_while_the_main_thread_waits_for_the_feeders_waits_for_them_to_end(tmp_path):
    """A staged archive is written from the main thread; a Ctrl-C while it waits for the
    threads that feed the workers stops the workers, and ``write_in_processes`` raises only
    once those threads have ended (the temporary folder they write into goes next).
    CPython 3.11's ``Thread.join()``, cut by a Ctrl-C, marks a thread that still runs as
    stopped, and the clean-up's join then returned at once."""
    before = set(threading.enumerate())  # a test that failed earlier may have left one
    archive, job, files = started(tmp_path, members())
    sent, feeder_returned = [], threading.Event()

    def progress(n: int) -> None:  # runs in a feeding thread, as a worker's answer arrives
        if sent:
            return
        sent.append(True)
        os.kill(os.getpid(), signal.SIGINT)  # the main thread is in the feeders' join
        feeder_returned.wait(1)  # what a slow feeder does; the main thread must wait
        feeder_returned.set()

    afd = os.open(archive, os.O_RDONLY)
    try:
        with pytest.raises(KeyboardInterrupt):
            workers.write_in_processes("zip", afd, os.fstat(afd).st_size, job.root, files, 2,
                                       Progress(progress), label=str(archive),
                                       hold_fd=job.owner_fd)
        assert feeder_returned.is_set(), "write_in_processes raised while a feeder still ran"
        assert [t.name for t in threading.enumerate()
                if t.name == "drivestage-extract-feed" and t.is_alive() and t not in before] == []
    finally:
        os.close(afd)
        job.close()
    assert os.listdir(tmp_path / "dest") == []
