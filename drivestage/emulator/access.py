"""Who may see and do what: the caller's token scopes, sharing, resource keys and
shared-drive roles, as Drive decides them.

The emulator has one user (``user@example.com``). An item is the user's own, or lives in
a shared drive the user is a member of (with a role per drive), or belongs to someone
else and reaches the user through a direct share ("Shared with me") or a link. Sources:
Drive's "Roles and permissions" table (which role may trash, delete, edit), the v2
discovery document (``files.trash``: owner or at least ``fileOrganizer``; ``files.delete``:
owner or ``organizer``), "Access link-shared files using resource keys" (a link-shared
item needs ``X-Goog-Drive-Resource-Keys: <id>/<key>`` unless the user has direct access),
and "Choose Google Drive API scopes".
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Optional

from drivestage.emulator.errors import (
    EmulatorApiError,
    drive_error,
    file_access,
    no_file_permission,
    no_parent_permission,
    not_found,
)
from drivestage.emulator.properties import DEFAULT_APP
from drivestage.emulator.store import FOLDER_MIME, SHORTCUT_MIME, EmulatorStore

USER_EMAIL = "user@example.com"
USER_NAME = "Emulator User"
#: Shared-drive roles and sharing roles, weakest first ("owner" only for My Drive items).
ROLES = ("reader", "commenter", "writer", "fileOrganizer", "organizer", "owner")
DRIVE_ROLES = ("reader", "commenter", "writer", "fileOrganizer", "organizer")
SHARE_ROLES = ("reader", "commenter", "writer")
_RANK = {r: i for i, r in enumerate(ROLES)}
_SCOPE_PREFIX = "https://www.googleapis.com/auth/"
#: Scopes that allow every Drive call (``docs`` is Drive's legacy full scope).
FULL_SCOPES = {"drive", "docs"}
READ_SCOPES = {"drive.readonly", "drive.metadata.readonly", "drive.metadata", "drive.photos.readonly"}


def at_least(role: str, wanted: str) -> bool:
    return _RANK[role] >= _RANK[wanted]


def short_scope(scope: str) -> str:
    return scope[len(_SCOPE_PREFIX):] if scope.startswith(_SCOPE_PREFIX) else scope


@dataclass
class Caller:
    """The principal behind one request: its token's scopes, whether it is a service
    account, the resource keys it sent, and whether the request said it handles shared
    drives (``supportsAllDrives=true``: without it, a shared drive's items answer 404)."""

    token: Optional[str] = None
    scopes: Optional[frozenset] = None          # None: the full Drive scope
    service_account: bool = False
    keys: dict = field(default_factory=dict)    # file id -> resource key
    all_drives: bool = True
    #: The app (OAuth client) behind the token: its PRIVATE properties are its own.
    app: str = DEFAULT_APP

    @property
    def drive_file_only(self) -> bool:
        """A ``drive.file`` token: only items this app created are visible."""
        s = self.scopes
        return s is not None and not (s & FULL_SCOPES) and not (s & READ_SCOPES) and "drive.file" in s

    @property
    def app_scoped(self) -> bool:
        """``drive.file`` with a read scope: every item visible, but only those this app
        created may be written (and, under a metadata scope, downloaded)."""
        s = self.scopes
        return s is not None and not (s & FULL_SCOPES) and bool(s & READ_SCOPES) and "drive.file" in s

    def check_scope(self, write: bool, media: bool) -> None:
        """403 insufficientPermissions when the token's scopes do not cover the call."""
        s = self.scopes
        if s is None or s & FULL_SCOPES:
            return
        if "drive.file" in s:
            return          # narrowed per item: drive_file_only, app_scoped (require_app)
        ok = bool(s & READ_SCOPES) and not write
        if media and s & READ_SCOPES and not ({"drive.readonly", "drive.photos.readonly"} & s):
            ok = False      # metadata-only scopes cannot read content
        if not ok:
            raise drive_error("insufficientPermissions")


GOD = Caller()   # the Python API's view: no keys needed, every scope


def parse_resource_keys(header: Optional[str]) -> dict:
    """``X-Goog-Drive-Resource-Keys: id1/key1,id2/key2`` → ``{id1: key1, id2: key2}``."""
    out = {}
    for pair in (header or "").split(","):
        file_id, sep, key = pair.strip().partition("/")
        if sep and file_id and key:
            out[file_id] = key
    return out


@dataclass(frozen=True)
class Access:
    """The caller's effective role on an item and how it got it."""

    role: str
    via: str            # "owner" | "drive" | "shared" | "link"
    #: The item's shared drive turns downloading off for readers and commenters (its
    #: ``restrictions.copyRequiresWriterPermission``, which overrides the file's own).
    drive_restricted: bool = False
    #: The token's app may write the item / read its bytes (False: a ``drive.file`` token
    #: that sees it through a read scope only: :func:`require_app`).
    app_write: bool = True
    app_read: bool = True


def resolve(store: EmulatorStore, rec: dict, caller: Caller = GOD) -> Optional[Access]:
    """The caller's access to ``rec``, or None when Drive would answer 404."""
    access = _resolve(store, rec, caller)
    if access is None or not caller.app_scoped or rec.get("app_created"):
        return access
    s = caller.scopes or frozenset()
    return dataclasses.replace(access, app_write=False,
                               app_read=bool(s & {"drive.readonly", "drive.photos.readonly"}))


def _resolve(store: EmulatorStore, rec: dict, caller: Caller) -> Optional[Access]:
    fid = rec["id"]
    if fid == store.root_id:
        return Access("owner", "owner")
    if fid in store.drives or rec.get("driveId"):
        if not caller.all_drives:
            return None     # "File not found" to an app that did not say it handles them
        drive = store.drives.get(fid if fid in store.drives else rec["driveId"])
        return Access(drive.get("role", "organizer"), "drive",
                      bool(drive.get("copy_restricted"))) if drive else None
    if caller is GOD:
        return Access("owner", "owner") if rec.get("owner") is None else Access(
            rec.get("shared_role") or "reader", "shared")
    if caller.drive_file_only and not rec.get("app_created"):
        return None
    if rec.get("owner") is None:
        return Access("owner", "owner")
    chain = [rec] + store.ancestors(rec)
    direct = [r["shared_role"] for r in chain if r.get("shared_role")]
    if direct:
        return Access(max(direct, key=_RANK.__getitem__), "shared")
    for i, node in enumerate(chain):
        if node.get("link_role"):
            # The key that opens rec: its own, else the nearest keyed folder on the way up
            # to the link-shared item (the id the caller reached it through).
            keyed = next((r for r in chain[: i + 1] if r.get("resource_key")), None)
            if keyed is not None and caller.keys.get(keyed["id"]) != keyed["resource_key"]:
                return None
            return Access(node["link_role"], "link")
    return None


def through_parent(rec: dict, caller: Caller, parent: Optional[Access]) -> Optional[Access]:
    """Access to an item listed under a folder the caller can open: a link-shared folder's
    children come with it (each with its own resource key in the answer), except for a
    ``drive.file`` token, which still sees only what the app made."""
    if parent is None or (caller.drive_file_only and not rec.get("app_created")):
        return None
    return Access(parent.role if parent.role != "owner" else "reader", parent.via) \
        if parent.via in ("link", "shared") else None


def visible(store: EmulatorStore, file_id: str, caller: Caller) -> tuple[dict, Access]:
    """(record, access) for an id the caller may see; Drive's 404 otherwise."""
    rec = store.get(file_id)
    access = resolve(store, rec, caller)
    if access is None or (rec.get("owner") and rec["id"] in store.owner_roots.values()):
        raise not_found(file_id)
    return rec, access


def searchable(access: Optional[Access]) -> bool:
    """Whether a listing without a parent may return the item: link-only items can be
    found only by users with a user or group permission (Drive's resource-key guide)."""
    return access is not None and access.via != "link"


# ----------------------------------------------------------------------------- permissions
def can_write(access: Access) -> bool:
    return at_least(access.role, "writer")


def can_trash(access: Access) -> bool:
    """My Drive: only the owner; shared drive: at least fileOrganizer (files.trash)."""
    return access.role == "owner" if access.via != "drive" else at_least(access.role, "fileOrganizer")


def can_delete(access: Access) -> bool:
    """My Drive: only the owner; shared drive: organizer (files.delete)."""
    return access.role == "owner" if access.via != "drive" else at_least(access.role, "organizer")


def require(allowed: bool) -> None:
    if not allowed:
        raise no_file_permission()


def require_app(rec: dict, access: Access, verb: str = "write") -> None:
    """403 fileAccess where the token's app may not ``verb`` ("write" or "read") the item:
    Drive's answer to a ``drive.file`` token that sees an item it was never given through
    another scope (before any role is looked at)."""
    if not (access.app_write if verb == "write" else access.app_read):
        raise file_access(rec["id"], verb)


def require_parent(store: EmulatorStore, parent_id: str, caller: Caller) -> None:
    """The caller may add items to ``parent_id``: 404 when it cannot see the folder, 403
    (v2's "Insufficient permissions for the specified parent") when it may not write there."""
    pid = store.resolve(parent_id)
    if pid == store.root_id:
        return
    rec = store.get(pid)
    access = resolve(store, rec, caller)
    if access is None:
        if caller.drive_file_only and resolve(store, rec, Caller(keys=caller.keys)) is not None:
            raise no_parent_permission()    # the folder exists, the drive.file token may not use it
        raise not_found(parent_id)
    if not can_write(access):
        raise no_parent_permission()


def may_acknowledge_abuse(access: Access) -> bool:
    """``acknowledgeAbuse`` counts only for the owner or a shared drive's organizer."""
    return access.role == "owner" or (access.via == "drive" and access.role == "organizer")


def may_download(rec: dict, access: Access) -> bool:
    """Whether the caller may download (and copy) the file's bytes: its owner or an editor
    can turn that off for readers and commenters (``copyRequiresWriterPermission``), and, since
    Drive's download restrictions (``downloadRestrictions.restrictedForWriters``: "if true,
    download is also restricted for readers"), for editors too: then only the owner or a
    shared drive's organizer downloads it."""
    restricted = rec.get("copy_restricted") or access.drive_restricted
    if restricted == "writers":
        return access.role == "owner" or (access.via == "drive" and access.role == "organizer")
    return not restricted or can_write(access)


def capabilities(store: EmulatorStore, rec: dict, access: Access) -> dict:
    """The v2 ``capabilities`` object Drive reports for this caller on this item."""
    folder = rec["mimeType"] == FOLDER_MIME
    content = rec["mimeType"] not in (FOLDER_MIME, SHORTCUT_MIME)
    write = can_write(access)
    copyable = content and may_download(rec, access)
    in_drive = access.via == "drive"
    caps = {
        "canAddChildren": folder and write, "canComment": at_least(access.role, "commenter"),
        "canCopy": copyable, "canDelete": can_delete(access), "canDownload": copyable,
        "canEdit": write, "canListChildren": folder, "canModifyContent": write and not folder,
        "canReadRevisions": write and content, "canRemoveChildren": folder and write,
        "canRename": write, "canShare": write, "canTrash": can_trash(access),
        "canUntrash": can_trash(access), "canMoveItemWithinDrive": write if not in_drive
        else at_least(access.role, "fileOrganizer"),
    }
    if in_drive:
        caps.update(canReadDrive=True, canReadTeamDrive=True,
                    canDeleteChildren=folder and at_least(access.role, "organizer"),
                    canTrashChildren=folder and at_least(access.role, "fileOrganizer"),
                    canMoveItemOutOfDrive=at_least(access.role, "organizer"))
    return caps


def drive_capabilities(role: str) -> dict:
    """The v2 Drive resource's ``capabilities`` for a member with ``role``."""
    return {
        "canAddChildren": at_least(role, "writer"), "canComment": at_least(role, "commenter"),
        "canCopy": True, "canDeleteChildren": at_least(role, "organizer"),
        "canDeleteDrive": role == "organizer", "canDownload": True, "canEdit": at_least(role, "writer"),
        "canListChildren": True, "canManageMembers": role == "organizer",
        "canReadRevisions": at_least(role, "writer"), "canRename": role == "organizer",
        "canRenameDrive": role == "organizer", "canShare": at_least(role, "writer"),
        "canTrashChildren": at_least(role, "fileOrganizer"),
    }


def check_role(role: str, roles: tuple = DRIVE_ROLES) -> str:
    if role not in roles:
        raise ValueError(f"unknown role {role!r}; choose from {', '.join(roles)}")
    return role


def unreachable_parent(store: EmulatorStore, parent_id: str, caller: Caller) -> Optional[EmulatorApiError]:
    """For ``'<id>' in parents`` listings: Drive's 404 when the folder is link-shared and
    the request lacks its resource key (what a user without the key gets)."""
    rec = store.files.get(store.resolve(parent_id))
    if rec is None or caller is GOD:
        return None
    return not_found(parent_id) if resolve(store, rec, caller) is None and _link_shared(store, rec) else None


def _link_shared(store: EmulatorStore, rec: dict) -> bool:
    return any(r.get("link_role") for r in [rec] + store.ancestors(rec))
