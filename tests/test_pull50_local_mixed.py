"""pull50: a pull of a local folder (a mounted Drive folder, a dataset another process
updates) that changes while it is pulled is looked at again, as a Drive folder's is
(attack49's :mod:`drivestage.stage_recheck`, which left local folders out).

``a.txt`` is rewritten once it is staged, while ``b.txt`` is copied (the pull's progress
callback, one file at a time): on main the pull ended without an error, ``a.txt`` staged as
it was beside a folder that holds another one. Now it fails naming it; the rerun stages the
new one.
"""
from __future__ import annotations

import os

import pytest

import drivestage
from drivestage.errors import RemoteChangedError

from _messages import renders, shown


@renders("changed in its folder while this pull ran")
def test_a_local_folder_changed_during_its_pull_is_not_left_mixed_in_silence(tmp_path):
    src = tmp_path / "ds"
    src.mkdir()
    (src / "a.txt").write_bytes(b"a1" * 50)
    (src / "b.txt").write_bytes(b"b1" * 50)
    for name in ("a.txt", "b.txt"):
        os.utime(src / name, (1e9, 1e9))   # (written long before the pull: no racy hash)
    out = tmp_path / "out"
    changed: list = []

    def progress(label, total, initial):
        def arrived(n: int) -> None:
            # b.txt's bytes come once a.txt is staged: a.txt changes now, after its copy.
            if not changed and (out / "ds" / "a.txt").exists():
                changed.append(n)
                (src / "a.txt").write_bytes(b"a2" * 50)
        return arrived

    with pytest.raises(RemoteChangedError) as caught:
        drivestage.pull(str(src), str(out), jobs=1, progress=progress)
    assert changed, "a.txt changed before b.txt came"
    shown("changed in its folder while this pull ran", str(caught.value))
    assert str(caught.value) == (
        f"{src}/a.txt changed in its folder while this pull ran (a new version since the "
        "folder was listed): what it staged mixes files of before and after that change. Run "
        "again to stage the new version (only what changed is fetched)")
    assert (out / "ds" / "a.txt").read_bytes() == b"a1" * 50
    drivestage.pull(str(src), str(out), quiet=True)
    assert (out / "ds" / "a.txt").read_bytes() == b"a2" * 50
