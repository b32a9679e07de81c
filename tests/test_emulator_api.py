"""The emulator on the wire: raw HTTP against the Drive v2 endpoints, errors, quota, persistence."""
from __future__ import annotations

import base64
import hashlib
import http.client
import json
from urllib.parse import quote, urlsplit

import pytest

from drivestage.emulator import Emulator
from drivestage.emulator.query import QueryError, compile_query

FOLDER = "application/vnd.google-apps.folder"
KIB256 = 256 * 1024


def req(emu, method, path, body=b"", headers=None, token="test-token"):
    """One HTTP request on a fresh connection; returns (status, headers, body bytes)."""
    u = urlsplit(emu.url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    h = dict(headers or {})
    if token:
        h["Authorization"] = f"Bearer {token}"
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode()
        h.setdefault("Content-Type", "application/json")
    conn.request(method, path, body=body, headers=h)
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data


def jreq(emu, method, path, body=b"", headers=None, token="test-token"):
    status, h, data = req(emu, method, path, body, headers, token)
    return status, h, (json.loads(data) if data else None)


def assert_envelope(body, code, reason, domain="global"):
    assert body["error"]["code"] == code
    assert body["error"]["errors"][0]["reason"] == reason
    assert body["error"]["errors"][0]["domain"] == domain
    assert body["error"]["message"] == body["error"]["errors"][0]["message"]


# ---------------------------------------------------------------------------- query grammar
def rec(title, parents=("P",), trashed=False, mime="application/zip"):
    return {"title": title, "parents": list(parents), "trashed": trashed, "mimeType": mime,
            "modified": 100.0, "created": 50.0}


def test_query_grammar_covers_what_pydrive2_sends():
    files = [rec("a.zip"), rec("B.zip", parents=("Q",)), rec("c", trashed=True), rec("d", mime=FOLDER)]
    q = lambda s: [f["title"] for f in files if compile_query(s, lambda i: "P" if i == "root" else i)(f)]
    assert q("'P' in parents and trashed=false and title='A.ZIP'") == ["a.zip"]
    assert q("('P' in parents or 'Q' in parents) and trashed=false") == ["a.zip", "B.zip", "d"]
    assert q("trashed=false and ('root' in parents) and title='d'") == ["d"]
    assert q("not mimeType = 'application/vnd.google-apps.folder' and title contains 'zip'") == ["a.zip", "B.zip"]
    assert q("title != 'a.zip' and trashed = true") == ["c"]
    assert q("modifiedDate > '1970-01-01T00:01:00.000Z'") == ["a.zip", "B.zip", "c", "d"]
    assert q("title = 'it\\'s'") == []
    assert q("") == ["a.zip", "B.zip", "c", "d"]


@pytest.mark.parametrize("bad", ["title = ", "foo = 'x'", "('P' in parents", "'P' in writers",
                                 "trashed = maybe", "title = 'x' and", "title ~ 'x'"])
def test_query_errors_are_query_errors(bad):
    with pytest.raises(QueryError):
        compile_query(bad)


def test_bad_query_is_400_invalid(emulator):
    status, _, body = jreq(emulator, "GET", "/drive/v2/files?q=" + quote("foo = 'x'"))
    assert status == 400
    assert_envelope(body, 400, "invalid")
    assert "foo" in body["error"]["message"]


# ---------------------------------------------------------------------------- auth
def test_missing_token_is_401_login_required(emulator):
    status, h, body = jreq(emulator, "GET", "/drive/v2/about?alt=json", token=None)
    assert status == 401
    assert_envelope(body, 401, "required")
    assert body["error"]["message"] == "Login Required."
    assert h["www-authenticate"].startswith("Bearer")


def test_wrong_token_is_401_invalid_credentials(tmp_path):
    with Emulator(data_dir=str(tmp_path), token="s3cret") as emu:
        status, _, body = jreq(emu, "GET", "/drive/v2/about", token="nope")
        assert status == 401
        assert_envelope(body, 401, "authError")
        assert body["error"]["message"] == "Invalid Credentials"
        assert jreq(emu, "GET", "/drive/v2/about", token="s3cret")[0] == 200
        # The control API follows the same token when one is set.
        assert jreq(emu, "GET", "/_emulator/health", token=None)[0] == 401


def test_unknown_endpoint_is_404_envelope(emulator):
    status, _, body = jreq(emulator, "GET", "/drive/v2/nothing")
    assert status == 404
    assert_envelope(body, 404, "notFound")


# ---------------------------------------------------------------------------- metadata
def test_file_resource_shape(emulator):
    fid = emulator.add_file("VOC_datasets/x.zip", b"abc")
    status, _, f = jreq(emulator, "GET", f"/drive/v2/files/{fid}?alt=json&supportsAllDrives=true"
                                         "&acknowledgeAbuse=false")
    assert status == 200
    assert f["kind"] == "drive#file" and f["id"] == fid and f["title"] == "x.zip"
    assert f["fileSize"] == "3" and f["md5Checksum"] == hashlib.md5(b"abc").hexdigest()
    assert f["labels"]["trashed"] is False
    assert f["modifiedDate"].endswith("Z") and len(f["modifiedDate"]) == 24  # 2026-01-02T03:04:05.678Z
    folder = emulator.find("VOC_datasets")
    assert f["parents"] == [{"kind": "drive#parentReference", "id": folder["id"], "isRoot": False,
                             "selfLink": f["parents"][0]["selfLink"], "parentLink": f["parents"][0]["parentLink"]}]
    assert folder["parents"][0]["isRoot"] is True
    assert "fileSize" not in folder and "md5Checksum" not in folder
    assert f["downloadUrl"].startswith(emulator.url + f"drive/v2/files/{fid}?alt=media")
    # downloadUrl points at the emulator itself and serves the bytes.
    status, _, data = req(emulator, "GET", "/" + f["downloadUrl"][len(emulator.url):])
    assert (status, data) == (200, b"abc")


def test_fields_filtering(emulator):
    fid = emulator.add_file("a/b.bin", b"12345")
    _, _, f = jreq(emulator, "GET", f"/drive/v2/files/{fid}?fields=driveId")
    assert f == {}
    _, _, f = jreq(emulator, "GET", f"/drive/v2/files/{fid}?fields=" + quote("id,fileSize,labels/trashed,parents(id)"))
    assert f == {"id": fid, "fileSize": "5", "labels": {"trashed": False},
                 "parents": [{"id": emulator.find("a")["id"]}]}
    _, _, lst = jreq(emulator, "GET", "/drive/v2/files?fields=" + quote("items(title),nextPageToken"))
    assert sorted(i["title"] for i in lst["items"]) == ["a", "b.bin"]
    assert set(lst) == {"items"}


def test_root_alias_and_404(emulator):
    status, _, root = jreq(emulator, "GET", "/drive/v2/files/root")
    assert status == 200 and root["id"] == emulator.root_id() and root["mimeType"] == FOLDER
    status, _, body = jreq(emulator, "GET", "/drive/v2/files/doesnotexist")
    assert status == 404
    assert_envelope(body, 404, "notFound")
    assert body["error"]["message"] == "File not found: doesnotexist."


def test_list_pagination_returns_every_file_once(emulator):
    ids = {emulator.add_file(f"many/f{i:02d}", b"x") for i in range(23)}
    parent = emulator.find("many")["id"]
    seen, token, pages = [], None, 0
    while True:
        q = quote(f"'{parent}' in parents and trashed=false")
        path = f"/drive/v2/files?q={q}&maxResults=10" + (f"&pageToken={token}" if token else "")
        status, _, page = jreq(emulator, "GET", path)
        assert status == 200
        seen += [i["id"] for i in page["items"]]
        pages += 1
        token = page.get("nextPageToken")
        if not token:
            break
    assert pages == 3 and len(seen) == 23 and set(seen) == ids


def test_insert_folder_update_patch_trash_untrash_delete_recursive(emulator):
    status, _, folder = jreq(emulator, "POST", "/drive/v2/files?alt=json",
                             {"title": "logs", "mimeType": FOLDER, "parents": [{"id": "root"}]})
    assert status == 200 and folder["mimeType"] == FOLDER and folder["parents"][0]["isRoot"]
    child = emulator.add_file("logs/sub/w.pth", b"w" * 10)
    status, _, f = jreq(emulator, "PATCH", f"/drive/v2/files/{child}", {"title": "best.pth"})
    assert status == 200 and f["title"] == "best.pth"
    status, _, f = jreq(emulator, "PUT", f"/drive/v2/files/{child}", {"description": "d"})
    assert status == 200 and f["description"] == "d" and f["title"] == "best.pth"
    # Trashing a folder trashes what is inside; untrash restores it.
    status, _, t = jreq(emulator, "POST", f"/drive/v2/files/{folder['id']}/trash")
    assert status == 200 and t["labels"]["trashed"] is True
    assert jreq(emulator, "GET", f"/drive/v2/files/{child}")[2]["labels"]["trashed"] is True
    jreq(emulator, "POST", f"/drive/v2/files/{folder['id']}/untrash")
    assert jreq(emulator, "GET", f"/drive/v2/files/{child}")[2]["labels"]["trashed"] is False
    status, _, body = req(emulator, "DELETE", f"/drive/v2/files/{folder['id']}")
    assert (status, body) == (204, b"")
    assert emulator.files() == []
    assert jreq(emulator, "GET", f"/drive/v2/files/{child}")[0] == 404


# ---------------------------------------------------------------------------- downloads
def test_range_download_206_and_empty_416(emulator):
    data = bytes(range(256)) * 40
    fid = emulator.add_file("r.bin", data)
    status, h, body = req(emulator, "GET", f"/drive/v2/files/{fid}?alt=media", headers={"Range": "bytes=100-199"})
    assert status == 206 and body == data[100:200] and h["content-range"] == f"bytes 100-199/{len(data)}"
    status, h, body = req(emulator, "GET", f"/drive/v2/files/{fid}?alt=media", headers={"Range": "bytes=10000-"})
    assert status == 206 and body == data[10000:]
    status, h, body = req(emulator, "GET", f"/drive/v2/files/{fid}?alt=media", headers={"Range": "bytes=0-99999999"})
    assert status == 206 and body == data
    status, h, body = req(emulator, "GET", f"/drive/v2/files/{fid}?alt=media")
    assert status == 200 and body == data and h["content-length"] == str(len(data))
    empty = emulator.add_file("empty.bin", b"")
    status, h, _ = req(emulator, "GET", f"/drive/v2/files/{empty}?alt=media", headers={"Range": "bytes=0-1023"})
    assert status == 416 and h["content-range"] == "bytes */0"
    status, h, body = req(emulator, "GET", f"/drive/v2/files/{fid}?alt=media", headers={"Range": f"bytes={len(data)}-"})
    assert status == 416 and h["content-range"] == f"bytes */{len(data)}"


def test_a_record_with_a_malformed_md5_is_served_without_a_hash_header(emulator):
    # Only a test editing the store reaches this; it used to answer 500 (which a client
    # retries for minutes) instead of the bytes.
    data = b"x" * 1000
    fid = emulator.add_file("m.bin", data)
    status, h, _ = req(emulator, "GET", f"/drive/v2/files/{fid}?alt=media")
    assert status == 200 and h["x-goog-hash"] == "md5=" + base64.b64encode(
        hashlib.md5(data).digest()).decode()
    for bad in ("not-hex", "abcd"):
        emulator.store.update(fid, md5=bad)
        status, h, body = req(emulator, "GET", f"/drive/v2/files/{fid}?alt=media")
        assert (status, body) == (200, data) and "x-goog-hash" not in h


# ---------------------------------------------------------------------------- resumable uploads
def start_session(emu, size, title="up.bin", parents=None):
    meta = {"title": title}
    if parents:
        meta["parents"] = [{"id": p} for p in parents]
    status, h, _ = req(emu, "POST", "/upload/drive/v2/files?uploadType=resumable&alt=json", meta,
                       headers={"X-Upload-Content-Length": str(size),
                                "X-Upload-Content-Type": "application/octet-stream"})
    assert status == 200, _
    assert h["location"].startswith(emu.url + "upload/drive/v2/files?")
    return "/" + h["location"][len(emu.url):]


def test_resumable_wire_protocol(emulator):
    data = bytes(i % 251 for i in range(2 * KIB256 + 1000))
    loc = start_session(emulator, len(data))
    # Nothing yet: the status query answers 308 without Range.
    status, h, _ = req(emulator, "PUT", loc, headers={"Content-Range": f"bytes */{len(data)}"})
    assert status == 308 and "range" not in h
    status, h, _ = req(emulator, "PUT", loc, data[:KIB256],
                       headers={"Content-Range": f"bytes 0-{KIB256 - 1}/{len(data)}"})
    assert status == 308 and h["range"] == f"bytes=0-{KIB256 - 1}"
    # A non-final chunk that is not a multiple of 256 KiB: only whole 256 KiB units are kept.
    status, h, _ = req(emulator, "PUT", loc, data[KIB256: 2 * KIB256 + 10],
                       headers={"Content-Range": f"bytes {KIB256}-{2 * KIB256 + 9}/{len(data)}"})
    assert status == 308 and h["range"] == f"bytes=0-{2 * KIB256 - 1}"
    # Starting past what was received is refused.
    status, _, body = jreq(emulator, "PUT", loc, b"zz",
                           headers={"Content-Range": f"bytes {len(data) - 2}-{len(data) - 1}/{len(data)}"})
    assert status == 400 and "exceeds already uploaded size" in body["error"]["message"]
    status, _, f = jreq(emulator, "PUT", loc, data[2 * KIB256:],
                        headers={"Content-Range": f"bytes {2 * KIB256}-{len(data) - 1}/{len(data)}"})
    assert status == 200 and f["md5Checksum"] == hashlib.md5(data).hexdigest()
    assert f["fileSize"] == str(len(data)) and emulator.read_bytes(f["id"]) == data
    # After completion the session keeps answering with the file.
    status, _, again = jreq(emulator, "PUT", loc, headers={"Content-Range": f"bytes */{len(data)}"})
    assert status == 200 and again["id"] == f["id"]


def test_dropped_chunk_keeps_bytes_rounded_down(emulator):
    data = bytes(i % 253 for i in range(3 * KIB256))
    loc = start_session(emulator, len(data))
    emulator.faults.drop("PUT", r"upload_id=", after_bytes=KIB256 + 5000, direction="request")
    with pytest.raises((ConnectionError, http.client.HTTPException, OSError)):
        req(emulator, "PUT", loc, data, headers={"Content-Range": f"bytes 0-{len(data) - 1}/{len(data)}"})
    status, h, _ = req(emulator, "PUT", loc, headers={"Content-Range": f"bytes */{len(data)}"})
    assert status == 308 and h["range"] == f"bytes=0-{KIB256 - 1}"
    status, _, f = jreq(emulator, "PUT", loc, data[KIB256:],
                        headers={"Content-Range": f"bytes {KIB256}-{len(data) - 1}/{len(data)}"})
    assert status == 200 and f["md5Checksum"] == hashlib.md5(data).hexdigest()
    assert emulator.requests[0].error is None and any(r.error == "reset" for r in emulator.requests)


def test_session_survives_restart(tmp_path):
    data = bytes(i % 249 for i in range(KIB256 + 77))
    with Emulator(data_dir=str(tmp_path)) as emu:
        loc = start_session(emu, len(data))
        assert req(emu, "PUT", loc, data[:KIB256], headers={"Content-Range": f"bytes 0-{KIB256 - 1}/{len(data)}"})[0] == 308
        port = emu.port
    with Emulator(data_dir=str(tmp_path), port=port) as emu:
        status, h, _ = req(emu, "PUT", loc, headers={"Content-Range": f"bytes */{len(data)}"})
        assert status == 308 and h["range"] == f"bytes=0-{KIB256 - 1}"
        status, _, f = jreq(emu, "PUT", loc, data[KIB256:],
                            headers={"Content-Range": f"bytes {KIB256}-{len(data) - 1}/{len(data)}"})
        assert status == 200 and f["md5Checksum"] == hashlib.md5(data).hexdigest()


def test_state_survives_restart(tmp_path):
    with Emulator(data_dir=str(tmp_path)) as emu:
        fid = emu.add_file("Models/logs/ep1.pth", b"weights")
        trashed = emu.add_file("Models/old.pth", b"old")
        emu.store.set_trashed(trashed, True)
        root = emu.root_id()
    with Emulator(data_dir=str(tmp_path)) as emu:
        assert emu.root_id() == root
        assert emu.find("Models/logs/ep1.pth")["id"] == fid
        assert emu.read_bytes(fid) == b"weights"
        assert emu.find("Models/old.pth") is None
        assert {f["title"] for f in emu.files()} == {"Models", "logs", "ep1.pth", "old.pth"}


def test_media_and_multipart_uploads_stream_to_disk(emulator):
    status, _, f = jreq(emulator, "POST", "/upload/drive/v2/files?uploadType=media", b"raw bytes",
                        headers={"Content-Type": "text/plain"})
    assert status == 200 and f["title"] == "Untitled" and f["mimeType"] == "text/plain"
    assert emulator.read_bytes(f["id"]) == b"raw bytes"
    payload = bytes(range(256)) * 5000 + b"\r\n--not-the-boundary\r\n"
    body = (b"--BOUND\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n"
            + json.dumps({"title": "m.bin", "parents": [{"id": "root"}]}).encode()
            + b"\r\n--BOUND\r\nContent-Type: application/zip\r\n\r\n" + payload + b"\r\n--BOUND--")
    status, _, f = jreq(emulator, "POST", "/upload/drive/v2/files?uploadType=multipart", body,
                        headers={"Content-Type": 'multipart/related; boundary="BOUND"'})
    assert status == 200 and f["title"] == "m.bin" and f["mimeType"] == "application/zip"
    assert emulator.read_bytes(f["id"]) == payload and f["md5Checksum"] == hashlib.md5(payload).hexdigest()
    # New content through files.update keeps the id.
    status, _, g = jreq(emulator, "PUT", f"/upload/drive/v2/files/{f['id']}?uploadType=media", b"v2")
    assert status == 200 and g["id"] == f["id"] and emulator.read_bytes(f["id"]) == b"v2"


# ---------------------------------------------------------------------------- quota
def test_quota_enforced_and_trash_counts(tmp_path):
    with Emulator(data_dir=str(tmp_path), quota_bytes=1000) as emu:
        a = emu.add_file("a.bin", b"x" * 600)
        _, _, about = jreq(emu, "GET", "/drive/v2/about")
        assert (about["quotaBytesTotal"], about["quotaBytesUsed"], about["quotaBytesUsedInTrash"]) == ("1000", "600", "0")
        status, _, body = jreq(emu, "POST", "/upload/drive/v2/files?uploadType=resumable", {"title": "b"},
                               headers={"X-Upload-Content-Length": "500"})
        assert status == 403
        assert_envelope(body, 403, "storageQuotaExceeded")
        status, _, body = jreq(emu, "POST", "/upload/drive/v2/files?uploadType=media", b"y" * 500)
        assert status == 403
        jreq(emu, "POST", f"/drive/v2/files/{a}/trash")
        _, _, about = jreq(emu, "GET", "/drive/v2/about")
        assert (about["quotaBytesUsed"], about["quotaBytesUsedInTrash"]) == ("600", "600")
        assert jreq(emu, "POST", "/upload/drive/v2/files?uploadType=media", b"y" * 500)[0] == 403
        assert req(emu, "DELETE", "/drive/v2/files/trash")[0] == 204
        _, _, about = jreq(emu, "GET", "/drive/v2/about")
        assert (about["quotaBytesUsed"], about["quotaBytesUsedInTrash"]) == ("0", "0")
        assert jreq(emu, "POST", "/upload/drive/v2/files?uploadType=media", b"y" * 500)[0] == 200


def test_service_account_has_no_my_drive_storage(tmp_path):
    with Emulator(data_dir=str(tmp_path), service_account=True) as emu:
        drive = emu.add_shared_drive("Team")
        status, _, body = jreq(emu, "POST", "/upload/drive/v2/files?uploadType=media", b"data")
        assert status == 403
        assert_envelope(body, 403, "storageQuotaExceeded")
        assert body["error"]["message"].startswith("Service Accounts do not have storage quota")
        status, _, f = jreq(emu, "POST", "/upload/drive/v2/files?uploadType=resumable"
                            "&supportsAllDrives=true", {"title": "ok.bin", "parents": [{"id": drive}]},
                            headers={"X-Upload-Content-Length": "4"})
        assert status == 200
        # Folders cost nothing and are allowed in My Drive.
        assert jreq(emu, "POST", "/drive/v2/files", {"title": "d", "mimeType": FOLDER})[0] == 200


def test_shared_drives_listing(emulator):
    drive = emulator.add_shared_drive("Team")
    fid = emulator.add_file("data/x.zip", b"zz", drive_id=drive)
    emulator.add_file("mine.zip", b"m")
    _, _, drives = jreq(emulator, "GET", "/drive/v2/drives")
    assert [d["name"] for d in drives["items"]] == ["Team"] and drives["items"][0]["id"] == drive
    _, _, f = jreq(emulator, "GET", f"/drive/v2/files/{fid}?fields=driveId&supportsAllDrives=true")
    assert f == {"driveId": drive}
    _, _, lst = jreq(emulator, "GET", f"/drive/v2/files?corpora=drive&driveId={drive}&includeItemsFromAllDrives=true"
                                      "&supportsAllDrives=true")
    assert sorted(i["title"] for i in lst["items"]) == ["data", "x.zip"]
    _, _, lst = jreq(emulator, "GET", "/drive/v2/files?corpora=default")
    assert [i["title"] for i in lst["items"]] == ["mine.zip"]
    assert emulator.find("data/x.zip", drive_id=drive)["id"] == fid


# ---------------------------------------------------------------------------- faults and the control API
def test_inject_envelope_retry_after_and_html_502(emulator):
    emulator.faults.inject("GET", r"/about", status=503, retry_after=7, times=1)
    emulator.faults.inject("GET", r"/drive/v2/files\?", status=502, body="<html>bad gateway</html>",
                           content_type="text/html; charset=UTF-8")
    emulator.faults.inject("POST", r"/upload/", status=403, reason="userRateLimitExceeded",
                           message="User rate limit exceeded.")
    status, h, body = jreq(emulator, "GET", "/drive/v2/about")
    assert status == 503 and h["retry-after"] == "7"
    assert_envelope(body, 503, "backendError")
    assert jreq(emulator, "GET", "/drive/v2/about")[0] == 200  # times=1
    status, h, body = req(emulator, "GET", "/drive/v2/files?alt=json")
    assert status == 502 and body == b"<html>bad gateway</html>" and h["content-type"].startswith("text/html")
    status, _, body = jreq(emulator, "POST", "/upload/drive/v2/files?uploadType=media", b"x")
    assert status == 403 and body["error"]["message"] == "User rate limit exceeded."
    assert_envelope(body, 403, "userRateLimitExceeded", domain="usageLimits")  # as Drive sends it
    assert emulator.files() == []


def test_drop_response_after_bytes(emulator):
    fid = emulator.add_file("big.bin", b"q" * 100_000)
    emulator.faults.drop("GET", r"alt=media", after_bytes=1000)
    u = urlsplit(emulator.url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    conn.request("GET", f"/drive/v2/files/{fid}?alt=media", headers={"Authorization": "Bearer t"})
    resp = conn.getresponse()
    with pytest.raises((http.client.IncompleteRead, ConnectionError)):
        resp.read()
    assert req(emulator, "GET", f"/drive/v2/files/{fid}?alt=media")[2] == b"q" * 100_000


def test_corrupt_download_and_upload(emulator):
    data = bytes(range(200)) * 10
    fid = emulator.add_file("c.bin", data)
    emulator.faults.corrupt(fid, times=1)
    got = req(emulator, "GET", f"/drive/v2/files/{fid}?alt=media")[2]
    assert len(got) == len(data) and got != data
    assert sum(a != b for a, b in zip(got, data)) == 1
    assert req(emulator, "GET", f"/drive/v2/files/{fid}?alt=media")[2] == data
    emulator.faults.corrupt_upload()
    _, _, f = jreq(emulator, "POST", "/upload/drive/v2/files?uploadType=media", data)
    stored = emulator.read_bytes(f["id"])
    assert stored != data and stored[1:] == data[1:]
    assert f["md5Checksum"] == hashlib.md5(stored).hexdigest() != hashlib.md5(data).hexdigest()


def test_chaos_is_deterministic_and_spares_control_api(emulator):
    def run():
        emulator.faults.clear()
        emulator.faults.chaos(rate=0.5, seed=42, kinds=("429", "500", "502", "503"))
        out = [req(emulator, "GET", "/drive/v2/about")[0] for _ in range(30)]
        assert req(emulator, "GET", "/_emulator/health")[0] == 200
        return out
    first, second = run(), run()
    assert first == second
    assert {429, 500, 502, 503} <= set(first) and 200 in first


def test_control_api_over_http(emulator):
    status, _, _ = jreq(emulator, "POST", "/_emulator/faults",
                        {"kind": "inject", "method": "GET", "path": "/about", "status": 500})
    assert status == 200
    assert jreq(emulator, "GET", "/_emulator/faults")[2]["rules"][0]["status"] == 500
    assert jreq(emulator, "GET", "/drive/v2/about")[0] == 500
    status, _, f = jreq(emulator, "POST", "/_emulator/files?path=" + quote("a/b c.txt"), b"hello",
                        headers={"Content-Type": "text/plain"})
    assert status == 200 and f["title"] == "b c.txt" and emulator.find("a/b c.txt")["id"] == f["id"]
    log = jreq(emulator, "GET", "/_emulator/requests")[2]
    assert [(r["method"], r["path"], r["status"]) for r in log] == [("GET", "/drive/v2/about", 500)]
    assert log[0]["headers"]["Authorization"] == "Bearer <redacted>"
    assert jreq(emulator, "DELETE", "/_emulator/requests")[0] == 200 and emulator.requests == []
    assert jreq(emulator, "POST", "/_emulator/faults", {"kind": "nope"})[0] == 400
    assert jreq(emulator, "DELETE", "/_emulator/faults")[2]["rules"] == []


def test_unsupported_method_gets_json_envelope(emulator):
    status, h, body = jreq(emulator, "OPTIONS", "/drive/v2/files")
    assert status == 501 and h["content-type"].startswith("application/json")
    assert body["error"]["code"] == 501


def test_control_api_drives_and_service_account(emulator):
    status, _, d = jreq(emulator, "POST", "/_emulator/drives", {"name": "Team"})
    assert status == 200 and jreq(emulator, "GET", "/_emulator/drives")[2][0]["id"] == d["id"]
    assert jreq(emulator, "POST", "/_emulator/service_account", {"enabled": True, "token": "sa"})[0] == 200
    status, _, body = jreq(emulator, "POST", "/upload/drive/v2/files?uploadType=media", b"x", token="sa")
    assert status == 403 and body["error"]["errors"][0]["reason"] == "storageQuotaExceeded"
    assert jreq(emulator, "POST", "/upload/drive/v2/files?uploadType=media", b"x", token="user")[0] == 200


def test_drop_request_without_body_resets_at_once(emulator):
    emulator.faults.drop("GET", r"/about", after_bytes=0, direction="request")
    with pytest.raises((ConnectionError, http.client.HTTPException, OSError)):
        req(emulator, "GET", "/drive/v2/about")
    assert jreq(emulator, "GET", "/drive/v2/about")[0] == 200
    assert [r.error for r in emulator.requests] == ["reset", None]


def test_query_parent_hint_bounds_the_scan():
    from drivestage.emulator.query import parent_hint
    hint = lambda s: parent_hint(compile_query(s))
    assert hint("'A' in parents and trashed=false and title='x'") == {"A"}
    assert hint("('A' in parents or 'B' in parents) and trashed=false") == {"A", "B"}
    assert hint("'A' in parents or title='x'") is None
    assert hint("not 'A' in parents") is None
    assert hint("title='x'") is None
