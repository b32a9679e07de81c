"""attackpull26: the extraction that follows a local original's verification (an archive
the one-read pass cannot follow: :mod:`drivestage.hashed_pass`, and a later pull that
hashes the original first: :mod:`drivestage.stage_original`) must extract only the bytes
that were verified.

Both opened the original by its name again after its md5 was verified: a file renamed
over it, its folder swapped for another one, or a write into it in that moment had the
other bytes' members merged into DEST before the identity check after the extraction failed
the pull; a folder swapped and put back passed that check too, and DEST held the other
archive's members under the verified md5, "extracted and md5 verified".

A hook inside the process stands in for "another program" at that very moment: the call
of the usual extraction.
"""
from __future__ import annotations

import io
import os
import shutil
import zipfile

import pytest

from test_attack22_stage import _tree
from test_stage23 import _rchar, needs_proc_io
from test_messages_walk20 import _drivestage

import drivestage.extract as extract_pkg
import drivestage.hashed_pass as hashed_pass
import drivestage.local_reads as local_reads
import drivestage.stage_original as stage_original


def _zip(members: dict[str, bytes], method: int = zipfile.ZIP_BZIP2) -> bytes:
    """bzip2 members: a zip the one-read pass leaves to the usual extraction."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for path, data in members.items():
            zf.writestr(zipfile.ZipInfo(path, (2020, 1, 1, 0, 0, 0)), data,
                        compress_type=method)
    return buf.getvalue()


GOOD = {f"ds/m{i}.bin": bytes([65 + i]) * 300 for i in range(4)}
EVIL = {f"ds/m{i}.bin": bytes([97 + i]) * 300 for i in range(4)}
NEW = {f"ds/m{i}.bin": bytes([48 + i]) * 300 for i in range(4)}


def _setup(tmp_path, members=GOOD):
    (tmp_path / "input").mkdir()
    archive = tmp_path / "input" / "voc.zip"
    archive.write_bytes(_zip(members))
    (tmp_path / "fake").mkdir()
    (tmp_path / "fake" / "voc.zip").write_bytes(_zip(EVIL))
    return archive, tmp_path / "data"


def _pull(archive, dest):
    return _drivestage("pull", str(archive), str(dest), "-x", "-q")


def _race(tmp_path, archive, how: str) -> None:
    """Another program at the moment the verified original is extracted the usual way."""
    if how == "renamed over":
        shutil.copy(tmp_path / "fake" / "voc.zip", tmp_path / "input" / ".new")
        os.replace(tmp_path / "input" / ".new", archive)
    elif how == "written in place":
        with open(archive, "r+b") as fh:
            fh.write((tmp_path / "fake" / "voc.zip").read_bytes()[:archive.stat().st_size])
    else:  # its folder swapped for another one (the original's own ctime never moves)
        os.rename(tmp_path / "input", tmp_path / "input.real")
        os.rename(tmp_path / "fake", tmp_path / "input")


def _put_back(tmp_path) -> None:
    os.rename(tmp_path / "input", tmp_path / "fake")
    os.rename(tmp_path / "input.real", tmp_path / "input")


def _racing(monkeypatch, module, tmp_path, archive, how: str, back: bool = False) -> list:
    real, calls = module.extract, []

    def racing(*args, **kwargs):
        calls.append(how)
        _race(tmp_path, archive, how)
        try:
            return real(*args, **kwargs)
        finally:
            if back:
                _put_back(tmp_path)

    monkeypatch.setattr(module, "extract", racing)
    return calls


def _assert_nothing_merged(r, archive, dest) -> None:
    assert r.exit_code == 1, r.output
    assert r.output.startswith(f"Error: {archive} changed while it was read"), r.output
    assert _tree(dest) == {}, "members of bytes never verified were merged into DEST"


RACES = ["renamed over", "written in place", "folder swapped"]


@pytest.mark.parametrize("how", RACES)
def test_the_fallback_of_a_first_pull_extracts_only_the_verified_bytes(how, local_state,
                                                                      tmp_path, monkeypatch):
    archive, dest = _setup(tmp_path)
    calls = _racing(monkeypatch, hashed_pass, tmp_path, archive, how)
    r = _pull(archive, dest)
    assert calls == [how]                     # (the usual way after the hash: the attack)
    _assert_nothing_merged(r, archive, dest)


def test_a_folder_swapped_and_put_back_during_the_fallback_stages_nothing_foreign(
        local_state, tmp_path, monkeypatch):
    """The original's identity is the same before and after: that check passed, and the
    other archive's members were staged as the verified md5's, exit 0."""
    archive, dest = _setup(tmp_path)
    _racing(monkeypatch, hashed_pass, tmp_path, archive, "folder swapped", back=True)
    r = _pull(archive, dest)
    assert _tree(dest) != EVIL, "another archive's members staged as the verified one's"
    _assert_nothing_merged(r, archive, dest)
    monkeypatch.undo()
    monkeypatch.setenv("DRIVESTAGE_STATE_DIR", str(tmp_path / "state"))
    assert _pull(archive, dest).exit_code == 0
    assert _tree(dest) == GOOD


@pytest.mark.parametrize("how", RACES)
def test_an_update_hashed_first_extracts_only_the_verified_bytes(how, local_state, tmp_path,
                                                                 monkeypatch):
    """A pull that finds an earlier stamp hashes the original first, then extracts it (the
    new version): the same moment, the same attack."""
    archive, dest = _setup(tmp_path)
    assert _pull(archive, dest).exit_code == 0
    archive.write_bytes(_zip(NEW, zipfile.ZIP_STORED))
    calls = _racing(monkeypatch, extract_pkg, tmp_path, archive, how,
                    back=how == "folder swapped")
    r = _pull(archive, dest)
    assert calls == [how]
    assert r.exit_code == 1, r.output
    assert r.output.startswith(f"Error: {archive} changed while it was read"), r.output
    assert _tree(dest) == GOOD, "members of bytes never verified were merged into DEST"


# ------------------------------- the hash that precedes the extraction, or a copy of a file

def _swapping(monkeypatch, module, tmp_path) -> list:
    """The original's folder swapped for another while it is hashed, and put back."""
    real, calls = module.file_md5, []

    def racing(*args, **kwargs):
        calls.append(args[0])
        _race(tmp_path, None, "folder swapped")
        try:
            return real(*args, **kwargs)
        finally:
            _put_back(tmp_path)

    monkeypatch.setattr(module, "file_md5", racing)
    return calls


