"""Drive v2 File resources as :class:`~drivestage.store.RemoteEntry` objects."""
from __future__ import annotations

from datetime import datetime
from typing import Any, Mapping, Optional

from drivestage.store import RemoteEntry

FOLDER_MIME = "application/vnd.google-apps.folder"
#: Google Docs, Sheets, Slides...: items without binary content (they export, not download).
GOOGLE_APPS_PREFIX = "application/vnd.google-apps."


def parse_time(stamp: Optional[str]) -> float:
    """RFC 3339 (``2024-01-02T03:04:05.678Z``) to seconds since the epoch; 0 when absent."""
    if not stamp:
        return 0.0
    try:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


def entry_from_resource(res: Mapping[str, Any]) -> RemoteEntry:
    """A Drive v2 File resource (a dict) as a :class:`RemoteEntry`.

    A file of a Google type (Docs, Sheets...), or one Drive gives no md5 for, has no
    binary content to download."""
    parents = res.get("parents") or []
    mime = res.get("mimeType") or ""
    md5 = res.get("md5Checksum")
    return RemoteEntry(
        id=res["id"], name=res.get("title", ""), is_dir=mime == FOLDER_MIME,
        size=int(res.get("fileSize") or 0), md5=md5,
        modified=parse_time(res.get("modifiedDate")),
        parent_id=(parents[0].get("id") if parents else None),
        has_content=md5 is not None and not mime.startswith(GOOGLE_APPS_PREFIX))


def is_trashed(res: Mapping[str, Any]) -> bool:
    """Whether the resource sits in the trash."""
    return bool((res.get("labels") or {}).get("trashed"))
