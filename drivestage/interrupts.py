"""What a Ctrl-C must not cut in two: locks that it cannot leave held, and clean-ups it
waits for.

Python runs a signal handler - so it raises KeyboardInterrupt - between two bytecodes of the
main thread, and that includes the pure-Python ``__enter__`` and ``__exit__`` of
``threading.Condition`` (and so of ``threading.Event``): right after the lock was taken, or
right before it is released. The ``with`` block then never releases it (CPython bpo-29988),
and every thread that needs the lock waits for good. A ``pull --extract`` interrupted while
it followed its download hung that way, about once in 15 tries on a loaded machine: the main
thread had left the download's Condition held, so its hash thread, streams and extraction
waited, and the main thread waited for them.

:class:`Monitor` is a lock whose ``__enter__`` and ``__exit__`` are the C lock's own: no
bytecode runs between taking it and entering the block, or between leaving the block and
releasing it, so an interrupt lands either outside or inside the block, where ``with``
releases it. It has a Condition's ``wait`` and ``notify``. Being reentrant, it is also
safe in a signal handler that sets a :class:`Flag` while the main thread is inside it
(``threading.Event`` then deadlocks on its own lock).

:func:`deferred` holds a Ctrl-C back while a clean-up runs (a temporary folder removed, a
lock file released): cut in two, it left the temporary folder in DEST and, in a notebook
whose process lives on, the lock held by the open file until the kernel restarts.
"""
from __future__ import annotations

import _thread
import collections
import itertools
import math
import operator
import queue
import select
import signal
import socket
import sys
import threading
import time
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Callable, Iterator, Optional, TypeVar

from drivestage import stream_lines
from drivestage.deferred_ctrl_c import deferred, interrupt   # (re-exported: there since moved)

T = TypeVar("T")


class Monitor(_thread.RLock):  # type: ignore[misc]
    """A reentrant lock with :class:`threading.Condition`'s waiting and notifying, used by
    ``with``: see the module doc."""

    def __init__(self) -> None:
        super().__init__()
        self._waiters: collections.deque[Any] = collections.deque()

    if TYPE_CHECKING:  # the C lock's own, which threading.Condition uses too
        def _is_owned(self) -> bool: ...

        def _acquire_restore(self, state: Any) -> None: ...

    def wait(self, timeout: Optional[float] = None) -> bool:
        """Release the lock until notified or ``timeout`` seconds passed; False on timeout.
        The lock is held again when it returns, or raises."""
        if not self._is_owned():
            raise RuntimeError("cannot wait on un-acquired lock")
        waiter = _thread.allocate_lock()
        waiter.acquire()
        self._waiters.append(waiter)
        saved: list[Any] = []
        try:
            # Released, and its state kept, by one call that runs no bytecode: a Ctrl-C
            # right after it finds the state in ``saved`` and the lock is taken again
            # below. (threading.Condition.wait releases before its try: an interrupt there
            # left the lock released, and the ``with`` around it failed with
            # "RuntimeError: cannot release un-acquired lock".)
            saved.extend(map(_RELEASE_SAVE, (self,)))
            if threading.current_thread() is threading.main_thread():
                return _sliced(waiter, timeout)   # (see SLICE)
            if timeout is None:
                return bool(waiter.acquire())
            return bool(waiter.acquire(True, timeout)) if timeout > 0 else \
                bool(waiter.acquire(False))
        finally:
            if saved:
                self._acquire_restore(saved[0])  # C: not interrupted
            try:
                self._waiters.remove(waiter)  # not notified (a notify removes it)
            except ValueError:
                pass

    def wait_for(self, predicate: Callable[[], T], timeout: Optional[float] = None) -> T:
        """Wait until ``predicate()`` is true (or ``timeout``); its last value."""
        end = None if timeout is None else time.monotonic() + timeout
        result = predicate()
        while not result:
            left = None if end is None else end - time.monotonic()
            if left is not None and left <= 0:
                break
            self.wait(left)
            result = predicate()
        return result

    def notify(self, n: int = 1) -> None:
        """Wake up to ``n`` threads waiting (the lock must be held)."""
        if not self._is_owned():
            raise RuntimeError("cannot notify on un-acquired lock")
        for waiter in list(itertools.islice(self._waiters, n)):
            # Woken before it leaves the list: a Ctrl-C between the two leaves it woken
            # and listed, and the next notify finds its lock already released (unless it
            # took it back, waking). Taken off first, it was left waiting for good, out
            # of reach of every later notify. Only notifiers release, one at a time.
            if waiter.locked():
                waiter.release()
            try:
                self._waiters.remove(waiter)
            except ValueError:  # it removed itself meanwhile
                pass

    def notify_all(self) -> None:
        """Wake every thread waiting (the lock must be held)."""
        self.notify(len(self._waiters))


