"""fidelity26: a shared drive's items exist only for requests that say they handle shared
drives (``supportsAllDrives=true``), as on Drive: without it every files.* call on one
answers 404 "File not found" (Drive's "Implement shared drive support" guide lists the v2
methods; a forgotten flag is the usual cause of 404s users of other tools report for files
in shared drives). The emulator answered them anyway, so a drivestage call that lost the
flag would have passed every test and failed on Drive for every shared-drive user.
"""
from __future__ import annotations

import io
import json
import os

import pytest
from googleapiclient.errors import HttpError
from googleapiclient.http import MediaIoBaseUpload

import _cli
from _checkpoints import md5
from _drive_clients import drive_service
from _envs import env  # noqa: F401  (a fixture)


def _reason(err: HttpError) -> tuple[int, str, str]:
    e = json.loads(err.content)["error"]["errors"][0]
    return err.resp.status, e["reason"], e["message"]


def test_a_shared_drive_item_is_not_found_without_supports_all_drives(emulator):
    team = emulator.add_shared_drive("Team")
    fid = emulator.add_file("data/x.zip", b"zip", drive_id=team)
    folder = emulator.find("data", drive_id=team)["id"]
    files = drive_service(emulator.url).files()
    calls = {
        "get": lambda **kw: files.get(fileId=fid, **kw),
        "media": lambda **kw: files.get_media(fileId=fid, **kw),
        "insert": lambda **kw: files.insert(body={"title": "n", "parents": [{"id": folder}]}, **kw),
        "update": lambda **kw: files.patch(fileId=fid, body={"description": "d"}, **kw),
        "trash": lambda **kw: files.trash(fileId=fid, **kw),
    }
    for name, call in calls.items():
        with pytest.raises(HttpError) as err:
            call().execute()
        status, reason, message = _reason(err.value)
        assert (status, reason) == (404, "notFound"), name
        assert message.startswith("File not found: "), name
        call(supportsAllDrives=True).execute()   # the same call, saying it handles them
    # The deprecated name of the flag still counts, as on Drive.
    assert files.get(fileId=fid, supportsTeamDrives=True).execute()["id"] == fid
    # My Drive's items need no flag.
    mine = emulator.add_file("mine.bin", b"m")
    assert files.get(fileId=mine).execute()["id"] == mine


def test_a_resumable_session_keeps_the_flag_of_its_start(emulator):
    # Drive's session address repeats the start's parameters: the chunks, sent to it
    # without any of their own, are answered as the start was (the file's parents shown).
    team = emulator.add_shared_drive("Team")
    folder = emulator.add_folder("runs", drive_id=team)
    files = drive_service(emulator.url).files()
    data = os.urandom(600 * 1024)
    media = MediaIoBaseUpload(io.BytesIO(data), "application/octet-stream", resumable=True,
                              chunksize=256 * 1024)
    request = files.insert(body={"title": "a.bin", "parents": [{"id": folder}]},
                           media_body=media, supportsAllDrives=True)
    done = None
    while done is None:
        _, done = request.next_chunk()
    assert "supportsAllDrives=true" in request.resumable_uri
    assert "access_token" not in request.resumable_uri
    assert [p["id"] for p in done["parents"]] == [folder]
    assert done["md5Checksum"] == md5(data)


def test_drivestage_sends_the_flag_wherever_a_shared_drive_item_is_named(emulator, env, tmp_path):
    team = emulator.add_shared_drive("Team")
    data = os.urandom(3000)
    emulator.add_file("runs/old/a.bin", data, drive_id=team)
    src = tmp_path / "run"
    src.mkdir()
    new = os.urandom(5000)
    (src / "b.bin").write_bytes(new)
    _cli.ok("push", str(src), "drive:shared/Team/runs/old")
    _cli.ok("pull", "drive:shared/Team/runs/old", str(tmp_path / "back"))
    pulled = {p.name: p.read_bytes() for p in (tmp_path / "back").rglob("*.bin")}
    assert pulled == {"a.bin": data, "b.bin": new}
    _cli.ok("push", str(src), "drive:shared/Team/runs/old", "--delete")
    assert emulator.find("runs/old/a.bin", drive_id=team) is None
    # Every answer was about what was asked: no 404 from a call that lost the flag.
    assert not [r for r in emulator.requests if r.status == 404]
