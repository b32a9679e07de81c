"""Writing zip and plain-tar members in worker processes, so that they share no GIL.

Two threads of one interpreter that write members spend much of their time waiting for each
other: a member costs some Python of its own (open, read, CRC-32, write, utime, fstat,
close), and only the system calls and zlib let the other thread run. On the development
machine (2 cores) two threads wrote the 20,000 members of the benchmark zip in 1.6-2.8 s and
one thread in 1.9-2.1 s; two processes took 1.1-1.2 s, with less CPU in all. While the
archive downloads, the extraction threads also took the GIL from the download's threads.

The parent keeps every decision. It validates the member list, makes the folders, and sends
each worker batches of members whose bytes have arrived, in the order they arrive (file
order when the archive is complete, or arrives from the front); it holds the temporary
folder's owner lock, and each worker holds it too (an inherited descriptor), so no other
extraction takes the folder for stale while a worker still writes in it. A worker only
copies the byte ranges it is told into new files (:mod:`.worker`, with
:func:`.copying.create`: ``O_EXCL | O_NOFOLLOW`` under folders the parent made), checks
their CRC-32, and answers with what it wrote (``fstat``) or with the first error. A thread
per worker reads its answers as they come: an error ends the extraction at once, and the
waits for the bytes of a followed download with it, not once the next batch's bytes have
arrived (never, when the download stalls). A worker reads its orders from a pipe and stops
at the pipe's end: when the parent dies, a worker stops after the batch it is writing (at
most :data:`_BATCH_BYTES` or :data:`_BATCH_FILES`), or within a chunk of a member whose
output is bigger (it notices it was adopted). A member whose bytes reach past where the
parent said the batch's bytes end is refused (a zip whose members overlap), which sends a
followed download to the usual extraction.

Small archives are written by threads (:func:`worth_processes`): starting a worker costs
about 0.1 s. Where no worker can start (no interpreter to run, a sandbox), threads write
everything, as before.
"""
from __future__ import annotations

import contextlib
import errno
import logging
import os
import signal
import subprocess
import sys
import threading
import zipfile
from array import array
from functools import partial
from typing import BinaryIO, Callable, Iterator, Optional, Sequence

from drivestage.errors import ArchiveError
from drivestage.extract.frames import Message, get_message, put_message
from drivestage.extract.members import Entry
from drivestage.extract.copying import Progress, TempDir
from drivestage.extract.shares import Share, apply_answer
from drivestage.extract.worker import Order, write_order
from drivestage.extract.writing import PER_FILE
from drivestage.fork_drop import drop_in_forks, forget
from drivestage.interrupts import BackgroundThread, Flag, readable

log = logging.getLogger(__name__)

#: Below this much work (compressed bytes plus :data:`writing.PER_FILE` per file) threads
#: write the members: a worker's start (about 0.1 s) would cost more than it saves.
_WORTH = 128 << 20
#: A batch: at most this many files or compressed bytes (how long a worker goes on after
#: its parent died, and how far behind the download front the extraction waits).
_BATCH_FILES, _BATCH_BYTES = 64, 4 << 20
_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)
#: How long (seconds) a worker may take to say it started (about 0.1 s on an idle machine):
#: an interpreter that hangs in its start leaves its share to a thread instead.
_START_TIMEOUT = 30.0
#: What ``ps`` shows for a worker (and how tests find one); the parent's id follows.
MARKER = "drivestage-extract-worker-of-"

#: The peak memory (bytes) of each worker that ended normally, for ``bench/peak.py``: a
#: command's memory is its own peak plus its workers'.
PEAKS: list[int] = []

_HERE = os.path.dirname(os.path.abspath(__file__))
_ROOT = os.path.dirname(os.path.dirname(_HERE))
#: What a worker runs (``sys.argv[1]``: the folder drivestage is imported from). That
#: folder goes before the first site-packages folder, not first: for a pip install it is
#: site-packages itself, where a package named like a standard module must not shadow it.
#: The package's ``__init__`` is skipped (an empty module stands for it): a worker needs
#: :mod:`.worker` and the little it imports, not all of drivestage.extract (8 MB less).
CHILD = (
    "import sys, types\n"
    "root = sys.argv[1]\n"
    "if root not in sys.path:\n"
    "    sys.path.insert(next((i for i, p in enumerate(sys.path)\n"
    "                          if p.endswith(('site-packages', 'dist-packages'))),\n"
    "                         len(sys.path)), root)\n"
    "import drivestage\n"
    "pkg = types.ModuleType('drivestage.extract')\n"
    f"pkg.__path__ = [{os.path.join(_ROOT, 'drivestage', 'extract')!r}]\n"
    "sys.modules['drivestage.extract'] = pkg\n"
    "from drivestage.extract.worker import serve\n"
    "serve()\n")

