"""What Drive's HTTP answers mean: the one place that knows error statuses and reasons.

Every failed Drive request, whichever library made it (PyDrive2 raises ``ApiRequestError``,
googleapiclient ``HttpError``, our raw requests go through :func:`raise_for_status`), is read
here as an :class:`HttpFailure`. :func:`transient` says whether it is worth another attempt
(:mod:`drivestage.drive.retry` asks), and :func:`typed_error` turns one that is not into the
:mod:`drivestage.errors` class and message the user sees, quota and daily-cap logic included.
"""
from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from typing import Callable, Mapping, Optional

from drivestage import errors
from drivestage.drive import refusals, server_clock
from drivestage.drive.resources import restricted_message
from drivestage.store import Quota, quota_error

RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})
RATE_LIMIT_REASONS = frozenset({"rateLimitExceeded", "userRateLimitExceeded"})
QUOTA_REASONS = frozenset({"storageQuotaExceeded", "quotaExceeded"})
ITEM_LIMIT_REASONS = frozenset({"teamDriveFileLimitExceeded", "numChildrenInNonRootLimitExceeded"})
#: How Drive spells ``userRateLimitExceeded`` at the 750 GB/day upload cap (the per-minute
#: limit says "User Rate Limit Exceeded"; rclone tells the two apart so; no reason of its own).
UPLOAD_CAP_MESSAGE = "User rate limit exceeded."
#: How the ``what`` of a write that names ``If-Match`` begins: its 412 is
#: :class:`~drivestage.errors.PreconditionFailedError` (:func:`typed_error`).
IF_UNCHANGED = "write if unchanged "


@dataclass(frozen=True)
class HttpFailure:
    """An HTTP error answer, whatever library raised it."""

    status: int
    reason: Optional[str]
    message: str
    headers: Mapping[str, str]
    #: The first error item's own message (Drive's ``errors[0].message``), when it has one.
    item_message: str = ""
    #: The request's URI (without host), when the library kept it.
    uri: str = ""

    @property
    def label(self) -> str:
        """``503 backendError`` (for log lines)."""
        return f"{self.status} {self.reason}" if self.reason else str(self.status)

    @property
    def gone(self) -> bool:
        """The thing asked about does not exist (any more): 404 or 410."""
        return self.status in (404, 410)


def failure_of(exc: BaseException) -> Optional[HttpFailure]:
    """The HTTP error inside ``exc`` (googleapiclient ``HttpError``, PyDrive2
    ``ApiRequestError``, or the ``JSONDecodeError`` PyDrive2 raises on an HTML error body)."""
    from googleapiclient.errors import HttpError

    seen = 0
    cur: Optional[BaseException] = exc
    while cur is not None and seen < 5:
        if isinstance(cur, HttpError):
            return _from_http_error(cur)
        # PyDrive2's ApiRequestError keeps the HttpError as its first argument.
        for arg in cur.args[:1]:
            if isinstance(arg, HttpError):
                return _from_http_error(arg)
        # ApiRequestError.__init__ json-decodes the body; on an HTML 502 that raises
        # JSONDecodeError while handling the HttpError, which then sits in __context__.
        cur = cur.__cause__ or cur.__context__
        seen += 1
    return None


def _from_http_error(err: object) -> HttpFailure:
    resp = getattr(err, "resp", None)  # googleapiclient's HttpError: an httplib2.Response
    status = int(getattr(resp, "status", 0) or 0)
    headers = {str(k).lower(): str(v) for k, v in dict(resp or {}).items()}
    content = getattr(err, "content", b"")
    reason, message = parse_error_body(content)
    return HttpFailure(status=status, reason=reason, message=message, headers=headers,
                       item_message=_item_message(content), uri=str(getattr(err, "uri", "") or ""))


