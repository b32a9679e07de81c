"""The connections a download's streams read on now, which the download's stop cuts.

A download's streams read Drive's answers in threads of their own, straight from the socket
(no Python between two reads: see ``drivestage.drive.sliced``), so nothing but the answer
wakes one. Stopped (a Ctrl-C, a SIGTERM, ``pool.check`` in a folder pull's thread, a failure
elsewhere), the download returned at once, but a stream whose answer Drive held mid-body
went on waiting for it up to the HTTP timeout (120 s): in a notebook its thread and socket
outlived the call that was interrupted (stuckconn46). :meth:`StreamLines.cut` shuts down
the socket of every connection its streams read on (:func:`reading`), so each one's wait
ends at once, and a connection opened after the cut is shut down as it opens
(:func:`opened`); the stream then stops where it would retry (:func:`check`), and a
backoff it waits out ends (:func:`sleep`).

Only ``shutdown``, from the cutting thread: the stream's own thread closes its socket. The
socket is shut down under the lines' lock and closed under it too (:func:`close`: a
connection's close, and an answer's that holds its socket alone; a socket being made,
:class:`Making`, only once let go), so a cut never reaches a file descriptor that was
closed meanwhile and given to another file (a second pull's partial, its connection).
"""
from __future__ import annotations

import _thread
import socket
import threading
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Optional


class StreamLines:
    """The connections one download's streams read on (see the module doc)."""

    def __init__(self) -> None:
        # Reentrant: a close under it may close an answer of the connection, whose close
        # asks for it too (drive.sliced).
        self._lock = threading.RLock()
        self._open: list[Any] = []   # http.client connections read on now
        self._cut = False
        self._cut_event = _Gate()   # (waited on by stream threads only: see sleep())

    @contextmanager
    def reading(self) -> Iterator[None]:
        """Within, the connections this thread reads Drive's answers on are these lines'."""
        saved = _LOCAL.lines
        _LOCAL.lines = self
        try:
            yield
        finally:
            _LOCAL.lines = saved

    @property
    def is_cut(self) -> bool:
        """Whether :meth:`cut` was called."""
        return self._cut

    def cut(self) -> None:
        """Shut down the socket of every connection read on now, and of every one opened on
        these lines from now on: each read waiting for Drive ends at once."""
        with self._lock:
            self._cut = True
            for conn in self._open:
                _shut(getattr(conn, "sock", None))
        self._cut_event.open()


class _Local(threading.local):
    lines: Optional[StreamLines] = None


_LOCAL = _Local()


@contextmanager
def on(conn: Any) -> Iterator[None]:
    """``conn`` (an ``http.client`` connection, or an answer that holds the socket its
    connection let go of: ``sock``) is read on within, by this thread: a cut of this
    thread's lines shuts its socket down (at once when they are cut already)."""
    lines = _LOCAL.lines
    if lines is None:
        yield
        return
    with lines._lock:
        lines._open.append(conn)
        conn._stream_lines = lines
        if lines._cut:
            _shut(conn.sock)
    try:
        yield
    finally:
        with lines._lock:
            lines._open.remove(conn)
            if conn not in lines._open:
                conn._stream_lines = None


class Making:
    """A socket being made for a connection (connected, its TLS handshake done), read on
    :func:`on` as a connection is: a stop while Drive's network holds the handshake (or the
    connect) ends it, where the connection, whose socket it is once made, has none yet."""

    def __init__(self, sock: socket.socket):
        self.sock: Any = sock

    def wrapped(self, sock: socket.socket) -> None:
        """Its socket is now ``sock`` (the TLS socket its descriptor moved to): shut down
        at once when its lines were cut meanwhile (the cut met the socket it left)."""
        lines: Optional[StreamLines] = getattr(self, "_stream_lines", None)
        if lines is None:
            self.sock = sock
            return
        with lines._lock:
            self.sock = sock
            if lines._cut:
                _shut(sock)


def opened(conn: Any) -> None:
    """``conn`` has just got its socket: shut down when its lines are cut already (a cut
    that came while it connected saw no socket to shut)."""
    lines: Optional[StreamLines] = getattr(conn, "_stream_lines", None)
    if lines is not None:
        with lines._lock:
            if lines._cut:
                _shut(conn.sock)


def close(conn: Any, close: Callable[[Any], None]) -> None:
    """``close(conn)``, never while a cut shuts its socket down. (Not a generator's context:
    a KeyboardInterrupt between its enter and the caller's block would leave the lock held
    until the generator is collected.)"""
    lines: Optional[StreamLines] = getattr(conn, "_stream_lines", None)
    if lines is None:
        close(conn)
        return
    with lines._lock:
        close(conn)


def sleep(seconds: float) -> bool:
    """In a thread reading on stream lines (never the main thread): wait ``seconds``, or
    until they are cut (a stream waiting out a retry's backoff, a Retry-After of up to
    120 s, outlived the stopped call by that long), and say True; elsewhere False, at once."""
    lines = _LOCAL.lines
    if lines is None:
        return False
    lines._cut_event.wait(seconds)
    return True


class _Gate:
    """Opened once, for good, by a cut; waited on by stream threads. On a C lock, held while
    shut: opening it runs no Python line a Ctrl-C could cut in two. (A threading.Event:
    the main thread sets it as it closes a pass, and a Ctrl-C inside ``Event.set()``, which
    holds its Condition's lock across Python lines, left that lock held: the download's
    close, the next cut, then waited for it for good: test_interrupt_locks' sweep, once a
    pass's close joined its streams.)"""

    def __init__(self) -> None:
        self._shut = _thread.allocate_lock()
        self._shut.acquire()

    def open(self) -> None:
        """Let every waiter through, now and from now on."""
        try:
            self._shut.release()
        except RuntimeError:   # (open already)
            pass

    def wait(self, seconds: float) -> bool:
        """Wait ``seconds`` at most for the gate to open; whether it is."""
        # (A C lock's timeout of -1 waits for good, other negatives raise: Event.wait's
        # "no wait" for them kept.)
        got = self._shut.acquire(True, seconds) if seconds > 0 else self._shut.acquire(False)
        if not got:
            return False
        try:
            self._shut.release()   # (open for the next waiter too)
        except RuntimeError:   # (an open() released it meanwhile: open either way)
            pass
        return True


def check() -> None:
    """In a thread whose lines were cut: raise KeyboardInterrupt (the stream stops, as a
    thread :func:`drivestage.pool.check` stops does). Asked before a retry's wait."""
    lines = _LOCAL.lines
    if lines is not None and lines._cut:
        raise KeyboardInterrupt


def _shut(sock: Any) -> None:
    """Shut ``sock`` (a connection's: a socket, or the wrapper it sends through) down both
    ways. A TLS socket's TCP socket, not its TLS layer: ``SSLSocket.shutdown`` drops the
    TLS object the stream's thread is reading with."""
    if not isinstance(sock, socket.socket):
        sock = getattr(sock, "_sock", None)   # (drive.sliced's _SlicedSends)
    if not isinstance(sock, socket.socket):
        return
    try:
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except OSError:   # closed already, or never connected
        pass
