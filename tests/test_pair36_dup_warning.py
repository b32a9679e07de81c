"""push's duplicate warning in a local DEST where the file updated in place was a copy kept
aside (``.drivestage-held.<random>.<name>``) listed under the name (pair36; found by
attacknew35): it said ``top.txt: 1 files had this name (ids ); kept …``."""
from __future__ import annotations

import os

from _cli import run


def test_a_plain_file_beside_a_newer_copy_kept_aside_is_said_as_two_copies(local_state,
                                                                            tmp_path):
    """``push s d`` with a newer copy at ``d/.drivestage-held.<12 hex>.top.txt`` (planted,
    or any newer copy listed under the name): the push updates that copy in place, the
    directory store writing it at ``top.txt`` and removing the copy it replaced (its other
    id). The warning counts and names it."""
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
    lines = [line for line in err.splitlines() if "had this name" in line]
    assert lines == [
        f"WARNING drivestage.old_copies: top.txt: 2 files had this name (ids {aside.relative_to(tmp_path)}); kept "
        f"the one just uploaded ({(dest / 'top.txt').relative_to(tmp_path)}) and removed the "
        "others"], err
    assert sorted(os.listdir(dest)) == ["top.txt"]
    assert (dest / "top.txt").read_bytes() == b"mine\n"
    # The next push finds one copy: nothing to say.
    code, _out, err = run("push", str(src), str(dest))
    assert code == 0, err
    assert "had this name" not in err
