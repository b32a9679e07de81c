"""Attacks on the worker processes that write a big zip or plain tar (issue 15): hostile
archives, a hostile interpreter or environment, a full disk, Ctrl-C mid-pull. The rules are
the threads' rules: the same message for the same bad archive, DEST as it was on a failure,
no worker left, no wait without a bound."""
from __future__ import annotations

import gc
import io
import logging
import json
import os
import signal
import struct
import subprocess
import tarfile
import sys
import threading
import time
import zipfile

import pytest

from drivestage.extract import extract
from drivestage.extract import workers
from drivestage.extract.tempdir import TEMP_PREFIX
from drivestage.extract.copying import Progress

from _archives import tree
from _cli import child_env, run
from _tmpfs import small_disk  # noqa: F401  (a fixture)
from test_extract_workers import big_tar, big_zip, held_after_first_batches, members, \
    no_workers_within, worker_pids, writing


def _central_entries(blob: bytes) -> list[int]:
    return [i for i in range(len(blob)) if blob.startswith(b"PK\x01\x02", i)]


def test_a_full_disk_fails_as_in_one_thread(tmp_path, small_disk):
    data = members()
    archive = tmp_path / "set.zip"
    archive.write_bytes(big_zip(data))
    messages = []
    for jobs in (2, 1):
        dest = small_disk(600 << 10, inodes=4000) / "dest"
        dest.mkdir()
        (dest / "mine.txt").write_bytes(b"kept")
        with pytest.raises(OSError) as got:
            extract(archive, dest, jobs=jobs, free_bytes=lambda p: 1 << 40)
        messages.append((got.value.errno, str(got.value).replace(str(dest), "DEST")))
        assert sorted(os.listdir(dest)) == ["mine.txt"]
    assert worker_pids(os.getpid()) == []
    assert messages[0] == messages[1] and messages[0][0] == 28, messages


def test_an_interpreter_that_never_answers_leaves_the_work_to_threads(tmp_path, monkeypatch):
    """``sys.executable`` that never says it is ready (a hung start, a wrapper waiting on
    something): the extraction must not wait for it for ever."""
    data = members()
    archive = tmp_path / "set.zip"
    archive.write_bytes(big_zip(data))
    python = tmp_path / "python"
    pids = tmp_path / "pids"
    python.write_text(f"#!/bin/sh\necho $$ >> {pids}\nexec tail -f /dev/null\n")  # silent
    python.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(python))
    monkeypatch.setattr(workers, "_START_TIMEOUT", 0.5)
    done = []
    t = threading.Thread(target=lambda: done.append(extract(archive, tmp_path / "d", jobs=2)),
                         daemon=True)
    t.start()
    t.join(15)
    hung = t.is_alive()
    started = [int(p) for p in pids.read_text().split()]
    if hung:  # unblock it: end the silent "workers" (ours: their ids are in the file)
        for pid in started:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        t.join(15)
    assert not hung, "the extraction waited for a worker that never answered"
    assert tree(tmp_path / "d") == data and len(done[0].members) == len(data)
    assert len(started) == 2
    for pid in started:  # killed and waited for
        assert not os.path.exists(f"/proc/{pid}")


def _fds() -> set[tuple[str, str]]:
    """This process's descriptors, each with what it points to. Compared as ``_fds() <=
    before``: another test's leftover (a kept-alive socket, a thread still ending) may close
    its own meanwhile, and a descriptor number it freed, taken again by one left open here,
    points elsewhere."""
    out = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            out.add((fd, os.readlink(f"/proc/self/fd/{fd}")))
        except OSError:  # the listing's own descriptor, closed since
            continue
    return out


def test_no_descriptor_is_left_open_after_success_or_failure(tmp_path):
    data = members()
    good = tmp_path / "set.zip"
    good.write_bytes(big_zip(data))
    bad = bytearray(good.read_bytes())
    name = b"set/3/m0500.bin"
    bad[bad.index(name) + len(name) + 10] ^= 0xFF
    (tmp_path / "bad.zip").write_bytes(bytes(bad))
    extract(good, tmp_path / "warm", jobs=2)  # lazily opened things (logging, caches)
    gc.collect()  # an earlier test's leftovers closed now, not during this one
    before = _fds()
    extract(good, tmp_path / "d", jobs=2)
    with pytest.raises(Exception):
        extract(tmp_path / "bad.zip", tmp_path / "e", jobs=2)
    assert _fds() <= before


