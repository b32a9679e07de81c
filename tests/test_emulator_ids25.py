"""The emulator's files.generateIds, and creates that name a generated id (Drive's "Create
files" guide): the file gets that id, once; a create naming it again is answered 409 and
makes nothing (what lets a client retry a create whose answer it lost); an id Drive never
generated is refused with 400. Raw HTTP, as in test_emulator_api.py."""
from __future__ import annotations

import hashlib
import json

from drivestage.emulator import Emulator
from test_emulator_api import assert_envelope, jreq, req

FOLDER = "application/vnd.google-apps.folder"


def _ids(emu, query=""):
    status, _, body = jreq(emu, "GET", f"/drive/v2/files/generateIds{query}")
    assert status == 200, body
    return body


def _titled(emu, title):
    return [f for f in emu.files() if f["title"] == title]


def test_generate_ids_defaults_count_and_bounds(emulator):
    body = _ids(emulator)
    assert body["kind"] == "drive#generatedIds" and body["space"] == "drive"
    assert len(body["ids"]) == 10 and len(set(body["ids"])) == 10
    assert len(_ids(emulator, "?maxResults=1000&space=drive&type=files")["ids"]) == 1000
    assert _ids(emulator, "?space=appDataFolder")["space"] == "appDataFolder"
    for bad, where in (("maxResults=0", "maxResults"), ("maxResults=1001", "maxResults"),
                       ("maxResults=x", "maxResults"), ("space=photos", "space"),
                       ("type=folders", "type"), ("space=appDataFolder&type=shortcuts", "type")):
        status, _, body = jreq(emulator, "GET", f"/drive/v2/files/generateIds?{bad}")
        assert status == 400, bad
        assert_envelope(body, 400, "invalid")
        assert body["error"]["errors"][0]["location"] == where
    assert emulator.api_calls("files.generateIds") == 9


def test_metadata_insert_takes_the_id_once(emulator):
    fid = _ids(emulator, "?maxResults=1")["ids"][0]
    meta = {"id": fid, "title": "runs", "mimeType": FOLDER, "parents": [{"id": "root"}]}
    status, _, made = jreq(emulator, "POST", "/drive/v2/files", meta)
    assert status == 200 and made["id"] == fid
    status, _, body = jreq(emulator, "POST", "/drive/v2/files", meta)  # the retry
    assert status == 409
    assert_envelope(body, 409, "duplicate")
    assert body["error"]["message"] == "A file already exists with the provided ID."
    assert [f["id"] for f in _titled(emulator, "runs")] == [fid]


def test_an_id_never_generated_is_400_and_makes_nothing(emulator):
    status, _, body = jreq(emulator, "POST", "/drive/v2/files",
                           {"id": "1NeverGeneratedByThisDriveAtAllxx", "title": "x"})
    assert status == 400
    assert_envelope(body, 400, "invalid")
    assert body["error"]["message"] == "The provided file ID is not usable."
    assert _titled(emulator, "x") == []


def test_a_deleted_files_id_stays_used(emulator):
    fid = _ids(emulator, "?maxResults=1")["ids"][0]
    assert jreq(emulator, "POST", "/drive/v2/files", {"id": fid, "title": "a"})[0] == 200
    assert req(emulator, "DELETE", f"/drive/v2/files/{fid}")[0] == 204
    assert jreq(emulator, "POST", "/drive/v2/files", {"id": fid, "title": "a"})[0] == 409
    assert _titled(emulator, "a") == []


def test_multipart_upload_takes_the_id(emulator):
    fid = _ids(emulator, "?maxResults=1")["ids"][0]
    payload = b"checkpoint bytes" * 100

    def send():
        body = (b"--B\r\nContent-Type: application/json\r\n\r\n"
                + json.dumps({"id": fid, "title": "m.pt"}).encode()
                + b"\r\n--B\r\nContent-Type: application/octet-stream\r\n\r\n" + payload
                + b"\r\n--B--")
        return jreq(emulator, "POST", "/upload/drive/v2/files?uploadType=multipart", body,
                    headers={"Content-Type": 'multipart/related; boundary="B"'})
    status, _, f = send()
    assert status == 200 and f["id"] == fid and emulator.read_bytes(fid) == payload
    status, _, body = send()
    assert status == 409 and body["error"]["errors"][0]["reason"] == "duplicate"
    assert len(_titled(emulator, "m.pt")) == 1


def _session(emu, meta, size):
    status, h, body = req(emu, "POST", "/upload/drive/v2/files?uploadType=resumable", meta,
                          headers={"X-Upload-Content-Length": str(size)})
    return status, ("/" + h["location"][len(emu.url):]) if status == 200 else json.loads(body)


def test_resumable_session_binds_the_id_when_it_completes(emulator):
    fid = _ids(emulator, "?maxResults=1")["ids"][0]
    data = b"z" * 1000
    meta = {"id": fid, "title": "s.bin"}
    _, first = _session(emulator, meta, len(data))
    _, second = _session(emulator, meta, len(data))  # both started: the id is not taken yet
    assert emulator.find("s.bin") is None
    status, _, f = jreq(emulator, "PUT", first, data,
                        headers={"Content-Range": f"bytes 0-{len(data) - 1}/{len(data)}"})
    assert status == 200 and f["id"] == fid
    assert f["md5Checksum"] == hashlib.md5(data).hexdigest()
    # The other session of the same id completes into a 409: still one file.
    status, _, body = jreq(emulator, "PUT", second, data,
                           headers={"Content-Range": f"bytes 0-{len(data) - 1}/{len(data)}"})
    assert status == 409 and body["error"]["errors"][0]["reason"] == "duplicate"
    # A session started with an id already a file's is refused at once, before any byte.
    status, body = _session(emulator, meta, len(data))
    assert status == 409 and body["error"]["errors"][0]["reason"] == "duplicate"
    status, body = _session(emulator, {"id": "1NotGeneratedxxxxxxxxxxxxxxxxxxxx", "title": "t"},
                            10)
    assert status == 400 and body["error"]["message"] == "The provided file ID is not usable."
    assert [g["id"] for g in _titled(emulator, "s.bin")] == [fid]


def test_generated_and_used_ids_survive_a_restart(tmp_path):
    with Emulator(data_dir=str(tmp_path)) as emu:
        used, free = _ids(emu, "?maxResults=2")["ids"]
        assert jreq(emu, "POST", "/drive/v2/files", {"id": used, "title": "u"})[0] == 200
        req(emu, "DELETE", f"/drive/v2/files/{used}")
    with Emulator(data_dir=str(tmp_path)) as emu:
        assert jreq(emu, "POST", "/drive/v2/files", {"id": used, "title": "u"})[0] == 409
        status, _, f = jreq(emu, "POST", "/drive/v2/files", {"id": free, "title": "f"})
        assert status == 200 and f["id"] == free


def test_copy_takes_the_id_once(emulator):
    src = emulator.add_file("a.bin", b"abc")
    fid = _ids(emulator, "?maxResults=1")["ids"][0]
    status, _, f = jreq(emulator, "POST", f"/drive/v2/files/{src}/copy", {"id": fid, "title": "b"})
    assert status == 200 and f["id"] == fid and emulator.read_bytes(fid) == b"abc"
    status, _, body = jreq(emulator, "POST", f"/drive/v2/files/{src}/copy", {"id": fid, "title": "b"})
    assert status == 409 and len(_titled(emulator, "b")) == 1
