"""``push --delete`` into a local folder that a pull staged into too (attacksync34)."""
from __future__ import annotations

import os

from _cli import run


def test_delete_into_a_local_dest_leaves_drivestage_s_own_state_folder(emulator, drive_env,
                                                                       local_state, tmp_path):
    """``pull drive:data/labels.csv /nas/exp`` staged a file there, its stamp in
    ``/nas/exp/.drivestage``; then ``push ./exp /nas/exp --delete`` moved that state folder
    to the trash as a folder SRC lacks, though a push never sends one (a reserved name: a
    push leaves it out, a pull refuses it): the pull's stamps, and the merge lock a pull
    into the folder may hold at that moment. Reserved names are left, as the filters' are."""
    emulator.add_file("data/labels.csv", b"a,b\n")
    dest = tmp_path / "nas" / "exp"
    code, _, err = run("pull", "drive:data/labels.csv", str(dest))
    assert code == 0, err
    state = sorted(os.listdir(dest / ".drivestage"))
    assert state
    src = tmp_path / "exp"
    src.mkdir()
    for name in "abcdefgh":
        (src / f"{name}.txt").write_text(name)

    code, _, err = run("push", str(src), str(dest), "--delete")

    assert code == 0, err
    assert sorted(os.listdir(dest / ".drivestage")) == state
    assert not (dest / "labels.csv").exists()   # (not in SRC: --delete's, as asked)
