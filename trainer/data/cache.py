"""Decoded-image caches (``data.cache``): fitted images kept in RAM or on disk.

Decoding a JPEG costs more than mosaic and mixup on the decoded pixels together, and a
mosaic with mixup needs five images per sample. A cache decodes every image once, already
fitted to the input size (:func:`trainer.data.images.decode_fitted`), and serves the
``uint8`` pixels from then on. Both caches give exactly the pixels a fresh decode gives.

* ``ram``: one contiguous ``uint8`` buffer, filled in the main process before the DataLoader
  starts its workers. Forked workers read it copy-on-write, so all of them share one copy
  (a buffer of pixels, not one Python object per image, whose reference counts would dirty
  the pages). Workers started by ``spawn`` or ``forkserver`` get a handle to it instead, the
  buffer moved into shared memory the first time.
* ``disk``: one file per image in a folder, named by a hash of the image *file's bytes*, the
  input size and ``FIT_VERSION``. So an entry is valid on any machine and under any path,
  and the folder can be mirrored to Drive (``drivestage push``) and pulled back on the next
  runtime. Entries are atomic writes (a hidden temporary file, renamed): a killed fill never
  leaves a truncated entry under a final name, and a later fill removes its temporary file. Each run reads and hashes every image file once to
  find its entry.

Before anything is filled, the bytes it needs are computed from the image headers and
checked against the budget: half of the memory available now (``ram``), or the disk's free
space less 1 GiB (``disk``). A cache over budget is refused with :class:`CacheBudgetError`;
:func:`open_cache` logs that message and the dataset loads without a cache.
"""
from __future__ import annotations

import hashlib
import logging
import multiprocessing
import os
import shutil
import struct
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Optional, Sequence, Union

import numpy as np
import torch

from drivestage import pool
from drivestage.interrupts import BackgroundThread, Flag
from drivestage.localfs import atomic_file, umask
from trainer.data.images import (FIT_VERSION, decode_fitted, fitted_shape, header_size, open_regular,
                                 read_bytes)
from trainer.errors import CacheBudgetError, DataError

log = logging.getLogger(__name__)

__all__ = [
    "CACHE_MODES",
    "RAM_SHARE",
    "DISK_RESERVE",
    "available_memory",
    "content_key",
    "check_budget",
    "RamCache",
    "DiskCache",
    "DiskPlan",
    "plan_disk_cache",
    "open_cache",
]

CACHE_MODES = ("none", "ram", "disk")
RAM_SHARE = 0.5          # of the memory available when the cache is filled: room for the rest
DISK_RESERVE = 1 << 30   # bytes a disk cache leaves free
_HEADER = struct.Struct("<4sIIII")  # magic, orig_h, orig_w, h, w; then h * w * 3 bytes of RGB
_MAGIC = b"TDC1"

Image = tuple[np.ndarray, tuple[int, int]]  # fitted RGB uint8 [h, w, 3], (orig_h, orig_w)


def _gib(n: float) -> str:
    """Bytes for people: GiB from 1 GiB up, MiB below."""
    return f"{n / 2 ** 30:.2f} GiB" if abs(n) >= 2 ** 30 else f"{n / 2 ** 20:.1f} MiB"


def available_memory() -> int:
    """Bytes of memory available to a new allocation without swapping (Linux ``MemAvailable``)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def content_key(data: bytes, size: int) -> str:
    """The cache key of an image file's bytes fitted to ``size``: the same on every machine."""
    return f"{hashlib.blake2b(data, digest_size=16).hexdigest()}-s{size}-v{FIT_VERSION}"


def check_budget(mode: str, needed: int, budget: int, *, images: int, size: int, why: str, advice: str) -> None:
    """Refuse (:class:`CacheBudgetError`) a cache that needs more than ``budget`` bytes."""
    if needed > budget:
        raise CacheBudgetError(
            f"data.cache={mode}: {images} images fitted to {size} px need {_gib(needed)}, more than the "
            f"{_gib(max(budget, 0))} budget ({why}); loading images without a cache; {advice}")


