"""Drive as users really have it: shortcuts, link-shared items with resource keys, "Shared
with me", and tokens with narrower scopes, through the real PyDrive2 + googleapiclient."""
from __future__ import annotations

import hashlib
import http.client
import json

import pytest
from googleapiclient.errors import HttpError
from pydrive2.files import ApiRequestError

from _drive_clients import drive_service, pydrive

SHORTCUT = "application/vnd.google-apps.shortcut"
FOLDER = "application/vnd.google-apps.folder"
TEACHER = "teacher@school.edu"


def reason(err: HttpError) -> str:
    return json.loads(err.content)["error"]["errors"][0]["reason"]


def with_keys(request, keys: dict):
    """A googleapiclient request carrying ``X-Goog-Drive-Resource-Keys``."""
    request.headers["X-Goog-Drive-Resource-Keys"] = ",".join(f"{i}/{k}" for i, k in keys.items())
    return request


@pytest.fixture
def classroom(emulator):
    """A teacher's VOC_datasets folder shared with the student, who added a shortcut to it
    (and one to a single file) to My Drive: the classroom case of issue 12."""
    data = b"PK\x03\x04 voc archive" * 100
    folder = emulator.add_folder("VOC_datasets", owner=TEACHER, shared_with_me="reader")
    zip_id = emulator.add_file("VOC_datasets/VOC07.zip", data, owner=TEACHER)
    folder_sc = emulator.add_shortcut("VOC_datasets", folder)
    file_sc = emulator.add_shortcut("Models/VOC07.zip", zip_id)
    return {"data": data, "folder": folder, "zip": zip_id, "folder_sc": folder_sc, "file_sc": file_sc}


def test_shortcuts_look_as_drive_reports_them(emulator, classroom):
    drive = pydrive(emulator.url)
    mine = drive.ListFile({"q": "'root' in parents and trashed=false"}).GetList()
    assert sorted((f["title"], f["mimeType"]) for f in mine) == [("Models", FOLDER), ("VOC_datasets", SHORTCUT)]
    sc = next(f for f in mine if f["mimeType"] == SHORTCUT)
    assert sc["id"] == classroom["folder_sc"]
    assert sc["shortcutDetails"] == {"targetId": classroom["folder"], "targetMimeType": FOLDER}
    for absent in ("fileSize", "md5Checksum", "downloadUrl", "headRevisionId"):
        assert absent not in sc
    assert sc["quotaBytesUsed"] == "0" and sc["capabilities"]["canDownload"] is False
    # The shortcut is not a folder: nothing lists under it; its target's children are the dataset.
    assert drive.ListFile({"q": f"'{sc['id']}' in parents"}).GetList() == []
    inside = drive.ListFile({"q": f"'{classroom['folder']}' in parents and trashed=false"}).GetList()
    assert [(f["title"], f["md5Checksum"]) for f in inside] == \
        [("VOC07.zip", hashlib.md5(classroom["data"]).hexdigest())]
    found = drive.ListFile({"q": f"mimeType = '{SHORTCUT}'"}).GetList()
    assert {f["id"] for f in found} == {classroom["folder_sc"], classroom["file_sc"]}
    file_sc = drive.CreateFile({"id": classroom["file_sc"]})
    file_sc.FetchMetadata()
    assert file_sc["shortcutDetails"]["targetMimeType"] == "application/octet-stream"


def test_media_of_a_shortcut_is_refused_and_its_target_downloads(emulator, classroom):
    service = drive_service(emulator.url)
    with pytest.raises(HttpError) as err:
        service.files().get_media(fileId=classroom["file_sc"]).execute()
    assert err.value.resp.status == 403 and reason(err.value) == "fileNotDownloadable"
    target = service.files().get(fileId=classroom["file_sc"]).execute()["shortcutDetails"]["targetId"]
    assert service.files().get_media(fileId=target).execute() == classroom["data"]


