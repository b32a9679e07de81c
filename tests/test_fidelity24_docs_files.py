"""fidelity24: Google Docs Editors files (Docs, Sheets, Slides) as Drive serves them.

Drive v2's File reference (https://developers.google.com/drive/api/reference/rest/v2/files):
``md5Checksum`` "is only populated for files with content stored in Google Drive; it is not
populated for Docs Editors or shortcut files"; ``downloadUrl`` likewise ("not populated for
Google Docs or shortcut files"); ``exportLinks`` holds the "links for exporting Docs Editors
files to specific formats". Their bytes come from files.export: ``alt=media`` answers 403
``fileNotDownloadable`` ("Only files with binary content can be downloaded. Use Export with
Docs Editors files", the Drive "Resolve errors" guide). The emulator served such a file's
seeded bytes with an md5, so a pull or push that read the md5 of a Doc passed here and
would not on Drive. Real PyDrive2/googleapiclient over HTTP against the emulator.
"""
from __future__ import annotations

import pytest

import _cli
from _envs import env  # noqa: F401  (a fixture)
from drivestage.drive import connect

DOC = "application/vnd.google-apps.document"


def test_a_docs_file_has_no_md5_no_download_url_and_export_links(emulator, env):
    fid = emulator.add_file("F/notes", b"seeded text", mime_type=DOC)
    res = connect(api_root=emulator.url, token="test-token").service.files().get(
        fileId=fid, supportsAllDrives=True).execute()
    assert "md5Checksum" not in res and "downloadUrl" not in res
    assert "sha256Checksum" not in res and "headRevisionId" not in res
    assert res["exportLinks"]["application/pdf"].endswith("exportFormat=pdf")


def test_alt_media_of_a_docs_file_is_refused_as_drive_refuses_it(emulator, env):
    from googleapiclient.errors import HttpError

    fid = emulator.add_file("F/notes", b"seeded text", mime_type=DOC)
    service = connect(api_root=emulator.url, token="test-token").service
    with pytest.raises(HttpError) as caught:
        service.files().get_media(fileId=fid, supportsAllDrives=True).execute()
    assert caught.value.resp.status == 403
    assert caught.value.error_details[0]["reason"] == "fileNotDownloadable"


def test_a_folder_pull_takes_the_binary_files_and_leaves_the_doc(emulator, env, tmp_path):
    """The binary file arrives whole; the Doc (seeded with bytes the emulator used to serve)
    is not written as a file of those bytes."""
    emulator.add_file("F/notes", b"seeded text", mime_type=DOC)
    emulator.add_file("F/w.pt", b"weights" * 100)
    code, _, err = _cli.run("pull", "drive:F", str(tmp_path), "-q")
    assert code == 0, err
    assert (tmp_path / "F" / "w.pt").read_bytes() == b"weights" * 100
    assert not (tmp_path / "F" / "notes").exists()
    assert not any("alt" in r.query and r.path.endswith(emulator.find("F/notes")["id"])
                   for r in emulator.requests)
