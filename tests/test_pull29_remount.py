"""Two archives of a folder pull that share a member path, on a Drive mount seen anew
(pull29): the one merged last holds the path, and the other's rerun takes it for in place
when it is what that one extracted. Judged by its record's inode, which a mount seen anew
shows new, the earlier archive's rerun wrote its own bytes there and the later one's wrote
them back, through the mount, in every new session. Modelled with fuse28's bindfs mount."""
from __future__ import annotations

import io
import zipfile

import pytest
from test_fuse28_remount import _inodes, _pull, drive  # noqa: F401  (a fixture)

from _archives import tree


def _zip(members: dict[str, bytes], when: tuple[int, ...]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name, when), data)
    return buf.getvalue()


@pytest.mark.parametrize("drive", [[]], indirect=True, ids=["bindfs"])  # (ctime: no matter)
def test_a_shared_member_in_a_new_session_is_written_by_neither(drive, emulator, drive_env):
    a = _zip({"ds/x": b"aaaa", "ds/a": b"a"}, (2024, 1, 2, 3, 4, 6))
    b = _zip({"ds/x": b"bbbb", "ds/b": b"b"}, (2024, 5, 2, 3, 4, 6))   # other member times
    emulator.add_file("src/a.zip", a)
    emulator.add_file("src/b.zip", b)
    dest = drive.point / "data"
    assert _pull("drive:src", str(dest), "-x")["actions"] == {"download": 2}
    drive.new_session()
    before = _inodes(dest)
    emulator.clear_requests()

    again = _pull("drive:src", str(dest), "-x")

    assert again["actions"] == {"cached": 2}
    assert dict(emulator.api_calls()) == {"files.list": 1}   # (one: rerun37)
    assert _inodes(dest) == before          # nothing written
    assert tree(dest / "src") == {"a.zip": a, "b.zip": b, "ds/x": b"bbbb", "ds/a": b"a",
                                  "ds/b": b"b"}
