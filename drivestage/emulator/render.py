"""Drive v2 resources as the emulator renders them: File, Drive, About."""
from __future__ import annotations

from typing import TYPE_CHECKING, Optional

from drivestage.emulator.store import FOLDER_MIME
from drivestage.emulator.wire import fmt_time

if TYPE_CHECKING:
    from drivestage.emulator.server import Emulator


def render_about(emu: "Emulator", base: Optional[str] = None) -> dict:
    """The about resource (quota numbers as strings, like Drive)."""
    base = base or emu.url
    used, trash = emu.store.usage()
    out = {
        "kind": "drive#about", "etag": '"emulator"', "selfLink": f"{base}drive/v2/about",
        "name": "Emulator User",
        "user": {"kind": "drive#user", "displayName": "Emulator User", "isAuthenticatedUser": True,
                 "permissionId": "00000000000000000000", "emailAddress": "user@example.com"},
        "quotaBytesUsed": str(used), "quotaBytesUsedAggregate": str(used),
        "quotaBytesUsedInTrash": str(trash),
        "quotaType": "UNLIMITED" if emu.quota_bytes is None else "LIMITED",
        "quotaBytesByService": [{"serviceName": "DRIVE", "bytesUsed": str(used)}],
        "rootFolderId": emu.store.root_id, "largestChangeId": "1", "remainingChangeIds": "0",
        "permissionId": "00000000000000000000", "languageCode": "en",
        "domainSharingPolicy": "allowedWithWarning", "isCurrentAppInstalled": False,
    }
    if emu.quota_bytes is not None:
        out["quotaBytesTotal"] = str(emu.quota_bytes)
    return out


def render_file(emu: "Emulator", rec: dict, base: Optional[str] = None) -> dict:
    """A record as a Drive v2 File resource."""
    base = base or emu.url
    fid = rec["id"]
    folder = rec["mimeType"] == FOLDER_MIME
    root = emu.store.root_id
    res = {
        "kind": "drive#file", "id": fid, "etag": f'"{fid}/{rec["version"]}"',
        "selfLink": f"{base}drive/v2/files/{fid}",
        "alternateLink": f"{base}file/d/{fid}/view",
        "title": rec["title"], "mimeType": rec["mimeType"],
        "labels": {"starred": rec["starred"], "hidden": rec["hidden"], "trashed": rec["trashed"],
                   "restricted": False, "viewed": True, "modified": True},
        "createdDate": fmt_time(rec["created"]), "modifiedDate": fmt_time(rec["modified"]),
        "modifiedByMeDate": fmt_time(rec["modified"]), "markedViewedByMeDate": fmt_time(rec["created"]),
        "version": str(rec["version"]),
        "parents": [{"kind": "drive#parentReference", "id": p, "isRoot": p == root,
                     "selfLink": f"{base}drive/v2/files/{fid}/parents/{p}",
                     "parentLink": f"{base}drive/v2/files/{p}"} for p in rec["parents"]],
        "explicitlyTrashed": rec["explicitlyTrashed"],
        "quotaBytesUsed": str(rec["size"] or 0),
        "ownerNames": ["Emulator User"], "lastModifyingUserName": "Emulator User",
        "editable": True, "copyable": not folder, "writersCanShare": True, "shared": False,
        "appDataContents": False, "spaces": ["drive"],
        "capabilities": {"canCopy": not folder, "canEdit": True, "canDelete": True, "canTrash": True,
                         "canDownload": not folder, "canAddChildren": folder},
    }
    if rec.get("description"):
        res["description"] = rec["description"]
    if rec.get("driveId"):
        res["driveId"] = res["teamDriveId"] = rec["driveId"]
    if not folder:
        ext = rec["title"].rsplit(".", 1)[1] if "." in rec["title"] else ""
        res.update({
            "fileSize": str(rec["size"] or 0), "md5Checksum": rec["md5"],
            "downloadUrl": f"{base}drive/v2/files/{fid}?alt=media&source=downloadUrl",
            "webContentLink": f"{base}uc?id={fid}&export=download",
            "originalFilename": rec["title"], "fileExtension": ext,
            "fullFileExtension": rec["title"].split(".", 1)[1] if "." in rec["title"] else "",
            "headRevisionId": f"{fid}-{rec['version']}",
        })
    return res

def render_drive(d: dict) -> dict:
    """A shared drive as a Drive v2 Drive resource."""
    return {"kind": "drive#drive", "id": d["id"], "name": d["name"],
            "createdDate": fmt_time(d["created"]), "hidden": False}
