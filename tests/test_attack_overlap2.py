"""Attacks on the extraction that follows a download (issue 15), second round: archives of
the shapes users really have, kills and concurrent pulls at real moments. Each test states
what a user relies on: the members are written while the archive downloads, DEST ends
exactly as the usual extraction of the verified archive leaves it, and nothing of a killed
or concurrent run stays behind."""
from __future__ import annotations

import os
import zipfile

import pytest

import drivestage
from drivestage.unpack import Unpacking

from _archives import a_zip, tree


@pytest.fixture(autouse=True)
def _fast(fast_retries):
    """Backoffs of a millisecond, without jitter, for every test here."""


def _zip64_end_records(members: dict[str, bytes], monkeypatch) -> bytes:
    """A zip ending as one of more than 65,535 members does (``zip`` and Python both write
    it so): zip64 end records before the end record, which still holds the directory's true
    size and offset. Built with Python's own writer, told that the limit is one member."""
    with monkeypatch.context() as m:
        m.setattr(zipfile, "ZIP_FILECOUNT_LIMIT", 1)
        blob = a_zip(members, zipfile.ZIP_DEFLATED)
    assert b"PK\x06\x06" in blob[-120:] and b"PK\x06\x07" in blob[-50:]
    return blob


def test_a_zip_with_zip64_end_records_is_extracted_while_it_downloads(emulator, drive_env,
                                                                      tmp_path, monkeypatch):
    """VOC07+12 zips hold more than 65,535 members, so their end is zip64's: the central
    directory is still found, fetched first and followed (before the fix, its start was read
    76 bytes too late, the directory did not parse and nothing overlapped the download),
    and DEST ends with exactly the members."""
    members = {f"VOCdevkit/a/{i:05d}.xml": os.urandom(800) for i in range(1500)}
    blob = _zip64_end_records(members, monkeypatch)
    emulator.add_file("d/voc.zip", blob)
    store = drivestage.connect()
    entry = store.resolve("d/voc.zip")
    dest = tmp_path / "data"
    dest.mkdir()
    target = str(dest / "voc.zip")
    unpacking = Unpacking(store, entry, target, str(dest), extract=True, jobs=None,
                          chunk_size=None, progress=None, describe="drive:d/voc.zip",
                          reserve=0, lock_dir=None)
    try:
        assert unpacking.follower is not None, "the zip is not extracted while it downloads"
        unpacking.download()
        result = unpacking.extract(target)
    finally:
        unpacking.close()
    assert sorted(result.paths) == sorted(members)
    assert tree(dest) == {"voc.zip": blob, **members}
