"""An archive that is a tar by its first bytes and a zip by its last (attackpull32).

What a pull extracts is decided by content (``extract.archive_kind``: a tar header or a
compressed tar at the front makes it a tar), but the extraction that follows a download
chose by name: ``p.zip`` was followed as a zip from its central directory. So the first
pull staged the zip's members, and a rerun that put one back (the archive's bytes verified
and unchanged) extracted the tar's: DEST ended with members of both and the stamp called
it extracted. The followed extraction now stands only when the verified file is of the kind
it was followed as; else the file is extracted the usual way, as every later run does.
"""
from __future__ import annotations

import io
import json
import os
import zipfile

import _cli
from _archives import a_tar, tree

TAR = {"a.txt": b"from the tar", "t.txt": b"tar only"}


def _polyglot(head: bytes) -> bytes:
    """``head`` (a tar) with a zip of other members after it."""
    buf = io.BytesIO()
    buf.write(head)
    with zipfile.ZipFile(buf, "a") as zf:
        for name, data in {"a.txt": b"from the zip", "z.txt": b"zip only"}.items():
            zf.writestr(zipfile.ZipInfo(name, (2024, 1, 2, 3, 4, 6)), data)
    return buf.getvalue()


def test_an_archive_named_zip_that_is_a_tar_by_content_is_extracted_as_one_every_time(
        emulator, local_state, drive_env, fast_retries, tmp_path):
    data = _polyglot(a_tar(TAR))
    emulator.add_file("F/p.zip", data)
    dest = tmp_path / "d"

    def pull() -> str:
        code, out, err = _cli.run("pull", "drive:F/p.zip", str(dest), "-x", "--json")
        assert code == 0, err
        return json.loads(out)["action"]

    assert pull() == "download"
    assert tree(dest) == {"p.zip": data, **TAR}
    os.unlink(dest / "t.txt")
    assert pull() == "extract"
    assert tree(dest) == {"p.zip": data, **TAR}
