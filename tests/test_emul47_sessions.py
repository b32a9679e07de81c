"""What kept resumable upload sessions hold is bounded in bytes as well as in count (emul47):
10,000 sessions (max_upload_sessions) of 1 MiB of metadata each held 10 GB of memory. Past
``max_upload_session_bytes`` the least recently used session is forgotten (its next request
answers 404, as an expired session's does on Drive, and clients start over); a session that
alone holds more is refused with 413; a complete session holds no metadata any more."""
from __future__ import annotations

import http.client
import json
import os
import sqlite3

from drivestage.emulator import Emulator

AUTH = {"Authorization": "Bearer t"}


def _start(conn: http.client.HTTPConnection, meta: dict, content_type: str = "") -> tuple[int, str]:
    """(status, the session's path or the error's message)."""
    headers = {**AUTH, "Content-Type": "application/json"}
    if content_type:
        headers["X-Upload-Content-Type"] = content_type
    conn.request("POST", "/upload/drive/v2/files?uploadType=resumable",
                 json.dumps(meta).encode(), headers)
    resp = conn.getresponse()
    body = resp.read()
    if resp.status != 200:
        return resp.status, json.loads(body)["error"]["message"]
    location = resp.getheader("Location")
    return 200, location[location.index("/upload/"):]


def _send(conn: http.client.HTTPConnection, target: str) -> int:
    conn.request("PUT", target, b"abc", {**AUTH, "Content-Range": "bytes 0-2/3"})
    resp = conn.getresponse()
    resp.read()
    return resp.status


def test_sessions_metadata_is_kept_up_to_max_upload_session_bytes(tmp_path):
    with Emulator(data_dir=str(tmp_path / "d")) as emu:
        emu.max_upload_session_bytes = 250_000   # room for two of these sessions, not three
        conn = http.client.HTTPConnection(emu.host, emu.port, timeout=10)
        big = "x" * 100_000

        def meta(title: str) -> dict:
            return {"title": title, "description": big}

        first, second = _start(conn, meta("1"))[1], _start(conn, meta("2"))[1]
        assert _send(conn, second) == 200   # complete: its metadata is no longer held
        third = _start(conn, meta("3"))[1]
        # Two open sessions of 100 KB: both kept (the complete one holds nothing).
        assert len(emu.store.sessions) == 3
        fourth = _start(conn, meta("4"), content_type="text/plain")[1]
        # A third 100 KB session: the least recently used open one (the first) goes.
        assert [_send(conn, t) for t in (first, third, fourth)] == [404, 200, 200]
        files = {f["title"]: f for f in emu.files()}
        assert sorted(files) == ["2", "3", "4"]
        assert {f["description"] for f in files.values()} == {big}
        assert files["4"]["mimeType"] == "text/plain"
        assert os.listdir(emu.store.upload_dir) == []
        conn.close()


def test_a_session_holding_more_than_the_bound_alone_is_refused(tmp_path):
    with Emulator(data_dir=str(tmp_path / "d")) as emu:
        emu.max_upload_session_bytes = 50_000
        conn = http.client.HTTPConnection(emu.host, emu.port, timeout=10)
        kept = _start(conn, {"title": "small"})[1]
        status, message = _start(conn, {"title": "big"}, content_type="text/" + "x" * 60_000)
        assert (status, message) == (
            413, "Request body too large for metadata. (The emulator keeps at most 50000 bytes "
                 "of upload sessions' metadata and content types; this one holds 60020: send "
                 "less, or raise --max-upload-session-bytes.)")
        # Nothing of it kept, and the session before it is left alone.
        assert len(emu.store.sessions) == 1
        assert _send(conn, kept) == 200
        assert [f["title"] for f in emu.files()] == ["small"]
        conn.close()


def test_a_session_saved_by_an_older_emulator_completes_after_a_restart(tmp_path):
    """Older emulators saved a session's metadata as a parsed object; this one keeps its JSON
    text, and reads the old rows."""
    data = str(tmp_path / "d")
    with Emulator(data_dir=data) as emu:
        conn = http.client.HTTPConnection(emu.host, emu.port, timeout=10)
        target = _start(conn, {"title": "old", "description": "kept"})[1]
        conn.close()
    db = sqlite3.connect(os.path.join(data, "state.sqlite3"))
    with db:
        (sid, doc), = db.execute("SELECT id, doc FROM sessions").fetchall()
        doc = json.loads(doc)
        doc["meta"] = json.loads(doc.pop("meta_json"))
        db.execute("UPDATE sessions SET doc=? WHERE id=?", (json.dumps(doc), sid))
    db.close()
    with Emulator(data_dir=data) as emu:
        conn = http.client.HTTPConnection(emu.host, emu.port, timeout=10)
        assert _send(conn, target) == 200
        assert [(f["title"], f["description"]) for f in emu.files()] == [("old", "kept")]
        conn.close()
