"""Bounds on a listing's pages: a server that repeats a page token, or never stops sending new
ones, must not keep a listing going forever."""
from __future__ import annotations

import logging
from typing import Any, Callable, Optional

from drivestage.errors import RemoteError

log = logging.getLogger(__name__)

#: A page of a listing (None: there was none), as PyDrive2 gives it.
Page = Optional[list[Any]]

#: Pages of one listing before it is given up: 1,000 pages of 1,000 items is twice what one
#: Drive folder can hold (500,000 children); a server that keeps sending new page tokens
#: beyond that is looping.
MAX_PAGES = 1000
#: Times one listing starts over after Drive rejected its page token (see :func:`all_pages`).
MAX_RESTARTS = 3


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
    one page when ``maxResults`` is set. Bounded by :func:`check_token` and :data:`MAX_PAGES`.

    Drive rejects a page token that went stale during a long listing (400 ``invalid``), and
    its reference says to discard it and start again from the first page: the listing starts
    over, at most :data:`MAX_RESTARTS` times (an item listed twice is one item to callers)."""
    def page() -> Page:
        try:
            return list(next(listing))
        except StopIteration:
            return None

    for restart in range(MAX_RESTARTS + 1):
        items: list[dict[str, Any]] = []
        seen: set[str] = set()
        try:
            for _ in range(MAX_PAGES):
                got = call(f"list {where}", page)
                if got is None:
                    return items
                items.extend(dict(f) for f in got)
                token = listing.get("pageToken")
                if not token:  # none, or empty (proto3's omitted string: AIP-158): the end
                    return items
                check_token(token, seen, where)
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
