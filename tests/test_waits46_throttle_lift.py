"""The emulator's throttle lifted (or every fault cleared) while a body waits behind it: the
body goes on at once. Before, the pause under the old limit was waited out (a 1 MiB chunk at
512 KiB/s: 2 s), and a test that lifted the throttle to let a stopped command's last request
end before its rerun waited it out each time (tests/_sigpush42.py's ``settled``)."""
from __future__ import annotations

import threading

import pytest

from drivestage.emulator import throttle

from _drive_clients import drive_service

KiB = 1024


@pytest.mark.parametrize("lift", ["throttle(None)", "clear()"])
def test_a_body_paused_behind_the_throttle_goes_on_once_it_is_lifted(emulator, monkeypatch,
                                                                     lift):
    data = bytes(range(256)) * (512 * KiB // 256)
    fid = emulator.add_file("t.bin", data)
    real, paused = throttle._pause, threading.Event()

    def pause(woken: threading.Event, seconds: float) -> None:   # the server's wait
        paused.set()
        real(woken, seconds)
    monkeypatch.setattr(throttle, "_pause", pause)
    emulator.faults.throttle(16 * KiB)   # 16 s for each 256 KiB the server writes
    got: list[bytes] = []
    reader = threading.Thread(
        target=lambda: got.append(drive_service(emulator.url).files().get_media(
            fileId=fid).execute()))
    reader.start()
    try:
        assert paused.wait(10), "the download never waited behind the throttle"
        if lift == "clear()":
            emulator.faults.clear()
        else:
            emulator.faults.throttle(None)
        reader.join(8)   # (the pause under way had 16 s to go)
        assert not reader.is_alive(), "the body waited out its pause under the lifted throttle"
    finally:
        emulator.faults.release_holds()   # (the test ends either way)
        reader.join(30)
        emulator.faults.serving()
    assert got == [data]
