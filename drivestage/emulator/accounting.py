"""API call accounting: what kind of call each request is, the quota units Drive charges
for it, and (off by default) Drive's per-user limits.

Drive's "Usage limits" page: quotas are counted in quota units, 325,000 per minute per
user per project; beyond them Drive answers ``403 userRateLimitExceeded`` ("User Rate Limit
Exceeded"), and its backend may also answer ``429 rateLimitExceeded``. The same page sets
1,000,000 units per minute per project, every user of the Cloud project together (several
machines, each with its own login, through one OAuth client): past it the "Resolve errors"
guide's ``403 rateLimitExceeded`` ("This error occurs when the project's rate limit has
been reached": domain ``usageLimits``, "Rate Limit Exceeded"), off unless asked for. The per-call costs
below are the ones issue 12 measured (media downloads about 200 units, lists 100, gets 5);
every other call is charged 5 until measured. The 750 GB per user per day upload cap is
not a quota-unit limit: Drive refuses further uploads with ``403 userRateLimitExceeded``
spelt "User rate limit exceeded." (rclone's ``--drive-stop-on-upload-limit`` keys on it).
The download cap of about 10 TB per user per day (rclone's ``--drive-stop-on-download-limit``
help: "only possible to download 10TB of data from Google Drive a day (this is an
undocumented limit)") answers every download of that user, whatever the file, ``403
downloadQuotaExceeded`` with the per-file quota's message (rclone issue 2652: every file,
a ``.DS_Store`` too, "The download quota for this file has been exceeded.").
"""
from __future__ import annotations

import re
import threading
import time
from collections import deque
from typing import Optional

from drivestage.emulator.errors import UPLOAD_CAP_MESSAGE, drive_error

PER_USER_UNITS_PER_MINUTE = 325_000
PER_PROJECT_UNITS_PER_MINUTE = 1_000_000
DAILY_UPLOAD_BYTES = 750 * 10 ** 9
DAILY_DOWNLOAD_BYTES = 10 * 10 ** 12
DEFAULT_COSTS = {"media.download": 200, "files.list": 100, "files.get": 5}
DEFAULT_COST = 5

_KINDS = [
    (re.compile(r"/batch/drive/v2"), {"POST": "batch"}),
    (re.compile(r"/drive/v2/about"), {"GET": "about.get"}),
    (re.compile(r"/drive/v2/drives"), {"GET": "drives.list"}),
    (re.compile(r"/drive/v2/drives/[^/]+"), {"GET": "drives.get"}),
    (re.compile(r"/drive/v2/files"), {"GET": "files.list", "POST": "files.insert"}),
    (re.compile(r"/drive/v2/files/trash"), {"DELETE": "files.emptyTrash"}),
    (re.compile(r"/drive/v2/files/generateIds"), {"GET": "files.generateIds"}),
    (re.compile(r"/drive/v2/files/[^/]+"), {"GET": "files.get", "HEAD": "files.get", "PUT": "files.update",
                                           "PATCH": "files.patch", "DELETE": "files.delete"}),
    (re.compile(r"/drive/v2/files/[^/]+/(trash|untrash|copy|touch)"), {"POST": "files.{0}"}),
    (re.compile(r"/drive/v2/files/[^/]+/revisions"), {"GET": "revisions.list"}),
    (re.compile(r"/drive/v2/files/[^/]+/properties"), {"GET": "properties.list",
                                                         "POST": "properties.insert"}),
    (re.compile(r"/drive/v2/files/[^/]+/properties/[^/]+"), {"GET": "properties.get",
                                                            "DELETE": "properties.delete"}),
    (re.compile(r"/drive/v2/files/[^/]+/revisions/[^/]+"), {"GET": "revisions.get", "PUT": "revisions.update",
                                                           "PATCH": "revisions.patch",
                                                           "DELETE": "revisions.delete"}),
    (re.compile(r"(?:/resumable)?/upload/drive/v2/files"), {"POST": "files.insert"}),
    (re.compile(r"(?:/resumable)?/upload/drive/v2/files/[^/]+"), {"PUT": "files.update", "POST": "files.update"}),
]


def request_kind(method: str, path: str, query: dict) -> str:
    """The Drive API method a request calls (discovery names without ``drive.``), with
    media transfers apart: ``media.download`` (``alt=media``) and ``media.upload`` (the
    chunks of a resumable session). Unknown endpoints: ``""``."""
    if query.get("upload_id"):
        return "media.upload"
    for pattern, methods in _KINDS:
        m = pattern.fullmatch(path)
        if m:
            kind = methods.get(method, "")
            kind = kind.format(*m.groups()) if m.groups() else kind
            if kind == "files.get" and query.get("alt") == "media":
                return "media.download"
            return kind
    return ""


