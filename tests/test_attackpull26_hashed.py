"""attackpull26: the one read that hashes and extracts a local archive
(:mod:`drivestage.hashed_pass`), attacked in what it keeps waiting and in its Ctrl-Cs.

1. A zip of many tiny (or empty) members: the read handed every member on to the writers
   at once, bounded only by bytes (16 MiB), so a DEST slower than the read kept every
   member of the archive waiting in memory (864 bytes each: 0.8 GB for a million empty
   members, besides the member list).
2. A second Ctrl-C at the call of the reader's close() (the first one raised while the
   read was ahead): the reading thread was never told to stop and waited for room in its
   queue for good, holding its blocks (and the pull's descriptor number, closed since).
"""
from __future__ import annotations

import io
import os
import signal
import sys
import threading
import zipfile

import pytest

from test_attack22_stage import _tree

import drivestage.hashed_pass as hashed_pass
from drivestage.stage import pull


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name, (2020, 1, 1, 0, 0, 0)), data)
    return buf.getvalue()


def _original(tmp_path, data: bytes):
    (tmp_path / "input").mkdir()
    archive = tmp_path / "input" / "set.zip"
    archive.write_bytes(data)
    return archive


def test_a_zip_of_many_empty_members_keeps_a_bounded_number_waiting(local_state, tmp_path,
                                                                   monkeypatch):
    """3,000 empty members and a DEST that creates nothing until the read waits for it (or
    has handed every member on): at most ``_PENDING`` members wait for a writer."""
    members = {f"m{i:04d}": b"" for i in range(3000)}
    archive = _original(tmp_path, _zip(members))
    dest_goes = threading.Event()
    real_member, real_close, real_create = (hashed_pass._Writers.member,
                                            hashed_pass._Writers.close, hashed_pass.create)
    most = [0]
    cap = getattr(hashed_pass, "_PENDING", None)

    def member(self, e):
        most[0] = max(most[0], len(self.todo))
        if cap is not None and len(self.todo) >= cap:
            dest_goes.set()  # the read is about to wait for the writers: DEST goes on
        return real_member(self, e)

    def close(self, stop=False):
        dest_goes.set()  # every member handed on
        return real_close(self, stop)

    def create(root, e):  # a DEST slower than the read
        assert dest_goes.wait(30)
        return real_create(root, e)

    monkeypatch.setattr(hashed_pass._Writers, "member", member)
    monkeypatch.setattr(hashed_pass._Writers, "close", close)
    monkeypatch.setattr(hashed_pass, "create", create)
    result = pull(str(archive), str(tmp_path / "d"), extract=True, quiet=True)
    assert result.action == "extract"
    assert _tree(tmp_path / "d") == members
    assert cap is not None and cap <= 4096 and most[0] <= cap, (most[0], cap)


def test_a_second_ctrl_c_at_the_reader_s_close_still_stops_the_read(local_state, tmp_path,
                                                                   monkeypatch):
    monkeypatch.setattr(hashed_pass, "CHUNK", 64 << 10)
    members = {f"m{i}": os.urandom(256 << 10) for i in range(8)}   # 32 blocks
    archive = _original(tmp_path, _zip(members))
    before = set(threading.enumerate())
    full = threading.Event()
    real_block = hashed_pass._Reader._block

    def block(self, offset):
        if offset >= hashed_pass._AHEAD * hashed_pass.CHUNK:
            full.set()  # its queue is full: the thread waits for room after this block
        return real_block(self, offset)

    cuts = []

    def zip_directory(*args):
        assert full.wait(10)
        cuts.append("zip_directory")
        raise KeyboardInterrupt  # the first Ctrl-C, the read well ahead

    def trace(frame, event, arg):
        if event == "call" and frame.f_code.co_name == "close" and cuts and \
                type(frame.f_locals.get("self")).__name__ == "_Reader":
            sys.settrace(None)
            cuts.append("close")  # the second one, at the call of the reader's close()
            handler = signal.getsignal(signal.SIGINT)
            if callable(handler) and handler is not signal.default_int_handler:
                handler(signal.SIGINT, frame)  # what a real one does then (deferred())
                return None
            raise KeyboardInterrupt
        return None

    monkeypatch.setattr(hashed_pass, "zip_directory", zip_directory)
    monkeypatch.setattr(hashed_pass._Reader, "_block", block)
    sys.settrace(trace)
    try:
        with pytest.raises(KeyboardInterrupt):
            pull(str(archive), str(tmp_path / "d"), extract=True, quiet=True)
    finally:
        sys.settrace(None)
    assert cuts == ["zip_directory", "close"]
    left = [t for t in set(threading.enumerate()) - before if t.name == "drivestage-hash"]
    for t in left:
        t.join(10)
    assert not [t for t in left if t.is_alive()], "the reading thread waits for good"
    assert os.listdir(tmp_path / "d") == [".drivestage"]
    monkeypatch.undo()
    monkeypatch.setenv("DRIVESTAGE_STATE_DIR", str(tmp_path / "state"))
    pull(str(archive), str(tmp_path / "d"), extract=True, quiet=True)
    assert _tree(tmp_path / "d") == members
