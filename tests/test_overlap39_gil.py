"""`pull --extract` of a zip reads and checks its member list while the download's threads
fetch and hash: meanwhile the interpreter hands the GIL over every 0.5 ms (not every 5) and
the cyclic collector waits (drivestage.gil), and both are as before once it is done."""
from __future__ import annotations

import gc
import os
import sys
import threading

import pytest

from drivestage import gil
from drivestage.extract import overlapped

from _archives import a_zip, tree
from _cli import run


@pytest.fixture(autouse=True)
def _fast(fast_retries):
    """Backoffs of a millisecond, without jitter, for every test here."""


@pytest.fixture
def settings():
    """The process's switch interval and collector as the test found them, put back."""
    interval, enabled = sys.getswitchinterval(), gc.isenabled()
    yield interval, enabled
    sys.setswitchinterval(interval)
    (gc.enable if enabled else gc.disable)()


def test_the_member_list_is_read_with_the_gil_shared_and_no_collection(
        emulator, drive_env, tmp_path, settings, monkeypatch):
    members = {f"ds/f{i:03d}.bin": os.urandom(4096) for i in range(200)}
    blob = a_zip(members)
    emulator.add_file("d/set.zip", blob)
    seen = []
    real = overlapped.zip_directory

    def zip_directory(*args, **kwargs):  # a spy: what the read ran under, then the read
        seen.append((sys.getswitchinterval(), gc.isenabled()))
        return real(*args, **kwargs)

    monkeypatch.setattr(overlapped, "zip_directory", zip_directory)
    code, out, err = run("pull", "drive:d/set.zip", str(tmp_path / "data"), "-x", "-q")
    assert code == 0, err
    assert tree(tmp_path / "data") == {"set.zip": blob, **members}
    assert seen == [(gil.SWITCH, False)]   # followed once, with the GIL handed over often
    assert (sys.getswitchinterval(), gc.isenabled()) == settings   # and as before after


def test_a_refused_zip_leaves_the_settings_as_they_were(emulator, drive_env, tmp_path,
                                                       settings):
    blob = a_zip({"../evil.txt": b"x" * 100, "ok.txt": b"y"})
    emulator.add_file("d/bad.zip", blob)
    code, out, err = run("pull", "drive:d/bad.zip", str(tmp_path / "data"), "-x", "-q")
    assert code == 1
    assert "evil.txt" in err.splitlines()[-1]
    assert (sys.getswitchinterval(), gc.isenabled()) == settings


def test_nested_and_threaded_blocks_restore_once_the_last_ends(settings):
    sys.setswitchinterval(0.004)
    before = sys.getswitchinterval()
    gc.enable()
    inside = threading.Event()
    leave = threading.Event()
    seen = []

    def other() -> None:
        with gil.sharing():
            inside.set()
            leave.wait(10)

    t = threading.Thread(target=other)
    with gil.sharing():
        t.start()
        assert inside.wait(10)
        with gil.sharing():
            seen.append((sys.getswitchinterval(), gc.isenabled()))
    # This thread's blocks ended; the other thread's still runs.
    seen.append((sys.getswitchinterval(), gc.isenabled()))
    leave.set()
    t.join(10)
    assert seen == [(gil.SWITCH, False), (gil.SWITCH, False)]
    assert (sys.getswitchinterval(), gc.isenabled()) == (before, True)


def test_a_collector_switched_off_before_stays_off(settings):
    gc.disable()
    sys.setswitchinterval(0.0002)   # shorter already: kept as it is
    short = sys.getswitchinterval()
    with gil.sharing():
        assert (sys.getswitchinterval(), gc.isenabled()) == (short, False)
    assert (sys.getswitchinterval(), gc.isenabled()) == (short, False)


def test_an_error_in_the_block_restores_them(settings):
    sys.setswitchinterval(0.005)
    before = sys.getswitchinterval()
    gc.enable()
    with pytest.raises(ValueError):
        with gil.sharing():
            raise ValueError("x")
    assert (sys.getswitchinterval(), gc.isenabled()) == (before, True)
