"""Drive's batch endpoint (``POST /batch/drive/v2``): many calls in one HTTP request.

The request is ``multipart/mixed``; each part is ``Content-Type: application/http`` with an
optional ``Content-ID`` and holds one whole HTTP request (request line, headers, body). The
answer is ``200`` and ``multipart/mixed`` too: one part per call, in the order asked, each
``application/http`` holding that call's whole HTTP answer with its own status, and a
``Content-ID`` of ``response-`` + the call's own. What Drive documents and this server does:

* at most 100 calls in one batch (more: the whole batch is refused with 400, nothing done);
* every call counts as a request: it is logged (``in_batch``), charged quota units and run
  through authorization, scopes and the per-user limits on its own; the batch itself is
  logged as kind ``batch`` and charged nothing;
* the batch's headers, but its ``Content-*`` ones, apply to every call, unless the call
  carries the same header itself (its own wins);
* no media in a batch (``alt=media``, ``/upload/``) and no batch in a batch: that call
  answers 400, the others go on.

Faults: a rule matching the batch request (``POST`` ``/batch/``) acts on it whole (an
injected 503, a dropped connection, latency). A rule matching a call (by its method and
target) acts on that call: an injected answer becomes that call's answer inside the 200,
as Drive's per-call rate limits and backend errors come; latency holds the batch's answer,
the calls being served side by side (the longest call's latency, not their sum); a drop or
a chaos reset cannot reset one call's connection: it is left to the batch request.
"""
from __future__ import annotations

import email.parser
import email.policy
import io
import json
import re
import uuid
from typing import Optional

from drivestage.emulator.errors import EmulatorApiError, error_envelope

#: Where the batch endpoint sits (``batchPath`` of the Drive v2 discovery document).
BATCH_PATH = "/batch/drive/v2"
#: The most calls Drive takes in one batch.
MAX_CALLS = 100
#: The most bytes a batch request may hold here.
MAX_BATCH_BODY = 16 << 20
#: Drive's limit on the URL of each call.
MAX_CALL_URL = 8000
#: The most lines starting ``--`` (delimiters, at any depth) a batch body may hold, counted
#: before it is parsed: the email parser spent 28 s of CPU on a 1 MiB body of empty parts
#: and minutes on a 16 MiB one (emulefts46). A call's JSON body starts no line so.
MAX_DELIMITERS = 4 * MAX_CALLS


def split_batch(content_type: str, raw: bytes) -> list[tuple[Optional[str], bytes]]:
    """The calls of a batch body: (Content-ID or None, the embedded HTTP request bytes)."""
    if not re.match(r"\s*multipart/mixed\s*;", content_type or "", re.I) or \
            "boundary=" not in content_type.lower():
        raise EmulatorApiError(400, "badRequest", "A batch request must be multipart/mixed with "
                                                  "a boundary.", location="Content-Type",
                               location_type="header")
    if raw.count(b"\n--") + raw.startswith(b"--") > MAX_DELIMITERS:
        raise EmulatorApiError(400, "badRequest", f"A batch request may hold at most {MAX_CALLS} "
                                                  f"calls; this one holds more than "
                                                  f"{MAX_DELIMITERS} parts.")
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1")
    msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + raw)
    if not msg.is_multipart():
        raise EmulatorApiError(400, "badRequest", "Malformed multipart body.")
    out = []
    for part in msg.iter_parts():
        kind = (part.get_content_type() or "").lower()
        if kind != "application/http":
            raise EmulatorApiError(400, "badRequest", f"Each part of a batch request must be "
                                                      f"application/http, not {kind!r}.")
        payload = part.get_payload(decode=True)
        cid = part.get("Content-ID")
        out.append((str(cid).strip() if cid is not None else None, bytes(payload or b"")))
    return out


def response_id(content_id: Optional[str]) -> Optional[str]:
    """The Content-ID of the answer to the call ``content_id`` (``<x>`` -> ``<response-x>``)."""
    if not content_id:
        return None
    inner = content_id[1:-1] if content_id.startswith("<") and content_id.endswith(">") \
        else content_id
    return f"<response-{inner}>"


