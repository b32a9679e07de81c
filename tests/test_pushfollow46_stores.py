"""pushfollow46: both stores' ``upload`` read a link at the file's name only where the
caller says so (``follow``: a link the push's walk let through). Before, each followed
whatever link stood there as the upload began (the Drive store) or as it opened the file
(a directory store, whose plain ``open`` also waited on a FIFO for good): a push read the
target of a link planted after it looked. A FIFO is never waited on."""
from __future__ import annotations

import hashlib
import os

import pytest

from drivestage.errors import BecameOtherError
from test_pushlinks46_stores import target  # noqa: F401 (a fixture: either store)

SECRET = b"root:x:0:0:a file outside SRC\n" * 10


@pytest.fixture
def planted(tmp_path):
    """``(name, kind)`` -> a path in SRC where that stands: a link out, a FIFO."""
    os.makedirs(tmp_path / "run")
    (tmp_path / "secret").write_bytes(SECRET)

    def make(kind: str) -> str:
        path = str(tmp_path / "run" / "epoch_002.pt")
        if kind == "link":
            os.symlink(str(tmp_path / "secret"), path)
        else:
            os.mkfifo(path)
        return path
    return make


@pytest.mark.timeout(60)   # (a FIFO waited on: failed by this bound, not the suite's)
@pytest.mark.parametrize("kind, what", [("link", "a link"),
                                        ("fifo", "a FIFO, socket or device")])
def test_an_upload_refuses_what_is_no_regular_file_at_the_name(target, planted, kind, what):
    store, folder = target
    path = planted(kind)
    with pytest.raises(BecameOtherError) as caught:
        store.upload(path, folder, "epoch_002.pt")
    assert str(caught.value) == (f"{path} became {what} while the push ran (a file when it "
                                 "began); not sent again: push again once it is a file")
    assert [e.name for e in store.list(folder)] == []


def test_a_link_the_caller_follows_is_sent_as_its_target(target, planted):
    store, folder = target
    got = store.upload(planted("link"), folder, "epoch_002.pt", follow=True)
    assert got.md5 == hashlib.md5(SECRET).hexdigest()
    assert [(e.name, e.md5) for e in store.list(folder)] == [("epoch_002.pt", got.md5)]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind", ["link", "fifo"])
def test_a_log_sent_from_a_copy_is_not_copied_through_a_link(planted, kind):
    """A mirror sends a log that kept changing from a private copy at once
    (:mod:`drivestage.snapshots`): the copy read a link planted at its name since the walk,
    and sent the target's bytes from the copy."""
    from drivestage import snapshots

    path = planted(kind)
    sent: list[str] = []
    with pytest.raises(BecameOtherError):
        snapshots.upload(lambda p: sent.append(p), path, copy=True,
                         changing={os.path.abspath(path)})
    assert sent == []
