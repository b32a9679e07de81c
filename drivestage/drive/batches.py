"""files.get of many items in few requests: Drive's batch endpoint (``/batch/drive/v2``,
at most :data:`MAX_CALLS` calls per request), through googleapiclient's batch object.

Each call has its own answer inside the batch's 200: a per-call 403 rate limit or 5xx is
retried (only the calls that failed so, under the transport's retry loop: bounded attempts,
Retry-After honoured); any other failure is kept, as the exception googleapiclient raised
for that call, for the caller to type (:func:`drivestage.drive.retry.translate`, which asks
:func:`drivestage.drive.answers.typed_error`: the one place that reads Drive's answers). A
failure of the batch request itself (a reset, a 503) is retried whole. Drive counts every
call as a request; what a batch saves is the round trips.
"""
from __future__ import annotations

from typing import Any, Mapping, Optional, Union

from drivestage.drive import retry
from drivestage.drive.transport import Transport
from drivestage.errors import DriveStageError, MalformedAnswerError

#: The most calls Drive takes in one batch request.
MAX_CALLS = 100

#: What a files.get in a batch came back as: the resource, or the (untyped) failure.
Got = Union[dict[str, Any], BaseException]


def get_many(transport: Transport, wanted: Mapping[str, str]) -> dict[str, Got]:
    """files.get of each id in ``wanted`` (id -> where, for messages), in batches of at most
    :data:`MAX_CALLS`: id -> its resource, or the exception its call ended with (transient
    ones retried first; a call whose retries ran out gets the
    :class:`~drivestage.errors.RetriesExhaustedError`). Each call carries the resource
    keys it needs, as a request of its own would."""
    ids = list(wanted)
    out: dict[str, Got] = {}
    for at in range(0, len(ids), MAX_CALLS):
        chunk = ids[at:at + MAX_CALLS]
        names = [wanted[i] for i in chunk]
        what = f"stat {names[0]}" + (f" and {len(chunk) - 1} more" if len(chunk) > 1 else "")
        left = list(chunk)
        try:
            transport.retrying(what)(_attempt, transport, left, out, what)
        except DriveStageError as exc:  # retries ran out (or the batch itself was refused)
            out.update(dict.fromkeys(left, exc))
    return out


def _attempt(transport: Transport, left: list[str], out: dict[str, Got], what: str) -> None:
    """One batch request for the ids in ``left``: those settled leave it (into ``out``)."""
    answers: dict[str, tuple[Any, Optional[BaseException]]] = {}
    files = transport.files()
    batch = transport.service.new_batch_http_request(
        callback=lambda rid, res, exc: answers.__setitem__(rid, (res, exc)))
    for fid in left:
        request = files.get(fileId=fid, supportsAllDrives=True)
        needed = transport.resource_keys.header(request.uri)
        if needed:  # the batch's own headers name none: its address holds no id
            request.headers["X-Goog-Drive-Resource-Keys"] = needed
        batch.add(request, request_id=fid)
    try:
        batch.execute(http=transport.http())
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        # A call's answer googleapiclient cannot read (not JSON): not Drive's; one line, not
        # a traceback (its BatchError, a multipart it cannot read, is an HttpError: typed).
        raise MalformedAnswerError(
            f"{what}: the server's answer to a batch request is not what Drive sends "
            f"({type(exc).__name__}: {str(exc)[:120]}); is --api-root / DRIVESTAGE_API_ROOT "
            "a Drive API?") from exc
    first: Optional[BaseException] = None
    for fid in list(left):
        if fid not in answers:
            raise MalformedAnswerError(f"{what}: the server's answer to a batch request has "
                                       f"no answer for id {fid}; Drive answers every call")
        res, failed = answers[fid]
        if failed is not None and retry.is_retryable(failed):
            first = first or failed
            continue
        out[fid] = failed if failed is not None else res
        left.remove(fid)
    if first is not None:
        raise first  # the retry loop waits on it (its Retry-After), then sends ``left`` again