def _item_message(content: object) -> str:
    """``errors[0].message`` of a Drive error body ("" when there is none)."""
    try:
        body = json.loads(bytes(content[:65536]) if isinstance(content, (bytes, bytearray))
                          else str(content or ""))
        message = body["error"]["errors"][0]["message"]
    except (ValueError, KeyError, IndexError, TypeError, RecursionError):
        return ""
    return message if isinstance(message, str) else ""


def parse_error_body(content: object) -> tuple[Optional[str], str]:
    """``(reason, message)`` from a Drive error body; tolerant of HTML and empty bodies."""
    if isinstance(content, (bytes, bytearray)):
        text = bytes(content[:65536]).decode("utf-8", "replace")
    else:
        text = str(content or "")
    try:
        body = json.loads(text)
    except (ValueError, RecursionError):   # (64 KiB of "[": was a traceback, mount52)
        # HTML error pages from a proxy or load balancer: a short excerpt of their words
        # behind their first tag (which says "a web page": :func:`_web_page`).
        return None, page_excerpt(text)[:200]
    err = body.get("error") if isinstance(body, dict) else None
    if not isinstance(err, dict):
        return None, " ".join(text.split())[:200]
    items = err.get("errors")
    first = items[0] if isinstance(items, list) and items and isinstance(items[0], dict) \
        else {}
    reason = _text(first.get("reason")) or _text(err.get("status"))
    message = _text(err.get("message")) or _text(first.get("message"))
    return (reason or None), message[:1000]


#: Tags that stand inside a word ("<font>G</font><font>o</font>..." is "Go...").
_INLINE = r"(?i)</?(?:a|b|i|u|em|font|small|span|strong)\b[^>]*>"


def page_excerpt(text: str) -> str:
    """A web page as its first tag and then its words: style sheets, scripts and the
    other tags left out."""
    text = re.sub(r"(?is)<(style|script)\b.*?(?:</\1\s*>|$)", " ", text)
    first = re.match(r"\s*(<[^<>]*>)", text)
    words = " ".join(re.sub(r"<[^>]*>?", " ", re.sub(_INLINE, "", text)).split())
    return f"{first.group(1)} {words}" if first else words


def _text(value: object) -> str:
    """A field of an error body as text ("" when it is not a string: a server's lie)."""
    return value if isinstance(value, str) else ""


def well_formed_error(status: int, content: bytes) -> bytes:
    """``content`` if it is Drive's JSON error envelope with fields of the types Drive sends,
    else an envelope that says the same (its reason and a short excerpt). googleapiclient and
    PyDrive2 parse error bodies themselves and raise TypeError / KeyError on a ``null``, a
    list, or a ``message`` that is an object, losing the HTTP status; every answer >= 400
    passes here first (:class:`drivestage.drive.auth.AuthorizedHttp`)."""
    try:
        body = json.loads(bytes(content[:65536]).decode("utf-8", "replace"))
    except (ValueError, RecursionError):   # (a body nested deep: was a traceback, mount52)
        body = None
    err = body.get("error") if isinstance(body, dict) else None
    if isinstance(err, dict) and isinstance(err.get("message", ""), str) and \
            isinstance(err.get("status", ""), str) and isinstance(err.get("errors", []), list) \
            and all(isinstance(it, dict) and isinstance(it.get("reason", ""), str) and
                    isinstance(it.get("message", ""), str) for it in err.get("errors", [])):
        return content
    reason, message = parse_error_body(content)
    item = {"reason": reason, "message": message} if reason else {"message": message}
    return json.dumps({"error": {"code": status, "message": message,
                                 "errors": [item]}}).encode()


def retry_after_seconds(headers: Mapping[str, str], now: Optional[float] = None,
                        kept: float = 0.0) -> Optional[float]:
    """The ``Retry-After`` header as seconds (a number less ``kept``, how long a cache kept
    the answer: its ``Age``; or an HTTP date less ``now``, the server's clock now)."""
    raw = None
    for key, value in headers.items():
        if key.lower() == "retry-after":
            raw = str(value).strip()
    if not raw:
        return None
    try:
        return max(0.0, float(raw) - kept)
    except ValueError:
        pass
    when = server_clock.http_date(raw)   # (one with no zone: UTC, clock51)
    if when is None:
        return None
    return max(0.0, when - (time.time() if now is None else now))


