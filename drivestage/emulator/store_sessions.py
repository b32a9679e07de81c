"""Resumable upload sessions of the emulator's store: opened, saved, found and expired.

Drive forgets a resumable session a week after it was opened (its upload guide: the
session URI expires after one week; a status query of it then answers 404 Not Found and
the client starts a new upload). Without expiry a long-running emulator kept every
session in memory and SQLite, and an abandoned session's bytes in ``uploads/`` for good
(emulefts45). A session here expires once unused for :data:`SESSION_TTL` (the emulator's
``upload_session_ttl``): opened or last given bytes that long ago. A complete one answers
status queries with its file for as long, then 404 as well.

The sweep is bounded: sessions are kept in the order they were last used, and each
request looks at no more than :data:`SWEEP_BATCH` of the oldest (a session looked up
past its age is dropped as it is found). So is what they hold: at most so many sessions,
whose metadata (kept as its JSON text, dropped once the file is made) and content type
take at most so many bytes (:meth:`StoreSessions.limit_sessions`). A mixin of
:class:`~drivestage.emulator.store.EmulatorStore`.
"""
from __future__ import annotations

import json
import os
import secrets
import threading
import time
from collections import OrderedDict
from typing import TYPE_CHECKING, Optional

from drivestage.emulator.errors import EmulatorApiError
from drivestage.emulator.wire import open_private

SESSION_TTL = 7 * 24 * 3600.0   # Drive's week (Emulator.upload_session_ttl)
SWEEP_BATCH = 16                # sessions a request may expire at most
SESSION_BYTES = 64 << 20        # their metadata and content types (Emulator.max_upload_session_bytes)


def _used(sess: dict) -> float:
    return float(sess.get("active") or sess.get("created") or 0.0)


def held_bytes(meta_json: Optional[str], content_type: Optional[str]) -> int:
    """What a session keeps in memory beyond its few fixed fields: its metadata's JSON text
    and its content type (``X-Upload-Content-Type``), both the client's to choose."""
    return len(meta_json or "") + len(content_type or "")


def _held(sess: dict) -> int:
    return held_bytes(sess.get("meta_json"), sess.get("content_type"))


def session_meta(sess: dict) -> dict:
    """The File metadata the session was started with (its file is made from it)."""
    if sess.get("meta_json") is None:
        return dict(sess.get("meta") or {})   # (saved by an emulator before session 47)
    return json.loads(sess["meta_json"])


