"""Fault injection for the emulator: injected answers, dropped connections,
latency, bandwidth throttling, corrupted bytes, upload sessions answered on another
server, bodies held at a byte, listings that lag behind the store and random chaos.

Rules match a request by HTTP method and a regular expression searched in the
raw request target (path plus the still URL-encoded query string, so
``r"alt=media"`` or ``r"/upload/"`` work). The server asks
:meth:`Faults.plan` once per API request (never for ``/_emulator/``) and gets
back what to do. Everything is thread-safe and deterministic for a given
chaos seed and request order.
"""
from __future__ import annotations

import random
import re
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Optional

from drivestage.emulator.errors import DRIVE_ERRORS, error_envelope
from drivestage.emulator.split_or import SplitOr

CHAOS_KINDS = ("429", "500", "502", "503", "reset", "latency")

GOOGLE_502_HTML = (
    "<!DOCTYPE html>\n<html lang=en>\n  <meta charset=utf-8>\n"
    "  <title>Error 502 (Server Error)!!1</title>\n"
    "  <p><b>502.</b> <ins>That\u2019s an error.</ins>\n"
    "  <p>The server encountered a temporary error and could not complete your request."
    "<p>Please try again in 30 seconds.  <ins>That\u2019s all we know.</ins>\n"
)

_DEFAULT_REASONS = {
    400: ("badRequest", "Bad Request"),
    401: ("authError", "Invalid Credentials"),
    403: ("forbidden", "Forbidden"),
    404: ("notFound", "Not Found"),
    408: ("requestTimeout", "Request Timeout"),
    429: ("rateLimitExceeded", "Rate Limit Exceeded"),
    500: ("backendError", "Backend Error"),
    502: ("backendError", "Bad Gateway"),
    503: ("backendError", "Backend Error"),
    504: ("backendError", "Gateway Timeout"),
}


def default_reason(status: int) -> tuple[str, str]:
    """Drive's usual (reason, message) for an HTTP status."""
    return _DEFAULT_REASONS.get(status, ("unknown", f"HTTP {status}"))


def _answer_for(rule: "Rule") -> "Answer":
    """The answer a rule sends: Drive's own body and headers when the reason is one Drive
    documents (:data:`~drivestage.emulator.errors.DRIVE_ERRORS`), else the status's usual."""
    spec = DRIVE_ERRORS.get(rule.reason or "")
    headers = dict(rule.headers)
    if rule.retry_after is not None:
        headers["Retry-After"] = _fmt_retry_after(rule.retry_after)
    if spec is not None:
        status = rule.status or spec.status
        message = rule.message or spec.message
        return Answer(status, rule.reason, message, rule.body, rule.content_type, {**spec.headers, **headers},
                      domain=spec.domain, top_message=None if rule.message else spec.top_message,
                      extra=dict(spec.extra), location=spec.location, location_type=spec.location_type)
    status = rule.status or 503
    reason, message = default_reason(status)
    return Answer(status, rule.reason or reason, rule.message or message, rule.body, rule.content_type,
                  headers, domain="usageLimits" if (rule.reason or reason) == "rateLimitExceeded" else "global")


@dataclass
class Rule:
    """One active fault rule; ``times`` None means forever."""

    kind: str                       # inject | drop | latency
    method: Optional[str] = None
    path: Optional[str] = None
    times: Optional[int] = 1
    status: int = 0
    reason: Optional[str] = None
    message: Optional[str] = None
    body: Optional[bytes] = None
    content_type: Optional[str] = None
    retry_after: Optional[float] = None
    headers: dict = field(default_factory=dict)
    after_bytes: int = 0
    direction: str = "response"
    seconds: float = 0.0
    hits: int = 0

    def matches(self, method: str, target: str) -> bool:
        if self.method and self.method.upper() != method.upper():
            return False
        return not self.path or re.search(self.path, target) is not None


