"""fidelity31: a folder of a dataset beside Google Docs as Drive v2 lists them, after
attackhs31 refused binary files listed without ``fileSize``.

Drive v2 listed Docs Editors files without ``fileSize`` (google-api-java-client issue 716:
``getFileSize()`` null for Google Docs); today's v2 reference gives a size to "blobs and first
party editor files" and none to "files that have no size, like shortcuts and folders". Either
way a pull of the folder must take the zip (extracted with ``-x``), the shortcut's target and
an empty file, and skip the Docs as before: the new refusal is for binary files only. Real
PyDrive2/googleapiclient over HTTP against the emulator (``hide_size``).
"""
from __future__ import annotations

import io
import zipfile

import pytest

import _cli
from _envs import env  # noqa: F401  (a fixture)
from drivestage.drive.resources import SIZELESS_MARK

DOC = "application/vnd.google-apps.document"
SHEET = "application/vnd.google-apps.spreadsheet"
FORM = "application/vnd.google-apps.form"


def _zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in (("VOC/a.txt", b"a" * 5000), ("VOC/b.txt", b"b" * 7000)):
            # A fixed date: the same bytes at every call (writestr stamps the current time).
            z.writestr(zipfile.ZipInfo(name, (2026, 1, 1, 0, 0, 0)), data)
    return buf.getvalue()


def _seed(emulator) -> None:
    emulator.add_file("F/data.zip", _zip())
    for name, mime in (("notes", DOC), ("sheet", SHEET), ("form", FORM)):
        emulator.hide_size(emulator.add_file(f"F/{name}", b"seeded", mime_type=mime))
    emulator.add_file("F/listed-doc", b"seeded", mime_type=DOC)  # today's shape: a size
    emulator.add_file("F/empty.txt", b"")
    emulator.add_shortcut("F/link", emulator.add_file("G/w.pt", b"w" * 3000))


def test_docs_listed_without_a_size_are_skipped_and_the_dataset_is_pulled(emulator, env,
                                                                           tmp_path):
    _seed(emulator)
    res = emulator.find("F/notes")
    assert "fileSize" not in res and "md5Checksum" not in res
    code, out, err = _cli.run("pull", "drive:F", str(tmp_path), "-x")
    assert code == 0, err
    dest = tmp_path / "F"
    assert (dest / "VOC" / "a.txt").read_bytes() == b"a" * 5000
    assert (dest / "VOC" / "b.txt").read_bytes() == b"b" * 7000
    assert (dest / "data.zip").read_bytes() == _zip()
    assert (dest / "link").read_bytes() == b"w" * 3000
    assert (dest / "empty.txt").read_bytes() == b""
    for name in ("notes", "sheet", "form", "listed-doc"):
        assert not (dest / name).exists()
        assert f"skipping drive:F/{name}: it has no binary content" in err
    assert "no fileSize" not in err and "Drive lists no size" not in err
    docs = {emulator.find(f"F/{n}")["id"] for n in ("notes", "sheet", "form", "listed-doc")}
    assert not any("alt=media" in r.query and r.path.rsplit("/", 1)[-1] in docs
                   for r in emulator.requests)


def test_ls_marks_no_doc_as_sizeless(emulator, env):
    _seed(emulator)
    code, out, err = _cli.run("ls", "drive:F")
    assert code == 0, err
    assert SIZELESS_MARK not in out
    assert {line.split()[-1] for line in out.splitlines() if line.strip()} >= {
        "data.zip", "notes", "sheet", "form", "listed-doc", "empty.txt", "link"}


def test_hide_size_on_a_binary_file_is_the_lie_attackhs31_refuses(emulator, env):
    """The knob on a binary file: what no real Drive sends, refused as attackhs31 made it."""
    emulator.hide_size(emulator.add_file("F/b.bin", b"b" * 1000))
    code, out, err = _cli.run("ls", "drive:F")
    assert code == 0, err
    assert SIZELESS_MARK in out


def test_hide_size_of_a_folder_is_refused(emulator):
    with pytest.raises(ValueError, match="no size to hide"):
        emulator.hide_size(emulator.add_folder("F/sub"))