def test_two_big_archives_into_one_dest_at_once_from_threads(tmp_path):
    """Two extractions in two threads (neither the main thread), each with its workers."""
    a, b = members(1), {k.replace("set/", "other/"): v for k, v in members(2).items()}
    (tmp_path / "a.zip").write_bytes(big_zip(a))
    (tmp_path / "b.tar").write_bytes(big_tar(b))
    dest = tmp_path / "dest"
    errors = []

    def one(name: str) -> None:
        try:
            extract(tmp_path / name, dest, jobs=2)
        except BaseException as exc:
            errors.append(exc)

    ts = [threading.Thread(target=one, args=(n,)) for n in ("a.zip", "b.tar")]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    assert not errors, errors
    assert tree(dest) == {**a, **b}
    assert not list(dest.glob(TEMP_PREFIX + "*"))
    assert worker_pids(os.getpid()) == []


def test_ctrl_c_during_pull_extract_of_a_big_zip(emulator, tmp_path):
    """SIGINT to the whole process group (what a terminal sends) while the workers follow
    the download: 'Interrupted.', exit 130, no traceback from anybody, no worker left, no
    member in DEST."""
    data = members(3)
    emulator.add_file("d/set.zip", big_zip(data))
    emulator.faults.throttle(per_connection=256 << 10)
    dest = tmp_path / "data"
    # faulthandler: a command that does not end after the Ctrl-C is made to print where each
    # of its threads is (SIGABRT), which the failure then shows.
    proc = subprocess.Popen([sys.executable, "-m", "drivestage", "pull", "drive:d/set.zip",
                             str(dest), "-x", "-q"],
                            env={**child_env(emulator), "PYTHONFAULTHANDLER": "1"},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while len(worker_pids(proc.pid)) < 2 or \
                not list(dest.glob(TEMP_PREFIX + "*/set/*/*")):
            assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()
            time.sleep(0.01)
        os.killpg(proc.pid, signal.SIGINT)
        try:
            out, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGABRT)
            out, err = proc.communicate(timeout=30)
            pytest.fail("pull -x did not end within 30 s of a Ctrl-C; its threads then:\n"
                        + err.decode(errors="replace")[-8000:])
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        emulator.faults.throttle(None)
    no_workers_within(proc.pid, 10)
    text = err.decode()
    assert proc.returncode == 130, text
    assert text.strip().splitlines()[-1] == "Interrupted." and "Traceback" not in text, text
    assert not (dest / "set").exists()


class _CtrlC(logging.Handler):
    """A Ctrl-C that lands when the extraction logs that its workers started (a real
    moment: between the workers' start and the writing)."""

    def emit(self, record: logging.LogRecord) -> None:
        if "worker processes" in record.getMessage():
            raise KeyboardInterrupt


