"""Drive's JSON answers sent compressed (``Content-Encoding: gzip``, as Drive sends them),
decompressed with the bound on an answer's size (attackpull33).

httplib2 decompressed them whole, past the 64 MiB that drivestage reads of an answer: an
httplib2 without decode limits (older ones) without any bound (a listing answer of 64 KiB of
gzip, spaces before its JSON, took 64 MiB of memory; 64 MiB of it, 64 GiB), and one that has
them (0.32.1) with a ratio bound whose ``DecodeRatioError`` went out of the pull as a
traceback. Such an answer is now a failed request (retried, then one line); an answer
gzipped as Drive does is read as before.
In-process CLI against the emulator behind tests/_proxy.py.
"""
from __future__ import annotations

import functools
import zlib
from typing import Any

import pytest

import _cli
from _liar import liar_env, one_error_line  # noqa: F401 (fixtures)
from _proxy import Reply

LISTING = r"^/drive/v2/files\?"


@functools.lru_cache(maxsize=None)
def _spaces(coding: str, pad: int) -> tuple[bytes, Any]:
    """``pad`` spaces (JSON may start with them) compressed so far, and the compressor that
    took them, to copy."""
    c = zlib.compressobj(1, zlib.DEFLATED, 31 if coding == "gzip" else -15)
    block = b" " * (1 << 20)
    return b"".join(c.compress(block) for _ in range(pad >> 20)), c


def _compressed(coding: str, pad: int):
    """A mutation: the answer's JSON after ``pad`` spaces, sent with ``coding`` (gzip, or a
    raw deflate stream as some servers send for "deflate")."""
    def mutate(status: int, headers: dict, body: bytes) -> Reply:
        out = {k: v for k, v in headers.items()
               if k.lower() not in ("content-length", "content-encoding")}
        head, c = _spaces(coding, pad)
        c = c.copy()
        packed = head + c.compress(body) + c.flush()
        out.update({"Content-Encoding": coding, "Content-Length": str(len(packed))})
        return Reply(status, out, [packed])
    return mutate


def test_a_listing_that_decompresses_past_the_bound_is_one_line_not_a_traceback(
        emulator, proxy, liar_env, tmp_path):
    emulator.add_file("VOC/a.txt", b"hello")
    proxy.on("GET", LISTING, _compressed("gzip", 65 << 20))   # 65 KB sent
    dest = tmp_path / "d"

    code, out, err = _cli.run("pull", "drive:VOC", str(dest), "-q")

    assert one_error_line(code, err) == (
        "Error: list drive: (the top of My Drive): still failing after 3 attempts "
        "(connection lost (AnswerTooLargeError)); try again later")
    assert proxy.count("GET", LISTING) == 3
    assert not dest.exists() or sorted(p.name for p in dest.iterdir()) == []


@pytest.mark.parametrize("coding", ["gzip", "deflate"])
def test_listings_sent_compressed_are_read_as_before(emulator, proxy, liar_env, tmp_path,
                                                     coding):
    emulator.add_file("VOC/a.txt", b"hello")
    emulator.add_file("VOC/sub/b.txt", b"world")
    proxy.on("GET", LISTING, _compressed(coding, 1 << 20))
    dest = tmp_path / "d"

    _cli.ok("pull", "drive:VOC", str(dest), "-q")

    assert (dest / "VOC" / "a.txt").read_bytes() == b"hello"
    assert (dest / "VOC" / "sub" / "b.txt").read_bytes() == b"world"
    assert proxy.count("GET", LISTING) >= 2
