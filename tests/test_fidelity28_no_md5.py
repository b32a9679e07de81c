"""fidelity28: binary files Drive lists without ``md5Checksum``.

Drive's File reference says ``md5Checksum`` is "populated only for files with content stored
in Drive", and that is not every binary file: rclone issue 980 (2017) found PDFs and .docx
files stored before about 2014 without one ("Ignoring unknown object"; downloading the file
once in the browser made Drive compute it), and CenterForOpenScience/waterbutler's fix of
2017 ("Don't error when GDrive file is missing md5sum") found files viewers may not download
without one. The emulator models it (``emu.set_checksums(file_id, md5=None)``; a new version
reports its md5 again).

drivestage took "no md5" for "no binary content": ``pull drive:papers/old.zip`` was a usage
error telling the user to export a zip "to a file on Drive first" (exit 2), and a folder
pull skipped the file as a Google Doc ("1 skipped (no binary content)"), exit 0: the file
was silently not staged. Now such a file is verified by its SHA-256 when Drive has one;
without any checksum it is refused (nothing unverified is staged: tests/test_liar22_bytes.py)
with the way to get one (a copy made on Drive has them) and, in a folder pull, the
``--exclude`` that pulls the rest.
"""
from __future__ import annotations

import hashlib
import io
import zipfile

import _cli
from _envs import env  # noqa: F401  (a fixture)
from drivestage.drive import connect
from drivestage.emulator.revisions import replace_content


