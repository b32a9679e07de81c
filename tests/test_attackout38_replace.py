"""attackout38: a plain ``push`` (no --delete) that replaces a changed file uploads the new
copy and then deletes the old one (:mod:`drivestage.old_copies`), for good unless
``--use-trash``. An old ``best.pt`` filed before 2020 in ``Archive`` too was deleted from
``Archive`` as well, permanently: the push was never pointed at ``Archive``. Now the check
before the deletion (one files.get, made already) sees the other folder and leaves the old
copy, in both folders, said in one line; the new copy is in place; exit 0.

Through the real stack (the CLI in-process, PyDrive2, the emulator over HTTP). No sleeps."""
from __future__ import annotations

import hashlib

from _cli import run
from _drive_state import live_md5s
from test_outside38_delete import _src


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def test_the_old_copy_of_a_replaced_file_also_in_another_folder_stays(
        emulator, local_state, drive_env, tmp_path):
    old = emulator.add_file("runs/exp2/best.pt", b"old weights")
    archive = emulator.add_folder("Archive")
    emulator.store.update_meta(old, {}, add_parents=[archive])
    src = _src(tmp_path)
    (src / "exp2" / "best.pt").write_bytes(b"new weights!")

    code, _, err = run("push", str(src), "drive:runs")

    assert code == 0, err
    assert old in emulator.store.files and not emulator.store.get(old)["trashed"], err
    assert live_md5s(emulator, "Archive") == {"best.pt": [_md5(b"old weights")]}, err
    # (the old copy stays beside the new one: two of the name, until the user takes it out)
    assert live_md5s(emulator, "runs/exp2")["best.pt"] == sorted(
        [_md5(b"old weights"), _md5(b"new weights!")]), err
    assert ("WARNING drivestage.drive.store: drive:runs/exp2/best.pt was not deleted: it is "
            "also in another folder (an item with two parents, kept from before 2020), and its "
            "removal would take it from there too. Take it out of drive:runs/exp2 on Drive (it "
            "stays in its other folder) to let it go") in err.splitlines(), err


def test_the_next_push_leaves_it_again_and_says_so(emulator, local_state, drive_env,
                                                   tmp_path):
    """The next push finds two ``best.pt``; it keeps the one equal to the local file and
    would remove the other: left again, said again; ``Archive`` still whole."""
    old = emulator.add_file("runs/exp2/best.pt", b"old weights")
    emulator.store.update_meta(old, {}, add_parents=[emulator.add_folder("Archive")])
    src = _src(tmp_path)
    (src / "exp2" / "best.pt").write_bytes(b"new weights!")
    assert run("push", str(src), "drive:runs")[0] == 0

    code, _, err = run("push", str(src), "drive:runs")

    assert code == 0, err
    assert live_md5s(emulator, "Archive") == {"best.pt": [_md5(b"old weights")]}, err
    assert "drive:runs/exp2/best.pt was not deleted: it is also in another folder" in err, err
