"""Attacks on ``pull --extract`` over several streams (commit ad33a33): a range fetched at
once while the streams run (the zip's tail), members written in the order their bytes
arrive, and the measuring thread. A hostile server fails a stream at the chosen moment, an
unlucky scheduler lines up a failure with the tail's fetch; what a user relies on: the
error that says what went wrong, no hang, no thread or temporary folder left behind."""
from __future__ import annotations

import os
import threading

import pytest
from _download_fixtures import _fast, out, passes, small_splits, store  # noqa: F401

from drivestage import download as dl
from drivestage import streams, unpack
from drivestage.drive.store import DriveStore
from drivestage.errors import NotFoundError

from _cli import run

MiB = 1 << 20


def test_a_stream_failing_while_the_tail_is_fetched_gives_its_own_error(
        emulator, store, out, monkeypatch):
    """The streams begin while the zip's tail is fetched (``fetch_first(begin=True)``); the
    stream fails for good (the file was deleted on Drive) before the tail's answer comes.
    The tail's bytes are refused (the download stopped) and what is raised is the stream's
    error, naming the file: not "the download stopped", which tells a user nothing."""
    data = os.urandom(3 * MiB)
    fid = emulator.add_file("z.zip", data)
    entry = store.resolve("z.zip")
    tail = len(data) - 64 * 1024
    real = store.read_into
    d = dl.Download(store, entry, str(out / "z.zip"), jobs=1)
    failed: list[bool] = []

    def read_into(e, start, sink):
        if start == tail:  # the tail's request waits until the stream has failed
            with d.lock:
                failed.append(d.lock.wait_for(lambda: d._run.error is not None, 10))
        return real(e, start, sink)

    monkeypatch.setattr(store, "read_into", read_into)
    emulator.faults.inject("GET", path=fid, status=404, times=1)
    try:
        with pytest.raises(NotFoundError) as info:
            d.fetch_first(tail, len(data), begin=True)
    finally:
        d.close()
    assert failed == [True]
    assert "z.zip" in str(info.value), str(info.value)


def test_pull_extract_says_why_a_stream_failed_during_the_tail(
        emulator, drive_env, tmp_path, monkeypatch, passes, fast_retries):
    """The same through ``pull --extract``: the message names the file and Drive's answer."""
    data = os.urandom(3 * MiB)
    fid = emulator.add_file("d/set.zip", data)
    tail = len(data) - unpack._TAIL_MIN   # (what pull -x fetches first)
    real = DriveStore.read_into
    failed: list[bool] = []

    def read_into(self, e, start, sink):
        if start == tail:
            run_ = passes[0]
            with run_.lock:
                failed.append(run_.lock.wait_for(lambda: run_.error is not None, 10))
        return real(self, e, start, sink)

    monkeypatch.setattr(DriveStore, "read_into", read_into)
    emulator.faults.inject("GET", path=fid, status=404, times=1)
    dest = tmp_path / "data"
    code, _, err = run("pull", "drive:d/set.zip", str(dest), "-x", "-q", "--jobs", "1")
    assert failed == [True]
    assert code != 0
    assert "download stopped" not in err and "set.zip" in err, err


def test_ctrl_c_while_the_tail_is_handed_out_is_a_ctrl_c(emulator, store, out, monkeypatch):
    """A Ctrl-C lands while ``fetch_first`` hands the tail's missing parts to itself (two
    of them: a part in the middle is here already), after the first part was taken: what
    is raised is the KeyboardInterrupt (the pull says it was interrupted), not a
    ValueError from the clean-up (a traceback), and the partial's record stays usable: a
    rerun fetches the rest and the file verifies."""
    data = os.urandom(3 * MiB)
    emulator.add_file("z.zip", data)
    entry = store.resolve("z.zip")
    tail = len(data) - 64 * 1024
    d = dl.Download(store, entry, str(out / "z.zip"), jobs=1)
    real_take = streams.Pass._take
    taken: list[tuple[int, int]] = []

    def take(self, a, b):
        real_take(self, a, b)
        taken.append((a, b))
        if len(taken) == 2:  # the second part's: Ctrl-C right after the first was taken
            raise KeyboardInterrupt

    try:
        d.fetch_first(tail + 16 * 1024, tail + 32 * 1024)  # a part in the middle first
        monkeypatch.setattr(streams.Pass, "_take", take)
        with pytest.raises(KeyboardInterrupt):
            d.fetch_first(tail, len(data), begin=True)
    finally:
        d.close()
    monkeypatch.setattr(streams.Pass, "_take", real_take)
    res = dl.Download(store, entry, str(out / "z.zip")).run()
    assert (out / "z.zip").read_bytes() == data
    assert res.fetched == len(data) - res.resumed_from