#: ``Monitor._release_save`` as a C callable (see :meth:`Monitor.wait`).
_RELEASE_SAVE = operator.methodcaller("_release_save")


class Flag:
    """:class:`threading.Event` on a :class:`Monitor`: setting it from a signal handler, or
    a Ctrl-C while the main thread waits for it, leaves no lock held."""

    def __init__(self) -> None:
        self._lock = Monitor()
        self._set = False
        self._echoes: list[Flag] = []   # (set with this one: :meth:`echoed_to`)

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        with self._lock:
            self._set = True
            self._lock.notify_all()
            echoes = list(self._echoes)
        for other in echoes:   # (outside this one's lock: no two held at once)
            other.set()

    @contextmanager
    def echoed_to(self, other: "Flag") -> Iterator[None]:
        """Inside the block, this flag set sets ``other`` too (at once, if it is set): a
        wait on ``other`` ends on either, with no polling (push_spared's wait for SRC's
        listings ends when a mirror is abandoned: walk52b)."""
        with self._lock:
            self._echoes.append(other)
            now = self._set
        if now:
            other.set()
        try:
            yield
        finally:
            with self._lock:
                self._echoes.remove(other)

    def clear(self) -> None:
        with self._lock:
            self._set = False

    def wait(self, timeout: Optional[float] = None) -> bool:
        """Wait until set (or ``timeout`` seconds); whether it is set."""
        with self._lock:
            return self._lock.wait_for(lambda: self._set, timeout)


#: The longest the main thread waits, for a lock or a notice, without a look for a signal.
#: A process's signal (a terminal's Ctrl-C, ``kill``) goes to any of its threads that does
#: not block it, and Python runs the handler in the main thread only when it runs bytecode:
#: a main thread blocked in a lock or ``flock()`` with no end slept through a Ctrl-C the
#: kernel gave another thread, until whatever it waited for came (a push waiting for the
#: mirror above it waited out the mirror's whole push; the CI's run saw it).
SLICE = 0.2


def _sliced(waiter: Any, timeout: Optional[float]) -> bool:
    """``waiter.acquire(True, timeout)`` (None: no end) in waits of :data:`SLICE` at most: a
    trainer's stop waited for its save's write, its listing, its push with timeouts of a
    fraction of the grace (``mirror`` abandons after 3 s), unwoken by a second signal the
    kernel gave another thread, which the run's handler acts on at once."""
    if timeout is not None and timeout > threading.TIMEOUT_MAX:
        # As the C lock says it in every other thread: a wait this long is a caller's bug
        # (callers bound theirs), never a wait for good in the main thread only.
        raise OverflowError("timeout value is too large")
    end = None if timeout is None else time.monotonic() + timeout
    while True:
        left = SLICE if end is None else min(SLICE, end - time.monotonic())
        if left <= 0:
            return bool(waiter.acquire(False))
        if waiter.acquire(True, left):
            return True


