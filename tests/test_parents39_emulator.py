"""parents39: the emulator's files.update ``removeParents``, as drivestage now uses it (a
replaced checkpoint's old copy, a dedupe's same-bytes copy, each also in another folder:
only this folder's link is taken away). What Drive's references say:

* a removed parent leaves the item in its other folders (v2 files.update/patch:
  ``removeParents``, "a comma-separated list of parent IDs to remove");
* an item of My Drive whose last parent is removed "is placed under its owner's root" (v2
  parents.delete, ``enforceSingleParent``: deprecated, the single-parent model being the
  only one since 2020);
* a shared drive's item must keep exactly one: 403 ``teamDrivesParentLimit``, "A shared
  drive item must have exactly one parent." (Drive's answer quoted in tidyverse/googledrive
  #377 and rclone #9472). The emulator moved such an item out of its shared drive into the
  caller's My Drive.

Real googleapiclient over HTTP against the emulator; second parents seeded on its store."""
from __future__ import annotations

import pytest
from googleapiclient.errors import HttpError

from _envs import env  # noqa: F401  (a fixture)
from drivestage.drive import connect


def _service(emulator):
    return connect(api_root=emulator.url, token="test-token").service


def test_removing_one_of_two_parents_leaves_the_item_in_the_other(emulator, env):
    fid = emulator.add_file("A/x.pt", b"x")
    a, b = emulator.find("A")["id"], emulator.add_folder("B")
    emulator.store.update_meta(fid, {}, add_parents=[b])

    res = _service(emulator).files().update(fileId=fid, removeParents=a, body={},
                                            supportsAllDrives=True).execute()

    assert [p["id"] for p in res["parents"]] == [b]
    assert [c["id"] for c in emulator.store.children(a)] == []
    assert [c["id"] for c in emulator.store.children(b)] == [fid]
    assert not emulator.store.get(fid)["trashed"]


def test_the_last_parent_of_a_shared_drive_item_is_never_removed(emulator, env):
    drive_id = emulator.store.add_drive("Team")["id"]
    fid = emulator.add_file("runs/x.pt", b"x", drive_id=drive_id)
    folder = emulator.find("runs", drive_id=drive_id)["id"]

    with pytest.raises(HttpError) as err:
        _service(emulator).files().update(fileId=fid, removeParents=folder, body={},
                                          supportsAllDrives=True).execute()

    assert err.value.resp.status == 403
    assert b"teamDrivesParentLimit" in err.value.content
    assert emulator.store.get(fid)["parents"] == [folder]
    assert emulator.store.get(fid)["driveId"] == drive_id


def test_an_item_of_my_drive_without_its_last_parent_goes_to_the_top(emulator, env):
    """(A guard: the emulator did so before.)"""
    fid = emulator.add_file("A/x.pt", b"x")

    res = _service(emulator).files().update(fileId=fid, removeParents=emulator.find("A")["id"],
                                            body={}, supportsAllDrives=True).execute()

    assert [p["isRoot"] for p in res["parents"]] == [True]