def worth_processes(kind: str, files: Sequence[Entry], jobs: int) -> bool:
    """Whether writing ``files`` (members of a ``kind`` archive) in ``jobs`` worker
    processes pays: a zip whose members are stored or deflated, or a plain tar; POSIX;
    enough work."""
    if jobs < 2 or os.name != "posix" or not sys.executable:
        return False
    if kind == "zip":
        if any(e.method not in _METHODS for e in files):
            return False
    elif kind != "tar":
        return False
    return sum(e.comp_size + PER_FILE for e in files) >= _WORTH


def likely_worth(size: int, jobs: int) -> bool:
    """Whether an archive of ``size`` bytes will likely be written in ``jobs`` worker
    processes (:func:`worth_processes`, before its member list is known): its workers may
    then start while the list is read (:func:`start_workers`)."""
    return jobs >= 2 and os.name == "posix" and bool(sys.executable) and size >= _WORTH


#: Worker processes started before their members are known (:func:`start_workers`); None
#: for one that could not start (its share is written by a thread).
Started = list[Optional["_Worker"]]


def start_workers(afd: int, tmp: TempDir, label: str, jobs: int, *, hold_fd: int = -1,
                  into: Optional[Started] = None, python: Optional[str] = None) -> Started:
    """``jobs`` worker processes told to write from ``afd`` into ``tmp`` (see
    :func:`write_in_processes`, which takes them as ``started``), appended to ``into`` as
    each starts: a caller that made ``into`` known first closes every one a Ctrl-C left
    (:func:`close_workers`). Their interpreters start (about 0.06 s of CPU each) while the
    caller goes on: beside the member list's read, not after it."""
    workers: Started = into if into is not None else []
    try:
        for _ in range(jobs - len(workers)):
            workers.append(_Worker.start(afd, tmp, label, hold_fd, python))
    except BaseException:  # a Ctrl-C: none left behind
        close_workers(workers, kill=True)
        raise
    return workers


def close_workers(workers: Started, *, kill: bool) -> None:
    """End ``workers`` (at once with ``kill``) and wait for them; closing twice does
    nothing more."""
    for w in workers:
        if w is not None:
            w.close(kill=kill)


class _Orders:
    """The members in file order, cut into batches (at most :data:`_BATCH_FILES` or
    :data:`_BATCH_BYTES`), each batch's orders made when it is taken: the orders of all
    members at once took 0.2 KB a member (see ``members.MAX_MEMBERS``). Each order says
    where its member's bytes must end: the next member's start when ``bounded`` (a
    download being followed: nothing past it may have arrived), else -1 (no bound: a
    finished archive; bytes past its end are a short read, which the copy reports as a
    truncated member, as one thread does)."""

    def __init__(self, kind: str, files: Sequence[Entry], size: int, bounded: bool):
        self.kind, self.files, self.bounded = kind, files, bounded
        self.idx = array("q", sorted(range(len(files)), key=lambda i: self._start(files[i])))
        #: Each batch's first and last position in ``idx``, in file order.
        self.ranges: list[tuple[int, int]] = []
        lo, nbytes = 0, 0
        for n, i in enumerate(self.idx):
            nbytes += files[i].comp_size
            if n + 1 - lo >= _BATCH_FILES or nbytes >= _BATCH_BYTES or n + 1 == len(files):
                self.ranges.append((lo, n))
                lo, nbytes = n + 1, 0
        # Each batch's bytes: from its first member's start to where its last member's
        # bytes must end (a batch's bound is the next one's start: the spans are disjoint).
        ends = [self._bound(hi) for _, hi in self.ranges]
        self.spans = [(self._start(files[self.idx[lo]]), size if end < 0 else end)
                      for (lo, _), end in zip(self.ranges, ends)]

    def _start(self, e: Entry) -> int:
        return e.raw_offset if self.kind == "tar" else e.offset

    def _bound(self, n: int) -> int:
        """Where the bytes of the member at ``idx[n]`` must end (-1: no bound)."""
        if not self.bounded or n + 1 >= len(self.idx):
            return -1
        return self._start(self.files[self.idx[n + 1]])

    def batch(self, k: int) -> list[Order]:
        """The orders of the ``k``-th batch (see :data:`.worker.Order`; a tar member's
        method is 0, stored, and it has no CRC: -1)."""
        lo, hi = self.ranges[k]
        out = []
        for n in range(lo, hi + 1):
            e = self.files[self.idx[n]]
            out.append((self.idx[n], e.path, e.mode, e.mtime, e.size, self._start(e),
                        e.size if self.kind == "tar" else e.comp_size, e.method,
                        -1 if e.crc is None else e.crc, self._bound(n)))
        return out


