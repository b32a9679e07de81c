"""fidelity46: ``If-Match`` on Drive v2 writes, through the real googleapiclient.

Drive v2 honours ``If-Match`` on files.update / patch, files.delete and uploads of new
content to an existing file: a stale etag is ``412 conditionNotMet`` "Precondition Failed"
(location ``If-Match``) and nothing changes (Chromium's Drive v2 client sends it on exactly
those requests; grive2 issue 21 pasted Drive's 412 body for an upload). The emulator ignored
the header: a client's conflict check passed here and failed on Drive. drivestage sends no
``If-Match`` (its httplib2 keeps no cache, so httplib2 adds none by itself): its in-place
update of a file changed on Drive since it was listed goes through, as on Drive.
"""
from __future__ import annotations

import io
import json

import pytest
from googleapiclient.errors import HttpError
from googleapiclient.http import MediaIoBaseUpload

from _drive_clients import drive_service


def _refusal(err: HttpError) -> tuple:
    e = json.loads(err.content)["error"]["errors"][0]
    return err.resp.status, e["reason"], e["message"], e.get("locationType"), e.get("location")


PRECONDITION_FAILED = (412, "conditionNotMet", "Precondition Failed", "header", "If-Match")


def _with(request, etag: str):
    request.headers["If-Match"] = etag
    return request


def test_a_patch_with_a_stale_etag_is_412_and_changes_nothing(emulator):
    fid = emulator.add_file("run/best.pt", b"v1")
    service = drive_service(emulator.url)
    read = service.files().get(fileId=fid).execute()
    renamed = service.files().patch(fileId=fid, body={"title": "best-1.pt"}).execute()
    assert renamed["etag"] != read["etag"]      # every change makes a new etag
    with pytest.raises(HttpError) as err:
        _with(service.files().patch(fileId=fid, body={"title": "mine.pt"}), read["etag"]).execute()
    assert _refusal(err.value) == PRECONDITION_FAILED
    with pytest.raises(HttpError) as err:
        _with(service.files().update(fileId=fid, body={"title": "mine.pt"}), read["etag"]).execute()
    assert _refusal(err.value) == PRECONDITION_FAILED
    assert emulator.store.get(fid)["title"] == "best-1.pt"
    # The current etag, one of a list, or "*" (Chromium's patch) is taken.
    a = _with(service.files().patch(fileId=fid, body={"title": "a.pt"}), renamed["etag"]).execute()
    b = _with(service.files().patch(fileId=fid, body={"title": "b.pt"}),
              f'"stale", {a["etag"]}').execute()
    c = _with(service.files().patch(fileId=fid, body={"title": "c.pt"}), "*").execute()
    assert (a["title"], b["title"], c["title"]) == ("a.pt", "b.pt", "c.pt")


def test_a_delete_with_a_stale_etag_is_412_and_the_file_stays(emulator):
    fid = emulator.add_file("run/epoch_001.pt", b"weights")
    service = drive_service(emulator.url)
    read = service.files().get(fileId=fid).execute()
    trashed = service.files().trash(fileId=fid).execute()   # trashing is a change too
    assert trashed["etag"] != read["etag"]
    with pytest.raises(HttpError) as err:
        _with(service.files().delete(fileId=fid), read["etag"]).execute()
    assert _refusal(err.value) == PRECONDITION_FAILED
    assert emulator.read_bytes(fid) == b"weights"
    _with(service.files().delete(fileId=fid), trashed["etag"]).execute()
    assert emulator.store.files.get(fid) is None


@pytest.mark.parametrize("resumable", [True, False], ids=["resumable", "multipart"])
def test_new_content_with_a_stale_etag_is_412_before_a_byte_is_kept(emulator, resumable):
    fid = emulator.add_file("run/best.pt", b"old bytes")
    service = drive_service(emulator.url)
    read = service.files().get(fileId=fid).execute()
    service.files().patch(fileId=fid, body={"description": "epoch 3"}).execute()
    body = MediaIoBaseUpload(io.BytesIO(b"new bytes"), "application/octet-stream",
                             resumable=resumable)
    with pytest.raises(HttpError) as err:
        _with(service.files().update(fileId=fid, body={}, media_body=body), read["etag"]).execute()
    assert _refusal(err.value) == PRECONDITION_FAILED
    assert emulator.read_bytes(fid) == b"old bytes"
    assert not [r for r in emulator.requests if "upload_id" in r.query]   # no session made
    fresh = service.files().get(fileId=fid).execute()
    body = MediaIoBaseUpload(io.BytesIO(b"new bytes"), "application/octet-stream",
                             resumable=resumable)
    _with(service.files().update(fileId=fid, body={}, media_body=body), fresh["etag"]).execute()
    assert emulator.read_bytes(fid) == b"new bytes"


def test_drivestage_sends_no_if_match_and_updates_a_file_changed_since_listed(
        emulator, store, tmp_path):
    folder = store.make_folders("Models/run")
    src = tmp_path / "best.pt"
    src.write_bytes(b"epoch 1")
    entry = store.upload(str(src), folder, "best.pt")
    # Another writer changes the file's metadata after drivestage listed it: a new etag.
    drive_service(emulator.url).files().patch(fileId=entry.id,
                                             body={"description": "touched"}).execute()
    src.write_bytes(b"epoch 2")
    emulator.clear_requests()
    again = store.upload(str(src), folder, "best.pt", replace=entry)
    assert again.id == entry.id and emulator.read_bytes(entry.id) == b"epoch 2"
    assert emulator.requests and not [r for r in emulator.requests if "If-Match" in r.headers]
