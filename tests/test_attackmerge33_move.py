"""attackmerge33: :func:`drivestage.move_staged` attacked.

- A new folder that is the old one (a link to it, a bind mount): the lock of each copy,
  taken twice by one process, waited for itself for ever; past it, each copy was its own
  "duplicate" and removed.
- Another file system (a folder linked elsewhere): the rename's EXDEV left the copy in the
  old folder, where a new version of the dataset's archive bringing its path is refused.
- A kill between a copy's rename and its stamp's: the old stamp stayed for good, and with it
  the old folder's state folder (and the trainer's ``weights/`` in the dataset's tree).
"""
from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

import drivestage
from drivestage import stamps
from drivestage.stage_move import Moved

SRC = "drive:Models/w.pth"


def _pulled(emulator, folder: Path) -> bytes:
    """The weights on Drive, pulled into ``folder`` as an older trainer did."""
    data = os.urandom(20_000)
    emulator.add_file("Models/w.pth", data)
    drivestage.pull(SRC, str(folder), quiet=True, folders=False)
    return data


def _cached_in(emulator, folder: Path) -> None:
    """A pull into ``folder`` finds its copy staged: one call, no bytes."""
    emulator.clear_requests()
    res = drivestage.pull(SRC, str(folder), quiet=True, folders=False)
    assert res.action == "cached" and res.fetched == 0
    assert len(emulator.requests) == 1


def test_a_new_folder_that_is_the_old_one_through_a_link_moves_nothing(
        emulator, local_state, drive_env, tmp_path):
    old, new = tmp_path / "old", tmp_path / "new"
    data = _pulled(emulator, old)
    new.symlink_to(old)
    done: list[Moved] = []
    # (A thread, so that the hang it was is a failure here, not a stuck run.)
    worker = threading.Thread(target=lambda: done.append(
        drivestage.move_staged(str(old), str(new), only=[SRC])), daemon=True)
    worker.start()
    worker.join(60)
    assert done == [Moved()]
    assert (old / "w.pth").read_bytes() == data
    _cached_in(emulator, old)


def test_a_new_folder_on_another_file_system_gets_the_copy_and_the_old_one_goes(
        emulator, local_state, drive_env, tmp_path):
    import tempfile

    old = tmp_path / "old"
    data = _pulled(emulator, old)
    with tempfile.TemporaryDirectory(dir="/var/tmp") as elsewhere:
        if os.stat(elsewhere).st_dev == os.stat(tmp_path).st_dev:
            pytest.skip("the tests' folder and /var/tmp are on one file system")
        new = tmp_path / "new"
        new.symlink_to(elsewhere)

        done = drivestage.move_staged(str(old), str(new), only=[SRC])

        assert done.moved == [(str(old / "w.pth"), str(new / "w.pth"))]
        assert done.left == []
        assert (new / "w.pth").read_bytes() == data
        assert sorted(os.listdir(old)) == []       # the copy and its state folder gone
        _cached_in(emulator, new)


def test_a_move_killed_before_its_stamp_moved_leaves_no_stamp_behind(
        emulator, local_state, drive_env, tmp_path):
    """The state a SIGKILL right after the rename leaves: the copy in ``new``, its stamp
    still in ``old``. The next move drops that stamp (``old`` is left empty); the pull into
    ``new`` verifies the copy there (no download) and finds it staged after."""
    old, new = tmp_path / "old", tmp_path / "new"
    data = _pulled(emulator, old)
    new.mkdir()
    os.rename(old / "w.pth", new / "w.pth")          # killed here

    done = drivestage.move_staged(str(old), str(new), only=[SRC])

    assert done == Moved()
    assert os.listdir(old) == []
    res = drivestage.pull(SRC, str(new), quiet=True, folders=False)
    assert res.fetched == 0 and (new / "w.pth").read_bytes() == data
    assert [s["file"] for s in stamps.every(str(new))] == ["w.pth"]
    _cached_in(emulator, new)


@pytest.mark.parametrize("beside", [False, True], ids=["moved", "duplicate"])
def test_a_copy_written_over_while_it_is_checked_stays_with_the_new_bytes(
        emulator, local_state, drive_env, tmp_path, monkeypatch, beside):
    """``cp mine.pth old/w.pth`` (written in place) while the move hashes the copy: the
    duplicate of a staged copy in ``new`` was removed, the user's new bytes with it; or the
    file was moved and stamped as the copy checked. It stays now, with its new bytes."""
    import drivestage.stage_move as stage_move

    old, new = tmp_path / "old", tmp_path / "new"
    data = _pulled(emulator, old)
    if beside:
        drivestage.pull(SRC, str(new), quiet=True, folders=False)
    mine = os.urandom(len(data))
    real, calls = stage_move._digest, []

    def digest_then_write(fd: int, algo: str) -> str:   # (an interleaving hook)
        calls.append(fd)
        got = real(fd, algo)
        if len(calls) == 1:    # the old copy's, just read: now the user's cp writes over it
            with open(old / "w.pth", "r+b") as f:
                f.write(mine)
        return got

    monkeypatch.setattr(stage_move, "_digest", digest_then_write)
    done = drivestage.move_staged(str(old), str(new), only=[SRC])

    assert done.left == [(str(old / "w.pth"), "it changed while it was moved")]
    assert (done.moved, done.dropped) == ([], [])
    assert (old / "w.pth").read_bytes() == mine
    assert (new / "w.pth").read_bytes() == data if beside else not (new / "w.pth").exists()