def test_a_file_whose_owner_turned_downloads_off_for_viewers(emulator, classroom):
    # "Viewers and commenters can see the option to download": off (copyRequiresWriterPermission).
    emulator.restrict_download(classroom["zip"])
    editable = emulator.add_file("VOC_datasets/VOC12.zip", b"12", owner=TEACHER,
                                 shared_with_me="writer")
    emulator.restrict_download(editable)
    service = drive_service(emulator.url)
    meta = service.files().get(fileId=classroom["zip"]).execute()
    assert meta["copyRequiresWriterPermission"] is True and meta["copyable"] is False
    assert (meta["capabilities"]["canDownload"], meta["capabilities"]["canCopy"]) == (False, False)
    assert meta["md5Checksum"] == hashlib.md5(classroom["data"]).hexdigest()  # still seen
    for file_id in (classroom["zip"], classroom["file_sc"]):
        target = service.files().get(fileId=file_id).execute()
        target = (target.get("shortcutDetails") or {}).get("targetId", file_id)
        with pytest.raises(HttpError) as err:
            service.files().get_media(fileId=target).execute()
        assert err.value.resp.status == 403 and reason(err.value) == "cannotDownloadFile"
    # An editor downloads it as before; the restriction is for readers and commenters.
    meta = service.files().get(fileId=editable).execute()
    assert meta["capabilities"]["canDownload"] is True
    assert service.files().get_media(fileId=editable).execute() == b"12"
    emulator.restrict_download(classroom["zip"], False)
    assert service.files().get_media(fileId=classroom["zip"]).execute() == classroom["data"]


def test_dangling_shortcuts_when_the_target_is_gone_or_unshared(emulator, classroom):
    service = drive_service(emulator.url)
    emulator.unshare(classroom["folder"])
    sc = service.files().get(fileId=classroom["folder_sc"]).execute()
    assert sc["shortcutDetails"]["targetId"] == classroom["folder"]        # still there, dangling
    for target in (classroom["folder"], classroom["zip"]):                # the folder and below it
        with pytest.raises(HttpError) as err:
            service.files().get(fileId=target).execute()
        assert err.value.resp.status == 404 and reason(err.value) == "notFound"
    mine = emulator.add_file("mine.bin", b"x")
    sc_id = emulator.add_shortcut("link-to-mine", mine)
    service.files().delete(fileId=mine).execute()
    assert service.files().get(fileId=sc_id).execute()["shortcutDetails"]["targetId"] == mine
    with pytest.raises(HttpError) as err:
        service.files().get_media(fileId=mine).execute()
    assert err.value.resp.status == 404


def test_files_insert_creates_a_shortcut_from_its_target(emulator, classroom):
    service = drive_service(emulator.url)
    made = service.files().insert(body={"title": "data", "mimeType": SHORTCUT,
                                        "shortcutDetails": {"targetId": classroom["zip"]}}).execute()
    assert made["shortcutDetails"] == {"targetId": classroom["zip"],
                                       "targetMimeType": "application/octet-stream"}
    assert "fileSize" not in made and made["parents"][0]["isRoot"] is True
    with pytest.raises(HttpError) as err:   # a target the caller cannot see
        hidden = emulator.add_file("private.bin", b"p", owner=TEACHER)
        service.files().insert(body={"title": "x", "mimeType": SHORTCUT,
                                     "shortcutDetails": {"targetId": hidden}}).execute()
    assert err.value.resp.status == 404


@pytest.fixture
def link_shared(emulator):
    """An old link-shared folder (with a resource key) holding a file with its own key."""
    folder = emulator.add_folder("Course", owner=TEACHER, resource_key="0-folderKEY")
    inner = emulator.add_file("Course/weights.pth", b"w" * 1000, owner=TEACHER)
    emulator.set_resource_key(inner, "0-fileKEY")
    return folder, inner


def test_resource_keys_open_link_shared_items(emulator, link_shared):
    folder, inner = link_shared
    service = drive_service(emulator.url)
    for request in (service.files().get(fileId=folder),
                    service.files().list(q=f"'{folder}' in parents"),
                    service.files().get_media(fileId=inner),
                    with_keys(service.files().get_media(fileId=inner), {inner: "0-wrong"})):
        with pytest.raises(HttpError) as err:
            request.execute()
        assert err.value.resp.status == 404 and reason(err.value) == "notFound"
    got = with_keys(service.files().get(fileId=folder), {folder: "0-folderKEY"}).execute()
    assert got["resourceKey"] == "0-folderKEY" and got["parents"] == [] and got["ownedByMe"] is False
    assert "resourcekey=0-folderKEY" in got["alternateLink"]
    listed = with_keys(service.files().list(q=f"'{folder}' in parents"), {folder: "0-folderKEY"}).execute()
    assert [(f["title"], f["resourceKey"]) for f in listed["items"]] == [("weights.pth", "0-fileKEY")]
    assert with_keys(service.files().get_media(fileId=inner), {inner: "0-fileKEY"}).execute() == b"w" * 1000
    # Both keys in one header, as the guide builds it.
    both = with_keys(service.files().get(fileId=inner), {folder: "0-folderKEY", inner: "0-fileKEY"}).execute()
    assert both["id"] == inner
    # Link-only items are never found by a search, keys or not.
    search = with_keys(service.files().list(q="title = 'weights.pth'"), {inner: "0-fileKEY"}).execute()
    assert search["items"] == []


