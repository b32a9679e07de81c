"""The request log (``emu.requests``) and the redaction of secrets before anything is logged.

A token may arrive in the ``Authorization`` header or as ``?access_token=`` in the URL
(googleapiclient's media links, curl users); neither may reach the request log, the
``/_emulator/requests`` answer or the debug log.
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Iterable, Optional

REDACTED = "<redacted>"
#: Query parameters that carry credentials (OAuth access tokens, API keys).
SECRET_PARAMS = ("access_token", "oauth_token", "key")
_LOGGED_HEADERS = ("Range", "Content-Range", "Content-Length", "Content-Type", "Authorization",
                   "X-Upload-Content-Length", "X-Upload-Content-Type", "X-Goog-Drive-Resource-Keys",
                   "X-HTTP-Method-Override", "If-Match")
_SECRET_IN_TARGET = re.compile(r"(?i)([?&](?:%s)=)[^&#\s]*" % "|".join(SECRET_PARAMS))


@dataclass
class RequestRecord:
    """One API request as the emulator saw it (``emu.requests``)."""

    method: str
    path: str
    query: dict
    headers: dict
    status: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    time: float = 0.0          # when it arrived (epoch seconds)
    duration: float = 0.0
    error: Optional[str] = None  # "reset" when the connection was dropped on purpose
    kind: str = ""             # the API method, e.g. "files.list", "media.download" (see accounting)
    units: int = 0             # quota units Drive would charge for it
    in_batch: bool = False     # a call inside a batch request (kind "batch": the batch itself)
    connection: int = 0        # which TCP connection carried it (1, 2, ... in accept order)
    encoding: str = ""         # the answer's Content-Encoding ("gzip": Emulator.gzip_answers)

    def __post_init__(self) -> None:
        self.query = redact_query(self.query)

    def text_size(self) -> int:
        """Characters of its path, query and headers: what the log's byte bound counts
        (set when it arrives; they do not change after)."""
        return len(self.path) + sum(len(str(k)) + len(str(v))
                                    for part in (self.query, self.headers) for k, v in part.items())


def redact_query(query: dict) -> dict:
    """A copy of ``query`` with credential parameters replaced by ``<redacted>``."""
    return {k: (REDACTED if k.lower() in SECRET_PARAMS else v) for k, v in query.items()}


def redact_target(text: str) -> str:
    """``text`` (a request line or target) with credential query values replaced."""
    return _SECRET_IN_TARGET.sub(lambda m: m.group(1) + REDACTED, text)


def logged_headers(headers) -> dict:
    """The request headers the log keeps, the ``Authorization`` value redacted."""
    out = {}
    for name in _LOGGED_HEADERS:
        value = headers.get(name)
        if value is not None:
            out[name] = _redact_authorization(value) if name == "Authorization" else value
    return out


def _redact_authorization(value: str) -> str:
    scheme = value.split(" ", 1)[0] if " " in value else "Bearer"
    return f"{scheme} {REDACTED}"


def count_calls(records: Iterable[RequestRecord], kind: Optional[str] = None):
    """API calls by kind (a :class:`collections.Counter`), or the number of one ``kind``."""
    counts = Counter(r.kind for r in records if r.kind)
    return counts if kind is None else counts.get(kind, 0)
