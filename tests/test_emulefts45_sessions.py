"""Resumable upload sessions expire (emulefts45): Drive forgets one a week after it was
opened, answering 404 to its status query (and clients start a new upload); the emulator
kept every session in memory and SQLite, and an abandoned one's bytes on disk, for good."""
from __future__ import annotations

import io
import os
import sqlite3

import pytest
from googleapiclient.errors import HttpError
from googleapiclient.http import MediaIoBaseUpload

from drivestage.drive import connect
from drivestage.emulator import Emulator
from drivestage.emulator.store_sessions import SESSION_TTL, SWEEP_BATCH

CHUNK = 256 * 1024


def _rows(data_dir) -> int:
    with sqlite3.connect(os.path.join(data_dir, "state.sqlite3")) as db:
        return db.execute("SELECT COUNT(*) FROM sessions").fetchone()[0]


def _start(service, title: str, data: bytes):
    """A resumable upload of ``data`` in 256 KiB chunks, its first chunk sent."""
    request = service.files().insert(body={"title": title}, media_body=MediaIoBaseUpload(
        io.BytesIO(data), "application/octet-stream", chunksize=CHUNK, resumable=True))
    assert request.next_chunk()[1] is None   # 308: resume incomplete
    return request


def test_sessions_unused_for_their_age_are_forgotten_with_their_bytes(tmp_path):
    assert Emulator.upload_session_ttl == SESSION_TTL == 7 * 24 * 3600   # Drive's week
    data_dir = str(tmp_path / "d")
    uploads = os.path.join(data_dir, "uploads")
    with Emulator(data_dir=data_dir) as emu:
        service = connect(api_root=emu.url, token="t").service
        abandoned = _start(service, "abandoned.bin", os.urandom(3 * CHUNK))
        done = _start(service, "done.bin", b"d" * (CHUNK + 1))
        status, made = done.next_chunk()
        assert made is not None
        assert os.path.getsize(os.path.join(uploads, os.listdir(uploads)[0])) == CHUNK
        assert len(emu.store.sessions) == _rows(data_dir) == 2
        # Used within their age: both answer (the done one with its file, as Drive does).
        assert _start(service, "kept.bin", b"k" * (CHUNK + 1)).next_chunk()[1]["title"] == "kept.bin"
        assert done.next_chunk()[1]["id"] == made["id"]

        emu.upload_session_ttl = 0.0   # every session now older than its age
        for request in (abandoned, done):
            with pytest.raises(HttpError) as err:
                request.next_chunk()    # a chunk, or the status query of a complete upload
            assert err.value.resp.status == 404
            assert "Upload session not found" in str(err.value)
        # Forgotten in memory, in SQLite, and the abandoned one's bytes on disk.
        assert emu.store.sessions == {} and _rows(data_dir) == 0
        assert os.listdir(uploads) == []
        assert [f["title"] for f in emu.files()] == ["done.bin", "kept.bin"]

        # The sweep is bounded: a request forgets at most SWEEP_BATCH sessions, oldest first.
        emu.upload_session_ttl = SESSION_TTL
        for i in range(SWEEP_BATCH + 5):
            _start(service, f"s{i}.bin", b"s" * (2 * CHUNK))
        emu.upload_session_ttl = 0.0
        with pytest.raises(HttpError):
            abandoned.next_chunk()      # one request: one sweep (its own session was gone)
        assert len(emu.store.sessions) == 5 and len(os.listdir(uploads)) == 5
        emu.upload_session_ttl = SESSION_TTL
        # A new upload works meanwhile, whatever the sweep left.
        assert _start(service, "new.bin", b"n" * (CHUNK + 1)).next_chunk()[1]["title"] == "new.bin"

    # Across a restart: a session's last use is kept, so its age goes on counting; those
    # aged out while it was stopped go as it starts.
    with Emulator(data_dir=data_dir) as emu:
        assert len(emu.store.sessions) == _rows(data_dir) == 6
    emu = Emulator(data_dir=data_dir)
    emu.upload_session_ttl = 0.0
    with emu:
        assert emu.store.sessions == {} and _rows(data_dir) == 0 and os.listdir(uploads) == []
