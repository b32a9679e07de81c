"""A push (``--jobs``) and a mirror stopped while Drive holds their upload answers (each
chunk's answer waits; the bytes are in) close those connections as they stop: the emulator
sees every held answer's client hang up, drivestage's threads are gone, no local file the
push read is left open, and a push afterwards sends the exact files. (The push's threads
read Drive's answers in pieces and drop their connections at the stop: this pins it beside
the downloads' cut, test_stuckconn46_cut.py.)"""
from __future__ import annotations

import os
import threading

import drivestage
from drivestage import pool
from drivestage.interrupts import Flag

from _leaks import open_targets, our_threads

KiB = 1024
_BOUND = 15.0
_CHUNKS = r"^/upload/.*[?&]upload_id="


def _run_folder(tmp_path) -> tuple:
    files = {f"f{i}.bin": os.urandom(64 * KiB) for i in range(8)}
    src = tmp_path / "run"
    src.mkdir()
    for name, data in files.items():
        (src / name).write_bytes(data)
    return src, files


def _open_under(folder) -> list[str]:
    """This process's descriptors open on a file under ``folder``."""
    return [target for target in open_targets() if target.startswith(str(folder) + os.sep)]


def _all_cut(emulator, before: set) -> None:
    """Every held answer ended early, its client gone; drivestage's threads ended."""
    came, hang_ups = emulator.faults.wait_latencies(lambda waiting: waiting == 0, _BOUND)
    assert came and hang_ups >= 1, ("held answers still waiting", hang_ups)
    for thread in our_threads() - before:
        thread.join(_BOUND)
        assert not thread.is_alive(), f"{thread.name} outlived the stop"


def _sent_exactly(emulator, src, files) -> None:
    emulator.faults.clear()
    drivestage.push(str(src), "drive:runs")
    assert {name: emulator.read_bytes(emulator.find(f"runs/{name}")["id"])
            for name in files} == files


def test_a_push_with_jobs_stopped_while_drive_holds_its_answers(emulator, local_state,
                                                                drive_env, tmp_path):
    src, files = _run_folder(tmp_path)
    before = our_threads()
    emulator.faults.latency(60, path=_CHUNKS)
    stop = Flag()
    got: list[BaseException] = []

    def body() -> None:
        with pool.stoppable(stop):
            try:
                drivestage.push(str(src), "drive:runs", jobs=4)
            except BaseException as exc:
                got.append(exc)

    thread = threading.Thread(target=body, name="test-push")
    thread.start()
    try:
        came, _ = emulator.faults.wait_latencies(lambda waiting: waiting >= 1, 60)
        assert came, "no upload answer was held"
    finally:
        stop.set()
        thread.join(_BOUND)
    assert not thread.is_alive(), "the stopped push did not return"
    assert len(got) == 1 and isinstance(got[0], KeyboardInterrupt), got
    _all_cut(emulator, before)
    assert _open_under(src) == []
    _sent_exactly(emulator, src, files)


def test_an_abandoned_mirror_cuts_its_held_uploads(emulator, local_state, drive_env,
                                                   tmp_path):
    src, files = _run_folder(tmp_path)
    before = our_threads()
    emulator.faults.latency(60, path=_CHUNKS)
    mirror = drivestage.Mirror(str(src), "drive:runs", every=3600, jobs=4)
    mirror.start().sync_now()   # (its first push now, not in an hour)
    try:
        came, _ = emulator.faults.wait_latencies(lambda waiting: waiting >= 1, 60)
        assert came, "no upload answer was held"
    finally:
        ended = mirror.abandon(_BOUND)
    assert ended, "the abandoned mirror's thread did not end"
    _all_cut(emulator, before)
    assert _open_under(src) == []
    _sent_exactly(emulator, src, files)
