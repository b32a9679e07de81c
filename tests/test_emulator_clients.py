"""The emulator checked by clients no one here wrote: googleapiclient's media classes,
PyDrive2's GoogleDrive and PyDrive2's fsspec GDriveFileSystem."""
from __future__ import annotations

import hashlib
import io
import os

import pytest
from googleapiclient.errors import HttpError
from googleapiclient.http import MediaFileUpload, MediaIoBaseDownload, MediaIoBaseUpload

from _drive_clients import drive_service, pydrive

KIB256 = 256 * 1024
FOLDER = "application/vnd.google-apps.folder"


@pytest.fixture
def payload(tmp_path):
    data = os.urandom(3 * KIB256 + 12345)
    path = tmp_path / "payload.bin"
    path.write_bytes(data)
    return path, data


def test_googleapiclient_resumable_upload_in_chunks(emulator, payload):
    path, data = payload
    service = drive_service(emulator.url)
    media = MediaFileUpload(str(path), mimetype="application/zip", resumable=True, chunksize=KIB256)
    request = service.files().insert(body={"title": "v.zip", "parents": [{"id": "root"}]},
                                     media_body=media, supportsAllDrives=True)
    response, progress = None, []
    while response is None:
        status, response = request.next_chunk()
        if status:
            progress.append(status.resumable_progress)
    assert progress == [KIB256, 2 * KIB256, 3 * KIB256]
    assert response["md5Checksum"] == hashlib.md5(data).hexdigest()
    assert response["fileSize"] == str(len(data)) and response["mimeType"] == "application/zip"
    assert emulator.read_bytes(response["id"]) == data
    chunks = [r for r in emulator.requests if "upload_id" in r.query]
    assert [r.headers["Content-Range"] for r in chunks][:2] == [
        f"bytes 0-{KIB256 - 1}/{len(data)}", f"bytes {KIB256}-{2 * KIB256 - 1}/{len(data)}"]


def test_googleapiclient_resumes_after_a_failed_chunk(emulator, payload):
    """A 503 on a chunk puts googleapiclient in its error state; the next call asks the
    session where it stands (bytes */N) and carries on from there."""
    path, data = payload
    service = drive_service(emulator.url)
    media = MediaFileUpload(str(path), resumable=True, chunksize=KIB256)
    request = service.files().insert(body={"title": "r.bin"}, media_body=media)
    request.next_chunk()
    emulator.faults.inject("PUT", r"upload_id=", status=503, times=1)
    with pytest.raises(HttpError) as err:
        request.next_chunk()
    assert err.value.resp.status == 503
    response = None
    while response is None:
        _, response = request.next_chunk()
    assert emulator.read_bytes(response["id"]) == data
    assert any(r.headers.get("Content-Range") == f"bytes */{len(data)}" for r in emulator.requests)


def test_googleapiclient_update_content_and_multipart(emulator):
    service = drive_service(emulator.url)
    # Non-resumable media with a body: googleapiclient sends multipart/related (LF line ends).
    media = MediaIoBaseUpload(io.BytesIO(b"first\n--x\r\n"), mimetype="text/plain", resumable=False)
    f = service.files().insert(body={"title": "notes.txt"}, media_body=media).execute()
    assert f["title"] == "notes.txt" and emulator.read_bytes(f["id"]) == b"first\n--x\r\n"
    media = MediaIoBaseUpload(io.BytesIO(b"second version"), mimetype="text/plain", resumable=True)
    g = service.files().update(fileId=f["id"], body={"title": "notes-v2.txt"}, media_body=media).execute()
    assert g["id"] == f["id"] and g["title"] == "notes-v2.txt"
    assert emulator.read_bytes(f["id"]) == b"second version"
    assert g["md5Checksum"] == hashlib.md5(b"second version").hexdigest()


def test_googleapiclient_chunked_download(emulator):
    data = os.urandom(300_001)
    fid = emulator.add_file("d/data.bin", data)
    service = drive_service(emulator.url)
    out = io.BytesIO()
    down = MediaIoBaseDownload(out, service.files().get_media(fileId=fid), chunksize=100_000)
    done, steps = False, 0
    while not done:
        status, done = down.next_chunk()
        steps += 1
    assert out.getvalue() == data and steps == 4 and status.total_size == len(data)
    empty = emulator.add_file("d/empty.bin", b"")
    out = io.BytesIO()
    status, done = MediaIoBaseDownload(out, service.files().get_media(fileId=empty)).next_chunk()
    assert done and out.getvalue() == b"" and status.total_size == 0


