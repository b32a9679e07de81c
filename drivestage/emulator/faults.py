"""Fault injection for the emulator: injected answers, dropped connections,
latency, bandwidth throttling, corrupted bytes, upload sessions answered on another
server, bodies held at a byte, listings that lag behind the store and random chaos.

Rules match a request by HTTP method and a regular expression searched in the
raw request target (path plus the still URL-encoded query string, so
``r"alt=media"`` or ``r"/upload/"`` work). The server asks
:meth:`Faults.plan` once per API request (never for ``/_emulator/``) and gets
back what to do. Everything is thread-safe and deterministic for a given
chaos seed and request order. The faults on content and uploads are in
:mod:`~drivestage.emulator.media_faults`, those of ``files.list`` in
:mod:`~drivestage.emulator.listing_faults`, the bandwidth limit in
:mod:`~drivestage.emulator.throttle` (mixins of :class:`Faults`).
"""
from __future__ import annotations

import random
import re
import socket
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Optional

from drivestage.emulator.errors import DRIVE_ERRORS, error_envelope, request_file
from drivestage.emulator.listing_faults import ListingFaults, ListingLag
from drivestage.emulator.media_faults import HANG_UP_WATCH_S, Hold, MediaFaults, client_hung_up
from drivestage.emulator.split_or import SplitOr
from drivestage.emulator.throttle import Bucket, ThrottleFaults

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


def _answer_for(rule: "Rule", method: str = "GET", target: str = "") -> "Answer":
    """The answer a rule sends to ``method`` ``target``: Drive's own body and headers (its
    message naming the file) for a reason in :data:`DRIVE_ERRORS`, else the status's usual."""
    spec = DRIVE_ERRORS.get(rule.reason or "")
    headers = dict(rule.headers)
    if rule.retry_after is not None:
        headers["Retry-After"] = _fmt_retry_after(rule.retry_after)
    if spec is not None:
        status = rule.status or spec.status
        message = rule.message or spec.text(*request_file(method, target))
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


class Faults(MediaFaults, ListingFaults, ThrottleFaults):
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
        # Answers waiting out a latency now, and those whose client hung up meanwhile.
        self._hung = threading.Condition()
        self._waiting = self._hang_ups = 0
        # Set (and replaced) when the throttle changes or the server stops: a body paused
        # behind the old limit goes on at once (a test that lifts the throttle waited out a
        # 1 MiB chunk's 2 s pause at 512 KiB/s before the emulator settled).
        self._rethrottled = threading.Event()
        self._hurried = threading.Event()   # set (and replaced) by hurry() and the stop
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
            self._wake_paused()
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
            self._wake_paused()
            self._hurry()
        for hold in holds:
            hold.release()

    def hurry(self) -> None:
        """Let every answer waiting out its latency now go on at once (the rules stay: a
        later request waits out its latency again). For a test that has seen what a latency
        held a request for (a command stopped while it waited) and wants the server's part
        done before it goes on."""
        with self._lock:
            self._hurry()

    def _hurry(self) -> None:
        """(``_lock`` held) End the waits of answers under a latency now."""
        self._hurried.set()
        self._hurried = threading.Event()

    def serving(self) -> None:
        """The server (re)starts: latencies are waited out again."""
        self._stopping.clear()

    def wait_latency(self, seconds: float, conn: Optional[socket.socket] = None) -> bool:
        """In the server: wait ``seconds`` before an answer, or less when the server stops
        or a test hurries it (:meth:`hurry`): True; False once the client hung up ``conn``
        (the answer's connection) meanwhile, counted (:meth:`wait_hang_ups`)."""
        end = time.monotonic() + seconds
        with self._lock:
            woken = self._hurried
        with self._hung:
            self._waiting += 1
            self._hung.notify_all()
        gone = False
        try:
            # (the stop is set before it wakes the waits: checked after taking ``woken``)
            if not self._stopping.is_set():
                while not woken.wait(min(HANG_UP_WATCH_S, max(0.0, end - time.monotonic()))):
                    if time.monotonic() >= end:
                        break
                    if conn is not None and client_hung_up(conn):
                        gone = True
                        break
        finally:
            with self._hung:
                self._waiting -= 1
                self._hang_ups += gone
                self._hung.notify_all()
        return not gone

    def wait_latencies(self, until: Callable[[int], bool], timeout: float) -> tuple[bool, int]:
        """Wait until ``until(answers waiting out a latency now)`` (at most ``timeout``
        seconds): (whether it came, how many answers in all ended their wait early because
        their client hung up)."""
        with self._hung:
            came = self._hung.wait_for(lambda: until(self._waiting), timeout)
            return came, self._hang_ups

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
                    plan.answer = _answer_for(rule, method, target)
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


def _fmt_retry_after(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)

