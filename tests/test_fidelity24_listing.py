"""fidelity24: files.list as real Drive pages it, which the emulator did not model.

Drive v2's files.list reference
(https://developers.google.com/drive/api/reference/rest/v2/files/list) says of ``maxResults``:
"Partial or empty result pages are possible even before the end of the files list has been
reached", and of ``nextPageToken``: "If the token is rejected for any reason, it should be
discarded, and pagination should be restarted from the first page of results." Drive rejects a
token that went stale during a long listing (gdrive-copy, "Error: Invalid page token" after a
quota pause: https://github.com/ericyd/gdrive-copy/issues/83) with 400 ``invalid`` on
``location: pageToken``. Real PyDrive2/googleapiclient over HTTP against the emulator.
"""
from __future__ import annotations

import hashlib

import pytest

import _cli
from _envs import env  # noqa: F401  (a fixture)
from drivestage.emulator import Emulator


def _seed(emulator: Emulator, n: int) -> dict[str, bytes]:
    out = {}
    for i in range(n):
        data = f"image {i}".encode() * (i + 1)
        emulator.add_file(f"Data/imgs/{i:03d}.jpg", data)
        out[f"{i:03d}.jpg"] = data
    return out


def _pages(emulator: Emulator) -> list[dict]:
    """The query of every files.list request (a page)."""
    return [r.query for r in emulator.requests
            if r.method == "GET" and r.path.rstrip("/") == "/drive/v2/files"]


def test_short_and_empty_pages_before_the_end_are_followed(emulator, env, tmp_path):
    """Drive may answer a page with fewer items than maxResults (even none) and a token: the
    listing goes on to the end, and every file arrives."""
    want = _seed(emulator, 5)
    emulator.faults.short_pages(2)
    code, _, err = _cli.run("pull", "drive:Data/imgs", str(tmp_path), "-q")
    dest = tmp_path / "imgs"
    assert code == 0, err
    got = {p.name: p.read_bytes() for p in dest.iterdir() if p.is_file()}
    assert got == want
    # the folder's listing took three pages of at most two items
    assert sum("pageToken" in q for q in _pages(emulator)) >= 2


def test_the_emulator_rejects_a_stale_page_token_as_drive_does(emulator, env):
    """Drive's answer to a rejected token: 400, reason ``invalid``, location ``pageToken``."""
    from googleapiclient.errors import HttpError

    from drivestage.drive import connect

    _seed(emulator, 3)
    emulator.faults.short_pages(1)
    emulator.faults.expire_page_tokens(1)
    store = connect(api_root=emulator.url, token="test-token")
    service = store.service
    first = service.files().list(q="trashed=false", maxResults=1).execute()
    with pytest.raises(HttpError) as caught:
        service.files().list(q="trashed=false", maxResults=1,
                             pageToken=first["nextPageToken"]).execute()
    assert caught.value.resp.status == 400
    assert caught.value.error_details[0]["reason"] == "invalid"
    assert caught.value.error_details[0]["location"] == "pageToken"


def test_a_rejected_page_token_restarts_the_listing_from_page_one(emulator, env, tmp_path):
    """The pull failed with "Drive answered HTTP 400 invalid: Invalid Value" in the middle of
    a long folder's listing (a stale token): the listing starts over from page one, as Drive's
    reference says, and every file arrives once."""
    want = _seed(emulator, 5)
    emulator.faults.short_pages(2)
    emulator.faults.expire_page_tokens(1)
    code, _, err = _cli.run("pull", "drive:Data/imgs", str(tmp_path), "-q")
    dest = tmp_path / "imgs"
    assert code == 0, err
    got = {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in dest.iterdir() if p.is_file()}
    assert got == {k: hashlib.md5(v).hexdigest() for k, v in want.items()}


def test_a_token_rejected_again_and_again_is_an_error_not_a_loop(emulator, env, tmp_path):
    """A server that rejects every page token: the listing restarts a bounded number of times,
    then fails with one line that says why."""
    _seed(emulator, 5)
    emulator.faults.short_pages(2)
    emulator.faults.expire_page_tokens(None)
    code, _, err = _cli.run("pull", "drive:Data/imgs", str(tmp_path), "-q")
    assert code == 1
    assert "rejected its page token" in err
    assert "Traceback" not in err
    assert sum("pageToken" in q for q in _pages(emulator)) <= 4


# --------------------------------------------------------------------------- shared drives
# drives.list (https://developers.google.com/drive/api/reference/rest/v2/drives/list) pages
# too: maxResults is at most 100 (default 10), and of its nextPageToken the reference says
# the same: "If the token is rejected for any reason, it should be discarded, and pagination
# should be restarted from the first page of results." The emulator sent every shared drive
# in one answer, so drivestage's paging of drives.list never ran in a test.

