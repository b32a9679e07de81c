"""A ``drive.file`` token that also holds a read scope (emul47). Drive v2 shows such a token
every item its read scope reaches, lets it write only what its app created (or was given),
and answers a write of anything else, and a download of it under a metadata-only scope,
403 ``fileAccess`` "The authenticated user has not granted the app N write (read) access to
the file ID" (PyDrive2 issue 192, pasted from Drive v2: a files.delete and an alt=media).
The emulator refused every write of such a token (403 insufficientPermissions, even to the
files it created) and every download under the metadata scope; drivestage read
``fileAccess`` as a sharing problem ("check that this account can access the file")."""
from __future__ import annotations

import io
import json

import pytest
from click.testing import CliRunner
from googleapiclient.errors import HttpError
from googleapiclient.http import MediaIoBaseUpload

from drivestage.cli import cli
from drivestage.drive import connect

READ_AND_APP = ["https://www.googleapis.com/auth/drive.readonly",
                "https://www.googleapis.com/auth/drive.file"]
META_AND_APP = ["https://www.googleapis.com/auth/drive.metadata.readonly",
                "https://www.googleapis.com/auth/drive.file"]


def _refusal(err: pytest.ExceptionInfo) -> tuple[int, dict]:
    return err.value.resp.status, json.loads(err.value.content)["error"]["errors"][0]


def test_a_read_scope_and_drive_file_write_only_what_the_app_made(emulator):
    seeded = emulator.add_file("data/set.zip", b"zip")
    emulator.set_token_scopes("t", READ_AND_APP)
    files = connect(api_root=emulator.url, token="t").service.files()
    # Read: anything the read scope reaches, bytes too.
    assert files.get(fileId=seeded).execute()["title"] == "set.zip"
    assert files.get_media(fileId=seeded).execute() == b"zip"
    # Write: what the app made.
    made = files.insert(body={"title": "ckpt.pt"}, media_body=MediaIoBaseUpload(
        io.BytesIO(b"weights"), "application/octet-stream", resumable=True)).execute()
    files.update(fileId=made["id"], body={"title": "ckpt2.pt"}, media_body=MediaIoBaseUpload(
        io.BytesIO(b"weights2"), "application/octet-stream")).execute()
    assert files.get_media(fileId=made["id"]).execute() == b"weights2"
    # Not what it did not: Drive v2's answer, before any role is looked at.
    for call in (files.delete(fileId=seeded), files.trash(fileId=seeded),
                 files.patch(fileId=seeded, body={"title": "x"})):
        with pytest.raises(HttpError) as err:
            call.execute()
        assert _refusal(err) == (403, {
            "domain": "global", "reason": "fileAccess", "locationType": "header",
            "location": "Authorization",
            "message": f"The authenticated user has not granted the app 1234567890 write access "
                       f"to the file {seeded}"})
    files.delete(fileId=made["id"]).execute()
    assert [(f["title"], f["labels"]["trashed"]) for f in emulator.files()
            if f["mimeType"] != "application/vnd.google-apps.folder"] == [("set.zip", False)]


def test_a_metadata_scope_and_drive_file_read_the_bytes_of_what_the_app_made(emulator):
    seeded = emulator.add_file("data/set.zip", b"zip")
    emulator.set_token_scopes("t", META_AND_APP)
    files = connect(api_root=emulator.url, token="t").service.files()
    assert files.get(fileId=seeded).execute()["fileSize"] == "3"
    with pytest.raises(HttpError) as err:
        files.get_media(fileId=seeded).execute()
    status, item = _refusal(err)
    assert (status, item["reason"]) == (403, "fileAccess")
    assert item["message"].endswith(f"read access to the file {seeded}")
    made = files.insert(body={"title": "own.bin"}, media_body=MediaIoBaseUpload(
        io.BytesIO(b"mine"), "application/octet-stream")).execute()
    assert files.get_media(fileId=made["id"]).execute() == b"mine"


def test_pull_names_the_app_scope_not_the_sharing_settings(emulator, drive_env, tmp_path):
    emulator.add_file("VOC/set.zip", b"zip")
    emulator.set_token_scopes("test-token", META_AND_APP)
    result = CliRunner().invoke(cli, ["pull", "drive:VOC/set.zip", str(tmp_path / "d")],
                                catch_exceptions=False)
    assert result.exit_code == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("Error: ") and "HTTP 403 fileAccess: The authenticated user has " \
        "not granted the app 1234567890 read access to the file" in last
    assert "these credentials may only open files this app created or was given" in last
    assert "sharing" not in last
    # Not retried: one refusal.
    assert sum(1 for r in emulator.requests if r.status == 403) == 1
    assert not (tmp_path / "d" / "set.zip").exists()


def test_drive_v2s_file_access_refusal_is_typed_as_the_apps_scope(emulator, drive_env, tmp_path):
    # The answer alone (injected: any emulator sends it so), read by drivestage: it was
    # "permission denied ... Check that this account can access the file (sharing settings,
    # shared drive membership)", which no sharing setting lifts.
    emulator.add_file("VOC/set.zip", b"zip")
    emulator.faults.inject(path=r"alt=media", reason="fileAccess", times=None)
    result = CliRunner().invoke(cli, ["pull", "drive:VOC/set.zip", str(tmp_path / "d")],
                                catch_exceptions=False)
    assert result.exit_code == 1
    last = result.stderr.strip().splitlines()[-1]
    assert "these credentials may only open files this app created or was given (the " \
        "drive.file scope; HTTP 403 fileAccess: The authenticated user has not granted" in last
    assert "sharing" not in last
    assert sum(1 for r in emulator.requests if r.status == 403) == 1


def test_a_push_that_may_not_prune_what_another_app_made_keeps_it(emulator, drive_env, tmp_path):
    """A pipeline token (drive.readonly + drive.file) pushes into a folder whose checkpoints
    another app (the browser, a former token) uploaded: its own upload goes, the retention's
    deletes of the others are refused, and the push says why and keeps them."""
    import os

    for epoch in (1, 2):
        emulator.add_file(f"runs/epoch_00{epoch}.pt", os.urandom(1000))
    emulator.set_token_scopes("test-token", READ_AND_APP)
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "epoch_003.pt").write_bytes(os.urandom(1000))
    result = CliRunner().invoke(cli, ["push", str(tmp_path / "logs"), "drive:runs",
                                      "--keep-last", "1"], catch_exceptions=False)
    assert result.exit_code == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("Error: delete drive:runs/epoch_001.pt: these credentials may only "
                           "open files this app created or was given (the drive.file scope; "
                           "HTTP 403 fileAccess: "), last
    assert sorted(f["title"] for f in emulator.files() if f["title"].endswith(".pt")) == \
        ["epoch_001.pt", "epoch_002.pt", "epoch_003.pt"]
