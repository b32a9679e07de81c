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

import contextlib
from typing import Any, Callable, Mapping, Optional, Union

from drivestage.drive import answers as http_answers
from drivestage.drive import connections, retry
from drivestage.drive.transport import Transport
from googleapiclient.errors import HttpError

from drivestage.errors import DriveStageError

#: The most calls Drive takes in one batch request.
MAX_CALLS = 100

#: What a files.get in a batch came back as: the resource, or the (untyped) failure.
Got = Union[dict[str, Any], BaseException]


class NoBatches(Exception):
    """The server refused or misread the batch request itself, for a reason another try
    will not change (no batch endpoint: a 404, a 400; an answer that is not multipart): a
    Drive look-alike, a proxy. Its refusal is no answer about the items: they are to be
    read alone (once taken as each item's 404, it had a prune delete nothing and report
    every file "already deleted"). ``unanswered``: no attempt got an answer at all (a
    proxy that resets batches, or an outage: which one, a lone request tells).
    ``refused``: the server's answer refused the batch request (an attempt that did
    nothing); else some of its calls may have been carried out (an answer lost or not
    readable: attackpush41)."""

    def __init__(self, message: str, *, unanswered: bool = False, refused: bool = False):
        super().__init__(message)
        self.unanswered, self.refused = unanswered, refused


class Doubtful(Exception):
    """The batch's answer named this call's Content-ID twice (googleapiclient keeps the last
    silently): which of the two is this call's is unknown, so neither is acted on; the
    caller asks about the item again (a lone files.get)."""


#: A call of one item: (``transport.files()``, id) -> the request (not executed).
Make = Callable[[Any, str], Any]

#: The calls this module makes: files.get, files.delete, files.trash (v2).
VERBS: dict[str, Make] = {
    "stat": lambda files, fid: files.get(fileId=fid, supportsAllDrives=True),
    "delete": lambda files, fid: files.delete(fileId=fid, supportsAllDrives=True),
    "trash": lambda files, fid: files.trash(fileId=fid, supportsAllDrives=True),
}


def request_of(transport: Transport, verb: str, fid: str, files: Any = None,
               etag: Optional[str] = None) -> Any:
    """The call ``verb`` (:data:`VERBS`) of ``fid``, not executed, with the resource keys it
    needs and, given ``etag`` (what the check before a removal read), ``If-Match``: Drive
    then refuses it (412) where the item changed since, instead of removing what no check
    saw (a checkpoint another trainer replaced under the same id)."""
    request = VERBS[verb](transport.files() if files is None else files, fid)
    needed = transport.resource_keys.header(request.uri)
    if needed:  # the batch's own headers name none: its address holds no id
        request.headers["X-Goog-Drive-Resource-Keys"] = needed
    if etag:
        request.headers["If-Match"] = etag
    return request


def sender(transport: Transport, fid: str, etag: str) -> Callable[[bool, bool], None]:
    """A lone removal of ``fid`` (``send(to_trash, first)``) that names ``etag``
    (:func:`request_of`). A trash names it on its first try only: a trash changes the etag,
    so a retry after one whose answer was lost would be refused as changed (where Drive
    honours it on files.trash, which no public source says)."""
    def send(to_trash: bool, first: bool) -> None:
        verb = "trash" if to_trash else "delete"
        request_of(transport, verb, fid, etag=etag if first or not to_trash else None
                   ).execute(http=transport.http())
    return send


def get_many(transport: Transport, wanted: Mapping[str, str]) -> dict[str, Got]:
    """files.get of each id in ``wanted`` (id -> where, for messages), in batches of at most
    :data:`MAX_CALLS`: id -> its resource, or the exception its call ended with (transient
    ones retried first; a call whose retries ran out gets the
    :class:`~drivestage.errors.RetriesExhaustedError`; one whose answer came twice a
    :class:`Doubtful`). Each call carries the resource
    keys it needs, as a request of its own would. :class:`NoBatches` when the server
    refuses the batch request itself (what was read so far is lost: a few calls)."""
    return call_many(transport, wanted, "stat")


