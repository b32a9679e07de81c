"""Bounds on a listing's pages: a server that repeats a page token, or never stops sending new
ones, must not keep a listing going forever."""
from __future__ import annotations

from typing import Any, Callable, Optional

from drivestage.errors import RemoteError

#: A page of a listing (None: there was none), as PyDrive2 gives it.
Page = Optional[list[Any]]

#: Pages of one listing before it is given up: 1,000 pages of 1,000 items is twice what one
#: Drive folder can hold (500,000 children); a server that keeps sending new page tokens
#: beyond that is looping.
MAX_PAGES = 1000


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
    one page when ``maxResults`` is set. Bounded by :func:`check_token` and :data:`MAX_PAGES`."""
    def page() -> Page:
        try:
            return list(next(listing))
        except StopIteration:
            return None

    items: list[dict[str, Any]] = []
    seen: set[str] = set()
    for _ in range(MAX_PAGES):
        got = call(f"list {where}", page)
        if got is None:
            return items
        items.extend(dict(f) for f in got)
        token = listing.get("pageToken")
        if token is None:
            return items
        check_token(token, seen, where)
    raise too_many(where)
