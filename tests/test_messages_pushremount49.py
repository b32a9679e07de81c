"""The lines of a path push could not read (pushread48) and of one remembered so that reads
empty now (pushremount49), as docs/troubleshooting.md quotes them."""
from __future__ import annotations

import pytest

from _cli import run
from _drivemount import _mounted
from _messages import error_line, renders, shown
from test_pushread48_unread import live

UNREAD = ("could not read … (…): not sent, and nothing at … on Drive is removed or replaced "
          "this time")
END = "of SRC could not be read (the line … above …): everything else was pushed"
SRC_UNREAD = "could not read SRC … nothing was pushed"
AGAIN = "reads as an empty folder where the last push could not read it"
UNKNOWN = "is not known to the next process"


@pytest.fixture(autouse=True)
def _a_new_process(monkeypatch):
    from drivestage import unread, unread_memory

    monkeypatch.setattr(unread_memory, "_here", {})
    monkeypatch.setattr(unread, "_SAID", {})


@renders(UNREAD, END, AGAIN, UNKNOWN)
@pytest.mark.timeout(60)
def test_a_mount_in_src_stopped_then_unmounted(emulator, drive_env, local_state, tmp_path):
    for mount in _mounted(tmp_path / "src" / "mnt", writable=True):
        (tmp_path / "src" / "a.txt").write_bytes(b"a")
        emulator.add_file("runs/x/mnt/m.txt", b"m")
        (tmp_path / "state" / "unread.json").mkdir(parents=True)   # (cannot be written)
        mount.disconnect()
        code, _out, err = run("push", str(tmp_path / "src"), "drive:runs/x", "--delete")
        assert code == 1, err
        shown(UNREAD, err)
        shown(END, error_line(err))
        shown(UNKNOWN, err)
        mount.stop()
        code, _out, err = run("push", str(tmp_path / "src"), "drive:runs/x", "--delete")
        assert code == 1, err
        shown(AGAIN, err)
        assert live(emulator) == {"a.txt": b"a", "mnt/m.txt": b"m"}


@renders(SRC_UNREAD, AGAIN)
@pytest.mark.timeout(60)
def test_src_a_mount_stopped_then_unmounted(emulator, drive_env, local_state, tmp_path):
    for mount in _mounted(tmp_path / "src", writable=True):
        emulator.add_file("runs/x/epoch_001.pt", b"one")
        mount.disconnect()
        code, _out, err = run("push", str(tmp_path / "src"), "drive:runs/x", "--delete")
        assert code == 1, err
        shown(SRC_UNREAD, error_line(err))
        mount.stop()
        code, _out, err = run("push", str(tmp_path / "src"), "drive:runs/x", "--delete")
        assert code == 1, err
        shown(AGAIN, error_line(err))
        assert live(emulator) == {"epoch_001.pt": b"one"}
        code, _out, err = run("push", str(tmp_path / "src"), "drive:runs/x", "--delete",
                              "--emptied", str(tmp_path / "src"))   # (emptied on purpose)
        assert code == 0 and live(emulator) == {}, err
