"""Bounds on a listing's pages: a server that repeats a page token, or never stops sending new
ones, must not keep a listing going forever; nor one that answers every page slowly (each
page within the connection's timeout, a new token after each: 1,000 pages of two minutes
each are a day and a half), bounded in time as well (:class:`Clock`); and the listings of one
folder walk together (:mod:`drivestage.walk_clock`: a tree of many folders, each listed
slowly, took the bound once per folder level: fuse51)."""
from __future__ import annotations

import logging
import os
import time
from typing import Any, Callable, Optional

from drivestage import walk_clock
from drivestage.errors import RemoteError, UsageError

log = logging.getLogger(__name__)

#: A page of a listing (None: there was none), as PyDrive2 gives it.
Page = Optional[list[Any]]

#: Pages of one listing before it is given up: 1,000 pages of 1,000 items is twice what one
#: Drive folder can hold (500,000 children); a server that keeps sending new page tokens
#: beyond that is looping.
MAX_PAGES = 1000
#: Times one listing starts over after Drive rejected its page token (see :func:`all_pages`).
MAX_RESTARTS = 3
#: Seconds one listing may take, every page and restart of it together, before it is given
#: up: Drive answers a page of 1,000 items in about a second, so the largest folder Drive
#: holds (500 pages) lists in minutes; an hour is a server that answers too slowly to end.
#: ``DRIVESTAGE_LISTING_TIMEOUT`` sets it (seconds; for a very slow link, and for tests).
LISTING_TIMEOUT_S = 3600.0
TIMEOUT_ENV = "DRIVESTAGE_LISTING_TIMEOUT"
#: Pages of one folder walk, every listing of it together, before it is given up: a
#: hundred ImageNet-like trees (1,000 folders of 2 pages each) kept unzipped on Drive, a day
#: of listing at a second a page; a server that keeps listing new folders (each with a new
#: id, within :data:`drivestage.stage_walk.MAX_DEPTH`) is looping. The walk's time is bounded
#: by its progress (:func:`check_walk`), not by its size. ``DRIVESTAGE_WALK_PAGES`` sets it
#: (:func:`walk_pages`: for a larger tree, and for tests).
MAX_WALK_PAGES = 200_000
WALK_PAGES_ENV = "DRIVESTAGE_WALK_PAGES"
#: Seconds of listing one folder walk may take, every listing of it together (the clock's
#: :meth:`~drivestage.walk_clock.WalkClock.took`), before it is given up: an ImageNet-like
#: tree (1,000 folders of 2 pages at 1-2 s a page) lists in under an hour, so a day is
#: twenty-four of them, and a server that keeps answering, each page in time, with new
#: folders (stopped otherwise only by :data:`MAX_WALK_PAGES`: days at a second a page) is
#: looping (walk52b). ``DRIVESTAGE_WALK_TIMEOUT`` sets it (:func:`walk_timeout`).
WALK_TIMEOUT_S = 86_400.0
WALK_TIMEOUT_ENV = "DRIVESTAGE_WALK_TIMEOUT"


