"""Every refusal by its name, as Drive sends it: item limits, abusive files, download quota,
the daily upload cap, per-user quota units and daily limits, and the same bodies injected;
plus API call accounting and per-request latency."""
from __future__ import annotations

import http.client
import io
import json
import time

import pytest
from googleapiclient.errors import HttpError
from googleapiclient.http import MediaIoBaseUpload
from pydrive2.files import ApiRequestError

from _drive_clients import drive_service, pydrive
from drivestage.emulator.errors import DRIVE_ERRORS


def error(err: HttpError) -> dict:
    return json.loads(err.content)["error"]


def first(err: HttpError) -> tuple:
    e = error(err)["errors"][0]
    return err.resp.status, e["domain"], e["reason"], e["message"]


def test_folder_child_limit_and_shared_drive_item_limit(emulator):
    folder = emulator.add_folder("full")
    emulator.set_child_limit(folder, 2)
    emulator.add_file("full/a", b"a")
    drive = pydrive(emulator.url)
    f = drive.CreateFile({"title": "b", "parents": [{"id": folder}]})
    f.Upload()
    with pytest.raises(ApiRequestError) as err:
        drive.CreateFile({"title": "c", "parents": [{"id": folder}]}).Upload()
    assert (err.value.GetField("reason"), err.value.GetField("message")) == \
        ("numChildrenInNonRootLimitExceeded",
         "The limit for this folder's number of children (files and folders) has been exceeded.")
    drive.CreateFile({"title": "root is not limited"}).Upload()
    team = emulator.add_shared_drive("Team", item_limit=2)
    emulator.add_file("x/one", b"1", drive_id=team)      # a folder and a file: 2 items
    service = drive_service(emulator.url)
    with pytest.raises(HttpError) as err:
        service.files().insert(body={"title": "two", "parents": [{"id": team}]}, supportsAllDrives=True).execute()
    assert first(err.value) == (403, "global", "teamDriveFileLimitExceeded",
                                "The file limit for this shared drive has been exceeded.")


def test_abusive_file_and_who_may_acknowledge_it(emulator):
    data = b"MZ not really malware"
    mine = emulator.add_file("mine.exe", data, abusive=True)
    theirs = emulator.add_file("theirs.exe", data, owner="x@example.com", shared_with_me=True, abusive=True)
    organizer = emulator.add_shared_drive("Org")
    content_mgr = emulator.add_shared_drive("Content", role="fileOrganizer")
    in_org = emulator.add_file("a.exe", data, drive_id=organizer, abusive=True)
    in_cm = emulator.add_file("b.exe", data, drive_id=content_mgr, abusive=True)
    service = drive_service(emulator.url)
    for fid in (mine, theirs, in_org, in_cm):
        with pytest.raises(HttpError) as err:
            service.files().get_media(fileId=fid, supportsAllDrives=True).execute()
        assert first(err.value) == (403, "global", "cannotDownloadAbusiveFile",
                                    "This file has been identified as malware or spam and cannot be downloaded.")
    for fid, honoured in ((mine, True), (in_org, True), (theirs, False), (in_cm, False)):
        request = service.files().get_media(fileId=fid, acknowledgeAbuse=True, supportsAllDrives=True)
        if honoured:
            assert request.execute() == data
        else:   # Drive ignores the flag from anyone but the owner or an organizer
            with pytest.raises(HttpError) as err:
                request.execute()
            assert error(err.value)["errors"][0]["reason"] == "cannotDownloadAbusiveFile"


def test_download_quota_exceeded_after_the_allowed_downloads(emulator):
    fid = emulator.add_file("popular.zip", b"p" * 100)
    emulator.limit_downloads(fid, 2)
    drive = pydrive(emulator.url)
    service = drive_service(emulator.url)
    assert service.files().get_media(fileId=fid).execute() == b"p" * 100
    assert service.files().get_media(fileId=fid).execute() == b"p" * 100
    with pytest.raises(HttpError) as err:
        service.files().get_media(fileId=fid).execute()
    assert first(err.value) == (403, "global", "downloadQuotaExceeded",
                                "The download quota for this file has been exceeded.")
    assert drive.CreateFile({"id": fid})["id"] == fid       # metadata still answers
    emulator.limit_downloads(fid, None)
    assert service.files().get_media(fileId=fid).execute() == b"p" * 100


