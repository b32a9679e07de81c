"""Which checksum verifies a download (drivestage.checksums), and the SHA-1 / SHA-256 Drive
reports beside the md5 (the emulator models them for every way content gets stored)."""
from __future__ import annotations

import hashlib
import io
import json
import os

import pytest
from googleapiclient.http import MediaIoBaseUpload

from drivestage import checksums
from drivestage.store import RemoteEntry
from tests._drive_clients import drive_service
from _cli import run

KIB256 = 256 * 1024


def _sums(data: bytes) -> dict:
    return {"md5Checksum": hashlib.md5(data).hexdigest(),
            "sha1Checksum": hashlib.sha1(data).hexdigest(),
            "sha256Checksum": hashlib.sha256(data).hexdigest()}


def _reported(resource: dict) -> dict:
    return {k: resource.get(k) for k in ("md5Checksum", "sha1Checksum", "sha256Checksum")}


def test_the_emulator_reports_all_three_checksums_however_the_content_was_stored(emulator):
    service = drive_service(emulator.url)
    seeded = emulator.add_file("seeded.bin", b"seeded bytes")
    assert _reported(service.files().get(fileId=seeded).execute()) == _sums(b"seeded bytes")
    # multipart
    media = MediaIoBaseUpload(io.BytesIO(b"multipart"), mimetype="text/plain", resumable=False)
    f = service.files().insert(body={"title": "m.txt"}, media_body=media).execute()
    assert _reported(f) == _sums(b"multipart")
    # resumable, in chunks
    big = os.urandom(2 * KIB256 + 7)
    media = MediaIoBaseUpload(io.BytesIO(big), mimetype="application/zip", resumable=True,
                              chunksize=KIB256)
    request = service.files().insert(body={"title": "r.zip"}, media_body=media)
    response = None
    while response is None:
        _, response = request.next_chunk()
    assert _reported(response) == _sums(big)
    # new content in place, with and without a new revision: the head's checksums
    for new_revision, data in ((True, b"second"), (False, b"third")):
        media = MediaIoBaseUpload(io.BytesIO(data), mimetype="text/plain", resumable=True)
        g = service.files().update(fileId=f["id"], media_body=media,
                                   newRevision=new_revision).execute()
        assert _reported(g) == _sums(data)
        assert _reported(service.files().get(fileId=f["id"]).execute()) == _sums(data)
    # a copy, an empty file, a listing
    c = service.files().copy(fileId=f["id"], body={"title": "copy.txt"}).execute()
    assert _reported(c) == _sums(b"third")
    e = service.files().insert(body={"title": "empty.txt", "mimeType": "text/plain"}).execute()
    assert _reported(e) == _sums(b"")
    listed = service.files().list(q="title = 'seeded.bin'").execute()["items"]
    assert [_reported(x) for x in listed] == [_sums(b"seeded bytes")]
    # folders have none
    folder = emulator.add_folder("d")
    assert _reported(service.files().get(fileId=folder).execute()) == \
        {"md5Checksum": None, "sha1Checksum": None, "sha256Checksum": None}


def test_set_checksums_drops_or_falsifies_them(emulator):
    service = drive_service(emulator.url)
    fid = emulator.add_file("old.bin", b"from 2012")
    emulator.set_checksums(fid, sha1=None, sha256=None)  # as Drive has for some old files
    assert _reported(service.files().get(fileId=fid).execute()) == \
        {"md5Checksum": hashlib.md5(b"from 2012").hexdigest(), "sha1Checksum": None,
         "sha256Checksum": None}
    with pytest.raises(ValueError, match="unknown checksums"):
        emulator.set_checksums(fid, crc32c="0" * 8)
    # The md5 as well (fidelity28): a wrong one is reported, None leaves it out.
    emulator.set_checksums(fid, md5="0" * 32)
    assert _reported(service.files().get(fileId=fid).execute())["md5Checksum"] == "0" * 32
    emulator.set_checksums(fid, md5=None)
    got = service.files().get(fileId=fid).execute()
    assert "md5Checksum" not in got and got["fileSize"] == str(len(b"from 2012"))


