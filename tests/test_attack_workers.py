"""Attacks on the worker processes that write a big zip or plain tar (issue 15): hostile
archives, a hostile interpreter or environment, a full disk, Ctrl-C mid-pull. The rules are
the threads' rules: the same message for the same bad archive, DEST as it was on a failure,
no worker left, no wait without a bound."""
from __future__ import annotations

import logging
import os
import signal
import struct
import subprocess
import sys
import threading
import time

import pytest

from drivestage.extract import extract
from drivestage.extract import workers
from drivestage.extract.merging import TEMP_PREFIX

from _archives import tree
from _cli import child_env
from _tmpfs import small_disk  # noqa: F401  (a fixture)
from test_extract_workers import big_tar, big_zip, members, no_workers_within, worker_pids


def _central_entries(blob: bytes) -> list[int]:
    return [i for i in range(len(blob)) if blob.startswith(b"PK\x01\x02", i)]


def _both_fail_alike(archive, tmp_path, exc_type=Exception) -> str:
    """Extract ``archive`` with workers and with one thread; both fail with the same
    message and leave DEST as it was. Returns the message."""
    messages = []
    for jobs in (2, 1):
        dest = tmp_path / f"d{jobs}"
        dest.mkdir()
        (dest / "mine.txt").write_bytes(b"kept")
        with pytest.raises(exc_type) as got:
            extract(archive, dest, jobs=jobs)
        messages.append(str(got.value).replace(str(dest), "DEST"))
        assert sorted(os.listdir(dest)) == ["mine.txt"]
    assert worker_pids(os.getpid()) == []
    assert messages[0] == messages[1]
    return messages[0]


def test_a_last_member_whose_size_reaches_past_the_end_fails_as_in_one_thread(tmp_path):
    """The central directory says the last member's compressed bytes run past the end of
    the file: the workers said 'overlaps the member after it' (there is none), one thread
    said what is wrong."""
    blob = bytearray(big_zip(members()))
    struct.pack_into("<I", blob, _central_entries(blob)[-1] + 20, len(blob) + 100)
    archive = tmp_path / "lies.zip"
    archive.write_bytes(bytes(blob))
    message = _both_fail_alike(archive, tmp_path)
    assert "overlaps" not in message


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


def _fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def test_no_descriptor_is_left_open_after_success_or_failure(tmp_path):
    data = members()
    good = tmp_path / "set.zip"
    good.write_bytes(big_zip(data))
    bad = bytearray(good.read_bytes())
    name = b"set/3/m0500.bin"
    bad[bad.index(name) + len(name) + 10] ^= 0xFF
    (tmp_path / "bad.zip").write_bytes(bytes(bad))
    extract(good, tmp_path / "warm", jobs=2)  # lazily opened things (logging, caches)
    before = _fds()
    extract(good, tmp_path / "d", jobs=2)
    with pytest.raises(Exception):
        extract(tmp_path / "bad.zip", tmp_path / "e", jobs=2)
    assert _fds() == before


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
    proc = subprocess.Popen([sys.executable, "-m", "drivestage", "pull", "drive:d/set.zip",
                             str(dest), "-x", "-q"], env=child_env(emulator),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while len(worker_pids(proc.pid)) < 2 or \
                not list(dest.glob(TEMP_PREFIX + "*/set/*/*")):
            assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()
            time.sleep(0.01)
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=30)
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
    before = _fds()
    try:
        with pytest.raises(KeyboardInterrupt) as got:
            extract(archive, dest, jobs=2)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    assert worker_pids(os.getpid()) == []  # while the traceback (and its frames) live
    assert _fds() == before
    assert sorted(os.listdir(dest)) == ["mine.txt"]
    del got