def test_daily_upload_cap_is_user_rate_limit_exceeded_with_its_own_spelling(emulator):
    emulator.set_api_quota(None, upload_bytes_per_day=1_000_000)
    service = drive_service(emulator.url)

    def put(title, size):
        media = MediaIoBaseUpload(io.BytesIO(b"u" * size), "application/octet-stream", resumable=True)
        return service.files().insert(body={"title": title}, media_body=media).execute()

    put("a", 600_000)
    with pytest.raises(HttpError) as err:
        put("b", 600_000)
    assert first(err.value) == (403, "usageLimits", "userRateLimitExceeded", "User rate limit exceeded.")
    assert [f["title"] for f in emulator.files()] == ["a"]
    put("c", 400_000)       # what is left of the day's allowance still goes up


def test_per_user_quota_units_per_minute(emulator):
    emulator.set_api_quota(250)          # files.list costs 100, files.get 5 (issue 12's figures)
    fid = emulator.add_file("f", b"f")
    service = drive_service(emulator.url)
    service.files().list().execute()
    service.files().list().execute()
    service.files().get(fileId=fid).execute()
    with pytest.raises(HttpError) as err:
        service.files().list().execute()
    assert first(err.value) == (403, "usageLimits", "userRateLimitExceeded", "User Rate Limit Exceeded")
    assert drive_service(emulator.url, token="another-user").files().list().execute()["items"]
    emulator.set_api_quota(100, status=429)
    service.files().list().execute()
    with pytest.raises(HttpError) as err:
        service.files().get(fileId=fid).execute()
    assert first(err.value) == (429, "usageLimits", "rateLimitExceeded", "Rate Limit Exceeded")
    emulator.set_api_quota(None, requests_per_day=1)
    service.about().get().execute()
    with pytest.raises(HttpError) as err:
        service.about().get().execute()
    assert first(err.value) == (403, "usageLimits", "dailyLimitExceeded", "Daily Limit Exceeded")


@pytest.mark.parametrize("reason", sorted(DRIVE_ERRORS))
def test_injected_reasons_carry_drives_body_and_headers(emulator, reason):
    spec = DRIVE_ERRORS[reason]
    emulator.faults.inject("GET", r"/about", reason=reason)
    conn = http.client.HTTPConnection(emulator.host, emulator.port, timeout=10)
    conn.request("GET", "/drive/v2/about", headers={"Authorization": "Bearer t"})
    resp = conn.getresponse()
    body = json.loads(resp.read())["error"]
    conn.close()
    assert resp.status == spec.status == body["code"]
    assert (body["errors"][0]["reason"], body["errors"][0]["domain"], body["errors"][0]["message"]) == \
        (reason, spec.domain, spec.text())   # (no file named: files.about)
    assert body["message"] == (spec.top_message or spec.text())
    for name, value in spec.headers.items():
        assert resp.getheader(name) == value
    if reason == "insufficientPermissions":
        assert 'error="insufficient_scope"' in resp.getheader("WWW-Authenticate")


def test_api_calls_are_counted_by_kind(emulator):
    fid = emulator.add_file("VOC/x.zip", b"z" * 10)
    drive = pydrive(emulator.url)
    emulator.clear_requests()
    drive.ListFile({"q": "'root' in parents and trashed=false"}).GetList()
    f = drive.CreateFile({"id": fid})
    f.FetchMetadata()
    assert drive_service(emulator.url).files().get_media(fileId=fid).execute() == b"z" * 10
    media = MediaIoBaseUpload(io.BytesIO(b"u" * 300_000), "application/octet-stream", resumable=True,
                              chunksize=256 * 1024)
    request = drive_service(emulator.url).files().insert(body={"title": "u"}, media_body=media)
    response = None
    while response is None:
        _, response = request.next_chunk()
    calls = emulator.api_calls()
    assert calls == {"files.list": 1, "files.get": 1, "media.download": 1, "files.insert": 1,
                     "media.upload": 2}
    assert emulator.api_calls("media.download") == 1
    assert emulator.quota_units() == 100 + 5 + 200 + 5 + 2 * 5


def test_latency_is_paid_by_every_request_on_a_kept_alive_connection(emulator):
    emulator.faults.latency(0.1)
    conn = http.client.HTTPConnection(emulator.host, emulator.port, timeout=10)
    took = []
    for _ in range(3):
        t = time.perf_counter()
        conn.request("GET", "/drive/v2/about", headers={"Authorization": "Bearer t"})
        resp = conn.getresponse()
        resp.read()
        took.append(time.perf_counter() - t)
    conn.close()
    assert resp.status == 200 and min(took) >= 0.1
    assert [r.duration >= 0.1 for r in emulator.requests] == [True] * 3
