"""attackpull34: a tar whose member of a name is replaced by a link of that name later on.

``tar --append`` (``-r``) of a file that became a link, or of a hard link, writes the name
again; the last member of a name wins (tar's rule, which drivestage follows). Pulled from
Drive such a tar was extracted (the follower failed, the second read wrote the final list),
but a local one (a Kaggle input, a mount: extracted as it is read) failed with `cannot stage
… File exists (x)`, naming the link's target: the earlier member's file was in the
temporary folder where the link was to go.
"""
from __future__ import annotations

import io
import os
import tarfile

import pytest

from _cli import run

FILE, LINK, HARD, DIR = "file", tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.DIRTYPE


def _tar(members: list[tuple]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, kind, value in members:
            info = tarfile.TarInfo(name)
            info.mtime = 1_700_000_000
            if kind == FILE:
                info.size = len(value)
                tf.addfile(info, io.BytesIO(value))
            else:
                info.type, info.mode = kind, 0o755
                info.linkname = value
                tf.addfile(info)
    return buf.getvalue()


def _tree(root) -> dict:
    out = {}
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d != ".drivestage"]
        for name in files + [d for d in dirs if os.path.islink(os.path.join(folder, d))]:
            path = os.path.join(folder, name)
            out[os.path.relpath(path, root)] = "-> " + os.readlink(path) \
                if os.path.islink(path) else open(path, "rb").read()
    return out


@pytest.mark.parametrize("members, want", [
    ([("l", FILE, b"data"), ("x", FILE, b"x"), ("l", LINK, "x")],
     {"l": "-> x", "x": b"x"}),
    ([("f", FILE, b"1"), ("g", FILE, b"2"), ("f", HARD, "g")],
     {"f": b"2", "g": b"2"}),
    ([("d", DIR, ""), ("g", FILE, b"2"), ("d", LINK, "g")],
     {"d": "-> g", "g": b"2"}),
], ids=["file-then-symlink", "file-then-hard-link", "folder-then-symlink"])
def test_a_local_tar_whose_member_becomes_a_link_is_extracted(local_state, tmp_path, members,
                                                              want):
    archive = tmp_path / "in" / "set.tar"
    archive.parent.mkdir()
    archive.write_bytes(_tar(members))
    dest = tmp_path / "d"

    code, _, err = run("pull", str(archive), str(dest), "-x", "-q")

    assert code == 0, err
    assert _tree(dest) == want
    if "g" in want and "f" in want:
        assert os.stat(dest / "f").st_ino == os.stat(dest / "g").st_ino
    code, out, err = run("pull", str(archive), str(dest), "-x", "-q", "--json")
    assert code == 0 and '"action": "cached"' in out, err


def test_a_hard_link_whose_target_a_later_member_replaces_is_refused_as_such(local_state,
                                                                            tmp_path):
    """``tar -u`` of a file a hard link points to: the link's file is the earlier member,
    which drivestage does not keep. The refusal said the target was "not a file earlier in
    the archive", which it is; it says what happened now."""
    archive = tmp_path / "in" / "set.tar"
    archive.parent.mkdir()
    archive.write_bytes(_tar([("f", FILE, b"1"), ("h", HARD, "f"), ("f", FILE, b"22")]))

    code, _, err = run("pull", str(archive), str(tmp_path / "d"), "-x", "-q")

    assert code == 1
    assert err.splitlines()[-1] == (
        "Error: hard link member 'h' points to 'f', which a later member of that name "
        "replaces (a tar appended to: tar -r or -u); refusing the archive: make it again "
        "(tar -c) and upload it")
