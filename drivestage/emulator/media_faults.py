"""The faults on content and uploads (:class:`MediaFaults`, a mixin of
:class:`~drivestage.emulator.faults.Faults`; split from faults.py at its line cap):
corrupted bytes served or stored, bodies held at a byte (:class:`Hold`), downloads redirected
or answered whole whatever their Range, upload sessions answered on another server, chunks
kept short. Their state is made in ``Faults.__init__``, shown by ``describe`` and cleared by
``clear``, under the one lock of the faults.
"""
from __future__ import annotations

import socket
import threading
import time
from typing import Optional


class MediaFaults:
    """The content and upload faults of :class:`~drivestage.emulator.faults.Faults`."""

    _lock: threading.Lock

    def corrupt(self, file_id: str, times: Optional[int] = None) -> None:
        """Serve the content of ``file_id`` with one byte flipped (its middle byte), in the
        next ``times`` answers that hold that byte (None: every one)."""
        with self._lock:
            self._corrupt[file_id] = times

    def hold(self, file_id: str, offset: int, timeout: float = 60.0) -> "Hold":
        """Pause every answer with the content of ``file_id`` that holds byte ``offset``
        right before that byte, until :meth:`Hold.release` (a download that stalls there,
        as Drive's sometimes do): a test acts while the bytes before it have arrived and
        the rest has not. ``timeout``: released anyway after that many seconds, so a test
        that fails before it releases does not leave the server waiting for good."""
        hold = Hold(file_id, int(offset), float(timeout))
        with self._lock:
            self._holds.append(hold)
        return hold

    def corrupt_upload(self, times: int = 1) -> None:
        """Store the next ``times`` uploads with their first byte flipped.

        The md5Checksum is computed on what is stored, so the client sees a mismatch."""
        with self._lock:
            self._corrupt_uploads += int(times)

    def relocate_sessions(self, origin: str, times: Optional[int] = 1) -> None:
        """Answer the next ``times`` resumable-upload starts (None: every one) with a session
        address (``Location``) on ``origin`` (``http://host:port``) instead of this server's:
        what a lying server, or a proxy that rewrites answers, does. The session itself is
        made here, as usual."""
        with self._lock:
            self._relocated = (origin.rstrip("/") + "/", times)

    def redirect_media(self, status: int = 307, times: Optional[int] = None,
                       origin: Optional[str] = None) -> None:
        """Answer the next ``times`` ``alt=media`` downloads (None: every one; ``0``: stop)
        with ``status`` (301, 302, 303, 307 or 308) and a ``Location`` that serves the bytes
        without a token: a signed link (``/download/drive/v2/files/<id>?qk=...``) on this
        server, or on ``origin`` (``http://localhost:PORT``: another origin that reaches the
        same server). What Google's front end may do with a media download (see
        :mod:`drivestage.emulator.signed`); the caller's access is checked first, as Drive
        checks it, so a refusal (403, 404) is still answered at the API address."""
        if int(status) not in (301, 302, 303, 307, 308):
            raise ValueError(f"status must be a redirect (301, 302, 303, 307, 308), got {status}")
        with self._lock:
            self._media_redirect = None if times == 0 else (
                int(status), origin.rstrip("/") + "/" if origin else None, times)

    def ignore_range(self, times: Optional[int] = None) -> None:
        """Answer the next ``times`` downloads (None: every one) with ``200`` and the whole
        file, whatever their ``Range``: what a proxy or a mirror that strips ``Range`` does
        (``0``: stop)."""
        with self._lock:
            self._ranges_ignored = -1 if times is None else max(0, int(times))

    def keep_less(self, nbytes: int, times: Optional[int] = 1) -> None:
        """Keep ``nbytes`` fewer (rounded down to 256 KiB multiples, never less than was kept
        before) of each of the next ``times`` resumable-upload chunks (None: every one) than
        were sent, and answer ``308`` with a ``Range`` that says so. Drive's upload guide: "Do
        not assume that the server received all bytes sent in the previous request"."""
        with self._lock:
            self._keep_less = (max(0, int(nbytes)), times) if nbytes and times != 0 else None

    # ------------------------------------------------------------- server side
    def take_corrupt_upload(self) -> bool:
        """True (once per count) when the upload now starting must be stored corrupted."""
        with self._lock:
            if self._corrupt_uploads > 0:
                self._corrupt_uploads -= 1
                return True
            return False

    def take_media_redirect(self) -> Optional[tuple[int, Optional[str]]]:
        """``(status, origin)`` when the download now answered must be redirected (once per
        count; origin None: this server's own), else None."""
        with self._lock:
            if self._media_redirect is None:
                return None
            status, origin, left = self._media_redirect
            if left is not None:
                self._media_redirect = None if left <= 1 else (status, origin, left - 1)
            return status, origin

    def take_range_ignored(self) -> bool:
        """True (once per count) when the download now answered must ignore its Range."""
        with self._lock:
            if self._ranges_ignored == 0:
                return False
            if self._ranges_ignored > 0:
                self._ranges_ignored -= 1
            return True

    def take_keep_less(self) -> int:
        """Bytes the resumable chunk now received must keep fewer of (once per count)."""
        with self._lock:
            if self._keep_less is None:
                return 0
            nbytes, left = self._keep_less
            if left is not None:
                self._keep_less = None if left <= 1 else (nbytes, left - 1)
            return nbytes

    def take_session_origin(self) -> Optional[str]:
        """The origin (ending in ``/``) the resumable session now starting must be answered
        on, once per count; None: this server's own."""
        with self._lock:
            if self._relocated is None:
                return None
            origin, left = self._relocated
            if left is not None:
                self._relocated = None if left <= 1 else (origin, left - 1)
            return origin

    def corrupt_offset(self, file_id: str, size: int, start: int = 0,
                       count: Optional[int] = None) -> Optional[int]:
        """The absolute offset to flip when serving bytes ``[start, start + count)`` of
        ``file_id`` (None: serve intact). Only an answer that holds that byte counts against
        ``times``: a ranged read elsewhere in the file (a zip's central directory) is served
        intact and leaves the fault for the answer it was meant for."""
        flip = size // 2
        with self._lock:
            if file_id not in self._corrupt or size == 0:
                return None
            if not start <= flip < start + (size - start if count is None else count):
                return None
            left = self._corrupt[file_id]
            if left is not None:
                if left <= 1:
                    del self._corrupt[file_id]
                else:
                    self._corrupt[file_id] = left - 1
            return flip

    def hold_at(self, file_id: str, start: int, count: int) -> Optional["Hold"]:
        """The hold (:meth:`hold`) that serving bytes ``[start, start + count)`` of
        ``file_id`` must stop at, if any (the first, by offset)."""
        with self._lock:
            held = [h for h in self._holds if h.file_id == file_id and not h.released
                    and start <= h.offset < start + count]
        return min(held, key=lambda h: h.offset) if held else None