def _zip(text: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("ds/a.txt", text)
    return buf.getvalue()


def _old(emulator, path: str, data: bytes, *, sha256: bool = False) -> str:
    """A file as Drive lists one stored long ago: no md5 (and no SHA-1/SHA-256 unless
    ``sha256``)."""
    fid = emulator.add_file(path, data)
    sums = {"md5": None, "sha1": None}
    if not sha256:
        sums["sha256"] = None
    emulator.set_checksums(fid, **sums)
    return fid


def _media(emulator) -> int:
    return len([r for r in emulator.requests if r.kind == "media.download"])


def test_the_emulator_lists_such_a_file_without_md5_and_the_real_stack_reads_it(
        emulator, env, tmp_path):
    data = b"%PDF-1.2 old" * 100
    fid = _old(emulator, "papers/old.pdf", data)
    store = connect(api_root=emulator.url, token="test-token")
    f = store.drive.CreateFile({"id": fid})
    f.FetchMetadata()
    assert "md5Checksum" not in f and f["fileSize"] == str(len(data))
    assert "sha256Checksum" not in f
    f.GetContentFile(str(tmp_path / "old.pdf"))
    assert (tmp_path / "old.pdf").read_bytes() == data
    # A new version is stored now: Drive computes its md5.
    blob = tmp_path / "blob"
    blob.write_bytes(b"new")
    replace_content(emulator.store, fid, str(blob), 3, hashlib.md5(b"new").hexdigest())
    f = store.drive.CreateFile({"id": fid})
    f.FetchMetadata()
    assert f["md5Checksum"] == hashlib.md5(b"new").hexdigest()


def test_a_file_without_any_checksum_is_refused_with_the_way_to_get_one(emulator, env,
                                                                        tmp_path):
    data = _zip("one")
    fid = _old(emulator, "papers/old.zip", data)
    dest = tmp_path / "d"
    code, _, err = _cli.run("pull", "drive:papers/old.zip", str(dest), "--extract")
    assert code == 1
    line = err.strip().splitlines()[-1]
    assert line == ("Error: drive:papers/old.zip: Drive lists no checksum for it (no "
                    "md5Checksum or sha256Checksum, as for files stored before Drive kept "
                    "them), so its bytes could not be verified; not downloaded. Make a copy "
                    "of it on Drive (File, Make a copy: Drive computes the copy's checksums) "
                    "and pull the copy."), line
    assert _media(emulator) == 0 and not (dest / "old.zip").exists()
    # Stored again (a copy, a new version): Drive lists its md5, and the pull goes through.
    new = _zip("two, longer")
    blob = tmp_path / "blob"
    blob.write_bytes(new)
    replace_content(emulator.store, fid, str(blob), len(new), hashlib.md5(new).hexdigest())
    code, _, err = _cli.run("pull", "drive:papers/old.zip", str(dest), "--extract")
    assert code == 0, err
    assert (dest / "ds/a.txt").read_text() == "two, longer"
    assert f"downloaded and verified ({len(new)} B, {_cli.summed(new)}" in err


def test_a_file_without_md5_is_verified_by_its_sha256(emulator, env, tmp_path):
    data = b"x" * 5000
    _old(emulator, "papers/old.bin", data, sha256=True)
    code, _, err = _cli.run("pull", "drive:papers/old.bin", str(tmp_path / "d"))
    assert code == 0, err
    assert "downloaded and sha256 verified (4.9 KiB, no md5 on Drive," in err, err
    assert "checked by size only" not in err


def test_a_folder_pull_does_not_skip_a_file_without_md5(emulator, env, tmp_path):
    """It was skipped as a Google Doc, exit 0: now the pull says why it cannot verify it and
    how to pull the rest; one with a SHA-256 is pulled and verified."""
    _old(emulator, "papers/old.pdf", b"%PDF old" * 50)
    _old(emulator, "papers/sha.pdf", b"%PDF sha" * 50, sha256=True)
    emulator.add_file("papers/new.pdf", b"%PDF new" * 50)
    dest = tmp_path / "d"
    code, _, err = _cli.run("pull", "drive:papers", str(dest))
    assert code == 1
    line = err.strip().splitlines()[-1]
    assert line.startswith("Error: drive:papers/old.pdf: Drive lists no checksum for it"), line
    assert line.endswith("Or pull the rest of the folder without it: --exclude 'old.pdf'")
    code, _, err = _cli.run("pull", "drive:papers", str(dest), "--exclude", "old.pdf")
    assert code == 0, err
    assert (dest / "papers/new.pdf").read_bytes() == b"%PDF new" * 50
    assert (dest / "papers/sha.pdf").read_bytes() == b"%PDF sha" * 50
    assert "skipped" not in err and "2 files (2 downloaded)" in err, err
    code, _, err = _cli.run("pull", "drive:papers", str(dest), "--exclude", "old.pdf")
    assert code == 0 and "2 files (2 already staged)" in err, err


def test_a_restricted_file_without_md5_says_it_is_restricted(emulator, env, tmp_path):
    """Viewers of a file they may not download may get no md5 for it (waterbutler's case):
    the message is the restriction's, not "no binary content"."""
    folder = emulator.add_folder("VOC_datasets", owner="teacher@school.edu",
                                 shared_with_me="reader")
    emulator.add_shortcut("VOC_datasets", folder)
    fid = emulator.add_file("VOC_datasets/VOC07.zip", b"z" * 100, owner="teacher@school.edu")
    emulator.restrict_download(fid)
    emulator.set_checksums(fid, md5=None)
    code, _, err = _cli.run("pull", "-q", "drive:VOC_datasets/VOC07.zip", str(tmp_path / "d"))
    assert code == 1
    assert err.strip().splitlines()[-1].startswith(
        "Error: drive:VOC_datasets/VOC07.zip: its owner has turned off downloading for "
        "viewers and commenters"), err
    assert _media(emulator) == 0
    # What the real stack sees: no md5 and no link to the bytes (rclone issue 95).
    f = connect(api_root=emulator.url, token="test-token").drive.CreateFile({"id": fid})
    f.FetchMetadata()
    assert f["copyable"] is False and f["capabilities"]["canDownload"] is False
    assert "md5Checksum" not in f and "downloadUrl" not in f and "webContentLink" not in f