def write_in_processes(kind: str, afd: int, size: int, tmp: TempDir, files: Sequence[Entry],
                       jobs: int, progress: Progress, *, label: str, hold_fd: int = -1,
                       wait: Optional[Callable[[int, int], None]] = None,
                       stop: Optional[Flag] = None,
                       first: Optional[Callable[[Sequence[tuple[int, int]]], int]] = None,
                       python: Optional[str] = None, started: Optional[Started] = None) -> None:
    """Write ``files`` (zip members stored or deflated, or plain-tar members) of the archive
    open as ``afd`` (``size`` bytes in the end; ``label``: its name in messages) under
    the temporary folder ``tmp`` in ``jobs`` worker processes, setting each member's
    ``written``.

    The workers read the descriptor (a rename of the archive does not matter) and hold
    ``hold_fd``, the temporary folder's owner lock. ``wait(start, end)``: returns once bytes
    ``[start, end)`` are there (or raises), for an archive still downloading; its batches are
    then bounded by the next member's start. ``first(spans)``: with ``wait``, for a
    download whose streams fill pieces far apart: waits until one of ``spans`` (sorted
    ``[start, end)``) is all there and returns its index (or raises); batches are then
    taken in the order their bytes arrive, not in file order. ``stop``: set to stop after
    the batches in flight; set here as soon as a worker fails, so that ``wait`` and
    ``first``, which must end (raise) once it is set, stop waiting for bytes: the error
    is raised then, not once the next batch's bytes have arrived (never, if the download
    stalls). ``python``: the interpreter to run (default this one). A worker that cannot
    start leaves its share to a thread here. ``started``: workers :func:`start_workers`
    started for these very ``afd``, ``tmp`` and ``hold_fd`` (this closes them), used
    instead of new ones."""
    orders = _Orders(kind, files, size, bounded=wait is not None)
    spans = orders.spans
    pending = list(range(len(spans) - 1, -1, -1))  # in file order, each taken from the end
    take = threading.Lock()
    failed = Flag()
    errors: list[BaseException] = []
    said = threading.Lock()
    shares: list[Share] = []
    # A worker's answers are read by a thread of its own, as they come: read by its feeder
    # between two sends, a worker's error waited until the next batch's bytes had arrived.
    readers: list[BackgroundThread] = []

    def fail(exc: BaseException) -> None:
        with said:  # the first error first: the waits it ends raise too
            errors.append(exc)
            failed.set()
        if stop is not None:
            stop.set()
        for share in list(shares):
            share.wake()

    def next_batch() -> Optional[list[Order]]:
        with take:
            if failed.is_set() or (stop is not None and stop.is_set()) or not pending:
                return None
            if first is None or wait is None:  # file order
                return orders.batch(pending.pop())
            i = first(spans)  # the other feeder waits here too: it wants the same bytes
            spans.pop(i)
            return orders.batch(pending.pop(len(pending) - 1 - i))

    def arrived(batch: list[Order]) -> None:
        if wait is not None:
            end = batch[-1][9]
            wait(batch[0][5], end if end >= 0 else size)

    def read(share: Share) -> None:
        try:
            while True:
                batch = share.next_sent(failed)
                if batch is None:
                    return
                apply_answer(share.worker.answer(), batch, files, progress, label)
                share.done()
        except BaseException as exc:
            if not failed.is_set():  # a worker killed after a failure says nothing new
                fail(exc)

    def feed(worker: Optional[_Worker]) -> None:
        try:
            if worker is None or not worker.ready():
                _write_here(afd, tmp, files, next_batch, arrived, label, progress)
                return
            share = Share(worker)
            shares.append(share)
            reader = BackgroundThread(partial(read, share), "drivestage-extract-answers")
            readers.append(reader)
            try:
                reader.start()
                while share.room(failed):
                    batch = next_batch()
                    if batch is None:
                        return
                    arrived(batch)
                    share.sent(batch)  # before the answer can come
                    try:
                        worker.send(("batch", batch))
                    except BrokenPipeError:  # it stopped: its reader says why
                        return
            finally:
                share.close()
        except BaseException as exc:
            fail(exc)

    workers: Started = started if started is not None else []
    # BackgroundThreads: a Ctrl-C inside threading.Thread.join() (this runs in the main thread
    # for a staged archive) marks a feeder that still runs as stopped, and the clean-up's
    # join then returned while it went on.
    feeders: list[BackgroundThread] = []
    try:  # from the first start on: a Ctrl-C at any point ends every worker started
        for _ in range(jobs - len(workers)):
            workers.append(_Worker.start(afd, tmp, label, hold_fd, python))
        log.debug("writing %d members of %s in %d worker processes", len(files), label,
                  sum(w is not None for w in workers))
        for w in workers:
            feeders.append(BackgroundThread(partial(feed, w), "drivestage-extract-feed"))
            feeders[-1].start()
        for t in feeders:
            t.join()
        if failed.is_set():  # a worker may still write a batch nobody wants
            for w in workers:
                if w is not None:
                    w.kill()
        for t in readers:  # every one is known once the feeders have ended
            t.join()
    except BaseException:  # Ctrl-C: the workers stop now; the temporary folder goes
        failed.set()
        if stop is not None:
            stop.set()
        for w in workers:
            if w is not None:
                w.kill()
        for share in shares:
            share.wake()
        for t in feeders:  # a thread writing a share stops after its batch, as threads do
            t.join()
        for t in readers:  # its worker killed, each ends at its next answer
            t.join()
        raise
    finally:
        for w in workers:
            if w is not None:
                w.close(kill=failed.is_set())
    if errors:
        raise errors[0]