def flock_wait(fd: int, mode: int) -> None:
    """``fcntl.flock(fd, mode)`` (``LOCK_EX`` or ``LOCK_SH``), waited for in short tries
    (:data:`SLICE` at most apart), so that a Ctrl-C ends the wait whichever thread the
    kernel gave it to (KeyboardInterrupt)."""
    import fcntl   # (POSIX: its callers are)
    pause = 0.002
    while True:
        try:
            fcntl.flock(fd, mode | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            pass
        time.sleep(pause)
        pause = min(pause * 2, SLICE)


def sleep(seconds: float) -> None:
    """``time.sleep(seconds)``, in sleeps of :data:`SLICE` at most in the main thread: a
    retry's backoff there (a ``Retry-After`` of up to 120 s) slept through a Ctrl-C the
    kernel gave another thread (a notebook's mirror, a pull's streams) to its end."""
    if threading.current_thread() is not threading.main_thread():
        if not stream_lines.sleep(seconds):   # (a download's stream: its stop ends it)
            time.sleep(seconds)
        return
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        time.sleep(min(left, SLICE))


def queue_get(q: "queue.Queue[T]") -> T:
    """``q.get()``, in waits of :data:`SLICE` at most in the main thread (see there): a
    ``pull -x`` of a local archive waited for its reading thread's next block for good
    where the read did not end (a hung mount), whatever Ctrl-C came."""
    if threading.current_thread() is not threading.main_thread():
        return q.get()
    while True:
        try:
            return q.get(timeout=SLICE)
        except queue.Empty:
            pass


def recv_into(sock: socket.socket, buf: Any, timeout: Optional[float],
              between: Callable[[], None] = lambda: None) -> int:
    """``sock.recv_into(buf)`` that fails (``socket.timeout``) after ``timeout`` seconds
    without a byte (None: no end), as the socket's own timeout does, but waits in pieces of
    :data:`SLICE` at most (see there), calling ``between()`` after each that read nothing (a
    thread's stop: ``pool.check``): a request the main thread sent waited for Drive's
    answer in ``recv``, and a Ctrl-C the kernel gave another thread was acted on only with
    the answer or at the HTTP timeout (120 s). A piece that ends without a byte has read
    nothing (a TLS socket included: its record is kept for the next read), so nothing of the
    answer is lost or read twice; ``sock`` gets ``timeout`` back whatever ends the read."""
    end = None if timeout is None else time.monotonic() + timeout
    try:
        while True:
            left = SLICE if end is None else min(SLICE, end - time.monotonic())
            if left <= 0:
                raise socket.timeout("timed out")
            sock.settimeout(left)
            try:
                return sock.recv_into(buf)
            except socket.timeout:
                between()
    finally:
        sock.settimeout(timeout)


#: The most bytes :func:`sendall` hands the socket at once (a TLS write cut by a piece's end
#: must be tried again with the same bytes).
SEND_PIECE = 1 << 20


def _acked(sock: socket.socket) -> Optional[int]:
    """How many bytes the peer has acknowledged on ``sock`` (Linux >= 4.1: ``TCP_INFO``'s
    ``tcpi_bytes_acked``, at byte 120), None where that is not known. Grows as the server
    reads; a send call does not show it: a blocked one waits for a third of the send
    buffer (up to 4 MiB) to be free, and a TLS write shows nothing until its whole piece
    went."""
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 128)
    except (AttributeError, OSError):   # (not Linux, not TCP)
        return None
    return int.from_bytes(info[120:128], "little") if len(info) >= 128 else None