def transient(failure: HttpFailure) -> bool:
    """Whether the answer is worth another attempt (5xx, 408, 429, 403 rate limits)."""
    return failure.status in RETRYABLE_STATUS or (
        failure.status == 403 and failure.reason in RATE_LIMIT_REASONS)


def daily_cap(failure: HttpFailure) -> bool:
    """A rate limit that outlived every retry of an upload: Drive's daily upload cap."""
    return failure.status == 403 and failure.reason in RATE_LIMIT_REASONS


def upload_cap(failure: HttpFailure) -> bool:
    """Drive's own answer for the 750 GB/day upload cap (not worth retrying an upload)."""
    return failure.status == 403 and failure.reason == "userRateLimitExceeded" and \
        UPLOAD_CAP_MESSAGE in (failure.item_message, failure.message)


@dataclass(frozen=True)
class Write:
    """What an upload writes, for the message of a full quota: how many bytes, where, and
    how to read the quota (only then, best-effort)."""

    size: int
    where: str
    quota: Optional[Callable[[], Quota]] = None


def typed_error(failure: HttpFailure, what: str, *, uploading: bool = False,
                write: Optional[Write] = None) -> errors.DriveStageError:
    """The typed error for an answer that will not be retried (or no longer).

    ``what`` starts the message. ``uploading``: a persistent rate limit is the daily upload
    cap. ``write``: a full quota says how much was needed, is free and sits in the trash."""
    status, reason = failure.status, failure.reason
    detail = failure.message or (reason or "")
    label = f"HTTP {status}" + (f" {reason}" if reason else "")
    sorry = google_sorry(failure)
    if sorry is not None:
        # Google's front end itself (403 or 429, on any request): not a filter, not Drive's
        # permissions; it lifts the block by itself (google-drive-ruby issue 368, gdrive 667).
        return errors.BlockedByGoogleError(
            f"{what}: refused ({label}) by Google itself: Google took this network's requests "
            f"for automated queries ('{sorry}'). Not a Drive permission: no sharing setting or "
            "login changes it. Google lifts such a block by itself, usually within a day: run "
            "the command again later, or from another network", status=status, reason=None)
    page = _web_page(failure) if status in (401, 403, 407) else None
    if page is not None:
        # Drive's refusals are JSON with a reason: a page is a network filter's or a
        # captive portal's (407: a proxy's own login), which no login or sharing lifts.
        return errors.WebPageRefusalError(
            f"{what}: refused ({label}) by something between here and Drive, not by Drive: "
            f"its answer is a web page ('{page}'), not Drive's. A network filter (a company's "
            "or school's proxy or firewall, a captive portal) may block Google Drive, or "
            "Google took the traffic for automated queries. Try another network, or ask its "
            "administrators to allow www.googleapis.com")
    if status == 401:
        return errors.AuthError(
            f"{what}: Drive refused the credentials ({label}: {detail}). Run "
            "`drivestage auth login`, pass --credentials FILE, or set DRIVESTAGE_CREDENTIALS "
            "(DRIVESTAGE_TOKEN for an emulator).")
    if status == 404 and _web_page(failure) is not None:
        # Drive's 404 is JSON with a reason; a page is another server's (a wrong API root, a
        # proxy). Not NotFoundError: nothing may take it for a file gone (a folder that
        # then looks unmarked to --delete, a download's target gone).
        return errors.RemoteError(
            f"{what}: the server answered {label} with a web page ('{_web_page(failure)}'), "
            "not Drive's answer; is --api-root / DRIVESTAGE_API_ROOT a Drive API, or does a "
            "proxy stand between here and Drive?", status=status, reason=reason)
    if status == 404:
        # An item shared only by a link before 2021 answers 404 without its resource key.
        hint = ("; if it was shared with you by a link, give the whole link (with its "
                "resourcekey=...) as SRC or DEST" if "drive:id:" in what else "")
        return errors.NotFoundError(f"{what}: not found on Drive ({label}: {detail}){hint}")
    if status == 412 and what.startswith(("delete ", "trash ")):
        # The removal named the etag its check read (If-Match): Drive has a newer item under
        # that id (another trainer's checkpoint, a push's new revision). Not done, and
        # nothing lost: the caller keeps it, as an item changed since its listing. Only a
        # removal names one: a 412 to another request is a server's own (attackint46), said
        # as it is below, never a NotFoundError that its caller takes for "gone".
        return errors.ChangedSinceCheckedError(
            f"{what}: not done: it changed on Drive since it was checked ({label}: "
            f"{detail}); kept as it is now")
    if status == 412 and what.startswith(IF_UNCHANGED):
        # A write that named the etag its caller read (the lease's swap): changed since,
        # not written; its caller reads the item again and decides.
        return errors.PreconditionFailedError(
            f"{what}: not written: it changed on Drive since it was read ({label}: "
            f"{detail})", status=status, reason=reason)
    if status == 403:
        return _forbidden(failure, what, label, detail, uploading=uploading, write=write)
    # A transient status (5xx, 408, 429) never comes here: the retry loop retries it and,
    # when the attempts run out, says "still failing after N attempts" itself.
    return errors.RemoteError(f"{what}: Drive answered {label}: {detail}", status=status,
                              reason=reason)