#: How often a held answer looks whether its client hung up (:meth:`Hold.wait`).
HANG_UP_WATCH_S = 0.02


class Hold:
    """A body held at one byte (:meth:`Faults.hold`): ``reached`` is set once an answer
    has sent every byte before ``offset`` and waits; :meth:`release` lets it go on.
    ``hung_up`` is set once a held answer's client closed (or shut down) its connection:
    the answer then ends there, as a server's does."""

    def __init__(self, file_id: str, offset: int, timeout: float):
        self.file_id, self.offset, self.timeout = file_id, offset, timeout
        self.reached = threading.Event()
        self.hung_up = threading.Event()
        self._go = threading.Event()

    @property
    def released(self) -> bool:
        return self._go.is_set()

    def release(self) -> None:
        """Let every answer held here go on (and later ones pass)."""
        self._go.set()

    def wait(self, conn: Optional[socket.socket] = None) -> bool:
        """In the server: say the offset is reached, then wait for the release (or the
        timeout): True; False once the client hung up ``conn``, the answer's connection."""
        self.reached.set()
        end = time.monotonic() + self.timeout
        while not self._go.wait(min(HANG_UP_WATCH_S, max(0.0, end - time.monotonic()))):
            if time.monotonic() >= end:
                break
            if conn is not None and client_hung_up(conn):
                self.hung_up.set()
                return False
        return True


def client_hung_up(conn: socket.socket) -> bool:
    """Whether the client closed ``conn`` (nothing more comes from a client waiting for
    its answer; its end, or a reset, does)."""
    try:
        return conn.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except (BlockingIOError, InterruptedError, ValueError):   # (ValueError: a TLS socket,
        return False                                           # not watched)
    except OSError:
        return True
