"""zip members compressed with bzip2 or lzma, and zip symlink targets, decompressed with
bounded memory (attackpull33).

``zipfile`` decompresses each read of a bzip2 or lzma member whole, and ``zipfile.read`` a
link target's whole compressed data, keeping only what the member declares: 1 GiB of zeros
is 785 bytes of bzip2, so a zip of a few KB declaring a 1-byte member took gigabytes (a
316-byte zip: 556 MB of memory), the out-of-memory kill of a notebook; and the pull then
said ``extracted``, exit 0. An honest member of a zero-filled file did the same at its full
size. Now every member is decompressed 1 MiB at a time and one inflating past its size is
refused, as deflate members were.
"""
from __future__ import annotations

import bz2
import lzma
import struct
import tracemalloc
import zipfile
import zlib

import pytest

import _cli
from _archives import tree
from _messages import error_line

MIB = 1 << 20
#: ``bz2.compress(bytes(n), 9)`` (compressing takes a second): 45 bytes for 16 MiB, 79 for 64.
BZ2_OF_ZEROS = {n * MIB: bytes.fromhex(h) for n, h in [
    (16, "425a683931415926535952853e25008080c000c000000820003080291a0100d20100e2ee48a70a120a"
         "50a7c4a0"),
    (64, "425a68393141592653590e09e2df015f8e4000c0000008200030804d4642a025a90a8097314159265359"
         "bc04b5c300a275c000c0000008200020a40836328a884d2a2a2138bb9229c2848500bb83e8")]}


def _compressed(method: int, data: bytes) -> bytes:
    """``data`` as a zip member's compressed bytes."""
    if method == zipfile.ZIP_BZIP2:
        known = BZ2_OF_ZEROS.get(len(data))
        return known if known is not None and not any(data) else bz2.compress(data, 9)
    if method == zipfile.ZIP_LZMA:   # zip's header: version, properties' size, properties
        lzma1 = {"id": lzma.FILTER_LZMA1, "preset": 0}
        c = lzma.LZMACompressor(lzma.FORMAT_RAW, filters=[lzma1])
        raw = c.compress(data) + c.flush()
        props = lzma._encode_filter_properties(lzma1)  # type: ignore[attr-defined]
        return struct.pack("<BBH", 9, 4, len(props)) + props + raw
    c = zlib.compressobj(1, zlib.DEFLATED, -15)
    return c.compress(data) + c.flush()


def _zip(name: str, method: int, payload: bytes, size: int, crc: int,
         mode: int = 0o100644) -> bytes:
    """A zip of one member whose compressed bytes are ``payload``, declaring ``size`` bytes
    of CRC-32 ``crc`` (a lie, for a bomb)."""
    n = name.encode()
    local = struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", 63, 0, method, 0, 0x21, crc,
                        len(payload), size, len(n), 0) + n
    central = struct.pack("<4sHHHHHHIIIHHHHHII", b"PK\x01\x02", 0x033F, 63, 0, method, 0, 0x21,
                          crc, len(payload), size, len(n), 0, 0, 0, 0, mode << 16, 0) + n
    body = local + payload
    end = struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, 1, 1, len(central), len(body), 0)
    return body + central + end


def _pull(emulator, tmp_path, data: bytes) -> tuple[int, str, int]:
    """``pull drive:d/b.zip DEST -x``: exit code, stderr, and the most memory Python held
    while it ran (after a pull of a small zip: the modules it imports are not counted)."""
    emulator.add_file("d/w.zip", _zip("w.txt", zipfile.ZIP_STORED, b"w", 1, zlib.crc32(b"w")))
    _cli.ok("pull", "drive:d/w.zip", str(tmp_path / "warm"), "-x", "-q")
    emulator.add_file("d/b.zip", data)
    tracemalloc.start()
    try:
        code, _out, err = _cli.run("pull", "drive:d/b.zip", str(tmp_path / "d"), "-x", "-q")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return code, err, peak


METHODS = {"bzip2": zipfile.ZIP_BZIP2, "lzma": zipfile.ZIP_LZMA}


@pytest.mark.parametrize("method", list(METHODS))
def test_a_member_that_inflates_past_its_declared_size_is_refused_in_bounded_memory(
        emulator, local_state, drive_env, fast_retries, tmp_path, method):
    zeros = bytes((64 if method == "bzip2" else 16) * MIB)
    data = _zip("a.bin", METHODS[method], _compressed(METHODS[method], zeros), 1,
                zlib.crc32(b"\0"))

    code, err, peak = _pull(emulator, tmp_path, data)

    assert code == 1, err
    dest = tmp_path / "d"
    assert error_line(err) == (f"Error: member 'a.bin' of {dest / 'b.zip'} inflates past its "
                               "declared 1 bytes; the archive is corrupt (or a zip bomb)")
    assert tree(dest) == {"b.zip": data}   # downloaded and verified; nothing extracted
    assert peak < 12 * MIB, peak


def test_a_zero_filled_member_compressed_with_bzip2_extracts_in_bounded_memory(
        emulator, local_state, drive_env, fast_retries, tmp_path):
    zeros = bytes(16 * MIB)
    data = _zip("z.bin", zipfile.ZIP_BZIP2, _compressed(zipfile.ZIP_BZIP2, zeros), len(zeros),
                zlib.crc32(zeros))

    code, err, peak = _pull(emulator, tmp_path, data)

    assert code == 0, err
    got = (tmp_path / "d" / "z.bin").read_bytes()
    assert len(got) == len(zeros) and got == zeros
    assert peak < 12 * MIB, peak


def test_a_symlink_member_whose_data_inflates_past_its_target_is_refused_in_bounded_memory(
        emulator, local_state, drive_env, fast_retries, tmp_path):
    data = _zip("lnk", zipfile.ZIP_DEFLATED,
                _compressed(zipfile.ZIP_DEFLATED, b"a.txt" + bytes(16 * MIB)), 5,
                zlib.crc32(b"a.txt"), mode=0o120777)

    code, err, peak = _pull(emulator, tmp_path, data)

    assert code == 1, err
    dest = tmp_path / "d"
    assert error_line(err) == (f"Error: member 'lnk' of {dest / 'b.zip'} inflates past its "
                               "declared 5 bytes; the archive is corrupt (or a zip bomb)")
    assert tree(dest) == {"b.zip": data}
    assert peak < 12 * MIB, peak


@pytest.mark.parametrize("method", list(METHODS))
def test_bzip2_and_lzma_members_and_links_extract_as_before(
        emulator, local_state, drive_env, fast_retries, tmp_path, method):
    src = tmp_path / "b.zip"
    files = {"ds/a.txt": b"labels\n" * 2000, "ds/e.bin": b"",
             "ds/r.bin": bytes(range(256)) * 500}
    with zipfile.ZipFile(src, "w", METHODS[method]) as zf:
        for name, body in files.items():
            zf.writestr(name, body)
        link = zipfile.ZipInfo("ds/lnk")
        link.create_system, link.external_attr = 3, 0o120777 << 16
        zf.writestr(link, b"a.txt", METHODS[method])
    emulator.add_file("d/b.zip", src.read_bytes())

    _cli.ok("pull", "drive:d/b.zip", str(tmp_path / "d"), "-x", "-q")

    dest = tmp_path / "d"
    assert tree(dest) == {**files, "ds/lnk": files["ds/a.txt"], "b.zip": src.read_bytes()}
    assert (dest / "ds" / "lnk").readlink().as_posix() == "a.txt"