def _forbidden(failure: HttpFailure, what: str, label: str, detail: str, *, uploading: bool,
               write: Optional[Write]) -> errors.DriveStageError:
    """A 403, by its reason: each has its own cause and remedy."""
    reason = failure.reason
    if reason == "insufficientPermissions":
        return errors.ScopeError(
            f"{what}: the credentials are valid but may not use Google Drive ({label}: "
            f"{detail}). drivestage needs a token with the Drive scope ({_wanted_scope(failure)}"
            "); a token with only cloud-platform (Colab Enterprise, Vertex AI Workbench) or "
            "only drive.file (files this app created) or drive.readonly (for writes) is not "
            "enough. Log in with `drivestage auth login --client-secrets FILE`, or use a "
            "service-account key (--credentials) with the Drive API enabled.")
    if reason == "domainPolicy":
        return errors.AuthError(
            f"{what}: the Google Workspace administrators of this account have turned off "
            f"Drive access for apps ({label}: {detail}); Drive still works in the browser. "
            "Ask them to allow Drive apps for this account, or use another Google account (a "
            "personal one) that the files are shared with.")
    if reason in ("appNotAuthorizedToFile", "fileAccess"):   # (v3's name; v2's, PyDrive2 #192)
        return errors.ScopeError(
            f"{what}: these credentials may only open files this app created or was given "
            f"(the drive.file scope; {label}: {detail}). Log in with the full Drive scope: "
            "`drivestage auth login --client-secrets FILE`, or use a service-account key "
            "(--credentials) the files are shared with.")
    if reason == "teamDriveHierarchyTooDeep":
        return errors.ItemLimitError(
            f"{what}: the shared drive's folders would nest deeper than Drive allows (100 "
            f"levels) ({label}: {detail}). Push into a folder nearer the top of the drive.")
    if reason == "myDriveHierarchyDepthLimitExceeded":
        return errors.ItemLimitError(
            f"{what}: My Drive's folders would nest deeper than Drive allows (100 levels) "
            f"({label}: {detail}). Push into a folder nearer the top of My Drive.")
    if reason == "activeItemCreationLimitExceeded":
        return errors.ItemCreationLimitError(
            f"{what}: this account has created as many items as Drive allows (500 million, "
            f"wherever they are; trashed ones count) ({label}: {detail}). Delete items for "
            "good (empty the trash), or push with another Google account.")
    if reason == "dailyLimitExceeded":
        return errors.DailyLimitError(
            f"{what}: the Google Cloud project behind these credentials has used all its Drive "
            f"API requests for today ({label}: {detail}). Requests work again after midnight "
            "Pacific time; or raise the project's quota (Cloud console: APIs & Services, "
            "Google Drive API, Quotas), or use credentials of another project.")
    if reason == "teamDriveFileLimitExceeded":
        return errors.ItemLimitError(
            f"{what}: the shared drive holds as many items as Drive allows (500,000, trashed "
            f"items included) ({label}: {detail}). Delete items and empty the shared drive's "
            "trash, or push into another shared drive.")
    if reason == "numChildrenInNonRootLimitExceeded":
        return errors.ItemLimitError(
            f"{what}: the folder holds as many items as Drive allows in one folder (500,000 "
            f"files and folders) ({label}: {detail}). Push into a subfolder or another folder, "
            "or archive the small files into a zip first.")
    if reason == "storageQuotaExceeded" and "service account" in detail.lower():
        return errors.ServiceAccountStorageError(
            f"{what}: service accounts have no Drive storage of their own ({detail}). "
            "Upload into a shared drive the service account is a member of "
            "(drive:shared/<drive>/...), or use domain-wide delegation or OAuth "
            "credentials (`drivestage auth login`).",
            needed=write.size if write is not None else None)
    if reason in QUOTA_REASONS:
        if write is not None:
            return quota_error(write.size, write.where, _read_quietly(write.quota))
        return errors.QuotaExceededError(
            f"{what}: the Drive storage quota is full ({detail}). Free space on Drive "
            "(and empty the trash: it counts toward the quota).")
    if reason == "cannotDownloadAbusiveFile":
        if "acknowledgeAbuse=true" in failure.uri:
            return errors.AbusiveFileError(
                f"{what}: Drive flagged this file as malware or spam and refused "
                f"--acknowledge-abuse ({label}): Drive honours it only for the file's owner "
                "or a Manager of its shared drive. Ask the owner to download it, or to share "
                "it from a shared drive you manage.")
        return errors.AbusiveFileError(
            f"{what}: Drive flagged this file as malware or spam and will not serve it "
            f"({label}: {detail}). If you trust it, pull again with --acknowledge-abuse "
            "(Drive honours that only for the file's owner or a Manager of its shared drive).")
    if reason == "cannotDownloadFile":
        return errors.DownloadRestrictedError(restricted_message(what, f"{label}: {detail}"),
                                              answer=f"{label}: {detail}")
    if reason == "downloadQuotaExceeded":
        return errors.DownloadQuotaError(
            f"{what}: Drive refuses to serve this file: it was downloaded too often "
            f"recently ({label}: {detail}). Not retried: Drive lifts the limit after up to 24 "
            "hours. Make your own copy of the file on Drive (File, Make a copy; a shortcut is "
            "not a copy) and pull the copy. (If Drive refuses every file so, copies too, this "
            "account has reached its daily download cap, about 10 TB a day: wait instead.)")
    if reason in RATE_LIMIT_REASONS and uploading:
        if upload_cap(failure):
            return errors.DailyUploadCapError(
                f"{what}: Drive answered '{UPLOAD_CAP_MESSAGE}' ({label}): this account has "
                "reached Drive's daily upload cap (750 GB per user per 24 hours). Stopping "
                "instead of retrying for hours: uploads work again within 24 hours; the next "
                "push sends what is missing.")
        return errors.DailyUploadCapError(
            f"{what}: Drive keeps answering '{detail or reason}'. After a long upload "
            "this is usually Drive's daily upload cap (about 750 GB per user per day); "
            "stopping instead of retrying for hours. Try again tomorrow.")
    return refusals.not_a_permission(failure.reason or "", failure.status, what, label, detail) \
        or errors.PermissionDeniedError(
        f"{what}: permission denied ({label}: {detail}). Check that this account can "
        "access the file (sharing settings, shared drive membership).")


