"""Ranged, parallel, resumable, md5-verified download of one remote file.

The bytes go into a partial file beside the target, named after the target and a key made
of the remote id, md5 and size (``.c.zip.<key>.partial``), and reach the final name only
after their size and md5 matched, by an atomic rename. Several ranged streams fetch chunks
in parallel (one Drive connection is far slower than a VM's disk), while this thread writes
them *in order* and feeds each one to md5 as it goes: the partial file is always a correct
prefix of the remote file, so a rerun after any failure or process death continues from its
size with a ``Range`` request, and the md5 needs no second pass (only a resumed prefix is read
back once). A partial for another version of the file is discarded.

On a checksum mismatch the partial is deleted and the download starts once more from zero;
a second mismatch raises :class:`~drivestage.errors.ChecksumMismatchError`.
"""
from __future__ import annotations

import hashlib
import logging
import os
import queue
import re
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Optional

from drivestage.errors import ChecksumMismatchError, RemoteError
from drivestage.store import ProgressFn, RemoteEntry, RemoteStore

log = logging.getLogger(__name__)

MiB = 1024 * 1024
DEFAULT_CHUNK_SIZE = 8 * MiB
DEFAULT_JOBS = 4
_READ_BLOCK = 4 * MiB
_TAG_RE = re.compile(r"^[0-9a-f]{16}\.partial$")


@dataclass
class DownloadResult:
    """What one download did."""

    path: str            # the final file
    size: int
    md5: str             # hex md5 of the bytes written (== the remote md5 when it has one)
    resumed_from: int    # bytes already in a partial file when this run started
    fetched: int         # bytes fetched over the network by this run
    seconds: float
    restarted: bool = False  # a checksum mismatch forced one restart from zero


def partial_path(target: str, entry: RemoteEntry) -> str:
    """The partial file for ``entry`` beside ``target`` (keyed by id + md5 + size)."""
    key = f"{entry.id}\0{entry.md5 or ''}\0{entry.size}".encode()
    tag = hashlib.sha1(key).hexdigest()[:16]
    folder, base = os.path.split(os.path.abspath(target))
    return os.path.join(folder, f".{base}.{tag}.partial")


def stale_partials(target: str, keep: Optional[str] = None) -> list[str]:
    """Partial files of other versions of ``target`` (never ``keep``)."""
    folder, base = os.path.split(os.path.abspath(target))
    prefix = f".{base}."
    out = []
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return []
    for name in names:
        if name.startswith(prefix) and _TAG_RE.match(name[len(prefix):]):
            path = os.path.join(folder, name)
            if path != keep:
                out.append(path)
    return out


def partial_size(target: str, entry: RemoteEntry) -> int:
    """Bytes already downloaded for ``entry`` (0 when there is no usable partial)."""
    try:
        size = os.path.getsize(partial_path(target, entry))
    except OSError:
        return 0
    return size if size <= entry.size else 0


def download(store: RemoteStore, entry: RemoteEntry, target: str, *, jobs: Optional[int] = None,
             chunk_size: Optional[int] = None, progress: Optional[ProgressFn] = None,
             describe: Optional[str] = None) -> DownloadResult:
    """Download ``entry`` from ``store`` to ``target`` (resuming a partial when there is one).

    The caller holds whatever lock keeps other processes off ``target``. ``progress(n)`` is
    called from this thread with the bytes just written (resumed bytes included at start).
    """
    if entry.is_dir:
        raise RemoteError(f"{describe or entry.name} is a folder, not a file")
    where = describe or store.describe(entry)
    jobs = max(1, int(jobs or DEFAULT_JOBS))
    chunk_size = max(1, int(chunk_size or DEFAULT_CHUNK_SIZE))
    began = time.monotonic()
    partial = partial_path(target, entry)
    for path in stale_partials(target, keep=partial):
        log.info("removing a partial download of another version: %s", path)
        _unlink(path)

    restarted = False
    resumed_from = -1
    fetched = 0
    while True:
        start, digest = _open_prefix(partial, entry, progress)
        if resumed_from < 0:
            resumed_from = start
            if start:
                log.info("resuming %s at byte %d of %d", where, start, entry.size)
        fetched += _fill(store, entry, partial, start, digest, jobs, chunk_size, progress)
        got_size = os.path.getsize(partial)
        got_md5 = digest.hexdigest()
        if got_size == entry.size and (entry.md5 is None or got_md5 == entry.md5.lower()):
            break
        _unlink(partial)
        expected = f"md5 {entry.md5}, {entry.size} bytes"
        got = f"md5 {got_md5}, {got_size} bytes"
        if not restarted:
            log.warning("%s: checksum mismatch (expected %s, got %s); deleted the download, "
                        "starting again from zero", where, expected, got)
            restarted = True
            continue
        raise ChecksumMismatchError(
            f"{where}: the downloaded bytes do not match Drive (expected {expected}; got "
            f"{got}), twice. Deleted the download for safety. The file may be changing on "
            "Drive, or something between here and Drive alters data.",
            expected=entry.md5, got=got_md5)
    os.replace(partial, target)
    return DownloadResult(path=target, size=entry.size, md5=got_md5, resumed_from=resumed_from,
                          fetched=fetched, seconds=time.monotonic() - began,
                          restarted=restarted)


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _open_prefix(partial: str, entry: RemoteEntry,
                 progress: Optional[ProgressFn]) -> tuple[int, Any]:
    """``(bytes already there, md5 of them)``; a partial longer than the file is dropped."""
    digest = hashlib.md5()
    try:
        size = os.path.getsize(partial)
    except FileNotFoundError:
        size = 0
    if size > entry.size:
        _unlink(partial)
        size = 0
    if size:
        # The one read-back: the prefix a previous run wrote (md5 state is not persistable).
        with open(partial, "rb") as fh:
            left = size
            while left:
                block = fh.read(min(_READ_BLOCK, left))
                if not block:
                    break
                digest.update(block)
                left -= len(block)
                if progress is not None:
                    progress(len(block))
    return size, digest


