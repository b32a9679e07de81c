"""The 403 answers the emulator sends, against Drive's "Resolve errors" guide
(developers.google.com/workspace/drive/api/guides/handle-errors, its JSON samples) and real
answers (emul48). ``appNotAuthorizedToFile`` named no file ("... read access to the file.")
where the guide's sample says "The user has not granted the app {appId} {verb} access to
the file {fileId}." and a real answer names the Authorization header as its location;
``sharingRateLimitExceeded`` had another domain and message than the guide's; an injected
``notFound`` named no id. Each is now the guide's, with the request's file and verb."""
from __future__ import annotations

import http.client
import json

import pytest
from click.testing import CliRunner
from googleapiclient.errors import HttpError

from drivestage.cli import cli
from drivestage.drive import connect

#: reason -> (domain, errors[0].message, error.message) of the guide's samples ({fileId}
#: and {verb} as the request asked: a GET of the file ID).
GUIDE = {
    "activeItemCreationLimitExceeded": (
        "global", "This account has exceeded the creation limit of 500 million items. To "
        "create more items, permanently delete some items.", None),
    "dailyLimitExceeded": ("usageLimits", "Daily Limit Exceeded", None),
    "domainPolicy": ("global", "The domain administrators have disabled Drive apps.", None),
    "myDriveHierarchyDepthLimitExceeded": (
        "global", "Your My Drive can't contain more than 100 levels of folders. For details, "
        "see https://developers.google.com/workspace/drive/api/guides/handle-errors"
        "#nested-folder-levels.", None),
    "numChildrenInNonRootLimitExceeded": (
        "global", "The limit for this folder's number of children (files and folders) has "
        "been exceeded.", None),
    "sharingRateLimitExceeded": (
        "global", 'Rate limit exceeded. User message: "These item(s) could not be shared '
        'because a rate limit was exceeded: filename', "Rate Limit Exceeded"),
    "storageQuotaExceeded": ("global", "The user's Drive storage quota has been exceeded.", None),
    "teamDriveFileLimitExceeded": (
        "global", "The file limit for this shared drive has been exceeded.", None),
    "teamDriveHierarchyTooDeep": (
        "global", "The shared drive hierarchy depth will exceed the limit.", None),
    "userRateLimitExceeded": ("usageLimits", "User Rate Limit Exceeded", None),
    "appNotAuthorizedToFile": (
        "global", "The user has not granted the app 1234567890 read access to the file ID.",
        None),
}


def _raw(emulator, method: str, target: str) -> tuple[int, dict]:
    conn = http.client.HTTPConnection(emulator.host, emulator.port, timeout=10)
    try:
        conn.request(method, target, b"{}" if method != "GET" else None,
                     {"Authorization": "Bearer t", "Content-Type": "application/json"})
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read())
    finally:
        conn.close()


@pytest.mark.parametrize("reason", sorted(GUIDE))
def test_each_403_is_the_guides_sample(emulator, reason):
    file_id = emulator.add_file("d/a.bin", b"a")
    emulator.faults.inject("GET", r"/files/", reason=reason)
    status, body = _raw(emulator, "GET", f"/drive/v2/files/{file_id}?alt=media")
    domain, message, top = GUIDE[reason]
    message = message.replace("file ID.", f"file {file_id}.")
    item = {"domain": domain, "reason": reason, "message": message}
    if reason == "appNotAuthorizedToFile":   # (a real answer's: the guide's sample has none)
        item.update(locationType="header", location="Authorization")
    assert (status, body) == (403, {"error": {"errors": [item], "code": 403,
                                              "message": top or message}})


def test_app_not_authorized_names_the_file_and_the_access_asked(emulator):
    """Through googleapiclient: a read and a write of the file, a call naming none."""
    file_id = emulator.add_file("d/a.bin", b"a")
    emulator.faults.inject(None, r"/files", reason="appNotAuthorizedToFile", times=None)
    files = connect(api_root=emulator.url, token="t").service.files()
    said = []
    for call in (files.get_media(fileId=file_id), files.delete(fileId=file_id),
                 files.patch(fileId=file_id, body={"title": "b"}), files.list()):
        with pytest.raises(HttpError) as err:
            call.execute()
        assert err.value.resp.status == 403
        said.append(json.loads(err.value.content)["error"]["message"])
    granted = "The user has not granted the app 1234567890"
    assert said == [f"{granted} read access to the file {file_id}.",
                    f"{granted} write access to the file {file_id}.",
                    f"{granted} write access to the file {file_id}.",
                    f"{granted} read access to the file."]
    # An injected 404 names the id asked for, as Drive's "File not found: ID." does.
    emulator.faults.clear()
    emulator.faults.inject("GET", r"/files/", reason="notFound")
    assert _raw(emulator, "GET", f"/drive/v2/files/{file_id}")[1]["error"]["message"] == \
        f"File not found: {file_id}."


def test_pull_says_which_file_the_app_was_not_granted(emulator, drive_env, tmp_path):
    file_id = emulator.add_file("VOC/set.zip", b"zip")
    emulator.faults.inject(path=r"alt=media", reason="appNotAuthorizedToFile", times=None)
    result = CliRunner().invoke(cli, ["pull", "drive:VOC/set.zip", str(tmp_path / "d")],
                                catch_exceptions=False)
    assert result.exit_code == 1
    last = result.stderr.strip().splitlines()[-1]
    assert "these credentials may only open files this app created or was given (the " \
        "drive.file scope; HTTP 403 appNotAuthorizedToFile: The user has not granted the app " \
        f"1234567890 read access to the file {file_id}.)" in last, last
    assert sum(1 for r in emulator.requests if r.status == 403) == 1   # not retried
    assert not (tmp_path / "d" / "set.zip").exists()
