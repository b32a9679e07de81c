"""fidelity41: the emulator refuses what Drive refuses. A folder given a parent inside itself
(the "Resolve errors" guide, ``badRequest``: "You tried to add a parent that would create a
cycle in the directory graph"), and the per-user daily download cap (about 10 TB; rclone's
``--drive-stop-on-download-limit`` help and issue 2652: every file of that user refused with
the per-file quota's body), both through the real googleapiclient and PyDrive2."""
from __future__ import annotations

import json

import pytest
from googleapiclient.errors import HttpError
from pydrive2.files import ApiRequestError

from _drive_clients import drive_service, pydrive


def first(err: HttpError) -> tuple:
    e = json.loads(err.content)["error"]["errors"][0]
    return err.resp.status, e["domain"], e["reason"], e["message"]


def _tree(emulator) -> dict:
    return {r["id"]: list(r["parents"]) for r in emulator.store.all_files()}


@pytest.mark.parametrize("into", ["a", "a/b", "a/b/c"])
def test_a_folder_moved_into_itself_or_below_it_is_400_bad_request(emulator, into):
    emulator.add_file("a/b/c/x.txt", b"x")
    a, target = emulator.find("a")["id"], emulator.find(into)["id"]
    before = _tree(emulator)
    service = drive_service(emulator.url)
    with pytest.raises(HttpError) as err:
        service.files().update(fileId=a, addParents=target,
                               removeParents=emulator.store.get(a)["parents"][0], body={}).execute()
    assert first(err.value) == (400, "global", "badRequest", "Bad Request")
    # The same move asked by PyDrive2, through the body's parents (files.update, PUT).
    f = pydrive(emulator.url).CreateFile({"id": a})
    f.FetchMetadata()
    f["parents"] = [{"id": target}]
    with pytest.raises(ApiRequestError) as refused:
        f.Upload()
    assert refused.value.error["code"] == 400
    assert refused.value.GetField("reason") == "badRequest"
    assert _tree(emulator) == before


def test_a_folder_moved_beside_or_above_is_still_taken(emulator):
    emulator.add_file("a/b/c/x.txt", b"x")
    c, a = emulator.find("a/b/c")["id"], emulator.find("a")["id"]
    service = drive_service(emulator.url)
    b = emulator.find("a/b")["id"]
    moved = service.files().update(fileId=c, addParents=a, removeParents=b, body={}).execute()
    assert [p["id"] for p in moved["parents"]] == [a]
    # A cycle already there (seeded: the Python API is not Drive) blocks no other change.
    emulator.store.update(a, parents=[*emulator.store.get(a)["parents"], c])
    renamed = service.files().patch(fileId=a, body={"title": "A"}).execute()
    assert renamed["title"] == "A"


def test_the_daily_download_cap_refuses_every_file_with_the_per_file_body(emulator):
    big = emulator.add_file("big.bin", b"b" * 600)
    small = emulator.add_file("small.txt", b"s")
    other = emulator.add_file("other.txt", b"o" * 10)
    emulator.set_api_quota(None, download_bytes_per_day=1000)
    service = drive_service(emulator.url)
    assert service.files().get_media(fileId=big).execute() == b"b" * 600
    assert service.files().get_media(fileId=big).execute() == b"b" * 600  # crosses it: served
    for fid in (big, small, other):
        with pytest.raises(HttpError) as err:
            service.files().get_media(fileId=fid).execute()
        assert first(err.value) == (403, "global", "downloadQuotaExceeded",
                                    "The download quota for this file has been exceeded.")
    # Metadata still answers; the cap is per user (token): another account downloads.
    assert service.files().get(fileId=small).execute()["title"] == "small.txt"
    assert drive_service(emulator.url, token="other-token").files().get_media(
        fileId=small).execute() == b"s"
    emulator.set_api_quota(None)   # (a new day)
    assert service.files().get_media(fileId=small).execute() == b"s"
