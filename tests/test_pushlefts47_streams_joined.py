"""pushlefts47: a pull stopped while Drive holds its answer mid-body cut the stream's
connection (stuckconn46), but the call returned without waiting for the stream threads it
cut: their last steps (saving the record, closing the connection) ran beside the caller's
next work. Now the pass's close joins them (bounded) before the call returns."""
from __future__ import annotations

import os
import threading

import drivestage
from drivestage import pool, streams
from drivestage.interrupts import Flag

from _leaks import our_threads

KiB = 1024


def test_a_stopped_pull_returns_once_its_streams_have_ended(emulator, local_state, drive_env,
                                                           tmp_path, monkeypatch):
    data = os.urandom(512 * KiB)
    emulator.add_file("d/f0.bin", data)
    fid = emulator.find("d/f0.bin")["id"]
    returned = threading.Event()
    ended_first: list[bool] = []
    read_pieces = streams.Pass._read_pieces

    def held_at_its_end(self: streams.Pass) -> None:
        try:
            read_pieces(self)
        finally:
            # The stream's end, cut: held (at most 0.5 s) until the stopped call has
            # returned; the old close returned at once, without waiting for it.
            ended_first.append(not returned.wait(0.5))
    monkeypatch.setattr(streams.Pass, "_read_pieces", held_at_its_end)
    before = our_threads()
    stop = Flag()
    got: list[BaseException] = []

    def body() -> None:
        with pool.stoppable(stop):
            try:
                drivestage.pull("drive:d/f0.bin", str(tmp_path / "data"), quiet=True, jobs=1)
            except BaseException as exc:   # (the stop's: looked at below)
                got.append(exc)
            finally:
                returned.set()
                ended_first.append(not [t for t in our_threads() - before
                                        if t.name == "drivestage-fetch" and t.is_alive()])

    held = emulator.faults.hold(fid, len(data) // 2)
    thread = threading.Thread(target=body, name="test-pull")
    try:
        thread.start()
        assert held.reached.wait(60), "the download never reached the hold"
        stop.set()
        thread.join(30)
        assert not thread.is_alive(), "the stopped pull did not return"
    finally:
        held.release()
    assert len(got) == 1 and isinstance(got[0], KeyboardInterrupt), got
    # The stream ended before the call returned, and no fetch thread was left as it did.
    assert ended_first == [True, True], ended_first
