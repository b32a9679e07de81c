"""The emulator itself: :class:`Emulator` (lifecycle, request log, accounts, Python API)
and the threaded HTTP server that hands each connection to the request handler."""
from __future__ import annotations

import logging
import shutil
import socket
import tempfile
import threading
import time
from collections import deque
from http.server import ThreadingHTTPServer
from typing import Iterable, Optional

from drivestage.emulator.access import short_scope
from drivestage.emulator import revisions
from drivestage.emulator.accounting import PER_USER_UNITS_PER_MINUTE, ApiQuota
from drivestage.emulator.faults import Faults
from drivestage.emulator.handler import _Handler
from drivestage.emulator.log import RequestRecord, count_calls
from drivestage.emulator.render import render_about, render_drive, render_file
from drivestage.emulator.properties import DEFAULT_APP
from drivestage.emulator.seed import SeedingApi
from drivestage.emulator.signed import SignedLinks
from drivestage.emulator.store import EmulatorStore
from drivestage.emulator.store_sessions import SESSION_BYTES, SESSION_TTL

__all__ = ["Emulator", "RequestRecord", "_Handler"]

log = logging.getLogger(__name__)

REQUEST_LOG_LIMIT = 100_000     # newest records kept in emu.requests
REQUEST_LOG_BYTES = 128 << 20   # and at most this much of their text (Emulator.request_log_bytes)
IDLE_TIMEOUT = 120.0            # Emulator.idle_timeout
REFUSAL_DRAIN_BYTES = 1 << 30    # Emulator.refusal_drain_bytes
REFUSAL_DRAIN_SECONDS = 60.0    # Emulator.refusal_drain_seconds
MAX_CONNECTIONS = 256           # Emulator.max_connections


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, addr, handler, emu: "Emulator"):
        self.emu = emu
        self.open_sockets: set = set()
        self.handlers: set = set()  # the threads serving a connection now
        self.numbered: dict = {}    # a connection's number (RequestRecord.connection): its socket
        self.sockets_lock = threading.Lock()
        #: One per connection served at once (Emulator.max_connections): each is a thread.
        self.slots = threading.BoundedSemaphore(max(1, emu.max_connections))
        self.stopping = False
        super().__init__(addr, handler)

    def process_request(self, request, client_address):
        # ThreadingMixIn's own, with the thread named and kept in ``handlers``: its
        # server_close() waits for no daemon thread, and Emulator.stop() returned while one
        # still streamed a download, its blob files open and the store closed under it.
        # At the cap, accepting waits for a connection to end (the next ones queue in the
        # listen backlog, then in the clients' connects), as a loaded server's: each was a
        # thread, without a bound (emulefts45).
        while not self.slots.acquire(timeout=0.05):
            if self.stopping:
                self.shutdown_request(request)
                return
        with self.sockets_lock:
            self.open_sockets.add(request)
        t = threading.Thread(target=self._serve, args=(request, client_address),
                             name="drive-emulator-request", daemon=True)
        with self.sockets_lock:
            self.handlers.add(t)
        t.start()

    def _serve(self, request, client_address):
        try:
            self.process_request_thread(request, client_address)
        finally:
            with self.sockets_lock:
                self.handlers.discard(threading.current_thread())
            self.slots.release()

    def shutdown_request(self, request):
        with self.sockets_lock:
            self.open_sockets.discard(request)
            for number in [n for n, sock in self.numbered.items() if sock is request]:
                del self.numbered[number]
        super().shutdown_request(request)

    def handle_error(self, request, client_address):
        log.debug("connection error from %s", client_address, exc_info=True)


