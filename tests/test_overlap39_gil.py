"""`pull --extract` of a zip reads and checks its member list while the download's threads
fetch and hash: meanwhile the interpreter hands the GIL over every 0.5 ms, not every 5
(drivestage.gil), and the interval is as before once it is done, even after a Ctrl-C that
skipped the end of the block."""
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
from _signal_env import _fast  # noqa: F401  (an autouse fixture)


@pytest.fixture
def interval():
    """The process's switch interval, set to 5 ms (CPython's default) and put back."""
    found = sys.getswitchinterval()
    sys.setswitchinterval(0.005)
    yield sys.getswitchinterval()
    sys.setswitchinterval(found)


def test_the_member_list_is_read_with_the_gil_handed_over_often(emulator, drive_env,
                                                                tmp_path, interval,
                                                                monkeypatch):
    members = {f"ds/f{i:03d}.bin": os.urandom(4096) for i in range(200)}
    blob = a_zip(members)
    emulator.add_file("d/set.zip", blob)
    seen = []
    real = overlapped.zip_directory

    def zip_directory(*args, **kwargs):  # a spy: what the read ran under, then the read
        seen.append(sys.getswitchinterval())
        return real(*args, **kwargs)

    monkeypatch.setattr(overlapped, "zip_directory", zip_directory)
    code, out, err = run("pull", "drive:d/set.zip", str(tmp_path / "data"), "-x", "-q")
    assert code == 0, err
    assert tree(tmp_path / "data") == {"set.zip": blob, **members}
    assert seen == [gil.SWITCH]   # followed once, with the GIL handed over often
    assert sys.getswitchinterval() == interval   # and as before after


def test_a_refused_zip_leaves_the_interval_as_it_was(emulator, drive_env, tmp_path, interval):
    blob = a_zip({"../evil.txt": b"x" * 100, "ok.txt": b"y"})
    emulator.add_file("d/bad.zip", blob)
    code, out, err = run("pull", "drive:d/bad.zip", str(tmp_path / "data"), "-x", "-q")
    assert code == 1
    assert "evil.txt" in err.splitlines()[-1]
    assert sys.getswitchinterval() == interval


def test_nested_and_threaded_blocks_restore_once_the_last_ends(interval):
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
            seen.append(sys.getswitchinterval())
    seen.append(sys.getswitchinterval())   # this thread's blocks ended, the other's runs
    leave.set()
    t.join(10)
    assert seen == [gil.SWITCH, gil.SWITCH]
    assert sys.getswitchinterval() == interval


def test_a_block_whose_end_was_skipped_holds_the_interval_only_until_the_next_ends(interval):
    block = gil.sharing()
    block.__enter__()   # ... and a Ctrl-C right at its __exit__: it never runs
    assert sys.getswitchinterval() == gil.SWITCH
    del block
    gc.collect()
    with gil.sharing():
        assert sys.getswitchinterval() == gil.SWITCH
    assert sys.getswitchinterval() == interval


def test_an_interval_set_after_a_skipped_end_is_the_one_put_back(interval):
    block = gil.sharing()
    block.__enter__()
    del block
    gc.collect()
    sys.setswitchinterval(0.004)
    mine = sys.getswitchinterval()
    with gil.sharing():
        assert sys.getswitchinterval() == gil.SWITCH
    assert sys.getswitchinterval() == mine


def test_a_shorter_interval_and_an_error_in_the_block(interval):
    sys.setswitchinterval(0.0002)
    short = sys.getswitchinterval()
    with pytest.raises(ValueError):
        with gil.sharing():
            assert sys.getswitchinterval() == short   # shorter already: kept as it is
            raise ValueError("x")
    assert sys.getswitchinterval() == short
