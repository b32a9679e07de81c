"""docs/troubleshooting.md: fidelity28's messages, made to happen against the emulator.

* A download over https redirected to plain http (something on the network rewrites
  Drive's answers): refused in one line; the link and bytes would cross it in clear.
* Downloads turned off for editors after the file was listed: Drive's refusal of the bytes
  (403 ``cannotDownloadFile``) says nothing of the caller's role, and an editor was told that
  "its owner has turned off downloading for viewers and commenters … make you an editor".
  drivestage now asks Drive for the role before it words the message.
See tests/_messages.py.
"""
from __future__ import annotations

import os
import shutil

import httplib2
import pytest

from _envs import env  # noqa: F401  (a fixture)
from _messages import command_error as error
from _messages import error_text, renders, shown
from _proxy import Proxy
from _tls import self_signed
from drivestage.download import download
from drivestage.drive import connect
from drivestage.errors import DownloadRestrictedError


@renders("the download was redirected from https to an unencrypted address")
def test_a_download_redirected_from_https_to_http(emulator, env, tmp_path, monkeypatch):
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    cert, key = self_signed(tmp_path)
    monkeypatch.setattr(httplib2, "CA_CERTS", cert)
    emulator.add_file("VOC/set.bin", os.urandom(5000))
    with Proxy(emulator.url, tls=(cert, key)) as api:
        monkeypatch.setenv("DRIVESTAGE_API_ROOT", api.url)
        emulator.faults.redirect_media(302, origin=emulator.url)
        line = error("pull", "-q", "drive:VOC/set.bin", str(tmp_path / "d"))
    shown("the download was redirected from https to an unencrypted address", line)
    assert line.startswith("Error: download drive:VOC/set.bin bytes 0-4999: "), line
    assert not (tmp_path / "d/set.bin").exists()   # nothing under the final name


@renders("downloading it is turned off even for editors like you")
def test_downloads_turned_off_for_editors_after_the_pull_looked(emulator, env, tmp_path):
    folder = emulator.add_folder("Team", owner="lead@lab.org", shared_with_me="writer")
    emulator.add_shortcut("Team", folder)
    data = emulator.add_file("Team/data.zip", b"d" * 1000, owner="lead@lab.org")
    store = connect(api_root=emulator.url, token="test-token")
    entry = store.resolve("Team/data.zip")
    assert entry.no_download is None
    emulator.restrict_download(data, writers=True)
    with pytest.raises(DownloadRestrictedError) as err:
        download(store, entry, str(tmp_path / "data.zip"))
    line = error_text(err.value)
    shown("downloading it is turned off even for editors like you", line)
    assert "(HTTP 403 cannotDownloadFile: This file cannot be downloaded by the user.)" in line
    assert "viewers and commenters" not in line and "make you an editor" not in line
    assert not (tmp_path / "data.zip").exists()
    # Turned off for readers only: the editor downloads it as before.
    emulator.restrict_download(data, writers=False)
    download(store, entry, str(tmp_path / "data.zip"))
    assert (tmp_path / "data.zip").read_bytes() == b"d" * 1000


@renders("Drive lists no checksum for it")
def test_a_file_drive_lists_without_checksums(emulator, env, tmp_path):
    fid = emulator.add_file("papers/old.pdf", b"%PDF-1.2" * 100)
    emulator.set_checksums(fid, md5=None, sha1=None, sha256=None)
    line = error("pull", "-q", "drive:papers/old.pdf", str(tmp_path / "d"))
    shown("Drive lists no checksum for it", line)
    assert not (tmp_path / "d/old.pdf").exists()