def sendall(sock: socket.socket, data: Any, timeout: Optional[float],
            between: Callable[[], None] = lambda: None) -> None:
    """``sock.sendall(data)``, failing (``socket.timeout``) after ``timeout`` seconds in which
    no byte went (None: no end): a send call took some, or the server acknowledged some
    (:func:`_acked`). The socket's own sendall bounds the whole call, and an upload's 1 MiB
    blocks, taken slower than 8.7 KB/s (1 MiB in 120 s), timed out though bytes moved;
    a server that takes nothing still ends it within ``timeout`` once the buffers are full.
    It waits in pieces of :data:`SLICE` at most, ``between()`` called after each that sent
    nothing (see :func:`recv_into`): a request's body the server took slowly held a Ctrl-C
    the kernel gave another thread until it was sent. A piece that ends sends the same
    bytes again (TLS wants them so; a plain socket sent none of them)."""
    if timeout == 0:   # (non-blocking: as the socket's own)
        sock.sendall(data)
        return
    view = memoryview(data).cast("B")
    end = None if timeout is None else time.monotonic() + timeout
    acked = _acked(sock)
    try:
        while view:
            left = SLICE if end is None else min(SLICE, end - time.monotonic())
            if left <= 0:
                raise socket.timeout("timed out")
            sock.settimeout(left)
            try:
                view = view[sock.send(view[:SEND_PIECE]):]
                moved = True
            except socket.timeout:
                between()
                before, acked = acked, _acked(sock)
                moved = acked is not None and before is not None and acked > before
            if moved and timeout is not None:
                end = time.monotonic() + timeout
    finally:
        sock.settimeout(timeout)


def _unacked(sock: socket.socket) -> Optional[int]:
    """How many bytes sent on ``sock`` the peer has not acknowledged yet (Linux's
    ``SIOCOUTQ``), None where that is not known."""
    try:
        import fcntl
        import termios
        out = fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0\0\0\0")
    except (ImportError, AttributeError, OSError):
        return None
    return int.from_bytes(out, sys.byteorder, signed=True)


def readable(fd: Any, timeout: float) -> bool:
    """Whether ``fd`` (a descriptor, or what has a ``fileno()``) has something to read (or
    its end came) within ``timeout`` seconds. ``poll``, not ``select``: ``select`` refuses a
    descriptor numbered 1024 or more, and a folder pull of a thousand archives holds that
    many stamp files open (:mod:`drivestage.stamp_cache`): the extraction worker's pipe and
    the sockets opened after them are numbered past it (a ``ValueError`` traceback:
    attackstage36)."""
    if not hasattr(select, "poll"):   # (Windows: no such limit on what select takes)
        return bool(select.select([fd], [], [], timeout)[0])
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(max(0, math.ceil(timeout * 1000))))


def delivered(sock: socket.socket, timeout: Optional[float],
              between: Callable[[], None] = lambda: None,
              answered: Callable[[], bool] = lambda: True) -> None:
    """Wait until what was sent on ``sock`` reached the peer (acknowledged), or an answer
    came to read, failing (``socket.timeout``) after ``timeout`` seconds in which neither
    happened and no byte was acknowledged; in waits of :data:`SLICE` (``between()`` after
    each). A request's last bytes can still be in the send buffers (up to 4 MiB) when it is
    sent: on a slow link the server answers that much later, and the wait for its answer,
    bounded as the time to the answer's first byte, timed out while the body moved.
    ``answered()``, called once ``sock`` is readable, says whether what came is an answer
    (False: the caller read something else, a TLS session ticket: the wait goes on)."""
    end = None if timeout is None else time.monotonic() + timeout
    acked = _acked(sock)
    while _unacked(sock):
        left = SLICE if end is None else min(SLICE, end - time.monotonic())
        if left <= 0:
            raise socket.timeout("timed out")
        if readable(sock, left) and answered():
            return
        between()
        before, acked = acked, _acked(sock)
        if timeout is not None and acked is not None and before is not None and \
                acked > before:
            end = time.monotonic() + timeout