class ApiQuota:
    """Drive's per-user limits, off until :meth:`configure` turns them on."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.units_per_minute: Optional[int] = None
        self.project_units_per_minute: Optional[int] = None
        self.requests_per_day: Optional[int] = None
        self.upload_bytes_per_day: Optional[int] = None
        self.download_bytes_per_day: Optional[int] = None
        self.costs = dict(DEFAULT_COSTS)
        self.status = 403
        self._minute: dict[str, deque] = {}       # token -> (time, units) in the last minute
        self._project: deque = deque()             # (time, units) of every token's calls
        self._project_units = 0                    # their sum (a window of 200,000 calls)
        self._day_requests = 0
        self._day_uploads: dict[str, int] = {}    # token -> bytes uploaded today
        self._day_downloads: dict[str, int] = {}  # token -> bytes served today
        self._day = time.strftime("%Y%m%d")

    def configure(self, units_per_minute: Optional[int] = None, *, costs: Optional[dict] = None,
                  status: int = 403, requests_per_day: Optional[int] = None,
                  upload_bytes_per_day: Optional[int] = None,
                  download_bytes_per_day: Optional[int] = None,
                  project_units_per_minute: Optional[int] = None) -> None:
        """Enforce limits (None: off). ``status`` 429 answers ``rateLimitExceeded`` instead of
        403 ``userRateLimitExceeded`` when the per-minute units run out;
        ``project_units_per_minute`` counts every token's calls together (403
        ``rateLimitExceeded`` past it)."""
        if status not in (403, 429):
            raise ValueError(f"status must be 403 or 429, got {status!r}")
        with self._lock:
            self.units_per_minute = units_per_minute
            self.project_units_per_minute = project_units_per_minute
            self.requests_per_day = requests_per_day
            self.upload_bytes_per_day = upload_bytes_per_day
            self.download_bytes_per_day = download_bytes_per_day
            self.costs = {**DEFAULT_COSTS, **(costs or {})}
            self.status = status
            self._minute.clear()
            self._project.clear()
            self._project_units = 0
            self._day_requests = 0
            self._day_uploads.clear()
            self._day_downloads.clear()

    def describe(self) -> dict:
        with self._lock:
            return {"units_per_minute": self.units_per_minute,
                    "project_units_per_minute": self.project_units_per_minute,
                    "requests_per_day": self.requests_per_day,
                    "upload_bytes_per_day": self.upload_bytes_per_day,
                    "download_bytes_per_day": self.download_bytes_per_day, "costs": dict(self.costs),
                    "status": self.status}

    def cost(self, kind: str) -> int:
        return self.costs.get(kind, DEFAULT_COST) if kind else 0

    def _new_day(self) -> None:
        today = time.strftime("%Y%m%d")
        if today != self._day:
            self._day, self._day_requests = today, 0
            self._day_uploads.clear()
            self._day_downloads.clear()

    def charge(self, token: str, kind: str) -> int:
        """Charge one call; raises Drive's refusal when a limit is reached (then nothing is
        charged). Returns the units charged."""
        units = self.cost(kind)
        with self._lock:
            self._new_day()
            if self.requests_per_day is not None and self._day_requests >= self.requests_per_day:
                raise drive_error("dailyLimitExceeded")
            now = time.monotonic()
            window = None
            if self.units_per_minute is not None:
                window = self._minute.setdefault(token, deque())
                while window and now - window[0][0] >= 60:
                    window.popleft()
                if sum(u for _, u in window) + units > self.units_per_minute:
                    raise drive_error("rateLimitExceeded" if self.status == 429 else "userRateLimitExceeded",
                                      status=self.status)
            if self.project_units_per_minute is not None:
                self._charge_project(now, units)
            if window is not None:
                window.append((now, units))
            self._day_requests += 1
        return units

    def _charge_project(self, now: float, units: int) -> None:
        """Charge the project's minute (the lock held), or refuse past its limit."""
        project = self._project
        while project and now - project[0][0] >= 60:
            self._project_units -= project.popleft()[1]
        if self._project_units + units > self.project_units_per_minute:
            raise drive_error("rateLimitExceeded", status=403)   # (the guide's 403 sample)
        project.append((now, units))
        self._project_units += units

    def check_upload(self, token: str, nbytes: int) -> None:
        """Refuse an upload of ``nbytes`` that the daily cap cannot take (charges nothing)."""
        with self._lock:
            if self.upload_bytes_per_day is None:
                return
            self._new_day()
            if self._day_uploads.get(token, 0) + nbytes > self.upload_bytes_per_day:
                raise drive_error("userRateLimitExceeded", UPLOAD_CAP_MESSAGE)

    def charge_upload(self, token: str, nbytes: int) -> None:
        """Count uploaded bytes against the daily cap; refuse once it is reached."""
        with self._lock:
            if self.upload_bytes_per_day is None:
                return
            self._new_day()
            used = self._day_uploads.get(token, 0)
            if used + nbytes > self.upload_bytes_per_day:
                raise drive_error("userRateLimitExceeded", UPLOAD_CAP_MESSAGE)
            self._day_uploads[token] = used + nbytes

    def charge_download(self, token: str, nbytes: int) -> None:
        """Count ``nbytes`` about to be served against the daily download cap: once the
        bytes served today have reached it, every download is refused (403
        downloadQuotaExceeded, the per-file quota's body), the one that crosses it is not."""
        with self._lock:
            if self.download_bytes_per_day is None:
                return
            self._new_day()
            used = self._day_downloads.get(token, 0)
            if used >= self.download_bytes_per_day:
                raise drive_error("downloadQuotaExceeded")
            self._day_downloads[token] = used + nbytes