class StoreSessions:
    """Upload sessions: each a dict saved through to the ``sessions`` table; keys starting
    with ``_`` live in memory only (``_lock``: held while a request works on the session)."""

    if TYPE_CHECKING:
        lock: threading.RLock
        sessions: dict[str, dict]
        upload_dir: str

        def _put(self, table: str, target: dict, doc: dict) -> None: ...
        def _drop(self, table: str, target: dict, doc_id: str) -> None: ...

    def _order_sessions(self) -> None:
        """Index the loaded sessions by when they were last used, and count what they hold
        (once, at start)."""
        self._by_use: OrderedDict[str, float] = OrderedDict(
            sorted(((sid, _used(s)) for sid, s in self.sessions.items()), key=lambda kv: kv[1]))
        for sess in self.sessions.values():
            if isinstance(sess.get("meta"), dict):   # (older emulators kept the parsed dict)
                sess["meta_json"] = json.dumps(sess.pop("meta"), separators=(",", ":"))
        self._held: dict[str, int] = {sid: _held(s) for sid, s in self.sessions.items()}
        self._held_total = sum(self._held.values())

    def upload_path(self, session_id: str) -> str:
        return os.path.join(self.upload_dir, session_id)

    def new_session(self, **fields) -> dict:
        """Open a session (its bytes: an empty file under ``uploads/``)."""
        with self.lock:
            now = time.time()
            sess = {"id": secrets.token_urlsafe(24), "received": 0, "done_file_id": None,
                    "created": now, **fields}
            open_private(self.upload_path(sess["id"])).close()
            self.save_session(sess)
            return sess

    def save_session(self, sess: dict) -> None:
        """Write one upload session through to disk; it counts as used now."""
        with self.lock:
            sess["active"] = time.time()
            self._put("sessions", self.sessions, {k: v for k, v in sess.items() if not k.startswith("_")})
            self.sessions[sess["id"]] = sess
            held = _held(sess)
            self._held_total += held - self._held.get(sess["id"], 0)
            self._held[sess["id"]] = held
            self._by_use[sess["id"]] = sess["active"]
            self._by_use.move_to_end(sess["id"])

    def get_session(self, session_id: str, ttl: Optional[float] = None) -> Optional[dict]:
        """The session (None: unknown, or unused for ``ttl`` seconds and so forgotten).
        Take its ``_lock`` and check its ``_expired`` before using it."""
        with self.lock:
            sess = self.sessions.get(session_id)
            if sess is None:
                return None
            if ttl is not None and _used(sess) < time.time() - ttl and self._forget_session(sess):
                return None
            sess.setdefault("_lock", threading.Lock())
            return sess

    def expire_sessions(self, ttl: float, limit: Optional[int] = SWEEP_BATCH) -> int:
        """Forget up to ``limit`` (None: all) of the sessions unused for ``ttl`` seconds,
        oldest first, with their bytes; how many went. One in use now is left for later."""
        gone = 0
        with self.lock:
            cutoff = time.time() - ttl
            for _ in range(len(self._by_use) if limit is None else limit):
                oldest = next(iter(self._by_use.items()), None)
                if oldest is None or oldest[1] >= cutoff:
                    break
                sess = self.sessions.get(oldest[0])
                if sess is None:
                    del self._by_use[oldest[0]]
                elif self._forget_session(sess):
                    gone += 1
                else:   # (a request works on it: in use, so used now)
                    self._by_use.move_to_end(oldest[0])
                    self._by_use[oldest[0]] = time.time()
        return gone

    def limit_sessions(self, most: int, most_bytes: int, incoming: int = 0) -> int:
        """Forget the least recently used sessions until fewer than ``most`` are open and
        what they hold (:func:`held_bytes`) leaves room for ``incoming`` more within
        ``most_bytes`` (one a request holds now is passed over), to make room for a new
        one; how many went. A client opening sessions in a loop kept each, its metadata up
        to 1 MiB, in memory for the whole ``ttl``: 10,000 of them 10 GB (emulefts46); the
        one forgotten answers 404, as an expired one. A new session holding more than
        ``most_bytes`` alone is refused (413, as a body too large for metadata)."""
        if incoming > most_bytes:
            raise EmulatorApiError(
                413, "uploadTooLarge",
                f"Request body too large for metadata. (The emulator keeps at most {most_bytes} "
                f"bytes of upload sessions' metadata and content types; this one holds {incoming}: "
                "send less, or raise --max-upload-session-bytes.)")
        gone = 0
        with self.lock:
            if len(self.sessions) < most and self._held_total + incoming <= most_bytes:
                return 0
            for sid in list(self._by_use):   # (oldest first: each looked at once)
                if len(self.sessions) < most and self._held_total + incoming <= most_bytes:
                    break
                sess = self.sessions.get(sid)
                if sess is None:
                    del self._by_use[sid]
                elif self._forget_session(sess):
                    gone += 1
        return gone

    def _forget_session(self, sess: dict) -> bool:
        """Drop ``sess``, its row and its bytes; False if a request holds it now. Marked
        ``_expired`` under its lock: a request that found it before sees the mark once it
        takes the lock, and answers 404 instead of writing to it."""
        lock = sess.setdefault("_lock", threading.Lock())
        if not lock.acquire(blocking=False):
            return False
        try:
            sess["_expired"] = True
            self._drop("sessions", self.sessions, sess["id"])
            self._by_use.pop(sess["id"], None)
            self._held_total -= self._held.pop(sess["id"], 0)
            for path in (self.upload_path(sess["id"]), self.upload_path(sess["id"]) + ".final"):
                try:
                    os.unlink(path)
                except FileNotFoundError:
                    pass
        finally:
            lock.release()
        return True