def beside(fn: Callable[[], T], name: str, left: Callable[[], None],
           between: Callable[[], None] = lambda: None) -> T:
    """``fn()`` run in a thread of its own (called ``name``) while the caller waits for it in
    waits of :data:`SLICE` (``between()`` after each): for a call that waits in C and cannot
    be cut into pieces (a connection's name lookup, its connect, its TLS handshake), which
    held a Ctrl-C the kernel gave another thread to its end. Interrupted, the caller leaves
    at once; ``left()`` then runs in that thread once ``fn`` is done (what ``fn`` made and
    nobody takes: a connection, closed), or in the caller when ``fn`` had returned, and what
    it returned or raised is dropped."""
    done, lock = Flag(), Monitor()
    out: list[Any] = []
    state = {"finished": False, "gone": False}

    def run() -> None:
        try:
            out.append((True, fn()))
        except BaseException as exc:   # handed to the caller
            out.append((False, exc))
        finally:
            with lock:
                state["finished"] = True
                late = state["gone"]
            done.set()
            if late:
                left()
    try:
        # Started inside the ``try``: start_thread raises a Ctrl-C that came while the thread
        # started once it runs, and under load that thread was already in ``fn`` (its
        # connect made): raised out here, the thread was never told it was abandoned, and
        # the socket it made stayed open, nobody's, until the collector found it.
        BackgroundThread(run, name).start()
        while not done.wait(SLICE):
            between()
    except BaseException:
        with lock:
            state["gone"] = not state["finished"]
            made = state["finished"] and out[0][0]
        if made:   # interrupted as it ended: what it made is nobody's either
            left()
        raise
    ok, value = out[0]
    if not ok:
        raise value
    return value  # type: ignore[no-any-return]


def lock_wait(lock: Any) -> None:
    """Wait until ``lock`` (a ``threading.Lock``) looks free, in short waits (see
    :data:`SLICE`), without taking it: the caller takes it with ``with`` (see the module
    doc). Another thread may take it first; the caller then waits the usual way."""
    pause = 0.002
    while lock.locked():
        time.sleep(pause)
        pause = min(pause * 2, SLICE)


def _nothing() -> None:
    pass


class BackgroundThread:
    """A daemon thread that says itself when its work has ended (a :class:`Flag` set as
    ``target`` returns or raises). CPython 3.11's ``Thread.is_alive()`` and ``join()``,
    cut by a Ctrl-C inside them (``_wait_for_tstate_lock``), mark a thread that still runs
    as stopped: ``is_alive()`` then says False and ``join()`` returns at once for good (a
    notebook's Mirror said "the mirror thread is not running" while it pushed, and a
    checkpoint writer's close() could return mid-upload)."""

    def __init__(self, target: Callable[[], Any], name: str):
        self._target = target
        self.ended = Flag()
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)

    def _run(self) -> None:
        try:
            self._target()
        finally:
            # Dropped, as threading.Thread drops its target: it often holds its owner,
            # which holds this thread (a cycle only the cyclic collector would break).
            self._target = _nothing
            self.ended.set()

    def start(self) -> "BackgroundThread":
        """Start it; a Ctrl-C meanwhile is raised once it runs (see :func:`start_thread`)."""
        start_thread(self.thread)
        return self

    def is_alive(self) -> bool:
        """Started, and its work not ended."""
        return self.thread.ident is not None and not self.ended.is_set()

    def join(self, timeout: Optional[float] = None) -> bool:
        """Wait (at most ``timeout`` seconds) for its work to end; whether it has."""
        if self.thread.ident is None:
            return True  # never started
        return self.ended.wait(timeout)


def start_thread(thread: threading.Thread) -> None:
    """``thread.start()``, which a Ctrl-C cannot cut in two: it waits for the new thread on
    an Event, and a Ctrl-C there could leave that Event's lock held (see the module doc),
    the new thread then waiting for it for good before its first line, and whoever joined
    it (a download's close()) with it. The Ctrl-C is raised once the thread runs."""
    with deferred():
        thread.start()


__all__ = ["BackgroundThread", "Flag", "Monitor", "beside", "deferred", "delivered",
           "flock_wait", "interrupt", "lock_wait", "queue_get", "recv_into", "sendall",
           "sleep", "start_thread"]
