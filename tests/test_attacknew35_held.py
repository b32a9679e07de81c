"""attacknew35: a local DEST's file listed under one name twice, one of them a copy kept
aside (``.drivestage-held.<random>.<name>``, :mod:`drivestage.local_held`), the newer one.
A push updates the file in place there (no checkpoint: nothing to keep aside), and the store
removes the copy it replaced under its other id; the warning said ``top.txt: 1 files had
this name (ids ); kept the one just uploaded …``. It names both copies now."""
from __future__ import annotations

import os

from _cli import run


def test_a_plain_file_beside_a_newer_copy_kept_aside_is_said_as_two_copies(local_state,
                                                                            tmp_path):
    src, dest = tmp_path / "s", tmp_path / "d"
    src.mkdir()
    (src / "top.txt").write_bytes(b"mine\n")
    code, _out, err = run("push", str(src), str(dest))
    assert code == 0, err
    aside = dest / ".drivestage-held.0123456789ab.top.txt"
    aside.write_bytes(b"a copy\n")
    st = os.stat(dest / "top.txt")
    os.utime(aside, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))   # the newer one

    code, _out, err = run("push", str(src), str(dest))

    assert code == 0, err
    assert (f"top.txt: 2 files had this name (ids {aside.relative_to(tmp_path)}); kept the "
            f"one just uploaded ({(dest / 'top.txt').relative_to(tmp_path)}) and removed the "
            "others") in err
    assert sorted(os.listdir(dest)) == ["top.txt"]
    assert (dest / "top.txt").read_bytes() == b"mine\n"


def test_a_copy_kept_aside_pulled_by_its_path_is_named_for_what_it_is(local_state, tmp_path):
    """``pull /nas/run/.drivestage-held.<random>.last.pt ./x`` (the name ``ls -a`` shows
    after a killed push): it said ``… rename that item on Drive`` of a local folder's file,
    and not what the file is."""
    dest = tmp_path / "nas"
    dest.mkdir()
    aside = dest / ".drivestage-held.0123456789ab.last.pt"
    aside.write_bytes(b"old checkpoint")

    code, out, err = run("pull", str(aside), str(tmp_path / "x"))

    assert code == 2, err
    assert out == ""
    assert err == (f"Error: {aside}: .drivestage-held.0123456789ab.last.pt is an old copy of "
                   "last.pt that a push into that local folder keeps aside until the new one "
                   "is verified (then removed), a name drivestage keeps for itself; pull "
                   "last.pt, or copy this one with cp\n")
    assert not (tmp_path / "x").exists()