@pytest.mark.parametrize("wanted", ["md5", "sha256"])
def test_a_pull_verifies_with_the_checksum_chosen_and_says_which(emulator, drive_env, tmp_path,
                                                                  monkeypatch, wanted):
    """The server lies about one checksum: the pull fails exactly when that one is the one
    verified, so each is really compared (and the other one is not asked)."""
    monkeypatch.setenv("DRIVESTAGE_CHECKSUM", wanted)
    data = os.urandom(300_000)
    lying = emulator.add_file("lying-sha.bin", data)
    emulator.set_checksums(lying, sha256="0" * 64)
    code, out, err = run("pull", "drive:lying-sha.bin", str(tmp_path / "a"), "-q", "--json")
    if wanted == "sha256":
        assert code == 1 and out == ""
        assert f"(expected sha256 {'0' * 64}, 300000 bytes; got sha256 " \
               f"{hashlib.sha256(data).hexdigest()}, 300000 bytes), twice" in err
        assert os.listdir(tmp_path / "a") == [".drivestage"]
    else:
        assert code == 0, err
        assert json.loads(out)["checksum"] == "md5"
        assert (tmp_path / "a" / "lying-sha.bin").read_bytes() == data
    good = emulator.add_file("good.bin", data)
    code, out, err = run("pull", f"drive:id:{good}", str(tmp_path / "b"), "-q", "--json")
    assert code == 0, err
    assert json.loads(out)["checksum"] == wanted
    assert json.loads(out)["md5"] == hashlib.md5(data).hexdigest()  # Drive's, either way
    assert (tmp_path / "b" / "good.bin").read_bytes() == data
    # A rerun hashes nothing: the stamp vouches for the copy.
    code, out, err = run("pull", f"drive:id:{good}", str(tmp_path / "b"), "-q", "--json")
    assert code == 0 and (json.loads(out)["action"], json.loads(out)["checksum"]) == ("cached", "")


def test_a_file_without_a_sha256_is_verified_with_its_md5(emulator, drive_env, tmp_path,
                                                           monkeypatch):
    monkeypatch.setenv("DRIVESTAGE_CHECKSUM", "sha256")
    data = os.urandom(200_000)
    fid = emulator.add_file("old.bin", data)
    emulator.set_checksums(fid, sha1=None, sha256=None)
    emulator.faults.corrupt(fid)
    code, out, err = run("pull", "drive:old.bin", str(tmp_path), "-q")
    assert code == 1
    assert f"(expected md5 {hashlib.md5(data).hexdigest()}, 200000 bytes; got md5 " in err
    emulator.faults.clear()
    code, out, err = run("pull", "drive:old.bin", str(tmp_path), "-q", "--json")
    assert code == 0 and json.loads(out)["checksum"] == "md5"
    assert (tmp_path / "old.bin").read_bytes() == data


def test_auto_takes_the_checksum_this_machine_computes_faster(monkeypatch):
    entry = RemoteEntry(id="X", name="x", is_dir=False, size=1, md5="A" * 32, sha256="B" * 64)
    monkeypatch.delenv("DRIVESTAGE_CHECKSUM", raising=False)
    faster = "sha256" if checksums.rate("sha256") > checksums.rate("md5") else "md5"
    assert checksums.choose(entry) == checksums.Checksum(
        faster, ("b" * 64) if faster == "sha256" else ("a" * 32))
    # Only what Drive gave can be chosen; nothing when it gave neither.
    assert checksums.choose(RemoteEntry(id="X", name="x", is_dir=False, size=1,
                                        md5="a" * 32)).name == "md5"
    assert checksums.choose(RemoteEntry(id="X", name="x", is_dir=False, size=1)) is None
