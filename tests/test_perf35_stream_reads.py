"""A download's streams read their answers through the socket's own reader (perf35): every
read of a stream went through a layer of Python made for the main thread's pieces
(``sliced._SlicedReads``), which for a stream only passed the read on: a call a read,
and over TLS a read is a record of 16 KiB at most (65,536 calls a GiB). The main thread's
reads (a zip's tail fetched at once, a sidecar) still wait in pieces; a Ctrl-C is as before.
"""
from __future__ import annotations

import hashlib
import os
import threading

from _download_fixtures import _fast, out, small_splits, store  # noqa: F401

from drivestage import download as dl
from drivestage.drive import sliced as connections

CHUNK = 256 * 1024


def _reads_by_thread(monkeypatch) -> dict[str, int]:
    """Calls of _SlicedReads.readinto, by the calling thread's name."""
    calls: dict[str, int] = {}
    readinto = connections._SlicedReads.readinto

    def counted(self, buf):
        name = threading.current_thread().name
        calls[name] = calls.get(name, 0) + 1
        return readinto(self, buf)

    monkeypatch.setattr(connections._SlicedReads, "readinto", counted)
    return calls


def test_a_download_s_streams_read_without_the_main_thread_s_layer(emulator, store, out,
                                                                    monkeypatch):
    """Three streams read 4 MiB in 16 ranged GETs: bytes and md5 equal, and no read of
    theirs went through _SlicedReads (every one did before)."""
    data = os.urandom(16 * CHUNK)
    emulator.add_file("s/streams.bin", data)
    entry = store.resolve("s/streams.bin")
    calls = _reads_by_thread(monkeypatch)

    res = dl.download(store, entry, str(out / "streams.bin"), jobs=3, chunk_size=CHUNK)

    assert open(out / "streams.bin", "rb").read() == data
    assert res.md5 == hashlib.md5(data).hexdigest()
    assert {name: n for name, n in calls.items() if name != "MainThread"} == {}


def test_the_main_thread_still_reads_an_answer_in_pieces(emulator, store, monkeypatch):
    """A range fetched by the main thread (a sidecar's bytes, a zip's tail) still goes through
    _SlicedReads, whose pieces a Ctrl-C given elsewhere ends (test_sigmeta34_requests)."""
    data = os.urandom(3 * CHUNK)
    emulator.add_file("s/tail.bin", data)
    entry = store.resolve("s/tail.bin")
    calls = _reads_by_thread(monkeypatch)

    assert store.fetch_range(entry, CHUNK, 3 * CHUNK) == data[CHUNK:]
    assert calls.get("MainThread", 0) > 0
