"""attackb50: a file deleted from a *local* folder while it is pulled (a mounted Drive
folder, a dataset another process prunes) was named as gone "on Drive".

pull50's :func:`drivestage.stage_recheck.gone` names a file the download found missing once
the store says it is gone; its line said "went away on Drive" whatever the store, so a pull
of /data/ds told the user Drive had deleted a file of a local folder no Drive was ever
asked about. ``c.txt`` is removed once ``a.txt`` is staged (the pull's progress callback,
one file at a time, as test_pull50_local_mixed does): the pull fails naming it as gone from
its folder, nothing under its name; the rerun stages what is left.
"""
from __future__ import annotations

import os

import pytest

import drivestage
from drivestage.errors import NotFoundError

from _local_src import old_files, once_staged
from _messages import renders, shown


@renders("went away from its folder while this pull ran")
def test_a_file_deleted_from_a_local_folder_during_its_pull_is_not_said_gone_on_drive(tmp_path):
    src, out = tmp_path / "ds", tmp_path / "out"
    old_files(src, {name: name.encode() * 50 for name in ("a.txt", "b.txt", "c.txt")})
    # b.txt's bytes come once a.txt is staged: c.txt, not opened yet, goes now.
    progress, removed = once_staged(out / "ds" / "a.txt", lambda: os.unlink(src / "c.txt"))

    with pytest.raises(NotFoundError) as caught:
        drivestage.pull(str(src), str(out), jobs=1, progress=progress)
    assert removed, "c.txt was never removed"
    shown("went away from its folder while this pull ran", str(caught.value))
    assert str(caught.value) == (
        f"{src}/c.txt went away from its folder while this pull ran (deleted after the folder "
        "was listed: a run still writing there, its retention removing old checkpoints?), so "
        "it was not staged. Pull again (only what is missing is fetched), or pull a run's "
        "folder once its trainer has stopped")
    assert not (out / "ds" / "c.txt").exists()
    drivestage.pull(str(src), str(out), quiet=True)
    assert sorted(p.name for p in (out / "ds").iterdir() if not p.name.startswith(".")) == [
        "a.txt", "b.txt"]
