"""Revisions as Drive keeps them: files.update with media makes a new head revision (the old
one keeps using quota) unless newRevision=false; revisions.list/get/update/delete; pinned
revisions survive Drive's purge."""
from __future__ import annotations

import hashlib
import io
import json

import pytest
from googleapiclient.errors import HttpError
from googleapiclient.http import MediaIoBaseUpload

from _drive_clients import drive_service, pydrive
from drivestage.emulator import Emulator


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def upload(service, file_id, data, resumable=False, **params):
    media = MediaIoBaseUpload(io.BytesIO(data), "application/octet-stream", resumable=resumable,
                              chunksize=256 * 1024)
    return service.files().update(fileId=file_id, media_body=media, **params).execute()


def used(service) -> int:
    return int(service.about().get().execute()["quotaBytesUsed"])


def test_update_keeps_old_revisions_and_their_quota(emulator):
    v1, v2, v3 = b"1" * 1000, b"2" * 3000, b"3" * 500
    service = drive_service(emulator.url)
    fid = emulator.add_file("best.pt", v1)
    head1 = service.files().get(fileId=fid).execute()["headRevisionId"]
    f = upload(service, fid, v2)
    assert f["md5Checksum"] == md5(v2) and f["fileSize"] == "3000" and f["headRevisionId"] != head1
    assert f["quotaBytesUsed"] == "4000" and used(service) == 4000
    listed = service.revisions().list(fileId=fid).execute()
    assert listed["kind"] == "drive#revisionList"
    assert [(r["id"], r["md5Checksum"], r["fileSize"]) for r in listed["items"]] == \
        [(head1, md5(v1), "1000"), (f["headRevisionId"], md5(v2), "3000")]
    # The old revision's bytes are still there, by revisionId.
    old = service.files().get_media(fileId=fid, revisionId=head1).execute()
    assert old == v1 and service.files().get_media(fileId=fid).execute() == v2
    # newRevision=false replaces the head in place: same head id, its old bytes freed.
    g = upload(service, fid, v3, newRevision=False)
    assert g["headRevisionId"] == f["headRevisionId"] and g["md5Checksum"] == md5(v3)
    assert used(service) == 1500
    assert [r["md5Checksum"] for r in emulator.revisions(fid)] == [md5(v1), md5(v3)]


def test_resumable_update_honours_new_revision_and_quota(tmp_path):
    """A quota that holds the replacement but not the old revision too: only newRevision=false fits."""
    v1, v2 = b"a" * 300_000, b"b" * 400_000
    with Emulator(data_dir=str(tmp_path / "q"), quota_bytes=600_000) as emu:
        fid = emu.add_file("results.csv", v1)
        service = drive_service(emu.url)
        with pytest.raises(HttpError) as err:
            upload(service, fid, v2, resumable=True)
        assert json.loads(err.value.content)["error"]["errors"][0]["reason"] == "storageQuotaExceeded"
        f = upload(service, fid, v2, resumable=True, newRevision=False)
        assert f["md5Checksum"] == md5(v2) and len(emu.revisions(fid)) == 1
        assert emu.read_bytes(fid) == v2 and emu.about()["quotaBytesUsed"] == "400000"


def test_pinned_revisions_survive_the_purge(emulator):
    service = drive_service(emulator.url)
    fid = emulator.add_file("w.pt", b"v1")
    upload(service, fid, b"v2", pinned=True)
    upload(service, fid, b"v3")
    revs = emulator.revisions(fid)
    assert [r["pinned"] for r in revs] == [False, True, False]
    assert emulator.expire_revisions(fid) == 1          # 30 days later: v1 goes, pinned v2 stays
    assert [r["md5Checksum"] for r in emulator.revisions(fid)] == [md5(b"v2"), md5(b"v3")]
    pinned = revs[1]["id"]
    got = service.revisions().update(fileId=fid, revisionId=pinned, body={"pinned": False}).execute()
    assert got["pinned"] is False
    service.revisions().delete(fileId=fid, revisionId=pinned).execute()
    assert [r["md5Checksum"] for r in service.revisions().list(fileId=fid).execute()["items"]] == [md5(b"v3")]
    head = emulator.revisions(fid)[-1]["id"]
    assert service.revisions().get(fileId=fid, revisionId=head).execute()["md5Checksum"] == md5(b"v3")
    with pytest.raises(HttpError) as err:
        service.revisions().delete(fileId=fid, revisionId=head).execute()
    assert err.value.resp.status == 400
    with pytest.raises(HttpError) as err:
        service.revisions().get(fileId=fid, revisionId="0Bnope").execute()
    assert err.value.resp.status == 404
    assert emulator.about()["quotaBytesUsed"] == "2"


def test_pydrive2_upload_over_a_file_makes_a_revision(emulator):
    drive = pydrive(emulator.url)
    f = drive.CreateFile({"title": "log.txt"})
    f.SetContentString("first")
    f.Upload()
    f.SetContentString("second")
    f.Upload()
    assert [r["md5Checksum"] for r in emulator.revisions(f["id"])] == [md5(b"first"), md5(b"second")]


def test_readers_cannot_list_revisions(emulator):
    fid = emulator.add_file("shared.bin", b"s", owner="teacher@school.edu", shared_with_me="reader")
    with pytest.raises(HttpError) as err:
        drive_service(emulator.url).revisions().list(fileId=fid).execute()
    assert err.value.resp.status == 403
