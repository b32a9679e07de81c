"""What an answer for a file's bytes may not be, told before its body is read: bytes sent
compressed (:func:`check_encoding`), or a web page in their place (:func:`refuse_page_of`).
Split from :mod:`drivestage.drive.media` at its 500-line cap."""
from __future__ import annotations

from drivestage.drive.connections import is_page_type, refuse_page
from drivestage.drive.transport import Streamed
from drivestage.errors import MalformedAnswerError
from drivestage.store import RemoteEntry


def check_encoding(body: Streamed, where: str) -> None:
    """Refuse bytes sent encoded (http.client asks ``Accept-Encoding: identity``; a proxy that
    gzips anyway: other bytes, retried for minutes as a "short body": attackpull32)."""
    coding = body.headers.get("content-encoding", "").strip().lower()
    if any(c.strip() not in ("", "identity") for c in coding.split(",")):
        raise MalformedAnswerError(
            f"download {where}: the server sent its bytes compressed (Content-Encoding: "
            f"{''.join(c for c in coding[:40] if c.isprintable())}), though drivestage asks for them as they are: that "
            "is not Drive's answer; something between here and Drive (a proxy?) rewrites it. "
            "Check --api-root / DRIVESTAGE_API_ROOT and any proxy, or try another network")


def refuse_page_of(body: Streamed, entry: RemoteEntry) -> None:
    """Raise :class:`~drivestage.drive.connections.WebPageAnswer` for a 200 without a length
    typed as a web page where Drive does not list ``entry`` as one (Drive serves a file's
    bytes with its own type), quoting its first bytes without reading the rest. It was read
    whole, then failed the md5 twice, or never ended (lefts43)."""
    if body.left is None and not is_page_type(entry.kind):
        refuse_page(body.headers.get("content-type", ""), lambda: body.peek(4096))
