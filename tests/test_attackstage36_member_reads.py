"""perf36's one read per small zip member (``copying.zip_member_start``), against zips whose
local headers say other things than the central directory: sizes written after the data
(a data descriptor, as a zip streamed to a pipe has), zip64 extra fields, local sizes that
lie, a local name longer than the central one. The worker writes what the central directory
describes, or says the archive is corrupt in the words it used before (attackstage36;
guards: they pass on main)."""
from __future__ import annotations

import io
import os
import struct
import zipfile

import pytest

from drivestage.errors import ArchiveError
from drivestage.extract.copying import CHUNK, Progress
from drivestage.extract.worker import write_order
from test_perf36_member_reads import _orders, place  # noqa: F401  (a fixture)


class _Pipe(io.RawIOBase):
    """An unseekable stream: zipfile writes each member's sizes in a data descriptor."""

    def __init__(self) -> None:
        self.buf = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, b) -> int:   # type: ignore[override]
        self.buf += b
        return len(b)


MEMBERS = {"a.xml": b"<a>" + b"x" * 900 + b"</a>", "b.bin": os.urandom(CHUNK),
           "c.bin": b"", "d.bin": os.urandom(CHUNK + 7)}


def _written(tmp, blob: bytes, afd: int) -> dict[str, bytes]:
    for order in _orders(blob, bound=True):
        write_order(afd, tmp, order, "a.zip", Progress(None))
    out = {}
    for name in MEMBERS:
        with open(os.path.join(tmp.path, name), "rb") as fh:
            out[name] = fh.read()
    return out


@pytest.mark.parametrize("method", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
def test_a_streamed_zip_with_data_descriptors(place, method):
    pipe = _Pipe()
    with zipfile.ZipFile(pipe, "w", method) as zf:
        for name, body in MEMBERS.items():
            with zf.open(zipfile.ZipInfo(name, (2024, 1, 2, 3, 4, 6)), "w") as fh:
                fh.write(body)
    blob = bytes(pipe.buf)
    assert struct.unpack_from("<H", blob, 6)[0] & 0x08   # sizes after the data
    tmp, afd = place(blob)
    assert _written(tmp, blob, afd) == MEMBERS


def test_zip64_local_headers(place):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, body in MEMBERS.items():
            with zf.open(zipfile.ZipInfo(name, (2024, 1, 2, 3, 4, 6)), "w",
                         force_zip64=True) as fh:
                fh.write(body)
    blob = buf.getvalue()
    tmp, afd = place(blob)
    assert _written(tmp, blob, afd) == MEMBERS


def test_local_sizes_that_lie_are_not_read(place):
    """The local header's sizes (0xFFFFFFFF, 7): the central directory's are used."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for name, body in MEMBERS.items():
            zf.writestr(zipfile.ZipInfo(name, (2024, 1, 2, 3, 4, 6)), body)
    blob = bytearray(buf.getvalue())
    for info in zipfile.ZipFile(io.BytesIO(bytes(blob))).infolist():
        struct.pack_into("<II", blob, info.header_offset + 18, 0xFFFFFFFF, 7)
    tmp, afd = place(bytes(blob))
    assert _written(tmp, bytes(blob), afd) == MEMBERS


def test_a_local_name_longer_than_the_central_one_fails_its_crc(place):
    """A local header whose name length says 4 more bytes than its name: the data is read 4
    bytes on, and the member fails its CRC-32, as it did with two reads."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr(zipfile.ZipInfo("a.xml", (2024, 1, 2, 3, 4, 6)), MEMBERS["a.xml"])
        zf.writestr(zipfile.ZipInfo("z.bin", (2024, 1, 2, 3, 4, 6)), b"z" * 64)
    blob = bytearray(buf.getvalue())
    struct.pack_into("<H", blob, 26, len("a.xml") + 4)
    tmp, afd = place(bytes(blob))
    order = _orders(bytes(blob))[0]
    with pytest.raises(ArchiveError) as got:
        write_order(afd, tmp, order, "a.zip", Progress(None))
    assert str(got.value).startswith("member 'a.xml' of a.zip fails its CRC-32 check "
                                     "(expected "), got.value
    assert str(got.value).endswith("the archive is corrupt: make the archive again and "
                                   "upload it"), got.value