@renders("is in the trash, and only … can take it out")
def test_a_link_to_a_file_its_owner_trashed(emulator, env, tmp_path):
    """A reader who follows a link to a file its owner trashed was told to "restore it
    first", which Drive refuses anyone but the owner (``capabilities.canUntrash`` false)."""
    from _cli import run

    folder = emulator.add_folder("VOC_datasets", owner="teacher@school.edu",
                                 shared_with_me="reader")
    emulator.add_shortcut("VOC_datasets", folder)
    fid = emulator.add_file("VOC_datasets/a.zip", b"z" * 100, owner="teacher@school.edu")
    emulator.store.set_trashed(fid, True)
    store = connect(api_root=emulator.url, token="test-token")
    f = store.drive.CreateFile({"id": fid})
    f.FetchMetadata()
    assert f["labels"]["trashed"] is True and f["capabilities"]["canUntrash"] is False
    code, _, err = run("pull", f"https://drive.google.com/file/d/{fid}/view", str(tmp_path))
    assert code == 1
    line = err.strip().splitlines()[-1]
    shown("is in the trash, and only … can take it out", line)
    assert line == (f"Error: drive:id:{fid} is in the trash, and only its owner "
                    "(teacher@school.edu) can take it out. Ask them to restore it, or to share "
                    "a copy with you"), line
    # Its owner is told to restore it, as before.
    mine = emulator.add_file("mine.bin", b"m")
    emulator.store.set_trashed(mine, True)
    code, _, err = run("pull", f"drive:id:{mine}", str(tmp_path))
    assert code == 1 and err.strip().endswith(f"drive:id:{mine} is in the trash; restore it "
                                              "first"), err


@renders("downloading is turned off for viewers and commenters of it")
def test_a_shared_drive_whose_managers_turned_downloads_off(emulator, env, tmp_path):
    """A shared drive's "Allow viewers and commenters to download" off (its
    ``restrictions.copyRequiresWriterPermission``, which overrides each file's: the v2 Drive
    reference). A Viewer was told "its owner has turned off downloading … Ask the owner":
    a shared drive's file has no owner."""
    from _cli import run

    team = emulator.add_shared_drive("Team Data", role="reader")
    emulator.add_file("VOC/set.zip", b"s" * 100, drive_id=team)
    emulator.add_file("VOC/README.txt", b"r" * 10, drive_id=team)
    from drivestage.drive.places import in_shared_drive

    store = in_shared_drive(connect(api_root=emulator.url, token="test-token"), "Team Data")
    entry = store.resolve("VOC/set.zip")
    assert entry.no_download is None
    emulator.restrict_drive_downloads(team)
    # What the real stack sees.
    drive = store.service.drives().get(driveId=team).execute()
    assert drive["restrictions"]["copyRequiresWriterPermission"] is True
    f = store.drive.CreateFile({"id": entry.id})
    f.FetchMetadata()
    assert f["copyRequiresWriterPermission"] is True
    assert f["capabilities"]["canDownload"] is False
    # Refused at download time (listed before the setting changed): worded for the drive.
    with pytest.raises(DownloadRestrictedError) as err:
        download(store, entry, str(tmp_path / "set.zip"))
    line = error_text(err.value)
    shown("downloading is turned off for viewers and commenters of it", line)
    assert "(HTTP 403 cannotDownloadFile: This file cannot be downloaded by the user.)" in line
    assert "owner" not in line, line
    # Refused while listing: the same words, and a folder pull's way past it.
    code, _, err_text = run("pull", "-q", "drive:shared/Team Data/VOC", str(tmp_path / "d"))
    assert code == 1
    line = err_text.strip().splitlines()[-1]
    assert line.startswith("Error: drive:shared/Team Data/VOC/README.txt: downloading is "
                           "turned off for viewers and commenters of it (Drive reports "
                           "canDownload false for this account): by a Manager of its shared "
                           "drive") or line.startswith(
        "Error: drive:shared/Team Data/VOC/set.zip: downloading is turned off"), line
    assert line.endswith("Or pull the rest of the folder without it: --exclude 'README.txt'") \
        or line.endswith("--exclude 'set.zip'"), line
    # A Contributor downloads as before; lifting the setting lets the Viewer too.
    emulator.set_drive_role(team, "writer")
    download(store, store.resolve("VOC/set.zip"), str(tmp_path / "w.zip"))
    emulator.set_drive_role(team, "reader")
    emulator.restrict_drive_downloads(team, False)
    download(store, store.resolve("VOC/set.zip"), str(tmp_path / "r.zip"))
    assert (tmp_path / "r.zip").read_bytes() == b"s" * 100
