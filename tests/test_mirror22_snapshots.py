"""A log that keeps changing while a mirror uploads it (drivestage.snapshots): how many
uploads each period spends on it, and how much memory its private copy takes. Counted in
requests and bytes traced, never in wall-clock time."""
from __future__ import annotations

import hashlib
import logging
import tracemalloc

import pytest

from drivestage import snapshots
from drivestage.errors import SourceChangedError
from drivestage.mirror import Mirror

MiB = 1 << 20


def _appending(proxy, log) -> None:
    """The writer goes on at every request of an upload (``tee logs/train.log``)."""
    from _proxy import Reply

    def appended(status: int, headers: dict, body: bytes) -> Reply:
        with open(log, "ab") as fh:
            fh.write(b"step\n")
        return Reply(status, headers, [body])
    proxy.on("PUT", r"^/upload/", appended)
    proxy.on("POST", r"^/upload/", appended)


def _uploads(proxy) -> int:
    return sum(1 for method, path in proxy.requests if path.startswith("/upload/"))


def test_a_log_that_needed_a_copy_is_sent_from_one_at_once_the_next_periods(
        emulator, proxy, env, tmp_path, fast_retries, caplog):
    """Each period sent the log three times as it changed (each time in vain), then from a
    copy: 4 uploads of one log per period, for the life of the run. The mirror remembers
    that the path needed a copy and the next periods take one at once: one upload each, and
    one warning for the whole run."""
    from drivestage.drive import connect
    from _drive_state import live_md5s

    src = tmp_path / "logs"
    src.mkdir()
    log = src / "train.log"
    log.write_bytes(b"start\n")
    _appending(proxy, log)
    store = connect(api_root=proxy.url, token="test-token")
    per_period = []
    caplog.set_level(logging.WARNING, logger="drivestage")
    m = Mirror(str(src), (store, "runs/logs")).start()
    try:
        for _ in range(3):
            before = _uploads(proxy)
            result = m.flush(60)
            assert result is not None and result.uploaded == ["train.log"]
            per_period.append(_uploads(proxy) - before)
    finally:
        proxy.rules.clear()
        m.stop(60)
    one = per_period[0] // 4  # the requests of one upload: 3 in vain, then the copy
    assert one >= 1 and per_period[0] == 4 * one, per_period
    assert per_period[1:] == [one, one], per_period
    warned = [r for r in caplog.records if "kept changing while it was uploaded" in r.message]
    assert len(warned) == 1, [r.message for r in caplog.records]
    on_drive = emulator.read_bytes(emulator.find("runs/logs/train.log")["id"])
    assert log.read_bytes().startswith(on_drive) and on_drive.startswith(b"start\n")
    assert live_md5s(emulator, "runs/logs") == {
        "train.log": [hashlib.md5(on_drive).hexdigest()]}


def test_a_remembered_log_grown_past_the_limit_is_sent_as_it_is(tmp_path, monkeypatch):
    """A path remembered as changing but now over the copy limit is no longer copied: sent
    from the file itself (and forgotten), as any file that large."""
    monkeypatch.setattr(snapshots, "MAX_BYTES", 1000)
    path = tmp_path / "train.log"
    path.write_bytes(b"x" * 1001)
    sent: list[str] = []
    changing = {str(path)}
    snapshots.upload(lambda p: sent.append(p), str(path), copy=True, changing=changing)
    assert sent == [str(path)] and changing == set()


def test_a_log_sent_from_a_copy_is_copied_in_chunks_not_read_whole(tmp_path):
    """The private copy of a 24 MiB log held all of it in memory (one read of up to
    64 MiB, in every period of a mirror; a Colab VM has little to spare). It is copied in
    chunks: memory stays flat, and the copy sent holds the file's bytes."""
    path = tmp_path / "train.log"
    data = hashlib.sha256(b"seed").digest() * (24 * MiB // 32)
    path.write_bytes(data)
    got: list[tuple[int, str]] = []

    def send(p: str):
        if p == str(path):
            raise SourceChangedError(f"{p} kept changing while it was uploaded (3 tries)")
        h = hashlib.md5()
        n = 0
        with open(p, "rb") as fh:
            while chunk := fh.read(256 * 1024):
                h.update(chunk)
                n += len(chunk)
        got.append((n, h.hexdigest()))
        return None

    tracemalloc.start()
    try:
        snapshots.upload(send, str(path), copy=True)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert got == [(len(data), hashlib.md5(data).hexdigest())]
    assert peak < 4 * MiB, f"peak {peak / MiB:.1f} MiB for a 24 MiB log"
