"""Two pushes at once through one store (two Mirrors or CheckpointSyncs given one `store=`,
into two folders). Each push chooses the ids of its new files and records them before any
create (drivestage.drive.ids); the store kept one pass's ids at a time, so the second push's
choice wiped the first's: its later files were created without their recorded id, and a
create of one cut then (its answer lost, the process killed) was made a second time by the
rerun, the record naming an id Drive never used."""
from __future__ import annotations

import hashlib
import os
import threading

import pytest

from _proxy import Proxy, Reply
from _signal_env import _fast  # noqa: F401  (an autouse fixture)


def _cut():
    """An answer's body cut before its first byte."""
    raise ConnectionResetError("cut")
    yield b""


def _named(emu, title):
    return [f for f in emu.files() if f["title"] == title and not f["labels"]["trashed"]]


def test_two_pushes_through_one_store_keep_each_others_ids(emulator, local_state):
    from drivestage.drive import connect
    from drivestage.errors import DriveStageError
    from drivestage.upload_tree import push

    src_a, src_b = local_state / "a", local_state / "b"
    src_a.mkdir()
    src_b.mkdir()
    (src_a / "a1.bin").write_bytes(os.urandom(3000))
    want = os.urandom(4000)
    (src_a / "a2.bin").write_bytes(want)
    (src_b / "b.bin").write_bytes(os.urandom(2000))
    emulator.add_folder("runs/a")
    emulator.add_folder("runs/b")
    emulator.faults.lag_listing(created=5, titles=r"^a2\.bin$")
    errors: list = []
    with Proxy(emulator.url) as proxy:
        store = connect(api_root=proxy.url, token="test-token")
        store.set_retries(1)   # the answer lost, no retry: as a kill leaves it

        def other() -> None:
            try:
                push(str(src_b), (store, "runs/b"), jobs=1)
            except Exception as exc:  # reported below
                errors.append(exc)
        began: list = []

        def at_a1(status: int, headers: dict, body: bytes) -> Reply:
            # A's first create: A has chosen and recorded its ids; B runs now, whole.
            if not began:
                began.append(threading.Thread(target=other))
                began[0].start()
                began[0].join(60)
            return Reply(status, headers, [body])
        proxy.on("POST", r"^/upload/", at_a1, times=1)
        puts = [0]

        def a2_answer_lost(status: int, headers: dict, body: bytes) -> Reply:
            # B's PUT, then a1's, then a2's: Drive makes a2, and its answer is cut (one
            # chunk: no session is kept; one attempt: as a kill leaves it).
            puts[0] += 1
            if puts[0] == 3:
                return Reply(status, headers, _cut())
            return Reply(status, headers, [body])
        proxy.on("PUT", r"upload_id=", a2_answer_lost)
        with pytest.raises(DriveStageError):
            push(str(src_a), (store, "runs/a"), jobs=1)
    assert not errors, errors
    made = _named(emulator, "a2.bin")
    assert [f["md5Checksum"] for f in made] == [hashlib.md5(want).hexdigest()]  # Drive made it
    assert emulator.store.generated.get(made[0]["id"]) is True   # with the id recorded for it
    # The rerun (another process) at once: Drive's listing does not show a2.bin yet.
    push(str(src_a), (connect(api_root=emulator.url, token="test-token"), "runs/a"), jobs=1)
    assert [f["md5Checksum"] for f in _named(emulator, "a2.bin")] == \
        [hashlib.md5(want).hexdigest()]
    assert len(_named(emulator, "b.bin")) == len(_named(emulator, "a1.bin")) == 1
