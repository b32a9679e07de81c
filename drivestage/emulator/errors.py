"""The emulator's error types, and the error bodies Drive really sends.

:class:`EmulatorApiError` is raised anywhere inside the emulator; the server turns it into
Google's JSON envelope. :data:`DRIVE_ERRORS` holds, per ``reason``, the status, domain,
message and headers real Drive answers with, so a route (or an injected fault) can say
``drive_error("cannotDownloadAbusiveFile")`` and send exactly what a client would get.
:class:`DataDirError`: a state folder the emulator cannot open.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Optional
from urllib.parse import unquote

DRIVE_SCOPE = "https://www.googleapis.com/auth/drive"


class DataDirError(RuntimeError):
    """The emulator cannot use its state folder: another emulator serves from it, or its
    state is unreadable (a corrupted or hand-edited file). The message says which and what
    to do; nothing in the folder was changed."""


class EmulatorApiError(Exception):
    """Raised inside the Drive emulator; the server turns it into Google's JSON error envelope."""

    def __init__(self, status: int, reason: str, message: str, *, location: Optional[str] = None,
                 location_type: Optional[str] = None, domain: str = "global",
                 headers: Optional[dict] = None, top_message: Optional[str] = None,
                 extra: Optional[dict] = None):
        super().__init__(message)
        self.status, self.reason, self.message = status, reason, message
        self.location, self.location_type, self.domain = location, location_type, domain
        self.headers = dict(headers or {})
        self.top_message = top_message      # error.message when it differs from errors[0].message
        self.extra = dict(extra or {})      # more top-level keys of "error" (status, details)

    def envelope(self) -> dict:
        """This error as Google's JSON body."""
        return error_envelope(self.status, self.reason, self.message, domain=self.domain,
                              location=self.location, location_type=self.location_type,
                              top_message=self.top_message, extra=self.extra)


def error_envelope(status: int, reason: str, message: str, *, domain: str = "global",
                   location: Optional[str] = None, location_type: Optional[str] = None,
                   top_message: Optional[str] = None, extra: Optional[dict] = None) -> dict:
    """Google's JSON error body."""
    err = {"domain": domain, "reason": reason, "message": message}
    if location:
        err["locationType"] = location_type or "parameter"
        err["location"] = location
    body = {"errors": [err], "code": status, "message": top_message or message}
    body.update(extra or {})
    return {"error": body}


@dataclass(frozen=True)
class DriveErrorSpec:
    """How Drive answers one failure ``reason``."""

    status: int
    domain: str
    message: str
    top_message: Optional[str] = None
    headers: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)
    location: Optional[str] = None
    location_type: Optional[str] = None

    def text(self, file_id: str = "", verb: str = "read") -> str:
        """The message, naming the file (``{file_id}``) and the access asked for
        (``{verb}``: "read" or "write") where Drive's does; without an id, none is named."""
        message = self.message.replace("{verb}", verb)
        return message.replace(" {file_id}", f" {file_id}" if file_id else "")


#: The project number in answers that name the caller's Cloud project.
_PROJECT = "1234567890"

