"""pushlinks46: what a push reads of a link its walk let through, and a directory DEST's
look at a file to copy. The walk gives such a link the path of the file it led to then
(read there, by ``O_NOFOLLOW`` opens: re-pointed since, the link is not read again); a
directory store looked at the name through a link (a dangling one planted there said "does
not exist", where the Drive store says what it became) and hashed its copy's source through
one."""
from __future__ import annotations

import os

import pytest

from drivestage.errors import BecameOtherError
from drivestage.local_tree import walk
from drivestage.localdir import LocalDirStore


def test_the_walk_reads_a_link_in_src_where_it_led(tmp_path):
    src = tmp_path / "run"
    os.makedirs(src / "sub")
    (src / "sub" / "epoch_002.pt").write_bytes(b"x" * 10)
    os.symlink("sub/epoch_002.pt", src / "last.pt")
    files = {lf.rel: lf for lf in walk(str(src)).files}
    assert sorted(files) == ["last.pt", "sub/epoch_002.pt"]
    last = files["last.pt"]
    assert (last.name, last.folder_rel, last.size, last.link) == ("last.pt", "", 10, True)
    assert last.path == str(src / "sub" / "epoch_002.pt")   # never the link's own path
    assert last.named == str(src / "last.pt")                 # (what lines about it name)
    assert files["sub/epoch_002.pt"].path == str(src / "sub" / "epoch_002.pt")


@pytest.fixture(params=["drive", "dir"])
def target(request, tmp_path):
    """(store, folder) of either backend; the Drive one on the emulator."""
    if request.param == "drive":
        store = request.getfixturevalue("store")
        return store, store.make_folders("runs/a")
    os.makedirs(tmp_path / "dest")
    dirstore = LocalDirStore(str(tmp_path / "dest"))
    return dirstore, dirstore.resolve("")


def test_a_dangling_link_at_the_name_is_said_to_be_a_link(target, tmp_path):
    store, folder = target
    os.makedirs(tmp_path / "run")
    path = str(tmp_path / "run" / "epoch_002.pt")
    os.symlink(str(tmp_path / "nowhere"), path)
    with pytest.raises(BecameOtherError) as caught:
        store.upload(path, folder, "epoch_002.pt")
    assert str(caught.value) == (f"{path} became a link while the push ran (a file when it "
                                 "began); not sent again: push again once it is a file")
    assert [e.name for e in store.list(folder)] == []