def test_ctrl_c_right_after_the_workers_started_leaves_no_worker(tmp_path):
    """The main thread is interrupted once the workers run but before it waits for them:
    they must end with the extraction (in a notebook the process, and its traceback, live
    on), and DEST stays as it was."""
    archive = tmp_path / "set.zip"
    archive.write_bytes(big_zip(members()))
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "mine.txt").write_bytes(b"kept")
    logger = logging.getLogger("drivestage.extract.workers")
    handler, level = _CtrlC(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    # What an earlier test left for the collector (a pull's kept-alive sockets) is closed
    # now, not by a collection during this one (the sets then differed by those).
    gc.collect()
    before = _fds()
    try:
        with pytest.raises(KeyboardInterrupt) as got:
            extract(archive, dest, jobs=2)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    assert worker_pids(os.getpid()) == []  # while the traceback (and its frames) live
    assert _fds() <= before
    assert sorted(os.listdir(dest)) == ["mine.txt"]
    del got


def _lie_comp_size_past_end(blob: bytearray) -> None:
    # the workers said "overlaps the member after it" (there is none); threads: too long
    struct.pack_into("<I", blob, _central_entries(blob)[-1] + 20, len(blob) + 100)


def _lie_offset_past_end(blob: bytearray) -> None:
    struct.pack_into("<I", blob, _central_entries(blob)[300] + 42, len(blob) + 10)


def _lie_extra_length(blob: bytearray) -> None:
    at = struct.unpack_from("<I", blob, _central_entries(blob)[-1] + 42)[0]
    struct.pack_into("<H", blob, at + 28, 0xFFFF)  # the last local header: data past the end


def _lie_extra_length_inside(blob: bytearray) -> None:
    at = struct.unpack_from("<I", blob, _central_entries(blob)[100] + 42)[0]
    struct.pack_into("<H", blob, at + 28, 200)  # data start inside the next member


def _lie_size_smaller(blob: bytearray) -> None:
    cd = _central_entries(blob)[301]  # stored (301 % 3 != 0)
    struct.pack_into("<I", blob, cd + 24, struct.unpack_from("<I", blob, cd + 24)[0] - 5)


def _lie_size_larger(blob: bytearray) -> None:
    cd = _central_entries(blob)[300]  # deflated
    struct.pack_into("<I", blob, cd + 24, struct.unpack_from("<I", blob, cd + 24)[0] + 5)


def _lie_comp_size_inside(blob: bytearray) -> None:
    cd = _central_entries(blob)[300]  # deflated: its stream ends early, then the next header
    struct.pack_into("<I", blob, cd + 20, struct.unpack_from("<I", blob, cd + 20)[0] + 500)


@pytest.mark.parametrize("lie", [_lie_comp_size_past_end, _lie_offset_past_end, _lie_extra_length,
                                 _lie_extra_length_inside, _lie_size_smaller,
                                 _lie_size_larger, _lie_comp_size_inside])
def test_a_lying_zip_fails_or_succeeds_as_in_one_thread(tmp_path, lie):
    """A central directory or local header that lies: the workers end as one thread does,
    with the same message (before, a bound at the archive's end made some 'overlaps the
    member after it'), and DEST as it was."""
    data = members()
    blob = bytearray(big_zip(data))
    lie(blob)
    archive = tmp_path / "lies.zip"
    archive.write_bytes(bytes(blob))
    outcomes = []
    for jobs in (2, 1):
        dest = tmp_path / f"d{jobs}"
        dest.mkdir()
        (dest / "mine.txt").write_bytes(b"kept")
        try:
            extract(archive, dest, jobs=jobs)
            outcomes.append(("ok", tree(dest)))
        except Exception as exc:
            outcomes.append((type(exc).__name__, str(exc)))
            assert sorted(os.listdir(dest)) == ["mine.txt"]
    assert worker_pids(os.getpid()) == []
    assert outcomes[0] == outcomes[1]


class _Unseekable:
    """A stream zipfile cannot seek back in: it writes data descriptors."""

    def __init__(self):
        self.buf = io.BytesIO()

    def write(self, b):
        return self.buf.write(b)

    def flush(self):
        pass

    def seekable(self):
        return False


def test_a_zip64_zip_with_data_descriptors_is_written_as_one_thread_writes(tmp_path):
    data = members(4)
    out = _Unseekable()
    with zipfile.ZipFile(out, "w") as zf:
        for n, (name, body) in enumerate(data.items()):
            info = zipfile.ZipInfo(name, (2023, 5, 6, 7, 8, 10 + n % 40))
            info.compress_type = zipfile.ZIP_DEFLATED if n % 2 else zipfile.ZIP_STORED
            with zf.open(info, "w", force_zip64=True) as fh:
                fh.write(body)
    blob = out.buf.getvalue()
    assert blob[6] & 0x08  # a data descriptor follows the first member
    archive = tmp_path / "z64.zip"
    archive.write_bytes(blob)
    many = extract(archive, tmp_path / "many", jobs=2)
    one = extract(archive, tmp_path / "one", jobs=1)
    assert tree(tmp_path / "many") == tree(tmp_path / "one") == data
    assert [(r.path, r.size, r.mtime_ns) for r in many.members] == \
        [(r.path, r.size, r.mtime_ns) for r in one.members]


_STARTING = """
import os, sys
sys.path.insert(0, sys.argv[2])
sys.executable = sys.argv[4]  # the workers' interpreter: held in its start by the test
from drivestage.extract import extract
extract(sys.argv[1], sys.argv[3], jobs=2)
"""


def test_a_parent_killed_while_its_workers_start_leaves_nothing_running(tmp_path):
    """SIGKILL of the parent while it waits for its workers' 'ready': they start after it
    died, see their orders end, and exit without a word (no traceback on the terminal)
    and without writing; the next extraction cleans up."""
    data = members()
    archive = tmp_path / "set.zip"
    archive.write_bytes(big_zip(data))
    dest = tmp_path / "dest"
    python, pids, fifo = held_python(tmp_path)
    root = workers._ROOT  # where this drivestage is (not an installed one)
    proc = subprocess.Popen([sys.executable, "-c", _STARTING, str(archive), root, str(dest),
                             str(python)], stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while not pids.exists() or len(pids.read_text().split()) < 2:
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.01)
        proc.kill()
        proc.wait(10)
        with open(fifo, "w") as fh:  # the workers go on starting, their parent dead
            fh.write("go\ngo\n")
        _, err = proc.communicate(timeout=30)  # the end of stderr: every worker exited
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert err == b""
    [temp] = dest.glob(TEMP_PREFIX + "*")
    assert list(temp.glob("set/*/*")) == []  # no worker wrote a member
    extract(archive, dest, jobs=2)
    assert tree(dest) == data


def test_a_worker_imports_nothing_from_the_current_folder(tmp_path):
    """A cwd holding a ``zlib.py``, ``zipfile.py``, ``struct.py`` and a ``drivestage``
    package: the parent (``-P``) and its workers (``-I``) import none of them."""
    data = members()
    archive = tmp_path / "set.zip"
    archive.write_bytes(big_zip(data))
    evil = tmp_path / "evil"
    (evil / "drivestage" / "extract").mkdir(parents=True)
    bait = f"open({str(tmp_path / 'imported')!r}, 'a').write(__name__ + '\\n')\n"
    for name in ("zlib.py", "zipfile.py", "struct.py", "signal.py", "drivestage/__init__.py",
                 "drivestage/extract/__init__.py", "drivestage/extract/workers.py"):
        (evil / name).write_text(bait)
    root = workers._ROOT  # where this drivestage is (not an installed one)
    code = ("import sys\nfrom drivestage.extract import extract\n"
            "r = extract(sys.argv[1], sys.argv[2], jobs=2)\nprint(len(r.members))")
    proc = subprocess.run([sys.executable, "-P", "-c", code, str(archive), str(tmp_path / "d")],
                          cwd=evil, env=dict(os.environ, PYTHONPATH=root),
                          capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    print("ERR", proc.stderr.decode()[-1500:])
    assert proc.stdout.decode().split() == [str(len(data))]
    assert not (tmp_path / "imported").exists(), (tmp_path / "imported").read_text()
    assert tree(tmp_path / "d") == data


@pytest.mark.parametrize("kind", ["zip", "tar"])
def test_records_from_workers_make_a_rerun_a_no_op_and_notice_a_damaged_member(
        emulator, drive_env, tmp_path, fast_retries, kind):
    """The stamp's records come from the workers' fstat: a rerun stays 'cached' (nothing
    downloaded), a member removed or resized is noticed and put back from the archive (that
    member alone: the records say the others are in place)."""
    data = members(5)
    blob = big_zip(data) if kind == "zip" else big_tar(data)
    emulator.add_file(f"d/set.{kind}", blob)
    dest = tmp_path / "data"
    src = f"drive:d/set.{kind}"
    code, out, err = run("-vv", "pull", src, str(dest), "-x", "--json")
    assert code == 0, err
    assert ("in 2 worker processes" in err) == (kind == "zip"), err  # a tar: one stream
    for damage in ("removed", "resized", None):
        emulator.clear_requests()
        if damage == "removed":
            os.unlink(dest / "set/3/m0010.bin")
        elif damage == "resized":
            (dest / "set/6/m0300.xml").write_bytes(b"x")  # deflated
        code, out, err = run("-vv", "pull", src, str(dest), "-x", "--json")
        assert code == 0, err
        assert json.loads(out)["action"] == ("cached" if damage is None else "extract"), out
        if damage is not None:  # only the damaged member is written again (stage22)
            assert ": 1 of its 600 members (the others are in place)" in err, err
        assert not [r for r in emulator.requests if r.query.get("alt") == "media"]
        assert tree(dest) == {f"set.{kind}": blob, **data}
    assert worker_pids(os.getpid()) == []


def _exited_within(pid: int, seconds: float) -> None:
    """Wait until ``pid`` is a zombie or gone: its descriptors (the temporary folder's lock)
    closed. A process on its way out shows an empty command line (no marker: not a worker
    for :func:`worker_pids`) before the kernel closes its files; under load that window let
    the next extraction find the folder still held (seen once in session 50)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            with open(f"/proc/{pid}/stat") as fh:
                if fh.read().rsplit(")", 1)[1].split()[0] in ("Z", "X"):
                    return
        except (FileNotFoundError, ProcessLookupError):
            return
        assert time.monotonic() < deadline, f"process {pid} still exiting"
        time.sleep(0.01)


def test_a_temp_folder_an_orphan_worker_still_holds_is_not_taken_for_stale(tmp_path):
    """The parent is SIGKILLed while one of its workers is stopped (SIGSTOP: as good as busy
    for ever): another extraction into DEST leaves that temporary folder alone while the
    worker lives, and the one after the worker ended removes it."""
    from test_extract_workers import _KILLED
    data = members()
    archive = tmp_path / "set.zip"
    archive.write_bytes(big_zip(data))
    dest = tmp_path / "dest"
    proc = subprocess.Popen([sys.executable, "-c", _KILLED, str(archive), workers._ROOT,
                             str(dest)])
    stopped = None
    try:
        deadline = time.monotonic() + 30
        while len(worker_pids(proc.pid)) < 2 or not list(dest.glob(TEMP_PREFIX + "*/set/*/*")):
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.01)
        stopped = worker_pids(proc.pid)[0]
        os.kill(stopped, signal.SIGSTOP)
        proc.kill()
        proc.wait(10)
        deadline = time.monotonic() + 30
        while worker_pids(proc.pid) != [stopped]:  # the other one saw its orders end
            assert time.monotonic() < deadline
            time.sleep(0.01)
        [orphan] = dest.glob(TEMP_PREFIX + "*")
        extract(archive, dest, jobs=2)
        assert orphan.exists()  # held: not removed under a live worker
        assert {k: v for k, v in tree(dest).items() if not k.startswith(TEMP_PREFIX)} == data
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if stopped is not None:
            os.kill(stopped, signal.SIGCONT)
    no_workers_within(proc.pid, 10)
    _exited_within(stopped, 10)
    extract(archive, dest, jobs=2)
    assert not orphan.exists()
    assert tree(dest) == data


def test_a_temp_folder_swapped_for_a_symlink_mid_way_gets_nothing_written_through_it(
        tmp_path):
    """Someone who can write DEST renames the temporary folder and puts a link to a folder
    of theirs in its place while the workers write: every member still lands in the real
    folder (reached by its descriptor), none through the link."""
    from test_extract_workers import started
    archive, job, files = started(tmp_path, members())
    outside = tmp_path / "outside"
    for i in range(7):
        (outside / "set" / str(i)).mkdir(parents=True)
    t, go_on, errors = held_after_first_batches(archive, job, files)
    try:
        os.rename(job.tmp, job.tmp + ".moved")
        os.symlink(outside, job.tmp)
    finally:
        go_on.set()
        t.join(30)
        os.unlink(job.tmp)
        os.rename(job.tmp + ".moved", job.tmp)
        job.close()
    assert worker_pids(os.getpid()) == []
    assert list(outside.rglob("*.*")) == []
    assert errors == [] and all(e.written is not None for e in files)


def test_a_ctrl_c_that_reaches_a_starting_worker_does_not_end_it(tmp_path, caplog, capfd):
    """A terminal's Ctrl-C goes to the whole process group, workers too, maybe while one
    still starts (before it ignores SIGINT: a KeyboardInterrupt traceback in the middle of
    its imports). Here the parent is not interrupted, so the worker must live on and work."""
    from test_extract_workers import started
    data = members()
    archive, job, files = started(tmp_path, data)
    python, pids, fifo = held_python(tmp_path)
    t, errors = writing(archive, job, files, python=str(python))
    with caplog.at_level(logging.DEBUG, logger="drivestage.extract.workers"):
        t.start()
        try:
            deadline = time.monotonic() + 30
            while not pids.exists() or len(pids.read_text().split()) < 2:
                assert time.monotonic() < deadline and t.is_alive()
                time.sleep(0.01)
            for pid in pids.read_text().split():
                os.kill(int(pid), signal.SIGINT)
        finally:
            with open(fifo, "w") as fh:
                fh.write("go\ngo\n")
            t.join(30)
    try:
        assert not errors, errors
        assert "did not start" not in caplog.text, caplog.text
        assert "KeyboardInterrupt" not in capfd.readouterr().err
        job.finish()
    finally:
        job.close()
    assert tree(tmp_path / "dest") == data


def test_an_interpreter_that_prints_on_its_start_does_not_garble_the_answers(tmp_path):
    """A ``sitecustomize`` or wrapper that prints to stdout when Python starts (a banner, a
    deprecation notice): before, its text was read as a frame length (about 1.8 GB for
    'hell') and the extraction waited for ever for the rest."""
    from test_extract_workers import started
    data = members()
    archive, job, files = started(tmp_path, data)
    python = tmp_path / "python"
    python.write_text(f"#!/bin/sh\necho hello from a wrapper\nexec {sys.executable} \"$@\"\n")
    python.chmod(0o755)
    t, errors = writing(archive, job, files, python=str(python))
    t.start()
    t.join(15)
    hung = t.is_alive()
    if hung:  # unblock it: end its workers
        for pid in worker_pids(os.getpid()):
            os.kill(pid, signal.SIGKILL)
        t.join(15)
    try:
        assert not hung, "the extraction waited for ever"
        assert not errors, errors
        job.finish()
    finally:
        job.close()
    assert tree(tmp_path / "dest") == data


def test_names_that_are_not_utf8_and_a_dest_that_is_not_either(tmp_path):
    """An old tar's latin-1 member names (surrogate-escaped), into a DEST whose own name is
    not UTF-8: the workers write the very bytes one thread writes."""
    data = members()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT,
                      encoding="latin-1") as tf:
        for n, (name, body) in enumerate(data.items()):
            info = tarfile.TarInfo(name.replace("/m0", "/caf\xe9-m0") if n % 2 else name)
            info.size, info.mtime = len(body), 1_700_000_000
            tf.addfile(info, io.BytesIO(body))
    archive = tmp_path / "latin.tar"
    archive.write_bytes(buf.getvalue())
    trees = []
    for jobs in (2, 1):
        dest = os.path.join(os.fsencode(tmp_path), b"d\xff%d" % jobs)
        result = extract(archive, os.fsdecode(dest), jobs=jobs)
        got = {}
        for folder, _, names in os.walk(dest):
            for name in names:
                got[os.path.relpath(os.path.join(folder, name), dest)] = \
                    open(os.path.join(folder, name), "rb").read()
        trees.append(got)
        assert len(result.members) == len(data)
    assert trees[0] == trees[1]
    assert os.path.join(b"set", b"1", b"caf\xe9-m0001.bin") in trees[0]
    assert worker_pids(os.getpid()) == []


def test_a_central_directory_out_of_file_order_keeps_the_archive_order(tmp_path):
    """The directory lists the members backwards: the workers write them in file order and
    the records keep the directory's order, as one thread's do."""
    data = members()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, body in data.items():
            zf.writestr(name, body, zipfile.ZIP_DEFLATED if name.endswith("xml") else 0)
        zf.filelist.reverse()
    archive = tmp_path / "backwards.zip"
    archive.write_bytes(buf.getvalue())
    seen = {2: [], 1: []}
    results = {jobs: extract(archive, tmp_path / f"d{jobs}", jobs=jobs,
                             progress=seen[jobs].append) for jobs in (2, 1)}
    assert [r.path for r in results[2].members] == [r.path for r in results[1].members]
    assert [r.path for r in results[2].members if r.kind == "file"] == list(reversed(data))
    assert sum(seen[2]) == sum(seen[1]) == sum(len(b) for b in data.values())
    assert tree(tmp_path / "d2") == tree(tmp_path / "d1") == data


@pytest.mark.parametrize("lie", [_lie_comp_size_past_end, _lie_offset_past_end,
                                 _lie_extra_length_inside])
def test_pull_extract_of_a_lying_big_zip_fails_with_the_one_thread_message(
        emulator, drive_env, tmp_path, fast_retries, lie):
    """Followed by workers while it downloads (bounded orders), then extracted the usual
    way: exit 1, one line that says what one thread says, no member in DEST, no worker."""
    blob = bytearray(big_zip(members(6)))
    lie(blob)
    emulator.add_file("d/lies.zip", bytes(blob))
    (tmp_path / "lies.zip").write_bytes(bytes(blob))
    with pytest.raises(Exception) as one:
        extract(tmp_path / "lies.zip", tmp_path / "one", jobs=1)
    dest = tmp_path / "data"
    code, out, err = run("pull", "drive:d/lies.zip", str(dest), "-x", "-q")
    assert code == 1, err
    line = str(one.value).replace(str(tmp_path / "lies.zip"), str(dest / "lies.zip"))
    assert err.strip().splitlines() == [f"Error: {line}"], err
    assert sorted(p.name for p in dest.iterdir() if p.name != ".drivestage") == ["lies.zip"]
    assert worker_pids(os.getpid()) == []


def test_a_worker_whose_parent_died_stops_inside_a_big_member(tmp_path):
    """A batch is bounded in compressed bytes, but one deflated member may inflate to
    gigabytes: a worker whose parent was SIGKILLed must not go on filling the disk until
    that member ends. (It is stopped, its parent killed, then let go.)"""
    from test_extract_workers import _KILLED
    big = 128 << 20  # zeros: 128 KiB deflated
    data = members()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        info = zipfile.ZipInfo("a-big/zeros.bin")  # first in the file
        info.compress_type = zipfile.ZIP_DEFLATED
        with zf.open(info, "w") as fh:
            chunk = bytes(1 << 20)
            for _ in range(big >> 20):
                fh.write(chunk)
        for name, body in data.items():
            zf.writestr(name, body)
    archive = tmp_path / "set.zip"
    archive.write_bytes(buf.getvalue())
    dest = tmp_path / "dest"
    proc = subprocess.Popen([sys.executable, "-c", _KILLED, str(archive), workers._ROOT,
                             str(dest)])
    victim = None
    try:
        deadline = time.monotonic() + 30
        while True:
            found = list(dest.glob(TEMP_PREFIX + "*/a-big/zeros.bin"))
            if found and os.path.getsize(found[0]) > 0:
                break
            assert time.monotonic() < deadline and proc.poll() is None
        for pid in worker_pids(proc.pid):
            if os.path.exists(f"/proc/{pid}") and any(
                    os.readlink(f"/proc/{pid}/fd/{fd}").endswith("zeros.bin")
                    for fd in os.listdir(f"/proc/{pid}/fd")
                    if os.path.exists(f"/proc/{pid}/fd/{fd}")):
                victim = pid
        assert victim is not None
        os.kill(victim, signal.SIGSTOP)
        at_stop = os.path.getsize(found[0])
        assert at_stop < big  # the premise: stopped inside the member
        proc.kill()
        proc.wait(10)
        os.kill(victim, signal.SIGCONT)
        no_workers_within(proc.pid, 30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if victim is not None:
            try:
                os.kill(victim, signal.SIGCONT)
            except ProcessLookupError:
                pass
    assert os.path.getsize(found[0]) <= at_stop + (2 << 20)  # a chunk or two, not 128 MiB


def held_python(tmp_path):
    """An interpreter that notes its process id in ``pids``, then waits for a line on the
    FIFO ``fifo`` before it runs Python: (interpreter, pids, fifo)."""
    pids, fifo = tmp_path / "pids", tmp_path / "go"
    os.mkfifo(fifo)
    python = tmp_path / "python"
    python.write_text(f"#!/bin/sh\necho $$ >> {pids}\nread x < {fifo}\n"
                      f"exec {sys.executable} \"$@\"\n")
    python.chmod(0o755)
    return python, pids, fifo