@dataclass
class Answer:
    """A canned response the server sends instead of handling the request."""

    status: int
    reason: str
    message: str
    body: Optional[bytes] = None          # raw body; None: Google's JSON envelope
    content_type: Optional[str] = None
    headers: dict = field(default_factory=dict)
    domain: str = "global"
    top_message: Optional[str] = None
    extra: dict = field(default_factory=dict)
    location: Optional[str] = None
    location_type: Optional[str] = None

    def envelope(self) -> dict:
        """Google's JSON error body for this answer."""
        return error_envelope(self.status, self.reason, self.message, domain=self.domain,
                              location=self.location, location_type=self.location_type,
                              top_message=self.top_message, extra=self.extra)


@dataclass
class Plan:
    """What the server must do to one request."""

    latency: float = 0.0
    answer: Optional[Answer] = None
    reset: bool = False                    # reset the connection before answering
    drop_request_after: Optional[int] = None
    drop_response_after: Optional[int] = None


class Faults:
    """The fault rules of one emulator (``emu.faults``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[Rule] = []
        self._corrupt: dict[str, Optional[int]] = {}     # file id -> times left (None: forever)
        self._corrupt_uploads = 0
        self._relocated: Optional[tuple[str, Optional[int]]] = None  # origin, times left
        #: alt=media downloads answered with a redirect: status, origin (None: this server's),
        #: times left (None: every one)
        self._media_redirect: Optional[tuple[int, Optional[str], Optional[int]]] = None
        self._ranges_ignored = 0          # answers left that ignore Range (-1: every one)
        self._page_size: Optional[int] = None   # files.list items per page at most (None: as asked)
        self._tokens_rejected = 0         # page tokens left to reject (-1: every one)
        self._empty_pages = 0             # files.list pages left to answer with no items
        self._empty_query: Optional[str] = None  # only in listings whose q this finds
        self._empty_served = 0            # empty pages answered so far (their tokens differ)
        self._keep_less: Optional[tuple[int, Optional[int]]] = None  # bytes, chunks left
        self._holds: list[Hold] = []
        # Set while the server stops: an answer waiting out its latency goes on at once
        # (a test's 60 s latency held Emulator.stop() for its 10 s join, every time).
        self._stopping = threading.Event()
        self._shared = Bucket()          # the limit all connections share
        self._per_connection: Optional[float] = None
        self._chaos: Optional[tuple[float, random.Random, tuple[str, ...]]] = None
        self._lag: Optional[ListingLag] = None
        #: file id -> [what files.list shows of it (None: nothing), answers left]
        self._lagging: dict[str, list] = {}
        #: files.list answers of an OR of parents that leave some parents out (split_or.py)
        self.split_or = SplitOr()

    # ------------------------------------------------------------- public API
    def inject(self, method: Optional[str] = None, path: Optional[str] = None, status: Optional[int] = None,
               reason: Optional[str] = None, body: Optional[str | bytes] = None,
               retry_after: Optional[float] = None, headers: Optional[dict] = None,
               times: Optional[int] = 1, *, message: Optional[str] = None,
               content_type: Optional[str] = None) -> Rule:
        """Answer the next ``times`` matching requests with ``status``.

        Without ``body`` the answer is Google's JSON error envelope with
        ``reason`` and ``message``; with ``body`` it is sent raw (e.g. the HTML
        page of a 502 from Google's front end) as ``content_type``. A ``reason``
        Drive documents (``cannotDownloadAbusiveFile``, ``insufficientPermissions``,
        ...) brings Drive's status, message, domain and headers; ``status`` alone
        brings that status's usual reason; neither: 503 ``backendError``.
        """
        if isinstance(body, str):
            body = body.encode("utf-8")
        if status is None:
            spec = DRIVE_ERRORS.get(reason or "")
            status = spec.status if spec is not None else 503
        return self._add(Rule("inject", method, path, times, status=int(status), reason=reason,
                              message=message, body=body, content_type=content_type,
                              retry_after=retry_after, headers=dict(headers or {})))

    def drop(self, method: Optional[str] = None, path: Optional[str] = None, after_bytes: int = 0,
             direction: str = "response", times: Optional[int] = 1) -> Rule:
        """Reset the connection after ``after_bytes`` of the request or response body."""
        if direction not in ("request", "response"):
            raise ValueError(f"direction must be 'request' or 'response', got {direction!r}")
        return self._add(Rule("drop", method, path, times, after_bytes=int(after_bytes),
                              direction=direction))

    def latency(self, seconds: float, method: Optional[str] = None, path: Optional[str] = None,
                times: Optional[int] = None) -> Rule:
        """Delay matching requests by ``seconds`` before they are handled."""
        return self._add(Rule("latency", method, path, times, seconds=float(seconds)))

    def throttle(self, bytes_per_second: Optional[float] = None, *,
                 per_connection: Optional[float] = None) -> None:
        """Limit the bandwidth of request and response bodies (None: unlimited).

        ``bytes_per_second`` is shared by all connections; ``per_connection`` limits each
        connection on its own, as Drive does, so parallel ranged streams add up."""
        with self._lock:
            self._shared.reset(bytes_per_second)
            self._per_connection = float(per_connection) if per_connection else None

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

    def short_pages(self, size: Optional[int]) -> None:
        """Answer every files.list page with at most ``size`` items (None: as many as asked),
        a nextPageToken still following: Drive's reference says "Partial or empty result
        pages are possible even before the end of the files list has been reached"."""
        with self._lock:
            self._page_size = None if size is None else max(1, int(size))

    def empty_pages(self, times: int = 1, query: Optional[str] = None) -> None:
        """Answer the next ``times`` files.list pages that have items left with none, and a
        nextPageToken (a new one each time) that goes on from the same place: the v2
        reference's "Partial or empty result pages are possible even before the end of the
        files list has been reached" (``maxResults``); a client that stops at an empty page
        misses every item after it. ``query``: only listings whose ``q`` this regular
        expression finds (a folder's id: its listing)."""
        if query:
            re.compile(query)
        with self._lock:
            self._empty_pages = max(0, int(times))
            self._empty_query = query or None

    def drop_or_parents(self, times: Optional[int] = 1, keep: Optional[int] = 0,
                        after: int = 0) -> None:
        """Answer the next ``times`` files.list requests (None: every one) whose ``q`` names
        two parents or more (``('A' in parents) or ('B' in parents)``) with the items of the
        ``keep``-th parent named only (None: of none), every other named parent's left out,
        no error and ``incompleteSearch`` false: Drive's known failure of such queries
        (:mod:`drivestage.emulator.split_or` names the reports); the first ``after`` such
        requests (a listing's first pages) are answered whole."""
        self.split_or.set(times, keep, after)

    def expire_page_tokens(self, times: Optional[int] = 1) -> None:
        """Reject the page token of the next ``times`` files.list requests that carry one
        (None: every one) as Drive rejects a stale token: 400 ``invalid``, location
        ``pageToken``; its reference says to restart the listing from the first page."""
        with self._lock:
            self._tokens_rejected = -1 if times is None else max(0, int(times))

    def lag_listing(self, created: int = 0, updated: int = 0, deleted: int = 0,
                    titles: Optional[str] = None) -> None:
        """Make ``files.list`` (listings and searches by name) eventually consistent, as
        Drive's is, counted in answers instead of seconds: from now on an item created is
        left out of the next ``created`` list answers that would hold it; one whose metadata
        or content changed shows as it was before in the next ``updated``; one deleted or
        trashed is still listed, as it was, in the next ``deleted``. ``titles``: only items
        whose title this regular expression finds lag. files.get stays current (Drive's
        reads by id are). All zero: listings are current again (what already lags keeps
        its count)."""
        if titles:
            re.compile(titles)
        with self._lock:
            counts = (max(0, int(created)), max(0, int(updated)), max(0, int(deleted)))
            self._lag = ListingLag(*counts, titles) if any(counts) else None

    def note_change(self, old: Optional[dict], new: Optional[dict]) -> None:
        """The store changed one file record (``old`` None: created; ``new`` None: deleted):
        what a lagging listing (:meth:`lag_listing`) shows of it for a while."""
        with self._lock:
            lag = self._lag
            rec = new if new is not None else old
            if lag is None or rec is None or (lag.titles and not re.search(lag.titles, rec["title"])):
                return
            fid = rec["id"]
            before = self._lagging.get(fid)
            shown = before[0] if before is not None else old   # what the listing last showed
            if old is None:
                count = lag.created
            elif new is None or (new.get("trashed") and not old.get("trashed")):
                count = lag.deleted
            else:
                count = lag.updated
            if count > 0:
                self._lagging[fid] = [shown, max(count, before[1] if before else 0)]

    def lagged(self, found: list, admit: Callable[[dict], Any]) -> list:
        """A files.list answer ``found`` ((record, access) pairs) as a lagging listing gives
        it; ``admit(record)``: the access that lets the query find a record, else None."""
        with self._lock:
            if not self._lagging:
                return found
            out, touched = [], set()
            listed = {rec["id"] for rec, _ in found}
            for rec, acc in found:
                entry = self._lagging.get(rec["id"])
                if entry is None:
                    out.append((rec, acc))
                    continue
                touched.add(rec["id"])
                if entry[0] is not None and (was := admit(entry[0])) is not None:
                    out.append((entry[0], was))
            for fid, (shown, _) in self._lagging.items():
                if fid not in listed and shown is not None and (was := admit(shown)) is not None:
                    out.append((shown, was))
                    touched.add(fid)
            for fid in touched:
                entry = self._lagging[fid]
                entry[1] -= 1
                if entry[1] <= 0:
                    del self._lagging[fid]
            return out

    def chaos(self, rate: float = 0.05, seed: int = 0, kinds: tuple[str, ...] = CHAOS_KINDS) -> None:
        """Fail a random ``rate`` fraction of API requests with one of ``kinds``."""
        bad = [k for k in kinds if k not in CHAOS_KINDS]
        if bad:
            raise ValueError(f"unknown chaos kinds {bad}; choose from {list(CHAOS_KINDS)}")
        with self._lock:
            self._chaos = (float(rate), random.Random(seed), tuple(kinds)) if rate > 0 else None

    def clear(self) -> None:
        """Remove every fault, throttle, corruption and chaos."""
        with self._lock:
            self._rules.clear()
            self._corrupt.clear()
            self._corrupt_uploads = 0
            self._relocated = None
            self._media_redirect = None
            self._ranges_ignored = 0
            self._page_size = None
            self._tokens_rejected = 0
            self._empty_pages = 0
            self._empty_query = None
            self._keep_less = None
            holds, self._holds = self._holds, []
            self._shared.reset(None)
            self._per_connection = None
            self._chaos = None
            self._lag = None
            self._lagging.clear()
        self.split_or.clear()
        for hold in holds:
            hold.release()

    def release_holds(self) -> None:
        """Let every held answer go on (the server stops: none may wait out its timeout),
        and every answer waiting out its latency."""
        self._stopping.set()
        with self._lock:
            holds = list(self._holds)
        for hold in holds:
            hold.release()

    def serving(self) -> None:
        """The server (re)starts: latencies are waited out again."""
        self._stopping.clear()

    def wait_latency(self, seconds: float) -> None:
        """In the server: wait ``seconds`` before an answer, or less when the server stops."""
        self._stopping.wait(seconds)

    def describe(self) -> dict:
        """The active faults as plain data (for ``GET /_emulator/faults``)."""
        with self._lock:
            return {
                "rules": [dict(asdict(r), body=None if r.body is None else r.body.decode("utf-8", "replace"))
                          for r in self._rules],
                "corrupt": dict(self._corrupt),
                "corrupt_uploads": self._corrupt_uploads,
                "relocate_sessions": None if self._relocated is None else
                {"origin": self._relocated[0], "times": self._relocated[1]},
                "redirect_media": None if self._media_redirect is None else
                {"status": self._media_redirect[0], "origin": self._media_redirect[1],
                 "times": self._media_redirect[2]},
                "ignore_range": None if self._ranges_ignored < 0 else self._ranges_ignored,
                "short_pages": self._page_size,
                "keep_less": None if self._keep_less is None else
                {"nbytes": self._keep_less[0], "times": self._keep_less[1]},
                "expire_page_tokens": None if self._tokens_rejected < 0 else self._tokens_rejected,
                "empty_pages": {"times": self._empty_pages, "query": self._empty_query},
                "holds": [{"file_id": h.file_id, "offset": h.offset, "reached": h.reached.is_set(),
                           "released": h.released} for h in self._holds],
                "throttle": self._shared.rate,
                "throttle_per_connection": self._per_connection,
                "chaos": None if self._chaos is None else {"rate": self._chaos[0],
                                                           "kinds": list(self._chaos[2])},
                "lag_listing": None if self._lag is None else asdict(self._lag),
                "lagging": {fid: left for fid, (_, left) in self._lagging.items()},
                "drop_or_parents": self.split_or.describe(),
            }

    def apply(self, spec: dict) -> None:
        """Add a fault from a JSON object ``{"kind": ..., **arguments}`` (the HTTP control API)."""
        spec = dict(spec)
        kind = spec.pop("kind", None)
        actions = {"inject": self.inject, "drop": self.drop, "latency": self.latency,
                   "throttle": self.throttle, "corrupt": self.corrupt,
                   "corrupt_upload": self.corrupt_upload,
                   "relocate_sessions": self.relocate_sessions,
                   "redirect_media": self.redirect_media,
                   "ignore_range": self.ignore_range, "chaos": self.chaos,
                   "short_pages": self.short_pages, "empty_pages": self.empty_pages,
                   "keep_less": self.keep_less,
                   "expire_page_tokens": self.expire_page_tokens,
                   "lag_listing": self.lag_listing, "drop_or_parents": self.drop_or_parents}
        if kind not in actions:
            raise ValueError(f"unknown fault kind {kind!r}; choose from {sorted(actions)}")
        if kind == "chaos" and "kinds" in spec:
            spec["kinds"] = tuple(spec["kinds"])
        actions[kind](**spec)

    # ------------------------------------------------------------- server side
    def _add(self, rule: Rule) -> Rule:
        if rule.path:
            re.compile(rule.path)
        with self._lock:
            self._rules.append(rule)
        return rule

    def _take(self, rule: Rule) -> None:
        rule.hits += 1
        if rule.times is not None:
            rule.times -= 1
            if rule.times <= 0:
                self._rules.remove(rule)

    def plan(self, method: str, target: str, *, call_in_batch: bool = False) -> Plan:
        """Decide the faults for one API request (consumes matching rules). A call inside a
        batch (``call_in_batch``) has no connection of its own: drop rules are left for the
        batch request, and a chaos reset comes as the backend error Drive answers a call
        with."""
        plan = Plan()
        with self._lock:
            for rule in list(self._rules):
                if not rule.matches(method, target) or (call_in_batch and rule.kind == "drop"):
                    continue
                if rule.kind == "latency":
                    plan.latency += rule.seconds
                    self._take(rule)
                elif rule.kind == "inject" and plan.answer is None:
                    plan.answer = _answer_for(rule)
                    self._take(rule)
                elif rule.kind == "drop":
                    if rule.direction == "request" and plan.drop_request_after is None:
                        plan.drop_request_after = rule.after_bytes
                        self._take(rule)
                    elif rule.direction == "response" and plan.drop_response_after is None:
                        plan.drop_response_after = rule.after_bytes
                        self._take(rule)
            if self._chaos and plan.answer is None:
                rate, rng, kinds = self._chaos
                if rng.random() < rate:
                    self._chaos_kind(plan, rng.choice(kinds), rng)
                    if plan.reset and call_in_batch:
                        plan.reset = False
                        plan.answer = Answer(503, "backendError", "Backend Error")
        return plan

    @staticmethod
    def _chaos_kind(plan: Plan, kind: str, rng: random.Random) -> None:
        if kind == "429":
            plan.answer = Answer(429, "rateLimitExceeded", "Rate Limit Exceeded", domain="usageLimits")
        elif kind == "500":
            plan.answer = Answer(500, "backendError", "Backend Error")
        elif kind == "502":
            plan.answer = Answer(502, "backendError", "Bad Gateway", GOOGLE_502_HTML.encode("utf-8"),
                                 "text/html; charset=UTF-8")
        elif kind == "503":
            plan.answer = Answer(503, "backendError", "Backend Error", headers={"Retry-After": "1"})
        elif kind == "reset":
            plan.reset = True
        else:
            plan.latency += 0.05 + 0.15 * rng.random()

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

    def page_size(self, asked: int) -> int:
        """How many items the files.list page now answered may hold (``asked``, or fewer
        under :meth:`short_pages`)."""
        with self._lock:
            return asked if self._page_size is None else min(asked, self._page_size)

    def take_empty_page(self, q: Optional[str]) -> Optional[int]:
        """The serial number of an empty page (:meth:`empty_pages`) the files.list page now
        answered (for the query ``q``) must be, once per count; None: it holds its items."""
        with self._lock:
            if self._empty_pages <= 0 or (
                    self._empty_query and not re.search(self._empty_query, q or "")):
                return None
            self._empty_pages -= 1
            self._empty_served += 1
            return self._empty_served

    def take_token_rejected(self) -> bool:
        """True (once per count) when the page token of the listing now answered must be
        rejected (:meth:`expire_page_tokens`)."""
        with self._lock:
            if self._tokens_rejected == 0:
                return False
            if self._tokens_rejected > 0:
                self._tokens_rejected -= 1
            return True

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

    @property
    def throttled(self) -> bool:
        return self._shared.rate is not None or self._per_connection is not None

    def pace(self, nbytes: int, connection: Optional["Bucket"] = None) -> None:
        """Sleep long enough that bodies keep to the shared limit and, given the connection's
        own bucket, to the per-connection one."""
        with self._lock:
            wait = self._shared.charge(nbytes)
            if connection is not None:
                connection.rate = self._per_connection
                wait = max(wait, connection.charge(nbytes))
        if wait > 0:
            # Woken when the server stops, as a latency is: a throttled megabyte's pause
            # (16 s at 64 KiB/s) held Emulator.stop() for its whole join.
            _pause(self._stopping, wait)


def _pause(stopping: threading.Event, seconds: float) -> None:
    """A throttle's pause: ``seconds``, or less when the server stops (``stopping``); one
    place, so that a test's virtual clock (tests/test_flakes34_throttle.py) takes it."""
    stopping.wait(seconds)


@dataclass
class ListingLag:
    """How many list answers lag behind a change (:meth:`Faults.lag_listing`)."""

    created: int
    updated: int
    deleted: int
    titles: Optional[str] = None


class Hold:
    """A body held at one byte (:meth:`Faults.hold`): ``reached`` is set once an answer
    has sent every byte before ``offset`` and waits; :meth:`release` lets it go on."""

    def __init__(self, file_id: str, offset: int, timeout: float):
        self.file_id, self.offset, self.timeout = file_id, offset, timeout
        self.reached = threading.Event()
        self._go = threading.Event()

    @property
    def released(self) -> bool:
        return self._go.is_set()

    def release(self) -> None:
        """Let every answer held here go on (and later ones pass)."""
        self._go.set()

    def wait(self) -> None:
        """In the server: say the offset is reached, then wait for the release."""
        self.reached.set()
        self._go.wait(self.timeout)


#: Seconds a sender behind its bucket's schedule may make up (a bucket's debt drained that
#: much longer ago counts as credit): a sender woken late from its wait (a loaded machine's
#: scheduler), or held by its client's reads, lost that time for good, and one connection
#: brought 9 MB/s of a 16 MB/s limit where two brought 16 (a stream count measured on it
#: added streams that only hid the lateness). A bucket idle for longer starts afresh.
CATCH_UP_S = 0.1


class Bucket:
    """A leaky bucket: debt drains at ``rate`` bytes per second; new bytes add to it. A
    sender a little late (:data:`CATCH_UP_S` at most) makes the time up: the rate holds."""

    def __init__(self, rate: Optional[float] = None):
        self.reset(rate)

    def reset(self, rate: Optional[float]) -> None:
        self.rate = float(rate) if rate else None
        self.time, self.debt = time.monotonic(), 0.0

    def charge(self, nbytes: int) -> float:
        """Add ``nbytes``; the seconds to wait until they fit the rate (0 when unlimited)."""
        if self.rate is None:
            return 0.0
        now = time.monotonic()
        debt = self.debt - (now - self.time) * self.rate   # < 0: drained that long ago
        idle = self.debt <= 0 or debt < -CATCH_UP_S * self.rate
        self.debt = (0.0 if idle else debt) + nbytes
        self.time = now
        return max(0.0, self.debt / self.rate)


def _fmt_retry_after(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)