def test_the_hash_before_an_update_is_of_the_file_it_extracts(local_state, tmp_path,
                                                              monkeypatch):
    """It hashed the file by its name, then checked the identity by its name: a folder
    swapped meanwhile and put back gave the other file's md5 to the new version's members.
    Once that other file was put there, the pull found its md5 "verified" and kept them."""
    archive, dest = _setup(tmp_path)
    assert _pull(archive, dest).exit_code == 0
    archive.write_bytes(_zip(NEW, zipfile.ZIP_STORED))
    calls = _swapping(monkeypatch, stage_original, tmp_path)
    r = _pull(archive, dest)
    assert calls and r.exit_code == 0, r.output
    assert _tree(dest) == NEW
    monkeypatch.undo()
    monkeypatch.setenv("DRIVESTAGE_STATE_DIR", str(tmp_path / "state"))
    shutil.copy(tmp_path / "fake" / "voc.zip", archive)            # that other file, now
    r = _pull(archive, dest)
    assert r.exit_code == 0, r.output
    assert _tree(dest) == EVIL, "the members of another version kept as verified"


def test_a_copy_pull_whose_source_is_swapped_while_hashed_is_staged_by_the_rerun(
        local_state, tmp_path, monkeypatch):
    """Held: a local folder pulled (no -x) whose file's folder is swapped while the listing
    hashes it, and put back: the copy's checksum fails that pull; the rerun stages it."""
    archive, dest = _setup(tmp_path)
    calls = _swapping(monkeypatch, local_reads, tmp_path)   # (the listing hashes it there)
    first = _drivestage("pull", str(tmp_path / "input"), str(dest), "-q")
    assert calls and first.exit_code == 1                # (the copy's checksum: said)
    monkeypatch.undo()
    monkeypatch.setenv("DRIVESTAGE_STATE_DIR", str(tmp_path / "state"))
    r = _drivestage("pull", str(tmp_path / "input"), str(dest), "-q")
    assert r.exit_code == 0, r.output
    assert (dest / "input" / "voc.zip").read_bytes() == archive.read_bytes()


# ---------------------------------- a download from Drive, extracted after its verification

def test_a_downloaded_archive_replaced_before_its_extraction_is_not_merged(
        emulator, drive_env, local_state, tmp_path, monkeypatch):
    """A zip that cannot be followed while it downloads is extracted once verified and in
    place: opened again by its name, whatever another program renamed over it in DEST
    meanwhile was extracted, and its stamp vouched for it (exit 0)."""
    import drivestage.unpack as unpack

    emulator.add_file("d/voc.zip", _zip(GOOD))
    dest = tmp_path / "data"
    (tmp_path / "other.zip").write_bytes(_zip(EVIL))
    real, calls = unpack.extract, []

    def racing(target, *args, **kwargs):
        calls.append(target)
        os.replace(tmp_path / "other.zip", target)
        return real(target, *args, **kwargs)

    monkeypatch.setattr(unpack, "extract", racing)
    r = _drivestage("pull", "drive:d/voc.zip", str(dest), "-x", "-q")
    assert calls == [str(dest / "voc.zip")]
    assert r.exit_code == 1, r.output
    assert r.output.startswith(f"Error: {dest / 'voc.zip'} changed while it was read"), \
        r.output
    assert _tree(dest) == {"voc.zip": _zip(EVIL)}, "members never verified were merged"
    monkeypatch.undo()
    monkeypatch.setenv("DRIVESTAGE_STATE_DIR", str(tmp_path / "state"))
    for k, v in drive_env.items():
        monkeypatch.setenv(k, v)
    r = _drivestage("pull", "drive:d/voc.zip", str(dest), "-x", "-q")
    assert r.exit_code == 0, r.output
    assert _tree(dest) == {"voc.zip": _zip(GOOD), **GOOD}


@needs_proc_io
def test_a_plain_tar_s_member_list_read_through_its_descriptor_reads_its_headers_alone(
        tmp_path):
    """The member list of a plain tar is read with a seek past each member: read through
    a buffer, each header read took the buffer's 64 KiB (more than the tar for 100 KB
    members); unbuffered, its own blocks (main read 1.2 MB of this 30 MB tar, 8 KiB a
    header: 0.15 MB now)."""
    import tarfile

    from drivestage.extract.members import list_members

    path = tmp_path / "big.tar"
    with tarfile.open(path, "w") as tf:
        for i in range(300):
            info = tarfile.TarInfo(f"f{i:03d}")
            info.size = 100_000
            tf.addfile(info, io.BytesIO(bytes(info.size)))
    before = _rchar()
    kind, entries = list_members(str(path))
    assert kind == "tar" and len(entries) == 300
    assert _rchar() - before < 300 * 2048, _rchar() - before
