"""fidelity28: the emulator refuses a ``fields`` selection naming a field Drive lacks.

Drive answers a partial-response selection naming a field the resource does not have with
400 ``invalidParameter`` "Invalid field selection <name>" (location ``fields``): a v3 name
in a v2 request (``name``, ``size``), a typo, ``items`` on ``files.get``. The emulator
answered ``{}`` (or left the name out), so a client asking for a field Drive lacks passed
every test and failed on Drive. drivestage's own selection (asked when Drive refuses a
download, to word the message for the caller's role) is one Drive takes.
"""
from __future__ import annotations

import pytest
from googleapiclient.errors import HttpError

from drivestage.drive import connect


@pytest.fixture
def service(emulator, local_state):
    return connect(api_root=emulator.url, token="test-token").service


@pytest.mark.parametrize("fields,bad", [("id,name", "name"), ("size", "size"),
                                        ("capabilities(canFly)", "canFly"),
                                        ("items(id)", "items"),
                                        ("owners(emailAddress,bogus)", "bogus")])
def test_a_field_drive_lacks_is_refused(emulator, service, fields, bad):
    fid = emulator.add_file("A/x.bin", b"abc")
    with pytest.raises(HttpError) as refused:
        service.files().get(fileId=fid, fields=fields).execute()
    assert refused.value.resp.status == 400
    detail = refused.value.error_details[0]
    assert (detail["reason"], detail["message"], detail["location"]) == \
        ("invalidParameter", f"Invalid field selection {bad}", "fields")


def test_fields_drive_has_are_kept_and_the_rest_left_out(emulator, service):
    fid = emulator.add_file("A/x.bin", b"abc")
    got = service.files().get(fileId=fid, fields="id,editable,capabilities(canEdit),"
                              "labels/trashed,parents(id)").execute()
    assert set(got) == {"id", "editable", "capabilities", "labels", "parents"}
    assert got["capabilities"] == {"canEdit": True} and got["labels"] == {"trashed": False}
    listed = service.files().list(q="title = 'x.bin'",
                                  fields="items(id,title),nextPageToken").execute()
    assert listed == {"items": [{"id": fid, "title": "x.bin"}]}
    with pytest.raises(HttpError) as refused:
        service.files().list(fields="items(id,size)").execute()
    assert refused.value.error_details[0]["message"] == "Invalid field selection size"
    about = service.about().get(fields="quotaBytesTotal,quotaBytesUsed").execute()
    assert "quotaBytesUsed" in about and set(about) <= {"quotaBytesTotal", "quotaBytesUsed"}
    # The selection drivestage sends when Drive refuses a download (drive/media.py).
    got = service.files().get(fileId=fid, fields="id,editable,capabilities",
                              supportsAllDrives=True).execute()
    assert set(got) == {"id", "editable", "capabilities"}