def test_shortcut_carries_the_targets_resource_key(emulator, link_shared):
    folder, _ = link_shared
    sc = emulator.add_shortcut("Course", folder)
    got = drive_service(emulator.url).files().get(fileId=sc).execute()
    assert got["shortcutDetails"] == {"targetId": folder, "targetMimeType": FOLDER,
                                      "targetResourceKey": "0-folderKEY"}


def test_resource_key_as_a_query_parameter_is_refused(emulator, link_shared):
    folder, _ = link_shared
    request = drive_service(emulator.url).files().get(fileId=folder)
    request.uri += "&resourceKey=0-folderKEY"    # the client library has no such parameter either
    with pytest.raises(HttpError) as err:
        request.execute()
    assert err.value.resp.status == 400
    assert "X-Goog-Drive-Resource-Keys" in json.loads(err.value.content)["error"]["message"]


def test_shared_with_me_is_apart_from_my_drive(emulator):
    data = b"labels" * 50
    shared = emulator.add_file("Datasets/labels.zip", data, owner=TEACHER, shared_with_me=True)
    mine = emulator.add_file("mine.txt", b"m")
    drive = pydrive(emulator.url)
    for q in ("sharedWithMe", "sharedWithMe = true and trashed = false", "sharedWithMe and title = 'labels.zip'"):
        assert [f["id"] for f in drive.ListFile({"q": q}).GetList()] == [shared], q
    assert [f["id"] for f in drive.ListFile({"q": "'root' in parents"}).GetList()] == [mine]
    assert [f["id"] for f in drive.ListFile({"q": "not sharedWithMe and trashed = false"}).GetList()] == [mine]
    assert [f["id"] for f in drive.ListFile({"q": "'me' in owners"}).GetList()] == [mine]
    f = drive.CreateFile({"id": shared})
    f.FetchMetadata(fetch_all=True)
    assert (f["shared"], f["ownedByMe"], f["owners"][0]["emailAddress"]) == (True, False, TEACHER)
    assert f["parents"] == [] and "sharedWithMeDate" in f and f["userPermission"]["role"] == "reader"
    caps = f["capabilities"]
    assert (caps["canDownload"], caps["canEdit"], caps["canTrash"], caps["canDelete"]) == (True, False, False, False)
    assert drive_service(emulator.url).files().get_media(fileId=shared).execute() == data
    about = drive.GetAbout()
    assert about["quotaBytesUsed"] == "1"   # someone else's file takes none of my storage


def test_what_a_reader_and_a_writer_may_do_to_shared_files(emulator):
    ro = emulator.add_file("ro.bin", b"r", owner=TEACHER, shared_with_me="reader")
    rw = emulator.add_file("rw.bin", b"w", owner=TEACHER, shared_with_me="writer")
    drive = pydrive(emulator.url)
    for file_id, action in ((ro, "Trash"), (ro, "Delete"), (rw, "Trash"), (rw, "Delete")):
        with pytest.raises(ApiRequestError) as err:
            getattr(drive.CreateFile({"id": file_id}), action)()
        assert err.value.GetField("reason") == "insufficientFilePermissions", (file_id, action)
        assert err.value.GetField("message") == "The user does not have sufficient permissions for this file."
    f = drive.CreateFile({"id": ro})
    f.SetContentString("new")
    with pytest.raises(ApiRequestError) as err:
        f.Upload()
    assert err.value.GetField("reason") == "insufficientFilePermissions"
    g = drive.CreateFile({"id": rw})
    g.SetContentString("edited")
    g.Upload()
    assert emulator.read_bytes(rw) == b"edited"


def test_drive_file_scope_sees_only_what_the_app_made(emulator):
    seeded = emulator.add_file("Uploaded-in-web-ui/data.zip", b"d")
    folder = emulator.find("Uploaded-in-web-ui")["id"]
    emulator.set_token_scopes("app-token", ["https://www.googleapis.com/auth/drive.file"])
    service = drive_service(emulator.url, token="app-token")
    with pytest.raises(HttpError) as err:
        service.files().get(fileId=seeded).execute()
    assert err.value.resp.status == 404
    assert service.files().list(q="trashed = false").execute()["items"] == []
    made = service.files().insert(body={"title": "run1"}).execute()
    assert [f["id"] for f in service.files().list().execute()["items"]] == [made["id"]]
    with pytest.raises(HttpError) as err:
        service.files().insert(body={"title": "x", "parents": [{"id": folder}]}).execute()
    assert err.value.resp.status == 403 and reason(err.value) == "forbidden"
    assert json.loads(err.value.content)["error"]["message"] == "Insufficient permissions for the specified parent."