def _drive_pages(emulator: Emulator) -> list[dict]:
    return [r.query for r in emulator.requests
            if r.method == "GET" and r.path.rstrip("/") == "/drive/v2/drives"]


def test_the_emulator_pages_shared_drives_as_drive_does(emulator, env):
    from drivestage.drive import connect

    for i in range(12):
        emulator.add_shared_drive(f"Team {i:02d}")
    service = connect(api_root=emulator.url, token="test-token").service
    first = service.drives().list().execute()
    assert len(first["items"]) == 10 and first["nextPageToken"]  # Drive's default: 10
    rest = service.drives().list(pageToken=first["nextPageToken"]).execute()
    assert [d["name"] for d in rest["items"]] == ["Team 10", "Team 11"]
    assert "nextPageToken" not in rest
    assert len(service.drives().list(maxResults=500).execute()["items"]) == 12  # at most 100


def test_a_shared_drive_on_a_later_page_is_found(emulator, env, tmp_path):
    for i in range(3):
        emulator.add_shared_drive(f"Team {i}")
    team = emulator.add_shared_drive("Lab")
    emulator.add_file("data/w.pt", b"weights", drive_id=team)
    emulator.faults.short_pages(2)
    code, _, err = _cli.run("pull", "drive:shared/Lab/data/w.pt", str(tmp_path), "-q")
    assert code == 0, err
    assert (tmp_path / "w.pt").read_bytes() == b"weights"
    assert len(_drive_pages(emulator)) == 2


def test_a_rejected_shared_drives_page_token_restarts_that_listing(emulator, env, tmp_path):
    """The pull failed with "Drive answered HTTP 400 invalid" while looking for the shared
    drive by name: the drives listing starts over from its first page."""
    for i in range(3):
        emulator.add_shared_drive(f"Team {i}")
    team = emulator.add_shared_drive("Lab")
    emulator.add_file("data/w.pt", b"weights", drive_id=team)
    emulator.faults.short_pages(2)
    emulator.faults.expire_page_tokens(1)
    code, _, err = _cli.run("pull", "drive:shared/Lab/data/w.pt", str(tmp_path), "-q")
    assert code == 0, err
    assert (tmp_path / "w.pt").read_bytes() == b"weights"
    assert [("pageToken" in q) for q in _drive_pages(emulator)] == [False, True, False, True]


# --------------------------------------------------------------------------- corpora rules
# Drive refuses a shared drive's listing that is not asked for the way its reference says:
# "The includeItemsFromAllDrives parameter must be set to true when driveId is specified or
# corpora contains drive or allDrives." (403, https://github.com/nithinmurali/pygsheets/issues/437)
# and "The driveId parameter must be specified if and only if corpora is set to drive."
# (reason teamDriveIdRequiresTeamDriveCorpora,
# https://github.com/googleapis/google-api-php-client/issues/1825). The emulator listed
# anyway, so a listing that dropped one of the parameters passed here.

def test_the_emulator_refuses_a_shared_drive_listing_without_include_items(emulator, env):
    from googleapiclient.errors import HttpError

    from drivestage.drive import connect

    team = emulator.add_shared_drive("Lab")
    files = connect(api_root=emulator.url, token="test-token").service.files()
    with pytest.raises(HttpError) as caught:
        files.list(corpora="drive", driveId=team, supportsAllDrives=True).execute()
    assert caught.value.resp.status == 403
    assert "includeItemsFromAllDrives parameter must be set to true" in str(caught.value)
    with pytest.raises(HttpError) as caught:
        files.list(driveId=team, includeItemsFromAllDrives=True,
                   supportsAllDrives=True).execute()
    assert caught.value.error_details[0]["reason"] == "teamDriveIdRequiresTeamDriveCorpora"
    assert files.list(corpora="drive", driveId=team, includeItemsFromAllDrives=True,
                      supportsAllDrives=True).execute()["items"] == []


def test_drivestage_lists_a_shared_drive_and_a_shortcut_out_of_it(emulator, env, tmp_path):
    """drivestage's listings of a shared drive pass the rules, a folder reached through a
    shortcut into another drive included (listed without corpora and driveId)."""
    team, other = emulator.add_shared_drive("Lab"), emulator.add_shared_drive("Other")
    emulator.add_file("data/w.pt", b"weights", drive_id=team)
    ext = emulator.add_folder("ext", drive_id=other)
    emulator.add_file("ext/x.bin", b"x", drive_id=other)
    emulator.add_shortcut("data/ext", ext, drive_id=team)
    code, _, err = _cli.run("pull", "drive:shared/Lab/data", str(tmp_path), "-q")
    assert code == 0, err
    assert (tmp_path / "data" / "w.pt").read_bytes() == b"weights"
    assert (tmp_path / "data" / "ext" / "x.bin").read_bytes() == b"x"
