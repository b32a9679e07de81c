"""zip64 archives whose end record holds 0xFFFFFFFF in every field, as Go's archive/zip
writes every zip64 archive (more than 65,535 members or 4 GiB) (attackpull33).

0xFFFFFFFF in the end record says "read the zip64 record", which every zip reader does; the
check of the central directory's size before zipfile reads it took the sentinel for the
size and refused a valid archive of two members: `its central directory takes 4.0 GiB, more
than the 128.0 MiB drivestage reads (about a million members); split it into smaller
archives`. The sentinel counts no more where a zip64 record declares the size; a zip64
record declaring too much, and a sentinel without a zip64 record, are still refused.
"""
from __future__ import annotations

import io
import struct
import zipfile

import pytest

import _cli
import drivestage.errors
from _archives import tree


def _go_zip64(members: dict[str, bytes], cd_size: int = -1) -> bytes:
    """A zip of ``members`` ending as Go's writer ends a zip64 archive: a zip64 record and
    locator, then an end record of 0xFFFF / 0xFFFFFFFF sentinels (``cd_size``: what the
    zip64 record declares instead of the directory's true size)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name, (2024, 1, 2, 3, 4, 6)), data)
    data = buf.getvalue()
    end = data.rfind(b"PK\x05\x06")
    _sig, _d, _c, count, _n, size, offset, _l = struct.unpack_from("<4s4H2LH", data, end)
    record = struct.pack("<4sQ2H2L4Q", b"PK\x06\x06", 44, 45, 45, 0, 0, count, count,
                         size if cd_size < 0 else cd_size, offset)
    locator = struct.pack("<4sLQL", b"PK\x06\x07", 0, end, 1)
    sentinels = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF,
                            0xFFFFFFFF, 0)
    return data[:end] + record + locator + sentinels


MEMBERS = {"ds/a.txt": b"a" * 100, "ds/b.txt": b"b" * 50}


def test_a_zip64_archive_of_sentinels_is_extracted(emulator, local_state, drive_env,
                                                   fast_retries, tmp_path):
    blob = _go_zip64(MEMBERS)
    assert sorted(zipfile.ZipFile(io.BytesIO(blob)).namelist()) == sorted(MEMBERS)
    emulator.add_file("d/set.zip", blob)
    dest = tmp_path / "d"

    _cli.ok("pull", "drive:d/set.zip", str(dest), "-x", "-q")

    assert tree(dest) == {"set.zip": blob, **MEMBERS}
    code, out, err = _cli.run("pull", "drive:d/set.zip", str(dest), "-x")
    assert code == 0 and "2 members already staged" in err, err


@pytest.mark.parametrize("end", ["zip64 record declares too much", "no zip64 record"])
def test_a_directory_too_large_is_still_refused(tmp_path, end):
    from drivestage.extract import extract, members

    blob = _go_zip64(MEMBERS, cd_size=members.MAX_ZIP_DIRECTORY + 1)
    if end == "no zip64 record":   # (zipfile then reads 0xFFFFFFFF bytes: the file's rest)
        blob = blob[:-22 - 20 - 56] + blob[-22:]
    path = tmp_path / "big.zip"
    path.write_bytes(blob)
    with pytest.raises(drivestage.errors.UnsafeArchiveError) as caught:
        extract(str(path), str(tmp_path / "out"))
    shown = "128.0 MiB" if end == "zip64 record declares too much" else "4.0 GiB"
    assert str(caught.value) == (
        f"{path}: its central directory takes {shown}, more than the 128.0 MiB drivestage "
        "reads (about a million members); split it into smaller archives")
