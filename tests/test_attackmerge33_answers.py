"""attackmerge33: an API answer sent gzipped whose compressed stream is cut short (a server
or proxy that ends the answer early, its length matching what it sent; a close-delimited
answer cut by the connection's end). drivestage decompresses answers itself since
attackpull33, and zlib hands over what it has of a cut stream without an error: the pull
took the partial JSON for Drive's answer, ``the server's answer is not what Drive sends
(TypeError: …); is --api-root / DRIVESTAGE_API_ROOT a Drive API?``, exit 1, not retried.
A cut stream is now a failed request, retried as a lost connection.
In-process CLI against the emulator behind tests/_proxy.py.
"""
from __future__ import annotations

import gzip

import pytest

import _cli
from _liar import liar_env  # noqa: F401 (fixtures)
from _proxy import Reply

LISTING = r"^/drive/v2/files\?"


def _cut(keep: str):
    """A mutation: the answer gzipped, then cut (``half``, or ``trailer``: all but the
    gzip's 8-byte trailer, its CRC-32 and length), sent with the length of what is left."""
    def mutate(status: int, headers: dict, body: bytes) -> Reply:
        out = {k: v for k, v in headers.items()
               if k.lower() not in ("content-length", "content-encoding")}
        packed = gzip.compress(body)
        packed = packed[:len(packed) // 2] if keep == "half" else packed[:-8]
        out.update({"Content-Encoding": "gzip", "Content-Length": str(len(packed))})
        return Reply(status, out, [packed])
    return mutate


@pytest.mark.parametrize("keep", ["half", "trailer"])
def test_a_gzipped_listing_cut_short_is_retried(emulator, proxy, liar_env, tmp_path, keep):
    emulator.add_file("VOC/a.txt", b"hello")
    emulator.add_file("VOC/sub/b.txt", b"world")
    proxy.on("GET", LISTING, _cut(keep), times=1)
    dest = tmp_path / "d"

    code, out, err = _cli.run("pull", "drive:VOC", str(dest), "-q")

    assert code == 0, err
    assert (dest / "VOC" / "a.txt").read_bytes() == b"hello"
    assert (dest / "VOC" / "sub" / "b.txt").read_bytes() == b"world"
    assert "connection lost (AnswerUnreadableError); retry 1/" in err