class Emulator(SeedingApi):
    """A local Drive API v2 server with a Python API for tests, demos and users.

    ``Emulator(...).start()`` (or ``with Emulator(...) as emu``) serves on
    ``emu.url``. Without ``data_dir`` the state lives in a temporary folder
    removed on :meth:`stop`. ``service_account=True`` makes every token behave
    like a service account (no storage in My Drive; shared drives work).
    ``api_quota=N`` enforces Drive's per-user quota of N units per minute (off by
    default; Drive's is 325,000); see :meth:`set_api_quota` for the rest.
    """

    #: Seconds a connection may sit idle between requests (or take to send a request's line
    #: and headers) before it is closed, as Google's front end closes idle ones (clients
    #: reconnect); None: never. A request being served has no such limit (attackemu45).
    idle_timeout: Optional[float] = IDLE_TIMEOUT
    #: The request log keeps the newest records whose paths, queries and headers take at most
    #: this many characters: a query can be a 1 MiB form (a long ``q`` sent as a POST), so
    #: 100,000 records alone bound nothing (attackemu45).
    request_log_bytes = REQUEST_LOG_BYTES
    #: Seconds a resumable upload session may go unused (opened, or last given bytes, that
    #: long ago) before it is forgotten with its bytes: Drive's is a week. A request for it
    #: then answers 404, as Drive's does, and clients start a new upload (emulefts45).
    upload_session_ttl: float = SESSION_TTL
    #: Resumable upload sessions kept at most (complete ones too, until they expire): opening
    #: one past it forgets the least recently used, whose next request then answers 404 as
    #: an expired one's does (clients start over). Each kept its metadata (up to 1 MiB) in
    #: memory for the whole :attr:`upload_session_ttl`, however many were opened (emulefts46).
    max_upload_sessions = 10_000
    #: Bytes of metadata (its JSON text) and content types the kept sessions hold at most,
    #: counted with :attr:`max_upload_sessions`: past it the least recently used are
    #: forgotten as well, and a session holding more alone is refused (413). 10,000
    #: sessions of 1 MiB metadata each held 10 GB of memory (emulefts46).
    max_upload_session_bytes = SESSION_BYTES
    #: A request refused before its body is read (a quota, bad metadata) is answered once its
    #: body is drained (clients such as httplib2 read no answer before they have sent the
    #: whole body), but at most this many bytes of it, for at most this many seconds; then
    #: the answer goes out and the connection is closed. An endless or trickling body held a
    #: thread for good (emulefts45). Far above the chunks clients send (googleapiclient's
    #: 100 MiB, drivestage's 64 MiB): past the bound googleapiclient, still sending, gets a
    #: broken pipe instead of the refusal.
    refusal_drain_bytes = REFUSAL_DRAIN_BYTES
    #: Connections served at once (each a thread; read at :meth:`start`): past it, new ones
    #: wait to be accepted until one ends (idle ones end after :attr:`idle_timeout`).
    max_connections = MAX_CONNECTIONS
    refusal_drain_seconds = REFUSAL_DRAIN_SECONDS
    #: Bytes an upload leaves free on the data folder's disk: one that would leave less is
    #: refused as Drive refuses one past the storage quota (403 storageQuotaExceeded), so an
    #: endless upload cannot fill the disk (emulefts46). None: 1 GiB or a tenth of the
    #: file system, whichever is less (:mod:`disk_room`); 0: no reserve.
    min_free_bytes: Optional[int] = None
    #: Whether writes that name an etag (``If-Match``: :mod:`preconditions`) are applied
    #: whatever it names, never refused (412): a proxy that drops the header, or a
    #: Drive-compatible server that does not honour it (lease48).
    ignores_if_match = False

    def __init__(self, data_dir: Optional[str] = None, quota_bytes: Optional[int] = None,
                 token: Optional[str] = None, host: str = "127.0.0.1", port: int = 0,
                 service_account: bool = False, api_quota: Optional[int] = None):
        self.data_dir = data_dir
        self.quota_bytes = quota_bytes
        self.token = token
        self.host = host
        self.port = port
        self.faults = Faults()
        #: Where redirected downloads are served (``faults.redirect_media``).
        self.signed = SignedLinks()
        self.service_account = service_account
        self._sa_tokens: set[str] = set()
        self._scopes: dict[str, frozenset] = {}      # token -> its scopes (memory only, never on disk)
        self._apps: dict[str, str] = {}              # token -> its app (PRIVATE properties)
        #: Fields a ``files.list`` answer leaves out of its items where the request names no
        #: ``fields``: Drive v2 leaves out ``permissions`` there (PyDrive issue 159); whether
        #: it leaves out ``properties`` too is not documented, so a test can make it.
        self.list_leaves_out: set[str] = set()
        #: Whether ``files.patch`` / ``update`` replace the ``properties`` the caller sees
        #: with the ones the request gives, instead of merging them: the v2 reference does
        #: not say which Drive does (fidelity32), so a test can make it replace.
        self.patch_replaces_properties = False
        #: The status a ``files.update`` answers whose ``removeParents`` names a folder the
        #: item is not in (a retry after the answer to a removal that went through was
        #: lost): None, 200 with nothing changed. Drive's references do not say and no
        #: public report shows it (edges40), so a test can make it an error: 400
        #: ``badRequest``, 403 ``forbidden`` or 404 ``notFound`` ("File not found: <id>.").
        self.absent_parent_status: Optional[int] = None
        #: Whether ``properties.insert`` / ``delete`` set the file's ``modifiedDate`` to now,
        #: as a v2 metadata write does unless told otherwise (``files.patch``'s
        #: ``setModifiedDate``: "false is equivalent to modifiedDateBehavior=now", the v2
        #: reference; ``update``: "some fields might be changed automatically, such as
        #: modifiedDate"). The ``properties.insert`` reference says nothing of dates and the
        #: method takes no such parameter, so a test can make it leave the date alone
        #: (seen35: retention's first-seen mark must hold under both).
        self.property_writes_modify = True
        #: Whether a custom property's write (``properties.insert`` / ``delete``) on an item
        #: in My Drive is refused (403 ``storageQuotaExceeded``) while the account's storage
        #: is full (not a byte free of ``quota_bytes``). A property takes no storage, and no
        #: reference says Drive refuses its write then; Google's help says that at the
        #: storage limit no one can *edit* the files the account owns (view-only), which may
        #: or may not cover an API's metadata write (room41), so a test can make it refuse.
        self.full_refuses_property_writes = False
        #: Seconds added to the clock the ``Date`` header of every answer gives (the dates
        #: the emulator stamps stay this machine's): a Drive whose clock runs ahead of the
        #: client machine's (positive), or behind it, as one whose clock runs ahead sees it.
        #: (A proxy's clock; :attr:`clock_offset` moves Drive's whole clock.)
        self.date_offset = 0.0
        self._clock_offset = 0.0
        #: Whether answers carry a ``Date`` header: False, as behind a proxy that strips it
        #: (a client then knows no clock but its own: leaselefts43).
        self.send_date = True
        #: Whether JSON answers (and batch answers) are gzipped where the request asks as
        #: Google's APIs document it (``Accept-Encoding: gzip`` and ``gzip`` in the
        #: User-Agent, as googleapiclient sends both): Drive then sends them gzipped. Off by
        #: default, since the tests' proxies read the bodies they rewrite (fidelity33).
        self.gzip_answers = False
        #: The status a resumable upload that created its file answers once complete, on
        #: its last chunk and on every status query after it: Drive's upload guide says
        #: "200 OK or 201 Created" with the file (fidelity34); set 201 to get the other.
        self.upload_created_status = 200
        self.api_quota = ApiQuota()
        if api_quota is not None:
            self.api_quota.configure(api_quota)
        # Bounded so a long-running emulator does not grow without limit.
        self._requests: deque[RequestRecord] = deque()
        self._log_bytes = 0
        self._requests_lock = threading.Lock()
        self._connections = 0     # TCP connections accepted so far
        #: Requests being served now (a client that gave up on one does not end it).
        self._busy = 0
        self._idle = threading.Condition()
        #: (file id, path) of the bytes found removed by hand, each said once in the log.
        self.missing_content: set[tuple[str, str]] = set()
        self._tmp_dir: Optional[str] = None
        self._server: Optional[_Server] = None
        self._thread: Optional[threading.Thread] = None
        self.store: Optional[EmulatorStore] = None

    @property
    def clock_offset(self) -> float:
        """Seconds Drive's whole clock is off from this machine's: the ``Date`` of every
        answer (on top of :attr:`date_offset`) and every date the emulator stamps (an item's
        createdDate and modifiedDate, a share's, a revision's). Positive: as a client machine
        whose clock runs behind Google's sees Drive; negative: one whose clock runs ahead."""
        return self._clock_offset

    @clock_offset.setter
    def clock_offset(self, seconds: float) -> None:
        self._clock_offset = float(seconds)
        if self.store is not None:
            self.store.clock_offset = self._clock_offset

    def expire_download_links(self) -> None:
        """Make the signed links redirected downloads were given so far stale (answered 403):
        ``faults.redirect_media``."""
        self.signed.expire_all()

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> "Emulator":
        """Open the state and start serving in a background thread."""
        if self._server is not None:
            return self
        if self.data_dir is None:
            self._tmp_dir = tempfile.mkdtemp(prefix="drive-emulator-")
        self.store = EmulatorStore(self.data_dir or self._tmp_dir, self.quota_bytes)
        revisions.recover(self.store)   # (what a SIGKILL left half replaced)
        # Sessions that aged out while it was stopped, all at once (once, not per request).
        self.store.expire_sessions(self.upload_session_ttl, limit=None)
        self.store.observer = self.faults.note_change
        self.store.clock_offset = self._clock_offset
        self.faults.serving()
        try:
            self._server = _Server((self.host, self.port), _Handler, self)
        except BaseException:
            self.store.close()   # (frees the data dir for a retry on another port)
            raise
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="drive-emulator", daemon=True)
        self._thread.start()
        log.info("Drive API emulator at %s (data in %s)", self.url, self.store.data_dir)
        return self

    #: Seconds :meth:`stop` waits for the requests still being served before it closes the
    #: state (a handler still running then finds it closed and leaves nothing half done).
    stop_wait = 10.0

    def stop(self) -> None:
        """Stop serving, close open connections and the state (keeps ``data_dir``)."""
        if self._server is None:
            return
        self.faults.release_holds()  # a handler held at a byte would wait out its timeout
        self._server.stopping = True   # (an accept held at the connection cap gives up)
        _shutdown_now(self._server)
        self._server.server_close()
        with self._server.sockets_lock:
            for sock in list(self._server.open_sockets):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        self._thread.join(timeout=5)
        # Every connection is shut: their threads end at their next read or write (a
        # throttled one, after its pause). Waited for, so that nothing reads the store
        # closed next, or holds a file of it open, once stop() has returned.
        deadline = time.monotonic() + self.stop_wait
        with self._server.sockets_lock:
            handlers = list(self._server.handlers)
        for t in handlers:
            t.join(max(0.0, deadline - time.monotonic()))
        self._server = None
        self.store.close()
        if self._tmp_dir:
            shutil.rmtree(self._tmp_dir, ignore_errors=True)
            self._tmp_dir = None

    def __enter__(self) -> "Emulator":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """``http://HOST:PORT/`` (the rootUrl clients are pointed at)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    # ------------------------------------------------------------------ request log
    def _record(self, rec: RequestRecord) -> None:
        size = rec.text_size()
        with self._requests_lock:
            self._requests.append(rec)
            self._log_bytes += size
            while len(self._requests) > 1 and (len(self._requests) > REQUEST_LOG_LIMIT
                                               or self._log_bytes > self.request_log_bytes):
                self._log_bytes -= self._requests.popleft().text_size()

    @property
    def requests(self) -> list[RequestRecord]:
        """A copy of the request log (oldest first)."""
        with self._requests_lock:
            return list(self._requests)

    def _serving(self, delta: int) -> None:
        with self._idle:
            self._busy += delta
            if not self._busy:
                self._idle.notify_all()

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until no request is being served, a request whose client gave up on it (a
        Ctrl-C while it waited for the answer) included: what it changes on the store is
        then done, as on Drive some time after. False if ``timeout`` seconds pass first."""
        with self._idle:
            return self._idle.wait_for(lambda: self._busy == 0, timeout)

    def _accepted(self, sock: Optional[socket.socket] = None) -> int:
        """Count a new TCP connection; its number (1, 2, ...: ``RequestRecord.connection``)."""
        with self._requests_lock:
            self._connections += 1
            number = self._connections
        if sock is not None and self._server is not None:
            with self._server.sockets_lock:
                self._server.numbered[number] = sock
        return number

    def hung_up(self, connection: int) -> bool:
        """Whether the client closed its end of the connection numbered ``connection``
        (``RequestRecord.connection``) while the emulator still holds it open: a request
        whose answer a fault holds, its client gone (a Ctrl-C, a thread given up on)."""
        if self._server is None:
            return False
        with self._server.sockets_lock:
            sock = self._server.numbered.get(connection)
        if sock is None:   # (closed here: after its client hung up on a held answer?)
            with self._requests_lock:
                return any(r.connection == connection and r.error == "client gone"
                           for r in self._requests)
        try:   # (a peek: the handler, waiting out the fault, reads the request's rest later)
            return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
        except (BlockingIOError, InterruptedError):
            return False   # (open, nothing sent)
        except OSError:
            return True    # (reset by the client)

    def clear_requests(self) -> None:
        with self._requests_lock:
            self._requests.clear()
            self._log_bytes = 0

    # ------------------------------------------------------------------ accounts
    def set_service_account(self, enabled: bool = True, token: Optional[str] = None) -> None:
        """Make all tokens (or just ``token``) behave like a service account."""
        if token is None:
            self.service_account = enabled
        elif enabled:
            self._sa_tokens.add(token)
        else:
            self._sa_tokens.discard(token)

    def is_service_account(self, token: Optional[str]) -> bool:
        return self.service_account or (token is not None and token in self._sa_tokens)

    def set_token_scopes(self, token: str, scopes: Optional[Iterable[str]]) -> None:
        """Give ``token`` these OAuth scopes (full URLs or short names such as ``drive.file``);
        None restores the default, the full ``drive`` scope. A token without any Drive scope
        gets 403 insufficientPermissions with ``WWW-Authenticate: ... insufficient_scope``;
        ``drive.readonly`` may not write; ``drive.file`` sees only what it created."""
        if scopes is None:
            self._scopes.pop(token, None)
        else:
            self._scopes[token] = frozenset(short_scope(s) for s in scopes)

    def token_scopes(self, token: Optional[str]) -> Optional[frozenset]:
        return self._scopes.get(token) if token is not None else None

    def set_token_app(self, token: str, app: Optional[str]) -> None:
        """Make ``token`` another app's (OAuth client's): it neither sees nor changes the
        PRIVATE properties other apps set (:mod:`drivestage.emulator.properties`). None: the
        default app, the one every token and the Python API are."""
        if app is None:
            self._apps.pop(token, None)
        else:
            self._apps[token] = app

    def token_app(self, token: Optional[str]) -> str:
        return self._apps.get(token or "", DEFAULT_APP)

    # ------------------------------------------------------------------ API accounting
    def set_api_quota(self, units_per_minute: Optional[int] = PER_USER_UNITS_PER_MINUTE, *,
                      costs: Optional[dict] = None, status: int = 403,
                      requests_per_day: Optional[int] = None,
                      upload_bytes_per_day: Optional[int] = None,
                      download_bytes_per_day: Optional[int] = None,
                      project_units_per_minute: Optional[int] = None) -> None:
        """Enforce Drive's per-user limits: ``units_per_minute`` quota units per token (403
        userRateLimitExceeded, or 429 rateLimitExceeded with ``status=429``), the
        project's over every token (``project_units_per_minute``, Drive's is 1,000,000: 403
        rateLimitExceeded "Rate Limit Exceeded"), an optional
        ``requests_per_day`` (403 dailyLimitExceeded), an upload cap per day (Drive's is
        750 GB: 403 userRateLimitExceeded "User rate limit exceeded.") and a download cap per
        day (Drive's is about 10 TB: every download then 403 downloadQuotaExceeded, the
        per-file quota's body). ``costs`` overrides units per call kind.
        ``set_api_quota(None)`` turns the per-minute limit off."""
        self.api_quota.configure(units_per_minute, costs=costs, status=status,
                                 requests_per_day=requests_per_day,
                                 upload_bytes_per_day=upload_bytes_per_day,
                                 download_bytes_per_day=download_bytes_per_day,
                                 project_units_per_minute=project_units_per_minute)

    def api_calls(self, kind: Optional[str] = None):
        """API calls in the request log by kind (``files.list``, ``files.get``,
        ``media.download``, ``media.upload``, ...) as a Counter, or the count of one kind."""
        return count_calls(self.requests, kind)

    def quota_units(self) -> int:
        """Quota units Drive would have charged for the calls in the request log."""
        return sum(r.units for r in self.requests)

    def about(self, base: Optional[str] = None) -> dict:
        """The about resource (quota numbers as strings, like Drive)."""
        return render_about(self, base)

    def render(self, rec: dict, base: Optional[str] = None) -> dict:
        """A record as a Drive v2 File resource (as its owner sees it)."""
        return render_file(self, rec, base)

    def _render_drive(self, d: dict) -> dict:
        return render_drive(d)


def _shutdown_now(server: ThreadingHTTPServer) -> None:
    """``server.shutdown()`` without waiting out ``serve_forever``'s poll: a connection made
    once the request is set wakes its select at once (a stop per test, thousands a suite)."""
    asked = threading.Thread(target=server.shutdown, name="drive-emulator-stop", daemon=True)
    asked.start()
    try:
        socket.create_connection(server.server_address[:2], timeout=1).close()
    except OSError:  # not listening any more: the loop has ended already
        pass
    asked.join()

