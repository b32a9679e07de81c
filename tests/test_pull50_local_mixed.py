"""pull50: a pull of a local folder (a mounted Drive folder, a dataset another process
updates) that changes while it is pulled is looked at again, as a Drive folder's is
(attack49's :mod:`drivestage.stage_recheck`, which left local folders out).

``a.txt`` is rewritten once it is staged, while ``b.txt`` is copied (the pull's progress
callback, one file at a time): on main the pull ended without an error, ``a.txt`` staged as
it was beside a folder that holds another one. Now it fails naming it; the rerun stages the
new one.
"""
from __future__ import annotations

import pytest

import drivestage
from drivestage.errors import RemoteChangedError

from _local_src import old_files, once_staged
from _messages import renders, shown


@renders("changed in its folder while this pull ran")
def test_a_local_folder_changed_during_its_pull_is_not_left_mixed_in_silence(tmp_path):
    src, out = tmp_path / "ds", tmp_path / "out"
    old_files(src, {"a.txt": b"a1" * 50, "b.txt": b"b1" * 50})
    # b.txt's bytes come once a.txt is staged: a.txt changes now, after its copy.
    progress, changed = once_staged(out / "ds" / "a.txt",
                                    lambda: (src / "a.txt").write_bytes(b"a2" * 50))

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