def _page_words(failure: HttpFailure) -> Optional[str]:
    """The words of an error answer that is a web page (Drive's all carry a JSON reason),
    tags left out (:func:`parse_error_body` kept its first); None when it is not one."""
    if failure.reason or not failure.message.lstrip().startswith("<"):
        return None
    return " ".join(re.sub(r"<[^>]*>?", " ", failure.message).split())


def _web_page(failure: HttpFailure) -> Optional[str]:
    """The first words of an error answer that is a web page; None when it is not one."""
    words = _page_words(failure)
    if words is None:
        return None
    return words[:120] + ("..." if len(words) > 120 else "")


#: What Google's own "Sorry..." page says when its front end takes a network's requests for
#: automated queries ("We're sorry... but your computer or network may be sending automated
#: queries"); users met it from www.googleapis.com as a 403 and as a 429.
SORRY_WORDS = "automated queries"


def google_sorry(failure: HttpFailure) -> Optional[str]:
    """The words of Google's own "Sorry..." page (from "We're sorry" to "automated queries."),
    when ``failure`` is that page; else None."""
    words = _page_words(failure)
    at = words.find(SORRY_WORDS) if words else -1
    if words is None or at < 0:
        return None
    start = max(words.rfind("We're sorry", 0, at), words.rfind("We\\'re sorry", 0, at), 0)
    return words[start:at + len(SORRY_WORDS) + 1].rstrip()


