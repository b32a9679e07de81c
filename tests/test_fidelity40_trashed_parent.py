"""An item made in, or moved into, a trashed folder is in the trash with it: Drive takes it
(googleworkspace/android-samples issue 66: "API accepts and uploads it and puts it in the
to the folder in the trash"), and the v3 File reference says of ``trashed``: "Whether the
file has been trashed, either explicitly or from a trashed parent folder", and of
``explicitlyTrashed``: "as opposed to recursively trashed from a parent folder"
(developers.google.com/workspace/drive/api/reference/rest/v3/files). The emulator made such
an item untrashed, listed by ``'<folder>' in parents and trashed=false`` under a folder
in the trash.
"""
from __future__ import annotations

import io

from googleapiclient.http import MediaIoBaseUpload

from tests._drive_clients import drive_service


def _labels(service, file_id: str) -> tuple[bool, bool]:
    res = service.files().get(fileId=file_id, fields="labels/trashed,explicitlyTrashed").execute()
    return res["labels"]["trashed"], res["explicitlyTrashed"]


def _listed(service, folder_id: str) -> list[str]:
    q = f"'{folder_id}' in parents and trashed=false"
    return [it["title"] for it in service.files().list(q=q).execute()["items"]]


def test_an_upload_into_a_trashed_folder_lands_in_the_trash(emulator):
    folder = emulator.add_folder("run/logs")
    run = emulator.find("run")["id"]
    service = drive_service(emulator.url)
    service.files().trash(fileId=run).execute()
    body = MediaIoBaseUpload(io.BytesIO(b"ckpt"), "application/octet-stream", resumable=True)
    made = service.files().insert(body={"title": "best.pt", "parents": [{"id": folder}]},
                                  media_body=body).execute()
    assert made["labels"]["trashed"] is True and made["explicitlyTrashed"] is False
    assert _listed(service, folder) == []
    sub = service.files().insert(body={"title": "sub", "parents": [{"id": folder}],
                                       "mimeType": "application/vnd.google-apps.folder"}).execute()
    assert _labels(service, sub["id"]) == (True, False)
    # Restoring the folder restores what was trashed with it.
    service.files().untrash(fileId=run).execute()
    assert _labels(service, made["id"]) == (False, False)
    assert sorted(_listed(service, folder)) == ["best.pt", "sub"]


def test_a_move_into_a_trashed_folder_and_out_again(emulator):
    bin_ = emulator.add_folder("old")
    home = emulator.add_folder("keep")
    item = emulator.add_file("keep/a.bin", b"a")
    service = drive_service(emulator.url)
    service.files().trash(fileId=bin_).execute()
    service.files().update(fileId=item, addParents=bin_, removeParents=home, body={}).execute()
    assert _labels(service, item) == (True, False)
    service.files().update(fileId=item, addParents=home, removeParents=bin_, body={}).execute()
    assert _labels(service, item) == (False, False)
    assert _listed(service, home) == ["a.bin"]
    # An item trashed on its own stays trashed wherever it goes.
    service.files().trash(fileId=item).execute()
    service.files().update(fileId=item, addParents=bin_, removeParents=home, body={}).execute()
    service.files().update(fileId=item, addParents=home, removeParents=bin_, body={}).execute()
    assert _labels(service, item) == (True, True)