#: Drive's answers by reason. Sources: Google's "Resolve errors" guide for the Drive API
#: (developers.google.com/workspace/drive/api/guides/handle-errors) and "Usage limits"
#: page, and bodies users pasted from real Drive into public issue trackers (named in
#: docs/emulator.md). The 750 GB/day upload cap has no reason of its own: Drive answers
#: ``userRateLimitExceeded`` with the message spelt "User rate limit exceeded." (see
#: :data:`UPLOAD_CAP_MESSAGE`).
DRIVE_ERRORS: dict[str, DriveErrorSpec] = {
    "insufficientPermissions": DriveErrorSpec(
        403, "global", "Insufficient Permission",
        top_message="Request had insufficient authentication scopes.",
        headers={"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/", '
                                     f'error="insufficient_scope", scope="{DRIVE_SCOPE}"'},
        extra={"status": "PERMISSION_DENIED",
               "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo",
                            "reason": "ACCESS_TOKEN_SCOPE_INSUFFICIENT", "domain": "googleapis.com",
                            "metadata": {"service": "drive.googleapis.com"}}]}),
    "insufficientFilePermissions": DriveErrorSpec(
        403, "global", "The user does not have sufficient permissions for this file."),
    "dailyLimitExceeded": DriveErrorSpec(403, "usageLimits", "Daily Limit Exceeded"),
    "userRateLimitExceeded": DriveErrorSpec(403, "usageLimits", "User Rate Limit Exceeded"),
    "rateLimitExceeded": DriveErrorSpec(429, "usageLimits", "Rate Limit Exceeded"),
    # (The guide's sample, its item's message cut short as there; "filename" is its own.)
    "sharingRateLimitExceeded": DriveErrorSpec(
        403, "global", 'Rate limit exceeded. User message: "These item(s) could not be shared '
                       'because a rate limit was exceeded: filename',
        top_message="Rate Limit Exceeded"),
    "teamDriveFileLimitExceeded": DriveErrorSpec(
        403, "global", "The file limit for this shared drive has been exceeded."),
    "numChildrenInNonRootLimitExceeded": DriveErrorSpec(
        403, "global",
        "The limit for this folder's number of children (files and folders) has been exceeded."),
    "cannotDownloadAbusiveFile": DriveErrorSpec(
        403, "global", "This file has been identified as malware or spam and cannot be downloaded."),
    "domainPolicy": DriveErrorSpec(
        403, "global", "The domain administrators have disabled Drive apps."),
    # The guide's "The user has not granted the app {appId} {verb} access to the file
    # {fileId}."; a real answer (an alt=media under drive.file + drive.metadata.readonly)
    # also names the Authorization header as its location, as Drive v2's fileAccess does.
    "appNotAuthorizedToFile": DriveErrorSpec(
        403, "global", f"The user has not granted the app {_PROJECT} {{verb}} access to the "
                       "file {file_id}.", location="Authorization", location_type="header"),
    # Drive v2's own answer where a drive.file token reaches an item through another scope
    # (drive.readonly, drive.metadata.readonly) but the app was never given the item: a
    # write (or, under a metadata scope, a download) of it (PyDrive2 issue 192: "write
    # access" to a files.delete, "read access" to an alt=media). ``file_access`` fills it.
    "fileAccess": DriveErrorSpec(
        403, "global", f"The authenticated user has not granted the app {_PROJECT} {{verb}} "
                       "access to the file {file_id}", location="Authorization",
        location_type="header"),
    "teamDriveHierarchyTooDeep": DriveErrorSpec(
        403, "global", "The shared drive hierarchy depth will exceed the limit."),
    "myDriveHierarchyDepthLimitExceeded": DriveErrorSpec(
        403, "global", "Your My Drive can't contain more than 100 levels of folders. For "
                       "details, see https://developers.google.com/workspace/drive/api/guides/"
                       "handle-errors#nested-folder-levels."),
    "activeItemCreationLimitExceeded": DriveErrorSpec(
        403, "global", "This account has exceeded the creation limit of 500 million items. To "
                       "create more items, permanently delete some items."),
    "cannotDownloadFile": DriveErrorSpec(
        403, "global", "This file cannot be downloaded by the user."),
    "downloadQuotaExceeded": DriveErrorSpec(
        403, "global", "The download quota for this file has been exceeded."),
    "storageQuotaExceeded": DriveErrorSpec(
        403, "global", "The user's Drive storage quota has been exceeded."),
    "fileNotDownloadable": DriveErrorSpec(
        403, "global", "Only files with binary content can be downloaded. Use Export with Docs "
                       "Editors files.", location="alt"),
    "notFound": DriveErrorSpec(404, "global", "File not found: {file_id}.", location="fileId"),
    # A Cloud project that has not enabled the Drive API (bodies users pasted: uppy issue
    # 1300, gogcli issue 489; the status and ErrorInfo of Google's newer error model).
    "accessNotConfigured": DriveErrorSpec(
        403, "usageLimits", f"Google Drive API has not been used in project {_PROJECT} before "
        "or it is disabled. Enable it by visiting https://console.developers.google.com/apis/"
        f"api/drive.googleapis.com/overview?project={_PROJECT} then retry. If you enabled "
        "this API recently, wait a few minutes for the action to propagate to our systems and "
        "retry.",
        extra={"status": "PERMISSION_DENIED",
               "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo",
                            "reason": "SERVICE_DISABLED", "domain": "googleapis.com",
                            "metadata": {"service": "drive.googleapis.com",
                                         "consumer": f"projects/{_PROJECT}"}}]}),
    # A request without credentials (jupyterlab-google-drive issue 46, odeke-em/drive 565).
    "dailyLimitExceededUnreg": DriveErrorSpec(
        403, "usageLimits", "Daily Limit for Unauthenticated Use Exceeded. Continued use "
                            "requires signup."),
}