def _threads(threads: Optional[int]) -> int:
    if threads:
        return threads
    try:
        return max(1, min(8, len(os.sched_getaffinity(0))))
    except AttributeError:  # not Linux
        return max(1, min(8, os.cpu_count() or 1))


def _each(fn: Callable[[int], None], items: Iterable[int], threads: int) -> None:
    """``fn`` on every item, on ``threads`` threads (decoding and hashing release the GIL);
    raises the first item's error. A Ctrl-C or a stop's signal stops it: no item starts
    after it, and none under way is waited for. A ThreadPoolExecutor's map decoded every
    image of the dataset first (minutes for a large one), and its wait slept through a
    Ctrl-C the kernel gave one of its threads until an image was done."""
    if threads <= 1:
        for i in items:
            fn(i)
        return
    items = list(items)
    lock, stop, errors = threading.Lock(), Flag(), list[BaseException]()
    left = iter(items)

    def work() -> None:
        with pool.stoppable(stop):   # (an image under way stops at its pool.check())
            while not stop.is_set():
                with lock:
                    i = next(left, None)
                if i is None:
                    return
                try:
                    fn(i)
                except BaseException as exc:   # (raised by the caller, the first one)
                    errors.append(exc)
                    stop.set()
    workers: list[BackgroundThread] = []
    try:
        for _ in range(threads):   # (in the try: a Ctrl-C as one starts stops those started)
            workers.append(BackgroundThread(work, "image-cache"))
            workers[-1].start()
        for worker in workers:
            worker.join()   # (in slices: interrupts.SLICE)
    except BaseException:
        # A stop's signal: the images not begun are dropped, and those under way are
        # waited for a moment only (daemon threads): a read from a mount that stopped
        # answering never ends (attacktrain33).
        stop.set()
        end = time.monotonic() + _LET_GO_S
        for worker in workers:
            worker.join(max(0.0, end - time.monotonic()))
        raise
    if errors:
        raise errors[0]


#: Seconds a stopped fill waits for the images under way (each stops at its next check).
_LET_GO_S = 2.0


class RamCache:
    """Every image's fitted pixels in one buffer; ``get(i)`` returns a read-only view."""

    def __init__(self, paths: Sequence[str], size: int, *, budget: Optional[int] = None,
                 threads: Optional[int] = None) -> None:
        start = time.perf_counter()
        n = len(paths)
        threads = _threads(threads)
        nbytes = np.zeros(n, dtype=np.int64)

        def measure(i: int) -> None:
            h, w = fitted_shape(header_size(paths[i]), size)  # EXIF may swap h and w: same bytes
            nbytes[i] = h * w * 3

        _each(measure, range(n), threads)
        self.offsets = np.concatenate(([0], np.cumsum(nbytes)))
        total = int(self.offsets[-1])
        if budget is None:
            budget = int(available_memory() * RAM_SHARE)
        check_budget("ram", total, budget, images=n, size=size, why="half the memory available now",
                     advice="use data.cache=disk, or free memory")
        self.buffer = np.empty(total, dtype=np.uint8)
        self.shapes = np.zeros((n, 2), dtype=np.int32)
        self.orig = np.zeros((n, 2), dtype=np.int32)

        def fill(i: int) -> None:
            image, orig = decode_fitted(read_bytes(paths[i]), size, paths[i])
            lo, hi = self.offsets[i], self.offsets[i + 1]
            if image.nbytes != hi - lo:
                raise DataError(f"cannot cache image {paths[i]}: its header says another size than its pixels")
            self.buffer[lo:hi] = image.reshape(-1)
            self.shapes[i] = image.shape[:2]
            self.orig[i] = orig

        _each(fill, range(n), threads)
        self.buffer.flags.writeable = False  # views handed out must never be written into
        self._shared: Optional[torch.Tensor] = None
        log.info("data.cache=ram: %d images fitted to %d px in %s of memory (%.1f s)", n, size, _gib(total),
                 time.perf_counter() - start)

    def __len__(self) -> int:
        return len(self.shapes)

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        try:
            multiprocessing.context.assert_spawning(self)
        except RuntimeError:  # a copy or a plain pickle: by value
            state["_shared"] = None
            return state
        # A worker started by spawn (macOS; on Linux worker_signals forks) is sent the pixels
        # as a handle to shared memory, not a copy each.
        state["buffer"] = self._shared_buffer()
        state["_shared"] = None
        return state

    def __setstate__(self, state: dict) -> None:
        if isinstance(state["buffer"], torch.Tensor):
            state["_shared"] = state["buffer"]
            state["buffer"] = state["buffer"].numpy()
            state["buffer"].flags.writeable = False
        self.__dict__.update(state)

    def _shared_buffer(self) -> torch.Tensor:
        """The pixels in shared memory (moved there once, the first time a worker is spawned)."""
        if self._shared is None:
            shm = Path("/dev/shm")
            if shm.is_dir() and shutil.disk_usage(shm).free < self.buffer.nbytes:
                raise DataError(f"data.cache=ram: workers started by spawn/forkserver share the cache through "
                                f"{shm}, which has {_gib(shutil.disk_usage(shm).free)} free for "
                                f"{_gib(self.buffer.nbytes)}; use data.cache=disk")
            shared = torch.empty(self.buffer.size, dtype=torch.uint8).share_memory_()
            shared.numpy()[:] = self.buffer
            self._shared, self.buffer = shared, shared.numpy()
            self.buffer.flags.writeable = False
        return self._shared

    def get(self, index: int) -> Image:
        """``(fitted RGB uint8 [h, w, 3] read-only, (orig_h, orig_w))`` of image ``index``."""
        h, w = self.shapes[index]
        view = self.buffer[self.offsets[index]:self.offsets[index + 1]].reshape(int(h), int(w), 3)
        return view, (int(self.orig[index, 0]), int(self.orig[index, 1]))