def call_many(transport: Transport, wanted: Mapping[str, str], verb: str,
              sent: Optional[dict[str, int]] = None,
              before: Optional[Callable[[], None]] = None,
              out: Optional[dict[str, Got]] = None,
              etags: Mapping[str, str] = {}) -> dict[str, Got]:
    """:func:`get_many` for the calls ``verb`` names in :data:`VERBS` (a delete answers
    ``{}``); ``sent`` (id -> how many times its call was sent) tells a delete's 404 on a
    retry (an earlier attempt went through, its answer lost) from a first one. ``before``
    (a push's guard) is called before each batch request, a retry's too (a lease lost
    between a try and its retry removes nothing: guards40); what it raises is raised as
    it is, nothing more sent; ``out`` (the answer) holds the calls settled before it.
    ``etags`` (id -> the etag the check read): each such call names it (:func:`request_of`;
    a trash on its first try only, as :func:`sender`)."""
    ids = list(wanted)
    out = {} if out is None else out
    sent = {} if sent is None else sent
    refusals: list[BaseException] = []   # the guard's (never taken for the calls' failure)

    def ask() -> None:
        if before is None:
            return
        try:
            before()
        except BaseException as exc:
            refusals.append(exc)
            raise
    for at in range(0, len(ids), MAX_CALLS):
        chunk = ids[at:at + MAX_CALLS]
        names = [wanted[i] for i in chunk]
        what = f"{verb} {names[0]}" + (f" and {len(chunk) - 1} more" if len(chunk) > 1 else "")
        left = list(chunk)
        answered: list[bool] = []  # per attempt: whether the batch request got its answer
        try:
            refused = transport.retrying(what)(_attempt, transport, left, out, what, answered,
                                              verb, sent, ask, etags)
        except DriveStageError as exc:  # retries ran out
            if exc in refusals:
                raise
            if not any(answered):
                # Not one answer to the batch request itself (reset, cut, timed out each
                # time): a proxy that cannot pass batches made every prune fail, where a
                # files.get per item goes through. Read alone, a real outage fails as before.
                raise NoBatches(f"{what}: the batch request got no answer in "
                                f"{len(answered)} attempts", unanswered=True) from exc
            out.update(dict.fromkeys(left, exc))
            continue
        if refused is not None:
            raise refused
    return out


class _Twice(dict):  # type: ignore[type-arg]
    """googleapiclient's table of a batch's answers by Content-ID, noting an id answered
    twice in one answer (it keeps the last one silently). Its calls refused 401 are sent
    again in a second request after a refresh: their second answer is no repeat."""

    def __init__(self, batch: Any) -> None:
        super().__init__()
        self.twice: set[str] = set()
        self._round: set[str] = set()
        inner = batch._execute

        def execute(*args: Any, **kwargs: Any) -> Any:
            self._round = set()
            return inner(*args, **kwargs)

        batch._execute = execute

    def __setitem__(self, key: Any, value: Any) -> None:
        if key in self._round:
            self.twice.add(key)
        self._round.add(key)
        super().__setitem__(key, value)


def _attempt(transport: Transport, left: list[str], out: dict[str, Got],
             what: str, answered: list[bool], verb: str,
             sent: dict[str, int], before: Callable[[], None],
             etags: Mapping[str, str]) -> Optional[NoBatches]:
    """One batch request for the ids in ``left``, after ``before()``: those settled leave
    it (into ``out``). A refusal of the batch itself is returned, not raised: the retry
    loop would type it as an answer about the items."""
    before()
    answers: dict[str, tuple[Any, Optional[BaseException]]] = {}
    files = transport.files()
    batch = transport.service.new_batch_http_request(
        callback=lambda rid, res, exc: answers.__setitem__(rid, (res, exc)))
    # Its private table of answers (set once, in __init__): where an id comes twice.
    twice = batch._responses = _Twice(batch)
    for fid in left:
        etag = etags.get(fid) if verb != "trash" or not sent.get(fid) else None
        batch.add(request_of(transport, verb, fid, files, etag), request_id=fid)
        sent[fid] = sent.get(fid, 0) + 1
    answered.append(False)
    # Removals: each try after the guard and counted in ``sent`` (httplib2 sent one again
    # unseen where the server hung up without an answer: connections.counted_tries).
    counted = connections.counted_tries() if verb != "stat" \
        else contextlib.nullcontext()
    try:
        with counted:
            batch.execute(http=transport.http())
    except HttpError as exc:  # the batch request's own answer (or googleapiclient's BatchError)
        answered[-1] = True
        if retry.is_retryable(exc):
            raise  # a 503, a rate limit: the retry loop sends it again
        failure = http_answers.failure_of(exc)
        label = failure.label if failure is not None else type(exc).__name__
        return NoBatches(f"{what}: the server refused the batch request ({label})",
                         refused=True)
    except (ValueError, TypeError, LookupError, AttributeError) as exc:
        # An answer googleapiclient cannot read (a call's that is not JSON): not Drive's. Its
        # parser raises IndexError too (an answer cut off, an empty Content-ID): a traceback.
        return NoBatches(f"{what}: the answer to a batch request is not Drive's "
                         f"({type(exc).__name__}: {str(exc)[:120]})")
    answered[-1] = True
    if any(fid not in answers for fid in left):
        return NoBatches(f"{what}: the answer to a batch request misses calls; Drive answers "
                         "every call")
    first: Optional[BaseException] = None
    for fid in list(left):
        res, failed = answers[fid]
        if fid in twice.twice:
            out[fid] = Doubtful(f"{what}: the batch's answer names this call twice")
            left.remove(fid)
            continue
        if failed is not None and isinstance(getattr(failed, "content", None), bytes):
            # As :class:`drivestage.drive.auth.AuthorizedHttp` does for a lone answer: a
            # server's message repeating the token must not reach a message or a log.
            failed.content = transport.credentials.redact(failed.content)  # type: ignore[attr-defined]
        if failed is not None and retry.is_retryable(failed):
            first = first or failed
            continue
        out[fid] = failed if failed is not None else res
        left.remove(fid)
    if first is not None:
        raise first  # the retry loop waits on it (its Retry-After), then sends ``left`` again
    return None