class _Pipeline:
    """Workers fetch chunks (bounded window ahead of the writer); the writer writes in order."""

    def __init__(self, chunks: list[tuple[int, int]], jobs: int):
        self.chunks = chunks
        self.window = jobs + 1          # chunks held in memory at most (bounds peak memory)
        self.cond = threading.Condition()
        self.next_claim = 0
        self.next_write = 0
        self.ready: dict[int, bytes] = {}
        self.error: Optional[BaseException] = None
        self.stopped = False

    def claim(self) -> Optional[int]:
        with self.cond:
            while not self.stopped and self.next_claim < len(self.chunks) \
                    and self.next_claim >= self.next_write + self.window:
                self.cond.wait()
            if self.stopped or self.next_claim >= len(self.chunks):
                return None
            index = self.next_claim
            self.next_claim += 1
            return index

    def put(self, index: int, data: bytes) -> None:
        with self.cond:
            self.ready[index] = data
            self.cond.notify_all()

    def fail(self, exc: BaseException) -> None:
        with self.cond:
            if self.error is None:
                self.error = exc
            self.stopped = True
            self.cond.notify_all()

    def take(self, index: int) -> bytes:
        with self.cond:
            while index not in self.ready:
                if self.error is not None:
                    raise self.error
                # A timeout keeps the main thread responsive to Ctrl-C.
                self.cond.wait(timeout=0.5)
            self.next_write = index + 1
            self.cond.notify_all()
            return self.ready.pop(index)

    def stop(self) -> None:
        with self.cond:
            self.stopped = True
            self.ready.clear()
            self.cond.notify_all()


class _Hasher:
    """Feeds chunks to md5 in a thread of its own, in the order they are put (hashlib releases
    the GIL on large buffers, so hashing runs beside the disk write)."""

    def __init__(self, digest: Any, depth: int = 1):
        self.digest = digest
        self.queue: "queue.Queue[Optional[bytes]]" = queue.Queue(maxsize=depth)
        self.thread = threading.Thread(target=self._run, name="drivestage-md5", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            data = self.queue.get()
            if data is None:
                return
            self.digest.update(data)

    def put(self, data: bytes) -> None:
        self.queue.put(data)

    def finish(self) -> None:
        """Wait until every chunk put so far is hashed."""
        if self.thread.is_alive():
            self.queue.put(None)
            self.thread.join()


def _fill(store: RemoteStore, entry: RemoteEntry, partial: str, start: int, digest: Any, jobs: int,
          chunk_size: int, progress: Optional[ProgressFn]) -> int:
    """Fetch ``[start, size)`` into ``partial`` in order, hashing as it is written."""
    chunks = [(a, min(a + chunk_size, entry.size)) for a in range(start, entry.size, chunk_size)]
    if not chunks:
        if not os.path.exists(partial):
            open(partial, "wb").close()
        return 0
    fetch = store.fetch_range
    pipe = _Pipeline(chunks, jobs)

    def work() -> None:
        try:
            while True:
                index = pipe.claim()
                if index is None:
                    return
                a, b = chunks[index]
                pipe.put(index, fetch(entry, a, b))
        except BaseException as exc:  # handed to the writer, which raises it
            pipe.fail(exc)

    threads = [threading.Thread(target=work, name=f"drivestage-fetch-{i}", daemon=True)
               for i in range(min(jobs, len(chunks)))]
    for t in threads:
        t.start()
    written = 0
    hasher = _Hasher(digest)
    try:
        with open(partial, "ab") as fh:
            for index in range(len(chunks)):
                data = pipe.take(index)
                # md5 (in its own thread) and the write overlap; both see chunks in order.
                hasher.put(data)
                fh.write(data)
                written += len(data)
                if progress is not None:
                    progress(len(data))
        hasher.finish()
    except BaseException:
        pipe.stop()
        hasher.finish()
        raise
    for t in threads:
        t.join()
    if pipe.error is not None:  # pragma: no cover - take() raised it already
        raise pipe.error
    return written


def verify_file(path: str, md5: Optional[str], size: int) -> Optional[str]:
    """None when ``path`` has ``size`` bytes and md5 ``md5``; otherwise what differs."""
    try:
        got_size = os.path.getsize(path)
    except OSError:
        return "missing"
    if got_size != size:
        return f"{got_size} bytes instead of {size}"
    if md5:
        digest = hashlib.md5()
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(_READ_BLOCK), b""):
                digest.update(block)
        if digest.hexdigest() != md5.lower():
            return f"md5 {digest.hexdigest()} instead of {md5}"
    return None

