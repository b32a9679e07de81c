"""fidelity34: a resumable upload that completes may be answered "201 Created".

Drive's upload guide says a complete upload is answered "200 OK or 201 Created" with the
file, on its last chunk and on a status query (an empty PUT, ``Content-Range: bytes */N``)
after it; the emulator answered 200 only. ``emulator.upload_created_status = 201`` answers
the other, for a session that created its file. drivestage must take either as the end:
one copy, verified, no byte sent again (real PyDrive2/googleapiclient over HTTP, the
answers gzipped as Drive sends them: ``emulator.gzip_answers``).
"""
from __future__ import annotations

import hashlib
import os

import pytest

from _envs import env  # noqa: F401  (a fixture)
from drivestage.drive import connect
from drivestage.errors import RemoteError

KiB = 1024
SIZE = 2 * 256 * KiB + 100   # three chunks of 256 KiB: a session record is kept


def _puts(emulator) -> list:
    return [r for r in emulator.requests if r.method == "PUT" and "upload_id" in r.query]


def _copies(emulator) -> list:
    return [f for f in emulator.files() if f["title"] == "epoch_001.pt"
            and not f["labels"]["trashed"]]


def _upload(emulator, src, attempts=None, lose_last_answer=False):
    """``lose_last_answer``: the last chunk's answer lost after Drive kept it (the rule is
    set once the first two chunks were answered, from the upload's progress)."""
    sent = [0]

    def progress(n: int) -> None:
        sent[0] += n
        if lose_last_answer and sent[0] == 2 * 256 * KiB:
            emulator.faults.drop("PUT", "upload_id", direction="response", times=1)

    store = connect(api_root=emulator.url, token="test-token")
    store.set_retries(attempts)
    return store.upload(str(src), store.resolve("Models"), "epoch_001.pt",
                        chunk_size=256 * KiB, progress=progress)


@pytest.fixture
def src(emulator, tmp_path):
    emulator.add_folder("Models")
    emulator.upload_created_status = 201
    emulator.gzip_answers = True
    path = tmp_path / "epoch_001.pt"
    path.write_bytes(os.urandom(SIZE))
    return path


def test_a_last_chunk_answered_201_is_the_end(emulator, env, src):
    entry = _upload(emulator, src)
    assert entry.md5 == hashlib.md5(src.read_bytes()).hexdigest()
    assert [r.status for r in _puts(emulator)] == [308, 308, 201]
    assert [f["id"] for f in _copies(emulator)] == [entry.id]


def test_a_lost_last_answer_then_a_status_query_answered_201(emulator, env, src):
    """The last chunk's answer lost after Drive made the file: the status query's 201
    with the file ends the upload; nothing is sent again."""
    entry = _upload(emulator, src, lose_last_answer=True)
    assert entry.md5 == hashlib.md5(src.read_bytes()).hexdigest()
    puts = _puts(emulator)
    assert [r.headers.get("Content-Range") for r in puts[3:]] == [f"bytes */{SIZE}"]
    assert (puts[3].status, puts[3].encoding) == (201, "gzip")   # as Drive sends it
    assert [f["id"] for f in _copies(emulator)] == [entry.id]


def test_a_session_saved_by_a_failed_push_and_completed_on_drive(emulator, env, src):
    """A push gave up right after its last chunk (the answer lost, no retry left): the
    session's record stays; the next push asks its status, gets 201 with the file, and
    takes it without sending a byte."""
    with pytest.raises(RemoteError):
        _upload(emulator, src, attempts=1, lose_last_answer=True)
    assert len(_copies(emulator)) == 1       # Drive made it; drivestage never heard
    sent = len(_puts(emulator))
    entry = _upload(emulator, src)
    again = _puts(emulator)[sent:]
    assert [(r.headers.get("Content-Range"), r.status) for r in again] == \
        [(f"bytes */{SIZE}", 201)]
    assert entry.md5 == hashlib.md5(src.read_bytes()).hexdigest()
    assert [f["id"] for f in _copies(emulator)] == [entry.id]
