"""Drive v2 resources as the emulator renders them for one caller: File, Drive, About,
Revision. Fields follow the v2 discovery document's schemas (what is populated for
shortcuts, for shared-drive items, for items owned by someone else)."""
from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Optional

from drivestage.emulator import properties, revisions
from drivestage.emulator.access import (
    GOD,
    USER_EMAIL,
    USER_NAME,
    Access,
    Caller,
    capabilities,
    can_write,
    drive_capabilities,
    may_download,
    resolve,
)
from drivestage.emulator.preconditions import etag_of
from drivestage.emulator.store import FOLDER_MIME, SHORTCUT_MIME
from drivestage.emulator.wire import fmt_time

if TYPE_CHECKING:
    from drivestage.emulator.server import Emulator


#: Google's own types (Docs, Sheets, Slides, folders, shortcuts): no binary content.
GOOGLE_APPS = "application/vnd.google-apps."
#: Formats a Docs Editors file's ``exportLinks`` offer (a few of Drive's).
_EXPORTS = (("application/pdf", "pdf"), ("text/plain", "txt"),
            ("application/vnd.openxmlformats-officedocument.wordprocessingml.document", "docx"))


def _user(email: Optional[str]) -> dict:
    me = email is None
    name = USER_NAME if me else email.split("@")[0]
    return {"kind": "drive#user", "displayName": name, "emailAddress": email or USER_EMAIL,
            "isAuthenticatedUser": me, "permissionId": "00000000000000000000" if me else
            str(int(hashlib.sha1(email.encode()).hexdigest(), 16) % 10 ** 20).zfill(20)}


def render_about(emu: "Emulator", base: Optional[str] = None) -> dict:
    """The about resource (quota numbers as strings, like Drive)."""
    base = base or emu.url
    used, trash = emu.store.usage()
    # v2's quotaBytesUsed is Drive's share alone; the storage limit (quotaBytesTotal) is
    # shared with Gmail and Photos since 2013, whose bytes are in quotaBytesUsedAggregate.
    other = {"GMAIL": 0, "PHOTOS": 0, **emu.store.other_usage}
    out = {
        "kind": "drive#about", "etag": '"emulator"', "selfLink": f"{base}drive/v2/about",
        "name": USER_NAME, "user": _user(None),
        "quotaBytesUsed": str(used), "quotaBytesUsedAggregate": str(used + sum(other.values())),
        "quotaBytesUsedInTrash": str(trash),
        "quotaType": "UNLIMITED" if emu.quota_bytes is None else "LIMITED",
        "quotaBytesByService": [{"serviceName": "DRIVE", "bytesUsed": str(used)}]
        + [{"serviceName": name, "bytesUsed": str(n)} for name, n in other.items()],
        "rootFolderId": emu.store.root_id, "largestChangeId": "1", "remainingChangeIds": "0",
        "permissionId": "00000000000000000000", "languageCode": "en",
        "domainSharingPolicy": "allowedWithWarning", "isCurrentAppInstalled": False,
        "canCreateDrives": True, "canCreateTeamDrives": True,
    }
    if emu.quota_bytes is not None:
        out["quotaBytesTotal"] = str(emu.quota_bytes)
    return out


def _link(base: str, path: str, rec: dict, sep: str = "?") -> str:
    key = rec.get("resource_key")
    return f"{base}{path}{sep}resourcekey={key}" if key else f"{base}{path}"


def _visible_parents(emu: "Emulator", rec: dict, caller: Caller) -> list[str]:
    store = emu.store
    if caller is GOD:
        return list(rec["parents"])
    out = []
    for p in rec["parents"]:
        if p == store.root_id or p in store.drives:
            out.append(p)
        elif p in store.files and p not in store.owner_roots.values() \
                and resolve(store, store.files[p], caller) is not None:
            out.append(p)
    return out