def _wanted_scope(failure: HttpFailure) -> str:
    """The scope Drive asks for in ``WWW-Authenticate`` (else the full Drive scope)."""
    header = failure.headers.get("www-authenticate", "")
    found = re.search(r'scope="([^"]+)"', header)
    return found.group(1) if found else "https://www.googleapis.com/auth/drive"


def _read_quietly(quota: Optional[Callable[[], Quota]]) -> Optional[Quota]:
    """The quota for an error message; None when it cannot be read (the error is about
    the quota: do not hide it behind another)."""
    if quota is None:
        return None
    try:
        return quota()
    except Exception:
        return None


def raise_for_status(status: int, body: object, headers: Optional[Mapping[str, str]] = None,
                     *, uri: str = "") -> None:
    """Raise a googleapiclient ``HttpError`` for a non-2xx/308 answer to a raw request, so that
    raw requests and library calls are read the same way (:func:`failure_of`)."""
    if status < 300 or status == 308:
        return
    import httplib2
    from googleapiclient.errors import HttpError

    info = {str(k).lower(): str(v) for k, v in dict(headers or {}).items()}
    info["status"] = str(status)
    raw = body if isinstance(body, bytes) else str(body or "").encode()
    raise HttpError(httplib2.Response(info), well_formed_error(status, raw), uri=uri)


def drive_words(exc: BaseException) -> str:
    """Drive's own words for ``exc``, typed from its answer (``HTTP 403 reason: message``),
    for a line that says what was refused and goes on; the typed message where the answer
    is not at hand (it is the typed error's ``__cause__``: :mod:`drivestage.drive.retry`)."""
    failure = failure_of(exc.__cause__) if exc.__cause__ is not None else None
    if failure is None:
        return str(exc)
    label = f"HTTP {failure.status}" + (f" {failure.reason}" if failure.reason else "")
    return f"{label}: {failure.message or failure.reason or ''}".rstrip(": .")


def drive_refused(exc: BaseException) -> bool:
    """Whether ``exc`` is Drive's own refusal (403 insufficientFilePermissions...): a
    permanent delete it refuses in a shared drive is worth a trash (a Content manager's);
    a web page in its place (:class:`~drivestage.errors.WebPageRefusalError`) is not."""
    return isinstance(exc, errors.PermissionDeniedError) and \
        not isinstance(exc, errors.WebPageRefusalError)