#: The message Drive puts on ``userRateLimitExceeded`` when the 750 GB/day upload cap is
#: reached (the short-term per-user limit is spelt "User Rate Limit Exceeded"); rclone's
#: ``--drive-stop-on-upload-limit`` tells the two apart by exactly this text.
UPLOAD_CAP_MESSAGE = "User rate limit exceeded."


def drive_error(reason: str, message: Optional[str] = None, *, status: Optional[int] = None,
                headers: Optional[dict] = None, file_id: str = "", verb: str = "read",
                **kw) -> EmulatorApiError:
    """The error Drive sends for ``reason`` (overrides for message, status, headers; the
    file and access its message names: :meth:`DriveErrorSpec.text`)."""
    spec = DRIVE_ERRORS.get(reason)
    if spec is None:
        return EmulatorApiError(status or 403, reason, message or reason, headers=headers, **kw)
    kw.setdefault("location", spec.location)
    kw.setdefault("location_type", spec.location_type)
    return EmulatorApiError(status or spec.status, reason, message or spec.text(file_id, verb),
                            domain=spec.domain,
                            headers={**spec.headers, **(headers or {})},
                            top_message=None if message else spec.top_message,
                            extra=dict(spec.extra), **kw)


def file_access(file_id: str, verb: str) -> EmulatorApiError:
    """403 fileAccess: the app was not given ``verb`` ("read" or "write") access to the file."""
    return drive_error("fileAccess", file_id=file_id, verb=verb)


_FILE_IN_PATH = re.compile(r"/files/(?!trash\b|generateIds\b)([^/?#]+)")


def request_file(method: str, target: str) -> tuple[str, str]:
    """(the file id a request's target names, or ""; "read" for a GET or HEAD, else
    "write"): what an injected answer's message names (:meth:`DriveErrorSpec.text`)."""
    m = _FILE_IN_PATH.search(target.split("?", 1)[0])
    return (unquote(m.group(1)) if m else ""), \
        ("read" if method.upper() in ("GET", "HEAD") else "write")


def not_found(file_id: str) -> EmulatorApiError:
    """Drive's 404 for an id the caller cannot see (or that does not exist)."""
    return EmulatorApiError(404, "notFound", f"File not found: {file_id}.", location="fileId",
                            location_type="parameter")


def no_file_permission() -> EmulatorApiError:
    """403 insufficientFilePermissions (Drive's refusal of a trash, delete or edit)."""
    return drive_error("insufficientFilePermissions")


def no_parent_permission() -> EmulatorApiError:
    """Drive v2's refusal to create or move an item into a folder the caller may not write."""
    return EmulatorApiError(403, "forbidden", "Insufficient permissions for the specified parent.",
                            location="parent.permissions", location_type="other")
