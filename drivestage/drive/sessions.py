"""What an upload session's server says besides Drive's error answers (those are
:mod:`.answers`'): where a session lives - its origin, which must be the upload URL's (a
session address elsewhere would be sent the file and the token) - how many bytes a "308
Resume Incomplete" says were kept, and a JSON body read leniently.
"""
from __future__ import annotations

import json
import re
from typing import Any, Mapping, Optional
from urllib.parse import urlsplit

from drivestage.errors import MalformedAnswerError, RemoteError

#: A "308 Resume Incomplete" answer's Range: the bytes the server kept.
_KEPT = re.compile(r"bytes=(\d+)-(\d+)")


def same_origin(uri: str, other: str) -> bool:
    """Whether ``uri`` and ``other`` are on one origin (scheme, host and port; a default port
    written out or not). A malformed address is on no origin, nor one with a user name
    (Drive never gives one, and httplib2 would look up ``user@host``: never reached)."""
    def origin(url: str) -> Optional[tuple[str, str, int]]:
        try:  # urlsplit raises on a bad bracketed host ("http://[drive]/"), .port on a bad port
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            return None
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https") or not parts.hostname or "@" in parts.netloc:
            return None
        return scheme, parts.hostname, port or (443 if scheme == "https" else 80)

    mine = origin(uri)
    return mine is not None and mine == origin(other)


def origin_of(url: str) -> str:
    """``url``'s scheme and host (and port), without a user name or password."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"  # no user:password


def shown_origin(url: str) -> str:
    """Where ``url`` points, for a message: its origin, or the start of it, quoted, when it
    has none (not an http(s) address, or malformed)."""
    try:
        parts = urlsplit(url)
        parts.port
    except ValueError:
        return repr(url[:80])
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return repr(url[:80])
    return origin_of(url)


def kept(resp: Any, where: str) -> Optional[int]:
    """How many bytes a "308 Resume Incomplete" answer says the server kept (None: it names
    no Range, so none). One that is no byte range is a MalformedAnswerError, not a
    ValueError out of googleapiclient's ``int()``."""
    rng = resp.get("range")
    if rng is None:
        return None
    found = _KEPT.fullmatch(str(rng).strip())
    if found is None:
        raise MalformedAnswerError(
            f"uploading {where}: the server answered 'resume incomplete' with Range "
            f"{str(rng)[:80]!r}, which is no byte range; stopped. Drive never answers that: "
            "check --api-root / DRIVESTAGE_API_ROOT and any proxy between you and Drive")
    return int(found.group(2)) + 1


class CheckedHttp:
    """A connection whose "308 Resume Incomplete" answers have a well-formed Range (or
    none) before googleapiclient parses it (see :func:`kept`)."""

    def __init__(self, http: Any, where: str):
        self._http, self._where = http, where

    def request(self, *args: Any, **kwargs: Any) -> tuple[Any, bytes]:
        resp, content = self._http.request(*args, **kwargs)
        if resp.status == 308:
            kept(resp, self._where)
        return resp, content

    def __getattr__(self, name: str) -> Any:
        return getattr(self._http, name)


def json_body(content: Any) -> dict[str, Any]:
    """An answer's JSON object; ``{}`` for anything else (an empty or broken body)."""
    if isinstance(content, (bytes, bytearray)):
        content = content.decode("utf-8", "replace")
    try:
        data = json.loads(content) if content else {}
    except (ValueError, RecursionError):   # (nested deep: was a traceback, mount52)
        return {}
    return data if isinstance(data, dict) else {}


def file_resource(body: Any, said: str, made: str = "the file Drive made") -> dict[str, Any]:
    """The File resource a create or an upload's last chunk was answered with
    (googleapiclient hands over the raw text of an answer that is not JSON: a proxy's page);
    anything but an object is one line (``said`` + what came + ``made``), not a ValueError
    out of ``dict()``."""
    if isinstance(body, Mapping):
        return dict(body)
    raise MalformedAnswerError(f"{said} {printable_excerpt(body)}, not {made}; is --api-root / "
                               "DRIVESTAGE_API_ROOT a Drive API?")


def printable_excerpt(body: Any) -> str:
    """A short, one-line excerpt of an answer's body for a message."""
    text = " ".join(re.sub(r"<[^>]*>?", " ", str(body)).split())  # a page's words
    return repr(text[:60] + ("..." if len(text) > 60 else ""))


def stalled(where: str, stalls: int, at: int, size: int) -> RemoteError:
    """The error of an upload stopped after ``stalls`` "resume incomplete" answers that kept
    little or nothing new, the server at byte ``at`` of ``size`` (all of it: it has the
    file but never completes the upload)."""
    if at >= size:
        return RemoteError(
            f"uploading {where}: Drive says it has all {size} bytes of it but never completes "
            f"the upload (answered 'resume incomplete' {stalls} times); stopped. Try the push "
            "again later")
    return RemoteError(
        f"uploading {where}: Drive kept little or none of the last {stalls} chunks (it "
        f"answers 'resume incomplete' at byte {at} of {size}); stopped. Try the push again "
        "later (it resumes)")