def test_pydrive2_everyday_calls(emulator, tmp_path):
    drive = pydrive(emulator.url)
    folder = drive.CreateFile({"title": "VOC_datasets", "mimeType": FOLDER, "parents": [{"id": "root"}]})
    folder.Upload()
    src = tmp_path / "x.zip"
    src.write_bytes(os.urandom(200_000))
    f = drive.CreateFile({"title": "x.zip", "parents": [{"id": folder["id"]}]})
    f.SetContentFile(str(src))
    f.Upload()
    assert f["md5Checksum"] == hashlib.md5(src.read_bytes()).hexdigest()
    listed = drive.ListFile({"q": f"'{folder['id']}' in parents and trashed=false and title='X.ZIP'"}).GetList()
    assert [i["id"] for i in listed] == [f["id"]]  # titles match case-insensitively, as on Drive
    dest = tmp_path / "back.zip"
    drive.CreateFile({"id": f["id"]}).GetContentFile(str(dest))
    assert dest.read_bytes() == src.read_bytes()
    g = drive.CreateFile({"id": f["id"]})
    g.FetchMetadata(fields="fileSize,md5Checksum,labels")
    assert g["fileSize"] == str(src.stat().st_size)
    about = drive.GetAbout()
    assert about["quotaBytesUsed"] == str(src.stat().st_size) and about["rootFolderId"] == emulator.root_id()
    g.Trash()
    assert drive.GetAbout()["quotaBytesUsedInTrash"] == str(src.stat().st_size)
    assert drive.ListFile({"q": f"'{folder['id']}' in parents and trashed=false"}).GetList() == []
    g.UnTrash()
    g.Delete()
    assert drive.GetAbout()["quotaBytesUsed"] == "0"
    from pydrive2.files import ApiRequestError
    with pytest.raises(ApiRequestError) as err:
        drive.CreateFile({"id": f["id"]}).FetchMetadata()
    assert err.value.error["code"] == 404 and err.value.GetField("reason") == "notFound"


def test_pydrive2_fsspec_put_get_ls_rm(emulator, tmp_path):
    GDriveFileSystem = pytest.importorskip("pydrive2.fs", reason="needs pydrive2[fsspec]").GDriveFileSystem

    drive = pydrive(emulator.url)
    emulator.add_folder("bucket")
    fs = GDriveFileSystem("root/bucket", google_auth=drive.auth)
    local = tmp_path / "w.pth"
    local.write_bytes(os.urandom(50_000))
    fs.put_file(str(local), "root/bucket/logs/w.pth")
    fs.put_file(str(local), "root/bucket/logs/w2.pth")
    assert sorted(fs.ls("root/bucket/logs")) == ["root/bucket/logs/w.pth", "root/bucket/logs/w2.pth"]
    info = fs.info("root/bucket/logs/w.pth")
    assert info["size"] == 50_000 and info["checksum"] == hashlib.md5(local.read_bytes()).hexdigest()
    back = tmp_path / "back.pth"
    fs.get_file("root/bucket/logs/w.pth", str(back))
    assert back.read_bytes() == local.read_bytes()
    assert sorted(fs.find("root/bucket")) == ["root/bucket/logs/w.pth", "root/bucket/logs/w2.pth"]
    fs.rm_file("root/bucket/logs/w.pth")
    assert fs.ls("root/bucket/logs") == ["root/bucket/logs/w2.pth"]
    trashed = [f for f in emulator.files() if f["title"] == "w.pth"]
    assert len(trashed) == 1 and trashed[0]["labels"]["trashed"] is True


def test_pydrive2_fsspec_on_a_shared_drive(tmp_path):
    GDriveFileSystem = pytest.importorskip("pydrive2.fs", reason="needs pydrive2[fsspec]").GDriveFileSystem

    from drivestage.emulator import Emulator

    with Emulator(data_dir=str(tmp_path / "d"), service_account=True) as emu:
        drive_id = emu.add_shared_drive("Team")
        fs = GDriveFileSystem(drive_id, google_auth=pydrive(emu.url).auth)
        local = tmp_path / "a.bin"
        local.write_bytes(b"shared bytes")
        fs.put_file(str(local), f"{drive_id}/runs/a.bin")
        assert fs.ls(f"{drive_id}/runs") == [f"{drive_id}/runs/a.bin"]
        assert emu.find("runs/a.bin", drive_id=drive_id)["driveId"] == drive_id


def test_upload_completed_but_response_lost(emulator, payload):
    """The final chunk lands but its answer is cut: re-sending gets the finished file, once."""
    path, data = payload
    service = drive_service(emulator.url)
    media = MediaFileUpload(str(path), resumable=True, chunksize=4 * KIB256)
    request = service.files().insert(body={"title": "lost.bin"}, media_body=media)
    emulator.faults.drop("PUT", r"upload_id=", after_bytes=0, direction="response")
    with pytest.raises((ConnectionError, OSError)):
        request.next_chunk()
    response = None
    for _ in range(3):   # httplib2 may reuse the reset connection once more (a client quirk)
        try:
            _, response = request.next_chunk()
            break
        except (ConnectionError, OSError):
            continue
    assert response["md5Checksum"] == hashlib.md5(data).hexdigest()
    assert [f["title"] for f in emulator.files()] == ["lost.bin"]


def test_long_query_sent_as_post_with_method_override(emulator):
    """googleapiclient turns a GET over 2,048 characters (a long ``or`` chain of parents, as a
    folder listing sends) into POST + X-HTTP-Method-Override: GET; it must list, not insert."""
    folders = [emulator.add_folder(f"d{i:02}") for i in range(60)]
    files = {emulator.add_file(f"d{i:02}/f.bin", b"f") for i in range(0, 60, 7)}
    q = "(" + " or ".join(f"'{f}' in parents" for f in folders) + ") and trashed = false"
    got = drive_service(emulator.url).files().list(q=q, maxResults=1000).execute()
    assert {f["id"] for f in got["items"]} == files
    last = emulator.requests[-1]
    assert (last.method, last.kind, last.headers["X-HTTP-Method-Override"]) == ("GET", "files.list", "GET")
    assert len(emulator.files()) == len(folders) + len(files)     # nothing was created
