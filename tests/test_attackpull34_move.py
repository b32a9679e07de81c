"""attackpull34: ``move_staged`` killed (SIGKILL) at each moment, then run again.

A sweep of every few lines (a forked mover killed there; a probe, not kept: about 300
moments each for a rename, a copy to another file system and a duplicate) found one state
left for good: a kill as the copy's lock was let go, after its stamp had moved, leaves the
lock file in the old state folder, which is then never empty: ``old/.drivestage`` (and the
trainer's ``data.root/weights/`` with it) stayed in the dataset's tree for good.
"""
from __future__ import annotations

import fcntl
import os

import drivestage
from drivestage.extract.validation import STATE_DIR

SRC = "drive:Models/w.pth"


def test_a_lock_file_a_killed_move_left_goes_with_the_state_folder(
        emulator, local_state, drive_env, tmp_path):
    data = os.urandom(5000)
    emulator.add_file("Models/w.pth", data)
    old, new = tmp_path / "old", tmp_path / "new"
    drivestage.pull(SRC, str(old), quiet=True, folders=False)
    assert drivestage.move_staged(str(old), str(new), only=[SRC]).moved
    # The state a kill as the lock was let go leaves: the copy and its stamp moved, the
    # lock file still there (and another copy's, whose mover still holds it).
    (old / STATE_DIR).mkdir()
    (old / STATE_DIR / "w.pth.lock").touch()
    held = os.open(old / STATE_DIR / "x.pth.lock", os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(held, fcntl.LOCK_EX)
        drivestage.move_staged(str(old), str(new), only=[SRC])
        assert sorted(os.listdir(old / STATE_DIR)) == ["x.pth.lock"]   # its holder's
    finally:
        os.close(held)

    drivestage.move_staged(str(old), str(new), only=[SRC])

    assert os.listdir(old) == []
    emulator.clear_requests()
    res = drivestage.pull(SRC, str(new), quiet=True, folders=False)
    assert (res.action, res.fetched, len(emulator.requests)) == ("cached", 0, 1)
    assert (new / "w.pth").read_bytes() == data


def test_the_merge_lock_keeps_the_state_folder(emulator, local_state, drive_env, tmp_path):
    """Only the copies' lock files go: the merge lock (an extraction's, never removed while
    it may be waited for) keeps the folder as it is."""
    emulator.add_file("Models/w.pth", b"w" * 100)
    old, new = tmp_path / "old", tmp_path / "new"
    drivestage.pull(SRC, str(old), quiet=True, folders=False)
    (old / STATE_DIR / "merge.flock").touch()
    (old / STATE_DIR / "x.pth.lock").touch()   # a killed pull's, no one holds it

    drivestage.move_staged(str(old), str(new), only=[SRC])

    assert sorted(os.listdir(old / STATE_DIR)) == ["merge.flock", "x.pth.lock"]
    assert (new / "w.pth").read_bytes() == b"w" * 100


def test_an_old_copy_of_another_version_of_the_file_staged_in_new_goes(
        emulator, local_state, drive_env, tmp_path):
    """An older trainer run again after a newer one, the weights replaced on Drive between:
    ``old`` holds a staged copy of the new version, ``new`` one of the old version, both
    drivestage's and unchanged. The old folder's copy was left (`… is there already`) at
    every start, for good: in the dataset's tree, where a new version of its archive
    bringing that path is refused. It goes now, as a duplicate does; the pull in ``new``
    brings Drive's version there."""
    import hashlib

    from drivestage.emulator.revisions import replace_content

    v1, v2 = os.urandom(5000), os.urandom(6000)
    fid = emulator.add_file("Models/w.pth", v1)
    old, new = tmp_path / "old", tmp_path / "new"
    drivestage.pull(SRC, str(old), quiet=True, folders=False)
    assert drivestage.move_staged(str(old), str(new), only=[SRC]).moved
    blob = tmp_path / "blob"
    blob.write_bytes(v2)
    replace_content(emulator.store, fid, str(blob), len(v2), hashlib.md5(v2).hexdigest())
    drivestage.pull(SRC, str(old), quiet=True, folders=False)   # the older trainer's pull

    done = drivestage.move_staged(str(old), str(new), only=[SRC])

    assert (done.dropped, done.left) == ([str(old / "w.pth")], [])
    assert os.listdir(old) == []
    res = drivestage.pull(SRC, str(new), quiet=True, folders=False)
    assert res.action == "update" and (new / "w.pth").read_bytes() == v2
