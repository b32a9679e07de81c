"""Two archives of one Drive folder that share a member path with other bytes (`a.zip` and
`b.zip` both hold `ds/x`), pulled with `pull drive:src DEST -x`: the one merged last holds
the path, as `unzip a.zip; unzip b.zip` leaves it. Each archive judged "staged" by its own
records alone, and the other's `ds/x` was never its own: every rerun extracted one of them
again and the path's bytes went back and forth, never "already staged" (attackpull26). A
member that is exactly what another archive of the same Drive folder extracted there is in
place now. Two files of one name from two sources (a Drive file and a local one) are not of
one folder: a pull of either still puts its own members back (test_attack22_stage)."""
from __future__ import annotations

import io
import os
import zipfile

from test_attack22_stage import _tree
from test_messages_walk20 import _drivestage

A = {"ds/x": b"aaaa", "ds/a": b"a"}
B = {"ds/x": b"bb", "ds/b": b"b"}


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for path, data in members.items():
            zf.writestr(zipfile.ZipInfo(path, (2020, 1, 1, 0, 0, 0)), data)
    return buf.getvalue()


def _members(dest) -> dict:
    """The members in DEST/src with their inode (a member written again has a new one)."""
    out = {}
    for rel, data in _tree(dest).items():
        if rel.startswith("src/ds/"):
            out[rel] = (data, os.lstat(os.path.join(dest, rel)).st_ino)
    return out


def _staged(dest) -> dict:
    """The first pull ends well (with both archives merging at once, it could say a member
    changed while it was extracted: now the two merge in order, test_pullorder27_overlap)."""
    r = _drivestage("pull", "drive:src", str(dest), "-x")
    assert r.exit_code == 0, r.output
    return _members(dest)


def test_two_archives_sharing_a_path_settle_and_a_rerun_is_a_no_op(emulator, drive_env,
                                                                    local_state, tmp_path):
    emulator.add_file("src/a.zip", _zip(A))
    emulator.add_file("src/b.zip", _zip(B))
    dest = tmp_path / "d"
    staged = _staged(dest)
    assert {k: v[0] for k, v in staged.items()} == \
        {"src/ds/a": b"a", "src/ds/b": b"b", "src/ds/x": b"bb"}   # b.zip merged last
    for _ in range(3):
        r = _drivestage("pull", "drive:src", str(dest), "-x")
        assert r.exit_code == 0, r.output
        assert "2 files (2 already staged)" in r.output, r.output
        assert _members(dest) == staged      # nothing written again, nothing swapped


def test_a_shared_path_deleted_by_hand_is_put_back_then_staged(emulator, drive_env,
                                                                local_state, tmp_path):
    emulator.add_file("src/a.zip", _zip(A))
    emulator.add_file("src/b.zip", _zip(B))
    dest = tmp_path / "d"
    _staged(dest)
    os.unlink(dest / "src" / "ds" / "x")
    r = _drivestage("pull", "drive:src", str(dest), "-x")
    assert r.exit_code == 0, r.output
    back = _members(dest)
    assert back["src/ds/x"][0] in (b"aaaa", b"bb")
    r = _drivestage("pull", "drive:src", str(dest), "-x")
    assert r.exit_code == 0 and "2 files (2 already staged)" in r.output, r.output
    assert _members(dest) == back


def test_a_folder_of_one_file_says_one_file(emulator, drive_env, local_state, tmp_path):
    """The folder pull's summary counted `1 files` (attackz26)."""
    emulator.add_file("src/a.zip", _zip(A))
    r = _drivestage("pull", "drive:src", str(tmp_path / "d"), "-x")
    assert r.exit_code == 0, r.output
    assert ": 1 file (1 downloaded), " in r.output, r.output