def _read_header(path: Path, fitted: int) -> Optional[tuple[int, int, int, int]]:
    """``(orig_h, orig_w, h, w)`` of a complete entry of images fitted to ``fitted`` px; None
    when it is missing, not whole, or no fitted image (written anew then). The folder may
    have come with the dataset: a FIFO there hung the start of training, and an entry
    saying an image of no size (boxes divided by 0) or larger than ``fitted`` was served."""
    try:
        with open_regular(path, "image cache entry") as f:
            head = f.read(_HEADER.size)
            size = os.fstat(f.fileno()).st_size
    except (OSError, DataError):
        return None
    if len(head) != _HEADER.size:
        return None
    magic, oh, ow, h, w = _HEADER.unpack(head)
    if magic != _MAGIC or size != _HEADER.size + h * w * 3:
        return None
    if not (0 < h <= min(oh, fitted) and 0 < w <= min(ow, fitted)):
        return None
    return oh, ow, h, w


def _write_entry(path: Path, image: np.ndarray, orig: tuple[int, int]) -> None:
    """Whole entries only under the final name: an atomic write (its temporary file hidden,
    so never pushed with the folder, and removed by a later fill once its process is gone;
    ``<entry>.<pid>-<tid>.partial`` files a killed fill left stayed for good)."""
    try:
        # (The umask as it is now, not at import: a notebook may tighten it after; attack28.)
        with atomic_file(str(path), mode=0o666 & ~umask()) as f:
            f.write(_HEADER.pack(_MAGIC, orig[0], orig[1], image.shape[0], image.shape[1]))
            f.write(np.ascontiguousarray(image).data)
    except OSError as exc:
        raise DataError(f"cannot write the image cache entry {path}: {exc.strerror or exc}") from None



@dataclass(frozen=True)
class DiskPlan:
    """What a disk cache of some images holds and still has to write (from image headers)."""

    entries: list[str]          # each image's entry file
    needed: list[int]           # bytes of each image's entry still to write (0: there, whole)
    todo: list[int]             # images to decode and write (one per missing entry)
    total: int                  # bytes the fill writes


