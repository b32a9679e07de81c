"""Shared-drive roles as Drive enforces them (v2 files.trash: at least fileOrganizer;
files.delete: organizer), seen through the real PyDrive2 + googleapiclient."""
from __future__ import annotations

import io
import json

import pytest
from googleapiclient.errors import HttpError
from googleapiclient.http import MediaIoBaseUpload
from pydrive2.files import ApiRequestError

from _drive_clients import drive_service, pydrive

NO_PERMISSION = "The user does not have sufficient permissions for this file."
#: role -> (may add and edit files, may trash, may delete permanently)
RIGHTS = {"organizer": (True, True, True), "fileOrganizer": (True, True, False),
          "writer": (True, False, False), "commenter": (False, False, False), "reader": (False, False, False)}


def error(err: HttpError) -> dict:
    return json.loads(err.content)["error"]


@pytest.fixture(params=list(RIGHTS))
def team(request, emulator):
    role = request.param
    drive_id = emulator.add_shared_drive("Team", role=role)
    ckpt = emulator.add_file("runs/epoch_001.pt", b"old weights", drive_id=drive_id)
    folder = emulator.find("runs", drive_id=drive_id)["id"]
    return role, drive_id, folder, ckpt


def test_capabilities_follow_the_role(emulator, team):
    role, drive_id, folder, ckpt = team
    write, trash, delete = RIGHTS[role]
    service = drive_service(emulator.url)
    caps = service.files().get(fileId=ckpt, supportsAllDrives=True).execute()["capabilities"]
    assert (caps["canEdit"], caps["canTrash"], caps["canDelete"], caps["canDownload"]) == \
        (write, trash, delete, True)
    fcaps = service.files().get(fileId=folder, supportsAllDrives=True).execute()["capabilities"]
    assert (fcaps["canAddChildren"], fcaps["canTrashChildren"], fcaps["canDeleteChildren"]) == (write, trash, delete)
    dcaps = service.drives().get(driveId=drive_id).execute()["capabilities"]
    assert (dcaps["canAddChildren"], dcaps["canTrashChildren"], dcaps["canDeleteChildren"]) == (write, trash, delete)
    user_role = service.files().get(fileId=ckpt, supportsAllDrives=True).execute()["userPermission"]["role"]
    assert user_role == role


def test_delete_trash_and_upload_are_refused_as_drive_refuses_them(emulator, team):
    role, drive_id, folder, ckpt = team
    write, trash, delete = RIGHTS[role]
    drive = pydrive(emulator.url)
    f = drive.CreateFile({"id": ckpt})
    if delete:
        f.Delete()
        assert emulator.files() and all(x["id"] != ckpt for x in emulator.files())
        return
    with pytest.raises(ApiRequestError) as err:
        f.Delete()
    assert err.value.error["code"] == 403
    assert (err.value.GetField("reason"), err.value.GetField("message")) == \
        ("insufficientFilePermissions", NO_PERMISSION)
    if trash:
        f.Trash()
        assert [x["labels"]["trashed"] for x in emulator.files() if x["id"] == ckpt] == [True]
    else:
        with pytest.raises(ApiRequestError) as err:
            f.Trash()
        assert err.value.GetField("reason") == "insufficientFilePermissions"
    service = drive_service(emulator.url)
    media = MediaIoBaseUpload(io.BytesIO(b"new weights"), "application/octet-stream", resumable=True)
    insert = service.files().insert(body={"title": "epoch_002.pt", "parents": [{"id": folder}]},
                                    media_body=media, supportsAllDrives=True)
    if write:
        assert insert.execute()["driveId"] == drive_id
    else:
        with pytest.raises(HttpError) as err:
            insert.execute()
        assert err.value.resp.status == 403
        assert error(err.value)["errors"][0] == {
            "domain": "global", "reason": "forbidden", "locationType": "other",
            "location": "parent.permissions", "message": "Insufficient permissions for the specified parent."}


def test_only_an_organizer_may_empty_a_shared_drives_trash(emulator, team):
    role, drive_id, _, ckpt = team
    emulator.store.set_trashed(ckpt, True)
    request = drive_service(emulator.url).files().emptyTrash(driveId=drive_id)
    if role == "organizer":
        request.execute()
        assert [x for x in emulator.files() if x["id"] == ckpt] == []
    else:
        with pytest.raises(HttpError) as err:
            request.execute()
        assert error(err.value)["errors"][0]["reason"] == "insufficientFilePermissions"


def test_role_can_change_while_running(emulator):
    drive_id = emulator.add_shared_drive("Team", role="fileOrganizer")
    fid = emulator.add_file("a.bin", b"a", drive_id=drive_id)
    service = drive_service(emulator.url)
    with pytest.raises(HttpError):
        service.files().delete(fileId=fid, supportsAllDrives=True).execute()
    emulator.set_drive_role(drive_id, "organizer")
    service.files().delete(fileId=fid, supportsAllDrives=True).execute()
    with pytest.raises(ValueError, match="unknown role 'manager'"):
        emulator.set_drive_role(drive_id, "manager")


def test_a_move_within_the_drive_needs_a_content_manager(emulator, team):
    """Drive's table: moving files and folders within a shared drive takes a Content manager
    (fileOrganizer) or a Manager; a Contributor may add and edit but not move
    (``capabilities.canMoveItemWithinDrive``). The emulator let anyone who could edit move."""
    role, drive_id, folder, ckpt = team
    other = emulator.add_folder("other", drive_id=drive_id)
    service = drive_service(emulator.url)
    caps = service.files().get(fileId=ckpt, supportsAllDrives=True).execute()["capabilities"]
    move = service.files().update(fileId=ckpt, body={}, addParents=other, removeParents=folder,
                                  supportsAllDrives=True)
    if caps["canMoveItemWithinDrive"]:
        assert [p["id"] for p in move.execute()["parents"]] == [other]
        return
    with pytest.raises(HttpError) as err:
        move.execute()
    assert err.value.resp.status == 403
    assert error(err.value)["errors"][0]["reason"] == "insufficientFilePermissions"
    assert [p["id"] for p in service.files().get(fileId=ckpt, supportsAllDrives=True)
            .execute()["parents"]] == [folder]