def _seconds(env: str, default: float, what: str) -> float:
    """``$env`` as seconds above 0 and below 1e9, or ``default`` where unset (a usage error,
    exit 2, for any other value: ``what`` says what it bounds)."""
    raw = os.environ.get(env, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not 0 < value < 1e9:   # (nan fails both)
        raise UsageError(f"{env}={raw!r} is not a number of seconds above 0 and below 1e9 "
                         f"({what}; {default:g} by default)")
    return value


def listing_timeout() -> float:
    """The seconds one listing may take: ``$DRIVESTAGE_LISTING_TIMEOUT`` or
    :data:`LISTING_TIMEOUT_S` (a usage error, exit 2, for a value that is no positive number)."""
    return _seconds(TIMEOUT_ENV, LISTING_TIMEOUT_S, "how long one listing may take")


def walk_timeout() -> float:
    """The seconds of listing one folder walk may take: ``$DRIVESTAGE_WALK_TIMEOUT`` or
    :data:`WALK_TIMEOUT_S` (a usage error, exit 2, for a value that is no positive number)."""
    return _seconds(WALK_TIMEOUT_ENV, WALK_TIMEOUT_S,
                    "how long the listings of one folder walk may take, all together")


def walk_pages() -> int:
    """The pages one folder walk may list: ``$DRIVESTAGE_WALK_PAGES`` or
    :data:`MAX_WALK_PAGES` (a usage error, exit 2, for a value that is no whole number above
    0)."""
    raw = os.environ.get(WALK_PAGES_ENV, "").strip()
    if not raw:
        return MAX_WALK_PAGES
    if not (raw.isascii() and raw.isdigit() and 0 < int(raw) < 10**9):
        raise UsageError(f"{WALK_PAGES_ENV}={raw!r} is not a whole number of pages above 0 and "
                         f"below 1e9 (how many pages one folder walk may list, all its listings "
                         f"together; {MAX_WALK_PAGES:,} by default)")
    return int(raw)


class Clock:
    """The time bound of one listing (:func:`listing_timeout`), started at its first page."""

    def __init__(self, where: str):
        self.where, self.limit = where, listing_timeout()
        self.began = time.monotonic()

    def check(self, pages: int) -> None:
        """Refuse to ask for another page once the listing has taken its time (``pages``:
        those it got): a server that answers each page slowly and never ends its listing."""
        took = time.monotonic() - self.began
        if took > self.limit:
            raise _over(self.where, pages, took, self.limit)


def check_walk(walk: Optional[walk_clock.WalkClock]) -> None:
    """Refuse to ask for another page once the folder walk this listing is part of (if any)
    went the time of one listing without a page answered by any of its listings
    (:meth:`~drivestage.walk_clock.WalkClock.waited`): the same line, naming the folder
    walked and the pages of all its listings; or once it got :func:`walk_pages`, or listed
    :func:`walk_timeout` in all. A walk whose listings each answer within the bound goes on up
    to those, however the tree's pages come."""
    if walk is None:
        return
    most = walk_pages()
    if walk.pages >= most:
        raise RemoteError(
            f"listing {walk.where}: more than {most:,} pages in the folders walked "
            f"({WALK_PAGES_ENV}; {MAX_WALK_PAGES:,} by default, a hundred times an "
            "ImageNet-like tree's); stopped: the server keeps listing new folders or pages. "
            "Try again later; for a tree that large, take a folder further down at a time, "
            f"or raise {WALK_PAGES_ENV}")
    waited, limit = walk.waited(), listing_timeout()
    if waited > limit:
        raise _over(walk.where, walk.pages, waited, limit)
    took, whole = walk.took(), walk_timeout()
    if took > whole:
        raise RemoteError(
            f"listing {walk.where}: the folders walked took {took:.2f} s of listing in "
            f"{walk.pages:,} pages, more than {whole:g} s ({WALK_TIMEOUT_ENV}; "
            f"{WALK_TIMEOUT_S:g} by default, a day); stopped: the server keeps listing new "
            "folders or pages. Try again later; for a tree that large, take a folder further "
            f"down at a time, or raise {WALK_TIMEOUT_ENV}")


def _over(where: str, pages: int, took: float, limit: float) -> RemoteError:
    return RemoteError(
        f"listing {where}: not done after {pages} pages and {took:.2f} s (a listing may "
        f"take {limit:g} s: {TIMEOUT_ENV}); stopped: the server answers its pages too "
        "slowly, or keeps sending new page tokens. Try again later; if it persists, the "
        "server (or a proxy) is broken")


def check_token(token: str, seen: set[str], where: str) -> None:
    """Refuse a ``nextPageToken`` this listing already followed: the server is looping."""
    if token in seen:
        raise RemoteError(f"listing {where}: Drive sent the same page token twice (after "
                          f"{len(seen) + 1} pages), so the listing would never end; stopped. "
                          "Try again later; if it persists, the server (or a proxy) is broken")
    seen.add(token)


def too_many(where: str) -> RemoteError:
    """The error for a listing that went on past :data:`MAX_PAGES`."""
    return RemoteError(f"listing {where}: more than {MAX_PAGES} pages, more than a Drive "
                       "folder can hold; stopped (the server keeps sending new page tokens). "
                       "Try again later")


def all_pages(call: Callable[[str, Callable[[], Page]], Page], listing: Any,
              where: str) -> list[dict[str, Any]]:
    """Every item of a PyDrive2 ``ListFile`` (``listing``), page by page, each page a
    ``call(what, fn)`` of its own (retried on its own): PyDrive2's ``GetList()`` stops after
    one page when ``maxResults`` is set. Bounded by :func:`check_token`, :data:`MAX_PAGES`
    and in time (:class:`Clock`; the folder walk's too, where this listing is one of a
    walk's: :func:`check_walk`).

    Drive rejects a page token that went stale during a long listing (400 ``invalid``), and
    its reference says to discard it and start again from the first page: the listing starts
    over, at most :data:`MAX_RESTARTS` times (an item listed twice is one item to callers)."""
    def page() -> Page:
        try:
            return list(next(listing))
        except StopIteration:
            return None

    walk = walk_clock.current()   # (and one for every listing of a folder walk: fuse51)
    if walk is None:
        return _pages(call, listing, where, page, None)
    with walk.listing():   # (its clock runs while this listing is under way: walk51)
        return _pages(call, listing, where, page, walk)


def _pages(call: Callable[[str, Callable[[], Page]], Page], listing: Any, where: str,
           page: Callable[[], Page], walk: Optional[walk_clock.WalkClock]
           ) -> list[dict[str, Any]]:
    """:func:`all_pages`' pages, ``walk``: the folder walk this listing is one of (if any)."""
    clock = Clock(where)   # (one bound for the restarts too: each starts a slow server over)
    for restart in range(MAX_RESTARTS + 1):
        items: list[dict[str, Any]] = []
        seen: set[str] = set()
        try:
            for pages in range(1, MAX_PAGES + 1):
                check_walk(walk)
                got = call(f"list {where}", page)
                if walk is not None:
                    walk.got_page()
                if got is None:
                    return items
                items.extend(dict(f) for f in got)
                token = listing.get("pageToken")
                if not token:  # none, or empty (proto3's omitted string: AIP-158): the end
                    return items
                check_token(token, seen, where)
                clock.check(pages)
            raise too_many(where)
        except RemoteError as exc:
            if not (seen and _token_rejected(exc)):
                raise
            if restart == MAX_RESTARTS:
                raise RemoteError(
                    f"listing {where}: Drive rejected its page token {restart + 1} times "
                    f"(HTTP {exc.status} {exc.reason}), each time after starting over from "
                    "the first page; stopped. Try again later; if it persists, the server (or "
                    "a proxy) is broken", status=exc.status, reason=exc.reason) from None
            log.info("listing %s: Drive rejected the page token after %d items (%s); "
                     "starting over from the first page", where, len(items), exc)
            listing.Reset()
    raise AssertionError("unreachable")  # pragma: no cover


def _token_rejected(exc: RemoteError) -> bool:
    """Drive's answer to a page token it no longer takes: 400 (``invalid``, ``badRequest``)."""
    return exc.status == 400