def test_token_without_the_drive_scope_is_insufficient_permissions(emulator):
    emulator.set_token_scopes("colab-enterprise", ["https://www.googleapis.com/auth/cloud-platform",
                                                   "https://www.googleapis.com/auth/userinfo.email"])
    service = drive_service(emulator.url, token="colab-enterprise")
    with pytest.raises(HttpError) as err:
        service.about().get().execute()
    assert err.value.resp.status == 403 and reason(err.value) == "insufficientPermissions"
    body = json.loads(err.value.content)["error"]
    assert body["message"] == "Request had insufficient authentication scopes."
    assert body["status"] == "PERMISSION_DENIED"
    challenge = err.value.resp["www-authenticate"]
    assert 'error="insufficient_scope"' in challenge and "https://www.googleapis.com/auth/drive" in challenge
    emulator.set_token_scopes("ro", ["drive.readonly"])
    ro = drive_service(emulator.url, token="ro")
    assert ro.about().get().execute()["kind"] == "drive#about"
    with pytest.raises(HttpError) as err:
        ro.files().insert(body={"title": "x"}).execute()
    assert reason(err.value) == "insufficientPermissions"
    emulator.set_token_scopes("meta", ["drive.metadata.readonly"])
    fid = emulator.add_file("m.bin", b"m")
    meta = drive_service(emulator.url, token="meta")
    assert meta.files().get(fileId=fid).execute()["id"] == fid
    with pytest.raises(HttpError) as err:
        meta.files().get_media(fileId=fid).execute()
    assert reason(err.value) == "insufficientPermissions"


def test_listing_shared_items_over_raw_http(emulator):
    """What a client without a library sends: the header works the same on a raw request."""
    folder = emulator.add_folder("Raw", owner=TEACHER, resource_key="0-rawKEY")
    conn = http.client.HTTPConnection(emulator.host, emulator.port, timeout=10)
    conn.request("GET", f"/drive/v2/files?q=%27{folder}%27+in+parents",
                 headers={"Authorization": "Bearer t", "X-Goog-Drive-Resource-Keys": f"{folder}/0-rawKEY"})
    resp = conn.getresponse()
    assert resp.status == 200 and json.loads(resp.read())["items"] == []
    conn.close()
    assert emulator.requests[-1].headers["X-Goog-Drive-Resource-Keys"] == f"{folder}/0-rawKEY"


def test_control_api_seeds_the_same_drive(emulator):
    """What the Python API does, over HTTP for tests in another process or language."""
    import urllib.request

    def post(path, body):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        with urllib.request.urlopen(urllib.request.Request(emulator.url + path, data=data, method="POST"),
                                    timeout=10) as resp:
            return json.load(resp)

    f = post(f"_emulator/files?path=Course/x.zip&owner={TEACHER}&resource_key=0-ctlKEY", b"zip")
    assert f["resourceKey"] == "0-ctlKEY" and f["owners"][0]["emailAddress"] == TEACHER
    sc = post("_emulator/add_shortcut", {"path": "x.zip", "target_id": f["id"]})["result"]
    team = post("_emulator/drives", {"name": "Team", "role": "fileOrganizer"})["id"]
    post("_emulator/set_token_scopes", {"token": "narrow", "scopes": ["drive.readonly"]})
    post("_emulator/set_abusive", {"file_id": f["id"]})
    service = drive_service(emulator.url)
    assert service.files().get(fileId=sc).execute()["shortcutDetails"]["targetResourceKey"] == "0-ctlKEY"
    assert service.drives().get(driveId=team).execute()["capabilities"]["canDeleteChildren"] is False
    with pytest.raises(HttpError) as err:
        drive_service(emulator.url, token="narrow").files().insert(body={"title": "t"}).execute()
    assert reason(err.value) == "insufficientPermissions"
    with pytest.raises(HttpError) as err:
        with_keys(service.files().get_media(fileId=f["id"]), {f["id"]: "0-ctlKEY"}).execute()
    assert reason(err.value) == "cannotDownloadAbusiveFile"
    with pytest.raises(urllib.error.HTTPError) as err:
        post("_emulator/share", {"file_id": f["id"], "role": "owner"})
    assert err.value.code == 400 and "unknown role 'owner'" in json.loads(err.value.read())["error"]["message"]
