"""fidelity31: attackhs31 stopped an upload after MAX_STALLED_CHUNKS "resume incomplete"
answers that keep nothing new; an honest, flaky Drive must still be followed to the end.

Drive's upload guide: "Do not assume that the server received all bytes sent in the previous
request" (a 308 may keep nothing of a chunk); after a 5xx or a lost answer the client asks
the status with an empty PUT (``Content-Range: bytes */N``) and Drive answers 308 with what
it kept, or 200/201 with the file once it has every byte (the upload completes as the last
byte arrives: an honest Drive never says "all kept" and goes on). googleapiclient follows 308s
without a bound. Real PyDrive2/googleapiclient over HTTP against the emulator's faults.
"""
from __future__ import annotations

import hashlib
import os

import pytest

from _envs import env  # noqa: F401  (a fixture)
from drivestage.drive import connect
from drivestage.drive.upload import MAX_STALLED_CHUNKS

KiB = 1024


def _puts(emulator) -> list:
    return [r for r in emulator.requests if r.method == "PUT" and "upload_id" in r.query]


def _copies(emulator) -> int:
    return sum(1 for f in emulator.files() if f["title"] == "epoch_001.pt"
               and not f.get("labels", {}).get("trashed"))


def _upload(emulator, tmp_path, size: int):
    data = os.urandom(size)
    src = tmp_path / "epoch_001.pt"
    src.write_bytes(data)
    emulator.add_folder("Models")
    store = connect(api_root=emulator.url, token="test-token")
    entry = store.upload(str(src), store.resolve("Models"), "epoch_001.pt",
                         chunk_size=256 * KiB)
    return data, entry


def test_chunks_kept_nothing_just_under_the_bound_in_a_row_then_the_upload_completes(
        emulator, env, tmp_path):
    """MAX_STALLED_CHUNKS - 1 chunks in a row answered 308 with nothing kept, then Drive
    keeps each: the upload goes on to the end, verified, one file."""
    emulator.faults.keep_less(256 * KiB, times=MAX_STALLED_CHUNKS - 1)
    data, entry = _upload(emulator, tmp_path, 3 * 256 * KiB + 100)
    assert entry.md5 == hashlib.md5(data).hexdigest()
    assert [r.status for r in _puts(emulator)] == [308] * MAX_STALLED_CHUNKS + [308, 308, 200]
    assert _copies(emulator) == 1


@pytest.mark.parametrize("fault", ["answer-lost", "503-before"])
def test_the_last_chunk_answer_lost_or_refused_is_asked_about_and_completes(
        emulator, env, tmp_path, fault):
    """The only (last) chunk: its answer lost after Drive stored it (the status query gets
    the file), or a 503 before Drive read it (the status query says nothing kept; sent
    again). Either way one file, verified, and no "never completes" stop."""
    if fault == "answer-lost":
        emulator.faults.drop("PUT", "upload_id", direction="response", times=1)
    else:
        emulator.faults.inject("PUT", "upload_id", status=503, times=1)
    data, entry = _upload(emulator, tmp_path, 200 * KiB)
    assert entry.md5 == hashlib.md5(data).hexdigest()
    assert _copies(emulator) == 1
    ranges = [r.headers.get("Content-Range") or "" for r in _puts(emulator)]
    assert f"bytes */{200 * KiB}" in ranges, ranges  # the status asked, as googleapiclient does
