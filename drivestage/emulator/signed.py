"""Signed download links: where a redirected ``alt=media`` download is served.

Google's API front end may answer a media download with a redirect (``307``) to a signed
address on ``*.googleusercontent.com`` (a Drive report of 2020: ``content.googleapis.com``
answered ``alt=media`` with ``307`` to ``…-apidata.googleusercontent.com/download/drive/v3/
files/<id>?qk=…``; Google's .NET client issue 343 of 2013: "the media downloader follows
redirect (307) for each chunk"; google-api-python-client's ``MediaIoBaseDownload`` reads its
next chunks from the ``content-location`` httplib2 leaves after following one). The signed
address itself grants the download: httplib2 (and Go's HTTP client, rclone's) drops the
``Authorization`` header when it follows a redirect. Under ``faults.redirect_media`` the
emulator does the same: the API checks the caller and answers with a :class:`SignedLinks`
address on this server (or another origin), served there without a token until it expires.
"""
from __future__ import annotations

import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Optional

#: The path a signed link serves (the query carries ``qk``).
SIGNED_PATH = re.compile(r"/download/drive/v2/files/([^/]+)")
#: How long a signed link serves, in seconds (a reader reuses it for its ranged reads).
LINK_LIFETIME = 600.0


@dataclass
class SignedLink:
    """What a signed link grants: one file's bytes as its caller saw them."""

    file_id: str
    caller: object                     # access.Caller of the API request that was redirected
    query: dict = field(default_factory=dict)   # revisionId, acknowledgeAbuse, ...
    expires: float = 0.0


class SignedLinks:
    """The signed links one emulator handed out (thread-safe; expired ones are forgotten)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._links: dict[str, SignedLink] = {}

    def sign(self, file_id: str, caller: object, query: dict,
             lifetime: float = LINK_LIFETIME) -> str:
        """A new ``qk`` for ``file_id``, as ``caller`` asked for it with ``query``."""
        qk = secrets.token_urlsafe(24)
        now = time.monotonic()
        with self._lock:
            for key in [k for k, v in self._links.items() if v.expires <= now]:
                del self._links[key]
            self._links[qk] = SignedLink(file_id, caller, dict(query), now + lifetime)
        return qk

    def find(self, qk: str, file_id: str) -> Optional[SignedLink]:
        """The link ``qk`` grants for ``file_id`` (None: unknown, expired or another file's)."""
        with self._lock:
            link = self._links.get(qk)
        if link is None or link.file_id != file_id or link.expires <= time.monotonic():
            return None
        return link

    def expire_all(self) -> None:
        """Make every link handed out so far expire now (a test of a stale link)."""
        with self._lock:
            for link in self._links.values():
                link.expires = 0.0
