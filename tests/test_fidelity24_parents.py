"""fidelity24: Drive's single-parent model. Since September 2020 an item has exactly one
parent: v2's parents.insert reference
(https://developers.google.com/workspace/drive/api/reference/rest/v2/parents/insert) says
"Adding files to multiple folders is no longer supported. Use shortcuts instead", and a
files.update or files.insert that would leave an item with more parents than it had is
refused (403 ``cannotAddParent``, "Increasing the number of parents is not allowed"; the
"Single-parenting behavior changes" guide). The emulator let an item gain a second parent,
so code that added a parent without removing the old one passed here. Real
PyDrive2/googleapiclient over HTTP against the emulator.
"""
from __future__ import annotations

import pytest
from googleapiclient.errors import HttpError

import _cli
from _envs import env  # noqa: F401  (a fixture)
from drivestage.drive import connect


def _service(emulator):
    return connect(api_root=emulator.url, token="test-token").service


def test_adding_a_second_parent_is_refused(emulator, env):
    fid = emulator.add_file("A/x.pt", b"x")
    b = emulator.add_folder("B")
    with pytest.raises(HttpError) as caught:
        _service(emulator).files().update(fileId=fid, addParents=b, body={},
                                          supportsAllDrives=True).execute()
    assert caught.value.resp.status == 403
    assert caught.value.error_details[0]["reason"] == "cannotAddParent"
    assert [p for p in emulator.store.files[fid]["parents"]] == [emulator.find("A")["id"]]


def test_inserting_an_item_into_two_folders_is_refused(emulator, env):
    a, b = emulator.add_folder("A"), emulator.add_folder("B")
    with pytest.raises(HttpError) as caught:
        _service(emulator).files().insert(
            body={"title": "f", "mimeType": "application/vnd.google-apps.folder",
                  "parents": [{"id": a}, {"id": b}]}, supportsAllDrives=True).execute()
    assert caught.value.resp.status == 403
    assert caught.value.error_details[0]["reason"] == "cannotAddParent"


def test_a_move_adds_and_removes_in_one_request_and_is_allowed(emulator, env):
    fid = emulator.add_file("A/x.pt", b"x")
    a, b = emulator.find("A")["id"], emulator.add_folder("B")
    res = _service(emulator).files().update(fileId=fid, addParents=b, removeParents=a, body={},
                                            supportsAllDrives=True).execute()
    assert [p["id"] for p in res["parents"]] == [b]


def test_dedupe_merges_same_named_folders_with_one_parent_each(emulator, env):
    """drivestage's own moves (dedupe) add the new parent and remove the old one in one
    request: every item ends with exactly one parent."""
    emulator.add_file("M/logs/a.pt", b"a")
    emulator.store.create("logs", "application/vnd.google-apps.folder",
                          [emulator.find("M")["id"]])
    emulator.add_file("M/logs/b.pt", b"b")  # goes into the oldest "logs"
    newer = [r for r in emulator.store.children(emulator.find("M")["id"])
             if r["title"] == "logs"][-1]
    emulator.store.create("c.pt", "application/octet-stream", [newer["id"]])
    code, _, err = _cli.run("dedupe", "drive:M/logs")
    assert code == 0, err
    assert all(len(r["parents"]) == 1 for r in emulator.store.files.values()
               if r["id"] != emulator.store.root_id and r["parents"])