def _write_here(afd: int, tmp: TempDir, files: Sequence[Entry],
                next_batch: Callable[[], Optional[list[Order]]],
                arrived: Callable[[list[Order]], None], label: str,
                progress: Progress) -> None:
    """A share of the batches written by this thread (its worker could not start)."""
    while True:
        batch = next_batch()
        if batch is None:
            return
        arrived(batch)
        for order in batch:
            write_order(afd, tmp, order, label, progress, files[order[0]])


# ---------------------------------------------------------------- the parent's side


class _Worker:
    """One worker process and its two pipes."""

    def __init__(self, proc: "subprocess.Popen[bytes]", answers: BinaryIO):
        self.proc = proc
        self.pid = proc.pid
        assert proc.stdin is not None
        self.to: BinaryIO = proc.stdin  # type: ignore[assignment]
        # A fork's child kept the writing end: killed, the parent left its workers
        # waiting for orders for as long as the child lived (drivestage.fork_drop).
        drop_in_forks(self.to.fileno())
        self.frm = answers

    @classmethod
    def start(cls, afd: int, tmp: TempDir, label: str, hold_fd: int,
              python: Optional[str]) -> Optional["_Worker"]:
        """A worker told what to write from and into; None when none can start."""
        # Answers come on a pipe of their own, not stdout: whatever prints there as Python
        # starts (a sitecustomize, a wrapper script) is no frame (its stdout: nowhere).
        try:
            r, w = os.pipe()
        except OSError as exc:
            log.debug("no extraction worker process (%s); a thread writes instead", exc)
            return None
        # A file from the start: closed once, whatever stops this (os.close(r) after a
        # file made of it could close a descriptor opened since under the same number).
        answers: BinaryIO = os.fdopen(r, "rb", buffering=0)
        # -I: nothing from the current folder or PYTHON* variables; so the file-name
        # encoding is passed on as it is here (-I drops PYTHONUTF8).
        argv = [python or sys.executable, "-I", "-X", f"utf8={sys.flags.utf8_mode}", "-c",
                CHILD, _ROOT, f"{MARKER}{os.getpid()}", str(w)]
        proc: Optional["subprocess.Popen[bytes]"] = None
        try:
            try:
                with _sigint_blocked():  # until the worker ignores it (the mask is inherited)
                    proc = subprocess.Popen(argv, stdin=subprocess.PIPE,
                                            stdout=subprocess.DEVNULL,
                                            pass_fds=(afd, w, tmp.fd, hold_fd) if hold_fd >= 0
                                            else (afd, w, tmp.fd),
                                            close_fds=True, bufsize=0)
            finally:
                os.close(w)
            worker = cls(proc, answers)
        except OSError as exc:
            answers.close()
            log.debug("no extraction worker process (%s); a thread writes instead", exc)
            return None
        except BaseException:
            # A Ctrl-C as it started: SIGINT, blocked meanwhile in this thread only, is
            # raised here once Popen returned (as _sigint_blocked ends, another thread took
            # it), before the worker was anyone's: it ran on, its folder removed under it.
            if proc is not None:
                proc.kill()
                if proc.stdin is not None:
                    fd = proc.stdin.fileno()
                    proc.stdin.close()
                    forget(fd)
                proc.wait()
            answers.close()
            raise
        try:
            worker.send(("init", afd, tmp.fd, tmp.path, label))
        except OSError:  # it could not even read its orders
            worker.close(kill=True)
            return None
        except BaseException:  # Ctrl-C: not left behind
            worker.close(kill=True)
            raise
        return worker

    def ready(self) -> bool:
        """Whether the worker started (it says so once its imports are done, within
        :data:`_START_TIMEOUT`)."""
        try:
            if not readable(self.frm, _START_TIMEOUT):
                raise OSError(errno.ETIMEDOUT, f"no answer within {_START_TIMEOUT:g} s")
            return self.answer() == ("ready",)
        except (OSError, ArchiveError) as exc:
            log.debug("the extraction worker %d did not start (%s)", self.pid, exc)
            self.close(kill=True)
            return False

    def send(self, message: Message) -> None:
        """Send ``message`` (BrokenPipeError: the worker is gone)."""
        put_message(self.to, message)

    def answer(self) -> Message:
        """The worker's next message (its end, or a garbled one, is an error)."""
        got = get_message(self.frm)
        if got is None:
            raise self.ended()
        return got

    def ended(self) -> OSError:
        """The error that says this worker ended before its work did."""
        code = self.proc.wait()
        try:
            how = f"was killed by {signal.Signals(-code).name}" if code < 0 else \
                f"ended (exit code {code})"
        except ValueError:
            how = f"ended (exit code {code})"
        return OSError(errno.EPIPE, f"the extraction worker process {self.pid} {how} before "
                       "its work was done; run the command again (if this happens again, the "
                       "machine may be short of memory)")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()

    def close(self, kill: bool = False) -> None:
        """End the worker (at once with ``kill``) and wait for it: after this, nothing
        writes into the temporary folder. Closing twice does nothing more."""
        if self.to.closed:
            return
        if kill:
            self.kill()
        try:
            fd = self.to.fileno()
            self.to.close()  # the end of its orders: it says goodbye with its peak memory
            forget(fd)   # (after the close: fork_drop)
            bye = None if kill else get_message(self.frm)
        except OSError:
            bye = None
        if bye is not None and bye[0] == "bye" and isinstance(bye[1], int):
            PEAKS.append(bye[1])
        try:
            self.frm.close()
        except OSError:
            pass
        self.proc.wait()


@contextlib.contextmanager
def _sigint_blocked() -> Iterator[None]:
    """SIGINT blocked in this thread (a Ctrl-C then reaches the process when it ends, or
    another thread): a worker started meanwhile inherits the mask, so a Ctrl-C sent to
    the terminal's whole process group while it starts stays pending until it ignores it,
    instead of ending it with a traceback in the middle of its imports."""
    if not hasattr(signal, "pthread_sigmask"):  # pragma: no cover - POSIX has it
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