def plan_disk_cache(paths: Sequence[str], size: int, folder: Union[str, os.PathLike], *,
                    threads: Optional[int] = None, written: Iterable[str] = ()) -> DiskPlan:
    """Which entries of ``paths`` at ``size`` are missing in ``folder``, and their bytes: each
    image file is read and hashed once (its key), its header gives the fitted size. Entries
    in ``written`` count as there (another cache of the same folder writes them first).
    What :class:`DiskCache` fills, and what the start-up room check counts
    (:mod:`trainer.room`)."""
    folder = Path(folder)
    n = len(paths)
    entries: list[str] = [""] * n
    needed = np.zeros(n, dtype=np.int64)  # bytes of each entry still to write
    done = set(written)

    def look(i: int) -> None:
        data = read_bytes(paths[i])
        entry = folder / f"{content_key(data, size)}.rgb"
        entries[i] = str(entry)
        if str(entry) not in done and _read_header(entry, size) is None:
            h, w = fitted_shape(header_size(data, paths[i]), size)
            needed[i] = _HEADER.size + h * w * 3

    _each(look, range(n), _threads(threads))
    missing = [i for i in range(n) if needed[i]]
    # Two paths with the same bytes share one entry: count and write it once.
    first = {entries[i]: i for i in reversed(missing)}
    todo = sorted(first.values())
    return DiskPlan(entries, [int(x) for x in needed], todo, int(sum(needed[i] for i in todo)))


class DiskCache:
    """Fitted images as files in ``folder``, named by content; ``get(i)`` reads one."""

    def __init__(self, paths: Sequence[str], size: int, folder: Union[str, os.PathLike], *,
                 budget: Optional[int] = None, threads: Optional[int] = None) -> None:
        start = time.perf_counter()
        self.folder = Path(folder)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DataError(f"cannot create the image cache folder {self.folder}: {exc.strerror or exc}; "
                            "set data.cache=none or ram") from None
        n = len(paths)
        threads = _threads(threads)
        plan = plan_disk_cache(paths, size, self.folder, threads=threads)
        self.entries: list[str] = plan.entries
        missing = [i for i in range(n) if plan.needed[i]]
        todo, total = plan.todo, plan.total
        if budget is None:
            budget = shutil.disk_usage(self.folder).free - DISK_RESERVE
        check_budget("disk", total, budget, images=len(todo), size=size,
                     why=f"free space in {self.folder} less {_gib(DISK_RESERVE)}",
                     advice="free disk space, or set data.cache=none")

        def fill(i: int) -> None:
            image, orig = decode_fitted(read_bytes(paths[i]), size, paths[i])
            _write_entry(Path(self.entries[i]), image, orig)

        _each(fill, todo, threads)
        log.info("data.cache=disk: %d images fitted to %d px in %s (%d found, %d decoded, %s written; %.1f s)",
                 n, size, self.folder, n - len(missing), len(todo), _gib(total), time.perf_counter() - start)

    def __len__(self) -> int:
        return len(self.entries)

    def get(self, index: int) -> Image:
        """``(fitted RGB uint8 [h, w, 3], (orig_h, orig_w))`` of image ``index``, read from its entry."""
        path = self.entries[index]
        with open(path, "rb") as f:
            magic, oh, ow, h, w = _HEADER.unpack(f.read(_HEADER.size))
            image = np.empty((h, w, 3), dtype=np.uint8)
            got = f.readinto(memoryview(image).cast("B"))
        if magic != _MAGIC or got != image.nbytes:
            raise DataError(f"the image cache entry {path} is damaged; delete it and start again")
        return image, (oh, ow)


def open_cache(mode: str, paths: Sequence[str], size: int, folder: Optional[Union[str, os.PathLike]] = None, *,
               budget: Optional[int] = None, threads: Optional[int] = None):
    """The cache ``mode`` asks for, filled; None for ``none`` or when the budget refuses it (logged)."""
    if mode not in CACHE_MODES:
        raise DataError(f"data.cache must be one of {', '.join(CACHE_MODES)}, got {mode!r}")
    if mode == "none":
        return None
    try:
        if mode == "ram":
            return RamCache(paths, size, budget=budget, threads=threads)
        if folder is None:
            raise DataError("data.cache=disk needs a cache folder")
        return DiskCache(paths, size, folder, budget=budget, threads=threads)
    except CacheBudgetError as exc:
        log.warning("%s", exc)
        return None