def render_file(emu: "Emulator", rec: dict, base: Optional[str] = None, caller: Caller = GOD,
                access: Optional[Access] = None) -> dict:
    """A record as the Drive v2 File resource ``caller`` gets."""
    base = base or emu.url
    store = emu.store
    access = access or resolve(store, rec, caller) or Access("reader", "link")
    fid = rec["id"]
    mime = rec["mimeType"]
    folder, shortcut = mime == FOLDER_MIME, mime == SHORTCUT_MIME
    root = store.root_id
    in_drive = bool(rec.get("driveId"))
    old_bytes = sum(v["size"] for v in rec.get("revisions", ()))
    res = {
        "kind": "drive#file", "id": fid, "etag": etag_of(rec),
        "selfLink": f"{base}drive/v2/files/{fid}",
        "alternateLink": _link(base, f"file/d/{fid}/view", rec),
        "title": rec["title"], "mimeType": mime,
        "labels": {"starred": rec["starred"], "hidden": rec["hidden"], "trashed": rec["trashed"],
                   "restricted": False, "viewed": True, "modified": True},
        "createdDate": fmt_time(rec["created"]), "modifiedDate": fmt_time(rec["modified"]),
        "modifiedByMeDate": fmt_time(rec["modified"]), "markedViewedByMeDate": fmt_time(rec["created"]),
        "version": str(rec["version"]),
        "parents": [{"kind": "drive#parentReference", "id": p, "isRoot": p == root,
                     "selfLink": f"{base}drive/v2/files/{fid}/parents/{p}",
                     "parentLink": f"{base}drive/v2/files/{p}"} for p in _visible_parents(emu, rec, caller)],
        "explicitlyTrashed": rec["explicitlyTrashed"],
        "quotaBytesUsed": str((rec["size"] or 0) + old_bytes),
        "lastModifyingUserName": USER_NAME if rec.get("owner") is None else rec["owner"].split("@")[0],
        "editable": can_write(access), "copyable": not folder and not shortcut and may_download(rec, access),
        "copyRequiresWriterPermission": bool(rec.get("copy_restricted")) or access.drive_restricted,
        "writersCanShare": True,
        "appDataContents": False, "spaces": ["drive"],
        "userPermission": {"kind": "drive#permission", "id": "me", "type": "user",
                           "role": "organizer" if access.via == "drive" and access.role == "organizer"
                           else access.role},
        "capabilities": capabilities(store, rec, access),
    }
    if not in_drive:
        owner = rec.get("owner")
        res.update(owners=[_user(owner)], ownerNames=[_user(owner)["displayName"]],
                   ownedByMe=owner is None,
                   shared=bool(owner or rec.get("link_role") or rec.get("shared_role")))
        if rec.get("shared_role"):
            res["sharedWithMeDate"] = fmt_time(rec.get("shared_date") or rec["created"])
            res["sharingUser"] = _user(owner)
    if rec.get("description"):
        res["description"] = rec["description"]
    shown = properties.seen_by(rec, caller.app)
    if shown:
        res["properties"] = [properties.render(rec, p, base) for p in shown]
    if in_drive:
        res["driveId"] = res["teamDriveId"] = rec["driveId"]
    if rec.get("resource_key"):
        res["resourceKey"] = rec["resource_key"]
        res["linkShareMetadata"] = {"securityUpdateEligible": True, "securityUpdateEnabled": True}
    if shortcut:
        details = rec.get("shortcut") or {}
        res["shortcutDetails"] = {k: v for k, v in details.items() if v}
    elif not folder and mime.startswith(GOOGLE_APPS):
        # A Docs Editors file: a size, but no md5, downloadUrl or revision of bytes; its
        # content leaves through files.export (Drive v2 File reference).
        res.update(fileSize=str(rec["size"] or 0), exportLinks={
            fmt: f"{base}feeds/download/documents/export/Export?id={fid}&exportFormat={ext}"
            for fmt, ext in _EXPORTS})
    elif not folder:
        ext = rec["title"].rsplit(".", 1)[1] if "." in rec["title"] else ""
        res.update({
            "fileSize": str(rec["size"] or 0), "md5Checksum": rec["md5"],
            "downloadUrl": f"{base}drive/v2/files/{fid}?alt=media&source=downloadUrl",
            "webContentLink": _link(base, f"uc?id={fid}&export=download", rec, "&"),
            "originalFilename": rec["title"], "fileExtension": ext,
            "fullFileExtension": rec["title"].split(".", 1)[1] if "." in rec["title"] else "",
            "headRevisionId": revisions.head_id(rec),
        })
        if not may_download(rec, access):
            # Drive leaves out the links that would fetch bytes this caller may not download
            # (rclone issue 95: a file with "copyable": false had md5 but no downloadUrl).
            del res["downloadUrl"], res["webContentLink"]
        if rec.get("md5_shown") is not None:   # set_checksums(md5=...): none, or a lie
            res["md5Checksum"] = rec["md5_shown"] or None
        if res["md5Checksum"] is None:
            del res["md5Checksum"]
        for name in ("sha1", "sha256"):
            if rec.get(name):  # absent: a file from before Drive kept them
                res[name + "Checksum"] = rec[name]
    if rec.get("size_hidden"):  # hide_size: a Doc as v2 listed it (or a proxy's lie)
        res.pop("fileSize", None)
    return res


def render_drive(d: dict) -> dict:
    """A shared drive as a Drive v2 Drive resource, capabilities for the caller's role."""
    role = d.get("role", "organizer")
    return {"kind": "drive#drive", "id": d["id"], "name": d["name"],
            "createdDate": fmt_time(d["created"]), "hidden": False,
            "capabilities": drive_capabilities(role),
            "restrictions": {"adminManagedRestrictions": False, "domainUsersOnly": False,
                             "copyRequiresWriterPermission": bool(d.get("copy_restricted")),
                             "driveMembersOnly": False,
                             "sharingFoldersRequiresOrganizerPermission": False}}


def render_revision(rec: dict, rev: dict, base: str) -> dict:
    """One revision as a Drive v2 Revision resource."""
    fid = rec["id"]
    return {
        "kind": "drive#revision", "id": rev["id"], "etag": f'"{fid}/{rev["id"]}"',
        "selfLink": f"{base}drive/v2/files/{fid}/revisions/{rev['id']}",
        "mimeType": rev["mimeType"], "modifiedDate": fmt_time(rev["modified"]),
        "pinned": bool(rev["pinned"]), "published": False,
        "fileSize": str(rev["size"] or 0), "md5Checksum": rev["md5"],
        "originalFilename": rev["title"], "lastModifyingUserName": USER_NAME,
        "lastModifyingUser": _user(None),
        "downloadUrl": f"{base}drive/v2/files/{fid}?alt=media&revisionId={rev['id']}",
    }