def with_outer_headers(request: bytes, outer: list[tuple[str, str]]) -> bytes:
    """``request`` (one call) with the batch's headers it lacks added (never ``Content-*``),
    and ``HTTP/1.1`` on a request line that names no version."""
    head, sep, body = request.partition(b"\r\n\r\n")
    if not sep:
        head, sep, body = request.partition(b"\n\n")
    lines = head.replace(b"\r\n", b"\n").split(b"\n")
    own = {ln.split(b":", 1)[0].strip().lower() for ln in lines[1:] if b":" in ln}
    extra = [f"{k}: {v}".encode("latin-1") for k, v in outer
             if not k.lower().startswith("content-") and k.lower().encode() not in own
             and k.lower() not in ("host", "connection", "transfer-encoding", "expect")]
    first = lines[0].strip().split()
    if len(first) == 2:  # no HTTP version (Drive takes it so): HTTP/1.1, not 0.9's bare body
        first.append(b"HTTP/1.1")
    lines = [b" ".join(first)] + [ln.rstrip(b"\r") for ln in lines[1:] if ln.strip()] + extra
    if body and b"content-length" not in own:
        lines.append(b"Content-Length: %d" % len(body))
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def refused_call(target: str) -> Optional[EmulatorApiError]:
    """Why Drive refuses this call inside a batch, if it does."""
    path = target.split("?", 1)[0]
    if len(target) > MAX_CALL_URL:
        return EmulatorApiError(400, "badRequest", f"The URL of a call in a batch may be at most "
                                                   f"{MAX_CALL_URL} characters long.")
    if path.startswith("/batch") or "/batch/" in path:
        return EmulatorApiError(400, "badRequest", "A batch request cannot hold another batch.")
    if "/upload/" in path or re.search(r"(?:^|[?&])alt=media(?:&|$)", target.split("?", 1)[-1]
                                       if "?" in target else ""):
        return EmulatorApiError(400, "badRequest", "Media operations (uploads and downloads) are "
                                                   "not supported in a batch request.")
    return None


def error_answer(exc: EmulatorApiError) -> bytes:
    """A call's whole HTTP answer for ``exc`` (a call refused before it ran)."""
    body = json.dumps(error_envelope(exc.status, exc.reason, exc.message)).encode("utf-8")
    return (f"HTTP/1.1 {exc.status} Bad Request\r\nContent-Type: application/json; "
            f"charset=UTF-8\r\nContent-Length: {len(body)}\r\n\r\n").encode("latin-1") + body


def join_answers(answers: list[tuple[Optional[str], bytes]]) -> tuple[str, bytes]:
    """(Content-Type, body) of the batch's answer holding each call's whole HTTP answer."""
    boundary = f"batch_{uuid.uuid4().hex}"
    out = io.BytesIO()
    for cid, answer in answers:
        out.write(f"--{boundary}\r\nContent-Type: application/http\r\n".encode("latin-1"))
        rid = response_id(cid)
        if rid:
            out.write(f"Content-ID: {rid}\r\n".encode("latin-1"))
        out.write(b"\r\n" + answer + b"\r\n")
    out.write(f"--{boundary}--\r\n".encode("latin-1"))
    return f"multipart/mixed; boundary={boundary}", out.getvalue()


class BatchRoutes:
    """The batch endpoint (a mixin of the request handler)."""

    def _batch(self) -> None:
        raw = self.body.read_all(MAX_BATCH_BODY)  # type: ignore[attr-defined]
        calls = split_batch(self.headers.get("Content-Type") or "", raw)  # type: ignore[attr-defined]
        if len(calls) > MAX_CALLS:
            raise EmulatorApiError(400, "badRequest", f"A batch request may hold at most "
                                                      f"{MAX_CALLS} calls; this one holds "
                                                      f"{len(calls)}.")
        if not calls:
            raise EmulatorApiError(400, "badRequest", "A batch request must hold at least one call.")
        outer = list(self.headers.items())  # type: ignore[attr-defined]
        answers, waits = [], [0.0]
        for cid, request in calls:
            answer, wait = self._call_in_batch(with_outer_headers(request, outer))
            answers.append((cid, answer))
            waits.append(wait)
        # Drive serves the calls side by side: the answer waits for the slowest one.
        self._ttfb += max(waits)  # type: ignore[attr-defined]
        content_type, body = join_answers(answers)
        body, headers = self._maybe_gzipped(body, None)  # type: ignore[attr-defined]
        self._send_bytes(200, body, content_type, headers)  # type: ignore[attr-defined]

    def _call_in_batch(self, request: bytes) -> tuple[bytes, float]:
        """Serve one call as if it had come alone (log, faults, authorization, route) into a
        buffer: (its whole HTTP answer, the latency its faults asked for)."""
        line = request.split(b"\n", 1)[0].decode("latin-1").split()
        refused = refused_call(line[1]) if len(line) >= 2 else None
        if refused is not None:
            return error_answer(refused), 0.0
        sub = type(self).__new__(type(self))
        sub.server = self.server  # type: ignore[attr-defined]
        sub.client_address = self.client_address  # type: ignore[attr-defined]
        sub.request = sub.connection = None
        sub.rfile, sub.wfile = io.BytesIO(request), io.BytesIO()
        sub._in_batch = True
        sub._batch_wait = 0.0
        sub._link = self._link  # type: ignore[attr-defined]
        sub._connection = getattr(self, "_connection", 0)
        sub.close_connection = True
        sub.handle_one_request()
        answer = sub.wfile.getvalue()
        if not answer:  # no request line at all
            return error_answer(EmulatorApiError(400, "badRequest", "Empty call in a batch.")), 0.0
        # A call's answer is inside the batch's: no connection of its own to keep or close.
        answer = re.sub(rb"(?im)^Connection: [^\r\n]*\r\n", b"", answer, count=1)
        return answer, sub._batch_wait
